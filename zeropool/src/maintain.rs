//! Whole-pool upkeep: trimming, budget changes, thread caches catching up,
//! thread exit and pool drop.
//!
//! ```text
//! trim() / set_max_total_memory() ─ bump epoch ─ act on every shard now
//!                                               ─ act on this thread's cache now
//!                      other threads' caches ─ see the new epoch at their next
//!                                              operation ─ catch_up()
//! thread exit ─ retire_slot(): cached objects -> home shard, credit -> budget,
//!               counters -> the pool's retired set
//! ```
//! Objects to free are gathered in a [`Doomed`] while caches are borrowed
//! and shards locked, and dropped (each `Drop` a user callback, its panic
//! caught and counted) only after those end. A reload holds the config lock
//! while it applies a budget: it passes its own `Doomed`, freed after it
//! unlocks.

use crate::idle_object::Doomed;
use crate::pool::Inner;
use crate::stats::{Ev, Hit};
use crate::sync::Ordering;
use crate::thread_cache::Slot;
use crate::Poolable;

impl<T: Poolable> Inner<T> {
    /// Brings this thread's cache up to date with the pool: drops everything
    /// after a `trim`, moves objects above a lowered cache size to the home
    /// shard, returns unused credit, and frees cached objects (largest class
    /// first) while the budget is over its limit. Objects to free go to
    /// `doomed`, which the caller drops after its borrows end.
    pub(crate) fn catch_up(&self, slot: &Slot<T>, doomed: &mut Doomed<T>) {
        let epoch = self.epoch.load(Ordering::Acquire);
        // SAFETY: owner thread; no user code runs while `cache` lives
        // (objects move with their recorded bytes; freed ones go to
        // `doomed`, which the caller drops after its borrows end).
        let cache = unsafe { slot.cache_mut() };
        if cache.epoch == epoch {
            return;
        }
        cache.epoch = epoch;
        // Objects waiting to travel home go now: the shards are where
        // trimming and budget changes act.
        self.flush_all_remote(cache);
        let before = doomed.mark();
        let trim_gen = self.trim_gen.load(Ordering::Acquire);
        if cache.trim_gen != trim_gen {
            cache.trim_gen = trim_gen;
            doomed.extend(cache.take_all().0);
        }
        let limit = self.tls_cache_size.load(Ordering::Relaxed);
        if cache.limit < limit {
            // Stacks in use grow now, so hot-path pushes never allocate.
            for stack in cache.stacks.iter_mut().filter(|s| s.capacity() != 0) {
                stack.reserve_exact(limit - stack.len());
            }
        }
        cache.limit = limit;
        for class in 0..cache.stacks.len() {
            let over = cache.stacks[class].len().saturating_sub(limit);
            if over > 0 {
                let (run, bytes) = cache.take_oldest(class, over);
                cache.credit -= bytes;
                self.shards[cache.home].lock().push_run(class, run);
            }
        }
        self.budget.release(cache.credit - cache.cached);
        cache.credit = cache.cached;
        let mut excess = self.budget.excess();
        for class in (0..cache.stacks.len()).rev() {
            while excess > 0 {
                let Some(idle) = cache.pop(class) else {
                    break;
                };
                cache.credit -= idle.bytes;
                self.budget.release(idle.bytes);
                excess = excess.saturating_sub(idle.bytes);
                doomed.push(idle);
            }
        }
        if excess > 0 {
            // What is still over a lowered budget sits in the shards: runs
            // this thread (or another not yet caught up) spilled after the
            // budget change trimmed them. Free it there, or it would stay.
            self.trim_shards_to_budget(doomed);
        }
        slot.publish(cache);
        let (objects, bytes) = doomed.since(before);
        self.count_freed(Some(slot), Ev::Trimmed, objects, bytes);
    }

    /// Drops every idle object: shards and this thread's cache now, other
    /// threads' caches at their next operation (or exit).
    pub(crate) fn trim(&self) {
        crate::trace::event!(
            debug,
            idle_bytes = self.budget.reserved(),
            "trim: freeing every idle object"
        );
        self.trim_gen.fetch_add(1, Ordering::AcqRel);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let slot = self.local();
        let mut doomed = Doomed::new();
        for shard in self.shards.iter() {
            let objs = shard.lock().take_all();
            let mark = doomed.mark();
            doomed.extend(objs);
            let (objects, bytes) = doomed.since(mark);
            self.budget.release(bytes);
            self.count_freed(slot, Ev::Trimmed, objects, bytes);
        }
        if let Some(slot) = slot {
            self.catch_up(slot, &mut doomed);
        }
        self.free(slot, doomed);
    }

    /// Sets the budget; when lowered, frees idle objects from this thread's
    /// cache and the shards at once until the pool is within it.
    pub(crate) fn set_max_total_memory(&self, bytes: usize) {
        let mut doomed = Doomed::new();
        self.cut_budget(bytes, &mut doomed);
        self.free(self.local(), doomed);
    }

    /// [`set_max_total_memory`](Self::set_max_total_memory), leaving the
    /// objects to free in `doomed` for a caller that holds a lock.
    pub(crate) fn cut_budget(&self, bytes: usize, doomed: &mut Doomed<T>) {
        crate::trace::event!(info, max_total_memory = bytes, "budget changed");
        self.set_limit(bytes, false);
        let slot = self.local();
        if let Some(slot) = slot {
            self.catch_up(slot, doomed);
        }
        let mark = doomed.mark();
        self.trim_shards_to_budget(doomed);
        let (objects, bytes) = doomed.since(mark);
        self.count_freed(slot, Ev::Trimmed, objects, bytes);
    }

    /// Takes idle objects out of the shards (into `doomed`, to be counted and
    /// dropped by the caller) until the budget's reservations are within its
    /// limit again.
    fn trim_shards_to_budget(&self, doomed: &mut Doomed<T>) {
        for shard in self.shards.iter() {
            let excess = self.budget.excess();
            if excess == 0 {
                break;
            }
            let (objs, freed) = shard.lock().take_bytes(excess);
            self.budget.release(freed);
            doomed.extend(objs);
        }
    }

    /// Changes the thread-cache size; each cache adopts it at its next
    /// operation (moving objects above a lowered size to its home shard).
    pub(crate) fn set_tls_cache_size(&self, n: usize) {
        self.tls_cache_size.store(n, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Changes how many objects move between a cache and a shard at once.
    pub(crate) fn set_batch_size(&self, n: usize) {
        self.batch_size.store(n, Ordering::Relaxed);
    }

    /// Turns the counters on or off (gauges are always kept).
    pub(crate) fn set_stats(&self, on: bool) {
        self.stats_on.store(on, Ordering::Relaxed);
    }

    /// Hands a retiring thread's objects to its home shard and folds its
    /// counters into the pool. Runs on the exiting thread.
    pub(crate) fn retire_slot(&self, slot: &Slot<T>) {
        let mut doomed = Doomed::new();
        self.catch_up(slot, &mut doomed);
        {
            // SAFETY: runs on the owner thread during its exit, with a strong
            // reference to the pool; no user code runs while `cache` lives
            // (objects move with their recorded bytes).
            let cache = unsafe { slot.cache_mut() };
            self.flush_all_remote(cache);
            let mut bytes = 0;
            {
                let mut locked = self.shards[cache.home].lock();
                for class in 0..cache.stacks.len() {
                    let (run, run_bytes) = cache.take_oldest(class, usize::MAX);
                    bytes += run_bytes;
                    locked.push_run(class, run);
                }
            }
            // The cached bytes' reservation now belongs to the shard.
            self.budget.release(cache.credit - bytes);
            cache.credit = 0;
            slot.publish(cache);
            cache.stacks = Box::new([]);
        }
        // Each `Drop` here may re-enter the pool: this thread's table is
        // gone, so it takes the shard paths. A panic is caught and counted
        // (one escaping a thread-local destructor would abort).
        self.free(Some(slot), doomed);
        let mut slots = self.slots.lock();
        slots.retain(|s| !std::ptr::eq(&**s, slot));
        self.retired.absorb(slot.counters());
        let local_hits =
            slot.counters().hits_total(Hit::Tls) + slot.counters().hits_total(Hit::Shared);
        if let Some(node) = self.numa.retired_hits.get(slot.node()) {
            node.fetch_add(local_hits, Ordering::Relaxed);
        }
    }
}

impl<T: Poolable> Drop for Inner<T> {
    fn drop(&mut self) {
        self.stop_trimmer();
        // Take every idle object out first, then drop them with no lock
        // held: a `Drop` that panics is caught (the pool is going away, so
        // there is nothing left to count it in), and the others still go.
        let mut doomed: Doomed<T> = Doomed::new();
        let slots = std::mem::take(&mut *self.slots.lock());
        for slot in &slots {
            // SAFETY: no strong reference to the pool exists, so no owner
            // thread is inside a pool operation, and the thread-exit hook only
            // touches the cache after upgrading its weak reference, which now
            // fails. We are the only accessor, and no user code runs while
            // `cache` lives.
            let cache = unsafe { slot.cache_mut() };
            doomed.extend(cache.take_all().0);
            cache.stacks = Box::new([]);
            cache.credit = 0;
        }
        drop(slots);
        for shard in self.shards.iter() {
            doomed.extend(shard.lock().take_all());
        }
        if self.numa.pinned {
            crate::pool::unpin_each(&mut doomed);
        }
        let _ = doomed.free();
    }
}

/// The thread-exit hand-back against a concurrent pool drop and trim.
///
/// std's `Arc`/`Weak` and the slot's `UnsafeCell` are not loom types, so the
/// model restates the protocol `Slot: Sync` relies on around the real
/// [`Shard`](crate::shard::Shard) and [`Budget`](crate::budget::Budget):
/// the exiting thread touches its cache only after upgrading the pool's
/// strong count from non-zero (as `Weak::upgrade`), and the pool's drop
/// touches every cache only after the last strong reference went (as
/// `Arc::drop`). The cache is a loom `UnsafeCell`, so any access of it not
/// ordered by that protocol fails the model; every object must be freed
/// exactly once and the budget must end where the objects left it.
#[cfg(all(test, zeropool_loom))]
mod loom_tests {
    use crate::budget::Budget;
    use crate::idle_object::Idle;
    use crate::shard::Shard;
    use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering};
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    const BYTES: usize = 8;

    struct Model {
        /// `Arc<Inner>`'s strong count.
        strong: AtomicUsize,
        shard: Shard<u32>,
        budget: Budget,
        epoch: AtomicU64,
        /// The exiting thread's cache (its owner's, or the pool drop's).
        cache: UnsafeCell<Vec<Idle<u32>>>,
        /// Ids of the objects freed, by trim or by the pool's drop.
        freed: Mutex<Vec<u32>>,
    }

    impl Model {
        /// `Weak::upgrade`: a strong reference, unless the count is 0.
        fn upgrade(&self) -> bool {
            let mut n = self.strong.load(Ordering::Relaxed);
            loop {
                if n == 0 {
                    return false;
                }
                match self.strong.compare_exchange_weak(
                    n,
                    n + 1,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(seen) => n = seen,
                }
            }
        }

        /// `Arc::drop`: the last reference runs `Inner::drop`.
        fn release(&self) {
            if self.strong.fetch_sub(1, Ordering::Release) == 1 {
                self.strong.load(Ordering::Acquire);
                self.drop_inner();
            }
        }

        /// `Inner::drop`: every cache and shard emptied, then freed.
        fn drop_inner(&self) {
            let mut doomed: Vec<Idle<u32>> = self.cache.with_mut(|c| {
                // SAFETY: loom checks this access against every other one.
                std::mem::take(unsafe { &mut *c })
            });
            doomed.extend(self.shard.lock().take_all());
            self.freed.lock().extend(doomed.into_iter().map(|i| i.obj));
        }

        /// The slot's `ThreadExit` hook: `retire_slot` if the pool lives.
        fn thread_exit(&self) {
            if !self.upgrade() {
                return;
            }
            let _seen = self.epoch.load(Ordering::Acquire);
            let run: Vec<Idle<u32>> = self.cache.with_mut(|c| {
                // SAFETY: loom checks this access against every other one.
                std::mem::take(unsafe { &mut *c })
            });
            // The cached bytes' reservation moves with them to the shard.
            self.shard.lock().push_run(0, run);
            self.release();
        }

        /// `trim` from another thread holding a handle.
        fn trim(&self) {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            let objs = self.shard.lock().take_all();
            let bytes: usize = objs.iter().map(|i| i.bytes).sum();
            self.budget.release(bytes);
            self.freed.lock().extend(objs.into_iter().map(|i| i.obj));
            self.release();
        }
    }

    #[test]
    fn thread_exit_races_pool_drop_and_trim() {
        loom::model(|| {
            let budget = Budget::new(1 << 10, false);
            assert!(budget.try_reserve(2 * BYTES));
            let model = Arc::new(Model {
                // The user's handle and the trimming thread's.
                strong: AtomicUsize::new(2),
                shard: Shard::new(1),
                budget,
                epoch: AtomicU64::new(0),
                cache: UnsafeCell::new(vec![Idle::new(1, BYTES), Idle::new(2, BYTES)]),
                freed: Mutex::new(Vec::new()),
            });
            let exiting = {
                let m = model.clone();
                thread::spawn(move || m.thread_exit())
            };
            let trimmer = {
                let m = model.clone();
                thread::spawn(move || m.trim())
            };
            model.release();
            exiting.join().unwrap();
            trimmer.join().unwrap();
            assert_eq!(model.strong.load(Ordering::Relaxed), 0);
            let mut freed = std::mem::take(&mut *model.freed.lock());
            freed.sort_unstable();
            assert_eq!(freed, [1, 2], "every object freed exactly once");
            // Trim released what it freed; the pool's drop releases nothing
            // (the budget goes with it): never more than was reserved.
            assert!(model.budget.reserved() <= 2 * BYTES);
        });
    }
}
