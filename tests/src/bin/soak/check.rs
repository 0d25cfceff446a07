//! The checks after a phase, when every worker, task and sink has ended and
//! no guard is held: nothing lost, nothing counted twice, nothing held,
//! idle bytes within the budget, nothing charged, and the pool's counters
//! equal to what the holders counted.
//!
//! A pool's statistics are exact only when it is quiet, and threads that
//! just ended (the runtime's, the idle trimmer) may still be handing their
//! caches back; so the checks are retried for up to two seconds and only
//! what still fails then is reported.

use crate::canary;
use crate::monitor;
use crate::report;
use crate::subject::Subject;
use crate::unit::Unit;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long the checks wait for a pool to settle.
const SETTLE: Duration = Duration::from_secs(2);

/// Runs [`problems`] until none is left or [`SETTLE`] has passed, reports
/// what is left (returning how many), then takes the monitor's last sample
/// (the cap and the budget, each kind reported once per phase).
pub fn after_phase<T: Subject>(unit: &Unit<T>) -> usize {
    let deadline = Instant::now() + SETTLE;
    let n = loop {
        let found = problems(unit);
        if found.is_empty() {
            break 0;
        }
        if Instant::now() >= deadline {
            let n = found.len();
            for p in found {
                report::violation(T::NAME, p);
            }
            break n;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    monitor::last_sample(unit);
    n
}

/// Checks that no holder's address is still claimed (nothing held), and
/// forgets any that is (so one leak is reported once).
pub fn nothing_held() {
    let n = canary::take_claimed();
    if n != 0 {
        report::violation("all", format!("{n} objects still registered to holders"));
    }
}

/// What is wrong with a quiet pool.
fn problems<T: Subject>(unit: &Unit<T>) -> Vec<String> {
    let pool = &unit.pool;
    let s = pool.stats();
    let t = unit.tally();
    let mut out = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            out.push(what);
        }
    };
    // Gauges, kept whether or not the counters are on.
    expect(
        s.bytes_outstanding == 0,
        format!(
            "{} bytes outstanding with nothing held",
            s.bytes_outstanding
        ),
    );
    expect(
        s.bytes_retained <= s.max_total_memory,
        format!(
            "bytes_retained {} above the budget {}",
            s.bytes_retained, s.max_total_memory
        ),
    );
    let ceiling = unit.ceiling.load(Ordering::SeqCst);
    expect(
        s.bytes_retained_peak <= ceiling,
        format!(
            "bytes_retained_peak {} above every budget of the phase (at most {ceiling})",
            s.bytes_retained_peak
        ),
    );
    let charged = pool.charged_bytes();
    expect(
        charged == 0 && s.bytes_charged == 0,
        format!(
            "charged {charged} (stats: {}) with nothing held or detached",
            s.bytes_charged
        ),
    );
    expect(
        s.waiting == 0,
        format!("{} requests still waiting", s.waiting),
    );
    expect(
        s.exhausted_errors == t.exhausted,
        format!(
            "exhausted_errors {} but holders saw {} refusals",
            s.exhausted_errors, t.exhausted
        ),
    );
    expect(
        s.reload_errors == t.bad_reloads,
        format!(
            "reload_errors {} but {} bad reloads were made",
            s.reload_errors, t.bad_reloads
        ),
    );
    if unit.plan.track {
        let live: usize = pool.outstanding().iter().map(|e| e.count).sum();
        expect(live == 0, format!("outstanding() lists {live} live guards"));
    }
    if unit.plan.toggles_stats {
        // Counters were off for part of the phase: only the gauges hold.
        return out;
    }
    let sources = s.allocations + s.adopted;
    let sinks = s.objects_retained + s.objects_outstanding + s.detached + s.freed;
    expect(
        sources == sinks && s.is_balanced(),
        format!(
            "ledger: allocations {} + adopted {} = {sources} != retained {} + outstanding {} + detached {} + freed {} = {sinks}",
            s.allocations, s.adopted, s.objects_retained, s.objects_outstanding, s.detached, s.freed
        ),
    );
    expect(
        s.objects_outstanding == 0,
        format!(
            "{} objects outstanding with nothing held (lost)",
            s.objects_outstanding
        ),
    );
    let reasons = s.discards + s.undersize_drops + s.oversize_drops + s.reset_panics + s.trimmed;
    expect(
        s.freed == reasons,
        format!("freed {} but the reasons add up to {reasons}", s.freed),
    );
    let counted = [
        ("gets", s.gets, t.gets),
        ("adopted", s.adopted, t.adopted),
        ("detached", s.detached, t.detached),
        ("reset_panics", s.reset_panics, t.reset_panics),
        ("oversize_requests", s.oversize_requests, t.oversize_gets),
    ];
    for (name, pool_says, holders_saw) in counted {
        expect(
            pool_says == holders_saw,
            format!("{name}: the pool counted {pool_says}, the holders {holders_saw}"),
        );
    }
    out
}
