//! The run's tallies and its output: one line per violation (phase, seed,
//! pool, what), one short line per phase, and the final summary.
//!
//! Violations are counted from every thread; the first [`MAX_PRINTED`] are
//! printed, the rest only counted (a broken pool would otherwise flood the
//! log), and the summary says how many there were in all.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};

/// Violation lines printed at most; later ones are counted only.
const MAX_PRINTED: u64 = 200;

static SEED: AtomicU64 = AtomicU64::new(0);
static PHASE: AtomicU64 = AtomicU64::new(0);
static VIOLATIONS: AtomicU64 = AtomicU64::new(0);
static OPS: AtomicU64 = AtomicU64::new(0);
static TASKS: AtomicU64 = AtomicU64::new(0);

/// Records the run's seed (printed with each violation).
pub fn set_seed(seed: u64) {
    SEED.store(seed, Ordering::Relaxed);
}

/// Records the phase now running (printed with each violation).
pub fn set_phase(phase: u64) {
    PHASE.store(phase, Ordering::Relaxed);
}

/// Reports one violation: prints a line (up to [`MAX_PRINTED`]) and counts it.
pub fn violation(pool: &str, what: impl Display) {
    let n = VIOLATIONS.fetch_add(1, Ordering::Relaxed) + 1;
    if n <= MAX_PRINTED {
        println!(
            "VIOLATION phase={} seed={} pool={pool}: {what}",
            PHASE.load(Ordering::Relaxed),
            SEED.load(Ordering::Relaxed)
        );
    } else if n == MAX_PRINTED + 1 {
        println!("VIOLATION ... more violations are counted but not printed");
    }
}

/// Violations so far.
pub fn violations() -> u64 {
    VIOLATIONS.load(Ordering::Relaxed)
}

/// Adds operations done (each call on the pool's API counts one).
pub fn add_ops(n: u64) {
    OPS.fetch_add(n, Ordering::Relaxed);
}

/// Operations so far.
pub fn ops() -> u64 {
    OPS.load(Ordering::Relaxed)
}

/// Adds async tasks spawned.
pub fn add_tasks(n: u64) {
    TASKS.fetch_add(n, Ordering::Relaxed);
}

/// Async tasks spawned so far.
pub fn tasks() -> u64 {
    TASKS.load(Ordering::Relaxed)
}

/// The last line of the run.
pub fn summary(secs: u64, seed: u64, phases: u64, threads: usize) -> String {
    format!(
        "soak: secs={secs} seed={seed} phases={phases} ops={} threads={threads} tasks={} violations={}",
        ops(),
        tasks(),
        violations()
    )
}
