//! Giving idle memory back: `trim_to`, and the idle trimmer that releases
//! memory idle longer than `trim_after`.
//!
//! ```text
//!  trim_to(bytes), on the calling thread:
//!    idle = Σ shards + this cache + Σ other caches (as published)  = stats().bytes_retained
//!    free from the shards and this cache, largest class first,
//!    until idle <= bytes or nothing reachable is left
//!    (other threads' caches are counted, not touched; reserved-but-empty
//!     credit is not idle memory and never counts)
//!
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
//!
//! ## Turning the trimmer off and on
//! `IdleTrim::thread` names the running trimmer. `set_trim_after` stores the
//! period and reads that slot under one lock; a trimmer that finds the
//! period off takes the same lock, reads the period again and, only if it is
//! still off, clears the slot and ends. So whichever comes second sees the
//! other: either the trimmer sees the new period and goes on, or
//! `set_trim_after` sees an empty slot and starts a new thread. `trim_after()`
//! reporting a period therefore always means a trimmer is (or is about to be)
//! running.

use crate::idle_object::Doomed;
use crate::pool::Inner;
use crate::stats::Ev;
use crate::sync::{AtomicU64, Mutex, Ordering};
use crate::Poolable;
use std::sync::Weak;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// The trimmer's settings and thread.
#[derive(Debug, Default)]
pub(crate) struct IdleTrim {
    /// `trim_after` in nanoseconds; 0 is off. Written under `thread`'s lock.
    period_nanos: AtomicU64,
    /// The running trimmer, if any: set by `set_trim_after` when it starts
    /// one, cleared by that thread itself when it ends because the period
    /// is off (both under this lock; see the module docs), or taken when the
    /// pool goes away.
    thread: Mutex<Option<Thread>>,
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
    /// thread's cache until the pool's idle bytes (`stats().bytes_retained`:
    /// the shards and every thread cache, other threads' as last published)
    /// are at most `bytes`, or until the shards and this cache are empty.
    /// Other threads' caches are counted but not touched; their credit
    /// beyond what they hold is not idle memory and does not count.
    pub(crate) fn trim_to(&self, bytes: usize) {
        let slot = self.local();
        // SAFETY: owner thread; no user code runs while `cache` lives
        // (objects carry their recorded bytes; the freed ones are dropped
        // at the end, after the last use of `cache`).
        let mut cache = slot.map(|s| unsafe { s.cache_mut() });
        if let Some(cache) = cache.as_deref_mut() {
            self.flush_all_remote(cache);
            // This cache's spare credit holds no memory: give it back, so
            // the reservation below bounds the idle bytes more closely.
            self.release_slack_all(cache);
        }
        let mut over = self
            .idle_bytes(slot, cache.as_deref())
            .saturating_sub(bytes);
        let mut doomed = Doomed::new();
        // Largest class first, across this thread's cache and every shard.
        'classes: for class in (0..self.classes.len()).rev() {
            if over == 0 {
                break;
            }
            if let Some(cache) = cache.as_deref_mut() {
                while over > 0 {
                    let Some(idle) = cache.pop(class) else {
                        break;
                    };
                    cache.credit -= idle.bytes;
                    over = over.saturating_sub(idle.bytes);
                    doomed.push(idle);
                }
            }
            for shard in self.shards.iter() {
                if over == 0 {
                    break 'classes;
                }
                if !shard.has(class) {
                    continue;
                }
                let mut locked = shard.lock();
                while over > 0 {
                    let Some(idle) = locked.pop(class) else {
                        break;
                    };
                    over = over.saturating_sub(idle.bytes);
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

    /// The idle bytes as `stats()` counts them: the shards, `own`'s cache
    /// (live) and every other thread's cache (as last published), bounded
    /// by the reservation (objects moving while this reads may be seen twice).
    fn idle_bytes(
        &self,
        own: Option<&crate::thread_cache::Slot<T>>,
        cache: Option<&crate::thread_cache::LocalCache<T>>,
    ) -> usize {
        let mut idle = cache.map_or(0, |c| c.cached);
        for slot in self.slots.lock().iter() {
            if !own.is_some_and(|own| std::ptr::eq(&**slot, own)) {
                idle = idle.saturating_add(slot.cached_bytes());
            }
        }
        for shard in self.shards.iter() {
            idle = idle.saturating_add(shard.bytes());
        }
        idle.min(self.budget.reserved())
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

    /// Sets `trim_after` (`None`: off), starting the trimmer thread if none
    /// runs. A running one is woken to read the new setting; if it already
    /// decided to end (the setting was off), it has cleared its slot under
    /// the same lock, and a new one starts here.
    pub(crate) fn set_trim_after(&self, after: Option<Duration>) {
        let nanos = after.map_or(0, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        let mut running = self.idle.thread.lock();
        self.idle.period_nanos.store(nanos, Ordering::Relaxed);
        if let Some(thread) = running.as_ref() {
            // It reads the new period when it wakes; if that is off, it
            // ends and clears the slot under this lock.
            thread.unpark();
            return;
        }
        if nanos != 0 {
            let pool = self.this.clone();
            let spawned = thread::Builder::new()
                .name("zeropool-trim".into())
                .spawn(move || trimmer(pool));
            // Without a thread the pool works as before; only idle memory
            // stays until `trim` or a lower budget (the next call retries).
            *running = spawned.ok().map(|handle| handle.thread().clone());
        }
    }

    /// Stops the trimmer (the pool is going away).
    pub(crate) fn stop_trimmer(&self) {
        let mut running = self.idle.thread.lock();
        self.idle.period_nanos.store(0, Ordering::Relaxed);
        if let Some(thread) = running.take() {
            // Never join: the last strong reference may be dropped by the
            // trimmer itself. It finds the pool gone and ends.
            thread.unpark();
        }
    }

    /// Gives back all of this cache's slack credit.
    fn release_slack_all(&self, cache: &mut crate::thread_cache::LocalCache<T>) {
        self.budget.release(cache.credit - cache.cached);
        cache.credit = cache.cached;
    }
}

/// The trimmer thread: a pass every `trim_after`, until the pool is gone or
/// the setting is off. It holds a strong reference only while it reads the
/// setting or makes a pass, never while it waits.
fn trimmer<T: Poolable>(pool: Weak<Inner<T>>) {
    let me = thread::current().id();
    let mut last = Instant::now();
    loop {
        let Some(inner) = pool.upgrade() else { return };
        let period = match inner.idle.period() {
            Some(period) => period,
            None => {
                // Off: end, unless it was turned on again meanwhile. Deciding
                // under the lock `set_trim_after` takes means it either sees
                // this thread still registered (and this thread then sees its
                // period here), or sees the slot cleared and starts another.
                let mut running = inner.idle.thread.lock();
                match inner.idle.period() {
                    Some(period) => period,
                    None => {
                        if running.as_ref().is_some_and(|t| t.id() == me) {
                            *running = None;
                        }
                        drop(running);
                        return;
                    }
                }
            }
        };
        // Woken early (a new setting, a spurious wake-up): wait out the rest,
        // so nothing idle for less than a whole period is freed.
        let since = last.elapsed();
        if since < period {
            drop(inner);
            thread::park_timeout(period - since);
            continue;
        }
        inner.trim_idle();
        last = Instant::now();
    }
}
