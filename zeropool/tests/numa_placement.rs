//! The `numa` policies, shard groups and the thread's node, on synthetic
//! topologies (this machine has one node): 2 packages x 1 node x 2 cores,
//! and 4 nodes. Binding is a no-op on a synthetic topology, so placement is
//! checked through the decisions the pool records: each fresh object's home
//! node.

use std::collections::BTreeMap;
use zeropool::numa::{
    shard_groups, NodeLocator, Placement, PlacementMode, ShardGroup, ShardMap, Topology,
};
use zeropool::{Error, Numa, Shards};

/// The home nodes of `allocations` fresh objects made by one thread on
/// each of `thread_nodes` in turn, each counting its own allocations,
/// tallied per node: what the pool's per-node records show.
fn records(p: &Placement, thread_nodes: &[usize], allocations: usize) -> BTreeMap<usize, usize> {
    let mut homes = BTreeMap::new();
    let mut counters = vec![0; thread_nodes.len()];
    for i in 0..allocations {
        let thread = i % thread_nodes.len();
        let home = p.node_for_fresh(thread_nodes[thread], counters[thread]);
        counters[thread] += 1;
        *homes.entry(home).or_default() += 1;
    }
    homes
}

#[test]
fn one_node_auto_is_off_and_local_still_resolves() {
    let t = Topology::single();
    let auto = Placement::resolve(&Numa::Auto, &t).unwrap();
    assert_eq!((auto.mode(), auto.nodes()), (PlacementMode::Off, &[0][..]));
    assert_eq!(auto, Placement::off());
    let local = Placement::resolve(&Numa::Local, &t).unwrap();
    assert_eq!(
        (local.mode(), local.nodes()),
        (PlacementMode::Local, &[0][..])
    );
    assert_eq!(records(&local, &[0], 10), BTreeMap::from([(0, 10)]));
    // One node: one group, as many shards as without NUMA.
    assert_eq!(
        shard_groups(&t, &auto, Shards::Auto),
        [ShardGroup {
            node: 0,
            first: 0,
            len: zeropool::auto_shards()
        }]
    );
}

#[test]
fn the_detected_machine_resolves_every_policy() {
    let t = Topology::detect();
    for numa in [
        Numa::Auto,
        Numa::Off,
        Numa::Local,
        Numa::Interleave,
        Numa::Nodes(vec![0]),
    ] {
        let p = Placement::resolve(&numa, &t).unwrap();
        let map = ShardMap::new(&t, &p, Shards::Auto);
        assert!(map.groups().iter().all(|g| g.len.is_power_of_two()));
        let node = NodeLocator::new(t.clone()).current_node();
        assert!(map.home_shard(node, 7) < map.len());
    }
    if t.nodes().len() == 1 {
        assert_eq!(
            Placement::resolve(&Numa::Auto, &t).unwrap().mode(),
            PlacementMode::Off
        );
    }
}

#[test]
fn a_list_naming_a_missing_node_is_an_error_naming_the_key_and_the_nodes() {
    let err = Placement::resolve(&Numa::Nodes(vec![0, 5]), &Topology::single()).unwrap_err();
    let Error::Invalid(problems) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(problems[0].key, "numa");
    assert_eq!(problems[0].value, "[0, 5]");
    assert_eq!(
        err.to_string(),
        "invalid pool configuration:\n  - `numa` = [0, 5] (set in code): node 5 does not \
         exist: this machine's NUMA nodes are 0 (see `zeropool topology`); or \"auto\", \
         \"off\", \"local\", \"interleave\""
    );
}

#[cfg(feature = "numa")]
mod synthetic {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn two() -> Topology {
        Topology::synthetic("pack:2 numa:1 core:2 pu:1").unwrap()
    }

    fn four() -> Topology {
        Topology::synthetic("numa:4 core:2 pu:1").unwrap()
    }

    fn group(node: usize, first: usize, len: usize) -> ShardGroup {
        ShardGroup { node, first, len }
    }

    #[test]
    fn auto_picks_local_with_two_or_more_nodes() {
        let p = Placement::resolve(&Numa::Auto, &two()).unwrap();
        assert_eq!((p.mode(), p.nodes()), (PlacementMode::Local, &[0, 1][..]));
        let p = Placement::resolve(&Numa::Auto, &four()).unwrap();
        assert_eq!(
            (p.mode(), p.nodes()),
            (PlacementMode::Local, &[0, 1, 2, 3][..])
        );
        let one = Topology::synthetic("numa:1 core:4 pu:1").unwrap();
        assert_eq!(
            Placement::resolve(&Numa::Auto, &one).unwrap().mode(),
            PlacementMode::Off
        );
    }

    #[test]
    fn off_homes_everything_on_one_node_in_one_group() {
        let t = four();
        let p = Placement::resolve(&Numa::Off, &t).unwrap();
        assert_eq!(records(&p, &[0, 1, 2, 3], 100), BTreeMap::from([(0, 100)]));
        // One group sized from all 8 CPUs.
        assert_eq!(shard_groups(&t, &p, Shards::Auto), [group(0, 0, 8)]);
        assert_eq!(shard_groups(&t, &p, Shards::Count(6)), [group(0, 0, 8)]);
    }

    #[test]
    fn local_homes_fresh_memory_on_the_requesting_threads_node() {
        let p = Placement::resolve(&Numa::Local, &four()).unwrap();
        assert_eq!(
            records(&p, &[0, 1, 2, 3], 100),
            BTreeMap::from([(0, 25), (1, 25), (2, 25), (3, 25)])
        );
        assert_eq!(records(&p, &[2], 50), BTreeMap::from([(2, 50)]));
        // A node the topology lacks falls back to the first in use.
        assert_eq!(p.node_for_fresh(9, 3), 0);
    }

    #[test]
    fn interleave_spreads_fresh_memory_over_every_node() {
        let p = Placement::resolve(&Numa::Interleave, &four()).unwrap();
        assert_eq!(
            (p.mode(), p.nodes()),
            (PlacementMode::Interleave, &[0, 1, 2, 3][..])
        );
        // Even threads all on node 1 spread their objects over all 4 nodes.
        assert_eq!(
            records(&p, &[1], 100),
            BTreeMap::from([(0, 25), (1, 25), (2, 25), (3, 25)])
        );
        // Shards are still grouped per node.
        assert_eq!(
            shard_groups(&four(), &p, Shards::Auto),
            [
                group(0, 0, 2),
                group(1, 2, 2),
                group(2, 4, 2),
                group(3, 6, 2)
            ]
        );
    }

    #[test]
    fn a_node_list_places_memory_on_those_nodes_only() {
        let t = four();
        let p = Placement::resolve(&Numa::Nodes(vec![3, 1]), &t).unwrap();
        assert_eq!((p.mode(), p.nodes()), (PlacementMode::Nodes, &[1, 3][..]));
        assert!(p.uses(1) && p.uses(3) && !p.uses(0) && !p.uses(2));
        let homes = records(&p, &[0, 1, 2, 3], 400);
        assert_eq!(homes.keys().copied().collect::<Vec<_>>(), [1, 3]);
        // Threads on listed nodes stay local (100 each); the 200 from
        // nodes 0 and 2 alternate between the listed ones.
        assert_eq!(homes, BTreeMap::from([(1, 200), (3, 200)]));
        assert_eq!(
            shard_groups(&t, &p, Shards::Auto),
            [group(1, 0, 2), group(3, 2, 2)]
        );
    }

    #[test]
    fn memory_side_nodes_are_used_only_when_listed() {
        // Each package: a node with its cores, then a memory-only node (HBM,
        // CXL) that hwloc lists with the same CPUs.
        let t = Topology::synthetic("pack:2 [numa] [numa(memory=4GB)] core:2 pu:1").unwrap();
        assert_eq!(t.nodes().len(), 4);
        assert_eq!(t.nodes()[1].cpus, [0, 1]);
        assert_eq!(t.cpu_nodes(), [0, 2]);
        let of: Vec<usize> = (0..4).map(|c| t.node_of_cpu(c)).collect();
        assert_eq!(of, [0, 0, 2, 2]);
        for numa in [Numa::Auto, Numa::Local, Numa::Interleave] {
            let p = Placement::resolve(&numa, &t).unwrap();
            assert_eq!(p.nodes(), [0, 2], "{numa}");
            assert_eq!(
                shard_groups(&t, &p, Shards::Auto),
                [group(0, 0, 2), group(2, 2, 2)]
            );
        }
        // Listed, the memory nodes get the pool's memory, each from the
        // threads of its own package, which also use its shard group.
        let p = Placement::resolve(&Numa::Nodes(vec![1, 3]), &t).unwrap();
        assert_eq!(
            (p.nearby(0), p.nearby(2), p.nearby(1)),
            (Some(1), Some(3), None)
        );
        assert_eq!(records(&p, &[0], 10), BTreeMap::from([(1, 10)]));
        assert_eq!(records(&p, &[2], 10), BTreeMap::from([(3, 10)]));
        let map = ShardMap::new(&t, &p, Shards::Auto);
        assert_eq!(map.groups(), [group(1, 0, 2), group(3, 2, 2)]);
        assert_eq!(map.group_for_node(0).node, 1);
        assert_eq!(map.group_for_node(2).node, 3);
        // Listing only one of them: the other package's threads have no
        // nearby node and go round robin.
        let p = Placement::resolve(&Numa::Nodes(vec![3]), &t).unwrap();
        assert_eq!(p.nearby(0), None);
        assert_eq!(records(&p, &[0, 2], 10), BTreeMap::from([(3, 10)]));
    }

    #[test]
    fn a_list_is_checked_against_the_topology() {
        let err = Placement::resolve(&Numa::Nodes(vec![1, 4, 7]), &four()).unwrap_err();
        assert_eq!(err.problems()[0].key, "numa");
        assert!(
            err.problems()[0]
                .accepted
                .starts_with("nodes [4, 7] do not exist: this machine's NUMA nodes are 0, 1, 2, 3"),
            "{err}"
        );
        assert!(Placement::resolve(&Numa::Nodes(vec![1]), &two()).is_ok());
        assert!(Placement::resolve(&Numa::Nodes(vec![2]), &two()).is_err());
    }

    #[test]
    fn auto_shards_are_sized_per_node_from_its_cpus() {
        let t = two();
        let p = Placement::resolve(&Numa::Auto, &t).unwrap();
        assert_eq!(
            shard_groups(&t, &p, Shards::Auto),
            [group(0, 0, 2), group(1, 2, 2)]
        );
        // 3 cores per node: rounded up to 4.
        let t = Topology::synthetic("pack:2 numa:1 core:3 pu:1").unwrap();
        let p = Placement::resolve(&Numa::Auto, &t).unwrap();
        assert_eq!(
            shard_groups(&t, &p, Shards::Auto),
            [group(0, 0, 4), group(1, 4, 4)]
        );
        // 2 x 100 hardware threads per node: capped at 64 each.
        let t = Topology::synthetic("numa:2 core:100 pu:2").unwrap();
        let p = Placement::resolve(&Numa::Auto, &t).unwrap();
        assert_eq!(
            shard_groups(&t, &p, Shards::Auto),
            [group(0, 0, 64), group(1, 64, 64)]
        );
    }

    #[test]
    fn an_explicit_count_is_split_over_the_nodes() {
        let (t2, t4) = (two(), four());
        let local = |t: &Topology| Placement::resolve(&Numa::Local, t).unwrap();
        let lens = |t: &Topology, n| {
            shard_groups(t, &local(t), Shards::Count(n))
                .iter()
                .map(|g| g.len)
                .collect::<Vec<_>>()
        };
        assert_eq!(lens(&t2, 8), [4, 4]);
        assert_eq!(lens(&t2, 5), [4, 4]); // 5 -> 8, 4 each
        assert_eq!(lens(&t4, 6), [2, 2, 2, 2]); // 6 -> 8, 2 each
        assert_eq!(lens(&t4, 1), [1, 1, 1, 1]); // every node gets a shard
        let t3 = Topology::synthetic("numa:3 core:2 pu:1").unwrap();
        assert_eq!(lens(&t3, 8), [4, 4, 4]); // 8 / 3 -> 3 -> 4: 12 in all
        let groups = shard_groups(&t3, &local(&t3), Shards::Count(8));
        assert_eq!(
            groups.iter().map(|g| g.first).collect::<Vec<_>>(),
            [0, 4, 8]
        );
    }

    #[test]
    fn the_injected_cpu_lookup_decides_the_threads_node() {
        let t = four();
        let cpu = Arc::new(AtomicUsize::new(0));
        let seen = cpu.clone();
        let locator = NodeLocator::new(t.clone())
            .with_cpu_lookup(Arc::new(move || seen.load(Ordering::Relaxed)));
        let p = Placement::resolve(&Numa::Auto, &t).unwrap();
        let map = ShardMap::new(&t, &p, Shards::Auto);
        for (c, node) in [(0, 0), (1, 0), (3, 1), (4, 2), (7, 3), (2, 1)] {
            cpu.store(c, Ordering::Relaxed);
            assert_eq!(locator.current_cpu(), c);
            assert_eq!(locator.current_node(), node, "CPU {c}");
            // Its shard is in its node's group, its fresh memory on its node.
            let shard = map.home_shard(locator.current_node(), 5);
            assert_eq!(map.node_of_shard(shard), node);
            assert!(map.group_for_node(node).shards().contains(&shard));
            assert_eq!(p.node_for_fresh(locator.current_node(), 5), node);
        }
    }

    #[test]
    fn threads_spread_over_their_nodes_group_and_steal_there_first() {
        let t = two();
        let p = Placement::resolve(&Numa::Auto, &t).unwrap();
        let map = ShardMap::new(&t, &p, Shards::Auto);
        let homes: Vec<usize> = (0..4).map(|seq| map.home_shard(1, seq)).collect();
        assert_eq!(homes, [2, 3, 2, 3]);
        assert_eq!(map.steal_order(2).collect::<Vec<_>>(), [3, 0, 1]);
        assert_eq!(map.steal_order(1).collect::<Vec<_>>(), [0, 2, 3]);
    }

    #[test]
    fn the_real_lookup_on_a_synthetic_topology_names_one_of_its_nodes() {
        // This machine's CPUs 0 and 1 are node 0 in both synthetic machines.
        for t in [two(), four()] {
            let locator = NodeLocator::new(t);
            let node = locator.current_node();
            assert!(node < locator.topology().nodes().len());
            NodeLocator::refresh();
            assert!(locator.current_node() < locator.topology().nodes().len());
        }
    }
}
