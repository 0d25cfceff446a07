//! The worker threads: each runs random operations on both pools until the
//! phase ends, then gives everything back and exits (so its thread caches
//! go back to the pools). A worker never waits for the pool (a blocking
//! get under a cap, a thread it joins) while it holds anything of a capped
//! pool: waiting while holding is how holders deadlock each other.

use crate::admin::{bad_reload, config, exhausted, outstanding, reload};
use crate::holder::{Flush, Holder, Loan};
use crate::plan::{self, CapMode};
use crate::report;
use crate::rng::Rng;
use crate::sink::{spawn_receiver, Receivers, Sent};
use crate::subject::{Record, Subject};
use crate::unit::Unit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

/// Guards a holder keeps at most.
pub const MAX_HELD: usize = 8;

/// Detached objects a worker keeps at most.
const MAX_DETACHED: usize = 16;

/// What a worker needs of one pool.
#[derive(Debug)]
pub struct Env<T: Subject> {
    pub unit: Arc<Unit<T>>,
    pub sink: Sender<Sent<T>>,
    pub rt: tokio::runtime::Handle,
    pub receivers: Receivers,
}

impl<T: Subject> Clone for Env<T> {
    fn clone(&self) -> Self {
        Env {
            unit: self.unit.clone(),
            sink: self.sink.clone(),
            rt: self.rt.clone(),
            receivers: self.receivers.clone(),
        }
    }
}

/// One worker thread: random operations on both pools until `stop`.
pub fn run_worker(bufs: Env<Vec<u8>>, recs: Env<Record>, stop: &AtomicBool, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut hb = Holder::new(&bufs.unit);
    let mut hr = Holder::new(&recs.unit);
    while !stop.load(Ordering::Relaxed) {
        if rng.chance(50) {
            step(&mut hb, &mut hr, &bufs, &mut rng);
        } else {
            step(&mut hr, &mut hb, &recs, &mut rng);
        }
    }
    hb.finish(&mut rng);
    hr.finish(&mut rng);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    GetOwned,
    GetZeroed,
    TryGet,
    GetTimeout,
    GetBatch,
    Release,
    Detach,
    PutDetached,
    PutBatch,
    DropDetached,
    PutForeign,
    Grow,
    Trim,
    TrimTo,
    TrimAfter,
    Budget,
    Reload,
    BadReload,
    Stats,
    Outstanding,
    Config,
    CloneHandle,
    Thread,
}

const OPS: [Op; 24] = [
    Op::Get,
    Op::GetOwned,
    Op::GetZeroed,
    Op::TryGet,
    Op::GetTimeout,
    Op::GetBatch,
    Op::Release,
    Op::Detach,
    Op::PutDetached,
    Op::PutBatch,
    Op::DropDetached,
    Op::PutForeign,
    Op::Grow,
    Op::Trim,
    Op::TrimTo,
    Op::TrimAfter,
    Op::Budget,
    Op::Reload,
    Op::BadReload,
    Op::Stats,
    Op::Outstanding,
    Op::Config,
    Op::CloneHandle,
    Op::Thread,
];

/// Whether `op` may wait for room under a cap.
fn blocking(op: Op) -> bool {
    matches!(
        op,
        Op::Get | Op::GetOwned | Op::GetZeroed | Op::GetBatch | Op::Thread
    )
}

/// Weights of [`OPS`] for a holder of `unit`'s pool. Under a cap, gets
/// that never wait are the common ones, so that holders hold several
/// objects at once (a get that may wait is made holding nothing).
fn weights<T: Subject>(h: &Holder<'_, T>) -> [u32; 24] {
    let plan = &h.unit.plan;
    let capped = plan.mode != CapMode::None;
    let by_cap = |with_cap: u32, without: u32| if capped { with_cap } else { without };
    let when = |cond: bool, w: u32| if cond { w } else { 0 };
    let held = !h.held.is_empty();
    let detached = !h.detached.is_empty();
    let full = h.held.len() >= MAX_HELD;
    OPS.map(|op| {
        if full && !matches!(op, Op::Release | Op::Detach) {
            return 0;
        }
        if plan.mode == CapMode::StrictError && blocking(op) && op != Op::Thread {
            return 0;
        }
        match op {
            Op::Get => by_cap(4, 12),
            Op::GetOwned => by_cap(3, 6),
            Op::GetZeroed => when(T::ZEROED, 2),
            Op::TryGet => by_cap(12, 4),
            Op::GetTimeout => by_cap(6, 2),
            Op::GetBatch | Op::PutBatch | Op::Reload => 2,
            Op::Release => when(held, 16),
            Op::Detach => when(held && h.detached.len() < MAX_DETACHED, 4),
            Op::PutDetached => when(detached, 4),
            Op::DropDetached => when(detached, 2),
            Op::PutForeign => 3,
            Op::Grow => when(held, 2),
            Op::Trim | Op::TrimTo | Op::TrimAfter | Op::Budget | Op::BadReload => 1,
            Op::Stats | Op::Outstanding | Op::Config | Op::CloneHandle | Op::Thread => 1,
        }
    })
}

/// One random operation on `h`'s pool (`other`: the thread's holder of
/// the other pool, flushed too before anything that may wait).
fn step<'a, T: Subject>(
    h: &mut Holder<'a, T>,
    other: &mut dyn Flush,
    env: &'a Env<T>,
    rng: &mut Rng,
) {
    let op = OPS[rng.weighted(&weights(h))];
    let unit: &'a Unit<T> = h.unit;
    let pool = &unit.pool;
    if blocking(op) && unit.plan.mode != CapMode::None {
        h.flush(rng);
        other.flush_all(rng);
    }
    let n = plan::request_size(&unit.classes, unit.fit(), rng);
    // The holder's own methods count the calls they make.
    let by_holder = matches!(
        op,
        Op::Release
            | Op::Detach
            | Op::PutDetached
            | Op::PutBatch
            | Op::DropDetached
            | Op::PutForeign
    );
    if !by_holder {
        h.tally.ops += 1;
    }
    match op {
        Op::Get => {
            let g = pool.get(n);
            h.keep(Loan::Guard(g), n, false, rng);
        }
        Op::GetOwned => {
            let mut g = pool.get_owned(n);
            match rng.below(3) {
                0 => h.keep(Loan::Owned(g), n, false, rng),
                way => {
                    let stamp = h.stamp_new(&mut g, n, false, rng);
                    h.tally.sent += 1;
                    if way == 1 {
                        if let Err(e) = env.sink.send(Sent { guard: g, stamp }) {
                            report::violation(T::NAME, "the sink hung up early");
                            drop(e);
                        }
                    } else {
                        let seed = rng.next_u64();
                        spawn_receiver(&env.unit, &env.receivers, &env.rt, g, stamp, seed);
                    }
                }
            }
        }
        Op::GetZeroed => {
            let n = n % (64 << 10);
            if let Some(g) = T::get_zeroed(pool, n) {
                h.keep(Loan::Guard(g), n, true, rng);
            }
        }
        Op::TryGet => match pool.try_get(n) {
            Ok(g) => h.keep(Loan::Guard(g), n, false, rng),
            Err(e) => exhausted(h, n, e),
        },
        Op::GetTimeout => {
            let wait = Duration::from_micros(rng.range(0, 2000) as u64);
            match pool.get_timeout(n, wait) {
                Ok(g) => h.keep(Loan::Guard(g), n, false, rng),
                Err(e) => exhausted(h, n, e),
            }
        }
        Op::GetBatch => {
            let sizes = batch_sizes(unit, rng);
            let guards = pool.get_batch(&sizes);
            if guards.len() != sizes.len() {
                report::violation(
                    T::NAME,
                    format!("get_batch of {} gave {}", sizes.len(), guards.len()),
                );
            }
            for (g, &n) in guards.into_iter().zip(&sizes) {
                h.keep(Loan::Guard(g), n, false, rng);
            }
            while h.held.len() > MAX_HELD {
                h.release(rng.below(h.held.len()), rng);
            }
        }
        Op::Release => h.release(rng.below(h.held.len()), rng),
        Op::Detach => h.detach(rng.below(h.held.len())),
        Op::PutDetached => h.put_detached(rng.below(h.detached.len()), rng),
        Op::PutBatch => h.put_batch(rng),
        Op::DropDetached => h.drop_detached(rng.below(h.detached.len())),
        Op::PutForeign => h.put_foreign(rng),
        Op::Grow => h.grow(rng.below(h.held.len()), rng),
        Op::Trim => pool.trim(),
        Op::TrimTo => pool.trim_to(plan::random_budget(rng)),
        Op::TrimAfter => pool.set_trim_after(
            rng.chance(50)
                .then(|| Duration::from_millis(rng.range(1, 30) as u64)),
        ),
        Op::Budget => {
            let bytes = plan::random_budget(rng);
            unit.raise_ceiling(bytes);
            pool.set_max_total_memory(bytes);
        }
        Op::Reload => reload(h, rng),
        Op::BadReload => bad_reload(h, rng),
        Op::Stats => {
            let s = pool.stats();
            crate::monitor::check_sample(unit, &s);
        }
        Op::Outstanding => outstanding(h),
        Op::Config => config(unit),
        Op::CloneHandle => {
            // A second handle, a guard from it, both given back.
            let clone = pool.clone();
            match clone.try_get(n) {
                Ok(mut g) => {
                    let stamp = h.stamp_new(&mut g, n, false, rng);
                    crate::canary::release(&*g, &stamp);
                    drop(g);
                }
                Err(e) => exhausted(h, n, e),
            };
        }
        Op::Thread => {
            let seed = rng.next_u64();
            std::thread::scope(|s| {
                let child = s.spawn(|| short_thread(unit, seed));
                if let Err(p) = child.join() {
                    let msg = crate::panics::message(p.as_ref());
                    crate::holder::unexpected(T::NAME, "a short-lived thread", &msg);
                }
            });
        }
    }
}

/// Sizes for `get_batch`; under a strict cap, all together fitting it (a
/// batch waits as one request).
fn batch_sizes<T: Subject>(unit: &Unit<T>, rng: &mut Rng) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut total = 0;
    for _ in 0..rng.range(0, 8) {
        let n = plan::request_size(&unit.classes, unit.fit(), rng);
        total += unit.charge(n);
        if unit.fit().is_some_and(|cap| total > cap) {
            break;
        }
        sizes.push(n);
    }
    sizes
}

/// A thread that lives for a few operations and exits, handing its thread
/// cache back. It holds one object at a time (a batch is one request).
fn short_thread<T: Subject>(unit: &Unit<T>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut h = Holder::new(unit);
    let strict_error = unit.plan.mode == CapMode::StrictError;
    for _ in 0..rng.range(1, 16) {
        let n = plan::request_size(&unit.classes, unit.fit(), &mut rng);
        let way = rng.below(4);
        if way != 2 {
            h.tally.ops += 1;
        }
        match way {
            0 if !strict_error => {
                let g = unit.pool.get(n);
                h.keep(Loan::Guard(g), n, false, &mut rng);
            }
            1 if !strict_error => {
                let sizes = batch_sizes(unit, &mut rng);
                for (g, &n) in unit.pool.get_batch(&sizes).into_iter().zip(&sizes) {
                    h.keep(Loan::Guard(g), n, false, &mut rng);
                }
            }
            2 => h.put_foreign(&mut rng),
            _ => match unit.pool.try_get(n) {
                Ok(g) => h.keep(Loan::Guard(g), n, false, &mut rng),
                Err(e) => exhausted(&mut h, n, e),
            },
        }
        h.flush(&mut rng);
    }
    h.finish(&mut rng);
}
