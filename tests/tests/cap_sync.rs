//! The outstanding-memory cap from blocking code: `max_outstanding_memory`,
//! the `on_exhausted` policies of `get`/`get_owned`, `try_get`,
//! `get_timeout`, detached objects, batches, reloads of the cap, and the
//! cap's stats.
//!
//! No sleep decides an outcome: threads report through channels, and
//! "is it waiting yet?" is read from `stats().waiting`. Every wait has a
//! deadline, so a bug fails a test instead of hanging it; a thread that
//! may still be blocked is never joined on a failure path.

mod common;

use common::assert_consistent;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use zeropool::{BufferPool, ByteSize, Exhausted, OnExhausted};

/// One small buffer: the unit of every cap below.
const B: usize = 4096;
/// The larger class.
const BIG: usize = 4 * B;
/// How long a test waits for something that should happen at once.
const DEADLINE: Duration = Duration::from_secs(5);

const POLICIES: [OnExhausted; 3] = [OnExhausted::Allocate, OnExhausted::Error, OnExhausted::Wait];

/// A pool of `units` × 4 KiB under `on`, with classes 4 KiB and 16 KiB.
fn capped(units: usize, on: OnExhausted) -> BufferPool {
    BufferPool::builder()
        .shards(1)
        .size_classes(&[B, BIG])
        .max_outstanding_memory(units * B)
        .on_exhausted(on)
        .build()
        .expect("valid settings")
}

/// Polls `cond` until it holds; panics after [`DEADLINE`].
#[track_caller]
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until exactly `n` requests are queued under the cap.
#[track_caller]
fn wait_for_waiters(pool: &BufferPool, n: usize) {
    wait_until(&format!("{n} requests wait"), || pool.stats().waiting == n);
}

fn set_cap(pool: &BufferPool, cap: Option<usize>) {
    let mut cfg = pool.config();
    cfg.max_outstanding_memory = cap.map(|c| ByteSize(c as u64));
    pool.reload(&cfg).expect("a valid cap");
}

#[track_caller]
fn assert_exhausted(err: Exhausted, requested: usize, outstanding: usize, cap: usize) {
    assert_eq!(
        (err.requested, err.outstanding, err.cap),
        (requested, outstanding, cap),
        "{err}"
    );
}

/// The end state every test should reach: nothing charged, nobody queued.
#[track_caller]
fn assert_whole(pool: &BufferPool) {
    let s = pool.stats();
    assert_eq!(pool.charged_bytes(), 0, "{s}");
    assert_eq!((s.bytes_charged, s.waiting), (0, 0), "{s}");
    assert_consistent(&s);
}

#[test]
fn an_uncapped_pool_never_refuses_and_charges_nothing() {
    let pool = BufferPool::builder()
        .size_classes(&[B])
        .on_exhausted(OnExhausted::Wait)
        .build()
        .unwrap();
    let held: Vec<_> = (0..64).map(|_| pool.try_get(B).unwrap()).collect();
    let more = pool.get_timeout(1 << 20, Duration::ZERO).unwrap();
    assert_eq!(pool.charged_bytes(), 0);
    let s = pool.stats();
    assert_eq!(s.max_outstanding_memory, None);
    assert_eq!(
        (
            s.bytes_charged,
            s.waits,
            s.timeouts,
            s.exhausted_errors,
            s.cap_overshoots
        ),
        (0, 0, 0, 0, 0)
    );
    assert!(!s.to_string().contains("cap "), "{s}");
    drop((held, more));
}

#[test]
fn a_zero_cap_is_rejected() {
    let err = BufferPool::builder()
        .max_outstanding_memory(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("max_outstanding_memory"), "{err}");
}

#[test]
fn guards_are_charged_their_class_and_discharged_on_drop() {
    let pool = capped(8, OnExhausted::Wait);
    assert_eq!(pool.stats().max_outstanding_memory, Some(8 * B));
    let a = pool.get(1);
    assert_eq!(pool.charged_bytes(), B);
    let b = pool.get_owned(B + 1);
    assert_eq!(pool.charged_bytes(), B + BIG);
    assert_eq!(pool.stats().bytes_charged, B + BIG);
    drop(a);
    assert_eq!(pool.charged_bytes(), BIG);
    // An owned guard discharges wherever it drops.
    thread::spawn(move || drop(b)).join().unwrap();
    assert_whole(&pool);
    let s = pool.stats();
    assert_eq!((s.waits, s.cap_overshoots, s.exhausted_errors), (0, 0, 0));
    let text = s.to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("cap") && l.contains("32 KiB")),
        "{s}"
    );
}

#[test]
fn the_charge_is_the_class_even_for_an_object_larger_than_it() {
    let pool = capped(16, OnExhausted::Wait);
    // A buffer larger than its class comes back to it (6000 >= 4096) ...
    pool.put(Vec::with_capacity(6000));
    // ... and is handed out for it: charged its class, not what it holds
    // (which `bytes_outstanding` shows).
    let grown = pool.get(B);
    assert_eq!(grown.capacity(), 6000);
    assert_eq!(pool.charged_bytes(), B);
    assert_eq!(pool.stats().bytes_outstanding, 6000);
    // Growing while on loan does not change what drop gives back.
    let mut fresh = pool.get(B);
    fresh.reserve_exact(3 * B);
    assert_eq!(pool.charged_bytes(), 2 * B);
    drop((grown, fresh));
    assert_whole(&pool);
}

#[test]
fn an_object_larger_than_its_class_never_pushes_a_fitting_get_past_the_cap() {
    // The soak's find: admitted by its class, then charged the 6000 bytes of
    // the idle buffer that served it, the second get went past the cap.
    for on in POLICIES {
        let pool = BufferPool::builder()
            .size_classes(&[B])
            .max_outstanding_memory(2 * B)
            .on_exhausted(on)
            .build()
            .unwrap();
        let a = pool.get(B);
        pool.put(Vec::with_capacity(6000));
        let b = pool.try_get(B).expect("4096 fits beside 4096 under 8192");
        assert_eq!(b.capacity(), 6000);
        assert_eq!(pool.charged_bytes(), 2 * B, "{on}");
        let s = pool.stats();
        assert_eq!(s.cap_overshoots, 0, "{on}: {s}");
        // Detached, it gives back what it was charged at once.
        let v = b.into_inner();
        assert_eq!(pool.charged_bytes(), B, "{on}");
        pool.put(v);
        assert_eq!(pool.charged_bytes(), B, "{on}");
        drop(a);
        assert_whole(&pool);
    }
}

#[test]
fn try_get_reports_what_did_not_fit_whatever_the_policy() {
    for on in POLICIES {
        let pool = BufferPool::builder()
            .shards(1)
            .size_classes(&[1024, B])
            .max_outstanding_memory(2 * B)
            .on_exhausted(on)
            .build()
            .unwrap();
        let a = pool.try_get(3000).unwrap(); // class 4096
        let b = pool.try_get(100).unwrap(); // class 1024
        assert_eq!(pool.charged_bytes(), B + 1024, "{on}");
        // Charged by class: 3000 needs 4096, which does not fit in 3072.
        let err = pool.try_get(3000).unwrap_err();
        assert_exhausted(err, B, B + 1024, 2 * B);
        assert_eq!(
            err.to_string(),
            format!(
                "pool exhausted: {B} bytes requested, {} of {} bytes outstanding",
                B + 1024,
                2 * B
            )
        );
        // Oversize requests are charged their own size.
        let err = pool.try_get(5000).unwrap_err();
        assert_exhausted(err, 5000, B + 1024, 2 * B);
        // What still fits is handed out.
        let rest: Vec<_> = [1024, 1, 2].map(|n| pool.try_get(n).unwrap()).into();
        assert_eq!(pool.charged_bytes(), 2 * B, "{on}");
        assert_exhausted(pool.try_get(1).unwrap_err(), 1024, 2 * B, 2 * B);
        let s = pool.stats();
        assert_eq!(s.exhausted_errors, 3, "{on}: {s}");
        assert_eq!((s.waits, s.timeouts, s.cap_overshoots), (0, 0, 0), "{on}");
        drop((a, b, rest));
        assert_whole(&pool);
        // Everything given back: the whole cap fits in one request.
        drop(pool.try_get(2 * B).unwrap());
    }
}

#[test]
fn a_request_larger_than_the_cap_fails_at_once_or_overshoots() {
    for on in POLICIES {
        let pool = capped(2, on);
        // Nothing is charged, and still it can never fit.
        assert_exhausted(pool.try_get(BIG).unwrap_err(), BIG, 0, 2 * B);
        let start = Instant::now();
        let err = pool.get_timeout(BIG, DEADLINE * 2).unwrap_err();
        assert!(
            start.elapsed() < DEADLINE,
            "{on}: waited for what can never fit"
        );
        assert_exhausted(err, BIG, 0, 2 * B);
        assert_exhausted(pool.try_get(100_000).unwrap_err(), 100_000, 0, 2 * B);
        let s = pool.stats();
        assert_eq!((s.waits, s.timeouts, s.exhausted_errors), (0, 0, 3), "{on}");
        if on == OnExhausted::Error {
            // The cap is strict: `get` panics, charging nothing.
            assert_get_refused(&pool, BIG);
            assert_eq!(pool.charged_bytes(), 0);
            assert_whole(&pool);
            continue;
        }
        // `get` cannot fail: even under `wait` it overshoots rather than
        // waiting forever.
        let big = pool.get(BIG);
        assert_eq!(pool.charged_bytes(), BIG, "{on}");
        let huge = pool.get_owned(100_000);
        assert_eq!(pool.charged_bytes(), BIG + 100_000, "{on}");
        let s = pool.stats();
        assert_eq!((s.cap_overshoots, s.waits), (2, 0), "{on}: {s}");
        drop((big, huge));
        assert_whole(&pool);
    }
}

#[test]
fn the_allocate_policy_overshoots_and_counts_it() {
    let pool = capped(2, OnExhausted::Allocate);
    let a = pool.get(B);
    let b = pool.get(B);
    assert_eq!(pool.stats().cap_overshoots, 0);
    // Full: `get` does not block and does not fail, it goes past.
    let c = pool.get(B);
    let d = pool.get_owned(B);
    assert_eq!(pool.charged_bytes(), 4 * B);
    let s = pool.stats();
    assert_eq!(s.cap_overshoots, 2, "{s}");
    assert_eq!((s.waits, s.exhausted_errors), (0, 0));
    // The fallible forms still refuse.
    assert_exhausted(pool.try_get(B).unwrap_err(), B, 4 * B, 2 * B);
    assert_exhausted(
        pool.get_timeout(B, Duration::from_millis(1)).unwrap_err(),
        B,
        4 * B,
        2 * B,
    );
    drop((a, b, c));
    // Back under the cap: no more overshoots.
    let e = pool.get(B);
    assert_eq!(pool.stats().cap_overshoots, 2);
    drop((d, e));
    assert_whole(&pool);
}

/// A get that cannot return an error panics under `error` (the cap is
/// strict), counted in `exhausted_errors`, charging nothing.
#[track_caller]
fn assert_get_refused(pool: &BufferPool, n: usize) {
    let before = pool.stats().exhausted_errors;
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(pool.get(n))));
    let payload = refused.expect_err("get past the cap under `error` panics");
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.contains("on_exhausted = \"error\"") && text.contains("try_get"),
        "{text}"
    );
    assert_eq!(pool.stats().exhausted_errors, before + 1);
}

/// Under `error` the cap is never passed: `get`, `get_owned` and
/// `get_batch` past it panic, the fallible forms return `Exhausted`, and
/// nothing is charged or overshot.
#[test]
fn the_error_policy_keeps_the_cap_strict() {
    let pool = capped(2, OnExhausted::Error);
    let (a, b) = (pool.get(B), pool.get(B));
    assert_get_refused(&pool, B);
    let owned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(pool.get_owned(B))));
    assert!(owned.is_err(), "get_owned past the cap panics");
    let batch =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(pool.get_batch(&[B]))));
    assert!(batch.is_err(), "get_batch past the cap panics");
    assert_exhausted(pool.try_get(B).unwrap_err(), B, 2 * B, 2 * B);
    let s = pool.stats();
    assert_eq!((s.cap_overshoots, s.exhausted_errors), (0, 4), "{s}");
    assert_eq!(pool.charged_bytes(), 2 * B);
    drop((a, b));
    // Room again: `get` serves.
    drop(pool.get(B));
    assert_whole(&pool);
}

#[test]
fn get_under_wait_blocks_the_thread_until_a_guard_drops() {
    let pool = capped(2, OnExhausted::Wait);
    let a = pool.get(B);
    let b = pool.get(B);
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::new();
    let mut releases = Vec::new();
    // Two waiters, queued in a known order; each holds what it gets until
    // released.
    for id in 0..2 {
        let (p, tx) = (pool.clone(), tx.clone());
        let (release, released) = mpsc::channel::<()>();
        releases.push(release);
        threads.push(thread::spawn(move || {
            let guard = p.get(B);
            tx.send((id, p.charged_bytes())).unwrap();
            let _ = released.recv_timeout(DEADLINE);
            drop(guard);
        }));
        wait_for_waiters(&pool, id + 1);
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(pool.charged_bytes(), 2 * B);
    drop(a);
    // The first in line is served, and only it.
    assert_eq!(rx.recv_timeout(DEADLINE), Ok((0, 2 * B)));
    assert_eq!(pool.stats().waiting, 1);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(b);
    assert_eq!(rx.recv_timeout(DEADLINE), Ok((1, 2 * B)));
    for (release, t) in releases.into_iter().zip(threads) {
        release.send(()).unwrap();
        t.join().unwrap();
    }
    assert_whole(&pool);
    let s = pool.stats();
    assert_eq!((s.waits, s.cap_overshoots, s.timeouts), (2, 0, 0), "{s}");
    assert!(s.wait_time_max > Duration::ZERO, "{s}");
    assert!(s.wait_time_total >= s.wait_time_max, "{s}");
}

#[test]
fn get_owned_under_wait_is_woken_by_a_guard_dropped_on_another_thread() {
    let pool = capped(1, OnExhausted::Wait);
    let held = pool.get_owned(B);
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let pool = pool.clone();
        thread::spawn(move || {
            let guard = pool.get_owned(B);
            tx.send(()).unwrap();
            guard
        })
    };
    wait_for_waiters(&pool, 1);
    let dropper = thread::spawn(move || drop(held));
    rx.recv_timeout(DEADLINE).expect("served");
    dropper.join().unwrap();
    let guard = waiter.join().unwrap();
    assert_eq!(pool.charged_bytes(), B);
    drop(guard);
    assert_whole(&pool);
}

#[test]
fn get_timeout_gives_up_and_counts_a_timeout_whatever_the_policy() {
    for on in POLICIES {
        let pool = capped(1, on);
        let held = pool.get(B);
        let timeout = Duration::from_millis(20);
        let start = Instant::now();
        let err = pool.get_timeout(B, timeout).unwrap_err();
        assert!(start.elapsed() >= timeout, "{on}: gave up early");
        assert_exhausted(err, B, B, B);
        let s = pool.stats();
        assert_eq!(
            (s.timeouts, s.exhausted_errors, s.waits, s.waiting),
            (1, 1, 1, 0),
            "{on}: {s}"
        );
        assert_eq!(s.cap_overshoots, 0, "{on}");
        // A zero timeout is a try.
        assert!(pool.get_timeout(B, Duration::ZERO).is_err());
        drop(held);
        assert_whole(&pool);
        // Room now: served at once, no more timeouts.
        drop(pool.get_timeout(B, timeout).unwrap());
        assert_eq!(pool.stats().timeouts, 2, "{on}");
    }
}

#[test]
fn get_timeout_is_served_when_room_comes_in_time() {
    let pool = capped(1, OnExhausted::Error);
    let held = pool.get_owned(B);
    let releaser = {
        let pool = pool.clone();
        thread::spawn(move || {
            wait_for_waiters(&pool, 1);
            drop(held);
        })
    };
    let guard = pool
        .get_timeout(B, DEADLINE)
        .expect("served before the deadline");
    releaser.join().unwrap();
    assert_eq!(pool.charged_bytes(), B);
    drop(guard);
    assert_whole(&pool);
    let s = pool.stats();
    assert_eq!((s.waits, s.timeouts, s.exhausted_errors), (1, 0, 0), "{s}");
    assert!(s.wait_time_max > Duration::ZERO, "{s}");
}

#[test]
fn queued_requests_are_served_first_come_first_served() {
    let pool = capped(4, OnExhausted::Wait);
    let small = pool.get(B);
    // Needs the whole cap: it waits, with 3 buffers' room idle.
    let (tx, rx) = mpsc::channel();
    let big = {
        let pool = pool.clone();
        thread::spawn(move || {
            let guard = pool.get(BIG);
            tx.send(pool.charged_bytes()).unwrap();
            drop(guard);
        })
    };
    wait_for_waiters(&pool, 1);
    // A small request would fit, but it does not jump the queue.
    assert_exhausted(pool.try_get(B).unwrap_err(), B, B, BIG);
    assert!(pool.get_timeout(B, Duration::from_millis(5)).is_err());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(small);
    assert_eq!(rx.recv_timeout(DEADLINE), Ok(BIG));
    big.join().unwrap();
    assert_whole(&pool);
}

#[test]
fn detaching_ends_the_loan_and_wakes_a_waiter() {
    let pool = capped(2, OnExhausted::Wait);
    let held = pool.get(B);
    let lent = pool.get_owned(B);
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let pool = pool.clone();
        thread::spawn(move || {
            let guard = pool.get(B);
            tx.send(()).unwrap();
            drop(guard);
        })
    };
    wait_for_waiters(&pool, 1);
    // Taken out for good: the charge goes back to the cap at once.
    let v = lent.into_inner();
    rx.recv_timeout(DEADLINE).expect("woken by into_inner");
    waiter.join().unwrap();
    let s = pool.stats();
    assert_eq!((s.detached, s.objects_outstanding), (1, 1), "{s}");
    assert_eq!(s.bytes_charged, B, "{s}");
    drop(held);
    // Given back later, it is a new object: it charges nothing.
    pool.put(v);
    assert_whole(&pool);
    #[allow(deprecated)]
    let forgotten = pool.forget_detached(usize::MAX);
    assert_eq!(forgotten, 0, "nothing detached holds a charge");
}

/// A service that hands every buffer away (to `hyper` as `Bytes`, into a
/// `Vec`, or with `into_inner`) is never wedged by a cap: 20 gets under a
/// cap of 4 buffers are all served at once.
#[test]
fn a_service_that_hands_its_buffers_away_is_never_wedged_by_the_cap() {
    let pool = capped(4, OnExhausted::Wait);
    for i in 0..20 {
        let mut guard = pool
            .try_get(B)
            .unwrap_or_else(|err| panic!("get {i} refused: {err}"));
        guard.extend_from_slice(b"response");
        match i % 3 {
            0 => drop(guard.into_inner()),
            1 => drop(Vec::from(guard)),
            _ => drop(guard.into_bytes()),
        }
        assert_eq!(pool.charged_bytes(), 0, "get {i}");
    }
    assert_eq!(pool.stats().detached, 20);
    assert_whole(&pool);
}

#[test]
fn put_batch_of_detached_objects_charges_nothing() {
    let pool = capped(4, OnExhausted::Wait);
    let objs: Vec<Vec<u8>> = (0..4).map(|_| pool.get(B).into_inner()).collect();
    assert_eq!(pool.charged_bytes(), 0);
    pool.put_batch(objs);
    assert_whole(&pool);
}

#[test]
fn get_batch_under_a_cap_charges_every_object() {
    let pool = capped(8, OnExhausted::Wait);
    let batch = pool.get_batch(&[1, B, B + 1, 100]);
    assert_eq!(batch.len(), 4);
    assert_eq!(pool.charged_bytes(), 3 * B + BIG);
    assert_exhausted(pool.try_get(BIG).unwrap_err(), BIG, 7 * B, 8 * B);
    drop(batch);
    assert_whole(&pool);
    // Exactly the cap, in one batch.
    let batch = pool.get_batch(&[B; 8]);
    assert_eq!(pool.charged_bytes(), 8 * B);
    assert!(pool.try_get(1).is_err());
    drop(batch);
    assert_whole(&pool);
    // Past the cap under `allocate`: charged all the same, counted.
    let pool = capped(8, OnExhausted::Allocate);
    let batch = pool.get_batch(&[B; 10]);
    assert_eq!(pool.charged_bytes(), 10 * B);
    assert_eq!(pool.stats().cap_overshoots, 2);
    drop(batch);
    assert_whole(&pool);
}

/// Runs `f` on a thread; `Some(result)` if it finished within `limit`,
/// `None` if it is still blocked (the thread is then left behind).
fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn get_batch_larger_than_the_cap_under_wait_does_not_wait_forever() {
    let pool = capped(4, OnExhausted::Wait);
    let p = pool.clone();
    let done = within(Duration::from_secs(2), move || p.get_batch(&[B; 5]).len());
    // Like `get` of a request larger than the cap: an overshoot, not a
    // wait that can never end.
    assert_eq!(
        done,
        Some(5),
        "get_batch of 5 under a cap of 4 never returned"
    );
}

#[test]
fn concurrent_batches_under_wait_do_not_deadlock() {
    // Each batch (3 buffers) fits under the cap (4) on its own.
    let pool = capped(4, OnExhausted::Wait);
    let mut held: Vec<_> = (0..4).map(|_| pool.get_owned(B)).collect();
    let (tx, rx) = mpsc::channel();
    let finished = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let (pool, tx, finished) = (pool.clone(), tx.clone(), finished.clone());
        thread::spawn(move || {
            let n = pool.get_batch(&[B; 3]).len();
            finished.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(n);
        });
    }
    let settled = || pool.stats().waiting + finished.load(Ordering::SeqCst) == 2;
    wait_until("both batches wait", settled);
    // Give back one buffer at a time: each goes to the head of the queue,
    // which is the other batch every time, so each batch ends with 2 of its
    // 3 and waits for the third.
    while let Some(guard) = held.pop() {
        drop(guard);
        wait_until("both batches wait or are done", settled);
    }
    let first = rx.recv_timeout(Duration::from_secs(2));
    let second = rx.recv_timeout(Duration::from_secs(1));
    assert_eq!(
        (first, second),
        (Ok(3), Ok(3)),
        "both batches should complete; charged {} of {}",
        pool.charged_bytes(),
        4 * B
    );
}

#[test]
fn detached_objects_put_back_across_cap_changes_leave_the_cap_whole() {
    let pool = capped(2, OnExhausted::Wait);
    let v = pool.get(B).into_inner();
    let w = pool.get(B).into_inner();
    set_cap(&pool, None);
    pool.put(v);
    pool.put_batch([w]);
    assert_eq!(pool.charged_bytes(), 0, "a detached object holds no charge");
    set_cap(&pool, Some(2 * B));
    let both = (pool.try_get(B), pool.try_get(B));
    assert!(
        both.0.is_ok() && both.1.is_ok(),
        "the cap lost room for good"
    );
    drop(both);
    assert_whole(&pool);
}

#[test]
fn lowering_the_cap_refuses_waiters_that_can_no_longer_fit() {
    let pool = capped(4, OnExhausted::Wait);
    let held = pool.get(B);
    let (tx, rx) = mpsc::channel();
    // A `get_timeout` and a `get` both wait for the whole cap.
    let timed = {
        let (pool, tx) = (pool.clone(), tx.clone());
        thread::spawn(move || {
            let result = pool.get_timeout(BIG, DEADLINE * 4).map(|_| ());
            tx.send(("timeout", result)).unwrap();
        })
    };
    wait_for_waiters(&pool, 1);
    let plain = {
        let (pool, tx) = (pool.clone(), tx.clone());
        thread::spawn(move || {
            let guard = pool.get(BIG);
            tx.send(("get", Ok(()))).unwrap();
            drop(guard);
        })
    };
    wait_for_waiters(&pool, 2);
    // Now the cap is smaller than either request: they can never fit.
    set_cap(&pool, Some(2 * B));
    let mut got = [
        rx.recv_timeout(DEADLINE).expect("refused at once"),
        rx.recv_timeout(DEADLINE).expect("refused at once"),
    ];
    got.sort_by_key(|g| g.0);
    let (get, timeout) = (&got[0], &got[1]);
    assert_eq!(get.0, "get");
    assert_eq!(get.1, Ok(()), "`get` overshoots");
    assert_eq!(timeout.0, "timeout");
    let err = timeout.1.unwrap_err();
    assert_exhausted(err, BIG, err.outstanding, 2 * B);
    timed.join().unwrap();
    plain.join().unwrap();
    drop(held);
    assert_whole(&pool);
    let s = pool.stats();
    // Refused is not a timeout.
    assert_eq!(
        (s.timeouts, s.exhausted_errors, s.cap_overshoots),
        (0, 1, 1),
        "{s}"
    );
}

#[test]
fn raising_or_removing_the_cap_wakes_waiters_that_now_fit() {
    let pool = capped(2, OnExhausted::Wait);
    let held: Vec<_> = (0..2).map(|_| pool.get(B)).collect();
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::new();
    for id in 0..5 {
        let (p, tx) = (pool.clone(), tx.clone());
        threads.push(thread::spawn(move || {
            let guard = p.get_owned(B);
            tx.send(id).unwrap();
            guard
        }));
        wait_for_waiters(&pool, id + 1);
    }
    // Room for three more: the first three in line.
    set_cap(&pool, Some(5 * B));
    let mut served: Vec<usize> = (0..3)
        .map(|_| rx.recv_timeout(DEADLINE).expect("woken by the raised cap"))
        .collect();
    served.sort_unstable();
    assert_eq!(served, [0, 1, 2]);
    wait_for_waiters(&pool, 2);
    assert_eq!(pool.charged_bytes(), 5 * B);
    // No cap at all: everyone fits.
    set_cap(&pool, None);
    for _ in 0..2 {
        rx.recv_timeout(DEADLINE).expect("woken by the removed cap");
    }
    let guards: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(pool.stats().max_outstanding_memory, None);
    drop(held);
    drop(guards);
    assert_whole(&pool);
    assert_eq!(pool.stats().cap_overshoots, 0);
}

#[test]
fn many_threads_never_hold_more_than_the_cap() {
    const CAP: usize = 3;
    const THREADS: usize = 8;
    const ROUNDS: usize = 200;
    let pool = capped(CAP, OnExhausted::Wait);
    let held = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (pool, held, start) = (pool.clone(), held.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for i in 0..ROUNDS {
                    let guard = if (t + i) % 3 == 0 {
                        pool.get_timeout(B, DEADLINE).expect("served in time")
                    } else {
                        pool.get(B)
                    };
                    let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= CAP, "{now} buffers held");
                    assert!(pool.charged_bytes() <= CAP * B);
                    if i % 16 == 0 {
                        thread::yield_now();
                    }
                    held.fetch_sub(1, Ordering::SeqCst);
                    drop(guard);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_whole(&pool);
    let s = pool.stats();
    assert_eq!((s.cap_overshoots, s.timeouts), (0, 0), "{s}");
    assert_eq!(s.gets, THREADS * ROUNDS, "{s}");
}
