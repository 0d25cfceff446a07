//! Checking settings: every key of a section, parsed from raw values with
//! where each came from, then every range and cross-key rule on the merged
//! result. All problems are collected; none stops the others from being
//! found.

use super::schema::{PoolConfig, KEYS};
use super::size::{self, ByteSize, SIZE_HELP};
use super::suggest::suggest;
use super::values::{Numa, OnExhausted, Shards, SizeClassSpec};
use crate::builder::{MAX_CLASS_SIZE, MAX_SHARDS, MAX_SIZE_CLASSES, MAX_TLS_CACHE_SIZE};
use crate::error::{Error, Problem, Source};
use figment::value::{Dict, Value};

/// Most NUMA node numbers accepted in `numa = [...]`.
const MAX_NUMA_NODE: usize = 1023;

/// Where a raw value came from, given its key path.
pub(crate) type Locate<'a> = dyn Fn(&[String], &Value) -> Source + 'a;

/// Collects problems while parsing raw values.
pub(crate) struct Cx<'a> {
    pub(crate) problems: Vec<Problem>,
    pub(crate) locate: &'a Locate<'a>,
}

impl Cx<'_> {
    pub(crate) fn bad(&mut self, path: &[String], v: &Value, accepted: impl Into<String>) {
        let source = (self.locate)(path, v);
        // The empty key (`"" = 1`) as TOML writes it: an empty `key` means
        // a problem with the whole file.
        let key = match path.join(".") {
            key if key.is_empty() => "\"\"".to_string(),
            key => key,
        };
        self.problems
            .push(Problem::new(key, value_text(v), source, accepted));
    }

    /// An unknown key at `path`, among `known` ones (`what` names them).
    pub(crate) fn unknown(&mut self, path: &[String], v: &Value, what: &str, known: &[&str]) {
        let key = path.last().map_or("", String::as_str);
        let mut accepted = format!("not a known key; {what}: {}", known.join(", "));
        if let Some(close) = suggest(key, known.iter().copied()) {
            let mut fixed = path.to_vec();
            *fixed.last_mut().expect("a key path is never empty") = close.to_string();
            match (self.locate)(path, v) {
                Source::Env { .. } => {
                    accepted += &format!("; did you mean {}?", env_var_name(&fixed))
                }
                _ => accepted += &format!("; did you mean `{close}`?"),
            }
        }
        self.bad(path, v, accepted);
    }
}

/// The environment variable that sets `path`.
pub(crate) fn env_var_name(path: &[String]) -> String {
    format!("ZEROPOOL_{}", path.join("__").to_ascii_uppercase())
}

/// What each key accepts.
pub(crate) fn accepted(key: &str, cfg: &PoolConfig) -> String {
    match key {
        "shards" => {
            format!("\"auto\" or an integer from 1 to {MAX_SHARDS} (rounded up to a power of two)")
        }
        "numa" => format!(
            "\"auto\", \"off\", \"local\", \"interleave\", or a list of distinct NUMA node numbers from 0 to {MAX_NUMA_NODE}, such as [0, 1]"
        ),
        "size_classes" => "a list of sizes such as [\"4 KiB\", \"64 KiB\"], or a table such as { min = \"256 B\", max = \"4 MiB\", per_doubling = 4 }".into(),
        "tls_cache_size" => format!("an integer from 1 to {MAX_TLS_CACHE_SIZE}"),
        "batch_size" => format!(
            "an integer from 1 to tls_cache_size ({})",
            cfg.tls_cache_size
        ),
        "max_total_memory" => SIZE_HELP.into(),
        "max_outstanding_memory" => format!("{SIZE_HELP}, at least 1 byte"),
        "on_exhausted" => "\"allocate\", \"error\" or \"wait\"".into(),
        "stats" | "wipe_on_return" | "pinned" | "track_outstanding" => "true or false".into(),
        "trim_after" => "a duration such as \"30s\", \"250ms\", \"5m\", or \"off\"".into(),
        _ => String::new(),
    }
}

/// Parses the keys of one pool's table into `cfg`, recording each value's
/// source. Returns the keys whose values could not be parsed.
pub(crate) fn parse_section(
    cx: &mut Cx<'_>,
    path: &[String],
    table: &Dict,
    cfg: &mut PoolConfig,
) -> Vec<&'static str> {
    let mut unparsed = Vec::new();
    for (name, v) in table {
        let mut kp = path.to_vec();
        kp.push(name.clone());
        let Some(&key) = KEYS.iter().find(|k| **k == name) else {
            cx.unknown(&kp, v, "a pool's keys are", &KEYS);
            continue;
        };
        if parse_key(cx, &kp, key, v, cfg) {
            let source = (cx.locate)(&kp, v);
            cfg.record(key, source, value_text(v));
        } else {
            unparsed.push(key);
        }
    }
    unparsed
}

/// Parses one key into `cfg`; false (with a problem recorded) when the value
/// has the wrong shape.
fn parse_key(cx: &mut Cx<'_>, kp: &[String], key: &str, v: &Value, cfg: &mut PoolConfig) -> bool {
    // Sizes say why they were refused; the other keys list what is accepted.
    let size = |cx: &mut Cx<'_>, help: String| match byte_size(v) {
        Ok(s) => Some(s),
        Err(why) => {
            cx.bad(kp, v, format!("{help} ({why})"));
            None
        }
    };
    let ok = match key {
        "size_classes" => return size_classes(cx, kp, v, cfg),
        "max_total_memory" => {
            return size(cx, SIZE_HELP.into())
                .map(|s| cfg.max_total_memory = s)
                .is_some()
        }
        "max_outstanding_memory" => {
            let help = accepted(key, cfg);
            return size(cx, help)
                .map(|s| cfg.max_outstanding_memory = Some(s))
                .is_some();
        }
        "shards" => match v {
            Value::String(_, s) if s == "auto" => Some(Shards::Auto),
            _ => count(v).ok().map(Shards::Count),
        }
        .map(|s| cfg.shards = s),
        "numa" => numa(v).map(|n| cfg.numa = n),
        "tls_cache_size" => count(v).ok().map(|n| cfg.tls_cache_size = n),
        "batch_size" => count(v).ok().map(|n| cfg.batch_size = n),
        "on_exhausted" => v
            .as_str()
            .and_then(|s| OnExhausted::NAMES.iter().find(|(n, _)| *n == s))
            .map(|&(_, e)| cfg.on_exhausted = e),
        "stats" => v.to_bool().map(|b| cfg.stats = b),
        "wipe_on_return" => v.to_bool().map(|b| cfg.wipe_on_return = b),
        "pinned" => v.to_bool().map(|b| cfg.pinned = b),
        "track_outstanding" => v.to_bool().map(|b| cfg.track_outstanding = b),
        "trim_after" => match v.as_str() {
            Some("off") => {
                cfg.trim_after = None;
                Some(())
            }
            Some(s) => match s.parse::<super::period::Period>() {
                Ok(p) => {
                    cfg.trim_after = Some(p);
                    Some(())
                }
                Err(why) => {
                    cx.bad(kp, v, format!("{} ({why})", accepted(key, cfg)));
                    return false;
                }
            },
            None => None,
        },
        _ => None,
    };
    if ok.is_none() {
        cx.bad(kp, v, accepted(key, cfg));
    }
    ok.is_some()
}

/// A non-negative integer that fits a `usize`.
fn count(v: &Value) -> Result<usize, String> {
    match v {
        Value::Num(_, n) => match n.to_u128_lossy() {
            Some(u) => usize::try_from(u).map_err(|_| "too large".into()),
            None if n.to_f64().is_some() => Err("not an integer".into()),
            None => Err("negative".into()),
        },
        _ => Err("not an integer".into()),
    }
}

/// A size: an integer of bytes or a human size string.
pub(crate) fn byte_size(v: &Value) -> Result<ByteSize, String> {
    match v {
        Value::String(_, s) => size::parse(s).map(ByteSize),
        Value::Num(_, n) => match n.to_u128_lossy() {
            Some(u) => u64::try_from(u)
                .map(ByteSize)
                .map_err(|_| "too large".into()),
            None if n.to_f64().is_some() => {
                Err("a bare number must be whole bytes; write a unit, e.g. \"1.5 GiB\"".into())
            }
            None => Err("negative sizes are not allowed".into()),
        },
        _ => Err("not a size".into()),
    }
}

fn numa(v: &Value) -> Option<Numa> {
    match v {
        Value::String(_, s) => match s.as_str() {
            "auto" => Some(Numa::Auto),
            "off" => Some(Numa::Off),
            "local" => Some(Numa::Local),
            "interleave" => Some(Numa::Interleave),
            _ => None,
        },
        Value::Array(_, items) => items
            .iter()
            .map(|i| count(i).ok())
            .collect::<Option<Vec<_>>>()
            .map(Numa::Nodes),
        _ => None,
    }
}

/// `size_classes`: a list of sizes or `{ min, max, per_doubling }`.
fn size_classes(cx: &mut Cx<'_>, kp: &[String], v: &Value, cfg: &mut PoolConfig) -> bool {
    match v {
        Value::Array(_, items) => {
            let mut sizes = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match byte_size(item) {
                    Ok(s) => sizes.push(s),
                    Err(why) => {
                        let what = format!(
                            "{}; item {} ({}) is not a size: {why}",
                            accepted("size_classes", cfg),
                            i + 1,
                            value_text(item)
                        );
                        cx.bad(kp, v, what);
                        return false;
                    }
                }
            }
            cfg.size_classes = SizeClassSpec::List(sizes);
            true
        }
        Value::Dict(_, table) => {
            const SUBKEYS: [&str; 3] = ["min", "max", "per_doubling"];
            let (mut min, mut max, mut per_doubling, mut ok) = (None, None, None, true);
            for (name, sub) in table {
                let mut sp = kp.to_vec();
                sp.push(name.clone());
                let parsed = match name.as_str() {
                    "min" => byte_size(sub).map(|s| min = Some(s)),
                    "max" => byte_size(sub).map(|s| max = Some(s)),
                    "per_doubling" => count(sub)
                        .ok()
                        .and_then(|n| u32::try_from(n).ok())
                        .map(|n| per_doubling = Some(n))
                        .ok_or_else(|| "an integer from 1 to 64".to_string()),
                    _ => {
                        cx.unknown(&sp, sub, "size_classes tables have", &SUBKEYS);
                        ok = false;
                        continue;
                    }
                };
                if let Err(why) = parsed {
                    let help = if name == "per_doubling" {
                        why
                    } else {
                        format!("{SIZE_HELP} ({why})")
                    };
                    cx.bad(&sp, sub, help);
                    ok = false;
                }
            }
            let missing: Vec<_> = [("min", min.is_none()), ("max", max.is_none())]
                .iter()
                .chain([("per_doubling", per_doubling.is_none())].iter())
                .filter(|(_, m)| *m)
                .map(|(k, _)| format!("`{k}`"))
                .collect();
            if !missing.is_empty() {
                if ok {
                    let what = format!(
                        "{}; missing {}",
                        accepted("size_classes", cfg),
                        missing.join(", ")
                    );
                    cx.bad(kp, v, what);
                }
                return false;
            }
            match (ok, min, max, per_doubling) {
                (true, Some(min), Some(max), Some(per_doubling)) => {
                    cfg.size_classes = SizeClassSpec::Geometric {
                        min,
                        max,
                        per_doubling,
                    };
                    true
                }
                _ => false,
            }
        }
        _ => {
            cx.bad(kp, v, accepted("size_classes", cfg));
            false
        }
    }
}

/// Checks ranges and cross-key rules of a merged config. `prefix` (e.g.
/// `pool`) qualifies keys whose values did not come from a builder call;
/// keys in `unparsed` had unusable values (already reported).
pub(crate) fn check(cfg: &PoolConfig, prefix: Option<&str>, unparsed: &[&str]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut bad = |key: &str, accepted: String| {
        let source = cfg.source(key).unwrap_or(Source::Default);
        let name = match (&source, prefix) {
            (Source::Builder, _) | (_, None) => key.to_string(),
            (_, Some(p)) => format!("{p}.{key}"),
        };
        problems.push(Problem::new(name, cfg.raw_text(key), source, accepted));
    };
    if let Shards::Count(n) = cfg.shards {
        if !(1..=MAX_SHARDS).contains(&n) {
            bad("shards", accepted("shards", cfg));
        }
    }
    let tls_ok = (1..=MAX_TLS_CACHE_SIZE).contains(&cfg.tls_cache_size);
    if !tls_ok {
        bad("tls_cache_size", accepted("tls_cache_size", cfg));
    }
    // Only a batch size the user set is checked against the cache size: an
    // unset one follows a smaller cache (`PoolConfig::follow_cache_size`).
    let batch_default = cfg.source("batch_size") == Some(Source::Default);
    let skip_batch = unparsed.contains(&"tls_cache_size") || batch_default;
    if !skip_batch && (cfg.batch_size == 0 || cfg.batch_size > cfg.tls_cache_size) {
        bad("batch_size", accepted("batch_size", cfg));
    }
    if let Numa::Nodes(nodes) = &cfg.numa {
        let mut seen = nodes.clone();
        seen.sort_unstable();
        seen.dedup();
        if nodes.is_empty() || seen.len() != nodes.len() || seen.iter().any(|&n| n > MAX_NUMA_NODE)
        {
            bad("numa", accepted("numa", cfg));
        }
    }
    if let Some(reason) = check_spec(&cfg.size_classes) {
        bad("size_classes", reason);
    }
    if cfg.max_total_memory.to_usize().is_none() {
        bad(
            "max_total_memory",
            format!("{SIZE_HELP}, at most {} on this machine", usize::MAX),
        );
    }
    if let Some(cap) = cfg.max_outstanding_memory {
        if cap.0 == 0 || cap.to_usize().is_none() {
            bad(
                "max_outstanding_memory",
                accepted("max_outstanding_memory", cfg),
            );
        }
    }
    problems
}

/// `Error::Invalid` with the problems in reading order.
pub(crate) fn invalid(mut problems: Vec<Problem>) -> Error {
    sort(&mut problems);
    Error::Invalid(problems)
}

/// Orders problems as a reader meets them: the file's by line, then the
/// environment's, then the rest (each group in the order found).
pub(crate) fn sort(problems: &mut [Problem]) {
    problems.sort_by_key(|p| match &p.source {
        Source::File { line, .. } => (0, line.unwrap_or(usize::MAX)),
        Source::Env { .. } => (1, 0),
        _ => (2, 0),
    });
}

/// What is wrong with a size-class spec, if anything (the text starts with
/// what is accepted).
fn check_spec(spec: &SizeClassSpec) -> Option<String> {
    if let SizeClassSpec::Geometric {
        min,
        max,
        per_doubling,
    } = spec
    {
        let accepted = format!(
            "{{ min, max, per_doubling }} with 1 B <= min <= max <= {}, per_doubling from 1 to 64, giving strictly ascending classes",
            ByteSize(MAX_CLASS_SIZE as u64)
        );
        if min.0 == 0 || max.0 > MAX_CLASS_SIZE as u64 {
            return Some(format!("{accepted}; a bound is out of range"));
        }
        if min > max {
            return Some(format!("{accepted}; min {min} is above max {max}"));
        }
        if !(1..=64).contains(per_doubling) {
            return Some(format!("{accepted}; per_doubling is {per_doubling}"));
        }
    }
    check_classes(&spec.sizes())
}

/// What is wrong with a class list, if anything.
pub(crate) fn check_classes(classes: &[usize]) -> Option<String> {
    let accepted = format!(
        "1 to {MAX_SIZE_CLASSES} sizes in bytes, strictly ascending, each from 1 to {MAX_CLASS_SIZE}"
    );
    if classes.is_empty() {
        return Some(format!("{accepted}; the list is empty"));
    }
    if classes.len() > MAX_SIZE_CLASSES {
        return Some(format!("{accepted}; got {} sizes", classes.len()));
    }
    if let Some(&s) = classes.iter().find(|&&s| s == 0 || s > MAX_CLASS_SIZE) {
        return Some(format!("{accepted}; {s} is out of range"));
    }
    if let Some(w) = classes.windows(2).find(|w| w[0] >= w[1]) {
        return Some(format!("{accepted}; {} is followed by {}", w[0], w[1]));
    }
    None
}

/// A `PoolConfig` from a deserialized table, checked like a file's.
pub(crate) fn deserialize_section(v: &Value) -> Result<PoolConfig, Error> {
    let locate = |_: &[String], _: &Value| Source::Code;
    let mut cx = Cx {
        problems: Vec::new(),
        locate: &locate,
    };
    let mut cfg = PoolConfig::default();
    let unparsed = match v {
        Value::Dict(_, table) => parse_section(&mut cx, &[], table, &mut cfg),
        _ => {
            cx.bad(&["pool".into()], v, "a table of pool settings");
            Vec::new()
        }
    };
    cx.problems.extend(check(&cfg, None, &unparsed));
    if cx.problems.is_empty() {
        Ok(cfg)
    } else {
        Err(invalid(cx.problems))
    }
}

/// A raw value in TOML syntax.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("\"{c}\""),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => match (n.to_u128_lossy(), n.to_i128(), n.to_f64()) {
            (Some(u), _, _) => u.to_string(),
            (_, Some(i), _) => i.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => "?".into(),
        },
        Value::Empty(..) => "(empty)".into(),
        Value::Array(_, items) => {
            let items: Vec<_> = items.iter().map(value_text).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Dict(_, table) => {
            let items: Vec<_> = table
                .iter()
                .map(|(k, v)| format!("{k} = {}", value_text(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert!(check(&PoolConfig::default(), None, &[]).is_empty());
    }
}
