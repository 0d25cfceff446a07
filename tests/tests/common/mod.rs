//! Helpers shared by the integration tests (each test file is its own crate
//! and uses only some of them).
#![allow(dead_code)]

use zeropool::PoolStats;

/// A tiny deterministic generator (xorshift64*), so the multi-thread tests
/// replay the same operations on every run without extra dependencies.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        // Never zero: xorshift would stay at zero forever.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Asserts the object ledger, computed here independently of
/// `PoolStats::is_balanced`, and that `is_balanced` agrees.
#[track_caller]
pub fn assert_balanced(s: &PoolStats) {
    let sources = s.allocations + s.adopted;
    let sinks = s.objects_retained + s.objects_outstanding + s.detached + s.freed;
    assert_eq!(
        sources, sinks,
        "ledger: allocations {} + adopted {} != retained {} + outstanding {} + detached {} + freed {}\n{s}",
        s.allocations, s.adopted, s.objects_retained, s.objects_outstanding, s.detached, s.freed
    );
    assert!(
        s.is_balanced(),
        "is_balanced() disagrees with the ledger\n{s}"
    );
}

/// Invariants of a snapshot taken while the pool is quiet.
#[track_caller]
pub fn assert_consistent(s: &PoolStats) {
    assert_balanced(s);
    assert_eq!(
        s.freed,
        s.discards + s.undersize_drops + s.oversize_drops + s.reset_panics + s.trimmed,
        "every freed object has exactly one reason\n{s}"
    );
    assert_eq!(s.gets, s.tls_hits + s.shared_hits + s.allocations, "{s}");
    assert!(s.steals <= s.shared_hits, "{s}");
    assert!(s.oversize_requests <= s.allocations, "{s}");
    assert!(s.bytes_retained <= s.bytes_reserved, "{s}");
    assert!(s.bytes_reserved <= s.max_total_memory, "{s}");
    assert!(s.bytes_retained <= s.max_total_memory, "{s}");
}

/// The smallest class serving a request of `n` bytes (`None`: oversize).
pub fn class_for_request(classes: &[usize], n: usize) -> Option<usize> {
    classes.iter().position(|&c| c >= n)
}
