//! The pool on synthetic NUMA topologies, with the CPU each thread runs on
//! injected: shards per node, home nodes, remote returns, placement policies.
//! (Binding itself is a no-op on a synthetic topology; placement is checked
//! through the pool's own records, per node.)
#![cfg(feature = "numa")]

use std::cell::Cell;
use std::sync::Arc;
use std::thread;
use zeropool::numa::Topology;
use zeropool::{BufferPool, Numa, PoolStats};

/// Two packages, one node each, two CPUs each: CPUs 0-1 on node 0, 2-3 on node 1.
const TWO_NODES: &str = "pack:2 numa:1 core:2 pu:1";

thread_local! {
    /// The CPU this test thread pretends to run on.
    static CPU: Cell<usize> = const { Cell::new(0) };
}

fn pool(numa: Numa, desc: &str) -> BufferPool {
    BufferPool::builder()
        .topology(Topology::synthetic(desc).expect("valid synthetic topology"))
        .cpu_lookup(Arc::new(|| CPU.with(Cell::get)))
        .numa(numa)
        .size_classes(&[4096])
        .tls_cache_size(4)
        .batch_size(2)
        .max_total_memory(64 << 20)
        .build()
        .expect("valid settings")
}

/// Runs `f` on a thread that runs on `cpu`, and waits for it (and its exit).
fn on_cpu<R: Send + 'static>(cpu: usize, f: impl FnOnce() -> R + Send + 'static) -> R {
    thread::spawn(move || {
        CPU.with(|c| c.set(cpu));
        f()
    })
    .join()
    .expect("test thread panicked")
}

fn node(s: &PoolStats, os: usize) -> &zeropool::NodeStats {
    s.nodes.iter().find(|n| n.node == os).expect("node exists")
}

#[test]
fn auto_is_local_on_two_nodes_and_shards_split_per_node() {
    let p = pool(Numa::Auto, TWO_NODES);
    let s = p.stats();
    assert_eq!(s.nodes.len(), 2);
    assert!(s.numa.starts_with("local"), "{}", s.numa);
    assert_eq!(p.shards(), 4, "2 CPUs per node: 2 shards per node");
}

#[test]
fn a_thread_allocates_and_keeps_memory_on_its_own_node() {
    let p = pool(Numa::Local, TWO_NODES);
    let q = p.clone();
    on_cpu(3, move || {
        let bufs: Vec<_> = (0..6).map(|_| q.get(4096)).collect();
        drop(bufs);
    });
    let s = p.stats();
    assert_eq!(node(&s, 1).allocations, 6);
    assert_eq!(node(&s, 0).allocations, 0);
    // The exited thread's objects went to node 1's shards.
    assert_eq!(node(&s, 1).bytes_retained, 6 * 4096);
    assert_eq!(node(&s, 0).bytes_retained, 0);
    // A node-1 thread reuses them without allocating.
    let q = p.clone();
    on_cpu(2, move || drop(q.get(4096)));
    assert_eq!(p.stats().allocations, 6);
    // A node-0 thread finds nothing on its node: it steals from node 1 one
    // object at a time (no run of node-1 objects enters its cache) and,
    // when it frees them, they travel back to node 1.
    let q = p.clone();
    on_cpu(0, move || {
        drop((0..3).map(|_| q.get(4096)).collect::<Vec<_>>())
    });
    let s = p.stats();
    assert_eq!(s.allocations, 6, "{s:?}");
    assert_eq!(node(&s, 1).remote_returns, 3, "{s:?}");
    assert_eq!(node(&s, 1).bytes_retained, 6 * 4096, "{s:?}");
    assert_eq!(node(&s, 0).bytes_retained, 0, "{s:?}");
}

#[test]
fn an_object_freed_on_another_node_goes_back_to_its_home_node() {
    let p = pool(Numa::Local, TWO_NODES);
    let q = p.clone();
    // Node 1 allocates four buffers and hands them over.
    let bufs = on_cpu(2, move || {
        (0..4).map(|_| q.get_owned(4096)).collect::<Vec<_>>()
    });
    assert_eq!(node(&p.stats(), 1).allocations, 4);
    // A node-0 thread frees them: they travel home in batches of 2.
    on_cpu(1, move || drop(bufs));
    let s = p.stats();
    assert_eq!(node(&s, 1).remote_returns, 4, "{s:?}");
    assert_eq!(node(&s, 1).bytes_retained, 4 * 4096);
    assert_eq!(node(&s, 0).bytes_retained, 0);
    assert!(s.is_balanced(), "{s:?}");
}

#[test]
fn interleave_spreads_fresh_memory_over_the_nodes() {
    let p = pool(Numa::Interleave, TWO_NODES);
    let held: Vec<_> = (0..10).map(|_| p.get(4096)).collect();
    let s = p.stats();
    assert_eq!(node(&s, 0).allocations + node(&s, 1).allocations, 10);
    assert_eq!(node(&s, 0).allocations, 5, "{s:?}");
    drop(held);
}

#[test]
fn a_node_list_places_memory_on_those_nodes_only() {
    let p = pool(Numa::Nodes(vec![1]), TWO_NODES);
    let q = p.clone();
    on_cpu(0, move || {
        drop((0..4).map(|_| q.get(4096)).collect::<Vec<_>>())
    });
    let s = p.stats();
    assert_eq!(node(&s, 1).allocations, 4, "{s:?}");
    assert_eq!(node(&s, 0).allocations, 0);
}

#[test]
fn four_nodes_each_get_their_own_shards() {
    let p = pool(Numa::Local, "numa:4 core:2 pu:1");
    assert_eq!(p.stats().nodes.len(), 4);
    assert_eq!(p.shards(), 8);
    // One buffer per node, all held at once (nothing idle to steal).
    let held: Vec<_> = [0, 2, 4, 6]
        .into_iter()
        .map(|cpu| {
            let q = p.clone();
            on_cpu(cpu, move || q.get_owned(4096))
        })
        .collect();
    let s = p.stats();
    assert!(s.nodes.iter().all(|n| n.allocations == 1), "{s:?}");
    // Freed by one node-0 thread: each goes home when it exits.
    on_cpu(1, move || drop(held));
    let s = p.stats();
    assert!(s.nodes.iter().all(|n| n.bytes_retained == 4096), "{s:?}");
    assert_eq!(
        s.nodes.iter().map(|n| n.remote_returns).sum::<usize>(),
        3,
        "{s:?}"
    );
}

#[test]
fn a_list_naming_a_missing_node_is_an_error_on_numa() {
    let err = BufferPool::builder()
        .topology(Topology::synthetic(TWO_NODES).unwrap())
        .numa(Numa::Nodes(vec![5]))
        .build()
        .unwrap_err();
    assert_eq!(err.problems()[0].key, "numa", "{err}");
}

#[test]
fn the_real_machine_runs_as_its_own_nodes() {
    let p = BufferPool::new();
    drop(p.get(1 << 20));
    let s = p.stats();
    assert!(!s.nodes.is_empty());
    if s.nodes.len() == 1 {
        // One node: NUMA stays off and nothing is placed or bound.
        assert!(s.numa.starts_with("off"), "{}", s.numa);
        assert_eq!(s.nodes[0].allocations, 0);
    }
    assert_eq!(s.bind_failures, 0, "{:?}", s.numa_error);
}

#[test]
fn pinned_memory_is_locked_or_the_failure_reported() {
    let p = BufferPool::builder().pinned(true).build().unwrap();
    drop(p.get(64 << 10));
    let s = p.stats();
    assert!(
        s.pin_failures == 0
            || s.numa_error
                .as_deref()
                .is_some_and(|e| e.contains("RLIMIT_MEMLOCK") || e.contains("memlock")),
        "{s:?}"
    );
}
