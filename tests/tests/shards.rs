//! The shared tier: shard count and stealing from sibling shards.

mod common;

use common::assert_consistent;
use std::thread;
use zeropool::{auto_shards, BufferPool, Error, MAX_SHARDS};

#[test]
fn shard_count_is_rounded_up_to_a_power_of_two() {
    for (asked, got) in [
        (1, 1),
        (2, 2),
        (3, 4),
        (5, 8),
        (64, 64),
        (1000, 1024),
        (MAX_SHARDS, MAX_SHARDS),
    ] {
        let pool = BufferPool::builder().shards(asked).build().unwrap();
        assert_eq!(pool.shards(), got, "shards({asked})");
    }
    let auto = auto_shards();
    assert!(auto.is_power_of_two() && (1..=64).contains(&auto), "{auto}");
    assert_eq!(BufferPool::new().shards(), auto);
}

#[test]
fn shard_count_out_of_range_is_an_error() {
    for bad in [0, MAX_SHARDS + 1] {
        let err = BufferPool::builder().shards(bad).build().unwrap_err();
        let Error::Invalid(problems) = &err else {
            panic!("unexpected error {err:?}")
        };
        assert_eq!(problems.len(), 1, "{err}");
        assert_eq!(problems[0].key, "shards");
        assert_eq!(problems[0].value, bad.to_string());
    }
}

#[test]
fn threads_reuse_objects_from_sibling_shards_without_allocating() {
    // 1024 shards: a thread's home shard is picked from a per-thread sequence
    // number modulo the shard count, so two threads share a home shard only
    // if 1024 threads started using pools in between; this test binary
    // starts far fewer, so every later thread here has a different home
    // shard from the first one, and must steal.
    const FILL: usize = 20;
    const TAKE: usize = 5;
    let pool = BufferPool::builder()
        .shards(1024)
        .size_classes(&[4096])
        .build()
        .unwrap();

    let p = pool.clone();
    thread::spawn(move || {
        let held: Vec<_> = (0..FILL).map(|_| p.get(4096)).collect();
        drop(held); // fills this thread's cache and spills to its home shard
    })
    .join()
    .unwrap();
    let s = pool.stats();
    assert_eq!((s.allocations, s.objects_retained), (FILL, FILL), "{s}");
    assert_eq!(s.steals, 0);

    for t in 0..4 {
        let p = pool.clone();
        thread::spawn(move || {
            let held: Vec<_> = (0..TAKE).map(|_| p.get(4096)).collect();
            assert!(held.iter().all(|b| b.capacity() == 4096));
        })
        .join()
        .unwrap();
        let s = pool.stats();
        assert_eq!(s.allocations, FILL, "thread {t} allocated: {s}");
        assert_eq!(s.objects_retained, FILL, "{s}");
        assert_eq!(s.gets, FILL + (t + 1) * TAKE, "{s}");
        if t == 0 {
            assert!(
                s.steals > 0,
                "the first object had to come from a sibling: {s}"
            );
        }
        assert!(s.steals <= s.shared_hits);
        assert_consistent(&s);
    }
}

#[test]
fn get_batch_also_reaches_sibling_shards() {
    let pool = BufferPool::builder()
        .shards(1024)
        .size_classes(&[4096])
        .build()
        .unwrap();
    let p = pool.clone();
    thread::spawn(move || drop(p.get_batch(&[4096; 16])))
        .join()
        .unwrap();
    assert_eq!(pool.stats().objects_retained, 16);
    let p = pool.clone();
    thread::spawn(move || {
        let got = p.get_batch(&[4096; 16]);
        assert_eq!(got.len(), 16);
    })
    .join()
    .unwrap();
    let s = pool.stats();
    assert_eq!(s.allocations, 16, "{s}");
    assert!(s.steals > 0, "{s}");
    assert_consistent(&s);
}

#[test]
fn concurrent_threads_keep_the_ledger() {
    let pool = BufferPool::builder()
        .shards(2)
        .size_classes(&[1024, 4096])
        .tls_cache_size(2)
        .batch_size(1)
        .build()
        .unwrap();
    thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|t| {
                let pool = &pool;
                s.spawn(move || {
                    for i in 0..300 {
                        let held: Vec<_> = (0..(i % 5))
                            .map(|k| pool.get(1000 + (k + t) * 700))
                            .collect();
                        drop(held);
                    }
                })
            })
            .collect();
        // An explicit join also waits for the thread's exit hooks (which hand
        // its cache to a shard); the scope's implicit join does not.
        for w in workers {
            w.join().unwrap();
        }
    });
    let s = pool.stats();
    assert_eq!(s.gets, 3 * (0..300).map(|i| i % 5).sum::<usize>(), "{s}");
    assert_eq!(s.objects_outstanding, 0);
    assert_eq!(s.bytes_reserved, s.bytes_retained, "{s}");
    assert_consistent(&s);
}
