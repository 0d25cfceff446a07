//! `publish_metrics`: every counter and gauge of `PoolStats`, its classes
//! and nodes, through the `metrics` facade, read back from a recorder.
#![cfg(feature = "metrics")]

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use serde_json::Value;
use std::collections::HashMap;
use zeropool::{BufferPool, PoolStats};

/// One recorded metric: its name and labels, sorted.
type Key = (String, Vec<(String, String)>);

/// What the recorder saw: kind and value of each (name, labels).
#[derive(Debug)]
struct Seen(HashMap<Key, (MetricKind, f64)>);

impl Seen {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<(MetricKind, f64)> {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        self.0.get(&(name.to_owned(), labels)).copied()
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.get(name, labels) {
            Some((MetricKind::Counter, v)) => v,
            other => panic!("{name} {labels:?}: not a counter: {other:?}\n{self:#?}"),
        }
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.get(name, labels) {
            Some((MetricKind::Gauge, v)) => v,
            other => panic!("{name} {labels:?}: not a gauge: {other:?}\n{self:#?}"),
        }
    }
}

/// Publishes `stats` as pool `name` into a fresh recorder, and reads it back.
fn publish(stats: &PoolStats, name: &str) -> Seen {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || stats.publish_metrics(name));
    let mut seen = HashMap::new();
    for (key, _unit, _help, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        labels.sort();
        let value = match value {
            DebugValue::Counter(v) => v as f64,
            DebugValue::Gauge(v) => v.0,
            DebugValue::Histogram(_) => panic!("no histograms are published"),
        };
        seen.insert((key.name().to_owned(), labels), (kind, value));
    }
    Seen(seen)
}

fn busy_pool() -> (BufferPool, PoolStats) {
    let pool = BufferPool::builder()
        .shards(1)
        .size_classes(&[4096, 65536])
        .max_total_memory(1 << 20)
        .build()
        .expect("valid settings");
    drop(pool.get(4000));
    drop(pool.get(4000));
    drop(pool.get(60_000));
    drop(pool.get(1 << 20)); // oversize
    let held = pool.get(4096);
    let stats = pool.stats();
    drop(held);
    (pool, stats)
}

#[test]
fn totals_go_out_as_counters_and_gauges_labelled_by_pool() {
    let (_pool, s) = busy_pool();
    let seen = publish(&s, "uploads");
    let pool = [("pool", "uploads")];
    assert_eq!(seen.counter("zeropool_gets_total", &pool), 5.0);
    assert_eq!(
        seen.counter("zeropool_allocations_total", &pool),
        s.allocations as f64
    );
    assert_eq!(
        seen.counter("zeropool_tls_hits_total", &pool),
        s.tls_hits as f64
    );
    assert_eq!(seen.counter("zeropool_oversize_requests_total", &pool), 1.0);
    assert_eq!(
        seen.gauge("zeropool_bytes_retained", &pool),
        s.bytes_retained as f64
    );
    assert_eq!(seen.gauge("zeropool_bytes_outstanding", &pool), 4096.0);
    assert_eq!(seen.gauge("zeropool_objects_outstanding", &pool), 1.0);
    assert_eq!(
        seen.gauge("zeropool_bytes_retained_peak", &pool),
        s.bytes_retained_peak as f64
    );
    assert_eq!(
        seen.gauge("zeropool_bytes_outstanding_peak", &pool),
        s.bytes_outstanding_peak as f64
    );
    assert_eq!(
        seen.gauge("zeropool_max_total_memory", &pool),
        (1 << 20) as f64
    );
    assert_eq!(
        seen.gauge("zeropool_max_outstanding_memory", &pool),
        0.0,
        "no cap"
    );
    assert_eq!(seen.gauge("zeropool_wait_time_total_seconds", &pool), 0.0);
}

#[test]
fn each_class_and_node_has_its_own_series() {
    let (_pool, s) = busy_pool();
    let seen = publish(&s, "uploads");
    let small = [("pool", "uploads"), ("class", "4096")];
    assert_eq!(seen.counter("zeropool_class_gets_total", &small), 3.0);
    assert_eq!(seen.counter("zeropool_class_tls_hits_total", &small), 2.0);
    assert_eq!(
        seen.counter("zeropool_class_allocations_total", &small),
        1.0
    );
    assert_eq!(seen.gauge("zeropool_class_shard_objects", &small), 0.0);
    let big = [("pool", "uploads"), ("class", "65536")];
    assert_eq!(seen.counter("zeropool_class_gets_total", &big), 1.0);

    assert!(!s.nodes.is_empty());
    for n in &s.nodes {
        let node = n.node.to_string();
        let labels = [("pool", "uploads"), ("node", node.as_str())];
        assert_eq!(
            seen.gauge("zeropool_node_bytes_retained", &labels),
            n.bytes_retained as f64
        );
        assert_eq!(
            seen.counter("zeropool_node_local_hits_total", &labels),
            n.local_hits as f64
        );
    }
}

/// Every numeric field of the serialized stats (and of each class and node)
/// is published under `zeropool_[class_|node_]<field>` (gauges), with
/// `_total` (counters) or `_seconds` (durations), with the same value.
#[test]
fn every_numeric_field_is_published() {
    let (_pool, s) = busy_pool();
    let seen = publish(&s, "all");
    let v = serde_json::to_value(&s).expect("serializable");

    let check = |prefix: &str, obj: &Value, labels: &[(&str, &str)], skip: &[&str]| {
        let mut n = 0;
        for (field, value) in obj.as_object().expect("an object") {
            if skip.contains(&field.as_str()) {
                continue;
            }
            let value = match value {
                Value::Number(x) => x.as_f64().expect("a number"),
                Value::Null if field == "max_outstanding_memory" => 0.0,
                _ => continue, // text, arrays
            };
            let names = [
                format!("zeropool_{prefix}{field}_total"),
                format!("zeropool_{prefix}{field}"),
                format!("zeropool_{prefix}{field}_seconds"),
            ];
            let found: Vec<_> = names.iter().filter_map(|m| seen.get(m, labels)).collect();
            assert_eq!(found.len(), 1, "`{field}` as one of {names:?} {labels:?}");
            assert_eq!(found[0].1, value, "`{field}`");
            n += 1;
        }
        n
    };
    let pool_fields = check("", &v, &[("pool", "all")], &[]);
    assert!(pool_fields >= 35, "{pool_fields} fields");
    for class in v["classes"].as_array().expect("classes") {
        let size = class["size"].to_string();
        check(
            "class_",
            class,
            &[("pool", "all"), ("class", &size)],
            &["size"],
        );
    }
    for node in v["nodes"].as_array().expect("nodes") {
        let os = node["node"].to_string();
        check("node_", node, &[("pool", "all"), ("node", &os)], &["node"]);
    }
}

#[test]
fn two_pools_publish_apart() {
    let (_a, sa) = busy_pool();
    let b = BufferPool::new();
    drop(b.get(100));
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        sa.publish_metrics("a");
        b.publish_metrics("b");
    });
    let gets: HashMap<String, u64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(k, ..)| k.key().name() == "zeropool_gets_total")
        .map(|(k, _, _, v)| {
            let pool = k
                .key()
                .labels()
                .next()
                .expect("pool label")
                .value()
                .to_owned();
            match v {
                DebugValue::Counter(n) => (pool, n),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(gets, HashMap::from([("a".into(), 5), ("b".into(), 1)]));
}

#[test]
fn metrics_are_described_with_units() {
    let (_pool, s) = busy_pool();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || s.publish_metrics("described"));
    for (key, unit, help, _) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_owned();
        assert!(
            help.is_some_and(|h| !h.is_empty()),
            "{name} has no help text"
        );
        let unit = unit.unwrap_or_else(|| panic!("{name} has no unit"));
        if name.contains("bytes") || name.contains("memory") {
            assert_eq!(unit, metrics::Unit::Bytes, "{name}");
        }
        if name.ends_with("_seconds") {
            assert_eq!(unit, metrics::Unit::Seconds, "{name}");
        }
    }
}
