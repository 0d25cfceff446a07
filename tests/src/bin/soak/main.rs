//! `soak`: a long randomized run of zeropool's pools (issue #9).
//!
//! ```text
//! cargo run --release --all-features --bin soak -- --secs 600
//! ```
//! The run is a loop of phases until the time is up. Each phase draws a
//! configuration for two pools (a `BufferPool`, and a `Pool<Record>` of a
//! derived type whose `reset` panics when a holder poisoned it), runs
//! worker threads (spawned for the phase, so they exit and hand their
//! thread caches back), sink threads and tokio tasks against both, with a
//! monitor sampling them, then checks both pools at rest.
//!
//! Modules, one job each: `cli` (arguments), `rng` (xorshift), `plan`
//! (configurations and random values), `subject` (the pooled types),
//! `canary` (one holder at a time), `panics` (deliberate reset panics),
//! `unit` (a pool under test and its counts), `holder` (what a thread or
//! task holds, and how it gives it back), `worker` (the threads), `admin`
//! (settings and reports), `tasks` (async), `sink` (guards sent away),
//! `monitor` (checks while running), `check` (checks at rest), `phases`,
//! and `report` (violations and output).

mod admin;
mod canary;
mod check;
mod cli;
mod holder;
mod monitor;
mod panics;
mod phases;
mod plan;
mod report;
mod rng;
mod sink;
mod subject;
mod tasks;
mod unit;
mod worker;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A phase that runs this much longer than planned is taken for hung.
const HANG: Duration = Duration::from_secs(120);

/// When the running phase should have ended, in milliseconds since start.
static PHASE_DUE: AtomicU64 = AtomicU64::new(u64::MAX);

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Run(args)) => args,
        Ok(cli::Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("soak: {e}\n{}\n(--help says more)", cli::USAGE_LINE);
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    report::set_seed(seed);
    panics::install_hook();
    println!(
        "soak: seed={seed} secs={} threads={} (replay the choices with --seed {seed})",
        args.secs, args.threads
    );
    let start = Instant::now();
    watchdog(start, args.secs, seed, args.threads);
    let total = Duration::from_secs(args.secs);
    // About fifty phases in a short run; a phase lasts at most two seconds.
    let base = (total / 50).clamp(Duration::from_millis(200), Duration::from_secs(2));
    let mut rng = rng::Rng::new(seed);
    let mut phases = 0;
    while start.elapsed() < total {
        let left = total - start.elapsed();
        let length = (base * rng.range(50, 150) as u32 / 100).min(left);
        let due = start.elapsed() + length + HANG;
        PHASE_DUE.store(due.as_millis() as u64, Ordering::Relaxed);
        phases::run(phases::PhaseArgs {
            index: phases,
            seed: rng.next_u64(),
            threads: args.threads,
            length,
        });
        phases += 1;
    }
    println!("{}", report::summary(args.secs, seed, phases, args.threads));
    if report::violations() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A thread that ends the run when a phase hangs (a deadlock in the pool,
/// or a waiter never woken): that is a violation too.
fn watchdog(start: Instant, secs: u64, seed: u64, threads: usize) {
    std::thread::Builder::new()
        .name("soak-watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let due = PHASE_DUE.load(Ordering::Relaxed);
            if start.elapsed().as_millis() as u64 > due {
                report::violation("all", format!("the phase hung for {HANG:?} past its end"));
                println!("{}", report::summary(secs, seed, u64::MAX, threads));
                std::process::exit(1);
            }
        })
        .expect("spawn the watchdog");
}
