//! The global memory budget: how many idle bytes the pool may keep.
//!
//! ```text
//!            limit (max_total_memory)
//!  reserved = Σ shard bytes + Σ thread-cache credit   <= limit
//!  retained = Σ shard bytes + Σ thread-cache cached   <= reserved
//! ```
//! Bytes are reserved here *before* an object becomes idle anywhere and
//! released *after* it has left. Thread caches reserve a credit in chunks
//! and fill it without touching this counter, so the hot path pays nothing
//! while the sum of credits still bounds what the caches hold.
//! Lowering the limit cannot take credit back from other threads at once;
//! [`Budget::set_limit`] only stores it, and the pool trims its shards and
//! bumps an epoch that thread caches check on their next operation.
//!
//! ## Following demand (the default)
//! In *auto* mode the limit in force is
//! `min(cap, max(AUTO_FLOOR, in_use / AUTO_DIVISOR))`, where `in_use` is the
//! bytes handed out (the bytes in the pool's care less those reserved for
//! idle objects). A pool keeps a small floor for light use and otherwise
//! about 1/16 of what the application holds, so idle memory follows demand
//! instead of the peak of the past. It is evaluated at each reservation (a
//! slow path); the bytes in care change only when objects are allocated,
//! freed, adopted or detached, never on the hot path.

use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;

/// Idle bytes an auto budget always allows.
pub const AUTO_FLOOR: usize = 1 << 20;
/// An auto budget allows idle bytes up to the bytes in use divided by this.
pub const AUTO_DIVISOR: usize = 16;

/// Reserved bytes against a limit; lock-free, never above the limit.
#[derive(Debug)]
pub(crate) struct Budget {
    /// The cap (`max_total_memory`).
    limit: CachePadded<AtomicUsize>,
    reserved: CachePadded<AtomicUsize>,
    /// Bytes of every object in the pool's care, idle or handed out.
    in_care: CachePadded<AtomicUsize>,
    /// Objects in the pool's care (allocated or adopted, not yet freed or
    /// detached), idle or handed out: kept whether or not stats are on, on
    /// slow paths only (a hit or a return into a cache changes neither).
    objects_in_care: AtomicUsize,
    /// Whether the limit in force follows demand (see the module docs).
    auto: AtomicBool,
    /// High-water marks: reserved bytes, and bytes out (in care, not reserved).
    peak_reserved: AtomicUsize,
    peak_out: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(limit: usize, auto: bool) -> Self {
        Self {
            limit: CachePadded::new(AtomicUsize::new(limit)),
            reserved: CachePadded::new(AtomicUsize::new(0)),
            in_care: CachePadded::new(AtomicUsize::new(0)),
            objects_in_care: AtomicUsize::new(0),
            auto: AtomicBool::new(auto),
            peak_reserved: AtomicUsize::new(0),
            peak_out: AtomicUsize::new(0),
        }
    }

    /// The cap (`max_total_memory`).
    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Whether the limit in force follows demand.
    pub(crate) fn is_auto(&self) -> bool {
        self.auto.load(Ordering::Relaxed)
    }

    /// Sets the cap and whether the limit in force follows demand under it.
    pub(crate) fn set_limit(&self, limit: usize, auto: bool) {
        self.auto.store(auto, Ordering::SeqCst);
        self.limit.store(limit, Ordering::SeqCst);
    }

    /// The limit in force now: the cap, or in auto mode the share of the
    /// bytes in use that may stay idle (never above the cap).
    pub(crate) fn limit_in_force(&self) -> usize {
        let cap = self.limit();
        if !self.is_auto() {
            return cap;
        }
        let in_use = self.in_care().saturating_sub(self.reserved());
        cap.min(AUTO_FLOOR.max(in_use / AUTO_DIVISOR))
    }

    /// Bytes of every object in the pool's care, idle or handed out.
    pub(crate) fn in_care(&self) -> usize {
        self.in_care.load(Ordering::Relaxed)
    }

    /// Objects in the pool's care, idle or handed out.
    pub(crate) fn objects_in_care(&self) -> usize {
        self.objects_in_care.load(Ordering::Relaxed)
    }

    /// `objects` objects holding `bytes` bytes came into the pool's care
    /// (allocated, adopted; 0 objects: one grew while handed out).
    pub(crate) fn care_in(&self, objects: usize, bytes: usize) {
        if objects != 0 {
            self.objects_in_care.fetch_add(objects, Ordering::Relaxed);
        }
        if bytes != 0 {
            let in_care = self
                .in_care
                .fetch_add(bytes, Ordering::Relaxed)
                .wrapping_add(bytes);
            // Bytes come into care as they are handed out (a fresh object is
            // out at once): the moment the bytes out reach a new high.
            let out = in_care.saturating_sub(self.reserved());
            self.peak_out.fetch_max(out, Ordering::Relaxed);
        }
    }

    /// The highest reserved bytes seen: an upper bound of the idle bytes'
    /// high-water mark.
    pub(crate) fn peak_reserved(&self) -> usize {
        self.peak_reserved.load(Ordering::Relaxed)
    }

    /// The highest bytes out seen, sampled when the pool allocates and at
    /// each `stats()` (`note_out`); hits from idle objects raise the bytes
    /// out without either, so it can miss a peak between two samples.
    pub(crate) fn peak_out(&self) -> usize {
        self.peak_out.load(Ordering::Relaxed)
    }

    /// Records `out` bytes out as a sample for the high-water mark.
    pub(crate) fn note_out(&self, out: usize) {
        self.peak_out.fetch_max(out, Ordering::Relaxed);
    }

    /// `objects` objects holding `bytes` bytes left the pool's care (freed,
    /// detached; 0 objects: one shrank while handed out).
    pub(crate) fn care_out(&self, objects: usize, bytes: usize) {
        if objects != 0 {
            self.objects_in_care.fetch_sub(objects, Ordering::Relaxed);
        }
        if bytes != 0 {
            self.in_care.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Bytes reserved right now: an upper bound of the idle bytes.
    pub(crate) fn reserved(&self) -> usize {
        self.reserved.load(Ordering::Relaxed)
    }

    /// Bytes by which the reservations exceed the limit in force (after it
    /// was lowered, or demand fell).
    pub(crate) fn excess(&self) -> usize {
        self.reserved().saturating_sub(self.limit_in_force())
    }

    /// Reserves `bytes` if that keeps the total within the limit.
    pub(crate) fn try_reserve(&self, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let mut current = self.reserved.load(Ordering::Relaxed);
        loop {
            let limit = self.limit_in_force();
            let Some(next) = current.checked_add(bytes).filter(|&n| n <= limit) else {
                return false;
            };
            match self.reserved.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.peak_reserved.fetch_max(next, Ordering::Relaxed);
                    return true;
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// Returns `bytes` reserved earlier.
    pub(crate) fn release(&self, bytes: usize) {
        if bytes != 0 {
            let before = self.reserved.fetch_sub(bytes, Ordering::AcqRel);
            debug_assert!(before >= bytes, "budget released more than it reserved");
        }
    }
}

#[cfg(all(test, zeropool_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two threads reserve and release concurrently; the reserved total
    /// never passes the limit and ends where it started.
    #[test]
    fn reservations_never_exceed_the_limit() {
        loom::model(|| {
            let budget = Arc::new(Budget::new(100, false));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let b = budget.clone();
                    thread::spawn(move || {
                        let mut held = 0;
                        for _ in 0..2 {
                            if b.try_reserve(40) {
                                held += 40;
                                assert!(b.reserved() <= 100);
                            }
                        }
                        b.release(held);
                        held
                    })
                })
                .collect();
            for h in handles {
                assert!(h.join().unwrap() <= 80);
            }
            assert_eq!(budget.reserved(), 0);
        });
    }

    /// The pool's accounting in miniature: two thread caches reserve credit,
    /// park objects in a shared shard (a credit-to-shard transfer that leaves
    /// the reservation unchanged) and take them back out (a release). At every
    /// step the reservation stays within the limit, and at the end it equals
    /// exactly what is idle. (Reading the reservation and the shard's bytes
    /// at two instants is not a snapshot, so the cover is checked at the end.)
    #[test]
    fn credit_transfers_keep_idle_bytes_within_the_budget() {
        use crate::shard::Shard;
        loom::model(|| {
            const LIMIT: usize = 24;
            let budget = Arc::new(Budget::new(LIMIT, false));
            let shard = Arc::new(Shard::<usize>::new(1));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (budget, shard) = (budget.clone(), shard.clone());
                    thread::spawn(move || {
                        // Return an 8-byte object: reserve credit for it (a discard if none).
                        let mut credit = 0;
                        if budget.try_reserve(8) {
                            credit += 8;
                            // Spill it: its bytes move from credit to the shard.
                            shard.lock().push(0, crate::idle_object::Idle::new(8, 8));
                            credit -= 8;
                        }
                        assert!(budget.reserved() <= LIMIT);
                        // Get one: if the shard has it, its reservation is released.
                        let popped = shard.lock().pop(0);
                        if let Some(idle) = popped {
                            budget.release(idle.bytes);
                        }
                        assert_eq!(credit, 0);
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(budget.reserved(), shard.bytes());
            assert!(budget.reserved() <= LIMIT);
        });
    }

    /// Lowering the limit while another thread reserves: no reservation
    /// made after the new limit is visible goes past it.
    #[test]
    fn lowered_limit_refuses_new_reservations() {
        loom::model(|| {
            let budget = Arc::new(Budget::new(100, false));
            let b = budget.clone();
            let t = thread::spawn(move || b.try_reserve(60));
            budget.set_limit(50, false);
            let reserved_by_thread = t.join().unwrap();
            assert_eq!(budget.reserved(), if reserved_by_thread { 60 } else { 0 });
            assert!(!budget.try_reserve(1) || !reserved_by_thread);
        });
    }
}

#[cfg(all(test, not(zeropool_loom)))]
mod tests {
    use super::*;

    #[test]
    fn reserve_release_round_trip() {
        let b = Budget::new(10, false);
        assert!(b.try_reserve(10));
        assert!(!b.try_reserve(1));
        b.release(4);
        assert!(b.try_reserve(4));
        assert_eq!(b.reserved(), 10);
        b.set_limit(5, false);
        assert_eq!(b.excess(), 5);
        assert!(b.try_reserve(0));
    }

    #[test]
    fn auto_limit_follows_the_bytes_in_use() {
        let b = Budget::new(1 << 30, true);
        assert_eq!(b.limit_in_force(), AUTO_FLOOR);
        b.care_in(1, 64 << 20);
        assert_eq!(b.limit_in_force(), 4 << 20);
        assert!(b.try_reserve(3 << 20));
        // 61 MiB in use now: the limit follows it down.
        assert_eq!(b.limit_in_force(), (61 << 20) / AUTO_DIVISOR);
        b.care_out(0, 60 << 20);
        assert_eq!(b.limit_in_force(), AUTO_FLOOR);
        assert_eq!(b.excess(), (3 << 20) - AUTO_FLOOR);
        b.set_limit(2 << 20, false);
        assert_eq!(b.limit_in_force(), 2 << 20);
    }

    #[test]
    fn huge_reservation_does_not_overflow() {
        let b = Budget::new(usize::MAX, false);
        assert!(b.try_reserve(usize::MAX - 1));
        assert!(!b.try_reserve(2));
    }
}
