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
use crate::idle_object::Doomed;
use crate::local::{self, Lookup, PoolId, ThreadExit};
use crate::shard::Shard;
use crate::size_class::SizeClasses;
use crate::stats::{Counters, Ev, Hit};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::thread_cache::{LocalCache, Slot};
use crate::Poolable;
use crossbeam_utils::CachePadded;
use std::sync::{Arc, Weak};

/// What a guard remembers about its object for the return trip.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    /// Capacity in bytes when handed out (what `bytes_outstanding` counted).
    pub(crate) bytes: usize,
    /// The class it was handed out for, or [`Ticket::OVERSIZE`]. While the
    /// capacity is unchanged the object returns to this class without routing.
    pub(crate) class: u16,
    /// Whether `bytes` are charged against the outstanding-memory cap.
    pub(crate) charged: bool,
    /// The object's home node (index, wrapped at 256: a pool on a larger
    /// machine may send an object to another node's shards, never lose it);
    /// 0 when NUMA is not active.
    pub(crate) node: u8,
    /// Its entry in the outstanding report (`track_outstanding`), or 0.
    pub(crate) track: u32,
}

impl Ticket {
    /// The class of an oversize request: freed on return, never cached.
    pub(crate) const OVERSIZE: u16 = u16::MAX;
    /// The class of a fresh object whose capacity came out below its class
    /// (collections of zero-sized types, or a `Poolable` that under-reports):
    /// freed on return, never cached.
    pub(crate) const UNDERSIZE: u16 = u16::MAX - 1;

    /// A ticket for an object of `class` whose home is `node`.
    #[inline(always)]
    pub(crate) fn at(class: usize, bytes: usize, node: usize) -> Self {
        Self {
            bytes,
            class: class as u16,
            charged: false,
            node: node as u8,
            track: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn oversize(bytes: usize) -> Self {
        Self {
            bytes,
            class: Self::OVERSIZE,
            charged: false,
            node: 0,
            track: 0,
        }
    }
}

/// How an object comes back to the pool.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin {
    /// A guard was dropped.
    Returned(Ticket),
    /// `put`: an object from outside (or detached earlier).
    Adopted,
}

/// Settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Fixed {
    /// `track_outstanding` (beside `wipe_on_return`, which the return path
    /// reads anyway: one more flag on an already-loaded line).
    pub(crate) track: bool,
    pub(crate) classes: Vec<usize>,
    pub(crate) wipe_on_return: bool,
}

/// The state every handle and owned guard of one pool shares.
#[derive(Debug)]
pub(crate) struct Inner<T: Poolable> {
    ident: PoolId,
    pub(crate) this: Weak<Inner<T>>,
    pub(crate) classes: SizeClasses,
    pub(crate) shards: Box<[Shard<T>]>,
    pub(crate) budget: Budget,
    /// Bumped whenever thread caches must catch up (trim, lowered budget,
    /// changed cache size).
    pub(crate) epoch: CachePadded<AtomicU64>,
    pub(crate) trim_gen: AtomicU64,
    pub(crate) slots: Mutex<Vec<Arc<Slot<T>>>>,
    /// Counters of exited threads and of paths without a thread cache.
    pub(crate) retired: Counters,
    pub(crate) tls_cache_size: AtomicUsize,
    pub(crate) batch_size: AtomicUsize,
    pub(crate) stats_on: AtomicBool,
    pub(crate) fixed: Fixed,
    /// The cap on bytes handed out (`max_outstanding_memory`) and its waiters.
    pub(crate) gate: crate::gate::Gate,
    /// What a `get` past that cap does (index into `OnExhausted::NAMES`).
    pub(crate) on_exhausted: AtomicUsize,
    /// The effective config, reload state and errors (see `config`).
    pub(crate) config: crate::config::ConfigState,
    /// Topology, placement, shard groups per node (see `home`).
    pub(crate) numa: crate::home::NumaState,
    /// The idle trimmer (`trim_after`, see `idle`).
    pub(crate) idle: crate::idle::IdleTrim,
    /// Live guards by call site, when `track_outstanding` is on.
    pub(crate) tracker: Option<Box<crate::outstanding::Tracker>>,
    /// `Pool` handles held by users (not by owned guards): when the last
    /// goes while guards are out, that is reported.
    pub(crate) handles: AtomicUsize,
}

impl<T: Poolable> Inner<T> {
    /// Credit a thread cache may keep beyond what it holds (slow paths).
    pub(crate) fn chunk(&self) -> usize {
        credit_chunk(self.budget.limit_in_force())
    }

    /// Sets the budget (a fixed one, or a cap under which it follows demand).
    pub(crate) fn set_limit(&self, bytes: usize, auto: bool) {
        self.budget.set_limit(bytes, auto);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether this thread's cache has seen the latest epoch.
    #[inline(always)]
    pub(crate) fn current(&self, cache: &LocalCache<T>) -> bool {
        cache.epoch == self.epoch.load(Ordering::Relaxed)
    }

    #[allow(clippy::too_many_arguments)] // one call site, the builder
    pub(crate) fn new(
        fixed: Fixed,
        tls_cache_size: usize,
        batch_size: usize,
        max_total_memory: Option<usize>,
        stats: bool,
        config: crate::config::ConfigState,
        numa: crate::home::NumaState,
        track_outstanding: bool,
    ) -> Arc<Self> {
        let (cap, auto) = match max_total_memory {
            Some(bytes) => (bytes, false),
            None => (crate::builder::DEFAULT_MAX_TOTAL_MEMORY, true),
        };
        let classes = SizeClasses::new(&fixed.classes);
        let n = classes.len();
        Arc::new_cyclic(|this| Inner {
            ident: PoolId::new(),
            this: this.clone(),
            shards: (0..numa.map.len()).map(|_| Shard::new(n)).collect(),
            budget: Budget::new(cap, auto),
            epoch: CachePadded::new(AtomicU64::new(0)),
            trim_gen: AtomicU64::new(0),
            slots: Mutex::new(Vec::new()),
            retired: Counters::new(n),
            tls_cache_size: AtomicUsize::new(tls_cache_size),
            batch_size: AtomicUsize::new(batch_size),
            stats_on: AtomicBool::new(stats),
            gate: crate::gate::Gate::new(crate::gate::NO_CAP),
            on_exhausted: AtomicUsize::new(0),
            config,
            numa,
            idle: crate::idle::IdleTrim::default(),
            tracker: track_outstanding.then(Box::default),
            handles: AtomicUsize::new(1),
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
        let seq = local::thread_seq();
        let node = self.numa.current_node();
        let home = self.numa.map.home_shard(node, seq);
        let epoch = self.epoch.load(Ordering::Acquire);
        let slot = Arc::new(Slot::new(
            self.this.clone(),
            self.classes.len(),
            (home, node, seq),
            self.tls_cache_size.load(Ordering::Acquire),
            (epoch, self.trim_gen.load(Ordering::Acquire)),
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
    #[inline(always)]
    pub(crate) fn count(&self, slot: Option<&Slot<T>>, ev: Ev, n: usize) {
        if self.stats_on() {
            match slot {
                Some(s) => s.counters().event(ev).add_local(n as u64),
                None => self.retired.event(ev).add_shared(n as u64),
            }
        }
    }

    /// Counts several events in this thread's counters, or the pool's.
    #[inline(always)]
    fn count_many(&self, slot: Option<&Slot<T>>, events: &[(Ev, usize)]) {
        for &(ev, n) in events {
            self.count(slot, ev, n);
        }
    }

    /// Counts a get served by `hit` (a steal also counts as a shared hit).
    #[inline(always)]
    pub(crate) fn count_hit(&self, slot: Option<&Slot<T>>, class: usize, hit: Hit) {
        if !self.stats_on() {
            return;
        }
        let counters = slot.map_or(&self.retired, |s| s.counters());
        let add = |counter: &crate::sync::Counter, n: usize| match slot {
            Some(_) => counter.add_local(n as u64),
            None => counter.add_shared(n as u64),
        };
        add(counters.hit(class, hit), 1);
        if let Hit::Steal = hit {
            add(counters.hit(class, Hit::Shared), 1);
        }
    }

    /// Counts `n` gets of `class` served by `hit` at once (batches).
    pub(crate) fn count_hits(&self, slot: Option<&Slot<T>>, class: usize, hit: Hit, n: usize) {
        if n == 0 || !self.stats_on() {
            return;
        }
        let counters = slot.map_or(&self.retired, |s| s.counters());
        let hits = [Some(hit), matches!(hit, Hit::Steal).then_some(Hit::Shared)];
        for hit in hits.into_iter().flatten() {
            match slot {
                Some(_) => counters.hit(class, hit).add_local(n as u64),
                None => counters.hit(class, hit).add_shared(n as u64),
            }
        }
    }

    /// Counts an object coming back (guard drop or adoption).
    #[inline(always)]
    pub(crate) fn count_origin(&self, slot: Option<&Slot<T>>, origin: Origin) {
        match origin {
            // Returns are not counted on the hot path: the snapshot derives
            // them (objects in the pool's care less the idle ones are out).
            Origin::Returned(_) => {}
            Origin::Adopted => self.count_adopted(slot, 1),
        }
    }

    /// Counts `n` objects given with `put`/`put_batch`: they enter the
    /// pool's care (their bytes with [`count_entry`](Self::count_entry)
    /// once routed to a class; one rejected leaves again with `count_freed`).
    pub(crate) fn count_adopted(&self, slot: Option<&Slot<T>>, n: usize) {
        self.count(slot, Ev::Adopted, n);
        self.budget.care_in(n, 0);
    }

    /// Records an object that comes back and stays in the pool's care with
    /// `bytes` of capacity: adopted objects bring their bytes in; returned
    /// ones whose capacity changed while out correct the record.
    #[inline]
    pub(crate) fn count_entry(&self, origin: Origin, bytes: usize) {
        match origin {
            Origin::Returned(ticket) => {
                self.budget.care_in(0, bytes);
                self.budget.care_out(0, ticket.bytes);
            }
            Origin::Adopted => self.budget.care_in(0, bytes),
        }
    }

    /// Drops objects the pool freed (already counted with their reason),
    /// once no borrow of a thread cache and no lock is held: each `Drop` is
    /// user code that may re-enter the pool. A `Drop` that panics is caught
    /// and counted in `drop_panics`; the others are still dropped.
    pub(crate) fn free(&self, slot: Option<&Slot<T>>, mut doomed: Doomed<T>) {
        if self.numa.pinned {
            unpin_each(&mut doomed);
        }
        let panics = doomed.free();
        if panics != 0 {
            self.count(slot, Ev::DropPanics, panics);
            crate::trace::event!(
                warn,
                panics,
                "a Drop of a pooled object panicked; the pool caught it and goes on"
            );
        }
    }

    /// Counts `n` objects the pool frees (with their reason) and records
    /// that their `bytes` leave its care (whether or not stats are on).
    pub(crate) fn count_freed(&self, slot: Option<&Slot<T>>, reason: Ev, n: usize, bytes: usize) {
        if n != 0 {
            self.count_many(slot, &[(reason, n), (Ev::Freed, n)]);
            self.budget.care_out(n, bytes);
        }
    }
}

/// Unlocks (`munlock`) the memory of objects a pinned pool is about to free,
/// so that locked pages do not pile up in the allocator until
/// `RLIMIT_MEMLOCK` refuses. Each object is reset first, so its spare
/// capacity is its whole buffer; a panic in that user code is caught (the
/// object is freed all the same) and a refusal is ignored (the pages were
/// not locked).
#[cold]
pub(crate) fn unpin_each<T: Poolable>(doomed: &mut Doomed<T>) {
    for obj in doomed.objects_mut() {
        let unlocked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            obj.reset();
            if let Some(area) = obj.spare_heap() {
                let _ = crate::numa::unpin(area);
            }
        }));
        if let Err(payload) = unlocked {
            crate::idle_object::discard_payload(payload);
        }
    }
}

/// Bytes the pool recorded for an object coming back: its capacity when
/// handed out, or nothing for an adopted one (not in its care yet).
pub(crate) fn recorded_bytes(origin: Origin) -> usize {
    match origin {
        Origin::Returned(ticket) => ticket.bytes,
        Origin::Adopted => 0,
    }
}

/// Credit a thread cache keeps beyond its needs: 1/64 of the budget, at
/// most 4 MiB. Small enough that slack credit across threads stays a
/// small share of the budget, large enough that the hot path rarely refills.
fn credit_chunk(max_total_memory: usize) -> usize {
    (max_total_memory / 64).min(4 << 20)
}
