//! The outstanding-memory cap from async code: `get_async` and
//! `get_owned_async` on tokio's multi-thread and current-thread runtimes
//! (and on no runtime at all), cancellation, reloads of the cap, strict
//! FIFO between large and small requests.
//!
//! Every `.await` on the pool runs under a deadline, so a lost wake-up
//! fails a test instead of hanging it. No sleep decides an outcome.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use zeropool::{BufferPool, ByteSize, GetAsync, GetOwnedAsync, OnExhausted, OwnedPoolGuard};

/// One small buffer: the unit of every cap below.
const B: usize = 4096;
/// The larger class.
const BIG: usize = 4 * B;
/// How long a test waits for something that should happen promptly. Miri
/// runs some thousand times slower (its clock counts the work it does):
/// there only `.ci/miri`'s own timeout ends a hang.
const DEADLINE: Duration = Duration::from_secs(if cfg!(miri) { 3600 } else { 5 });
/// Tasks of the contention tests (fewer under Miri, which interprets each
/// of their polls).
const TASKS: usize = if cfg!(miri) { 60 } else { 1000 };

// The futures are `Send` (so `tokio::spawn` takes them) and so is what
// they yield.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<GetAsync<'static, Vec<u8>>>();
    send::<GetOwnedAsync<Vec<u8>>>();
    send::<GetOwnedAsync<String>>();
    send::<OwnedPoolGuard<Vec<u8>>>();
    fn send_future<F: Future + Send>(_: &F) {}
    let pool = BufferPool::new();
    send_future(&pool.get_async(1));
    send_future(&async move {
        let guard = pool.get_owned_async(1).await;
        tokio::task::yield_now().await;
        drop(guard);
    });
};

/// A pool of `units` × 4 KiB under `on`, with classes 4 KiB and 16 KiB.
fn capped(units: usize, on: OnExhausted) -> BufferPool {
    BufferPool::builder()
        .shards(2)
        .size_classes(&[B, BIG])
        .max_outstanding_memory(units * B)
        .on_exhausted(on)
        .build()
        .expect("valid settings")
}

fn set_cap(pool: &BufferPool, cap: usize) {
    let mut cfg = pool.config();
    cfg.max_outstanding_memory = Some(ByteSize(cap as u64));
    pool.reload(&cfg).expect("a valid cap");
}

/// Awaits `fut`, failing the test after [`DEADLINE`].
async fn deadline<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// Yields until `cond` holds; fails the test after [`DEADLINE`].
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn waiters(pool: &BufferPool, n: usize) {
    until(&format!("{n} requests wait"), || pool.stats().waiting == n).await;
}

/// Nothing charged, nobody queued, and the whole cap fits in one request.
#[track_caller]
fn assert_whole(pool: &BufferPool) {
    let s = pool.stats();
    assert_eq!((pool.charged_bytes(), s.waiting), (0, 0), "{s}");
    let cap = s.max_outstanding_memory.expect("capped");
    let all: Vec<_> = (0..cap / B)
        .map(|_| pool.try_get(B).expect("the whole cap is free"))
        .collect();
    assert_eq!(pool.charged_bytes(), cap);
    assert!(pool.try_get(1).is_err());
    drop(all);
    if cap > BIG {
        // Larger than every class: one request charged exactly the cap.
        drop(pool.try_get(cap).expect("the whole cap is free"));
    }
    assert_eq!(pool.charged_bytes(), 0);
}

/// `tasks` tasks compete for a cap of `units` buffers, each checking the
/// cap while it holds one.
async fn contend(units: usize, tasks: usize) -> BufferPool {
    let pool = capped(units, OnExhausted::Wait);
    let cap = units * B;
    let held = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for i in 0..tasks {
        let (pool, held) = (pool.clone(), held.clone());
        set.spawn(async move {
            // Both forms; the borrowed one borrows this task's handle.
            let guard = if i % 2 == 0 {
                either::Left(pool.get_async(B).await)
            } else {
                either::Right(pool.get_owned_async(B).await)
            };
            let now = held.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(now <= units, "{now} buffers held under a cap of {units}");
            let charged = pool.charged_bytes();
            assert!(
                charged <= cap,
                "{charged} bytes charged under a cap of {cap}"
            );
            for _ in 0..(i % 3) {
                tokio::task::yield_now().await;
            }
            held.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
        });
    }
    deadline("all tasks complete", async {
        while let Some(done) = set.join_next().await {
            done.expect("task panicked");
        }
    })
    .await;
    let s = pool.stats();
    assert_eq!(s.gets, tasks, "{s}");
    assert_eq!(s.cap_overshoots, 0, "{s}");
    assert_whole(&pool);
    pool
}

/// Just enough of `either` for two guard types in one variable.
mod either {
    pub enum Either<L, R> {
        Left(L),
        Right(R),
    }
    pub use Either::{Left, Right};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_tasks_share_ten_buffers_multi_thread() {
    contend(10, TASKS).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_thousand_tasks_share_ten_buffers_current_thread() {
    let pool = contend(10, TASKS).await;
    // One thread, tasks that yield while holding: most of them waited.
    let s = pool.stats();
    assert!(s.waits > 0, "{s}");
    assert!(s.wait_time_total >= s.wait_time_max, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owned_guard_moves_into_a_spawned_task() {
    let pool = capped(1, OnExhausted::Wait);
    let mut guard = pool.get_owned_async(B).await;
    assert_eq!(pool.charged_bytes(), B);
    // A waiter in another task, woken when the spawned task drops it.
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get_owned_async(B).await.capacity() })
    };
    waiters(&pool, 1).await;
    guard.extend_from_slice(b"moved");
    let writer = tokio::spawn(async move {
        tokio::task::yield_now().await;
        guard.extend_from_slice(b" across tasks");
        assert_eq!(guard.pool().charged_bytes(), B);
        guard.len()
    });
    assert_eq!(deadline("writer", writer).await.unwrap(), 18);
    assert_eq!(deadline("waiter", waiter).await.unwrap(), B);
    assert_whole(&pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_waiters_leave_the_cap_whole() {
    const UNITS: usize = 10;
    let pool = capped(UNITS, OnExhausted::Wait);
    let served = Arc::new(AtomicUsize::new(0));
    for round in 0..10 {
        let mut held: Vec<_> = (0..UNITS).map(|_| pool.get_owned(B)).collect();
        let mut set = JoinSet::new();
        let mut cancels = Vec::new();
        for i in 0..60 {
            let (pool, served) = (pool.clone(), served.clone());
            match i % 3 {
                // Given up by `tokio::time::timeout`, at various times.
                0 => {
                    let limit = Duration::from_micros(200 * (i as u64 % 7));
                    set.spawn(async move {
                        if let Ok(guard) = tokio::time::timeout(limit, pool.get_async(B)).await {
                            served.fetch_add(1, Ordering::Relaxed);
                            tokio::task::yield_now().await;
                            drop(guard);
                        }
                    });
                }
                // Given up through `select!` when told to.
                1 => {
                    let (cancel, cancelled) = oneshot::channel::<()>();
                    cancels.push(cancel);
                    set.spawn(async move {
                        tokio::select! {
                            guard = pool.get_owned_async(B) => {
                                served.fetch_add(1, Ordering::Relaxed);
                                drop(guard);
                            }
                            _ = cancelled => {}
                        }
                    });
                }
                // Never gives up: must be served in the end.
                _ => {
                    set.spawn(async move {
                        let guard = pool.get_owned_async(B).await;
                        served.fetch_add(1, Ordering::Relaxed);
                        drop(guard);
                    });
                }
            }
        }
        // Cancel and give back at the same time, so grants race with
        // cancellations (a waiter granted and then dropped must pass its
        // bytes on).
        tokio::task::yield_now().await;
        for (k, cancel) in cancels.into_iter().enumerate() {
            let _ = cancel.send(());
            if k % 2 == round % 2 {
                drop(held.pop());
            }
            tokio::task::yield_now().await;
        }
        drop(held);
        deadline("every waiter served or gone", async {
            while let Some(done) = set.join_next().await {
                done.expect("task panicked");
            }
        })
        .await;
        let s = pool.stats();
        assert_eq!(
            (pool.charged_bytes(), s.waiting),
            (0, 0),
            "round {round}: {s}"
        );
    }
    assert!(served.load(Ordering::Relaxed) >= 10 * 20);
    assert_eq!(pool.stats().cap_overshoots, 0);
    assert_whole(&pool);
}

/// A waker that records that it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Flag {
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

fn poll_once<F: Future + Unpin>(fut: &mut F, flag: &Arc<Flag>) -> Poll<F::Output> {
    let waker = Waker::from(flag.clone());
    Pin::new(fut).poll(&mut Context::from_waker(&waker))
}

#[test]
fn a_future_dropped_after_it_was_granted_passes_the_bytes_on() {
    let pool = capped(1, OnExhausted::Wait);
    let held = pool.get(B);
    let (f1, f2) = (Arc::new(Flag::default()), Arc::new(Flag::default()));
    let mut first = pool.get_async(B);
    let mut second = pool.get_owned_async(B);
    assert!(poll_once(&mut first, &f1).is_pending());
    assert!(poll_once(&mut second, &f2).is_pending());
    assert_eq!(pool.stats().waiting, 2);
    drop(held);
    // The head is served: its bytes are charged, its task woken.
    assert!(f1.take());
    assert!(!f2.take());
    assert_eq!(pool.charged_bytes(), B);
    assert_eq!(pool.stats().waiting, 1);
    // Dropped before it could take them: the next in line gets them.
    drop(first);
    assert!(f2.take(), "the next waiter was not woken");
    assert_eq!(pool.charged_bytes(), B);
    assert_eq!(pool.stats().waiting, 0);
    let Poll::Ready(guard) = poll_once(&mut second, &f2) else {
        panic!("granted but pending");
    };
    assert!(guard.capacity() >= B);
    drop((guard, second));
    let s = pool.stats();
    assert_eq!((pool.charged_bytes(), s.waiting, s.waits), (0, 0, 2), "{s}");
    assert_eq!((s.cap_overshoots, s.timeouts), (0, 0), "{s}");
}

#[test]
fn a_pending_future_dropped_at_the_head_lets_smaller_ones_through() {
    let pool = capped(4, OnExhausted::Wait);
    let held = pool.get(B);
    let (f1, f2) = (Arc::new(Flag::default()), Arc::new(Flag::default()));
    let mut big = pool.get_async(BIG);
    let mut small = pool.get_async(B);
    assert!(poll_once(&mut big, &f1).is_pending());
    // Room for it, but the big one is ahead: strict FIFO.
    assert!(poll_once(&mut small, &f2).is_pending());
    drop(big);
    assert!(
        f2.take(),
        "the request behind the cancelled head was not woken"
    );
    assert!(!f1.take());
    let Poll::Ready(guard) = poll_once(&mut small, &f2) else {
        panic!("granted but pending");
    };
    assert_eq!(pool.charged_bytes(), 2 * B);
    // A future re-polled with a new waker wakes that one.
    drop((guard, held));
    let f3 = Arc::new(Flag::default());
    let hold_all = pool.get(BIG);
    let mut late = pool.get_async(B);
    assert!(poll_once(&mut late, &f1).is_pending());
    assert!(poll_once(&mut late, &f3).is_pending());
    drop(hold_all);
    assert!(f3.take());
    assert!(poll_once(&mut late, &f3).is_ready());
    drop((small, late));
    assert_whole(&pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_the_cap_wakes_waiters_that_now_fit() {
    let pool = capped(2, OnExhausted::Wait);
    let held: Vec<_> = (0..2).map(|_| pool.get_owned(B)).collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    for _ in 0..8 {
        let (pool, tx) = (pool.clone(), tx.clone());
        tokio::spawn(async move {
            let guard = pool.get_owned_async(B).await;
            tx.send(guard).unwrap();
        });
    }
    waiters(&pool, 8).await;
    set_cap(&pool, 6 * B);
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(
            deadline("woken by the raised cap", rx.recv())
                .await
                .unwrap(),
        );
    }
    waiters(&pool, 4).await;
    assert_eq!(pool.charged_bytes(), 6 * B);
    assert!(rx.try_recv().is_err());
    set_cap(&pool, 10 * B);
    for _ in 0..4 {
        got.push(
            deadline("woken by the raised cap", rx.recv())
                .await
                .unwrap(),
        );
    }
    assert_eq!(pool.charged_bytes(), 10 * B);
    drop((got, held));
    let s = pool.stats();
    assert_eq!((s.waits, s.cap_overshoots), (8, 0), "{s}");
    assert_whole(&pool);
}

#[tokio::test(flavor = "current_thread")]
async fn lowering_the_cap_below_a_waiter_lets_it_overshoot() {
    let pool = capped(4, OnExhausted::Wait);
    let held = pool.get(B);
    let task = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get_owned_async(BIG).await.capacity() })
    };
    waiters(&pool, 1).await;
    // It can never fit now: like `get`, it is let through past the cap.
    set_cap(&pool, 2 * B);
    assert_eq!(deadline("refused waiter", task).await.unwrap(), BIG);
    let s = pool.stats();
    assert_eq!((s.waiting, s.cap_overshoots), (0, 1), "{s}");
    drop(held);
    assert_whole(&pool);
}

#[tokio::test(flavor = "current_thread")]
async fn policies_other_than_wait_never_park_the_task() {
    let pool = capped(1, OnExhausted::Allocate);
    let a = pool.get_async(B).await;
    // Full: let through at once, past the cap.
    let b = deadline("no wait", pool.get_async(B)).await;
    let c = deadline("no wait", pool.get_owned_async(B)).await;
    assert_eq!(pool.charged_bytes(), 3 * B);
    let s = pool.stats();
    assert_eq!((s.waits, s.cap_overshoots), (0, 2), "{s}");
    drop((a, b, c));
    assert_whole(&pool);
    // Under `error` the cap is strict: the future panics when polled,
    // charging nothing.
    let pool = capped(1, OnExhausted::Error);
    let a = pool.get_owned_async(B).await;
    let refused = tokio::spawn({
        let pool = pool.clone();
        async move { drop(pool.get_owned_async(B).await) }
    })
    .await
    .expect_err("a get_async past the cap under `error` panics");
    assert!(refused.is_panic());
    let s = pool.stats();
    assert_eq!(
        (s.waits, s.cap_overshoots, s.exhausted_errors),
        (0, 0, 1),
        "{s}"
    );
    assert_eq!(pool.charged_bytes(), B);
    drop(a);
    assert_whole(&pool);
    // Under `wait`, a request larger than the cap itself is let through too.
    let pool = capped(2, OnExhausted::Wait);
    let big = deadline("no wait", pool.get_async(BIG)).await;
    assert_eq!(pool.charged_bytes(), BIG);
    assert_eq!(pool.stats().cap_overshoots, 1);
    drop(big);
    assert_whole(&pool);
    // No cap: nothing charged.
    let pool = BufferPool::builder()
        .on_exhausted(OnExhausted::Wait)
        .build()
        .unwrap();
    let free = pool.get_owned_async(1 << 20).await;
    assert_eq!(pool.charged_bytes(), 0);
    drop(free);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_large_and_small_requests_all_complete() {
    const UNITS: usize = 16;
    let pool = capped(UNITS, OnExhausted::Wait);
    let cap = UNITS * B;
    let mut set = JoinSet::new();
    for i in 0..TASKS * 2 / 5 {
        let pool = pool.clone();
        // One in ten wants the whole cap (oversize: charged its own size).
        let n = match i % 10 {
            0 => cap,
            1..=3 => BIG,
            _ => B,
        };
        set.spawn(async move {
            let guard = pool.get_owned_async(n).await;
            let charged = pool.charged_bytes();
            assert!(
                charged <= cap,
                "{charged} bytes charged under a cap of {cap}"
            );
            for _ in 0..(i % 3) {
                tokio::task::yield_now().await;
            }
            drop(guard);
        });
    }
    deadline("all requests complete", async {
        while let Some(done) = set.join_next().await {
            done.expect("task panicked");
        }
    })
    .await;
    assert_eq!(pool.stats().cap_overshoots, 0);
    assert_whole(&pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_request_queued_first_is_served_before_later_small_ones() {
    const UNITS: usize = 16;
    let pool = capped(UNITS, OnExhausted::Wait);
    let held = pool.get_owned(B);
    let order = Arc::new(AtomicUsize::new(0));
    let large = {
        let (pool, order) = (pool.clone(), order.clone());
        tokio::spawn(async move {
            let guard = pool.get_owned_async(UNITS * B).await;
            let at = order.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            drop(guard);
            at
        })
    };
    waiters(&pool, 1).await;
    // A stream of small requests, each of which would fit right now.
    let mut small = JoinSet::new();
    for _ in 0..50 {
        let (pool, order) = (pool.clone(), order.clone());
        small.spawn(async move {
            for _ in 0..5 {
                let guard = pool.get_async(B).await;
                order.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                drop(guard);
            }
        });
    }
    waiters(&pool, 51).await;
    assert_eq!(
        order.load(Ordering::SeqCst),
        0,
        "a small request jumped the queue"
    );
    drop(held);
    assert_eq!(deadline("large request", large).await.unwrap(), 0);
    deadline("small requests", async {
        while let Some(done) = small.join_next().await {
            done.expect("task panicked");
        }
    })
    .await;
    assert_eq!(order.load(Ordering::SeqCst), 1 + 50 * 5);
    assert_whole(&pool);
}

/// The smallest executor: polls on this thread, parks it between polls.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let start = Instant::now();
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(start.elapsed() < DEADLINE, "never woken");
        std::thread::park_timeout(DEADLINE);
    }
}

#[test]
fn get_async_needs_no_particular_runtime() {
    let pool = capped(1, OnExhausted::Wait);
    let held = pool.get_owned(B);
    let (tx, rx) = std_mpsc::channel();
    let waiter = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            block_on(async {
                let guard = pool.get_async(B).await;
                tx.send(pool.charged_bytes()).unwrap();
                drop(guard);
            })
        })
    };
    let start = Instant::now();
    while pool.stats().waiting == 0 {
        assert!(start.elapsed() < DEADLINE, "never queued");
        std::thread::yield_now();
    }
    std::thread::spawn(move || drop(held)).join().unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE), Ok(B));
    waiter.join().unwrap();
    assert_whole(&pool);
}
