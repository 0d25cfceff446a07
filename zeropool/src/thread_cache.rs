//! One thread's cache for one pool: per-class stacks, the budget credit that
//! covers them, and the thread's counters.
//!
//! ```text
//!  Slot<T> (one per pool per thread, CachePadded, shared by Arc)
//!  ├── cache: UnsafeCell<LocalCache<T>>   only the owning thread touches it
//!  │     stacks[class]: Vec<Idle<T>>  (<= tls_cache_size each; each object
//!  │                    with the bytes recorded when it entered the pool)
//!  │     cached <= credit        (bytes idle here <= bytes reserved for here)
//!  ├── counters: Counters        owner writes, stats() reads
//!  └── cached_bytes, class_cached published for stats() (relaxed stores)
//! ```
//! The pool keeps every slot in a list (for `stats()` and for dropping idle
//! objects when the pool goes away); the thread keeps it in its local table
//! (see `local.rs`), which hands the objects back when the thread exits.
//!
//! A `&mut LocalCache` is never held while user code runs (`Poolable`
//! methods, `T::drop`, a factory): such code may re-enter the pool on this
//! thread and borrow the cache again. Nothing in this file calls into `T`.

use crate::idle_object::Idle;
use crate::local::ThreadExit;
use crate::pool::Inner;
use crate::stats::Counters;
use crate::sync::{AtomicUsize, Ordering};
use crate::Poolable;
use crossbeam_utils::CachePadded;
use std::cell::UnsafeCell;
use std::sync::Weak;

/// The owner-only part of a slot.
#[derive(Debug)]
pub(crate) struct LocalCache<T> {
    pub(crate) stacks: Box<[Vec<Idle<T>>]>,
    /// Bytes idle in `stacks`.
    pub(crate) cached: usize,
    /// Objects idle in `stacks`.
    pub(crate) objects: usize,
    /// Bytes reserved from the budget for this cache; `cached <= credit`.
    pub(crate) credit: usize,
    /// The pool epoch this cache has caught up with.
    pub(crate) epoch: u64,
    /// The pool trim generation this cache has caught up with.
    pub(crate) trim_gen: u64,
    /// Index of this thread's home shard.
    pub(crate) home: usize,
    /// Objects per class this cache may hold (the pool's `tls_cache_size`
    /// as of `epoch`).
    pub(crate) limit: usize,
    /// The node (index) this thread runs on, as of its last slow path; the
    /// stacks hold only objects whose home is this node.
    pub(crate) node: usize,
    /// The thread's sequence number (spreads threads over a group's shards).
    pub(crate) seq: usize,
    /// Per home node: objects returned here from another node, with their
    /// class, waiting to travel home in a batch (see `home.rs`).
    pub(crate) remote: Vec<Vec<(usize, Idle<T>)>>,
}

/// A thread's cache and counters for one pool.
#[derive(Debug)]
pub(crate) struct Slot<T: Poolable> {
    inner: CachePadded<SlotInner<T>>,
}

#[derive(Debug)]
pub(crate) struct SlotInner<T: Poolable> {
    cache: UnsafeCell<LocalCache<T>>,
    pub(crate) counters: Counters,
    cached_bytes: AtomicUsize,
    cached_objects: AtomicUsize,
    /// `LocalCache::node`, for per-node stats.
    node: AtomicUsize,
    pool: Weak<Inner<T>>,
}

// SAFETY: `cache` is the only non-`Sync` part. It is touched only (a) by the
// owning thread through `cache_mut`, whose callers hold a strong reference to
// the pool, or (b) by `Inner::drop`, which runs when no strong reference (so
// no owner access) exists, and by the owner's thread-exit hook, which runs on
// the owner thread itself. Everything else is atomics. `T: Send` lets the
// objects be dropped by whichever thread drops the pool.
unsafe impl<T: Poolable> Sync for Slot<T> {}
// SAFETY: as above; moving the slot moves `T`s, which are `Send`.
unsafe impl<T: Poolable> Send for Slot<T> {}

impl<T: Poolable> Slot<T> {
    pub(crate) fn new(
        pool: Weak<Inner<T>>,
        classes: usize,
        (home, node, seq): (usize, usize, usize),
        limit: usize,
        (epoch, trim_gen): (u64, u64),
    ) -> Self {
        Self {
            inner: CachePadded::new(SlotInner {
                cache: UnsafeCell::new(LocalCache {
                    stacks: (0..classes).map(|_| Vec::new()).collect(),
                    cached: 0,
                    objects: 0,
                    credit: 0,
                    epoch,
                    trim_gen,
                    home,
                    limit,
                    node,
                    seq,
                    remote: Vec::new(),
                }),
                counters: Counters::new(classes),
                cached_bytes: AtomicUsize::new(0),
                cached_objects: AtomicUsize::new(0),
                node: AtomicUsize::new(node),
                pool,
            }),
        }
    }

    /// The owner-only cache.
    ///
    /// # Safety
    /// The caller must be the thread that owns this slot (the one whose local
    /// table holds it), or have exclusive access to the pool (`Inner::drop`),
    /// and must not let two returned references live at once: no user code
    /// (any `Poolable` or `PoolField` method, a constructor, `Drop` of `T`)
    /// may run while one is alive, since it may re-enter the pool on this
    /// thread and call `cache_mut` again. Objects to free go to a
    /// [`Doomed`](crate::idle_object::Doomed) dropped after the borrow ends.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn cache_mut(&self) -> &mut LocalCache<T> {
        // SAFETY: exclusivity is the caller's contract above.
        unsafe { &mut *self.inner.cache.get() }
    }

    #[inline(always)]
    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Publishes the cache's totals for `stats()` (two relaxed stores).
    #[inline(always)]
    pub(crate) fn publish(&self, cache: &LocalCache<T>) {
        self.inner
            .cached_bytes
            .store(cache.cached, Ordering::Relaxed);
        self.inner
            .cached_objects
            .store(cache.objects, Ordering::Relaxed);
    }

    pub(crate) fn cached_bytes(&self) -> usize {
        self.inner.cached_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn cached_objects(&self) -> usize {
        self.inner.cached_objects.load(Ordering::Relaxed)
    }

    /// The node this slot's thread runs on, as last seen.
    pub(crate) fn node(&self) -> usize {
        self.inner.node.load(Ordering::Relaxed)
    }

    pub(crate) fn set_node(&self, node: usize) {
        self.inner.node.store(node, Ordering::Relaxed);
    }
}

impl<T> LocalCache<T> {
    /// Pops the newest object of `class`, with its recorded bytes.
    #[inline(always)]
    pub(crate) fn pop(&mut self, class: usize) -> Option<Idle<T>> {
        let idle = self.stacks[class].pop()?;
        self.cached -= idle.bytes;
        self.objects -= 1;
        Some(idle)
    }

    /// Pushes an object onto `class` (the caller checked room and credit).
    #[inline(always)]
    pub(crate) fn push(&mut self, class: usize, idle: Idle<T>) {
        self.cached += idle.bytes;
        self.objects += 1;
        self.stacks[class].push(idle);
    }

    /// Removes the `n` oldest objects of `class`; returns them and their bytes.
    pub(crate) fn take_oldest(&mut self, class: usize, n: usize) -> (Vec<Idle<T>>, usize) {
        let stack = &mut self.stacks[class];
        let run: Vec<Idle<T>> = stack.drain(..n.min(stack.len())).collect();
        let bytes: usize = run.iter().map(|i| i.bytes).sum();
        self.cached -= bytes;
        self.objects -= run.len();
        (run, bytes)
    }

    /// Removes every object of the stacks and the remote batches; returns
    /// them and their bytes.
    pub(crate) fn take_all(&mut self) -> (Vec<Idle<T>>, usize) {
        let mut all = Vec::with_capacity(self.objects);
        for stack in self.stacks.iter_mut() {
            all.append(stack);
        }
        for run in self.remote.iter_mut() {
            all.extend(run.drain(..).map(|(_, idle)| idle));
        }
        self.objects = 0;
        (all, std::mem::take(&mut self.cached))
    }
}

impl<T: Poolable> ThreadExit for Slot<T> {
    fn thread_exit(&self) {
        if let Some(inner) = self.inner.pool.upgrade() {
            inner.retire_slot(self);
        }
    }
}
