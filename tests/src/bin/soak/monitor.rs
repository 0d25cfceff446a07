//! The monitor: a thread that samples both pools while the workers run.
//! Under a strict cap the charged bytes (`charged_bytes()`, and
//! `bytes_charged` in the statistics) must never pass the cap and nothing
//! may overshoot it; idle and reserved bytes, and their peak, must never
//! pass the highest budget in force this phase. Each kind of violation is
//! reported once per pool and phase (with the worst value seen by then).

use crate::report;
use crate::subject::Subject;
use crate::unit::Unit;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;
use zeropool::PoolStats;

/// What the monitor saw of one pool this phase.
#[derive(Debug, Default)]
pub struct Marks {
    /// The most bytes seen charged under the cap.
    pub max_charged: AtomicUsize,
    /// Kinds of violation already reported (bits).
    flagged: AtomicU32,
}

/// The cap was passed: by `charged_bytes()`, by `bytes_charged` or by the
/// `cap_overshoots` counter (one event shows in all three: reported once).
const CAP: u32 = 1;
const RESERVED: u32 = 2;
const RETAINED: u32 = 4;
const PEAK: u32 = 8;
const BUDGET: u32 = 16;

/// Reports a violation of kind `bit` unless it was reported this phase.
fn flag<T: Subject>(unit: &Unit<T>, bit: u32, what: String) {
    if unit.marks.flagged.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        report::violation(T::NAME, what);
    }
}

/// Checks a snapshot taken while the pool runs.
pub fn check_sample<T: Subject>(unit: &Unit<T>, s: &PoolStats) {
    // Read after the snapshot: it covers every budget in force before.
    let ceiling = unit.ceiling.load(Ordering::SeqCst);
    let over = |what: &str, v: usize| {
        format!("{what} {v} above every budget in force this phase (at most {ceiling})")
    };
    if s.bytes_reserved > ceiling {
        flag(unit, RESERVED, over("bytes_reserved", s.bytes_reserved));
    }
    if s.bytes_retained > ceiling {
        flag(unit, RETAINED, over("bytes_retained", s.bytes_retained));
    }
    if s.bytes_retained_peak > ceiling {
        flag(
            unit,
            PEAK,
            over("bytes_retained_peak", s.bytes_retained_peak),
        );
    }
    if s.max_total_memory > ceiling {
        flag(unit, BUDGET, over("max_total_memory", s.max_total_memory));
    }
    if let Some(cap) = unit.fit() {
        if s.bytes_charged > cap {
            flag(
                unit,
                CAP,
                format!(
                    "bytes_charged {} above the cap {cap} under {:?}, every request fitting it",
                    s.bytes_charged, unit.plan.mode
                ),
            );
        }
        if s.cap_overshoots > 0 {
            flag(
                unit,
                CAP,
                format!(
                    "{} gets went past the cap {cap} under {:?}, every request fitting it",
                    s.cap_overshoots, unit.plan.mode
                ),
            );
        }
    }
}

/// One sample of `unit`: the charged bytes always, the statistics every
/// `full`-th time.
fn sample<T: Subject>(unit: &Unit<T>, full: bool) {
    let charged = unit.pool.charged_bytes();
    unit.marks.max_charged.fetch_max(charged, Ordering::Relaxed);
    if let Some(cap) = unit.fit() {
        if charged > cap {
            flag(
                unit,
                CAP,
                format!(
                    "charged_bytes() {charged} above the cap {cap} under {:?}, every request fitting it",
                    unit.plan.mode
                ),
            );
        }
    }
    if full {
        let s = unit.pool.stats();
        check_sample(unit, &s);
        #[cfg(feature = "metrics")]
        s.publish_metrics(T::NAME);
    }
}

/// The last sample, once the phase is over: also the most bytes charged
/// seen by any sample.
pub fn last_sample<T: Subject>(unit: &Unit<T>) {
    sample(unit, true);
    if let Some(cap) = unit.fit() {
        let seen = unit.marks.max_charged.load(Ordering::Relaxed);
        if seen > cap {
            flag(
                unit,
                CAP,
                format!(
                    "charged bytes reached {seen}, above the cap {cap} under {:?}, every request fitting it",
                    unit.plan.mode
                ),
            );
        }
    }
}

/// Samples both pools until `stop`.
pub fn run_monitor<A: Subject, B: Subject>(a: &Unit<A>, b: &Unit<B>, stop: &AtomicBool) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let full = i.is_multiple_of(16);
        sample(a, full);
        sample(b, full);
        i += 1;
        std::thread::sleep(Duration::from_micros(100));
    }
}
