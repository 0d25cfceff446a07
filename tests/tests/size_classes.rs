//! Size classes: requests go to the smallest class that fits; objects go back
//! to a class their real capacity serves; oversize and undersize objects are
//! freed and counted.

mod common;

use common::{assert_consistent, class_for_request};
use zeropool::BufferPool;

const CLASSES: [usize; 3] = [4096, 16384, 65536];

fn pool() -> BufferPool {
    BufferPool::builder()
        .shards(1)
        .size_classes(&CLASSES)
        .build()
        .expect("valid settings")
}

#[test]
fn a_fresh_object_has_the_size_of_the_smallest_class_that_fits() {
    let pool = pool();
    let cases = [
        (0, 4096),
        (1, 4096),
        (4095, 4096),
        (4096, 4096),
        (4097, 16384),
        (16384, 16384),
        (16385, 65536),
        (65536, 65536),
    ];
    // Hold them all so that every one is a fresh allocation.
    let held: Vec<_> = cases.iter().map(|&(n, _)| pool.get(n)).collect();
    for (buf, &(n, cap)) in held.iter().zip(&cases) {
        assert_eq!(buf.capacity(), cap, "get({n})");
    }
    let s = pool.stats();
    assert_eq!(s.allocations, cases.len());
    assert_eq!(s.oversize_requests, 0);
    let per_class: Vec<_> = s
        .classes
        .iter()
        .map(|c| (c.size, c.gets, c.allocations))
        .collect();
    let expect: Vec<_> = CLASSES
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let n = cases
                .iter()
                .filter(|&&(req, _)| class_for_request(&CLASSES, req) == Some(i))
                .count();
            (size, n, n)
        })
        .collect();
    assert_eq!(per_class, expect);
    drop(held);
    assert_consistent(&pool.stats());
}

#[test]
fn an_object_goes_back_to_the_class_its_capacity_serves() {
    let pool = pool();
    let odd = Vec::<u8>::with_capacity(20_000);
    let cap = odd.capacity();
    assert!((16384..65536).contains(&cap));
    let ptr = odd.as_ptr();
    pool.put(odd);
    let s = pool.stats();
    assert_eq!(
        (s.adopted, s.objects_retained, s.bytes_retained),
        (1, 1, cap),
        "{s}"
    );

    // 20000 bytes are more than class 16384 promises but less than 65536:
    // a request for 20000 goes to class 65536 and cannot get it.
    let big = pool.get(20_000);
    assert_eq!(big.capacity(), 65536);
    assert_ne!(big.as_ptr(), ptr);
    assert_eq!(pool.stats().allocations, 1);
    // A request of class 16384 gets it.
    let mid = pool.get(16384);
    assert_eq!(mid.as_ptr(), ptr);
    assert_eq!(mid.capacity(), cap);
    assert_eq!(pool.stats().allocations, 1);
    drop((big, mid));

    // Same for a small one in the first class.
    let small = Vec::<u8>::with_capacity(5000);
    let ptr = small.as_ptr();
    pool.put(small);
    let other = pool.get(4097);
    assert_ne!(other.as_ptr(), ptr);
    let mine = pool.get(4096);
    assert_eq!(mine.as_ptr(), ptr);
    drop((other, mine));
    assert_consistent(&pool.stats());
}

#[test]
fn a_guard_whose_buffer_grew_returns_to_its_new_class() {
    let pool = pool();
    let mut g = pool.get(100);
    assert_eq!(g.capacity(), 4096);
    g.reserve_exact(30_000);
    let cap = g.capacity();
    assert!((16384..65536).contains(&cap), "{cap}");
    let ptr = g.as_ptr();
    drop(g);
    // It serves class 16384 now, not 4096.
    let small = pool.get(4096);
    assert_ne!(small.as_ptr(), ptr);
    let mid = pool.get(16384);
    assert_eq!(mid.as_ptr(), ptr);
    assert_eq!(mid.capacity(), cap);
    let s = pool.stats();
    assert_eq!(s.allocations, 2, "{s}");
    drop((small, mid));
    assert_consistent(&pool.stats());
}

#[test]
fn oversize_requests_are_allocated_exactly_and_freed_on_return() {
    let pool = pool();
    for (i, n) in [65537, 100_000, 1 << 20].into_iter().enumerate() {
        let g = pool.get(n);
        assert_eq!(g.capacity(), n, "allocated exactly");
        let s = pool.stats();
        assert_eq!(s.oversize_requests, i + 1);
        assert_eq!(s.allocations, i + 1);
        assert_eq!(s.bytes_outstanding, n);
        drop(g);
        let s = pool.stats();
        assert_eq!(s.oversize_drops, i + 1, "{s}");
        assert_eq!(s.freed, i + 1, "{s}");
        assert_eq!(s.objects_retained, 0, "{s}");
        assert_eq!(s.bytes_retained, 0, "{s}");
        assert_eq!(s.bytes_outstanding, 0, "{s}");
        assert_consistent(&s);
    }
    // No reuse for oversize requests.
    drop(pool.get(70_000));
    drop(pool.get(70_000));
    let s = pool.stats();
    assert_eq!(
        (s.oversize_requests, s.allocations, s.tls_hits),
        (5, 5, 0),
        "{s}"
    );
    // The per-class rows do not count them.
    assert_eq!(s.classes.iter().map(|c| c.gets).sum::<usize>(), 0);
}

#[test]
fn objects_far_above_the_largest_class_are_not_kept() {
    let pool = pool();
    // Up to twice the largest class is kept (in the largest class)...
    pool.put(Vec::with_capacity(2 * 65536));
    let s = pool.stats();
    assert_eq!((s.objects_retained, s.oversize_drops), (1, 0), "{s}");
    // ...well beyond that it is freed.
    pool.put(Vec::with_capacity(2 * 65536 + 2));
    let s = pool.stats();
    assert_eq!(
        (s.objects_retained, s.oversize_drops, s.freed),
        (1, 1, 1),
        "{s}"
    );
    // Also a guard that grew that far.
    let mut g = pool.get(4096);
    g.reserve_exact(300_000);
    drop(g);
    let s = pool.stats();
    assert_eq!(
        (s.objects_retained, s.oversize_drops, s.freed),
        (1, 2, 2),
        "{s}"
    );
    assert_consistent(&s);
}

#[test]
fn objects_below_the_smallest_class_are_dropped_and_counted() {
    let pool = pool();
    pool.put(Vec::with_capacity(100));
    pool.put(Vec::new());
    pool.put(Vec::with_capacity(4095));
    let s = pool.stats();
    assert_eq!(s.undersize_drops, 3, "{s}");
    assert_eq!(s.freed, 3);
    assert_eq!(s.adopted, 3);
    assert_eq!(s.objects_retained, 0);
    assert_eq!(s.bytes_retained, 0);
    // A guard whose buffer shrank below the smallest class.
    let mut g = pool.get(4096);
    g.shrink_to_fit();
    assert_eq!(g.capacity(), 0);
    drop(g);
    let s = pool.stats();
    assert_eq!(
        (s.undersize_drops, s.freed, s.objects_retained),
        (4, 4, 0),
        "{s}"
    );
    assert_consistent(&s);
    // Exactly the smallest class is kept.
    pool.put(Vec::with_capacity(4096));
    assert_eq!(pool.stats().objects_retained, 1);
}

#[test]
fn per_class_counters_split_the_totals() {
    let pool = pool();
    for _ in 0..3 {
        drop(pool.get(10));
    }
    drop(pool.get(10_000));
    let s = pool.stats();
    assert_eq!(s.classes.len(), 3);
    let c0 = &s.classes[0];
    assert_eq!(
        (c0.size, c0.gets, c0.tls_hits, c0.allocations),
        (4096, 3, 2, 1)
    );
    let c1 = &s.classes[1];
    assert_eq!(
        (c1.size, c1.gets, c1.tls_hits, c1.allocations),
        (16384, 1, 0, 1)
    );
    let c2 = &s.classes[2];
    assert_eq!((c2.size, c2.gets), (65536, 0));
    assert_eq!(s.classes.iter().map(|c| c.gets).sum::<usize>(), s.gets);
}

#[test]
// Regression: in bfb8495 `SizeClasses::for_capacity` tested
// `capacity / 2 > top`, so a capacity of 2*top+1 was kept.
fn an_object_one_byte_over_twice_the_largest_class_is_not_kept() {
    // Documented: objects that "grew past twice the largest class" are freed.
    let pool = pool();
    pool.put(Vec::with_capacity(2 * 65536 + 1));
    let s = pool.stats();
    assert_eq!((s.objects_retained, s.oversize_drops), (0, 1), "{s}");
}

#[test]
fn a_failing_oversize_allocation_leaves_the_pool_consistent() {
    let pool = pool();
    drop(pool.get(4096));
    // `Vec::with_capacity(usize::MAX)` panics ("capacity overflow").
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.get(usize::MAX).capacity()
    }));
    assert!(result.is_err());
    let s = pool.stats();
    assert_eq!(
        (s.gets, s.objects_outstanding, s.objects_retained),
        (1, 0, 1),
        "{s}"
    );
    assert_consistent(&s);
    drop(pool.get(4096));
    assert_eq!(pool.stats().tls_hits, 1);
}
