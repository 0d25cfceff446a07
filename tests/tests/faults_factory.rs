//! Fault injection at the pool's factory (`Poolable::with_capacity_hint`)
//! and in `put_batch`: a constructor that "fails" (returns a value smaller
//! than asked, as a fallible allocator falling back to an empty value does)
//! or panics on a chosen call, through every way of getting an object; a
//! `put_batch` whose iterator or `reset` panics midway. After each fault the
//! ledger is exact, the outstanding objects, bytes and cap charge are what
//! the test still holds, every value alive is idle or held, and the pool
//! still serves gets and puts.

mod common;
mod faults_support;

use faults_support::{
    arm, assert_exact, assert_exact_charged, calls, expect_injected, held, pending, Census, Fault,
    Flaky, Injected,
};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use zeropool::{OnExhausted, Pool, PoolGuard};

const SMALL: usize = 1024;
const LARGE: usize = 4096;
const FACTORY: Injected = Injected("factory");
const RESET: Injected = Injected("reset");

fn pool() -> Pool<Flaky> {
    Pool::builder()
        .shards(1)
        .size_classes(&[SMALL, LARGE])
        .tls_cache_size(8)
        .batch_size(4)
        .max_total_memory(64 << 20)
        .build()
        .unwrap()
}

fn capped(cap: usize, on: OnExhausted) -> Pool<Flaky> {
    Pool::builder()
        .shards(1)
        .size_classes(&[SMALL, LARGE])
        .max_total_memory(64 << 20)
        .max_outstanding_memory(cap)
        .on_exhausted(on)
        .build()
        .unwrap()
}

/// Gets, puts and batches still work, and leave the pool exact (one object
/// out at a time, or a batch, so that a small cap under `wait` never blocks).
#[track_caller]
fn still_serves(pool: &Pool<Flaky>, census: &Census) {
    let g = pool.get(LARGE);
    assert!(g.buf.capacity() >= LARGE);
    drop(g);
    let o = pool.get_owned(SMALL);
    assert!(o.buf.capacity() >= SMALL);
    drop(o);
    let many = pool.get_batch(&[SMALL, LARGE, SMALL]);
    assert_eq!(many.len(), 3);
    let objs: Vec<Flaky> = many.into_iter().map(PoolGuard::into_inner).collect();
    pool.put_batch(objs);
    pool.put(Flaky::new(LARGE));
    assert_exact(pool, census, (0, 0), 0, 0);
}

// ----- a factory that fails: values smaller than asked ----------------------

#[test]
fn an_empty_fallback_is_handed_out_counted_and_freed_never_pooled() {
    let census = Census::new();
    let _in = census.enter();
    let pool = pool();
    arm(1, Fault::Shrink(0));
    let g = pool.get(LARGE);
    assert_eq!(pending(), 0, "the fault fired");
    assert_eq!(g.buf.capacity(), 0, "what the factory made is handed out");
    let s = assert_exact(&pool, &census, (1, 0), 0, 0);
    assert_eq!((s.gets, s.allocations), (1, 1), "{s}");
    drop(g);
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!(
        (s.undersize_drops, s.freed, s.objects_retained),
        (1, 1, 0),
        "freed, not kept: {s}"
    );

    // The same through an owned guard, sent to another thread.
    arm(1, Fault::Shrink(0));
    let o = pool.get_owned(SMALL);
    assert_eq!(o.buf.capacity(), 0);
    std::thread::spawn(move || drop(o)).join().unwrap();
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!(s.undersize_drops, 2, "{s}");
    still_serves(&pool, &census);
}

#[test]
fn a_short_value_never_joins_a_smaller_class() {
    let census = Census::new();
    let _in = census.enter();
    let pool = pool();
    // Asked for the 4 KiB class, the factory gives 1 KiB: exactly the size
    // of the smaller class, but handed out for the larger one.
    arm(1, Fault::Shrink(SMALL));
    let g = pool.get(LARGE);
    assert_eq!(g.buf.capacity(), SMALL);
    assert_exact(&pool, &census, (1, SMALL), 0, 0);
    drop(g);
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!((s.undersize_drops, s.objects_retained), (1, 0), "{s}");
    // Neither class got it: both requests allocate.
    let (small, large) = (pool.get(SMALL), pool.get(LARGE));
    assert!(large.buf.capacity() >= LARGE);
    assert_eq!(pool.stats().allocations, 3);
    drop((small, large));

    // In a batch: the second of four comes out short; the other three are kept.
    let before = pool.stats();
    pool.trim();
    let made = calls();
    arm(2, Fault::Shrink(SMALL));
    let batch = pool.get_batch(&[LARGE; 4]);
    assert_eq!(calls() - made, 4, "an empty pool allocates each");
    let caps: Vec<usize> = batch.iter().map(|g| g.buf.capacity()).collect();
    assert_eq!(caps, [LARGE, SMALL, LARGE, LARGE]);
    assert_exact(&pool, &census, held(&batch), 0, 0);
    drop(batch);
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!(s.undersize_drops, before.undersize_drops + 1, "{s}");
    assert_eq!(s.objects_retained, 3, "{s}");
    let again = pool.get_batch(&[LARGE; 3]);
    assert!(again.iter().all(|g| g.buf.capacity() == LARGE));
    assert_eq!(pool.stats().allocations, s.allocations, "all three reused");
    drop(again);
    still_serves(&pool, &census);
}

#[test]
fn a_short_oversize_value_is_counted_by_what_it_holds() {
    let census = Census::new();
    let _in = census.enter();
    let pool = pool();
    arm(1, Fault::Shrink(100));
    let g = pool.get(1 << 20);
    assert_eq!(g.buf.capacity(), 100);
    let s = assert_exact(&pool, &census, (1, 100), 0, 0);
    assert_eq!(s.oversize_requests, 1, "{s}");
    drop(g);
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!((s.oversize_drops, s.objects_retained), (1, 0), "{s}");
    still_serves(&pool, &census);
}

#[test]
fn a_short_value_is_charged_what_it_holds_under_a_cap() {
    let census = Census::new();
    let _in = census.enter();
    let pool = capped(2 * LARGE, OnExhausted::Error);
    arm(1, Fault::Shrink(0));
    arm(2, Fault::Shrink(SMALL));
    let a = pool.try_get(LARGE).unwrap();
    let b = pool.get_timeout(LARGE, Duration::from_secs(60)).unwrap();
    assert_eq!((a.buf.capacity(), b.buf.capacity()), (0, SMALL));
    assert_exact(&pool, &census, (2, SMALL), 0, 0);
    // The cap has room for what they do not hold.
    let c = pool.try_get(LARGE).unwrap();
    assert_exact(&pool, &census, held([&a, &b, &c]), 0, 0);
    drop((a, b, c));
    assert_exact(&pool, &census, (0, 0), 0, 0);
    still_serves(&pool, &census);
}

// ----- a factory that panics ---------------------------------------------------

#[test]
fn get_and_get_owned_survive_a_panicking_factory() {
    let census = Census::new();
    let _in = census.enter();
    let pool = pool();
    let kept = pool.get(LARGE);
    let owned = pool.get_owned(SMALL);
    let holding = (2, LARGE + SMALL);
    let before = pool.stats();

    arm(1, Fault::Panic);
    assert_eq!(expect_injected(|| pool.get(LARGE)), FACTORY);
    arm(1, Fault::Panic);
    assert_eq!(expect_injected(|| pool.get_owned(SMALL)), FACTORY);
    arm(1, Fault::Panic);
    assert_eq!(expect_injected(|| pool.get(1 << 20)), FACTORY, "oversize");
    let s = assert_exact(&pool, &census, holding, 0, 0);
    assert_eq!(
        (s.gets, s.allocations),
        (before.gets, before.allocations),
        "a get that panicked is no get: {s}"
    );
    drop((kept, owned));
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!(s.objects_retained, 2, "{s}");
    still_serves(&pool, &census);
}

#[test]
fn a_panicking_factory_under_a_cap_gives_its_charge_back() {
    let census = Census::new();
    let _in = census.enter();
    type Get = fn(&Pool<Flaky>) -> usize;
    let gets: [(&str, Get); 4] = [
        ("get", |p| p.get(LARGE).buf.capacity()),
        ("get_owned", |p| p.get_owned(LARGE).buf.capacity()),
        ("try_get", |p| p.try_get(LARGE).unwrap().buf.capacity()),
        ("get_timeout", |p| {
            p.get_timeout(LARGE, Duration::from_secs(60))
                .unwrap()
                .buf
                .capacity()
        }),
    ];
    for on in [OnExhausted::Allocate, OnExhausted::Error, OnExhausted::Wait] {
        for (name, get) in gets {
            let pool = capped(4 * LARGE, on);
            let kept = pool.get(LARGE);
            arm(1, Fault::Panic);
            assert_eq!(expect_injected(|| get(&pool)), FACTORY, "{name} {on:?}");
            assert_exact(&pool, &census, (1, LARGE), 0, 0);
            // Exactly three more fit: nothing of the failed get stayed charged.
            let more: Vec<_> = (0..3).map(|_| pool.try_get(LARGE).unwrap()).collect();
            assert!(pool.try_get(LARGE).is_err(), "{name} {on:?}");
            drop((kept, more));
            assert_exact(&pool, &census, (0, 0), 0, 0);
            still_serves(&pool, &census);
        }
    }

    // A get that overshoots the cap (policy `allocate`, cap full), and one
    // larger than the cap itself: the forced charge is given back too.
    let pool = capped(LARGE, OnExhausted::Allocate);
    let kept = pool.get(LARGE);
    arm(1, Fault::Panic);
    assert_eq!(expect_injected(|| pool.get(SMALL)), FACTORY);
    arm(1, Fault::Panic);
    assert_eq!(expect_injected(|| pool.get(1 << 20)), FACTORY);
    assert_exact(&pool, &census, (1, LARGE), 0, 0);
    drop(kept);
    assert_exact(&pool, &census, (0, 0), 0, 0);
}

#[test]
fn a_granted_waiter_whose_factory_panics_passes_the_room_on() {
    let census = Census::new();
    let _in = census.enter();
    let pool = capped(LARGE, OnExhausted::Wait);
    let kept = pool.get(LARGE);
    let deadline = Instant::now() + Duration::from_secs(60);
    let wait_for = |n: usize| {
        while pool.stats().waiting != n {
            assert!(
                Instant::now() < deadline,
                "{} waiting",
                pool.stats().waiting
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    // First in line: its factory will panic once it is served.
    let first = std::thread::spawn({
        let (pool, census) = (pool.clone(), census.clone());
        move || {
            let _in = census.enter();
            arm(1, Fault::Panic);
            expect_injected(|| pool.get(LARGE))
        }
    });
    wait_for(1);
    // Second in line: served with the room the first one gave back.
    let second = std::thread::spawn({
        let (pool, census) = (pool.clone(), census.clone());
        move || {
            let _in = census.enter();
            pool.get(LARGE).buf.capacity()
        }
    });
    wait_for(2);
    drop(kept);
    assert_eq!(first.join().unwrap(), FACTORY);
    assert_eq!(second.join().unwrap(), LARGE);
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!(s.waits, 2, "{s}");
    still_serves(&pool, &census);
}

/// Polls `fut` once with a no-op waker.
fn poll_once<F: Future + ?Sized>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn get_async_survives_a_panicking_factory() {
    let census = Census::new();
    let _in = census.enter();
    // No cap, and a cap with room: the first poll panics.
    for pool in [pool(), capped(2 * LARGE, OnExhausted::Wait)] {
        arm(1, Fault::Panic);
        let mut fut = pin!(pool.get_async(LARGE));
        assert_eq!(expect_injected(|| poll_once(fut.as_mut())), FACTORY);
        arm(1, Fault::Panic);
        let mut owned = pin!(pool.get_owned_async(SMALL));
        assert_eq!(expect_injected(|| poll_once(owned.as_mut())), FACTORY);
        assert_exact(&pool, &census, (0, 0), 0, 0);
        still_serves(&pool, &census);
    }

    // Queued under `wait`, served when a guard drops, then the factory
    // panics on the poll that would have completed it.
    let pool = capped(LARGE, OnExhausted::Wait);
    let kept = pool.get(LARGE);
    let mut fut = pin!(pool.get_owned_async(LARGE));
    assert!(poll_once(fut.as_mut()).is_pending());
    assert_eq!(pool.stats().waiting, 1);
    drop(kept);
    pool.trim(); // so the waiter's get must build a value
    assert_eq!(pool.stats().waiting, 0, "served");
    assert_eq!(pool.charged_bytes(), LARGE, "charged for the waiter");
    arm(1, Fault::Panic);
    assert_eq!(expect_injected(|| poll_once(fut.as_mut())), FACTORY);
    assert_exact(&pool, &census, (0, 0), 0, 0);
    still_serves(&pool, &census);
}

#[test]
fn get_batch_that_panics_midway_gives_back_what_it_took() {
    let census = Census::new();
    let _in = census.enter();
    for cap in [None, Some(64 * LARGE)] {
        let pool = match cap {
            None => pool(),
            Some(cap) => capped(cap, OnExhausted::Wait),
        };
        // Idle objects of both classes: two large and a small one in this
        // thread's cache, another small one in the shard (handed back by a
        // thread that exited).
        drop(pool.get_batch(&[LARGE, LARGE, SMALL]));
        std::thread::spawn({
            let (pool, census) = (pool.clone(), census.clone());
            move || {
                let _in = census.enter();
                drop(pool.get(SMALL));
            }
        })
        .join()
        .unwrap();
        let before = pool.stats();
        assert_eq!(before.objects_retained, 4, "{before}");
        assert_eq!(before.classes[0].shard_objects, 1, "{before}");

        // Large requests first: the two idle ones, then two fresh, the
        // second of which panics before any small one is handed out.
        arm(2, Fault::Panic);
        let sizes = [LARGE, LARGE, LARGE, LARGE, SMALL, SMALL];
        let made = calls();
        assert_eq!(expect_injected(|| pool.get_batch(&sizes)), FACTORY);
        assert_eq!(calls() - made, 2);
        let s = assert_exact(&pool, &census, (0, 0), 0, 0);
        // Three objects were handed out (two idle, one fresh) and came back.
        assert_eq!(s.objects_retained, 5, "{s}");
        assert_eq!(s.allocations, before.allocations + 1, "{s}");
        assert_eq!(
            (s.gets, s.tls_hits, s.shared_hits),
            (before.gets + 3, before.tls_hits + 2, before.shared_hits),
            "only the objects handed out count as gets: {s}"
        );
        assert_eq!(s.puts, before.puts + 3, "each came back once: {s}");
        assert_eq!(
            (s.classes[0].gets, s.classes[1].gets),
            (before.classes[0].gets, before.classes[1].gets + 3),
            "{s}"
        );
        still_serves(&pool, &census);
    }
}

#[test]
fn get_batch_that_panics_before_its_first_guard_leaves_the_stats_exact() {
    // The batch stages the small object from the shard into this thread's
    // cache, then the large one's constructor panics before any guard is
    // made (so no guard's return republishes the cache).
    let census = Census::new();
    let _in = census.enter();
    for cap in [None, Some(64 * LARGE)] {
        let pool = match cap {
            None => pool(),
            Some(cap) => capped(cap, OnExhausted::Error),
        };
        std::thread::spawn({
            let (pool, census) = (pool.clone(), census.clone());
            move || {
                let _in = census.enter();
                drop(pool.get(SMALL));
            }
        })
        .join()
        .unwrap();
        let before = pool.stats();
        assert_eq!(before.classes[0].shard_objects, 1, "{before}");
        arm(1, Fault::Panic);
        assert_eq!(expect_injected(|| pool.get_batch(&[LARGE, SMALL])), FACTORY);
        let s = assert_exact(&pool, &census, (0, 0), 0, 0);
        assert_eq!(s.objects_retained, 1, "the staged object is idle: {s}");
        assert_eq!(s.bytes_retained, SMALL, "{s}");
        assert_eq!(
            (s.gets, s.shared_hits, s.allocations),
            (before.gets, before.shared_hits, before.allocations),
            "nothing was handed out: {s}"
        );
        // It serves the next get from this thread's cache.
        drop(pool.get(SMALL));
        assert_eq!(pool.stats().tls_hits, before.tls_hits + 1);
        still_serves(&pool, &census);
    }
}

// ----- put_batch that panics midway ---------------------------------------------

/// Yields `objs`, then panics with an injected fault.
struct PanicsAfter(std::vec::IntoIter<Flaky>);

impl Iterator for PanicsAfter {
    type Item = Flaky;
    fn next(&mut self) -> Option<Flaky> {
        match self.0.next() {
            Some(obj) => Some(obj),
            None => std::panic::panic_any(Injected("iterator")),
        }
    }
}

/// A pool whose thread cache holds 2 objects per class, so part of a batch
/// overflows to the shard.
fn small_cache_pool() -> Pool<Flaky> {
    Pool::builder()
        .shards(1)
        .size_classes(&[SMALL, LARGE])
        .tls_cache_size(2)
        .batch_size(2)
        .max_total_memory(64 << 20)
        .build()
        .unwrap()
}

#[test]
fn put_batch_whose_iterator_panics_keeps_what_it_was_given() {
    let census = Census::new();
    let _in = census.enter();
    let pool = small_cache_pool();
    let objs: Vec<Flaky> = (0..5).map(|_| Flaky::new(LARGE)).collect();
    let err = expect_injected(|| pool.put_batch(PanicsAfter(objs.into_iter())));
    assert_eq!(err, Injected("iterator"));
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!((s.adopted, s.objects_retained), (5, 5), "{s}");
    assert_eq!(
        s.classes[1].shard_objects, 5,
        "a fresh thread cache has no credit: all overflow to the shard: {s}"
    );
    // They serve gets: five large gets allocate nothing.
    let batch = pool.get_batch(&[LARGE; 5]);
    assert_eq!(pool.stats().allocations, 0);
    drop(batch);
    still_serves(&pool, &census);
}

#[test]
fn put_batch_whose_reset_panics_midway_keeps_the_ledger() {
    let census = Census::new();
    let _in = census.enter();
    let pool = small_cache_pool();
    // Three good ones (one overflows the cache), the bad one, two never reached.
    let mut objs: Vec<Flaky> = (0..3).map(|_| Flaky::new(LARGE)).collect();
    objs.push(Flaky::exploding(LARGE));
    objs.extend((0..2).map(|_| Flaky::new(SMALL)));
    assert_eq!(expect_injected(|| pool.put_batch(objs)), RESET);
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!(
        (s.adopted, s.reset_panics, s.freed, s.objects_retained),
        (4, 1, 1, 3),
        "{s}"
    );
    assert_eq!(s.bytes_retained, 3 * LARGE, "{s}");
    still_serves(&pool, &census);
}

#[test]
fn put_batch_of_detached_objects_that_panics_midway_keeps_the_books() {
    let census = Census::new();
    let _in = census.enter();
    let pool = capped(16 * LARGE, OnExhausted::Error);
    let mut objs: Vec<Flaky> = (0..4)
        .map(|_| pool.get(LARGE).into_inner())
        .collect::<Vec<_>>();
    // Detaching ended the loans: nothing is charged.
    assert_exact(&pool, &census, (0, 0), 0, 4);
    objs[1].explode_in_reset = true;
    // The first two are given back (one kept, one dropped by its reset);
    // the last two never reach the pool (dropped by the unwinding batch).
    assert_eq!(expect_injected(|| pool.put_batch(objs)), RESET);
    let s = assert_exact(&pool, &census, (0, 0), 0, 0);
    assert_eq!((s.detached, s.adopted, s.reset_panics), (4, 2, 1), "{s}");
    still_serves(&pool, &census);
}

#[test]
fn many_faults_in_a_row_leave_the_pool_exact() {
    // A deterministic mix of gets, batches and puts with faults armed on a
    // third of the constructor calls.
    let census = Census::new();
    let _in = census.enter();
    let pool = capped(1 << 20, OnExhausted::Allocate);
    let mut rng = common::XorShift::new(9);
    // Each held guard with its charge: its request's class, or its
    // capacity when it is smaller (a short value) or the request oversize.
    let charge =
        |request: usize, capacity: usize| match [SMALL, LARGE].iter().find(|&&c| c >= request) {
            Some(&class) if capacity >= class => class,
            _ => capacity,
        };
    let mut held: Vec<(PoolGuard<'_, Flaky>, usize)> = Vec::new();
    let mut loose: Vec<Flaky> = Vec::new();
    for step in 0..400 {
        if rng.chance(33) {
            let fault = if rng.chance(50) {
                Fault::Panic
            } else {
                Fault::Shrink(rng.below(2 * LARGE))
            };
            arm(rng.range(1, 3), fault);
        }
        let sizes: Vec<usize> = (0..rng.range(1, 5))
            .map(|_| [SMALL, LARGE, 3000, 1 << 16][rng.below(4)])
            .collect();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match rng.below(6) {
                0 => {
                    let g = pool.get(sizes[0]);
                    let c = charge(sizes[0], g.buf.capacity());
                    held.push((g, c));
                }
                1 => {
                    for (g, &n) in pool.get_batch(&sizes).into_iter().zip(&sizes) {
                        let c = charge(n, g.buf.capacity());
                        held.push((g, c));
                    }
                }
                2 => {
                    if let Ok(g) = pool.try_get(sizes[0]) {
                        let c = charge(sizes[0], g.buf.capacity());
                        held.push((g, c));
                    }
                }
                3 => {
                    // Detaching ends the loan: no charge stays behind.
                    loose.push(pool.get(sizes[0]).into_inner());
                }
                4 => {
                    let back = std::mem::take(&mut loose);
                    pool.put_batch(back);
                }
                _ => {
                    let n = rng.below(held.len() + 1);
                    held.truncate(n);
                }
            }
        }));
        if let Err(payload) = outcome {
            faults_support::injected(payload);
        }
        let bytes: usize = held.iter().map(|(g, _)| g.buf.capacity()).sum();
        let charged: usize = held.iter().map(|&(_, c)| c).sum();
        let s = assert_exact_charged(&pool, &census, (held.len(), bytes), charged, loose.len());
        assert!(s.gets >= s.allocations, "step {step}: {s}");
    }
    drop(held);
    pool.put_batch(loose);
    assert_exact(&pool, &census, (0, 0), 0, 0);
    still_serves(&pool, &census);
}
