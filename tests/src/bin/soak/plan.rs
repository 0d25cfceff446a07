//! A pool's configuration for one phase, drawn at random, and the random
//! values the workers draw from it: request sizes, foreign capacities,
//! budgets, caps, and the configs they reload.

use crate::rng::Rng;
use std::time::Duration;
use zeropool::{ByteSize, OnExhausted, Period, Pool, PoolConfig, Poolable, Shards};

/// How the outstanding-memory cap is exercised in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapMode {
    /// No cap, ever.
    None,
    /// A cap and a policy (`allocate` or `wait`) that reloads change at will
    /// (no bound is checked).
    Loose,
    /// A fixed cap under `wait`; every request fits it, so the charged
    /// bytes must never pass it.
    StrictWait,
    /// A fixed cap under `error`; objects are taken with `try_get` and
    /// `get_timeout` only, so the charged bytes must never pass it.
    StrictError,
}

/// The class lists a phase chooses from (`None`: the default classes).
const CLASS_SETS: [Option<&[usize]>; 4] = [
    Some(&[64, 256, 1024, 4096, 16384, 65536]),
    None,
    Some(&[1, 8, 100, 1000, 10_000]),
    Some(&[4096]),
];

/// Budgets (`max_total_memory`) drawn by builds, reloads and
/// `set_max_total_memory`: nothing, a few objects, plenty.
const BUDGETS: [usize; 7] = [
    0,
    4 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    16 << 20,
    256 << 20,
];

/// One pool's settings for a phase.
#[derive(Debug, Clone)]
pub struct PoolPlan {
    pub shards: usize,
    /// `None`: the default classes.
    pub classes: Option<Vec<usize>>,
    pub tls: usize,
    pub batch: usize,
    /// `None`: the default (demand-following) budget.
    pub budget: Option<usize>,
    pub wipe: bool,
    pub track: bool,
    pub trim_after: Option<Duration>,
    pub mode: CapMode,
    pub cap: Option<usize>,
    pub policy: OnExhausted,
    /// Reloads turn the counters off and on (so counter checks are skipped).
    pub toggles_stats: bool,
    /// Chance in percent that a holder poisons a record before returning it.
    pub poison_percent: usize,
}

impl PoolPlan {
    /// A random plan; `poisonable` for types whose reset may panic.
    pub fn random(rng: &mut Rng, poisonable: bool) -> Self {
        let tls = *rng.pick(&[1, 2, 4, 8, 16, 64]);
        let mode = match rng.below(10) {
            0..=2 => CapMode::None,
            3..=5 => CapMode::Loose,
            6..=8 => CapMode::StrictWait,
            _ => CapMode::StrictError,
        };
        let classes = rng.pick(&CLASS_SETS).map(<[usize]>::to_vec);
        let policy = match mode {
            CapMode::None => OnExhausted::Allocate,
            // `error` makes a `get` past the cap panic: only the strict
            // mode, whose holders use the fallible calls, runs it.
            CapMode::Loose => *rng.pick(&[OnExhausted::Allocate, OnExhausted::Wait]),
            CapMode::StrictWait => OnExhausted::Wait,
            CapMode::StrictError => OnExhausted::Error,
        };
        let mut plan = PoolPlan {
            shards: *rng.pick(&[1, 2, 4]),
            classes,
            tls,
            batch: rng.range(1, tls),
            budget: (!rng.chance(20)).then(|| *rng.pick(&BUDGETS)),
            wipe: rng.chance(30),
            track: rng.chance(15),
            trim_after: rng
                .chance(25)
                .then(|| Duration::from_millis(rng.range(1, 30) as u64)),
            mode,
            cap: None,
            policy,
            toggles_stats: rng.chance(10),
            poison_percent: if poisonable {
                *rng.pick(&[0, 1, 5, 20])
            } else {
                0
            },
        };
        if mode != CapMode::None {
            plan.cap = Some(plan.random_cap(rng));
        }
        plan
    }

    /// Builds the pool.
    pub fn build<T: Poolable>(&self) -> Pool<T> {
        let mut b = Pool::<T>::builder()
            .shards(self.shards)
            .tls_cache_size(self.tls)
            .batch_size(self.batch)
            .wipe_on_return(self.wipe)
            .track_outstanding(self.track)
            .on_exhausted(self.policy);
        if let Some(classes) = &self.classes {
            b = b.size_classes(classes);
        }
        if let Some(budget) = self.budget {
            b = b.max_total_memory(budget);
        }
        if let Some(after) = self.trim_after {
            b = b.trim_after(after);
        }
        if let Some(cap) = self.cap {
            b = b.max_outstanding_memory(cap);
        }
        b.build().expect("a drawn plan is a valid configuration")
    }

    /// Whether the cap is fixed and every get must stay under it.
    pub fn strict(&self) -> bool {
        matches!(self.mode, CapMode::StrictWait | CapMode::StrictError)
    }

    /// A cap small enough that holders contend for it: a few mid-size
    /// classes' worth.
    fn random_cap(&self, rng: &mut Rng) -> usize {
        let classes = self.class_sizes();
        let mid = classes[classes.len() / 2];
        (mid * rng.range(2, 16)).max(classes[0] * 2).max(4096)
    }

    /// The class sizes (the default list when none is given).
    pub fn class_sizes(&self) -> Vec<usize> {
        match &self.classes {
            Some(c) => c.clone(),
            None => zeropool::SizeClassSpec::default().sizes(),
        }
    }

    /// One line for the phase report.
    pub fn describe(&self) -> String {
        let classes = self.class_sizes();
        let cap = match (self.mode, self.cap) {
            (CapMode::None, _) | (_, None) => "none".to_string(),
            (mode, Some(cap)) => format!("{cap}/{mode:?}"),
        };
        format!(
            "shards={} classes={}..{} tls={} batch={} budget={} cap={cap}{}{}{}{}",
            self.shards,
            classes[0],
            classes[classes.len() - 1],
            self.tls,
            self.batch,
            self.budget.map_or("auto".into(), |b| b.to_string()),
            if self.wipe { " wipe" } else { "" },
            if self.track { " track" } else { "" },
            if self.toggles_stats {
                " stats-toggle"
            } else {
                ""
            },
            self.trim_after
                .map_or(String::new(), |d| format!(" trim_after={d:?}")),
        )
    }
}

/// What a request of `n` bytes is charged under a cap: its class, or `n`.
pub fn charge_of(classes: &[usize], n: usize) -> usize {
    classes.iter().copied().find(|&c| c >= n).unwrap_or(n)
}

/// A request size: 0, tiny, a class exactly or off by one, anything up to
/// the largest class, or oversize. Under a strict cap, one that fits it.
pub fn request_size(classes: &[usize], fit: Option<usize>, rng: &mut Rng) -> usize {
    let max = classes[classes.len() - 1];
    for _ in 0..8 {
        let class = *rng.pick(classes);
        let n = match rng.weighted(&[4, 8, 30, 20, 26, 12]) {
            0 => 0,
            1 => rng.range(1, 16),
            2 => class,
            3 => (class + rng.below(3)).saturating_sub(1),
            4 => rng.range(1, max),
            _ => max + rng.range(1, max.min(4 << 20)),
        };
        match fit {
            Some(cap) if charge_of(classes, n) > cap => continue,
            _ => return n,
        }
    }
    0
}

/// The capacity of a value made outside the pool: none, below the smallest
/// class, a class exactly, between classes, above the largest (kept in the
/// largest class up to twice its size), or far above it. Under a cap, a
/// value larger than its class serves requests of that class and is
/// charged its whole capacity.
pub fn foreign_capacity(classes: &[usize], rng: &mut Rng) -> usize {
    let max = classes[classes.len() - 1];
    match rng.below(6) {
        0 => 0,
        1 => rng.range(0, classes[0]),
        2 => *rng.pick(classes),
        3 => rng.range(1, max),
        4 => max + rng.range(1, max),
        _ => 2 * max + rng.range(1, 1 << 20),
    }
}

/// A budget for `set_max_total_memory` or a reload.
pub fn random_budget(rng: &mut Rng) -> usize {
    *rng.pick(&BUDGETS)
}

/// A config to reload: `current` with any of the reloadable limits changed
/// (the thread-cache size and batch, the budget, the idle trimmer, the
/// counters when the plan toggles them, and the cap and its policy when
/// the plan's cap is loose). A strict plan's cap and policy are restated.
pub fn reload_config(plan: &PoolPlan, current: &PoolConfig, rng: &mut Rng) -> PoolConfig {
    let mut cfg = current.clone();
    if rng.chance(50) {
        cfg.tls_cache_size = *rng.pick(&[1, 2, 3, 8, 16, 64]);
    }
    if rng.chance(50) || cfg.batch_size > cfg.tls_cache_size {
        cfg.batch_size = rng.range(1, cfg.tls_cache_size);
    }
    if rng.chance(30) {
        cfg.max_total_memory = ByteSize(random_budget(rng) as u64);
    }
    if rng.chance(25) {
        cfg.trim_after = rng
            .chance(50)
            .then(|| Period(Duration::from_millis(rng.range(1, 30) as u64)));
    }
    if plan.toggles_stats && rng.chance(50) {
        cfg.stats = !cfg.stats;
    }
    match plan.mode {
        CapMode::None => cfg.max_outstanding_memory = None,
        CapMode::Loose => {
            if rng.chance(40) {
                cfg.max_outstanding_memory =
                    (!rng.chance(25)).then(|| ByteSize(plan.random_cap(rng) as u64));
            }
            if rng.chance(40) {
                cfg.on_exhausted = *rng.pick(&[OnExhausted::Allocate, OnExhausted::Wait]);
            }
        }
        CapMode::StrictWait | CapMode::StrictError => {
            cfg.max_outstanding_memory = plan.cap.map(|c| ByteSize(c as u64));
            cfg.on_exhausted = plan.policy;
        }
    }
    cfg
}

/// How a deliberately bad reload is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadReload {
    /// A value out of range: `Error::Invalid`.
    Invalid,
    /// A key fixed at build time changed: `Error::RestartRequired`.
    Fixed,
}

/// A config no reload may apply.
pub fn bad_config(current: &PoolConfig, shards: usize, rng: &mut Rng) -> (PoolConfig, BadReload) {
    let mut cfg = current.clone();
    match rng.below(6) {
        0 => cfg.tls_cache_size = 0,
        1 => cfg.batch_size = cfg.tls_cache_size + 1,
        2 => cfg.max_outstanding_memory = Some(ByteSize(0)),
        3 => {
            cfg.shards = Shards::Count(shards * 2);
            return (cfg, BadReload::Fixed);
        }
        4 => {
            cfg.wipe_on_return = !cfg.wipe_on_return;
            return (cfg, BadReload::Fixed);
        }
        _ => {
            cfg.track_outstanding = !cfg.track_outstanding;
            return (cfg, BadReload::Fixed);
        }
    }
    (cfg, BadReload::Invalid)
}
