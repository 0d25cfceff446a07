//! The shared tier: shard count and stealing from sibling shards.

mod common;
mod config_support;

use common::assert_consistent;
use config_support::{is_child, run_child, TempDir};
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
        let mut builder = BufferPool::builder().shards(asked);
        if cfg!(miri) {
            // The default class tables take seconds to build under Miri.
            builder = builder.size_classes(&[4096]);
        }
        let pool = builder.build().unwrap();
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

/// Runs test `name` alone in a fresh child process, unless this is that
/// child. A thread's home shard is its per-process sequence number (counted
/// as threads first use a pool) modulo the shard count, so in a child that
/// runs one test and whose first pool-using thread is the test's first
/// spawned thread, the homes are known: threads 1, 2, 3... of the test have
/// shards 1, 2, 3... of 1024, all different, whatever else the test binary
/// runs in other processes.
fn alone(name: &str) -> bool {
    if is_child(name) {
        return true;
    }
    let dir = TempDir::new("shards");
    run_child(name, &[], dir.path());
    false
}

#[test]
#[cfg_attr(miri, ignore = "alone: .ci/miri runs it in a Miri process of its own")]
fn threads_reuse_objects_from_sibling_shards_without_allocating() {
    if !alone("threads_reuse_objects_from_sibling_shards_without_allocating") {
        return;
    }
    // 1024 shards, and (in this child) the filler and each taker have
    // different home shards: every taker's home is empty, so it must steal.
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
        assert!(
            s.steals > 0 && s.steals <= s.shared_hits,
            "thread {t}'s first object had to come from a sibling: {s}"
        );
        assert_consistent(&s);
    }
}

#[test]
#[cfg_attr(miri, ignore = "alone: .ci/miri runs it in a Miri process of its own")]
fn get_batch_also_reaches_sibling_shards() {
    if !alone("get_batch_also_reaches_sibling_shards") {
        return;
    }
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

/// What holds for any home shards, in this process whatever it ran before:
/// a thread takes idle objects from whichever shard holds them (its own
/// home, or a sibling by stealing) before it allocates.
#[test]
fn idle_objects_in_any_shard_are_used_before_allocating() {
    const FILL: usize = 20;
    for shards in [2, 1024] {
        let pool = BufferPool::builder()
            .shards(shards)
            .size_classes(&[4096])
            .build()
            .unwrap();
        let p = pool.clone();
        thread::spawn(move || drop((0..FILL).map(|_| p.get(4096)).collect::<Vec<_>>()))
            .join()
            .unwrap();
        for t in 0..4 {
            let p = pool.clone();
            thread::spawn(move || drop((0..FILL).map(|_| p.get(4096)).collect::<Vec<_>>()))
                .join()
                .unwrap();
            let s = pool.stats();
            assert_eq!(s.allocations, FILL, "{shards} shards, thread {t}: {s}");
            assert_eq!(s.tls_hits + s.shared_hits, (t + 1) * FILL, "{s}");
            assert!(s.steals <= s.shared_hits, "{s}");
            assert_consistent(&s);
        }
    }
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
