//! The pool's shared state and the paths an object travels.
//!
//! ```text
//! get(n) ─ class of n ─┬─ this thread's cache ── hit ──────────────────────────> guard
//!                      └─ miss ─ home shard (batch) ─ sibling shards (try_lock) ─ allocate
//! drop(guard) ─ wipe? ─ reset ─ class of capacity ─┬─ this thread's cache (credit covers it)
//!                                                  └─ full: spill a batch to the home shard
//!                                                     no credit and no budget: free (discard)
//! ```
//! The hot path (a hit in the thread cache, and a return into it) takes no
//! lock and makes no atomic read-modify-write: a thread-local table lookup,
//! one relaxed load of the pool epoch, a `Vec` pop or push, and relaxed
//! stores of the thread's own counters.

use crate::budget::Budget;
use crate::local::{self, Lookup, PoolId, ThreadExit};
use crate::shard::Shard;
use crate::size_class::{Route, SizeClasses};
use crate::stats::{Counters, Ev, Hit};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::thread_cache::{LocalCache, Slot};
use crate::Poolable;
use crossbeam_utils::CachePadded;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Weak};

/// What a guard remembers about its object for the return trip.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    /// Capacity in bytes when handed out (what `bytes_outstanding` counted).
    pub(crate) bytes: usize,
    /// An oversize request: freed on return, never cached.
    pub(crate) oversize: bool,
}

/// How an object comes back to the pool.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin {
    /// A guard was dropped; its ticket's bytes.
    Returned(usize),
    /// `put`: an object from outside (or detached earlier).
    Adopted,
}

/// Settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Fixed {
    pub(crate) shards: usize,
    pub(crate) classes: Vec<usize>,
    pub(crate) wipe_on_return: bool,
}

/// The state every handle and owned guard of one pool shares.
#[derive(Debug)]
pub(crate) struct Inner<T: Poolable> {
    ident: PoolId,
    this: Weak<Inner<T>>,
    pub(crate) classes: SizeClasses,
    pub(crate) shards: Box<[Shard<T>]>,
    shard_mask: usize,
    pub(crate) budget: Budget,
    /// Bumped whenever thread caches must catch up (trim, lowered budget,
    /// changed cache size).
    epoch: CachePadded<AtomicU64>,
    trim_gen: AtomicU64,
    pub(crate) slots: Mutex<Vec<Arc<Slot<T>>>>,
    /// Counters of exited threads and of paths without a thread cache.
    pub(crate) retired: Counters,
    pub(crate) tls_cache_size: AtomicUsize,
    pub(crate) batch_size: AtomicUsize,
    pub(crate) stats_on: AtomicBool,
    pub(crate) fixed: Fixed,
    /// Credit a thread cache reserves beyond what it needs, and keeps.
    chunk: usize,
}

impl<T: Poolable> Inner<T> {
    pub(crate) fn new(
        fixed: Fixed,
        tls_cache_size: usize,
        batch_size: usize,
        max_total_memory: usize,
        stats: bool,
    ) -> Arc<Self> {
        let classes = SizeClasses::new(&fixed.classes);
        let n = classes.len();
        Arc::new_cyclic(|this| Inner {
            ident: PoolId::new(),
            this: this.clone(),
            shards: (0..fixed.shards).map(|_| Shard::new(n)).collect(),
            shard_mask: fixed.shards - 1,
            budget: Budget::new(max_total_memory),
            epoch: CachePadded::new(AtomicU64::new(0)),
            trim_gen: AtomicU64::new(0),
            slots: Mutex::new(Vec::new()),
            retired: Counters::new(n),
            tls_cache_size: AtomicUsize::new(tls_cache_size),
            batch_size: AtomicUsize::new(batch_size),
            stats_on: AtomicBool::new(stats),
            chunk: credit_chunk(max_total_memory),
            classes,
            fixed,
        })
    }

    // ----- thread slot -------------------------------------------------

    /// This thread's slot, registering one on first use; `None` while the
    /// thread is exiting.
    #[inline(always)]
    pub(crate) fn local(&self) -> Option<&Slot<T>> {
        match local::lookup(self.ident.index, self.ident.id) {
            // SAFETY: the pointer came from `Arc::as_ptr` of an `Arc<Slot<T>>`
            // this pool registered under its unique id (so `T` matches), and
            // the thread's table keeps that `Arc` alive until the thread
            // exits or a later pool takes the index, which cannot happen
            // while `self` is alive.
            Lookup::Found(ptr) => Some(unsafe { &*ptr.cast::<Slot<T>>() }),
            Lookup::Missing => self.register(),
            Lookup::Unavailable => None,
        }
    }

    #[cold]
    #[inline(never)]
    fn register(&self) -> Option<&Slot<T>> {
        let home = local::thread_seq() & self.shard_mask;
        let slot = Arc::new(Slot::new(
            self.this.clone(),
            self.classes.len(),
            home,
            self.epoch.load(Ordering::Acquire),
            self.trim_gen.load(Ordering::Acquire),
        ));
        let ptr = Arc::as_ptr(&slot);
        self.slots.lock().push(slot.clone());
        if !local::register(self.ident.index, self.ident.id, slot as Arc<dyn ThreadExit>) {
            self.slots
                .lock()
                .retain(|s| !std::ptr::eq(Arc::as_ptr(s), ptr));
            return None;
        }
        // SAFETY: the `Arc` is now held by this thread's table (see `local`).
        Some(unsafe { &*ptr })
    }

    // ----- counting ------------------------------------------------------

    #[inline(always)]
    pub(crate) fn stats_on(&self) -> bool {
        self.stats_on.load(Ordering::Relaxed)
    }

    /// Counts `n` of `ev` in this thread's counters, or the pool's.
    #[inline]
    pub(crate) fn count(&self, slot: Option<&Slot<T>>, ev: Ev, n: usize) {
        if self.stats_on() {
            match slot {
                Some(s) => s.counters().event(ev).add_local(n as u64),
                None => self.retired.event(ev).add_shared(n as u64),
            }
        }
    }

    /// Counts a get served by `hit` (a steal also counts as a shared hit).
    #[inline]
    pub(crate) fn count_hit(&self, slot: Option<&Slot<T>>, class: usize, hit: Hit, bytes: usize) {
        if self.stats_on() {
            let add = |counters: &Counters, hit: Hit, bytes: u64| match slot {
                Some(_) => {
                    counters.hit(class, hit).add_local(1);
                    counters.event(Ev::BytesOut).add_local(bytes);
                }
                None => {
                    counters.hit(class, hit).add_shared(1);
                    counters.event(Ev::BytesOut).add_shared(bytes);
                }
            };
            let counters = slot.map_or(&self.retired, |s| s.counters());
            add(counters, hit, bytes as u64);
            if matches!(hit, Hit::Steal) {
                add(counters, Hit::Shared, 0);
            }
        }
    }

    /// Counts an object coming back (guard drop or adoption).
    #[inline]
    pub(crate) fn count_origin(&self, slot: Option<&Slot<T>>, origin: Origin) {
        match origin {
            Origin::Returned(bytes) => {
                self.count(slot, Ev::Returns, 1);
                self.count(slot, Ev::BytesIn, bytes);
            }
            Origin::Adopted => self.count(slot, Ev::Adopted, 1),
        }
    }

    /// Counts objects the pool frees (with their reason).
    pub(crate) fn count_freed(&self, slot: Option<&Slot<T>>, reason: Ev, n: usize) {
        if n != 0 {
            self.count(slot, reason, n);
            self.count(slot, Ev::Freed, n);
        }
    }

    // ----- get -----------------------------------------------------------

    /// Hands out an object of at least `n` bytes.
    #[inline]
    pub(crate) fn acquire(&self, n: usize) -> (T, Ticket) {
        let Some(class) = self.classes.for_request(n) else {
            return self.acquire_oversize(n);
        };
        let Some(slot) = self.local() else {
            return self.acquire_unlocal(class);
        };
        {
            // SAFETY: this thread owns `slot`; the borrow ends before any user code runs.
            let cache = unsafe { slot.cache_mut() };
            if cache.epoch == self.epoch.load(Ordering::Relaxed) {
                if let Some(obj) = cache.stacks[class].pop() {
                    let bytes = obj.capacity_bytes();
                    cache.cached -= bytes;
                    slot.publish(cache, class);
                    if cache.credit - cache.cached > 2 * self.chunk {
                        self.release_slack(cache);
                    }
                    self.count_hit(Some(slot), class, Hit::Tls, bytes);
                    return (
                        obj,
                        Ticket {
                            bytes,
                            oversize: false,
                        },
                    );
                }
            }
        }
        self.acquire_slow(slot, class)
    }

    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, slot: &Slot<T>, class: usize) -> (T, Ticket) {
        let mut doomed = Vec::new();
        self.catch_up(slot, &mut doomed);
        let found = {
            // SAFETY: owner thread; no user code runs while `cache` lives.
            let cache = unsafe { slot.cache_mut() };
            match cache.stacks[class].pop() {
                Some(obj) => {
                    let bytes = obj.capacity_bytes();
                    cache.cached -= bytes;
                    slot.publish(cache, class);
                    Some((obj, bytes, Hit::Tls))
                }
                None => self.refill(slot, cache, class),
            }
        };
        drop(doomed);
        if let Some((obj, bytes, hit)) = found {
            self.count_hit(Some(slot), class, hit, bytes);
            return (
                obj,
                Ticket {
                    bytes,
                    oversize: false,
                },
            );
        }
        self.allocate(Some(slot), class)
    }

    /// Takes a batch of `class` from the home shard, else from a sibling;
    /// returns one object and caches the rest.
    fn refill(
        &self,
        slot: &Slot<T>,
        cache: &mut LocalCache<T>,
        class: usize,
    ) -> Option<(T, usize, Hit)> {
        let limit = self.tls_cache_size.load(Ordering::Relaxed);
        let batch = self
            .batch_size
            .load(Ordering::Relaxed)
            .clamp(1, limit.max(1));
        let n = self.shards.len();
        for step in 0..n {
            let idx = (cache.home + step) & self.shard_mask;
            let shard = &self.shards[idx];
            let mut locked = if step == 0 {
                if !shard.has(class) {
                    continue;
                }
                shard.lock()
            } else {
                if !shard.has(class) {
                    continue;
                }
                match shard.try_lock() {
                    Some(l) => l,
                    None => continue,
                }
            };
            let Some((first, first_bytes)) = locked.pop(class, T::capacity_bytes) else {
                continue;
            };
            let room = limit.saturating_sub(cache.stacks[class].len());
            let mut moved = 0;
            for _ in 1..batch.min(room + 1) {
                match locked.pop(class, T::capacity_bytes) {
                    Some((obj, bytes)) => {
                        cache.stacks[class].push(obj);
                        moved += bytes;
                    }
                    None => break,
                }
            }
            drop(locked);
            // The moved run's reservation becomes this cache's credit; the
            // object handed out leaves the budget.
            cache.credit += moved;
            cache.cached += moved;
            slot.publish(cache, class);
            self.budget.release(first_bytes);
            let hit = if step == 0 { Hit::Shared } else { Hit::Steal };
            return Some((first, first_bytes, hit));
        }
        None
    }

    /// Builds a fresh object for `class`.
    pub(crate) fn allocate(&self, slot: Option<&Slot<T>>, class: usize) -> (T, Ticket) {
        let obj = T::with_capacity_hint(self.classes.size(class));
        let bytes = obj.capacity_bytes();
        debug_assert!(
            bytes >= self.classes.size(class),
            "Poolable::with_capacity_hint returned too little"
        );
        self.count_hit(slot, class, Hit::Alloc, bytes);
        (
            obj,
            Ticket {
                bytes,
                oversize: false,
            },
        )
    }

    #[cold]
    fn acquire_oversize(&self, n: usize) -> (T, Ticket) {
        self.allocate_oversize(self.local(), n)
    }

    /// Builds an object for a request larger than every class.
    pub(crate) fn allocate_oversize(&self, slot: Option<&Slot<T>>, n: usize) -> (T, Ticket) {
        let obj = T::with_capacity_hint(n);
        let bytes = obj.capacity_bytes();
        self.count_hit(slot, self.classes.len(), Hit::Alloc, bytes);
        (
            obj,
            Ticket {
                bytes,
                oversize: true,
            },
        )
    }

    /// The path for a thread whose local table is gone: shards only.
    #[cold]
    fn acquire_unlocal(&self, class: usize) -> (T, Ticket) {
        let popped = self.shards[0].lock().pop(class, T::capacity_bytes);
        if let Some((obj, bytes)) = popped {
            self.budget.release(bytes);
            self.count_hit(None, class, Hit::Shared, bytes);
            return (
                obj,
                Ticket {
                    bytes,
                    oversize: false,
                },
            );
        }
        self.allocate(None, class)
    }

    // ----- return --------------------------------------------------------

    /// Takes back an object a guard held.
    #[inline]
    pub(crate) fn release(&self, obj: T, ticket: Ticket) {
        if ticket.oversize {
            return self.free_oversize(obj, ticket);
        }
        self.recycle(obj, Origin::Returned(ticket.bytes));
    }

    #[cold]
    fn free_oversize(&self, obj: T, ticket: Ticket) {
        let slot = self.local();
        self.count_origin(slot, Origin::Returned(ticket.bytes));
        self.count_freed(slot, Ev::Oversize, 1);
        drop(obj);
    }

    /// Accounts a guard turned into a plain object.
    pub(crate) fn detach(&self, ticket: Ticket) {
        let slot = self.local();
        self.count(slot, Ev::Detached, 1);
        self.count(slot, Ev::BytesIn, ticket.bytes);
    }

    /// Wipes and resets `obj`. If `reset` panics the object is dropped and
    /// counted, and the panic continues (unless the thread is already
    /// unwinding, where a second panic would abort: then it is swallowed).
    #[inline]
    pub(crate) fn clean(&self, obj: &mut T, origin: Origin) -> Result<(), ()> {
        let wipe = self.fixed.wipe_on_return;
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            if wipe {
                obj.wipe();
            }
            obj.reset();
        }));
        match result {
            Ok(()) => Ok(()),
            Err(payload) => {
                let slot = self.local();
                self.count_origin(slot, origin);
                self.count_freed(slot, Ev::ResetPanics, 1);
                if std::thread::panicking() {
                    Err(())
                } else {
                    // The caller drops the object during this unwind.
                    panic::resume_unwind(payload)
                }
            }
        }
    }

    /// Routes a clean object's capacity; frees (and counts) what no class keeps.
    #[inline]
    pub(crate) fn route(
        &self,
        slot: Option<&Slot<T>>,
        obj: &T,
        origin: Origin,
    ) -> Option<(usize, usize)> {
        let bytes = obj.capacity_bytes();
        match self.classes.for_capacity(bytes) {
            Route::Class(class) => Some((class, bytes)),
            Route::Undersize => {
                self.count_origin(slot, origin);
                self.count_freed(slot, Ev::Undersize, 1);
                None
            }
            Route::Oversize => {
                self.count_origin(slot, origin);
                self.count_freed(slot, Ev::Oversize, 1);
                None
            }
        }
    }

    /// Takes back an object: reset, then keep it idle if the budget allows.
    #[inline]
    pub(crate) fn recycle(&self, mut obj: T, origin: Origin) {
        if self.clean(&mut obj, origin).is_err() {
            return drop(obj);
        }
        let slot = self.local();
        let Some((class, bytes)) = self.route(slot, &obj, origin) else {
            return drop(obj);
        };
        let Some(slot) = slot else {
            return self.recycle_unlocal(obj, class, bytes, origin);
        };
        {
            // SAFETY: owner thread; no user code runs while `cache` lives.
            let cache = unsafe { slot.cache_mut() };
            let stack = &mut cache.stacks[class];
            if cache.epoch == self.epoch.load(Ordering::Relaxed)
                && stack.len() < self.tls_cache_size.load(Ordering::Relaxed)
                && cache.cached + bytes <= cache.credit
            {
                stack.push(obj);
                cache.cached += bytes;
                slot.publish(cache, class);
                self.count_origin(Some(slot), origin);
                return;
            }
        }
        self.recycle_slow(slot, obj, class, bytes, origin);
    }

    #[cold]
    #[inline(never)]
    fn recycle_slow(&self, slot: &Slot<T>, obj: T, class: usize, bytes: usize, origin: Origin) {
        let mut doomed = Vec::new();
        self.catch_up(slot, &mut doomed);
        let discarded = {
            // SAFETY: owner thread; no user code runs while `cache` lives.
            let cache = unsafe { slot.cache_mut() };
            let limit = self.tls_cache_size.load(Ordering::Relaxed);
            if cache.stacks[class].len() >= limit {
                let batch = self
                    .batch_size
                    .load(Ordering::Relaxed)
                    .clamp(1, limit.max(1));
                self.spill(slot, cache, class, batch);
            }
            let need = (cache.cached + bytes).saturating_sub(cache.credit);
            if need == 0 || self.reserve_credit(cache, need) {
                let stack = &mut cache.stacks[class];
                if stack.capacity() < limit {
                    stack.reserve_exact(limit - stack.len());
                }
                stack.push(obj);
                cache.cached += bytes;
                slot.publish(cache, class);
                false
            } else {
                doomed.push(obj);
                true
            }
        };
        self.count_origin(Some(slot), origin);
        if discarded {
            self.count_freed(Some(slot), Ev::Discards, 1);
        }
        drop(doomed);
    }

    /// The return path for a thread whose local table is gone.
    #[cold]
    fn recycle_unlocal(&self, obj: T, class: usize, bytes: usize, origin: Origin) {
        self.count_origin(None, origin);
        if self.budget.try_reserve(bytes) {
            self.shards[0].lock().push(class, obj, bytes);
        } else {
            self.count_freed(None, Ev::Discards, 1);
            drop(obj);
        }
    }

    /// Moves the `batch` oldest objects of `class` to the home shard; their
    /// bytes move from this cache's credit to the shard's share.
    fn spill(&self, slot: &Slot<T>, cache: &mut LocalCache<T>, class: usize, batch: usize) {
        let stack = &mut cache.stacks[class];
        let take = batch.min(stack.len());
        let run: Vec<T> = stack.drain(..take).collect();
        let bytes: usize = run.iter().map(T::capacity_bytes).sum();
        cache.cached -= bytes;
        cache.credit -= bytes;
        slot.publish(cache, class);
        let mut locked = self.shards[cache.home].lock();
        for obj in run {
            let b = obj.capacity_bytes();
            locked.push(class, obj, b);
        }
    }

    /// Reserves at least `need` more bytes of credit (a chunk more if the
    /// budget has room).
    fn reserve_credit(&self, cache: &mut LocalCache<T>, need: usize) -> bool {
        let extra = need.saturating_add(self.chunk);
        if self.budget.try_reserve(extra) {
            cache.credit += extra;
            true
        } else if self.budget.try_reserve(need) {
            cache.credit += need;
            true
        } else {
            false
        }
    }

    /// Gives back credit beyond one chunk of slack.
    #[cold]
    #[inline(never)]
    fn release_slack(&self, cache: &mut LocalCache<T>) {
        let keep = cache.cached + self.chunk;
        if cache.credit > keep {
            self.budget.release(cache.credit - keep);
            cache.credit = keep;
        }
    }

    /// Brings this thread's cache up to date with the pool: drops everything
    /// after a `trim`, returns unused credit, and frees cached objects while
    /// the budget is over its (lowered) limit. Objects to free are pushed to
    /// `doomed`, which the caller drops after its borrows end.
    pub(crate) fn catch_up(&self, slot: &Slot<T>, doomed: &mut Vec<T>) {
        let epoch = self.epoch.load(Ordering::Acquire);
        // SAFETY: owner thread; no user code runs while `cache` lives.
        let cache = unsafe { slot.cache_mut() };
        if cache.epoch == epoch {
            return;
        }
        cache.epoch = epoch;
        let before = doomed.len();
        let trim_gen = self.trim_gen.load(Ordering::Acquire);
        if cache.trim_gen != trim_gen {
            cache.trim_gen = trim_gen;
            for stack in cache.stacks.iter_mut() {
                doomed.append(stack);
            }
            cache.cached = 0;
        }
        // Shrink the stacks to a lowered cache size.
        let limit = self.tls_cache_size.load(Ordering::Relaxed);
        let mut overflow = Vec::new();
        for (class, stack) in cache.stacks.iter_mut().enumerate() {
            if stack.len() > limit {
                overflow.push((
                    class,
                    stack.drain(..stack.len() - limit).collect::<Vec<T>>(),
                ));
            }
        }
        if !overflow.is_empty() {
            let mut locked = self.shards[cache.home].lock();
            for (class, run) in overflow {
                for obj in run {
                    let b = obj.capacity_bytes();
                    cache.cached -= b;
                    cache.credit -= b;
                    locked.push(class, obj, b);
                }
            }
        }
        // Return all slack, then shed objects while over the limit.
        self.budget.release(cache.credit - cache.cached);
        cache.credit = cache.cached;
        let mut excess = self.budget.excess();
        for stack in cache.stacks.iter_mut().rev() {
            while excess > 0 {
                let Some(obj) = stack.pop() else { break };
                let b = obj.capacity_bytes();
                cache.cached -= b;
                cache.credit -= b;
                self.budget.release(b);
                excess = excess.saturating_sub(b);
                doomed.push(obj);
            }
            if excess == 0 {
                break;
            }
        }
        slot.publish_all(cache);
        let trimmed = doomed.len() - before;
        self.count_freed(Some(slot), Ev::Trimmed, trimmed);
    }

    // ----- whole-pool operations ----------------------------------------

    /// Drops every idle object: shards and this thread's cache now, other
    /// threads' caches at their next operation (or exit).
    pub(crate) fn trim(&self) {
        self.trim_gen.fetch_add(1, Ordering::AcqRel);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let slot = self.local();
        for shard in self.shards.iter() {
            let (objs, bytes) = shard.lock().take_all();
            self.budget.release(bytes);
            self.count_freed(slot, Ev::Trimmed, objs.len());
            drop(objs);
        }
        if let Some(slot) = slot {
            let mut doomed = Vec::new();
            self.catch_up(slot, &mut doomed);
            drop(doomed);
        }
    }

    /// Sets the budget; when lowered, frees idle objects from the shards (and
    /// this thread's cache) at once until the pool is within it.
    pub(crate) fn set_max_total_memory(&self, bytes: usize) {
        self.budget.set_limit(bytes);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let slot = self.local();
        if let Some(slot) = slot {
            let mut doomed = Vec::new();
            self.catch_up(slot, &mut doomed);
            drop(doomed);
        }
        for shard in self.shards.iter() {
            let excess = self.budget.excess();
            if excess == 0 {
                break;
            }
            let (objs, freed) = shard.lock().take_bytes(excess, T::capacity_bytes);
            self.budget.release(freed);
            self.count_freed(slot, Ev::Trimmed, objs.len());
            drop(objs);
        }
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
            let mut locked = self.shards[cache.home].lock();
            for (class, stack) in cache.stacks.iter_mut().enumerate() {
                for obj in stack.drain(..) {
                    let b = obj.capacity_bytes();
                    locked.push(class, obj, b);
                }
            }
            drop(locked);
            // Cached bytes' reservations now belong to the shard; the rest is slack.
            self.budget.release(cache.credit - cache.cached);
            cache.credit = 0;
            cache.cached = 0;
            slot.publish_all(cache);
            cache.stacks = Box::new([]);
        }
        drop(doomed);
        let mut slots = self.slots.lock();
        slots.retain(|s| !std::ptr::eq(&**s, slot));
        self.retired.absorb(slot.counters());
    }
}

impl<T: Poolable> Drop for Inner<T> {
    fn drop(&mut self) {
        for slot in self.slots.lock().drain(..) {
            // SAFETY: no strong reference to the pool exists, so no owner
            // thread is inside a pool operation, and the thread-exit hook only
            // touches the cache after upgrading its weak reference, which now
            // fails. We are the only accessor.
            let cache = unsafe { slot.cache_mut() };
            cache.stacks = Box::new([]);
            cache.cached = 0;
            cache.credit = 0;
        }
    }
}

/// Credit a thread cache keeps beyond its needs: 1/64 of the budget, at
/// most 4 MiB. Small enough that slack credit across threads stays a
/// small share of the budget, large enough that the hot path rarely refills.
fn credit_chunk(max_total_memory: usize) -> usize {
    (max_total_memory / 64).min(4 << 20)
}
