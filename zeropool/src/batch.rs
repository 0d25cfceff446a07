//! Batch operations: many objects, each shard lock taken at most once.
//!
//! ```text
//! get_batch(sizes): route all ─ serve from this thread's cache
//!                   ─ misses sorted by class ─ home shard: one lock, pop them all
//!                   ─ still missing ─ each sibling: one try_lock ─ allocate the rest
//! put_batch(objs):  reset each ─ this thread's cache while it has room and credit
//!                   ─ the overflow: one budget reservation, one home-shard lock
//! ```
//! A panic in a `reset` during `put_batch` leaves everything already taken
//! in a consistent place: the overflow collected so far is flushed by a
//! drop guard.

use crate::pool::{Inner, Origin, Ticket};
use crate::recycle::resume;
use crate::stats::{Ev, Hit};
use crate::thread_cache::Slot;
use crate::Poolable;

impl<T: Poolable> Inner<T> {
    /// Hands out one object per requested size, in order.
    pub(crate) fn acquire_batch(&self, sizes: &[usize]) -> Vec<(T, Ticket)> {
        let mut out: Vec<Option<(T, Ticket)>> = Vec::with_capacity(sizes.len());
        out.resize_with(sizes.len(), || None);
        let slot = self.local();
        let mut doomed = Vec::new();
        if let Some(slot) = slot {
            self.catch_up(slot, &mut doomed);
        }
        // (index, class) of what the thread cache could not serve.
        let mut pending: Vec<(usize, usize)> = Vec::new();
        {
            // SAFETY: owner thread; no user code runs while `cache` lives.
            let mut cache = slot.map(|s| unsafe { s.cache_mut() });
            for (i, &n) in sizes.iter().enumerate() {
                let Some(class) = self.classes.for_request(n) else {
                    continue;
                };
                match cache.as_mut().and_then(|c| c.pop(class)) {
                    Some((obj, bytes)) => {
                        out[i] = Some((obj, Ticket::new(class, bytes)));
                        self.count_hit(slot, class, Hit::Tls, bytes);
                    }
                    None => pending.push((i, class)),
                }
            }
            if let (Some(slot), Some(cache)) = (slot, cache) {
                slot.publish(cache);
            }
        }
        drop(doomed);
        if !pending.is_empty() {
            pending.sort_unstable_by_key(|&(_, class)| class);
            let home = slot.map_or(0, |s| {
                // SAFETY: owner thread; a copy of one field, no borrow kept.
                unsafe { s.cache_mut() }.home
            });
            self.take_from_shards(slot, home, &mut pending, &mut out);
        }
        for (i, &n) in sizes.iter().enumerate() {
            if out[i].is_none() {
                out[i] = Some(match self.classes.for_request(n) {
                    Some(class) => self.allocate(slot, class),
                    None => self.allocate_oversize(slot, n),
                });
            }
        }
        out.into_iter()
            .map(|o| o.expect("every index was filled"))
            .collect()
    }

    /// Serves `pending` from the home shard (blocking lock) and then each
    /// sibling (`try_lock`), one lock per shard.
    fn take_from_shards(
        &self,
        slot: Option<&Slot<T>>,
        home: usize,
        pending: &mut Vec<(usize, usize)>,
        out: &mut [Option<(T, Ticket)>],
    ) {
        for step in 0..self.shards.len() {
            if pending.is_empty() {
                break;
            }
            let shard = &self.shards[(home + step) % self.shards.len()];
            if !pending.iter().any(|&(_, class)| shard.has(class)) {
                continue;
            }
            let locked = if step == 0 {
                Some(shard.lock())
            } else {
                shard.try_lock()
            };
            let Some(mut locked) = locked else { continue };
            let mut released = 0;
            let mut served: Vec<(usize, usize, usize)> = Vec::new();
            pending.retain(|&(i, class)| match locked.pop(class, T::capacity_bytes) {
                Some((obj, bytes)) => {
                    released += bytes;
                    out[i] = Some((obj, Ticket::new(class, bytes)));
                    served.push((i, class, bytes));
                    false
                }
                None => true,
            });
            drop(locked);
            self.budget.release(released);
            let hit = if step == 0 { Hit::Shared } else { Hit::Steal };
            for (_, class, bytes) in served {
                self.count_hit(slot, class, hit, bytes);
            }
        }
    }

    /// Takes back many objects (adopted, as with `put`).
    pub(crate) fn recycle_batch(&self, objs: impl IntoIterator<Item = T>) {
        let slot = self.local();
        let mut overflow = Overflow {
            pool: self,
            slot,
            items: Vec::new(),
        };
        if let Some(slot) = slot {
            let mut doomed = Vec::new();
            self.catch_up(slot, &mut doomed);
            drop(doomed);
        }
        for mut obj in objs {
            if let Err(panic) = self.clean(&mut obj, Origin::Adopted) {
                drop(obj);
                resume(panic);
                continue;
            }
            let Some((class, bytes)) = self.route(slot, &obj, Origin::Adopted) else {
                drop(obj);
                continue;
            };
            self.count_origin(slot, Origin::Adopted);
            if let Some(slot) = slot {
                // SAFETY: owner thread; no user code runs while `cache` lives.
                let cache = unsafe { slot.cache_mut() };
                if cache.stacks[class].len() < cache.limit && cache.cached + bytes <= cache.credit {
                    cache.push(class, obj, bytes);
                    slot.publish(cache);
                    continue;
                }
            }
            overflow.items.push((obj, class, bytes));
        }
        drop(overflow);
    }
}

/// Objects of a `put_batch` that did not fit the thread cache; flushed to
/// the home shard under one lock when dropped (also during a panic).
struct Overflow<'a, T: Poolable> {
    pool: &'a Inner<T>,
    slot: Option<&'a Slot<T>>,
    items: Vec<(T, usize, usize)>,
}

impl<T: Poolable> Drop for Overflow<'_, T> {
    fn drop(&mut self) {
        if self.items.is_empty() {
            return;
        }
        let pool = self.pool;
        let total: usize = self.items.iter().map(|&(_, _, b)| b).sum();
        let mut keep = std::mem::take(&mut self.items);
        let mut doomed = Vec::new();
        if !pool.budget.try_reserve(total) {
            // Keep what fits, smallest first, reserving one object at a time.
            keep.sort_unstable_by_key(|&(_, _, b)| b);
            let mut kept = Vec::with_capacity(keep.len());
            for item in keep {
                if pool.budget.try_reserve(item.2) {
                    kept.push(item);
                } else {
                    doomed.push(item.0);
                }
            }
            keep = kept;
        }
        let home = self.slot.map_or(0, |s| {
            // SAFETY: owner thread; a copy of one field, no borrow kept.
            unsafe { s.cache_mut() }.home
        });
        {
            let mut locked = pool.shards[home].lock();
            for (obj, class, bytes) in keep {
                locked.push(class, obj, bytes);
            }
        }
        pool.count_freed(self.slot, Ev::Discards, doomed.len());
        drop(doomed);
    }
}
