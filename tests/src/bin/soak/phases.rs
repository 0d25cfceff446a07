//! One phase: draw a configuration for each pool (a `BufferPool` and a
//! `Pool<Record>`), run worker threads, sink threads, async tasks and the
//! monitor against both for a while, stop and join them all, shut the
//! runtime down, then check both pools at rest (see `check`).

use crate::check;
use crate::monitor::run_monitor;
use crate::plan::PoolPlan;
use crate::report;
use crate::rng::Rng;
use crate::sink::{run_sink, Receivers};
use crate::subject::{Record, Subject};
use crate::tasks::run_task;
use crate::unit::Unit;
use crate::worker::{run_worker, Env};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Async tasks per pool and phase (beside the ones that receive guards).
const TASKS_PER_POOL: usize = 2;

/// What a phase needs to know.
#[derive(Debug, Clone, Copy)]
pub struct PhaseArgs {
    pub index: u64,
    pub seed: u64,
    pub threads: usize,
    pub length: Duration,
}

/// Runs one phase and prints its line.
pub fn run(args: PhaseArgs) {
    report::set_phase(args.index);
    let before = (report::ops(), report::violations());
    let started = Instant::now();
    let mut rng = Rng::new(args.seed);
    let bufs = Arc::new(Unit::<Vec<u8>>::new(PoolPlan::random(&mut rng, false)));
    let recs = Arc::new(Unit::<Record>::new(PoolPlan::random(&mut rng, true)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let stop = Arc::new(AtomicBool::new(false));
    let receivers: Receivers = Arc::new(Mutex::new(JoinSet::new()));
    let (btx, brx) = channel();
    let (rtx, rrx) = channel();
    let benv = Env {
        unit: bufs.clone(),
        sink: btx,
        rt: rt.handle().clone(),
        receivers: receivers.clone(),
    };
    let renv = Env {
        unit: recs.clone(),
        sink: rtx,
        rt: rt.handle().clone(),
        receivers: receivers.clone(),
    };

    let sinks = [
        spawn_named("soak-sink-buffers", {
            let (unit, seed) = (bufs.clone(), rng.next_u64());
            move || run_sink(unit, brx, seed)
        }),
        spawn_named("soak-sink-records", {
            let (unit, seed) = (recs.clone(), rng.next_u64());
            move || run_sink(unit, rrx, seed)
        }),
    ];
    let monitor_stop = Arc::new(AtomicBool::new(false));
    let monitor = spawn_named("soak-monitor", {
        let (a, b, stop) = (bufs.clone(), recs.clone(), monitor_stop.clone());
        move || run_monitor(&a, &b, &stop)
    });
    let mut tasks = Vec::new();
    for _ in 0..TASKS_PER_POOL {
        tasks.push(rt.spawn(run_task(benv.clone(), stop.clone(), rng.next_u64())));
        tasks.push(rt.spawn(run_task(renv.clone(), stop.clone(), rng.next_u64())));
    }
    report::add_tasks(tasks.len() as u64);
    let workers: Vec<_> = (0..args.threads)
        .map(|i| {
            let (b, r, stop, seed) = (benv.clone(), renv.clone(), stop.clone(), rng.next_u64());
            spawn_named(&format!("soak-worker-{i}"), move || {
                run_worker(b, r, &stop, seed)
            })
        })
        .collect();
    // The sinks end when the last sender goes: the workers' and tasks' clones.
    drop((benv, renv));

    thread::sleep(args.length);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        joined("a worker thread", w.join());
    }
    rt.block_on(async {
        for t in tasks {
            if let Err(e) = t.await {
                report::violation("all", format!("an async task failed: {e}"));
            }
        }
        let mut set = std::mem::take(&mut *receivers.lock().unwrap_or_else(|e| e.into_inner()));
        while let Some(r) = set.join_next().await {
            if let Err(e) = r {
                report::violation("all", format!("a receiving task failed: {e}"));
            }
        }
    });
    for s in sinks {
        joined("a sink thread", s.join());
    }
    monitor_stop.store(true, Ordering::Relaxed);
    joined("the monitor", monitor.join());
    // The runtime's threads exit and hand their thread caches back.
    drop(rt);

    check::nothing_held();
    check::after_phase(&bufs);
    check::after_phase(&recs);
    println!(
        "phase {} seed={} {}ms ops={} violations={} | {} | {}",
        args.index,
        args.seed,
        started.elapsed().as_millis(),
        report::ops() - before.0,
        report::violations() - before.1,
        line(&bufs),
        line(&recs),
    );
}

/// A pool's part of the phase line.
fn line<T: Subject>(unit: &Unit<T>) -> String {
    let s = unit.pool.stats();
    let t = unit.tally();
    let mut out = format!(
        "{} {} gets={} hit={:.0}% waits={} refused={} cancelled={} reloads={}",
        T::NAME,
        unit.plan.describe(),
        s.gets,
        s.hit_rate() * 100.0,
        s.waits,
        t.exhausted,
        t.cancelled,
        t.reloads,
    );
    if T::POISONABLE {
        out += &format!(" reset_panics={}", t.reset_panics);
    }
    out
}

fn spawn_named<R: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> thread::JoinHandle<R> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("spawn a thread")
}

/// Reports a thread that panicked (its message went to stderr).
fn joined(what: &str, r: thread::Result<()>) {
    if let Err(p) = r {
        report::violation(
            "all",
            format!("{what} panicked: {}", crate::panics::message(p.as_ref())),
        );
    }
}
