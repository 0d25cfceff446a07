//! Each thread's table of its pool slots, and pool indices.
//!
//! ```text
//!  thread_local LOCAL: [ idx 0: (pool id 7, Arc<Slot>) | idx 1: empty | idx 2: (pool id 9, ..) ]
//!  pool.get(): LOCAL[pool.index] -> id matches pool.id? -> &Slot   (two loads and a compare)
//! ```
//! Every live pool owns a small index, reused after the pool is dropped; a
//! unique 64-bit id tells a thread's stale entry from the current owner of
//! the index. Several pools, of any element types, each keep their own slot
//! on the same thread. When the thread exits, the table's destructor runs each
//! slot's [`ThreadExit`] hook, which hands the cached objects back to the
//! pool (if it is still alive) and folds the counters into it.
//!
//! Pool operations that run while the table is being destroyed (a guard
//! dropped by another thread-local's destructor) find no table and fall back
//! to the shards, so they still work and still count.

use parking_lot::Mutex;
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What a slot does when its thread exits.
pub(crate) trait ThreadExit: Send + Sync {
    fn thread_exit(&self);
}

struct Entry {
    id: u64,
    /// `Arc::as_ptr` of `owner`, kept thin so the lookup needs no vtable.
    slot: *const (),
    owner: Arc<dyn ThreadExit>,
}

struct LocalTable {
    entries: UnsafeCell<Vec<Option<Entry>>>,
    seq: Cell<usize>,
}

impl Drop for LocalTable {
    fn drop(&mut self) {
        // The slots may be freed below: forget the fast-path pointer first.
        LAST.set((0, std::ptr::null()));
        let entries = std::mem::take(self.entries.get_mut());
        for entry in entries.into_iter().flatten() {
            entry.owner.thread_exit();
        }
    }
}

thread_local! {
    static LOCAL: LocalTable = const {
        LocalTable { entries: UnsafeCell::new(Vec::new()), seq: Cell::new(0) }
    };
    /// The (pool id, slot) of the last lookup: one compare for a thread that
    /// keeps using one pool. It has no destructor, so it stays readable while
    /// the thread exits; `LocalTable::drop` clears it before any slot can be
    /// freed, and ids are never reused, so a stale entry never matches.
    static LAST: Cell<(u64, *const ())> = const { Cell::new((0, std::ptr::null())) };
}

/// The result of looking up this thread's slot for a pool.
pub(crate) enum Lookup {
    /// The slot, as a pointer to the `Slot<T>` the pool registered.
    Found(*const ()),
    /// This thread has no slot for the pool yet.
    Missing,
    /// The thread's table is gone (thread exiting): use the shards.
    Unavailable,
}

/// Finds this thread's slot for pool `id` at `index`.
#[inline(always)]
pub(crate) fn lookup(index: usize, id: u64) -> Lookup {
    let (last_id, last_slot) = LAST.get();
    if last_id == id {
        return Lookup::Found(last_slot);
    }
    lookup_table(index, id)
}

#[inline(never)]
fn lookup_table(index: usize, id: u64) -> Lookup {
    let found = LOCAL
        .try_with(|t| {
            // SAFETY: the table is only touched by its own thread, and no
            // function of this module calls user code while the reference
            // lives, so this shared borrow cannot overlap a mutable one.
            let entries = unsafe { &*t.entries.get() };
            match entries.get(index) {
                Some(Some(e)) if e.id == id => Lookup::Found(e.slot),
                _ => Lookup::Missing,
            }
        })
        .unwrap_or(Lookup::Unavailable);
    if let Lookup::Found(slot) = found {
        LAST.set((id, slot));
    }
    found
}

/// Stores `owner` as this thread's slot for pool `id` at `index`. Returns
/// false if the thread's table is gone.
pub(crate) fn register(index: usize, id: u64, owner: Arc<dyn ThreadExit>) -> bool {
    LOCAL
        .try_with(|t| {
            // SAFETY: own thread only; no user code runs while the borrow
            // lives (the displaced entry is dropped after it ends).
            let entries = unsafe { &mut *t.entries.get() };
            if entries.len() <= index {
                entries.resize_with(index + 1, || None);
            }
            let slot = Arc::as_ptr(&owner).cast::<()>();
            entries[index].replace(Entry { id, slot, owner })
        })
        .map(drop)
        .is_ok()
}

/// A small number for this thread, stable for its life, used to pick its
/// home shard.
pub(crate) fn thread_seq() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    LOCAL
        .try_with(|t| {
            if t.seq.get() == 0 {
                t.seq.set(NEXT.fetch_add(1, Ordering::Relaxed));
            }
            t.seq.get()
        })
        .unwrap_or(0)
}

/// A pool's identity: a unique id and a small reusable index.
#[derive(Debug)]
pub(crate) struct PoolId {
    pub(crate) id: u64,
    pub(crate) index: usize,
}

static FREE_INDICES: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);

impl PoolId {
    pub(crate) fn new() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let index = FREE_INDICES
            .lock()
            .pop()
            .unwrap_or_else(|| NEXT_INDEX.fetch_add(1, Ordering::Relaxed));
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            index,
        }
    }
}

impl Drop for PoolId {
    fn drop(&mut self) {
        FREE_INDICES.lock().push(self.index);
    }
}
