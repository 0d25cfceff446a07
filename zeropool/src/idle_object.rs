//! What the pool keeps beside each idle object, and how it frees objects.
//!
//! ```text
//!  enters the pool's care ─ user code measures it once (capacity_bytes,
//!     class_bytes), outside every borrow and lock ─► Idle { obj, bytes }
//!  thread cache <─► shard <─► thread cache: moved as Idle, never asked again
//!  leaves the pool's care ─ into Doomed (still inside borrows and locks)
//!     ─ after every borrow and lock has ended: each T::drop, one at a time,
//!       a panic caught and counted (never an abort, never a half-done move)
//! ```
//! `Poolable` is a safe trait: its methods and `T::drop` may call back into
//! the same pool or panic. The pool therefore never runs them while it
//! holds a `&mut` to a thread cache or a shard lock: it records an object's
//! bytes when the object enters its care ([`Idle`]) and frees objects only
//! through [`Doomed`], after the borrows and locks of the operation are gone.

use std::panic::{self, AssertUnwindSafe};

/// An idle object with the bytes the pool recorded for it when it entered
/// the pool's care: the pool's books use this figure, never a new answer
/// from `capacity_bytes`.
#[derive(Debug)]
pub(crate) struct Idle<T> {
    pub(crate) obj: T,
    pub(crate) bytes: usize,
}

impl<T> Idle<T> {
    #[inline(always)]
    pub(crate) fn new(obj: T, bytes: usize) -> Self {
        Self { obj, bytes }
    }
}

/// Objects leaving the pool's care, to be dropped only once every borrow of
/// a thread cache and every lock has ended.
///
/// Fill it inside borrows and locks (pushing runs no user code), then call
/// [`Doomed::free`]. Dropped without `free` (an internal panic unwinding),
/// it still drops each object with its panic caught.
#[derive(Debug)]
pub(crate) struct Doomed<T> {
    objs: Vec<T>,
    bytes: usize,
}

impl<T> Default for Doomed<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Doomed<T> {
    pub(crate) const fn new() -> Self {
        Self {
            objs: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds an idle object, with its recorded bytes.
    #[inline]
    pub(crate) fn push(&mut self, idle: Idle<T>) {
        // Wrapping, as the pool's byte counters do: an absurd recorded size
        // (a `capacity_bytes` near `usize::MAX`) is given back as it was taken.
        self.bytes = self.bytes.wrapping_add(idle.bytes);
        self.objs.push(idle.obj);
    }

    /// Adds an object whose recorded bytes the caller has accounted.
    #[inline]
    pub(crate) fn push_obj(&mut self, obj: T, bytes: usize) {
        self.push(Idle::new(obj, bytes));
    }

    /// Adds idle objects.
    pub(crate) fn extend(&mut self, idle: impl IntoIterator<Item = Idle<T>>) {
        for i in idle {
            self.push(i);
        }
    }

    /// Objects held.
    pub(crate) fn len(&self) -> usize {
        self.objs.len()
    }

    /// Recorded bytes of the objects held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// A mark for [`since`](Self::since): what is held now.
    pub(crate) fn mark(&self) -> (usize, usize) {
        (self.objs.len(), self.bytes)
    }

    /// Objects and bytes added since `mark`.
    pub(crate) fn since(&self, (len, bytes): (usize, usize)) -> (usize, usize) {
        (self.objs.len() - len, self.bytes.wrapping_sub(bytes))
    }

    /// The objects held, to work on before they are freed.
    pub(crate) fn objects_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.objs.iter_mut()
    }

    /// Drops every object, one at a time; a panicking `Drop` is caught and
    /// the rest are still dropped. Returns how many panicked.
    ///
    /// Call it only when no borrow of a thread cache and no lock of the pool
    /// is held: each drop is user code that may re-enter the pool.
    #[must_use = "count the drops that panicked"]
    pub(crate) fn free(mut self) -> usize {
        self.bytes = 0;
        drop_each(std::mem::take(&mut self.objs))
    }
}

impl<T> Drop for Doomed<T> {
    fn drop(&mut self) {
        let _ = drop_each(std::mem::take(&mut self.objs));
    }
}

/// Drops each object, catching a panic from its `Drop` so that the others
/// are still dropped and a second panic cannot abort the process. Returns
/// how many panicked.
pub(crate) fn drop_each<T>(objs: impl IntoIterator<Item = T>) -> usize {
    if !std::mem::needs_drop::<T>() {
        return 0;
    }
    let mut panics = 0;
    for obj in objs {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(obj))) {
            discard_payload(payload);
            panics += 1;
        }
    }
    panics
}

/// Drops a caught panic's payload (user data: its own `Drop` may panic
/// too, and then only that second payload is leaked, never an abort).
pub(crate) fn discard_payload(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

#[cfg(all(test, not(zeropool_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPS: AtomicUsize = AtomicUsize::new(0);

    struct Bomb(bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::Relaxed);
            if self.0 {
                panic!("drop panics");
            }
        }
    }

    #[test]
    fn every_object_is_dropped_and_each_panic_counted() {
        let mut doomed = Doomed::new();
        for (i, bytes) in [(0, 8), (1, 16), (2, 32)] {
            doomed.push_obj(Bomb(i != 1), bytes);
        }
        assert_eq!((doomed.len(), doomed.bytes()), (3, 56));
        assert_eq!(doomed.free(), 2);
        assert_eq!(DROPS.load(Ordering::Relaxed), 3);
    }
}
