//! Threads killed by a panic: while holding borrowed and owned guards,
//! while inside `get_batch` (a panicking constructor) and `put_batch` (a
//! panicking iterator or `reset`), with a guard kept in a thread-local. Once
//! joined, the counters are exact, every object is back (the exiting
//! thread's cache handed to the shard), and the pool serves other threads.

mod common;
mod faults_support;

use faults_support::{
    arm, assert_exact, expect_injected, injected, Census, Fault, Flaky, Injected,
};
use std::cell::RefCell;
use std::sync::Arc;
use std::thread::JoinHandle;
use zeropool::{OnExhausted, OwnedPoolGuard, Pool};

const SMALL: usize = 1024;
const LARGE: usize = 4096;
const DEATH: Injected = Injected("thread killed");

/// One shard (so "in the shards" is "in the home shard"), two classes, and
/// optionally a cap on bytes out (policy `wait` unless told).
fn pool(cap: Option<usize>) -> Pool<Flaky> {
    capped(cap, OnExhausted::Wait)
}

fn capped(cap: Option<usize>, on: OnExhausted) -> Pool<Flaky> {
    let b = Pool::builder()
        .shards(1)
        .size_classes(&[SMALL, LARGE])
        .tls_cache_size(8)
        .batch_size(4)
        .max_total_memory(64 << 20);
    match cap {
        Some(cap) => b.max_outstanding_memory(cap).on_exhausted(on).build(),
        None => b.build(),
    }
    .unwrap()
}

/// Runs `body` on a thread counted in `census`; returns its handle.
fn spawn<R: Send + 'static>(
    census: &Arc<Census>,
    body: impl FnOnce() -> R + Send + 'static,
) -> JoinHandle<R> {
    let census = census.clone();
    std::thread::spawn(move || {
        let _in = census.enter();
        body()
    })
}

/// Joins a thread that must have died of an injected panic; returns which.
#[track_caller]
fn died<R: std::fmt::Debug>(t: JoinHandle<R>) -> Injected {
    match t.join() {
        Ok(r) => panic!("the thread did not die: returned {r:?}"),
        Err(payload) => injected(payload),
    }
}

/// Idle objects in the shards, all classes.
fn in_shards(pool: &Pool<Flaky>) -> usize {
    pool.stats().classes.iter().map(|c| c.shard_objects).sum()
}

/// Another thread takes `n` objects of each class without allocating:
/// what the dead thread handed back serves it.
#[track_caller]
fn serves_others(pool: &Pool<Flaky>, census: &Arc<Census>, small: usize, large: usize) {
    let before = pool.stats();
    let p = pool.clone();
    spawn(census, move || {
        let sizes: Vec<usize> = [SMALL]
            .repeat(small)
            .into_iter()
            .chain([LARGE].repeat(large))
            .collect();
        drop(p.get_batch(&sizes));
    })
    .join()
    .unwrap();
    let s = pool.stats();
    assert_eq!(s.allocations, before.allocations, "nothing allocated: {s}");
    assert_eq!(s.shared_hits, before.shared_hits + small + large, "{s}");
    assert_exact(pool, census, (0, 0), 0, 0);
}

#[test]
fn a_thread_that_dies_holding_guards_gives_them_all_back() {
    for cap in [None, Some(64 * LARGE)] {
        let census = Census::new();
        let pool = pool(cap);
        let p = pool.clone();
        let t = spawn(&census, move || {
            let a = p.get(LARGE);
            let b = p.get(SMALL);
            let c = p.get_owned(LARGE);
            let d = p.get_owned(SMALL);
            // Some idle ones in its cache too.
            drop(p.get_batch(&[SMALL, SMALL, LARGE]));
            let _held = (a, b, c, d);
            std::panic::panic_any(DEATH);
        });
        assert_eq!(died(t), DEATH);
        let s = assert_exact(&pool, &census, (0, 0), 0, 0);
        assert_eq!((s.allocations, s.objects_retained), (7, 7), "{s}");
        assert_eq!(
            in_shards(&pool),
            7,
            "the exiting thread's cache went to the shard"
        );
        assert_eq!(s.bytes_retained, 4 * SMALL + 3 * LARGE, "{s}");
        serves_others(&pool, &census, 4, 3);
    }
}

#[test]
fn owned_guards_that_left_or_entered_the_dead_thread() {
    let census = Census::new();
    let _in = census.enter();
    let pool = pool(Some(64 * LARGE));
    // One taken here and moved in; one taken there and sent out before it died.
    let moved_in = pool.get_owned(LARGE);
    let (tx, rx) = std::sync::mpsc::channel::<OwnedPoolGuard<Flaky>>();
    let p = pool.clone();
    let t = spawn(&census, move || {
        let _in_hand = moved_in;
        tx.send(p.get_owned(SMALL)).unwrap();
        std::panic::panic_any(DEATH);
    });
    assert_eq!(died(t), DEATH);
    let out = rx.recv().unwrap();
    assert_eq!(out.buf.capacity(), SMALL);
    let s = assert_exact(&pool, &census, (1, SMALL), 0, 0);
    assert_eq!(s.objects_retained, 1, "{s}");
    drop(out); // into this thread's cache
    assert_exact(&pool, &census, (0, 0), 0, 0);
    serves_others(&pool, &census, 0, 1);
}

thread_local! {
    /// A guard kept in a thread-local: dropped while the thread's locals are
    /// destroyed, possibly after the pool's per-thread table is gone.
    static STASH: RefCell<Vec<OwnedPoolGuard<Flaky>>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn a_guard_in_a_thread_local_of_a_dead_thread_comes_back() {
    let census = Census::new();
    let pool = pool(Some(64 * LARGE));
    let p = pool.clone();
    let t = spawn(&census, move || {
        STASH.with(|s| s.borrow_mut().push(p.get_owned(LARGE)));
        drop(p.get(SMALL));
        std::panic::panic_any(DEATH);
    });
    assert_eq!(died(t), DEATH);
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!((s.allocations, s.objects_retained), (2, 2), "{s}");
    assert_eq!(in_shards(&pool), 2, "{s}");
    serves_others(&pool, &census, 1, 1);
}

#[test]
fn a_thread_killed_inside_get_batch() {
    for cap in [None, Some(64 * LARGE)] {
        let census = Census::new();
        let pool = pool(cap);
        let p = pool.clone();
        let t = spawn(&census, move || {
            // Idle objects first, so the batch takes some before it fails.
            let held = p.get(SMALL);
            drop(p.get_batch(&[LARGE, LARGE, SMALL]));
            arm(2, Fault::Panic);
            let _never = p.get_batch(&[LARGE, LARGE, LARGE, SMALL, SMALL, LARGE]);
            drop(held);
        });
        assert_eq!(died(t), Injected("factory"));
        let s = assert_exact(&pool, &census, (0, 0), 0, 0);
        // 4 before, then one fresh large handed out before the second
        // constructor call (for a small one) panicked.
        assert_eq!((s.allocations, s.objects_retained), (5, 5), "{s}");
        assert_eq!(in_shards(&pool), 5, "{s}");
        // Gets: 4 first, then the 2 idle large, the fresh one, the idle small.
        assert_eq!(s.gets, 8, "{s}");
        serves_others(&pool, &census, 2, 3);
    }
}

#[test]
fn a_thread_killed_inside_put_batch() {
    let census = Census::new();
    // Uncapped: `put_guards` takes plain guards back by the batch path.
    let pool = pool(None);
    // A panicking iterator, after three objects (two detached from the pool).
    let p = pool.clone();
    let t = spawn(&census, move || {
        let mine: Vec<Flaky> = (0..2).map(|_| p.get(LARGE).into_inner()).collect();
        let objs = mine.into_iter().chain([Flaky::new(SMALL)]);
        let boom =
            std::iter::from_fn(|| -> Option<Flaky> { std::panic::panic_any(Injected("iterator")) });
        p.put_batch(objs.chain(boom));
    });
    assert_eq!(died(t), Injected("iterator"));
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!(
        (s.detached, s.adopted, s.objects_retained),
        (2, 3, 3),
        "{s}"
    );
    assert_eq!(in_shards(&pool), 3, "{s}");

    // A panicking reset in the middle: one kept, one dropped, two never given.
    let p = pool.clone();
    let t = spawn(&census, move || {
        let mut objs: Vec<Flaky> = (0..4).map(|_| Flaky::new(LARGE)).collect();
        objs[1].explode_in_reset = true;
        p.put_batch(objs);
    });
    assert_eq!(died(t), Injected("reset"));
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!(
        (s.adopted, s.reset_panics, s.objects_retained),
        (5, 1, 4),
        "{s}"
    );
    assert_eq!(in_shards(&pool), 4, "{s}");

    // The same through put_guards, with guards of a batch.
    let p = pool.clone();
    let t = spawn(&census, move || {
        let mut guards = p.get_batch(&[LARGE, LARGE, LARGE]);
        guards[1].explode_in_reset = true;
        p.put_guards(guards);
    });
    assert_eq!(died(t), Injected("reset"));
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!(s.reset_panics, 2, "{s}");
    // Three large ones were taken from the shard; the two good ones came back.
    assert_eq!(s.objects_retained, 4 - 3 + 2, "{s}");
    assert_eq!(in_shards(&pool), 3, "{s}");
    serves_others(&pool, &census, 1, 2);
}

#[test]
fn many_threads_die_at_random_points_and_nothing_is_lost() {
    let census = Census::new();
    // Under a cap, but never waiting: a thread that dies while others wait
    // for its bytes is the waiter test's business.
    let pool = capped(Some(256 * LARGE), OnExhausted::Allocate);
    let threads: Vec<JoinHandle<()>> = (0..4u64)
        .map(|seed| {
            let p = pool.clone();
            spawn(&census, move || {
                let mut rng = common::XorShift::new(seed + 1);
                let mut held = Vec::new();
                let mut owned = Vec::new();
                let die_at = rng.range(20, 200);
                for step in 0.. {
                    if rng.chance(10) {
                        arm(rng.range(1, 4), Fault::Panic);
                    }
                    if step == die_at {
                        std::panic::panic_any(DEATH);
                    }
                    let n = [SMALL, LARGE, 3000][rng.below(3)];
                    match rng.below(5) {
                        0 => held.push(p.get(n)),
                        1 => owned.push(p.get_owned(n)),
                        2 => held.extend(p.get_batch(&[n, SMALL, LARGE])),
                        3 => {
                            let keep = rng.below(held.len() + 1);
                            held.truncate(keep);
                        }
                        _ => {
                            let objs: Vec<Flaky> =
                                owned.drain(..).map(|g| g.into_inner()).collect();
                            p.put_batch(objs);
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        // Each dies of an armed constructor fault or of its planned death.
        let why = died(t);
        assert!(why == DEATH || why == Injected("factory"), "{why:?}");
    }
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!(in_shards(&pool), s.objects_retained, "{s}");
    assert!(s.objects_retained > 0, "{s}");
    let p = pool.clone();
    let t = spawn(&census, move || {
        arm(1, Fault::Panic);
        expect_injected(|| p.get(1 << 20))
    });
    assert_eq!(t.join().unwrap(), Injected("factory"));
    assert_exact(&pool, &census, (0, 0), 0, 0);
}
