//! Helpers shared by the bench binaries (`pool`, `zipf_memory`): page
//! touching, a persistent team of worker threads for multi-threaded timings,
//! the baseline pools' allocators, and a deterministic Zipf size generator.

#![allow(dead_code)]

use std::fmt;
use std::mem::MaybeUninit;
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Page size the write benchmarks touch once each.
pub const PAGE: usize = 4096;

/// Writes one byte per 4 KiB page of the first `n` bytes of `spare`.
///
/// `spare` is a buffer's spare capacity (or an uninitialised view of it), so
/// nothing else is initialised: a fresh allocation pays its page faults, a
/// recycled one does not.
#[inline(always)]
pub fn touch_uninit(spare: &mut [MaybeUninit<u8>], n: usize) {
    let mut i = 0;
    while i < n {
        spare[i] = MaybeUninit::new(0xAB);
        i += PAGE;
    }
}

/// [`touch_uninit`] on the spare capacity of an empty `Vec` with capacity
/// `>= n`; the `Vec` is passed through `black_box` so the stores stay.
#[inline(always)]
pub fn touch_vec(v: &mut Vec<u8>, n: usize) {
    debug_assert!(v.is_empty() && v.capacity() >= n);
    touch_uninit(v.spare_capacity_mut(), n);
    std::hint::black_box(v);
}

// ----- baseline pools ----------------------------------------------------

/// `opool` allocator of empty `Vec<u8>`s with a fixed capacity; `reset`
/// empties the vector (what our pool's `Poolable::reset` does).
#[derive(Debug, Clone, Copy)]
pub struct OpoolVec(pub usize);

impl opool::PoolAllocator<Vec<u8>> for OpoolVec {
    #[inline]
    fn allocate(&self) -> Vec<u8> {
        Vec::with_capacity(self.0)
    }

    #[inline]
    fn reset(&self, obj: &mut Vec<u8>) {
        obj.clear();
    }
}

/// An `opool` pool of `capacity` vectors of `size` bytes.
pub fn opool(capacity: usize, size: usize) -> opool::Pool<OpoolVec, Vec<u8>> {
    opool::Pool::new(capacity, OpoolVec(size))
}

/// An `object-pool` pool prefilled with `capacity` vectors of `size` bytes.
/// It does not reset what comes back; callers `clear()` after `pull`.
pub fn object_pool(capacity: usize, size: usize) -> object_pool::Pool<Vec<u8>> {
    object_pool::Pool::new(capacity, || Vec::with_capacity(size))
}

// ----- a persistent team of threads --------------------------------------

/// Work for one worker of a [`Team`].
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Boxes a closure as a [`Job`].
pub fn job(f: impl FnOnce() + Send + 'static) -> Job {
    Box::new(f)
}

/// Worker threads that live for the whole bench run, so that multi-threaded
/// samples pay neither thread creation nor cold thread-local caches.
pub struct Team {
    jobs: Vec<mpsc::Sender<(Job, Arc<Barrier>)>>,
    done: Mutex<mpsc::Receiver<(Instant, Instant)>>,
}

impl fmt::Debug for Team {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Team")
            .field("threads", &self.jobs.len())
            .finish()
    }
}

impl Team {
    /// Starts `n` workers.
    pub fn new(n: usize) -> Self {
        let (done_tx, done_rx) = mpsc::channel();
        let jobs = (0..n)
            .map(|i| {
                let (tx, rx) = mpsc::channel::<(Job, Arc<Barrier>)>();
                let done = done_tx.clone();
                thread::Builder::new()
                    .name(format!("bench-worker-{i}"))
                    .spawn(move || {
                        for (job, start) in rx {
                            start.wait();
                            let t0 = Instant::now();
                            job();
                            let t1 = Instant::now();
                            if done.send((t0, t1)).is_err() {
                                break;
                            }
                        }
                    })
                    .expect("spawn a bench worker");
                tx
            })
            .collect();
        Self {
            jobs,
            done: Mutex::new(done_rx),
        }
    }

    /// Runs `jobs[i]` on worker `i`, all released by one barrier; returns the
    /// wall time from the first start to the last finish.
    pub fn run(&self, jobs: Vec<Job>) -> Duration {
        assert!(jobs.len() <= self.jobs.len(), "not enough workers");
        let done = self.done.lock().expect("team lock");
        let n = jobs.len();
        let start = Arc::new(Barrier::new(n));
        for (job, tx) in jobs.into_iter().zip(&self.jobs) {
            tx.send((job, start.clone())).expect("worker alive");
        }
        let mut first = None::<Instant>;
        let mut last = None::<Instant>;
        for _ in 0..n {
            let (t0, t1) = done.recv().expect("worker finished");
            first = Some(first.map_or(t0, |f| f.min(t0)));
            last = Some(last.map_or(t1, |l| l.max(t1)));
        }
        last.expect("one job") - first.expect("one job")
    }

    /// Runs `op` `iters` times on each of `threads` workers (each with its own
    /// state from `init`) and returns the wall time divided by `threads`: the
    /// time per operation of the team as a whole, i.e. the inverse of its
    /// throughput. With one thread it is the plain time per operation.
    pub fn per_op<S, I, F>(&self, threads: usize, iters: u64, init: I, op: F) -> Duration
    where
        I: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S) + Send + Sync + 'static,
        S: 'static,
    {
        let init = Arc::new(init);
        let op = Arc::new(op);
        let jobs: Vec<Job> = (0..threads)
            .map(|_| {
                let (init, op) = (init.clone(), op.clone());
                Box::new(move || {
                    let mut state = init();
                    for _ in 0..iters {
                        op(&mut state);
                    }
                    drop(state);
                }) as Job
            })
            .collect();
        self.run(jobs) / threads as u32
    }
}

// ----- a Zipf-like size distribution -------------------------------------

/// xorshift64*: small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n`.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Sizes from `min` to `max` bytes, Zipf-distributed over `buckets`
/// log-spaced buckets (bucket `k` has weight `1 / (k + 1)^s`, smallest sizes
/// most likely), uniform within a bucket. Sampled by inverse CDF.
#[derive(Debug, Clone)]
pub struct Zipf {
    edges: Vec<f64>,
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(min: usize, max: usize, buckets: usize, s: f64) -> Self {
        let ratio = (max as f64 / min as f64).powf(1.0 / buckets as f64);
        let edges = (0..=buckets)
            .map(|k| min as f64 * ratio.powi(k as i32))
            .collect();
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (0..buckets)
            .map(|k| {
                acc += 1.0 / ((k + 1) as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Self { edges, cdf }
    }

    /// The distribution the benches use: 100 B to 1 MiB, 64 buckets, s = 1.1.
    pub fn standard() -> Self {
        Self::new(100, 1 << 20, 64, 1.1)
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        let k = self
            .cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1);
        let (lo, hi) = (self.edges[k], self.edges[k + 1]);
        let size = lo + (hi - lo) * rng.unit();
        (size as usize).clamp(self.edges[0] as usize, *self.edges.last().unwrap() as usize)
    }

    /// `n` sizes from a fixed seed.
    pub fn sequence(&self, seed: u64, n: usize) -> Vec<usize> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| self.sample(&mut rng)).collect()
    }
}
