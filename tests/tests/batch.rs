//! `get_batch` and `put_batch`.

mod common;

use common::assert_consistent;
use std::thread;
use zeropool::BufferPool;

fn pool(limit: usize) -> BufferPool {
    BufferPool::builder()
        .shards(1)
        .size_classes(&[4096, 16384, 65536])
        .max_total_memory(limit)
        .build()
        .expect("valid settings")
}

#[test]
fn get_batch_returns_one_guard_per_size_in_order() {
    let pool = pool(1 << 30);
    let same = pool.get_batch(&[4096; 32]);
    assert_eq!(same.len(), 32);
    assert!(same.iter().all(|g| g.is_empty() && g.capacity() == 4096));
    let mut ptrs: Vec<_> = same.iter().map(|g| g.as_ptr()).collect();
    ptrs.sort();
    ptrs.dedup();
    assert_eq!(ptrs.len(), 32, "32 distinct buffers");

    // Mixed, with zero and oversize sizes: fresh objects show the order.
    let sizes = [0, 65537, 1, 16384, 4097, 200_000, 65536, 4096, 16385];
    let expect = [4096, 65537, 4096, 16384, 16384, 200_000, 65536, 4096, 65536];
    let mixed = pool.get_batch(&sizes);
    let caps: Vec<_> = mixed.iter().map(|g| g.capacity()).collect();
    // Class 4096 requests may reuse none of the 32 (still held): all fresh.
    assert_eq!(caps, expect);
    assert!(mixed.iter().all(|g| g.is_empty()));
    let s = pool.stats();
    assert_eq!(s.gets, 32 + sizes.len());
    assert_eq!(s.oversize_requests, 2);
    assert_eq!(s.objects_outstanding, 32 + sizes.len());
    assert_eq!(
        s.bytes_outstanding,
        32 * 4096 + expect.iter().sum::<usize>()
    );
    drop((same, mixed));
    assert!(pool.get_batch(&[]).is_empty());
    let s = pool.stats();
    assert_eq!(s.gets, 32 + sizes.len(), "an empty batch gets nothing");
    assert_eq!(s.objects_outstanding, 0);
    assert_consistent(&s);
}

#[test]
fn get_batch_keeps_order_when_reusing_objects() {
    let pool = pool(1 << 30);
    // Distinct capacities: 5000 and 6000 serve class 4096, 20000 class 16384.
    for cap in [5000, 6000, 20_000] {
        pool.put(Vec::with_capacity(cap));
    }
    let got = pool.get_batch(&[16384, 100, 70_000, 4096, 65536]);
    let caps: Vec<_> = got.iter().map(|g| g.capacity()).collect();
    assert_eq!(caps[0], 20_000);
    assert!([5000, 6000].contains(&caps[1]), "{caps:?}");
    assert_eq!(caps[2], 70_000);
    assert!(
        [5000, 6000].contains(&caps[3]) && caps[3] != caps[1],
        "{caps:?}"
    );
    assert_eq!(caps[4], 65536);
    let s = pool.stats();
    assert_eq!(s.allocations, 2, "only the oversize and the 65536 one: {s}");
    drop(got);
    assert_consistent(&pool.stats());
}

#[test]
fn get_batch_serves_from_the_thread_cache_and_the_shard() {
    let pool = pool(1 << 30);
    drop(pool.get_batch(&[4096; 32])); // cache full, the rest spilled
    let s = pool.stats();
    assert_eq!((s.allocations, s.objects_retained), (32, 32), "{s}");
    let again = pool.get_batch(&[4096; 32]);
    let s = pool.stats();
    assert_eq!(s.allocations, 32, "no new allocation: {s}");
    assert!(s.tls_hits > 0 && s.shared_hits > 0, "{s}");
    assert_eq!(s.tls_hits + s.shared_hits, 32, "{s}");
    assert_eq!(s.objects_retained, 0, "{s}");
    assert_eq!(s.bytes_retained, 0, "{s}");
    drop(again);
    assert_consistent(&pool.stats());
}

#[test]
fn put_batch_retains_objects_within_the_budget() {
    let pool = pool(1 << 30);
    let objs: Vec<Vec<u8>> = (0..64).map(|_| Vec::with_capacity(4096)).collect();
    pool.put_batch(objs);
    let s = pool.stats();
    assert_eq!(s.objects_retained, 64, "{s}");
    assert_eq!(s.bytes_retained, 64 * 4096, "{s}");
    assert_eq!((s.adopted, s.puts, s.freed), (64, 64, 0), "{s}");
    assert_consistent(&s);
    // They are all reused.
    let got = pool.get_batch(&[4096; 64]);
    let s = pool.stats();
    assert_eq!(s.allocations, 0, "{s}");
    assert_eq!(s.objects_retained, 0, "{s}");
    drop(got);

    // Detached ones, as in the docs.
    let pool = BufferPool::new();
    let objs: Vec<Vec<u8>> = pool
        .get_batch(&[4096; 64])
        .into_iter()
        .map(|g| g.into_inner())
        .collect();
    assert_eq!(pool.stats().detached, 64);
    pool.put_batch(objs);
    let s = pool.stats();
    assert_eq!(
        (s.objects_retained, s.adopted, s.allocations),
        (64, 64, 64),
        "{s}"
    );
    assert_consistent(&s);
}

#[test]
fn put_batch_respects_the_budget() {
    const LIMIT: usize = 10 * 4096;
    let pool = pool(LIMIT);
    pool.put_batch((0..64).map(|_| Vec::with_capacity(4096)));
    let s = pool.stats();
    assert!(s.bytes_retained <= LIMIT, "{s}");
    // Nothing else holds budget, so exactly ten fit.
    assert_eq!(s.objects_retained, 10, "{s}");
    assert_eq!(s.discards, 54, "{s}");
    assert_eq!(s.freed, 54, "{s}");
    assert_eq!(s.adopted, 64, "{s}");
    assert_consistent(&s);
}

#[test]
fn put_batch_keeps_the_small_objects_first_when_short_of_budget() {
    let pool = pool(3 * 4096 + 16384);
    let caps = [65536, 4096, 16384, 4096, 65536, 4096];
    pool.put_batch(caps.iter().map(|&c| Vec::with_capacity(c)));
    let s = pool.stats();
    assert!(s.bytes_retained <= pool.max_total_memory(), "{s}");
    assert!(s.objects_retained >= 1 && s.discards >= 1, "{s}");
    assert_eq!(s.objects_retained + s.discards, caps.len(), "{s}");
    assert_consistent(&s);
}

#[test]
fn put_batch_routes_and_drops_like_put() {
    let pool = pool(1 << 30);
    let objs = vec![
        Vec::with_capacity(10),        // undersize
        Vec::with_capacity(1 << 20),   // far oversize
        Vec::with_capacity(4096),      // class 4096
        Vec::with_capacity(20_000),    // class 16384
        Vec::with_capacity(2 * 65536), // class 65536
    ];
    let mut dirty = Vec::with_capacity(4096);
    dirty.extend_from_slice(b"dirty");
    pool.put_batch(objs.into_iter().chain([dirty]));
    let s = pool.stats();
    assert_eq!(
        (s.adopted, s.undersize_drops, s.oversize_drops),
        (6, 1, 1),
        "{s}"
    );
    assert_eq!(s.objects_retained, 4, "{s}");
    assert_eq!(s.bytes_retained, 4096 + 20_000 + 2 * 65536 + 4096, "{s}");
    assert_consistent(&s);
    for g in pool.get_batch(&[4096, 4096, 16384, 65536]) {
        assert!(g.is_empty(), "reset by put_batch");
    }
    assert_eq!(pool.stats().allocations, 0);
}

#[test]
fn contention_events_is_a_readable_counter() {
    let pool = BufferPool::builder()
        .shards(1)
        .size_classes(&[4096])
        .tls_cache_size(1)
        .batch_size(1)
        .build()
        .unwrap();
    // One thread alone never finds a shard lock held.
    for _ in 0..100 {
        let held = pool.get_batch(&[4096; 4]);
        drop(held);
    }
    assert_eq!(pool.stats().contention_events, 0);

    // Two threads spilling to and refilling from the one shard may contend;
    // the counter only grows.
    let mut last = 0;
    thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..300 {
                        let held: Vec<_> = (0..3).map(|_| pool.get(4096)).collect();
                        drop(held);
                        pool.put_batch([Vec::with_capacity(4096)]);
                    }
                })
            })
            .collect();
        for _ in 0..50 {
            let c = pool.stats().contention_events;
            assert!(c >= last, "{c} < {last}");
            last = c;
            thread::yield_now();
        }
        // An explicit join also waits for the thread's exit hooks (which hand
        // its cache to a shard); the scope's implicit join does not.
        for w in workers {
            w.join().unwrap();
        }
    });
    let s = pool.stats();
    assert!(s.contention_events >= last);
    assert_eq!(
        s.contention_events,
        pool.stats().contention_events,
        "quiet pool"
    );
    assert_consistent(&s);
}

#[test]
// Regression: in bfb8495 `Inner::acquire_batch` dropped the objects it had
// already taken from the cache/shards when a later allocation panicked, and
// they stayed counted as outstanding.
fn get_batch_whose_allocation_panics_loses_nothing() {
    let pool = pool(1 << 30);
    drop(pool.get_batch(&[4096; 3])); // three idle objects
    assert_eq!(pool.stats().objects_retained, 3);
    // The idle objects are taken first; then allocating `usize::MAX` bytes
    // panics ("capacity overflow"), as `Vec::with_capacity` does.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.get_batch(&[4096, 4096, usize::MAX]).len()
    }));
    assert!(result.is_err());
    let s = pool.stats();
    // No guard exists, so nothing may be outstanding; the two objects taken
    // for the batch are back in the pool (or at least counted as freed).
    assert_eq!(s.objects_outstanding, 0, "{s}");
    assert_eq!(s.bytes_outstanding, 0, "{s}");
    assert_consistent(&s);
}
