//! Criterion benchmarks of `zeropool` against its baselines.
//!
//! Every group holds our pool *and* its baselines, so that each ratio comes
//! from one run on one machine state. Function ids are `<impl>` or
//! `<impl>/<variant>` (the variant being a thread count such as `2t`);
//! `.ci/bench-report` compares each function with the others of the same
//! group and variant.
//!
//! | group | what one iteration is |
//! |---|---|
//! | `hot_path_64k` | get 64 KiB + drop, memory untouched |
//! | `write_64k`, `write_1m` | get + write one byte per 4 KiB page + drop, on 1 and 2 threads |
//! | `producer_consumer` | one 64 KiB buffer got on one thread, sent through `sync_channel(64)`, dropped on another |
//! | `batch_256` | 256 buffers of 4 KiB got (`get_batch`) and given back (`put_guards`; or detached and `put_batch`), against a loop of `get` and drops |
//! | `zipf` | get + touch + drop of a Zipf-distributed size (100 B .. 1 MiB) |
//! | `stats_overhead` | `hot_path_64k` with stats on and off, on 1 and 2 threads |
//! | `scaling` | get 4 KiB + write a byte + drop, on 1 and 2 threads |
//! | `numa_overhead` | `hot_path_64k` on a synthetic 2-node machine against NUMA off |
//! | `async_overhead` | `hot_path_64k` through `get_async` (polled once, ready) against `get`, with and without a cap |
//!
//! Multi-threaded variants run on a persistent team of worker threads and
//! report wall time divided by the number of threads: the time per operation
//! of the whole team (the inverse of its throughput). `1t` variants run on
//! one worker of the same team, so `1t` and `2t` numbers are comparable.
//!
//! Run one group: `cargo bench -p zeropool-tests --bench pool -- write_64k`.

mod common;

use common::{job, touch_uninit, touch_vec, Team, Zipf};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use zeropool::BufferPool;
use zeropool07::ZeroPool as ZeroPool07;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Threads of the multi-threaded variants.
const THREADS: [usize; 2] = [1, 2];

/// Objects the fixed-capacity baseline pools hold.
const BASELINE_CAPACITY: usize = 64;

fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| Team::new(2))
}

fn variant(threads: usize) -> String {
    format!("{threads}t")
}

// ----- 1. hot path ----------------------------------------------------------

fn hot_path(c: &mut Criterion) {
    const N: usize = 64 * KIB;
    let mut g = c.benchmark_group("hot_path_64k");

    let pool = BufferPool::new();
    g.bench_function("zeropool", |b| {
        b.iter(|| {
            let buf = pool.get(N);
            black_box(&buf);
        })
    });

    let zp = ZeroPool07::new();
    g.bench_function("zeropool07_uninit", |b| {
        b.iter(|| {
            let buf = zp.alloc_uninit(N);
            black_box(&buf);
        })
    });
    g.bench_function("zeropool07_alloc", |b| {
        b.iter(|| {
            let buf = zp.alloc(N);
            black_box(&buf);
        })
    });

    let op = common::opool(BASELINE_CAPACITY, N);
    g.bench_function("opool", |b| {
        b.iter(|| {
            let buf = op.get();
            black_box(&*buf);
        })
    });

    let obp = common::object_pool(BASELINE_CAPACITY, N);
    g.bench_function("object_pool", |b| {
        b.iter(|| {
            let mut buf = obp.pull(|| Vec::with_capacity(N));
            buf.clear();
            black_box(&mut *buf);
        })
    });

    g.bench_function("vec", |b| {
        b.iter(|| {
            let v = Vec::<u8>::with_capacity(N);
            black_box(&v);
        })
    });

    let mut held = Vec::<u8>::new();
    g.bench_function("held_vec", |b| {
        b.iter(|| {
            held.clear();
            held.reserve(N);
            black_box(&mut held);
        })
    });

    g.finish();
}

// ----- 2. write one byte per page -------------------------------------------

fn write(c: &mut Criterion, name: &str, n: usize) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(n as u64));
    let t = team();

    for threads in THREADS {
        let v = variant(threads);

        let pool = BufferPool::new();
        g.bench_function(BenchmarkId::new("zeropool", &v), |b| {
            b.iter_custom(|iters| {
                let p = pool.clone();
                t.per_op(
                    threads,
                    iters,
                    move || p.clone(),
                    move |p| {
                        let mut buf = p.get(n);
                        touch_vec(&mut buf, n);
                    },
                )
            })
        });

        let zp = Arc::new(ZeroPool07::new());
        g.bench_function(BenchmarkId::new("zeropool07", &v), |b| {
            b.iter_custom(|iters| {
                let p = zp.clone();
                t.per_op(
                    threads,
                    iters,
                    move || p.clone(),
                    move |p| {
                        let mut buf = p.alloc_uninit(n);
                        touch_uninit(buf.as_uninit_mut(), n);
                        black_box(&mut buf);
                    },
                )
            })
        });

        g.bench_function(BenchmarkId::new("vec", &v), |b| {
            b.iter_custom(|iters| {
                t.per_op(
                    threads,
                    iters,
                    || (),
                    move |_| {
                        let mut buf = Vec::with_capacity(n);
                        touch_vec(&mut buf, n);
                    },
                )
            })
        });

        g.bench_function(BenchmarkId::new("held_vec", &v), |b| {
            b.iter_custom(|iters| {
                t.per_op(
                    threads,
                    iters,
                    move || Vec::<u8>::with_capacity(n),
                    move |buf| {
                        buf.clear();
                        buf.reserve(n);
                        touch_vec(buf, n);
                    },
                )
            })
        });

        let op = Arc::new(common::opool(BASELINE_CAPACITY, n));
        g.bench_function(BenchmarkId::new("opool", &v), |b| {
            b.iter_custom(|iters| {
                let p = op.clone();
                t.per_op(
                    threads,
                    iters,
                    move || p.clone(),
                    move |p| {
                        let mut buf = p.get();
                        touch_vec(&mut buf, n);
                    },
                )
            })
        });

        let obp = Arc::new(common::object_pool(BASELINE_CAPACITY, n));
        g.bench_function(BenchmarkId::new("object_pool", &v), |b| {
            b.iter_custom(|iters| {
                let p = obp.clone();
                t.per_op(
                    threads,
                    iters,
                    move || p.clone(),
                    move |p| {
                        let mut buf = p.pull(|| Vec::with_capacity(n));
                        buf.clear();
                        touch_vec(&mut buf, n);
                    },
                )
            })
        });
    }

    g.finish();
}

fn write_64k(c: &mut Criterion) {
    write(c, "write_64k", 64 * KIB);
}

fn write_1m(c: &mut Criterion) {
    write(c, "write_1m", MIB);
}

// ----- 3. producer / consumer -------------------------------------------------

/// Producer on one worker sends `iters` items made by `make` through a
/// `sync_channel(64)`; the consumer on the other worker drops them. Returns
/// the wall time of the whole transfer.
fn pipe<T, F>(iters: u64, make: F) -> Duration
where
    T: Send + 'static,
    F: Fn() -> T + Send + 'static,
{
    // Items travel in runs of `RUN` so that the channel's own cost (a futex
    // wake per message) does not drown what the pools do; every contender
    // pays the same per-run cost.
    const RUN: usize = 32;
    let (tx, rx) = mpsc::sync_channel::<Vec<T>>(4);
    let producer = job(move || {
        let mut left = iters as usize;
        while left > 0 {
            let n = left.min(RUN);
            tx.send((0..n).map(|_| make()).collect())
                .expect("consumer alive");
            left -= n;
        }
    });
    let consumer = job(move || {
        for run in rx {
            for item in run {
                drop(black_box(item));
            }
        }
    });
    team().run(vec![producer, consumer])
}

fn producer_consumer(c: &mut Criterion) {
    const N: usize = 64 * KIB;
    let mut g = c.benchmark_group("producer_consumer");

    let pool = BufferPool::new();
    g.bench_function("zeropool", |b| {
        b.iter_custom(|iters| {
            let p = pool.clone();
            pipe(iters, move || p.get_owned(N))
        })
    });

    // 0.7's `BufUninit` borrows its pool; a leaked pool lets it cross threads
    // and be dropped (returned) by the consumer, like our owned guard.
    let zp: &'static ZeroPool07 = Box::leak(Box::new(ZeroPool07::new()));
    g.bench_function("zeropool07", |b| {
        b.iter_custom(|iters| pipe(iters, move || zp.alloc_uninit(N)))
    });

    let op = Arc::new(common::opool(BASELINE_CAPACITY, N));
    g.bench_function("opool", |b| {
        b.iter_custom(|iters| {
            let p = op.clone();
            pipe(iters, move || p.clone().get_rc())
        })
    });

    let obp = Arc::new(common::object_pool(BASELINE_CAPACITY, N));
    g.bench_function("object_pool", |b| {
        b.iter_custom(|iters| {
            let p = obp.clone();
            pipe(iters, move || {
                let mut buf = p.pull_owned(|| Vec::with_capacity(N));
                buf.clear();
                buf
            })
        })
    });

    g.bench_function("vec", |b| {
        b.iter_custom(|iters| pipe(iters, || Vec::<u8>::with_capacity(N)))
    });

    g.finish();
}

// ----- 4. batches ---------------------------------------------------------------

fn batch(c: &mut Criterion) {
    const COUNT: usize = 256;
    const N: usize = 4 * KIB;
    let sizes = [N; COUNT];
    let mut g = c.benchmark_group("batch_256");

    let pool = BufferPool::new();
    g.bench_function("zeropool_batch", |b| {
        b.iter(|| {
            let guards = pool.get_batch(&sizes);
            black_box(&guards);
            pool.put_guards(guards);
        })
    });

    // The same round trip through plain objects: detached, then adopted.
    let pool = BufferPool::new();
    g.bench_function("zeropool_batch_detached", |b| {
        b.iter(|| {
            let guards = pool.get_batch(&sizes);
            black_box(&guards);
            pool.put_batch(guards.into_iter().map(|g| g.into_inner()));
        })
    });

    let pool = BufferPool::new();
    g.bench_function("zeropool_loop", |b| {
        b.iter(|| {
            let guards: Vec<_> = sizes.iter().map(|&n| pool.get(n)).collect();
            black_box(&guards);
        })
    });

    g.finish();
}

// ----- 5. Zipf sizes --------------------------------------------------------------

fn zipf(c: &mut Criterion) {
    const LEN: usize = 4096;
    let seq: Arc<[usize]> = Zipf::standard().sequence(0x5EED, LEN).into();
    let mut g = c.benchmark_group("zipf");

    let pool = BufferPool::new();
    let mut i = 0;
    g.bench_function("zeropool", |b| {
        b.iter(|| {
            let n = seq[i % LEN];
            i += 1;
            let mut buf = pool.get(n);
            touch_vec(&mut buf, n);
        })
    });

    let zp = ZeroPool07::new();
    let mut i = 0;
    g.bench_function("zeropool07", |b| {
        b.iter(|| {
            let n = seq[i % LEN];
            i += 1;
            let mut buf = zp.alloc_uninit(n);
            touch_uninit(buf.as_uninit_mut(), n);
            black_box(&mut buf);
        })
    });

    let mut i = 0;
    g.bench_function("vec", |b| {
        b.iter(|| {
            let n = seq[i % LEN];
            i += 1;
            let mut buf = Vec::with_capacity(n);
            touch_vec(&mut buf, n);
        })
    });

    g.finish();
}

// ----- 6. stats overhead ----------------------------------------------------------

fn stats_overhead(c: &mut Criterion) {
    const N: usize = 64 * KIB;
    let mut g = c.benchmark_group("stats_overhead");
    let t = team();

    for threads in THREADS {
        let v = variant(threads);
        for (name, on) in [("stats_on", true), ("stats_off", false)] {
            let pool = BufferPool::builder()
                .stats(on)
                .build()
                .expect("valid settings");
            g.bench_function(BenchmarkId::new(name, &v), |b| {
                b.iter_custom(|iters| {
                    let p = pool.clone();
                    t.per_op(
                        threads,
                        iters,
                        move || p.clone(),
                        move |p| {
                            let buf = p.get(N);
                            black_box(&buf);
                        },
                    )
                })
            });
        }
    }

    g.finish();
}

// ----- 7. scaling ------------------------------------------------------------------

fn scaling(c: &mut Criterion) {
    const N: usize = 4 * KIB;
    let mut g = c.benchmark_group("scaling");
    let t = team();

    for threads in THREADS {
        let v = variant(threads);

        let pool = BufferPool::new();
        g.bench_function(BenchmarkId::new("zeropool", &v), |b| {
            b.iter_custom(|iters| {
                let p = pool.clone();
                t.per_op(
                    threads,
                    iters,
                    move || p.clone(),
                    move |p| {
                        let mut buf = p.get(N);
                        touch_vec(&mut buf, 1);
                    },
                )
            })
        });

        g.bench_function(BenchmarkId::new("vec", &v), |b| {
            b.iter_custom(|iters| {
                t.per_op(
                    threads,
                    iters,
                    || (),
                    move |_| {
                        let mut buf = Vec::with_capacity(N);
                        touch_vec(&mut buf, 1);
                    },
                )
            })
        });
    }

    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

// ----- NUMA overhead -------------------------------------------------------------

/// The hot path with NUMA placement active (a synthetic two-node machine,
/// this thread on node 0) against the same pool with NUMA off: the NUMA
/// path's cost on the hot path (a home-node compare) must stay under 5%.
fn numa_overhead(c: &mut Criterion) {
    const N: usize = 64 * KIB;
    let mut g = c.benchmark_group("numa_overhead");
    let off = BufferPool::builder()
        .numa(zeropool::Numa::Off)
        .build()
        .unwrap();
    g.bench_function("numa_off", |b| {
        b.iter(|| drop(black_box(off.get(black_box(N)))))
    });
    #[cfg(feature = "numa")]
    {
        let two = zeropool::numa::Topology::synthetic("pack:2 numa:1 core:2 pu:1").unwrap();
        let local = BufferPool::builder()
            .topology(two)
            .cpu_lookup(Arc::new(|| 0))
            .numa(zeropool::Numa::Local)
            .build()
            .unwrap();
        g.bench_function("numa_local_2_nodes", |b| {
            b.iter(|| drop(black_box(local.get(black_box(N)))))
        });
    }
    g.finish();
}

// ----- async overhead ------------------------------------------------------------

/// Polls a future once with a waker that does nothing: the cost of
/// `get_async` when the object is ready at once, without an executor's own
/// cost in the figure.
fn ready<F: std::future::Future>(fut: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => unreachable!("the pool has room: get_async is ready at once"),
    }
}

/// `get_async` against `get` when the get never has to wait: no cap, and a
/// cap with room (both paths then charge the same gate).
fn async_overhead(c: &mut Criterion) {
    const N: usize = 64 * KIB;
    let mut g = c.benchmark_group("async_overhead");
    let free = BufferPool::new();
    let capped = BufferPool::builder()
        .max_outstanding_memory(1 << 30)
        .build()
        .unwrap();
    g.bench_function("get", |b| {
        b.iter(|| drop(black_box(free.get(black_box(N)))))
    });
    g.bench_function("get_async", |b| {
        b.iter(|| drop(black_box(ready(free.get_async(black_box(N))))))
    });
    g.bench_function("get_capped", |b| {
        b.iter(|| drop(black_box(capped.get(black_box(N)))))
    });
    g.bench_function("get_async_capped", |b| {
        b.iter(|| drop(black_box(ready(capped.get_async(black_box(N))))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = hot_path, write_64k, write_1m, producer_consumer, batch, zipf, stats_overhead, scaling,
        numa_overhead, async_overhead
}
criterion_main!(benches);
