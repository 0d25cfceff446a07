//! The async tasks: each runs random operations on one pool on the tokio
//! runtime of the phase: `get_async` and `get_owned_async`, cancelled by
//! `tokio::time::timeout`, by `select!` against a sleep, or dropped after
//! one poll; guards held across awaits and handed to other tasks. Like the
//! workers, a task never waits without a deadline while it holds anything
//! of a capped pool.

use crate::admin::exhausted;
use crate::holder::{Holder, Loan};
use crate::plan::{self, CapMode};
use crate::rng::Rng;
use crate::sink::spawn_receiver;
use crate::subject::Subject;
use crate::worker::{Env, MAX_HELD};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One task's loop on `env`'s pool until `stop`.
pub async fn run_task<T: Subject>(env: Env<T>, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = Rng::new(seed);
    let unit = env.unit.clone();
    let pool = &unit.pool;
    let mut h = Holder::new(&unit);
    let capped = unit.plan.mode != CapMode::None;
    // Under a strict `error` cap, async gets would go past it: try_get only.
    let may_wait = unit.plan.mode != CapMode::StrictError;
    while !stop.load(Ordering::Relaxed) {
        let n = plan::request_size(&unit.classes, unit.fit(), &mut rng);
        if h.held.len() >= MAX_HELD {
            h.release(rng.below(h.held.len()), &mut rng);
            continue;
        }
        let short = Duration::from_micros(rng.range(0, 1500) as u64);
        let way = rng.below(12);
        if way <= 6 {
            h.tally.ops += 1; // the other ways count their own calls
        }
        match way {
            0 if may_wait => {
                if capped {
                    h.flush(&mut rng);
                }
                let g = pool.get_async(n).await;
                h.keep(Loan::Guard(g), n, false, &mut rng);
            }
            1 if may_wait => {
                if capped {
                    h.flush(&mut rng);
                }
                let mut g = pool.get_owned_async(n).await;
                if rng.chance(50) {
                    h.keep(Loan::Owned(g), n, false, &mut rng);
                } else {
                    let stamp = h.stamp_new(&mut g, n, false, &mut rng);
                    h.tally.sent += 1;
                    let seed = rng.next_u64();
                    spawn_receiver(&env.unit, &env.receivers, &env.rt, g, stamp, seed);
                }
            }
            2 if may_wait => match tokio::time::timeout(short, pool.get_async(n)).await {
                Ok(g) => h.keep(Loan::Guard(g), n, false, &mut rng),
                Err(_) => h.tally.cancelled += 1,
            },
            3 if may_wait => {
                tokio::select! {
                    g = pool.get_owned_async(n) => h.keep(Loan::Owned(g), n, false, &mut rng),
                    _ = tokio::time::sleep(short) => h.tally.cancelled += 1,
                }
            }
            4 if may_wait => {
                // Polled once, then dropped if it has to wait.
                match tokio::time::timeout(Duration::ZERO, pool.get_async(n)).await {
                    Ok(g) => h.keep(Loan::Guard(g), n, false, &mut rng),
                    Err(_) => h.tally.cancelled += 1,
                }
            }
            5 | 6 => match pool.try_get(n) {
                Ok(g) => h.keep(Loan::Guard(g), n, false, &mut rng),
                Err(e) => exhausted(&mut h, n, e),
            },
            7 if !h.held.is_empty() => h.release(rng.below(h.held.len()), &mut rng),
            8 => tokio::time::sleep(short).await, // holding what it holds
            9 if !h.held.is_empty() => h.detach(rng.below(h.held.len())),
            10 if !h.detached.is_empty() => h.put_detached(rng.below(h.detached.len()), &mut rng),
            10 => h.put_foreign(&mut rng),
            _ => tokio::task::yield_now().await,
        }
    }
    h.finish(&mut rng);
}
