//! The `numa` setting resolved against a topology: which nodes the pool
//! uses, and on which node each fresh allocation lives.

use super::Topology;
use crate::{Error, Numa, Problem, Source};

/// How fresh pool memory is placed.
///
/// ```
/// # #[cfg(feature = "numa")] {
/// use zeropool::numa::{Placement, PlacementMode, Topology};
/// use zeropool::Numa;
///
/// let two = Topology::synthetic("pack:2 numa:1 core:2 pu:1")?;
/// let mode = |numa| Placement::resolve(&numa, &two).map(|p| p.mode());
/// assert_eq!(mode(Numa::Auto)?, PlacementMode::Local); // 2 nodes: local
/// assert_eq!(mode(Numa::Off)?, PlacementMode::Off);
/// assert_eq!(mode(Numa::Interleave)?, PlacementMode::Interleave);
/// assert_eq!(mode(Numa::Nodes(vec![1]))?, PlacementMode::Nodes);
/// # }
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlacementMode {
    /// NUMA ignored: one group of shards, memory wherever the allocator
    /// puts it, every object homed on node 0.
    Off,
    /// Fresh memory bound to the requesting thread's node.
    Local,
    /// Fresh memory interleaved page by page across the nodes in use;
    /// shards are still grouped per node.
    Interleave,
    /// Only the listed nodes: memory bound to one of them.
    Nodes,
}

/// The `numa` setting resolved against a [`Topology`].
///
/// | `numa`          | mode                                           | nodes in use                 |
/// |-----------------|------------------------------------------------|------------------------------|
/// | `"auto"`        | `Local` with 2+ nodes in use, else `Off`       | as `local`                   |
/// | `"off"`         | `Off`                                          | `[0]`                        |
/// | `"local"`       | `Local`                                        | every node CPUs map to       |
/// | `"interleave"`  | `Interleave`                                   | every node CPUs map to       |
/// | `[a, b, ..]`    | `Nodes` (OS node numbers; unknown ones are an error) | those                  |
///
/// Memory-only nodes (CXL or HBM memory: see [`Topology::cpu_nodes`]) are
/// used only when listed: no thread runs there, so a shard group of theirs
/// would only be reached by stealing.
///
/// ```
/// use zeropool::numa::{Placement, PlacementMode, Topology};
/// use zeropool::Numa;
///
/// let one = Topology::single();
/// assert_eq!(Placement::resolve(&Numa::Auto, &one)?.mode(), PlacementMode::Off);
/// assert_eq!(Placement::resolve(&Numa::Local, &one)?.nodes(), [0]);
/// let err = Placement::resolve(&Numa::Nodes(vec![3]), &one).unwrap_err();
/// assert_eq!(err.problems()[0].key, "numa");
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Placement {
    mode: PlacementMode,
    /// Node indices in use, ascending, never empty.
    nodes: Vec<usize>,
    /// `in_use[i]`: node index `i` is in `nodes`.
    in_use: Vec<bool>,
    /// `near[i]`, for a node `i` not in use: the first node in use that
    /// shares CPUs with it (a listed memory-side node of the same package).
    near: Vec<Option<usize>>,
}

impl Placement {
    /// Resolves `numa` against `topology`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key `numa` and this topology's nodes
    /// when a list names a node that does not exist (or is empty).
    ///
    /// ```
    /// use zeropool::numa::{Placement, PlacementMode, Topology};
    /// use zeropool::Numa;
    ///
    /// let here = Topology::detect();
    /// let auto = Placement::resolve(&Numa::Auto, &here)?;
    /// // "auto" is local placement on a NUMA machine, off on a one-node one.
    /// if here.cpu_nodes().len() < 2 {
    ///     assert_eq!(auto.mode(), PlacementMode::Off);
    /// }
    /// let err = Placement::resolve(&Numa::Nodes(vec![99]), &here).unwrap_err();
    /// assert!(err.to_string().contains("node 99 does not exist"));
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn resolve(numa: &Numa, topology: &Topology) -> Result<Placement, Error> {
        Self::resolve_at(numa, topology, "numa", Source::Code)
    }

    /// [`resolve`](Self::resolve), with the key path and source the error
    /// should name (e.g. `pools.net.numa` from a file line).
    pub(crate) fn resolve_at(
        numa: &Numa,
        topology: &Topology,
        key: &str,
        source: Source,
    ) -> Result<Placement, Error> {
        let with_cpus = || -> Vec<usize> {
            match topology.cpu_nodes() {
                [] => (0..topology.nodes().len().max(1)).collect(),
                nodes => nodes.to_vec(),
            }
        };
        let (mode, nodes) = match numa {
            Numa::Off => return Ok(Self::off()),
            Numa::Auto => {
                let nodes = with_cpus();
                if nodes.len() < 2 {
                    return Ok(Self::off());
                }
                (PlacementMode::Local, nodes)
            }
            Numa::Local => (PlacementMode::Local, with_cpus()),
            Numa::Interleave => (PlacementMode::Interleave, with_cpus()),
            Numa::Nodes(list) => {
                let mut nodes = Vec::with_capacity(list.len());
                let mut unknown = Vec::new();
                for &os in list {
                    match topology.node_index(os) {
                        Some(i) => nodes.push(i),
                        None => unknown.push(os),
                    }
                }
                if !unknown.is_empty() || nodes.is_empty() {
                    let existing: Vec<String> = topology
                        .nodes()
                        .iter()
                        .map(|n| n.os_index.to_string())
                        .collect();
                    let what = match unknown.as_slice() {
                        [] => "no node listed".to_string(),
                        [one] => format!("node {one} does not exist"),
                        many => format!("nodes {many:?} do not exist"),
                    };
                    return Err(Error::Invalid(vec![Problem::new(
                        key,
                        numa.to_string(),
                        source,
                        format!(
                            "{what}: this machine's NUMA nodes are {} (see `zeropool topology`); \
                             or \"auto\", \"off\", \"local\", \"interleave\"",
                            existing.join(", ")
                        ),
                    )]));
                }
                nodes.sort_unstable();
                nodes.dedup();
                (PlacementMode::Nodes, nodes)
            }
        };
        let mut placement = Self::new(mode, nodes);
        placement.near = topology
            .nodes()
            .iter()
            .map(|node| {
                if placement.uses(node.index) {
                    return None;
                }
                placement.nodes.iter().copied().find(|&other| {
                    let theirs = &topology.nodes()[other].cpus;
                    node.cpus.iter().any(|c| theirs.binary_search(c).is_ok())
                })
            })
            .collect();
        Ok(placement)
    }

    fn new(mode: PlacementMode, nodes: Vec<usize>) -> Placement {
        let mut in_use = vec![false; nodes.last().map_or(0, |&n| n + 1)];
        for &n in &nodes {
            in_use[n] = true;
        }
        Placement {
            mode,
            nodes,
            in_use,
            near: Vec::new(),
        }
    }

    /// NUMA ignored: one node (0).
    ///
    /// ```
    /// let off = zeropool::numa::Placement::off();
    /// assert_eq!(off.node_for_fresh(3, 7), 0);
    /// ```
    pub fn off() -> Placement {
        Self::new(PlacementMode::Off, vec![0])
    }

    /// How fresh memory is placed.
    ///
    /// ```
    /// use zeropool::numa::{Placement, PlacementMode};
    ///
    /// assert_eq!(Placement::off().mode(), PlacementMode::Off);
    /// ```
    pub fn mode(&self) -> PlacementMode {
        self.mode
    }

    /// The node indices in use, ascending: one shard group each.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// use zeropool::numa::{Placement, Topology};
    /// use zeropool::Numa;
    ///
    /// let t = Topology::synthetic("numa:4 core:2 pu:1")?;
    /// assert_eq!(Placement::resolve(&Numa::Local, &t)?.nodes(), [0, 1, 2, 3]);
    /// assert_eq!(Placement::resolve(&Numa::Nodes(vec![3, 1]), &t)?.nodes(), [1, 3]);
    /// # }
    /// assert_eq!(zeropool::numa::Placement::off().nodes(), [0]);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn nodes(&self) -> &[usize] {
        &self.nodes
    }

    /// Whether node index `node` is in use.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// use zeropool::numa::{Placement, Topology};
    /// use zeropool::Numa;
    ///
    /// let t = Topology::synthetic("numa:4 core:2 pu:1")?;
    /// let p = Placement::resolve(&Numa::Nodes(vec![1, 3]), &t)?;
    /// assert!(p.uses(3) && !p.uses(2));
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    #[inline]
    pub fn uses(&self, node: usize) -> bool {
        self.in_use.get(node).copied().unwrap_or(false)
    }

    /// For a node not in use: the first node in use that shares CPUs with
    /// it, such as the listed memory-side node (HBM, CXL) of its package.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// use zeropool::numa::{Placement, Topology};
    /// use zeropool::Numa;
    ///
    /// // Two packages, each with a DRAM node and a memory-side node
    /// // (indices 0 and 1 on package 0, 2 and 3 on package 1).
    /// let t = Topology::synthetic("pack:2 [numa] [numa(memory=4GB)] core:2 pu:1")?;
    /// let hbm_only = Placement::resolve(&Numa::Nodes(vec![1, 3]), &t)?;
    /// assert_eq!(hbm_only.nearby(0), Some(1)); // threads of node 0 use node 1
    /// assert_eq!(hbm_only.nearby(2), Some(3));
    /// assert_eq!(hbm_only.nearby(1), None);    // in use itself
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    #[inline]
    pub fn nearby(&self, node: usize) -> Option<usize> {
        self.near.get(node).copied().flatten()
    }

    /// The home node of a fresh allocation made by a thread on
    /// `thread_node`; `counter` is any number that advances per allocation
    /// (a per-thread count serves), used to spread round robin.
    ///
    /// - off: 0;
    /// - local: the thread's node, or the first node in use if the thread's
    ///   node is not (a lookup the topology does not know);
    /// - interleave: the nodes in use in turn by `counter` (the memory
    ///   itself is interleaved page by page; this is the group it returns to);
    /// - node list: the thread's node if listed (local within the list),
    ///   else a listed node sharing its CPUs ([`nearby`](Self::nearby)),
    ///   else the listed nodes in turn by `counter`.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// use zeropool::numa::{Placement, Topology};
    /// use zeropool::Numa;
    ///
    /// let t = Topology::synthetic("numa:4 core:2 pu:1")?;
    /// let list = Placement::resolve(&Numa::Nodes(vec![1, 3]), &t)?;
    /// assert_eq!(list.node_for_fresh(3, 0), 3);           // listed: stays local
    /// assert_eq!(list.node_for_fresh(0, 0), 1);           // not listed: round robin
    /// assert_eq!(list.node_for_fresh(0, 1), 3);
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    #[inline]
    pub fn node_for_fresh(&self, thread_node: usize, counter: usize) -> usize {
        let round_robin = || self.nodes[counter % self.nodes.len()];
        match self.mode {
            PlacementMode::Off => self.nodes[0],
            PlacementMode::Local if self.uses(thread_node) => thread_node,
            PlacementMode::Local => self.nodes[0],
            PlacementMode::Interleave => round_robin(),
            PlacementMode::Nodes if self.uses(thread_node) => thread_node,
            PlacementMode::Nodes => self.nearby(thread_node).unwrap_or_else(round_robin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_at_names_the_key_and_source_given() {
        let err = Placement::resolve_at(
            &Numa::Nodes(vec![0, 4, 9]),
            &Topology::single(),
            "pools.net.numa",
            Source::Env {
                var: "ZEROPOOL_POOLS__NET__NUMA".into(),
            },
        )
        .unwrap_err();
        assert_eq!(
            err.problems()[0].to_string(),
            "`pools.net.numa` = [0, 4, 9] (from env ZEROPOOL_POOLS__NET__NUMA): nodes [4, 9] do \
             not exist: this machine's NUMA nodes are 0 (see `zeropool topology`); or \"auto\", \
             \"off\", \"local\", \"interleave\""
        );
    }

    #[test]
    fn an_empty_list_is_refused_and_duplicates_merge() {
        let t = Topology::single();
        let err = Placement::resolve(&Numa::Nodes(vec![]), &t).unwrap_err();
        assert!(err.to_string().contains("no node listed"), "{err}");
        let p = Placement::resolve(&Numa::Nodes(vec![0, 0]), &t).unwrap();
        assert_eq!((p.mode(), p.nodes()), (PlacementMode::Nodes, &[0][..]));
    }

    #[test]
    fn unknown_thread_nodes_fall_back() {
        let p = Placement::new(PlacementMode::Local, vec![1, 2]);
        assert_eq!(p.node_for_fresh(2, 5), 2);
        assert_eq!(p.node_for_fresh(0, 5), 1);
        assert_eq!(p.node_for_fresh(99, 5), 1);
        assert!(!p.uses(99));
    }
}
