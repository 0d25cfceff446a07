//! `PoolStats`' table (`Display`) and its `Serialize` form: what they show,
//! not their exact layout.

use serde_json::Value;
use zeropool::{BufferPool, OnExhausted, PoolStats};

fn pool() -> BufferPool {
    BufferPool::builder()
        .shards(1)
        .size_classes(&[4096, 65536, 1 << 20])
        .max_total_memory(64 << 20)
        .build()
        .expect("valid settings")
}

/// Two gets of 4 KiB (one allocation, one hit) and one of 64 KiB.
fn workload(pool: &BufferPool) -> PoolStats {
    drop(pool.get(4000));
    drop(pool.get(4000));
    drop(pool.get(65536));
    pool.stats()
}

/// The row of the class table that starts with `size`.
fn class_row(table: &str, size: usize) -> Option<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(&size.to_string()))
}

/// The totals row whose label is `label`.
fn row<'a>(table: &'a str, label: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` row in\n{table}"))
}

#[test]
fn the_table_shows_totals_memory_and_active_classes() {
    let p = pool();
    let s = workload(&p);
    let table = s.to_string();

    let gets = row(&table, "gets");
    assert!(gets.contains(" 3 "), "{gets}");
    assert!(gets.contains("hit rate 33.3%"), "{gets}");
    assert!(gets.contains("alloc 2"), "{gets}");
    assert!(row(&table, "freed").contains("budget 0"), "{table}");

    let retained = row(&table, "retained");
    assert!(
        retained.contains("68 KiB"),
        "4 KiB + 64 KiB idle: {retained}"
    );
    assert!(retained.contains("in 2 objects"), "{retained}");
    assert!(retained.contains("budget 64 MiB"), "{retained}");
    assert!(retained.contains("peak "), "{retained}");
    assert!(row(&table, "outstanding").contains("peak "), "{table}");

    // Header, then only the classes that saw a get.
    assert!(table.contains("idle in shards"), "{table}");
    let small = class_row(&table, 4096).expect("the 4 KiB class is listed");
    assert_eq!(
        small[1..5],
        ["2", "1", "0", "1"],
        "gets, tls, shared, alloc: {table}"
    );
    let mid = class_row(&table, 65536).expect("the 64 KiB class is listed");
    assert_eq!(mid[1..5], ["1", "0", "0", "1"], "{table}");
    assert!(
        class_row(&table, 1 << 20).is_none(),
        "idle class listed:\n{table}"
    );
    assert!(
        table.contains("1 of 3 classes without activity not shown"),
        "{table}"
    );

    // No cap, one node: neither section.
    assert!(!table.lines().any(|l| l.starts_with("cap")), "{table}");
    assert!(!table.contains("remote returns"), "{table}");
}

#[test]
fn the_table_fits_in_100_columns() {
    let p = BufferPool::builder()
        .max_outstanding_memory(1 << 30)
        .build()
        .expect("valid settings");
    let sizes: Vec<usize> = p.size_classes().to_vec();
    for _ in 0..3 {
        drop(p.get_batch(&sizes));
    }
    let table = p.stats().to_string();
    for line in table.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.len()
        );
    }
}

#[test]
fn a_cap_adds_its_rows() {
    let p = BufferPool::builder()
        .size_classes(&[4096])
        .max_outstanding_memory(1 << 20)
        .on_exhausted(OnExhausted::Error)
        .build()
        .expect("valid settings");
    let held = p.get(4096);
    let s = p.stats();
    let table = s.to_string();
    let cap = row(&table, "cap");
    assert!(cap.contains("1 MiB"), "{cap}");
    assert!(cap.contains("charged 4 KiB"), "{cap}");
    assert!(row(&table, "waits").contains("timeouts 0"), "{table}");
    assert!(row(&table, "outstanding").contains("4 KiB"), "{table}");
    drop(held);
}

#[test]
fn an_idle_pool_shows_no_class_table() {
    let table = pool().stats().to_string();
    assert!(row(&table, "gets").contains("hit rate -"), "{table}");
    assert!(!table.contains("idle in shards"), "{table}");
    assert!(table.contains("3 of 3 classes without activity"), "{table}");
}

#[test]
fn serialize_writes_every_field_by_name() {
    let p = pool();
    let s = workload(&p);
    let v = serde_json::to_value(&s).expect("serializable");
    let obj = v.as_object().expect("an object");

    for key in [
        "gets",
        "puts",
        "tls_hits",
        "shared_hits",
        "allocations",
        "freed",
        "bytes_retained",
        "bytes_outstanding",
        "bytes_retained_peak",
        "bytes_outstanding_peak",
        "max_total_memory",
        "max_outstanding_memory",
        "wait_time_total",
        "wait_time_max",
        "classes",
        "nodes",
        "numa",
        "numa_error",
        "last_reload_error",
    ] {
        assert!(obj.contains_key(key), "missing `{key}` in {v:#}");
    }
    assert_eq!(v["gets"], 3);
    assert_eq!(v["allocations"], 2);
    assert_eq!(v["bytes_retained"], s.bytes_retained);
    assert!(v["bytes_retained_peak"].as_u64().unwrap() >= 68 << 10);
    assert_eq!(v["max_outstanding_memory"], Value::Null);
    assert_eq!(v["numa_error"], Value::Null);
    // Durations are seconds in an f64.
    assert_eq!(v["wait_time_total"], Value::from(0.0));
    assert!(v["wait_time_max"].is_f64(), "{}", v["wait_time_max"]);

    let classes = v["classes"].as_array().expect("an array");
    assert_eq!(classes.len(), 3);
    assert_eq!(
        classes[0],
        serde_json::json!({
            "size": 4096, "gets": 2, "tls_hits": 1, "shared_hits": 0,
            "allocations": 1, "shard_objects": 0,
        })
    );
    let nodes = v["nodes"].as_array().expect("an array");
    assert_eq!(nodes.len(), s.nodes.len());
    for key in [
        "node",
        "local_hits",
        "remote_returns",
        "allocations",
        "bytes_retained",
    ] {
        assert!(nodes[0].get(key).is_some(), "missing node `{key}` in {v:#}");
    }
}

#[test]
fn serialized_waits_are_seconds() {
    let p = BufferPool::builder()
        .size_classes(&[4096])
        .max_outstanding_memory(4096)
        .on_exhausted(OnExhausted::Wait)
        .build()
        .expect("valid settings");
    let held = p.get(4096);
    let waiter = std::thread::spawn({
        let p = p.clone();
        move || drop(p.get(4096))
    });
    while p.stats().waiting == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    drop(held);
    waiter.join().expect("waiter done");
    let s = p.stats();
    let v = serde_json::to_value(&s).expect("serializable");
    assert_eq!(v["waits"], 1);
    assert_eq!(v["max_outstanding_memory"], 4096);
    let total = v["wait_time_total"].as_f64().expect("seconds");
    assert!((0.015..60.0).contains(&total), "{total}");
    assert_eq!(total, s.wait_time_total.as_secs_f64());
}

#[cfg(feature = "numa")]
#[test]
fn more_than_one_node_adds_the_node_table() {
    use zeropool::numa::Topology;

    let p = BufferPool::builder()
        .topology(Topology::synthetic("pack:2 numa:1 core:2 pu:1").expect("valid topology"))
        .size_classes(&[4096])
        .build()
        .expect("valid settings");
    drop(p.get(4096));
    let s = p.stats();
    assert_eq!(s.nodes.len(), 2);
    let table = s.to_string();
    assert!(table.contains("remote returns"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("numa")), "{table}");
    let node_rows = table
        .lines()
        .skip_while(|l| !l.contains("remote returns"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(node_rows, 2, "{table}");
    let v = serde_json::to_value(&s).expect("serializable");
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(2));
}
