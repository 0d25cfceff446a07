//! The object ledger under random sequences of operations:
//! `allocations + adopted == retained + outstanding + detached + freed`,
//! exact counters, and the budget, after every operation (one thread), and
//! after join (two threads).

mod common;

use common::{assert_consistent, XorShift};
use proptest::prelude::*;
use std::thread;
use zeropool::{BufferPool, OwnedPoolGuard, PoolGuard};

const CLASSES: [usize; 4] = [256, 4096, 16384, 65536];
const LARGEST: usize = 65536;

#[derive(Debug, Clone)]
enum Op {
    /// `get` (or `get_owned`) of `size` bytes.
    Get {
        size: usize,
        owned: bool,
    },
    /// Writes `fill_pct`% of a held guard's capacity, then drops it.
    Drop {
        pick: usize,
        fill_pct: usize,
    },
    /// Grows a held guard's buffer (it may change class, or become oversize).
    Grow {
        pick: usize,
        extra: usize,
    },
    /// `into_inner` of a held guard.
    IntoInner {
        pick: usize,
    },
    /// `put` of a detached object.
    PutDetached {
        pick: usize,
    },
    /// `put` of an object that never came from the pool.
    PutForeign {
        cap: usize,
        len_pct: usize,
    },
    GetBatch(Vec<usize>),
    /// `put_guards` of up to `count` held borrowed guards.
    PutGuards {
        count: usize,
    },
    /// `put_batch` of up to `detached` detached objects plus foreign ones.
    PutBatch {
        detached: usize,
        foreign: Vec<usize>,
    },
    Trim,
    SetMax(usize),
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        1..=300usize,
        1..=LARGEST,
        Just(LARGEST),
        LARGEST + 1..=200_000usize,
    ]
}

/// Capacities of foreign objects: tiny (undersize), in range, and far above
/// the largest class.
fn capacity() -> impl Strategy<Value = usize> {
    prop_oneof![
        0..=255usize,
        256..=2 * LARGEST,
        2 * LARGEST + 1..=300_000usize
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (size(), any::<bool>()).prop_map(|(size, owned)| Op::Get { size, owned }),
        4 => (any::<usize>(), 0..=100usize).prop_map(|(pick, fill_pct)| Op::Drop { pick, fill_pct }),
        1 => (any::<usize>(), 1..=150_000usize).prop_map(|(pick, extra)| Op::Grow { pick, extra }),
        2 => any::<usize>().prop_map(|pick| Op::IntoInner { pick }),
        2 => any::<usize>().prop_map(|pick| Op::PutDetached { pick }),
        2 => (capacity(), 0..=100usize).prop_map(|(cap, len_pct)| Op::PutForeign { cap, len_pct }),
        2 => prop::collection::vec(size(), 0..6).prop_map(Op::GetBatch),
        1 => (size(), 0..40usize).prop_map(|(n, count)| Op::GetBatch(vec![n; count])),
        2 => (0..40usize).prop_map(|count| Op::PutGuards { count }),
        2 => (0..4usize, prop::collection::vec(capacity(), 0..5))
            .prop_map(|(detached, foreign)| Op::PutBatch { detached, foreign }),
        1 => Just(Op::Trim),
        1 => prop_oneof![0..=(64usize << 10), 0..=(4usize << 20)].prop_map(Op::SetMax),
    ]
}

fn random_op(rng: &mut XorShift) -> Op {
    fn size(rng: &mut XorShift) -> usize {
        match rng.below(5) {
            0 => 0,
            1 => rng.range(1, 300),
            2 => rng.range(1, LARGEST),
            3 => LARGEST,
            _ => rng.range(LARGEST + 1, 200_000),
        }
    }
    fn capacity(rng: &mut XorShift) -> usize {
        match rng.below(3) {
            0 => rng.range(0, 255),
            1 => rng.range(256, 2 * LARGEST),
            _ => rng.range(2 * LARGEST + 1, 300_000),
        }
    }
    let pick = rng.next_u64() as usize;
    match rng.below(22) {
        0..=4 => Op::Get {
            size: size(rng),
            owned: rng.chance(50),
        },
        5..=8 => Op::Drop {
            pick,
            fill_pct: rng.range(0, 100),
        },
        9 => Op::Grow {
            pick,
            extra: rng.range(1, 150_000),
        },
        10 | 11 => Op::IntoInner { pick },
        12 | 13 => Op::PutDetached { pick },
        14 | 15 => Op::PutForeign {
            cap: capacity(rng),
            len_pct: rng.range(0, 100),
        },
        16 => Op::GetBatch((0..rng.below(6)).map(|_| size(rng)).collect()),
        17 if rng.chance(50) => Op::GetBatch(vec![size(rng); rng.below(40)]),
        17 => Op::PutGuards {
            count: rng.below(40),
        },
        18 | 19 => Op::PutBatch {
            detached: rng.below(4),
            foreign: (0..rng.below(5)).map(|_| capacity(rng)).collect(),
        },
        20 => Op::Trim,
        _ => Op::SetMax(rng.range(0, 1 << 20)),
    }
}

enum Held<'p> {
    Borrowed(PoolGuard<'p, Vec<u8>>),
    Owned(OwnedPoolGuard<Vec<u8>>),
}

impl Held<'_> {
    fn vec(&mut self) -> &mut Vec<u8> {
        match self {
            Held::Borrowed(g) => g,
            Held::Owned(g) => g,
        }
    }

    fn into_inner(self) -> Vec<u8> {
        match self {
            Held::Borrowed(g) => g.into_inner(),
            Held::Owned(g) => g.into_inner(),
        }
    }
}

/// What one thread did, and the guards and detached objects it holds.
struct Model<'p> {
    pool: &'p BufferPool,
    /// Held guards with their capacity at checkout.
    held: Vec<(Held<'p>, usize)>,
    loose: Vec<Vec<u8>>,
    gets: usize,
    oversize: usize,
    returns: usize,
    detached: usize,
    adopted: usize,
}

impl<'p> Model<'p> {
    fn new(pool: &'p BufferPool) -> Self {
        Self {
            pool,
            held: Vec::new(),
            loose: Vec::new(),
            gets: 0,
            oversize: 0,
            returns: 0,
            detached: 0,
            adopted: 0,
        }
    }

    fn took(&mut self, held: Held<'p>, size: usize) {
        let mut held = held;
        let v = held.vec();
        assert_eq!(v.len(), 0, "get({size}) is empty");
        assert!(
            v.capacity() >= size,
            "get({size}) capacity {}",
            v.capacity()
        );
        if size > LARGEST {
            assert_eq!(
                v.capacity(),
                size,
                "oversize requests are allocated exactly"
            );
            self.oversize += 1;
        }
        let cap = v.capacity();
        self.gets += 1;
        self.held.push((held, cap));
    }

    fn apply(&mut self, op: &Op) {
        let pool = self.pool;
        match op {
            Op::Get { size, owned } => {
                let held = if *owned {
                    Held::Owned(pool.get_owned(*size))
                } else {
                    Held::Borrowed(pool.get(*size))
                };
                self.took(held, *size);
            }
            Op::Drop { pick, fill_pct } => {
                if !self.held.is_empty() {
                    let (mut held, _) = self.held.swap_remove(pick % self.held.len());
                    let v = held.vec();
                    let n = v.capacity() * fill_pct / 100;
                    v.resize(n, 0xC3);
                    drop(held);
                    self.returns += 1;
                }
            }
            Op::Grow { pick, extra } => {
                if !self.held.is_empty() {
                    let i = pick % self.held.len();
                    self.held[i].0.vec().reserve_exact(*extra);
                }
            }
            Op::IntoInner { pick } => {
                if !self.held.is_empty() {
                    let (held, _) = self.held.swap_remove(pick % self.held.len());
                    self.loose.push(held.into_inner());
                    self.detached += 1;
                }
            }
            Op::PutDetached { pick } => {
                if !self.loose.is_empty() {
                    let v = self.loose.swap_remove(pick % self.loose.len());
                    pool.put(v);
                    self.adopted += 1;
                }
            }
            Op::PutForeign { cap, len_pct } => {
                let mut v = Vec::with_capacity(*cap);
                v.resize(cap * len_pct / 100, 0x3C);
                pool.put(v);
                self.adopted += 1;
            }
            Op::GetBatch(sizes) => {
                let got = pool.get_batch(sizes);
                assert_eq!(got.len(), sizes.len());
                for (g, &size) in got.into_iter().zip(sizes) {
                    self.took(Held::Borrowed(g), size);
                }
            }
            Op::PutGuards { count } => {
                let mut guards = Vec::new();
                let mut i = 0;
                while i < self.held.len() && guards.len() < *count {
                    if matches!(self.held[i].0, Held::Borrowed(_)) {
                        match self.held.swap_remove(i).0 {
                            Held::Borrowed(g) => guards.push(g),
                            Held::Owned(_) => unreachable!(),
                        }
                    } else {
                        i += 1;
                    }
                }
                self.returns += guards.len();
                pool.put_guards(guards);
            }
            Op::PutBatch { detached, foreign } => {
                let take = (*detached).min(self.loose.len());
                let mut objs: Vec<Vec<u8>> = self.loose.drain(..take).collect();
                objs.extend(foreign.iter().map(|&c| Vec::with_capacity(c)));
                self.adopted += objs.len();
                pool.put_batch(objs);
            }
            Op::Trim => pool.trim(),
            Op::SetMax(bytes) => pool.set_max_total_memory(*bytes),
        }
    }

    /// Checks the snapshot against this model; only valid when this thread
    /// is the pool's only user.
    #[track_caller]
    fn check_exact(&self, op: &Op) {
        let s = self.pool.stats();
        assert_consistent(&s);
        assert_eq!(s.objects_outstanding, self.held.len(), "after {op:?}: {s}");
        let held_bytes: usize = self.held.iter().map(|&(_, cap)| cap).sum();
        assert_eq!(s.bytes_outstanding, held_bytes, "after {op:?}: {s}");
        assert_eq!(s.gets, self.gets, "after {op:?}: {s}");
        assert_eq!(s.oversize_requests, self.oversize, "after {op:?}: {s}");
        assert_eq!(s.detached, self.detached, "after {op:?}: {s}");
        assert_eq!(s.adopted, self.adopted, "after {op:?}: {s}");
        assert_eq!(s.puts, self.returns + self.adopted, "after {op:?}: {s}");
        match op {
            Op::Trim => {
                assert_eq!(
                    (s.objects_retained, s.bytes_retained, s.bytes_reserved),
                    (0, 0, 0),
                    "after trim: {s}"
                );
            }
            Op::SetMax(bytes) => {
                assert_eq!(s.max_total_memory, *bytes);
                assert!(s.bytes_reserved <= *bytes, "after {op:?}: {s}");
            }
            _ => {}
        }
    }

    /// Drops everything still held; returns the counts.
    fn finish(mut self) -> [usize; 5] {
        self.returns += self.held.len();
        self.held.clear();
        self.loose.clear();
        [
            self.gets,
            self.oversize,
            self.returns,
            self.detached,
            self.adopted,
        ]
    }
}

fn build(shards: usize, tls: usize, batch: usize, max: usize, wipe: bool) -> BufferPool {
    BufferPool::builder()
        .shards(shards)
        .tls_cache_size(tls)
        .batch_size(batch)
        .size_classes(&CLASSES)
        .max_total_memory(max)
        .wipe_on_return(wipe)
        .build()
        .expect("valid settings")
}

proptest! {
    // Miri interprets every operation: a few cases there, and no file of
    // regressions (its isolation has no working directory).
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 6 } else { 192 },
        failure_persistence: if cfg!(miri) {
            None
        } else {
            ProptestConfig::default().failure_persistence
        },
        ..ProptestConfig::default()
    })]

    #[test]
    fn ledger_balances_after_every_operation(
        shards in 1..=4usize,
        tls in 1..=8usize,
        batch_seed in 0..8usize,
        max in prop_oneof![0..=(64usize << 10), 0..=(4usize << 20)],
        wipe in any::<bool>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let pool = build(shards, tls, 1 + batch_seed % tls, max, wipe);
        let mut model = Model::new(&pool);
        for op in &ops {
            model.apply(op);
            model.check_exact(op);
        }
        let counts = model.finish();
        let s = pool.stats();
        assert_consistent(&s);
        prop_assert_eq!(s.objects_outstanding, 0);
        prop_assert_eq!(s.bytes_outstanding, 0);
        prop_assert_eq!(s.puts, counts[2] + counts[4]);
    }
}

#[test]
fn ledger_balances_after_two_threads_join() {
    for seed in 1..=4u64 {
        let pool = build(2, 4, 2, 512 << 10, seed % 2 == 0);
        let counts: Vec<[usize; 5]> = thread::scope(|s| {
            let workers: Vec<_> = (0..2u64)
                .map(|t| {
                    let pool = &pool;
                    s.spawn(move || {
                        let mut rng = XorShift::new(seed * 100 + t);
                        let mut model = Model::new(pool);
                        for _ in 0..if cfg!(miri) { 150 } else { 1500 } {
                            let op = random_op(&mut rng);
                            model.apply(&op);
                            if model.held.len() > 32 {
                                model.returns += model.held.len();
                                model.held.clear();
                            }
                        }
                        model.finish()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let total = |i: usize| counts.iter().map(|c| c[i]).sum::<usize>();
        let s = pool.stats();
        assert_consistent(&s);
        assert_eq!(s.gets, total(0), "seed {seed}: {s}");
        assert_eq!(s.oversize_requests, total(1), "seed {seed}: {s}");
        assert_eq!(s.puts, total(2) + total(4), "seed {seed}: {s}");
        assert_eq!(s.detached, total(3), "seed {seed}: {s}");
        assert_eq!(s.adopted, total(4), "seed {seed}: {s}");
        assert_eq!(
            (s.objects_outstanding, s.bytes_outstanding),
            (0, 0),
            "seed {seed}: {s}"
        );
        // Both threads exited: no thread cache holds credit any more.
        assert_eq!(s.bytes_reserved, s.bytes_retained, "seed {seed}: {s}");
    }
}
