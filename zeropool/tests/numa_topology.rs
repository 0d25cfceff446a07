//! `zeropool::numa::Topology`: the machine's (one node here), synthetic ones
//! (2 packages x 1 node x 2 cores, and 4 nodes), an XML one with
//! non-contiguous node numbers, and the one-node fallback.

use zeropool::numa::Topology;

#[test]
fn detect_never_fails_and_is_loaded_once() {
    let t = Topology::detect();
    assert!(!t.nodes().is_empty());
    assert!(!t.cpus().is_empty());
    for (i, node) in t.nodes().iter().enumerate() {
        assert_eq!(node.index, i);
        for &cpu in &node.cpus {
            assert!(t.cpus().contains(&cpu));
        }
    }
    for &cpu in t.cpus() {
        assert!(t.node_of_cpu(cpu) < t.nodes().len());
    }
    // Shared, not reloaded.
    assert_eq!(Topology::detect().nodes(), t.nodes());
    let hwloc_env = ["HWLOC_SYNTHETIC", "HWLOC_XMLFILE"].map(std::env::var_os);
    assert!(!t.is_synthetic() || hwloc_env.iter().any(Option::is_some));
}

#[cfg(feature = "numa")]
#[test]
fn detect_with_the_feature_uses_hwloc() {
    if std::env::var_os("HWLOC_SYNTHETIC").is_some() || std::env::var_os("HWLOC_XMLFILE").is_some()
    {
        return;
    }
    let t = Topology::detect();
    assert_eq!(t.fallback_reason(), None, "{t}");
    assert!(t.to_string().ends_with("(hwloc)"), "{t}");
    // This machine: one node holding every CPU (hwloc may see CPUs that
    // affinity hides from available_parallelism, never fewer).
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(t.cpus().len() >= cpus);
    if t.nodes().len() == 1 {
        assert_eq!(t.nodes()[0].cpus, t.cpus());
        assert!(t.nodes()[0].memory > 0, "hwloc reads node memory on Linux");
    }
}

#[cfg(not(feature = "numa"))]
#[test]
fn without_the_feature_the_machine_is_one_node_and_says_why() {
    let t = Topology::detect();
    assert_eq!(t.nodes().len(), 1);
    assert_eq!(
        t.fallback_reason(),
        Some("built without the `numa` feature")
    );
    assert_eq!(
        t.to_string(),
        format!(
            "1 NUMA node, {} CPU{} (one node: built without the `numa` feature)",
            t.cpus().len(),
            if t.cpus().len() == 1 { "" } else { "s" }
        )
    );
    assert!(!t.can_bind_memory());
    let err = Topology::synthetic("pack:2 numa:1 core:2 pu:1").unwrap_err();
    assert_eq!(err.problems()[0].key, "synthetic");
    assert!(err.to_string().contains("`numa` feature"), "{err}");
    assert!(Topology::from_xml("<topology/>").is_err());
}

#[cfg(feature = "numa")]
mod synthetic {
    use super::*;

    #[test]
    fn two_packages_of_one_node_and_two_cores() {
        let t = Topology::synthetic("pack:2 numa:1 core:2 pu:1").unwrap();
        assert_eq!(t.nodes().len(), 2);
        assert_eq!(t.cpus(), [0, 1, 2, 3]);
        let nodes: Vec<(usize, usize, Vec<usize>)> = t
            .nodes()
            .iter()
            .map(|n| (n.index, n.os_index, n.cpus.clone()))
            .collect();
        assert_eq!(nodes, [(0, 0, vec![0, 1]), (1, 1, vec![2, 3])]);
        assert!(t.nodes().iter().all(|n| n.memory > 0));
        let of: Vec<usize> = (0..4).map(|c| t.node_of_cpu(c)).collect();
        assert_eq!(of, [0, 0, 1, 1]);
        // A CPU the synthetic machine lacks (this machine's, say) is node 0.
        assert_eq!(t.node_of_cpu(64), 0);
        assert!(t.is_synthetic());
        assert!(!t.can_bind_memory());
        assert_eq!(t.fallback_reason(), None);
        assert_eq!(
            t.to_string(),
            "2 NUMA nodes, 4 CPUs (synthetic \"pack:2 numa:1 core:2 pu:1\")"
        );
    }

    #[test]
    fn four_nodes() {
        let t = Topology::synthetic("numa:4 core:2 pu:1").unwrap();
        assert_eq!(t.nodes().len(), 4);
        assert_eq!(t.cpus().len(), 8);
        let of: Vec<usize> = (0..8).map(|c| t.node_of_cpu(c)).collect();
        assert_eq!(of, [0, 0, 1, 1, 2, 2, 3, 3]);
        assert_eq!(t.node_index(3), Some(3));
        assert_eq!(t.node_index(4), None);
    }

    #[test]
    fn node_memory_comes_from_the_description() {
        let t = Topology::synthetic("pack:2 numa:1(memory=3GB) core:1 pu:2").unwrap();
        assert!(t.nodes().iter().all(|n| n.memory == 3_000_000_000));
        assert_eq!(t.nodes()[1].cpus, [2, 3]);
    }

    #[test]
    fn a_bad_description_is_an_error_naming_it() {
        let err = Topology::synthetic("pack:two").unwrap_err();
        let p = &err.problems()[0];
        assert_eq!(p.key, "synthetic");
        assert_eq!(p.value, "\"pack:two\"");
        assert!(
            p.accepted
                .starts_with("an hwloc synthetic topology such as"),
            "{}",
            p.accepted
        );
        assert!(Topology::synthetic("").is_err());
        assert!(Topology::synthetic("numa:2\0").is_err());
    }

    /// Two nodes numbered 0 and 2 by the OS (as after a node is taken
    /// offline), 2 GiB and 1 GiB.
    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE topology SYSTEM "hwloc2.dtd">
<topology version="2.0">
  <object type="Machine" os_index="0" cpuset="0x0000000f" complete_cpuset="0x0000000f" allowed_cpuset="0x0000000f" nodeset="0x00000005" complete_nodeset="0x00000005" allowed_nodeset="0x00000005" gp_index="1">
    <object type="Package" os_index="0" cpuset="0x00000003" complete_cpuset="0x00000003" nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="2">
      <object type="NUMANode" os_index="0" cpuset="0x00000003" complete_cpuset="0x00000003" nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="3" local_memory="2147483648"/>
      <object type="Core" os_index="0" cpuset="0x00000001" complete_cpuset="0x00000001" nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="4">
        <object type="PU" os_index="0" cpuset="0x00000001" complete_cpuset="0x00000001" nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="5"/>
      </object>
      <object type="Core" os_index="1" cpuset="0x00000002" complete_cpuset="0x00000002" nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="6">
        <object type="PU" os_index="1" cpuset="0x00000002" complete_cpuset="0x00000002" nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="7"/>
      </object>
    </object>
    <object type="Package" os_index="1" cpuset="0x0000000c" complete_cpuset="0x0000000c" nodeset="0x00000004" complete_nodeset="0x00000004" gp_index="8">
      <object type="NUMANode" os_index="2" cpuset="0x0000000c" complete_cpuset="0x0000000c" nodeset="0x00000004" complete_nodeset="0x00000004" gp_index="9" local_memory="1073741824"/>
      <object type="Core" os_index="2" cpuset="0x00000004" complete_cpuset="0x00000004" nodeset="0x00000004" complete_nodeset="0x00000004" gp_index="10">
        <object type="PU" os_index="2" cpuset="0x00000004" complete_cpuset="0x00000004" nodeset="0x00000004" complete_nodeset="0x00000004" gp_index="11"/>
      </object>
      <object type="Core" os_index="3" cpuset="0x00000008" complete_cpuset="0x00000008" nodeset="0x00000004" complete_nodeset="0x00000004" gp_index="12">
        <object type="PU" os_index="3" cpuset="0x00000008" complete_cpuset="0x00000008" nodeset="0x00000004" complete_nodeset="0x00000004" gp_index="13"/>
      </object>
    </object>
  </object>
</topology>
"#;

    #[test]
    fn xml_with_os_node_numbers_that_skip_one() {
        let t = Topology::from_xml(XML).unwrap();
        let nodes: Vec<(usize, usize, Vec<usize>, u64)> = t
            .nodes()
            .iter()
            .map(|n| (n.index, n.os_index, n.cpus.clone(), n.memory))
            .collect();
        assert_eq!(
            nodes,
            [(0, 0, vec![0, 1], 2 << 30), (1, 2, vec![2, 3], 1 << 30)]
        );
        assert_eq!(t.node_index(2), Some(1));
        assert_eq!(t.node_index(1), None);
        assert_eq!(t.node_of_cpu(3), 1);
        assert!(t.is_synthetic());
        assert_eq!(t.to_string(), "2 NUMA nodes, 4 CPUs (XML)");
        assert!(Topology::from_xml("<not a topology>").is_err());
    }

    #[test]
    fn a_node_list_names_os_numbers() {
        use zeropool::numa::{Placement, PlacementMode};
        use zeropool::Numa;

        let t = Topology::from_xml(XML).unwrap();
        let p = Placement::resolve(&Numa::Nodes(vec![2]), &t).unwrap();
        assert_eq!((p.mode(), p.nodes()), (PlacementMode::Nodes, &[1][..]));
        let err = Placement::resolve(&Numa::Nodes(vec![1]), &t).unwrap_err();
        assert!(
            err.problems()[0]
                .accepted
                .starts_with("node 1 does not exist: this machine's NUMA nodes are 0, 2"),
            "{err}"
        );
    }
}
