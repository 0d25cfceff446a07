//! `zeropool topology`: this machine's nodes, CPUs, memory and shard map,
//! and `--synthetic "..."` for a described machine.

mod support;

use zeropool::numa::Topology;

/// Runs the binary with no `HWLOC_*` variables but `vars`.
fn zeropool(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    support::run_zeropool(args, None, &["HWLOC_"], vars)
}

#[test]
fn this_machine() {
    let (code, out, err) = zeropool(&["topology"], &[]);
    assert_eq!(code, 0, "{err}");
    let t = Topology::detect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        out.contains(&format!("CPUs: {cpus} (available to this process)\n")),
        "{out}"
    );
    if cfg!(feature = "numa") {
        assert!(out.contains("NUMA support: built (hwloc)"), "{out}");
        assert!(out.contains(&format!("NUMA: {t}\n")), "{out}");
    } else {
        assert!(
            out.contains("NUMA: 1 NUMA node (NUMA support not built)\n"),
            "{out}"
        );
        assert!(
            out.contains("NUMA support: not built (zeropool's `numa` feature is off); the pool runs as one node\n"),
            "{out}"
        );
    }
    for node in t.nodes() {
        assert!(
            out.contains(&format!(
                "  node {} (os {}): CPUs ",
                node.index, node.os_index
            )),
            "{out}"
        );
    }
    if t.nodes().len() == 1 {
        assert!(out.contains("numa = \"auto\" -> off (one node)\n"), "{out}");
        let shards = zeropool::auto_shards();
        assert!(
            out.contains(&format!("shards = \"auto\" -> {shards} shards")),
            "{out}"
        );
        assert!(out.contains("  thread  0 -> shard 0\n"), "{out}");
    }
}

#[cfg(feature = "numa")]
#[test]
fn a_synthetic_machine_of_two_packages() {
    let (code, out, err) = zeropool(
        &["topology", "--synthetic", "pack:2 numa:1 core:2 pu:1"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        r#"CPUs: 4 (synthetic topology)
NUMA: 2 NUMA nodes, 4 CPUs (synthetic "pack:2 numa:1 core:2 pu:1")
NUMA support: built (hwloc); memory binding: none on a synthetic topology (placement is recorded, not bound)
nodes:
  node 0 (os 0): CPUs 0-1 (2), memory 1 GiB
  node 1 (os 1): CPUs 2-3 (2), memory 1 GiB
numa = "auto" -> local: fresh memory on the requesting thread's node (nodes 0, 1)
shards = "auto" -> 4 shards in 2 groups (per node: its CPUs rounded up to a power of two, at most 64)
shard map (thread i on node n -> shard first(n) + i mod size(n)):
  node 0 (os 0): shards 0-1   <- CPUs 0-1
  node 1 (os 1): shards 2-3   <- CPUs 2-3
"#
    );
}

#[cfg(feature = "numa")]
#[test]
fn four_nodes_and_the_equals_form() {
    let (code, out, err) = zeropool(&["topology", "--synthetic=numa:4 core:3 pu:1"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("NUMA: 4 NUMA nodes, 12 CPUs"), "{out}");
    assert!(
        out.contains("  node 3 (os 3): CPUs 9-11 (3), memory 1 GiB\n"),
        "{out}"
    );
    assert!(out.contains("(nodes 0, 1, 2, 3)"), "{out}");
    assert!(
        out.contains("shards = \"auto\" -> 16 shards in 4 groups"),
        "{out}"
    );
    assert!(
        out.contains("  node 2 (os 2): shards 8-11  <- CPUs 6-8\n"),
        "{out}"
    );
}

#[cfg(feature = "numa")]
#[test]
fn hwloc_synthetic_in_the_environment_is_not_this_machine() {
    let (code, out, err) = zeropool(&["topology"], &[("HWLOC_SYNTHETIC", "numa:2 core:1 pu:1")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CPUs: 2 (synthetic topology)"), "{out}");
    assert!(
        out.contains("not this machine: HWLOC_SYNTHETIC or HWLOC_XMLFILE is set"),
        "{out}"
    );
    assert!(
        out.contains("memory binding: none on a synthetic topology"),
        "{out}"
    );
    assert!(
        out.contains("  node 1 (os 1): shard 1      <- CPUs 1\n"),
        "{out}"
    );
}

#[test]
fn a_bad_or_unsupported_description_fails_with_a_reason() {
    let (code, out, err) = zeropool(&["topology", "--synthetic", "pack:two"], &[]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    if cfg!(feature = "numa") {
        assert!(
            err.starts_with("error: --synthetic \"pack:two\": an hwloc synthetic topology such as \"pack:2 numa:1 core:2 pu:1\""),
            "{err}"
        );
    } else {
        assert_eq!(
            err,
            "error: --synthetic \"pack:two\": synthetic topologies need zeropool built with the `numa` feature\n"
        );
    }
}

#[test]
fn usage() {
    let (code, out, _) = zeropool(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("zeropool topology --synthetic DESC"), "{out}");
    let (code, _, err) = zeropool(&["topology", "--synthetic"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unexpected arguments: topology --synthetic"),
        "{err}"
    );
}
