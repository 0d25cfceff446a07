//! The settings and reports of a running pool, exercised and checked:
//! reloads of the reloadable limits (which must apply), reloads that must
//! be refused (with the right error), the outstanding report, the
//! accessors, and what an `Exhausted` error says.

use crate::holder::Holder;
use crate::plan::{self, CapMode};
use crate::report;
use crate::rng::Rng;
use crate::subject::Subject;
use crate::unit::Unit;
use zeropool::{Error, Exhausted};

/// Counts an `Exhausted` error and checks what it says.
pub fn exhausted<T: Subject>(h: &mut Holder<'_, T>, n: usize, e: Exhausted) {
    h.tally.exhausted += 1;
    let unit = h.unit;
    if unit.plan.mode == CapMode::None {
        report::violation(T::NAME, format!("get of {n} exhausted without a cap: {e}"));
    } else if e.requested != unit.charge(n) {
        report::violation(
            T::NAME,
            format!("get of {n} (charged {}) refused as {e}", unit.charge(n)),
        );
    } else if unit.plan.strict() && Some(e.cap) != unit.plan.cap {
        report::violation(
            T::NAME,
            format!("refused under cap {}, set {:?}", e.cap, unit.plan.cap),
        );
    }
}

/// A reload of random reloadable limits: it must apply.
pub fn reload<T: Subject>(h: &mut Holder<'_, T>, rng: &mut Rng) {
    let unit = h.unit;
    let cfg = plan::reload_config(&unit.plan, &unit.pool.config(), rng);
    unit.raise_ceiling(cfg.max_total_memory.to_usize().unwrap_or(usize::MAX));
    match unit.pool.reload(&cfg) {
        Ok(report) => {
            h.tally.reloads += 1;
            const FIXED: [&str; 6] = [
                "shards",
                "numa",
                "size_classes",
                "wipe_on_return",
                "pinned",
                "track_outstanding",
            ];
            if let Some(c) = report.changed.iter().find(|c| FIXED.contains(&c.key)) {
                report::violation(T::NAME, format!("a reload changed a fixed key: {c}"));
            }
        }
        Err(e) => report::violation(T::NAME, format!("a valid reload was refused: {e}")),
    }
}

/// A reload that must be refused, with the right error.
pub fn bad_reload<T: Subject>(h: &mut Holder<'_, T>, rng: &mut Rng) {
    let unit = h.unit;
    let (cfg, kind) = plan::bad_config(&unit.pool.config(), unit.pool.shards(), rng);
    match (unit.pool.reload(&cfg), kind) {
        (Err(Error::Invalid(_)), plan::BadReload::Invalid)
        | (Err(Error::RestartRequired(_)), plan::BadReload::Fixed) => h.tally.bad_reloads += 1,
        (Err(e), kind) => {
            h.tally.bad_reloads += 1;
            report::violation(T::NAME, format!("a {kind:?} reload was refused as: {e}"));
        }
        (Ok(r), kind) => report::violation(T::NAME, format!("a {kind:?} reload applied: {r}")),
    }
}

/// The outstanding report: empty unless tracked; when tracked, it lists at
/// least what this holder holds.
pub fn outstanding<T: Subject>(h: &Holder<'_, T>) {
    let report = h.unit.pool.outstanding();
    let count: usize = report.iter().map(|e| e.count).sum();
    if !h.unit.plan.track && !report.is_empty() {
        report::violation(T::NAME, "outstanding() lists guards without tracking");
    } else if h.unit.plan.track && count < h.held.len() {
        report::violation(
            T::NAME,
            format!(
                "outstanding() lists {count} guards; this thread alone holds {}",
                h.held.len()
            ),
        );
    }
}

/// The read-only accessors, checked against the plan where it is fixed.
pub fn config<T: Subject>(unit: &Unit<T>) {
    let pool = &unit.pool;
    let cfg = pool.config();
    let _ = (pool.tls_cache_size(), pool.batch_size(), pool.trim_after());
    let _ = (
        pool.max_total_memory(),
        pool.config_section(),
        cfg.settings(),
    );
    if pool.size_classes() != unit.classes || pool.wipe_on_return() != unit.plan.wipe {
        report::violation(
            T::NAME,
            "size classes or wipe_on_return changed while running",
        );
    }
    if !pool.shards().is_power_of_two() {
        report::violation(T::NAME, format!("{} shards", pool.shards()));
    }
}
