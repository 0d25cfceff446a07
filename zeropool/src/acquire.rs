//! The get path: thread cache, then shards, then the allocator.
//!
//! ```text
//! acquire(n) ─ class of n ─ this thread's cache ── hit (no lock, no RMW) ─► (obj, ticket)
//!                │ none         │ miss
//!                │              ▼
//!                │           catch_up (epoch changed?) ─ home shard: lock, take a batch
//!                │              ─ siblings: has(class)? try_lock, take a batch (steal)
//!                │              ─ allocate with_capacity_hint(class size)
//!                ▼
//!             oversize: allocate exactly n, ticket marks it to be freed on return
//! ```
//! User code (the constructor, `spare_heap`, `capacity_bytes`, `class_bytes`)
//! runs only on a fresh object, before it is counted and with no borrow or
//! lock held; cached and shard objects carry the bytes recorded for them.

use crate::idle_object::{drop_each, Doomed, Idle};
use crate::pool::{Inner, Ticket};
use crate::shard::Locked;
use crate::stats::Hit;
use crate::sync::Ordering;
use crate::thread_cache::{LocalCache, Slot};
use crate::Poolable;
use std::panic::{self, AssertUnwindSafe};

/// A fresh object's measurements, taken once.
struct Fresh {
    bytes: usize,
    class_bytes: usize,
    node: usize,
}

impl<T: Poolable> Inner<T> {
    /// Hands out an object of at least `n` bytes, under the outstanding
    /// cap if there is one.
    #[inline(always)]
    pub(crate) fn acquire(&self, n: usize) -> (T, Ticket) {
        if self.gate.cap() != crate::gate::NO_CAP {
            return self.acquire_capped(n);
        }
        self.acquire_uncapped(n)
    }

    /// Hands out an object of at least `n` bytes, ignoring any cap.
    #[inline(always)]
    pub(crate) fn acquire_uncapped(&self, n: usize) -> (T, Ticket) {
        let Some(class) = self.classes.for_request(n) else {
            return self.acquire_oversize(n);
        };
        let Some(slot) = self.local() else {
            return self.acquire_unlocal(class);
        };
        {
            // SAFETY: this thread owns `slot`; no user code runs while
            // `cache` lives (the pop reads the recorded bytes).
            let cache = unsafe { slot.cache_mut() };
            if self.current(cache) {
                if let Some(Idle { obj, bytes }) = cache.pop(class) {
                    slot.publish(cache);
                    self.count_hit(Some(slot), class, Hit::Tls);
                    return (obj, Ticket::at(class, bytes, cache.node));
                }
            }
        }
        self.acquire_slow(slot, class)
    }

    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, slot: &Slot<T>, class: usize) -> (T, Ticket) {
        let mut doomed = Doomed::new();
        self.catch_up(slot, &mut doomed);
        let found = {
            // SAFETY: owner thread; no user code runs while `cache` lives
            // (objects move with their recorded bytes; `doomed` is freed
            // after the borrow ends).
            let cache = unsafe { slot.cache_mut() };
            self.follow_thread(slot, cache);
            // Credit freed by hot-path gets is given back here, off the hot
            // path: until then it is bounded by what the stacks held.
            if cache.credit - cache.cached > 2 * self.chunk() {
                self.release_slack(cache);
            }
            match cache.pop(class) {
                Some(Idle { obj, bytes }) => {
                    slot.publish(cache);
                    Some((obj, bytes, Hit::Tls, cache.node))
                }
                None => self.refill(slot, cache, class),
            }
        };
        self.free(Some(slot), doomed);
        match found {
            Some((obj, bytes, hit, node)) => {
                self.count_hit(Some(slot), class, hit);
                (obj, Ticket::at(class, bytes, node))
            }
            None => self.allocate(Some(slot), class),
        }
    }

    /// Takes a run of `class` from the home shard, else from a sibling whose
    /// lock is free (same node first); returns one object (with its home
    /// node) and caches the rest. From another node's shard it takes one
    /// object only: the cache holds this node's objects alone.
    fn refill(
        &self,
        slot: &Slot<T>,
        cache: &mut LocalCache<T>,
        class: usize,
    ) -> Option<(T, usize, Hit, usize)> {
        let limit = cache.limit;
        let batch = self
            .batch_size
            .load(Ordering::Relaxed)
            .clamp(1, limit.max(1));
        for (step, idx) in self.take_order(cache.home, None) {
            if !self.shards[idx].has(class) {
                continue;
            }
            let Some(mut locked) = self.lock_to_take(step, idx) else {
                continue;
            };
            let Some(Idle {
                obj: first,
                bytes: first_bytes,
            }) = locked.pop(class)
            else {
                continue;
            };
            let node = if self.numa.active {
                self.numa.map.node_of_shard(idx)
            } else {
                0
            };
            let room = limit.saturating_sub(cache.stacks[class].len());
            let want = if node == cache.node {
                (batch - 1).min(room)
            } else {
                0
            };
            let (_, moved) = locked.pop_run(class, want, |idle| cache.push(class, idle));
            drop(locked);
            // The run's reservation becomes this cache's credit; the object
            // handed out leaves the budget.
            cache.credit += moved;
            slot.publish(cache);
            self.budget.release(first_bytes);
            let hit = if step == 0 { Hit::Shared } else { Hit::Steal };
            return Some((first, first_bytes, hit, node));
        }
        None
    }

    /// The shards a thread whose home is `home` takes from, in order, with
    /// their step: the home shard first, then its siblings in steal order
    /// (only those of NUMA node `node`, if given).
    pub(crate) fn take_order(
        &self,
        home: usize,
        node: Option<usize>,
    ) -> impl Iterator<Item = (usize, usize)> + '_ {
        std::iter::once(home)
            .chain(self.numa.map.steal_order(home))
            .filter(move |&idx| match node {
                Some(node) if self.numa.active => self.numa.map.node_of_shard(idx) == node,
                _ => true,
            })
            .enumerate()
    }

    /// Locks shard `idx` at `step` of [`take_order`](Self::take_order):
    /// the home shard (step 0) is waited for; a sibling whose lock is busy
    /// is skipped (`None`).
    pub(crate) fn lock_to_take(&self, step: usize, idx: usize) -> Option<Locked<'_, T>> {
        let shard = &self.shards[idx];
        if step == 0 {
            Some(shard.lock())
        } else {
            shard.try_lock()
        }
    }

    /// Builds a fresh object for `class`.
    pub(crate) fn allocate(&self, slot: Option<&Slot<T>>, class: usize) -> (T, Ticket) {
        let (obj, fresh) = self.build(slot, self.classes.size(class));
        // No user code from here on: the object is measured.
        self.budget.care_in(1, fresh.bytes);
        self.count_hit(slot, class, Hit::Alloc);
        if fresh.class_bytes < self.classes.size(class) {
            // It cannot serve its class, so it must not come back to it.
            return (
                obj,
                Ticket {
                    bytes: fresh.bytes,
                    class: Ticket::UNDERSIZE,
                    charged: false,
                    node: 0,
                    track: 0,
                },
            );
        }
        (obj, Ticket::at(class, fresh.bytes, fresh.node))
    }

    /// Builds an object for a request larger than every class.
    pub(crate) fn allocate_oversize(&self, slot: Option<&Slot<T>>, n: usize) -> (T, Ticket) {
        let (obj, fresh) = self.build(slot, n);
        self.budget.care_in(1, fresh.bytes);
        self.count_hit(slot, self.classes.len(), Hit::Alloc);
        (obj, Ticket::oversize(fresh.bytes))
    }

    /// Runs the user code a fresh object needs, before the pool counts it
    /// and with no borrow or lock held: the constructor, NUMA placement
    /// (`spare_heap`), then one measurement. If a method panics, the object
    /// is dropped (a panicking `Drop` caught, so no double panic aborts) and
    /// the panic continues with nothing counted.
    #[inline(never)]
    fn build(&self, slot: Option<&Slot<T>>, hint: usize) -> (T, Fresh) {
        let mut obj = T::with_capacity_hint(hint);
        let measured = panic::catch_unwind(AssertUnwindSafe(|| {
            let thread_node = slot.map_or_else(|| self.numa.current_node(), Slot::node);
            let node = self.numa.place(&mut obj, thread_node);
            Fresh {
                bytes: obj.capacity_bytes(),
                class_bytes: obj.class_bytes(),
                node,
            }
        }));
        match measured {
            Ok(fresh) => (obj, fresh),
            Err(payload) => {
                let _ = drop_each([obj]);
                panic::resume_unwind(payload)
            }
        }
    }

    #[cold]
    fn acquire_oversize(&self, n: usize) -> (T, Ticket) {
        self.allocate_oversize(self.local(), n)
    }

    /// The path for a thread whose local table is gone: shards only.
    #[cold]
    fn acquire_unlocal(&self, class: usize) -> (T, Ticket) {
        let popped = self.shards[0].lock().pop(class);
        if let Some(Idle { obj, bytes }) = popped {
            self.budget.release(bytes);
            self.count_hit(None, class, Hit::Shared);
            let node = if self.numa.active {
                self.numa.map.node_of_shard(0)
            } else {
                0
            };
            return (obj, Ticket::at(class, bytes, node));
        }
        self.allocate(None, class)
    }

    /// Gives back credit beyond one chunk of slack.
    pub(crate) fn release_slack(&self, cache: &mut LocalCache<T>) {
        let keep = cache.cached + self.chunk();
        if cache.credit > keep {
            self.budget.release(cache.credit - keep);
            cache.credit = keep;
        }
    }
}
