//! Batch operations: many objects, each shard lock taken at most once.
//!
//! ```text
//! get_batch(sizes): route all, count what each class needs beyond this
//!                   thread's cache ─ home shard: one lock, move those runs
//!                   into the cache ─ siblings: one try_lock each ─ then hand
//!                   out in order from the cache, allocating what is missing
//! put_batch(objs):  reset each ─ this thread's cache while it has room and credit
//!                   ─ the overflow: one budget reservation, one home-shard lock
//! put_guards(gs):   as put_batch, but each guard's ticket says its class and
//!                   bytes (no detach, no adoption, no routing)
//! ```
//! `get_batch` stages the runs it takes from shards in the thread cache's
//! own stacks (briefly above `tls_cache_size`), so it needs no scratch
//! storage per object; the stacks end no fuller than they started.
//! A panic in a `reset` during `put_batch` leaves everything already taken
//! in a consistent place: the overflow collected so far is flushed by a
//! drop guard. User code (`reset`, measuring, constructors, the caller's
//! iterator, `T::drop`) never runs while the cache is borrowed or a shard
//! is locked: objects move with their recorded bytes, and guards are made
//! after the runs are taken out.

use crate::idle_object::{Doomed, Idle};
use crate::pool::{Inner, Origin, Ticket};
use crate::size_class::Route;
use crate::stats::{Ev, Hit};
use crate::thread_cache::{LocalCache, Slot};
use crate::{PoolGuard, Poolable};

impl<T: Poolable> Inner<T> {
    /// Hands out one object per requested size, in order, each passed
    /// through `wrap` (which makes the guard).
    pub(crate) fn acquire_batch<G>(
        &self,
        sizes: &[usize],
        mut make: impl FnMut((T, Ticket)) -> G,
    ) -> Vec<G> {
        // Under a cap the whole batch is charged (or waits) as one request,
        // so batches never hold part of their objects while waiting for the
        // rest; each object is then charged its class (see `capped`).
        let mut charge = BatchCharge::new(self, sizes);
        let slot = self.local();
        if let Some(slot) = slot {
            let mut doomed = Doomed::new();
            self.catch_up(slot, &mut doomed);
            self.free(Some(slot), doomed);
            if !charge.capped && !self.fixed.track {
                if let Some(class) = self.one_class(sizes) {
                    return self.acquire_run(slot, class, sizes.len(), make);
                }
            }
        }
        let mut wrap = |n: usize, (obj, mut ticket): (T, Ticket)| {
            charge.settle(n, &mut ticket);
            make((obj, ticket))
        };
        let Some(slot) = slot else {
            return sizes
                .iter()
                .map(|&n| wrap(n, self.acquire_uncapped(n)))
                .collect();
        };
        // Batches are mostly one size: route each distinct size once.
        let mut last: Option<(usize, Option<usize>)> = None;
        let mut route = |n: usize| match last {
            Some((m, class)) if m == n => class,
            _ => last.insert((n, self.classes.for_request(n))).1,
        };
        let mut wanted = vec![0usize; self.classes.len()];
        for &n in sizes {
            if let Some(class) = route(n) {
                wanted[class] += 1;
            }
        }
        // Per class, the staged objects not yet handed out, from the home
        // shard and from siblings: hits are counted as objects are handed
        // out, so a constructor that panics midway counts no get that did
        // not happen.
        let mut staged = vec![[0usize; 2]; self.classes.len()];
        {
            // SAFETY: owner thread; no user code runs while `cache` lives
            // (runs move from the shards with their recorded bytes).
            let cache = unsafe { slot.cache_mut() };
            let mut missing: Vec<usize> = wanted
                .iter()
                .zip(cache.stacks.iter())
                .map(|(&w, stack)| w.saturating_sub(stack.len()))
                .collect();
            if missing.iter().any(|&m| m > 0) {
                self.stage_from_shards(cache, &mut missing, &mut staged);
            }
        }
        // Publishes the cache when the batch ends, also if a constructor
        // panics midway (after the guards handed out so far have come back).
        let _publish = Publish { pool: self, slot };
        let mut out = Vec::with_capacity(sizes.len());
        for &n in sizes {
            let Some(class) = route(n) else {
                out.push(wrap(n, self.allocate_oversize(Some(slot), n)));
                continue;
            };
            // SAFETY: owner thread; the borrow ends before `allocate` or
            // `wrap` run (the pop reads the recorded bytes).
            let cache = unsafe { slot.cache_mut() };
            let (popped, node) = (cache.pop(class), cache.node);
            let loan = match popped {
                Some(Idle { obj, bytes }) => {
                    self.count_hit(Some(slot), class, staged_hit(&mut staged[class]));
                    (obj, Ticket::at(class, bytes, node))
                }
                None => self.allocate(Some(slot), class),
            };
            out.push(wrap(n, loan));
        }
        out
    }

    /// The class of a batch whose sizes are all one pooled size.
    fn one_class(&self, sizes: &[usize]) -> Option<usize> {
        let &first = sizes.first()?;
        if sizes.iter().any(|&n| n != first) {
            return None;
        }
        self.classes.for_request(first)
    }

    /// `get_batch` of `count` objects of one class (the usual batch),
    /// uncapped and untracked: objects go straight from the cache's stack,
    /// then from the shards' runs, into one vector (no staging), then the
    /// rest are allocated; the guards are made once no borrow or lock is
    /// held.
    fn acquire_run<G>(
        &self,
        slot: &Slot<T>,
        class: usize,
        count: usize,
        mut make: impl FnMut((T, Ticket)) -> G,
    ) -> Vec<G> {
        let mut taken: Vec<Idle<T>> = Vec::with_capacity(count);
        let node;
        {
            // SAFETY: owner thread. No user code runs while `cache` lives:
            // objects move with their recorded bytes into `taken`, and the
            // guards are made after the borrow and the locks end.
            let cache = unsafe { slot.cache_mut() };
            node = cache.node;
            let stack = &mut cache.stacks[class];
            let k = count.min(stack.len());
            taken.extend(stack.drain(stack.len() - k..).rev());
            let bytes: usize = taken.iter().map(|i| i.bytes).sum();
            cache.cached -= bytes;
            cache.objects -= k;
            self.count_hits(Some(slot), class, Hit::Tls, k);
            if k < count {
                for (step, idx) in self.take_order(cache.home, Some(node)) {
                    if !self.shards[idx].has(class) {
                        continue;
                    }
                    let Some(mut locked) = self.lock_to_take(step, idx) else {
                        continue;
                    };
                    let missing = count - taken.len();
                    let (n, bytes) = locked.pop_run(class, missing, |idle| taken.push(idle));
                    drop(locked);
                    // The run's reservation becomes credit (the slack is
                    // given back below).
                    cache.credit += bytes;
                    let hit = if step == 0 { Hit::Shared } else { Hit::Steal };
                    self.count_hits(Some(slot), class, hit, n);
                    if taken.len() == count {
                        break;
                    }
                }
            }
            slot.publish(cache);
            self.release_slack(cache);
        }
        let missing = count - taken.len();
        let mut out = Vec::with_capacity(count);
        out.extend(
            taken
                .into_iter()
                .map(|Idle { obj, bytes }| make((obj, Ticket::at(class, bytes, node)))),
        );
        for _ in 0..missing {
            out.push(make(self.allocate(Some(slot), class)));
        }
        out
    }

    /// Moves up to `missing[class]` objects of each class from the shards
    /// into this thread's cache: the home shard under one lock, then each
    /// sibling of the same node whose lock is free (the cache holds this
    /// node's objects only). The runs' reservations become credit; how many
    /// came from the home shard and from siblings goes to `staged[class]`.
    fn stage_from_shards(
        &self,
        cache: &mut LocalCache<T>,
        missing: &mut [usize],
        staged: &mut [[usize; 2]],
    ) {
        for (step, idx) in self.take_order(cache.home, Some(cache.node)) {
            let shard = &self.shards[idx];
            if !missing
                .iter()
                .enumerate()
                .any(|(c, &m)| m > 0 && shard.has(c))
            {
                continue;
            }
            let Some(mut locked) = self.lock_to_take(step, idx) else {
                continue;
            };
            let from = usize::from(step != 0);
            for (class, m) in missing.iter_mut().enumerate().filter(|(_, m)| **m > 0) {
                let (n, bytes) = locked.pop_run(class, *m, |idle| cache.push(class, idle));
                cache.credit += bytes;
                *m -= n;
                staged[class][from] += n;
            }
            if missing.iter().all(|&m| m == 0) {
                break;
            }
        }
    }

    /// Takes back many objects (adopted, as with `put`).
    pub(crate) fn recycle_batch(&self, objs: impl IntoIterator<Item = T>) {
        let objs = objs.into_iter();
        let mut back = self.batch_return(objs.size_hint().0);
        // Batches are mostly one size: route each distinct capacity once.
        let mut last: Option<(usize, Route)> = None;
        for mut obj in objs {
            let measured = match self.clean(&mut obj, Origin::Adopted) {
                Ok(measured) => measured,
                Err(panic) => {
                    self.free_after_panic(obj, panic);
                    continue;
                }
            };
            let class_bytes = measured.class_bytes;
            let route = match last {
                Some((b, route)) if b == class_bytes => route,
                _ => {
                    last.insert((class_bytes, self.classes.for_capacity(class_bytes)))
                        .1
                }
            };
            let class = match route {
                Route::Class(class) => class,
                Route::Undersize | Route::Oversize => {
                    let reason = if route == Route::Undersize {
                        Ev::Undersize
                    } else {
                        Ev::Oversize
                    };
                    self.count_origin(back.slot, Origin::Adopted);
                    self.count_freed(back.slot, reason, 1, 0);
                    let mut doomed = Doomed::new();
                    doomed.push_obj(obj, 0);
                    self.free(back.slot, doomed);
                    continue;
                }
            };
            back.adopted += 1;
            back.bytes_in = back.bytes_in.wrapping_add(measured.bytes);
            back.keep(class, Idle::new(obj, measured.bytes));
        }
    }

    /// Takes back many of this pool's guards, as their drops would (tickets
    /// kept: no detach, no adoption, no routing while the capacity is
    /// unchanged), filling this thread's cache, then the home shard under
    /// one lock. A guard that is charged, tracked, unpooled, of another
    /// pool or of another NUMA node is simply dropped: its own return.
    pub(crate) fn release_batch<'a>(&'a self, guards: impl IntoIterator<Item = PoolGuard<'a, T>>) {
        let guards = guards.into_iter();
        let back = self.batch_return(guards.size_hint().0);
        let node = back.slot.map(|slot| {
            // SAFETY: owner thread; a copy of one field, no borrow kept.
            unsafe { slot.cache_mut() }.node
        });
        let numa = self.numa.active;
        let plain = |t: &Ticket| {
            !t.charged
                & (t.track == 0)
                & (t.class < Ticket::UNDERSIZE)
                & (!numa || node == Some(t.node as usize))
        };
        let mut back = back;
        for guard in guards {
            let (mut obj, ticket) = match guard.into_loan_if(self, plain) {
                Ok(loan) => loan,
                Err(guard) => {
                    drop(guard);
                    continue;
                }
            };
            let origin = Origin::Returned(ticket);
            let measured = match self.clean(&mut obj, origin) {
                Ok(measured) => measured,
                Err(panic) => {
                    self.free_after_panic(obj, panic);
                    continue;
                }
            };
            match self.route(back.slot, measured, origin) {
                Some(class) => back.keep(class, Idle::new(obj, measured.bytes)),
                None => {
                    let mut doomed = Doomed::new();
                    doomed.push_obj(obj, measured.bytes);
                    self.free(back.slot, doomed);
                }
            }
        }
    }

    /// The collector of a batch return, after this thread's cache caught up
    /// with the pool's epoch.
    fn batch_return(&self, hint: usize) -> Overflow<'_, T> {
        let slot = self.local();
        if let Some(slot) = slot {
            let mut doomed = Doomed::new();
            self.catch_up(slot, &mut doomed);
            self.free(Some(slot), doomed);
        }
        Overflow {
            pool: self,
            slot,
            items: Vec::with_capacity(hint),
            adopted: 0,
            bytes_in: 0,
        }
    }
}

/// Where the next object popped from the cache for a batch comes from,
/// given `staged` ([home shard, siblings]) still to hand out: the siblings'
/// runs were pushed last, then the home shard's, above what the cache held.
fn staged_hit(staged: &mut [usize; 2]) -> Hit {
    if staged[1] > 0 {
        staged[1] -= 1;
        Hit::Steal
    } else if staged[0] > 0 {
        staged[0] -= 1;
        Hit::Shared
    } else {
        Hit::Tls
    }
}

/// Publishes a batch's thread cache for `stats()` and gives back the staged
/// runs' slack credit when dropped (also during a panic).
struct Publish<'a, T: Poolable> {
    pool: &'a Inner<T>,
    slot: &'a Slot<T>,
}

impl<T: Poolable> Drop for Publish<'_, T> {
    fn drop(&mut self) {
        // SAFETY: owner thread (the batch's); no other borrow of the cache
        // is alive (the guards made so far are returned, or were dropped
        // first while unwinding), and no user code runs while this one lives.
        let cache = unsafe { self.slot.cache_mut() };
        self.slot.publish(cache);
        // Staged runs' credit is now slack: keep one chunk at most.
        self.pool.release_slack(cache);
    }
}

/// A batch's charge under the outstanding cap: taken whole up front, then
/// settled object by object; whatever was not settled when it is dropped
/// (a constructor panicked mid-batch) is given back.
struct BatchCharge<'a, T: Poolable> {
    pool: &'a Inner<T>,
    /// Bytes charged and not yet settled against an object.
    unsettled: usize,
    capped: bool,
}

impl<'a, T: Poolable> BatchCharge<'a, T> {
    fn new(pool: &'a Inner<T>, sizes: &[usize]) -> Self {
        let capped = pool.gate.cap() != crate::gate::NO_CAP;
        let mut unsettled = 0;
        if capped {
            let requests: Vec<usize> = sizes.iter().map(|&n| pool.expected_charge(n)).collect();
            let total = requests.iter().fold(0usize, |a, &b| a.saturating_add(b));
            pool.charge_batch(&requests, total);
            unsettled = total;
        }
        Self {
            pool,
            unsettled,
            capped,
        }
    }

    /// Moves the charge of one request of `n` bytes onto its ticket.
    fn settle(&mut self, n: usize, ticket: &mut Ticket) {
        if !self.capped {
            return;
        }
        let expected = self.pool.expected_charge(n);
        self.unsettled -= expected;
        self.pool.settle_charge(expected, ticket);
    }
}

impl<T: Poolable> Drop for BatchCharge<'_, T> {
    fn drop(&mut self) {
        self.pool.gate.discharge(self.unsettled);
    }
}

/// Objects of a `put_batch` that did not fit the thread cache; flushed to
/// the home shard under one lock when dropped (also during a panic).
struct Overflow<'a, T: Poolable> {
    pool: &'a Inner<T>,
    slot: Option<&'a Slot<T>>,
    items: Vec<(usize, Idle<T>)>,
    /// Objects (and their bytes) taken into the pool's care so far.
    adopted: usize,
    bytes_in: usize,
}

impl<T: Poolable> Overflow<'_, T> {
    /// Keeps a clean object of `class`: in this thread's cache while it has
    /// room and credit, else for the home shard.
    #[inline(always)]
    fn keep(&mut self, class: usize, idle: Idle<T>) {
        if let Some(slot) = self.slot {
            // SAFETY: owner thread; no user code runs while `cache` lives.
            let cache = unsafe { slot.cache_mut() };
            if cache.stacks[class].len() < cache.limit && idle.bytes <= cache.credit - cache.cached
            {
                cache.push(class, idle);
                slot.publish(cache);
                return;
            }
        }
        self.items.push((class, idle));
    }
}

impl<T: Poolable> Drop for Overflow<'_, T> {
    fn drop(&mut self) {
        let pool = self.pool;
        pool.count_adopted(self.slot, self.adopted);
        pool.budget.care_in(0, self.bytes_in);
        if self.items.is_empty() {
            return;
        }
        // Saturating: an absurd `capacity_bytes` must not overflow (it cannot
        // be reserved, so it is freed below).
        let total = (self.items.iter()).fold(0usize, |t, (_, i)| t.saturating_add(i.bytes));
        let mut keep = std::mem::take(&mut self.items);
        let mut doomed = Doomed::new();
        if !pool.budget.try_reserve(total) {
            // Keep what fits, smallest first, reserving one object at a time.
            keep.sort_unstable_by_key(|(_, i)| i.bytes);
            let mut kept = Vec::with_capacity(keep.len());
            for (class, idle) in keep {
                if pool.budget.try_reserve(idle.bytes) {
                    kept.push((class, idle));
                } else {
                    doomed.push(idle);
                }
            }
            keep = kept;
        }
        let home = self.slot.map_or(0, |s| {
            // SAFETY: owner thread; a copy of one field, no borrow kept.
            unsafe { s.cache_mut() }.home
        });
        pool.shards[home].lock().push_mixed(keep);
        pool.count_freed(self.slot, Ev::Discards, doomed.len(), doomed.bytes());
        if doomed.len() != 0 {
            crate::trace::event!(
                debug,
                objects = doomed.len(),
                bytes = doomed.bytes(),
                "put_batch: the idle budget is full"
            );
        }
        pool.free(self.slot, doomed);
    }
}
