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
    pub(crate) fn catch_up(&self, slot: &Slot<T>, doomed: &mut Vec<T>) {
        let epoch = self.epoch.load(Ordering::Acquire);
        // SAFETY: owner thread; no user code runs while `cache` lives.
        let cache = unsafe { slot.cache_mut() };
        if cache.epoch == epoch {
            return;
        }
        cache.epoch = epoch;
        // Objects waiting to travel home go now: the shards are where
        // trimming and budget changes act.
        self.flush_all_remote(cache);
        let before = doomed.len();
        let trim_gen = self.trim_gen.load(Ordering::Acquire);
        if cache.trim_gen != trim_gen {
            cache.trim_gen = trim_gen;
            doomed.append(&mut cache.take_all().0);
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
                let mut locked = self.shards[cache.home].lock();
                for obj in run {
                    let b = obj.capacity_bytes();
                    locked.push(class, obj, b);
                }
            }
        }
        self.budget.release(cache.credit - cache.cached);
        cache.credit = cache.cached;
        let mut excess = self.budget.excess();
        for class in (0..cache.stacks.len()).rev() {
            while excess > 0 {
                let Some((obj, b)) = cache.pop(class) else {
                    break;
                };
                cache.credit -= b;
                self.budget.release(b);
                excess = excess.saturating_sub(b);
                doomed.push(obj);
            }
        }
        if excess > 0 {
            // What is still over a lowered budget sits in the shards: runs
            // this thread (or another not yet caught up) spilled after the
            // budget change trimmed them. Free it there, or it would stay.
            self.trim_shards_to_budget(doomed);
        }
        slot.publish(cache);
        let bytes = doomed[before..].iter().map(T::capacity_bytes).sum();
        self.count_freed(Some(slot), Ev::Trimmed, doomed.len() - before, bytes);
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
        for shard in self.shards.iter() {
            let (objs, bytes) = shard.lock().take_all();
            self.budget.release(bytes);
            self.count_freed(slot, Ev::Trimmed, objs.len(), bytes);
            drop(objs);
        }
        if let Some(slot) = slot {
            let mut doomed = Vec::new();
            self.catch_up(slot, &mut doomed);
            drop(doomed);
        }
    }

    /// Sets the budget; when lowered, frees idle objects from this thread's
    /// cache and the shards at once until the pool is within it.
    pub(crate) fn set_max_total_memory(&self, bytes: usize) {
        crate::trace::event!(info, max_total_memory = bytes, "budget changed");
        self.set_limit(bytes, false);
        let slot = self.local();
        if let Some(slot) = slot {
            let mut doomed = Vec::new();
            self.catch_up(slot, &mut doomed);
            drop(doomed);
        }
        let mut doomed = Vec::new();
        self.trim_shards_to_budget(&mut doomed);
        let bytes = doomed.iter().map(T::capacity_bytes).sum();
        self.count_freed(slot, Ev::Trimmed, doomed.len(), bytes);
        drop(doomed);
    }

    /// Takes idle objects out of the shards (into `doomed`, to be counted and
    /// dropped by the caller) until the budget's reservations are within its
    /// limit again.
    fn trim_shards_to_budget(&self, doomed: &mut Vec<T>) {
        for shard in self.shards.iter() {
            let excess = self.budget.excess();
            if excess == 0 {
                break;
            }
            let (objs, freed) = shard.lock().take_bytes(excess, T::capacity_bytes);
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
        let mut doomed = Vec::new();
        self.catch_up(slot, &mut doomed);
        {
            // SAFETY: runs on the owner thread during its exit, with a strong
            // reference to the pool; no user code runs while `cache` lives.
            let cache = unsafe { slot.cache_mut() };
            self.flush_all_remote(cache);
            let mut bytes = 0;
            {
                let mut locked = self.shards[cache.home].lock();
                for class in 0..cache.stacks.len() {
                    let (run, run_bytes) = cache.take_oldest(class, usize::MAX);
                    bytes += run_bytes;
                    for obj in run {
                        let b = obj.capacity_bytes();
                        locked.push(class, obj, b);
                    }
                }
            }
            // The cached bytes' reservation now belongs to the shard.
            self.budget.release(cache.credit - bytes);
            cache.credit = 0;
            slot.publish(cache);
            cache.stacks = Box::new([]);
        }
        drop(doomed);
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
        for slot in self.slots.lock().drain(..) {
            // SAFETY: no strong reference to the pool exists, so no owner
            // thread is inside a pool operation, and the thread-exit hook only
            // touches the cache after upgrading its weak reference, which now
            // fails. We are the only accessor.
            let cache = unsafe { slot.cache_mut() };
            let (objs, _) = cache.take_all();
            let remote = std::mem::take(&mut cache.remote);
            cache.stacks = Box::new([]);
            cache.credit = 0;
            drop(objs);
            drop(remote);
        }
    }
}
