//! Giving idle memory back: `trim_to`, and the idle trimmer that releases
//! memory idle longer than `trim_after`.
//!
//! ```text
//!  every trim_after (a background thread per pool that sets it):
//!    each shard, each class: the objects below the stack's low-water mark
//!    since the last pass were not touched for a whole period ─► freed
//!    (the oldest first); the rest (what recent demand used) stays
//!    thread caches: the epoch is bumped, so each cache gives back its
//!    slack credit at its next operation
//! ```
//! A burst leaves its objects in the shards; one period after demand falls
//! they are gone, while a steady load keeps the objects it cycles through.
//! The trimmer thread holds only a weak reference: it ends when the pool is
//! dropped (woken at once) or when `trim_after` is turned off.

use crate::idle_object::Doomed;
use crate::pool::Inner;
use crate::stats::Ev;
use crate::sync::{AtomicU64, Mutex, Ordering};
use crate::Poolable;
use std::sync::Weak;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The trimmer's settings and thread.
#[derive(Debug, Default)]
pub(crate) struct IdleTrim {
    /// `trim_after` in nanoseconds; 0 is off.
    period_nanos: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl IdleTrim {
    /// `trim_after`, if on.
    pub(crate) fn period(&self) -> Option<Duration> {
        match self.period_nanos.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }
}

impl<T: Poolable> Inner<T> {
    /// Frees idle objects (largest classes first) from the shards and this
    /// thread's cache until at most `bytes` are idle there; other threads'
    /// caches are not touched.
    pub(crate) fn trim_to(&self, bytes: usize) {
        let slot = self.local();
        // SAFETY: owner thread; no user code runs while `cache` lives
        // (objects carry their recorded bytes; the freed ones are dropped
        // at the end, after the last use of `cache`).
        let mut cache = slot.map(|s| unsafe { s.cache_mut() });
        if let Some(cache) = cache.as_deref_mut() {
            self.flush_all_remote(cache);
            // Slack credit counts as idle against `bytes` too.
            self.release_slack_all(cache);
        }
        let mut doomed = Doomed::new();
        let over = |freed: usize| {
            self.budget
                .reserved()
                .saturating_sub(bytes)
                .saturating_sub(freed)
        };
        // Largest class first, across this thread's cache and every shard.
        'classes: for class in (0..self.classes.len()).rev() {
            if let Some(cache) = cache.as_deref_mut() {
                while over(doomed.bytes()) > 0 {
                    let Some(idle) = cache.pop(class) else {
                        break;
                    };
                    cache.credit -= idle.bytes;
                    doomed.push(idle);
                }
            }
            for shard in self.shards.iter() {
                if over(doomed.bytes()) == 0 {
                    break 'classes;
                }
                if !shard.has(class) {
                    continue;
                }
                let mut locked = shard.lock();
                while over(doomed.bytes()) > 0 {
                    let Some(idle) = locked.pop(class) else {
                        break;
                    };
                    doomed.push(idle);
                }
            }
        }
        self.budget.release(doomed.bytes());
        if let (Some(slot), Some(cache)) = (slot, cache) {
            slot.publish(cache);
        }
        self.count_freed(slot, Ev::Trimmed, doomed.len(), doomed.bytes());
        self.free(slot, doomed);
    }

    /// One pass of the idle trimmer over every shard.
    pub(crate) fn trim_idle(&self) -> usize {
        let mut doomed = Doomed::new();
        for shard in self.shards.iter() {
            let objs = shard.lock().take_idle();
            let mark = doomed.mark();
            doomed.extend(objs);
            let (objects, bytes) = doomed.since(mark);
            self.budget.release(bytes);
            self.count_freed(None, Ev::Trimmed, objects, bytes);
        }
        let total = doomed.bytes();
        self.free(None, doomed);
        // Thread caches give back slack credit at their next operation.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if total != 0 {
            crate::trace::event!(
                debug,
                bytes = total,
                "idle trim: freed memory idle longer than trim_after"
            );
        }
        total
    }

    /// Sets `trim_after` (`None`: off), starting the trimmer thread if needed.
    pub(crate) fn set_trim_after(&self, after: Option<Duration>) {
        let nanos = after.map_or(0, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        self.idle.period_nanos.store(nanos, Ordering::Relaxed);
        let mut thread = self.idle.thread.lock();
        if let Some(running) = thread.as_ref() {
            running.thread().unpark();
            if !running.is_finished() {
                return;
            }
        }
        if nanos != 0 {
            let pool = self.this.clone();
            let spawned = thread::Builder::new()
                .name("zeropool-trim".into())
                .spawn(move || trimmer(pool));
            // Without a thread the pool works as before; only idle memory
            // stays until `trim` or a lower budget.
            *thread = spawned.ok();
        }
    }

    /// Stops the trimmer (the pool is going away).
    pub(crate) fn stop_trimmer(&self) {
        self.idle.period_nanos.store(0, Ordering::Relaxed);
        if let Some(running) = self.idle.thread.lock().take() {
            running.thread().unpark();
            // Never join: the last strong reference may be dropped by the
            // trimmer itself.
        }
    }

    /// Gives back all of this cache's slack credit.
    fn release_slack_all(&self, cache: &mut crate::thread_cache::LocalCache<T>) {
        self.budget.release(cache.credit - cache.cached);
        cache.credit = cache.cached;
    }
}

/// The trimmer thread: a pass every `trim_after`, until the pool is gone or
/// the setting is off.
fn trimmer<T: Poolable>(pool: Weak<Inner<T>>) {
    let mut last = Instant::now();
    loop {
        let period = match pool.upgrade().and_then(|p| p.idle.period()) {
            Some(period) => period,
            None => return,
        };
        // Woken early (a new setting, a spurious wake-up): wait out the rest,
        // so nothing idle for less than a whole period is freed.
        let since = last.elapsed();
        if since < period {
            thread::park_timeout(period - since);
            continue;
        }
        let Some(inner) = pool.upgrade() else { return };
        inner.trim_idle();
        last = Instant::now();
    }
}
