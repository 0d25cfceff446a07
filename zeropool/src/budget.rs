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

use crate::sync::{AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;

/// Reserved bytes against a limit; lock-free, never above the limit.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: CachePadded<AtomicUsize>,
    reserved: CachePadded<AtomicUsize>,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit: CachePadded::new(AtomicUsize::new(limit)),
            reserved: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::SeqCst);
    }

    /// Bytes reserved right now: an upper bound of the idle bytes.
    pub(crate) fn reserved(&self) -> usize {
        self.reserved.load(Ordering::Relaxed)
    }

    /// Bytes by which the reservations exceed the limit (after it was lowered).
    pub(crate) fn excess(&self) -> usize {
        self.reserved().saturating_sub(self.limit())
    }

    /// Reserves `bytes` if that keeps the total within the limit.
    pub(crate) fn try_reserve(&self, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let mut current = self.reserved.load(Ordering::Relaxed);
        loop {
            let limit = self.limit.load(Ordering::Relaxed);
            let Some(next) = current.checked_add(bytes).filter(|&n| n <= limit) else {
                return false;
            };
            match self.reserved.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
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
            let budget = Arc::new(Budget::new(100));
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
            let budget = Arc::new(Budget::new(LIMIT));
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
                            shard.lock().push(0, 8, 8);
                            credit -= 8;
                        }
                        assert!(budget.reserved() <= LIMIT);
                        // Get one: if the shard has it, its reservation is released.
                        let popped = shard.lock().pop(0, |&b| b);
                        if let Some((_, bytes)) = popped {
                            budget.release(bytes);
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
            let budget = Arc::new(Budget::new(100));
            let b = budget.clone();
            let t = thread::spawn(move || b.try_reserve(60));
            budget.set_limit(50);
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
        let b = Budget::new(10);
        assert!(b.try_reserve(10));
        assert!(!b.try_reserve(1));
        b.release(4);
        assert!(b.try_reserve(4));
        assert_eq!(b.reserved(), 10);
        b.set_limit(5);
        assert_eq!(b.excess(), 5);
        assert!(b.try_reserve(0));
    }

    #[test]
    fn huge_reservation_does_not_overflow() {
        let b = Budget::new(usize::MAX);
        assert!(b.try_reserve(usize::MAX - 1));
        assert!(!b.try_reserve(2));
    }
}
