//! Shards grouped per NUMA node: which shards serve which node, the home
//! shard of a thread, and the order to steal in (same node first).
//!
//! ```text
//!  shards:   0 1 2 3 │ 4 5 6 7        ("pack:2 numa:1 core:4 pu:1", shards = "auto")
//!  group:    node 0  │ node 1
//!  thread on node 1, thread_seq 6 ─► 4 + (6 & 3) = shard 6
//!  steal order from 6: 7 4 5 (node 1) then 0 1 2 3 (node 0)
//! ```

use super::{Placement, PlacementMode, Topology};
use crate::Shards;
use std::ops::Range;

/// Most shards one node's group gets from `shards = "auto"`.
///
/// ```
/// # #[cfg(feature = "numa")] {
/// use zeropool::numa::{shard_groups, Placement, Topology, MAX_GROUP_SHARDS};
/// use zeropool::{Numa, Shards};
///
/// // Two nodes of 96 CPUs each: 128 would be the next power of two.
/// let t = Topology::synthetic("pack:2 numa:1 core:96 pu:1")?;
/// let groups = shard_groups(&t, &Placement::resolve(&Numa::Local, &t)?, Shards::Auto);
/// assert!(groups.iter().all(|g| g.len == MAX_GROUP_SHARDS));
/// # }
/// # Ok::<(), zeropool::Error>(())
/// ```
pub const MAX_GROUP_SHARDS: usize = 64;

/// The shards of one NUMA node: `first .. first + len`, `len` a power of two.
///
/// ```
/// let g = zeropool::numa::ShardGroup { node: 1, first: 4, len: 4 };
/// assert_eq!(g.shards(), 4..8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardGroup {
    /// The node index these shards serve.
    pub node: usize,
    /// The first shard.
    pub first: usize,
    /// How many shards (a power of two).
    pub len: usize,
}

impl ShardGroup {
    /// The shard indices of this group.
    ///
    /// ```
    /// let g = zeropool::numa::ShardGroup { node: 0, first: 0, len: 2 };
    /// assert_eq!(g.shards().collect::<Vec<_>>(), [0, 1]);
    /// ```
    pub fn shards(&self) -> Range<usize> {
        self.first..self.first + self.len
    }
}

/// The shard groups for `shards` under `placement`, one per node in use,
/// in node order, numbered consecutively from shard 0.
///
/// - One node in use (or placement off): one group, sized as without NUMA:
///   `auto` is the topology's CPUs rounded up to a power of two (at most
///   [`MAX_GROUP_SHARDS`]), a count is rounded up to a power of two.
/// - `auto` with several nodes: each node's CPUs rounded up to a power of
///   two, at most [`MAX_GROUP_SHARDS`] (at least 1, for a memory-only node).
/// - A count `n` with `k` nodes: `n` rounded up to a power of two, split
///   evenly, each share rounded up to a power of two. Every node gets at
///   least its share, so the total can exceed `n` (`n = 8`, 3 nodes: 4 each,
///   12 in all); the total need not be a power of two.
///
/// ```
/// # #[cfg(feature = "numa")] {
/// use zeropool::numa::{shard_groups, Placement, ShardGroup, Topology};
/// use zeropool::{Numa, Shards};
///
/// let t = Topology::synthetic("pack:2 numa:1 core:2 pu:1")?;
/// let local = Placement::resolve(&Numa::Local, &t)?;
/// assert_eq!(shard_groups(&t, &local, Shards::Auto), [
///     ShardGroup { node: 0, first: 0, len: 2 },
///     ShardGroup { node: 1, first: 2, len: 2 },
/// ]);
/// # }
/// # Ok::<(), zeropool::Error>(())
/// ```
pub fn shard_groups(topology: &Topology, placement: &Placement, shards: Shards) -> Vec<ShardGroup> {
    let auto = |cpus: usize| cpus.max(1).next_power_of_two().min(MAX_GROUP_SHARDS);
    let nodes = placement.nodes();
    if placement.mode() == PlacementMode::Off || nodes.len() == 1 {
        let len = match shards {
            Shards::Auto => auto(topology.cpus().len()),
            Shards::Count(n) => n.max(1).next_power_of_two(),
        };
        return vec![ShardGroup {
            node: nodes[0],
            first: 0,
            len,
        }];
    }
    let mut first = 0;
    nodes
        .iter()
        .map(|&node| {
            let len = match shards {
                Shards::Auto => auto(topology.nodes().get(node).map_or(0, |n| n.cpus.len())),
                Shards::Count(n) => n
                    .max(1)
                    .next_power_of_two()
                    .div_ceil(nodes.len())
                    .next_power_of_two(),
            };
            let group = ShardGroup { node, first, len };
            first += len;
            group
        })
        .collect()
}

/// The shard groups with the lookups the pool needs: a thread's home
/// shard, a shard's node, and the steal order.
///
/// ```
/// # #[cfg(feature = "numa")] {
/// use zeropool::numa::{Placement, ShardMap, Topology};
/// use zeropool::{Numa, Shards};
///
/// let t = Topology::synthetic("pack:2 numa:1 core:4 pu:1")?;
/// let map = ShardMap::new(&t, &Placement::resolve(&Numa::Local, &t)?, Shards::Auto);
/// assert_eq!(map.len(), 8);
/// assert_eq!(map.home_shard(1, 6), 6);
/// assert_eq!(map.node_of_shard(2), 0);
/// assert_eq!(map.steal_order(6).collect::<Vec<_>>(), [7, 4, 5, 0, 1, 2, 3]);
/// # }
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    groups: Vec<ShardGroup>,
    /// Group index by node index (`usize::MAX`: the node has no group).
    group_by_node: Vec<usize>,
    /// Group index by shard.
    group_by_shard: Vec<usize>,
}

impl ShardMap {
    /// The map of [`shard_groups`]`(topology, placement, shards)`.
    ///
    /// ```
    /// use zeropool::numa::{Placement, ShardMap, Topology};
    /// use zeropool::Shards;
    ///
    /// let map = ShardMap::new(&Topology::single(), &Placement::off(), Shards::Count(4));
    /// assert_eq!(map.len(), 4);
    /// assert_eq!(map.groups().len(), 1);
    /// ```
    pub fn new(topology: &Topology, placement: &Placement, shards: Shards) -> ShardMap {
        let mut map = Self::from_groups(shard_groups(topology, placement, shards));
        // Threads on a node without a group use the group of a node sharing
        // their CPUs (a listed memory-side node of the same package).
        if map.group_by_node.len() < topology.nodes().len() {
            map.group_by_node.resize(topology.nodes().len(), usize::MAX);
        }
        for node in 0..map.group_by_node.len() {
            if map.group_by_node[node] == usize::MAX {
                if let Some(near) = placement.nearby(node) {
                    map.group_by_node[node] = map.group_by_node[near];
                }
            }
        }
        map
    }

    fn from_groups(groups: Vec<ShardGroup>) -> ShardMap {
        let nodes = groups.iter().map(|g| g.node + 1).max().unwrap_or(0);
        let mut group_by_node = vec![usize::MAX; nodes];
        let mut group_by_shard = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            group_by_node[g.node] = i;
            group_by_shard.resize(g.first + g.len, i);
        }
        ShardMap {
            groups,
            group_by_node,
            group_by_shard,
        }
    }

    /// The groups, in node order.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// use zeropool::numa::{Placement, ShardGroup, ShardMap, Topology};
    /// use zeropool::{Numa, Shards};
    ///
    /// let t = Topology::synthetic("numa:3 core:2 pu:1")?;
    /// // 8 shards over 3 nodes: each node gets its share rounded up, 4.
    /// let map = ShardMap::new(&t, &Placement::resolve(&Numa::Local, &t)?, Shards::Count(8));
    /// assert_eq!(map.groups()[2], ShardGroup { node: 2, first: 8, len: 4 });
    /// assert_eq!(map.len(), 12);
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn groups(&self) -> &[ShardGroup] {
        &self.groups
    }

    /// Shards in all.
    ///
    /// ```
    /// use zeropool::numa::{Placement, ShardMap, Topology};
    /// use zeropool::Shards;
    ///
    /// let map = ShardMap::new(&Topology::single(), &Placement::off(), Shards::Count(3));
    /// assert_eq!(map.len(), 4); // rounded up to a power of two
    /// ```
    pub fn len(&self) -> usize {
        self.group_by_shard.len()
    }

    /// Always false: a map has at least one shard.
    ///
    /// ```
    /// use zeropool::numa::{Placement, ShardMap, Topology};
    /// use zeropool::Shards;
    ///
    /// assert!(!ShardMap::new(&Topology::single(), &Placement::off(), Shards::Count(0)).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.group_by_shard.is_empty()
    }

    /// The group serving threads on node index `node`: its own; for a node
    /// without one (not in a node list), that of the listed node sharing its
    /// CPUs ([`Placement::nearby`]), else group `node % groups`.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// use zeropool::numa::{Placement, ShardMap, Topology};
    /// use zeropool::{Numa, Shards};
    ///
    /// let t = Topology::synthetic("numa:4 core:2 pu:1")?;
    /// let map = ShardMap::new(&t, &Placement::resolve(&Numa::Nodes(vec![1, 3]), &t)?, Shards::Auto);
    /// assert_eq!(map.group_for_node(3).node, 3);
    /// assert_eq!(map.group_for_node(2).node, 1); // not listed: group 2 % 2 = 0, node 1's
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    #[inline]
    pub fn group_for_node(&self, node: usize) -> &ShardGroup {
        let i = match self.group_by_node.get(node) {
            Some(&i) if i != usize::MAX => i,
            _ => node % self.groups.len(),
        };
        &self.groups[i]
    }

    /// The home shard of a thread on `node` whose sequence number (any
    /// per-thread number that spreads threads) is `thread_seq`.
    ///
    /// ```
    /// use zeropool::numa::{Placement, ShardMap, Topology};
    /// use zeropool::Shards;
    ///
    /// let map = ShardMap::new(&Topology::single(), &Placement::off(), Shards::Count(4));
    /// let homes: Vec<usize> = (0..6).map(|seq| map.home_shard(0, seq)).collect();
    /// assert_eq!(homes, [0, 1, 2, 3, 0, 1]); // threads spread over the shards
    /// ```
    #[inline]
    pub fn home_shard(&self, node: usize, thread_seq: usize) -> usize {
        let g = self.group_for_node(node);
        g.first + (thread_seq & (g.len - 1))
    }

    /// The node index `shard` serves (its objects' home node).
    ///
    /// # Panics
    /// If `shard >= self.len()`.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// use zeropool::numa::{Placement, ShardMap, Topology};
    /// use zeropool::{Numa, Shards};
    ///
    /// let t = Topology::synthetic("pack:2 numa:1 core:2 pu:1")?;
    /// let map = ShardMap::new(&t, &Placement::resolve(&Numa::Local, &t)?, Shards::Auto);
    /// let nodes: Vec<usize> = (0..map.len()).map(|s| map.node_of_shard(s)).collect();
    /// assert_eq!(nodes, [0, 0, 1, 1]);
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    #[inline]
    pub fn node_of_shard(&self, shard: usize) -> usize {
        self.groups[self.group_by_shard[shard]].node
    }

    /// Every shard but `shard`, in the order to steal from when `shard` is
    /// empty: the rest of its group (from the next one round), then the
    /// other groups, from the next group round. No allocation.
    ///
    /// # Panics
    /// If `shard >= self.len()`.
    ///
    /// ```
    /// use zeropool::numa::{Placement, ShardMap, Topology};
    /// use zeropool::Shards;
    ///
    /// let map = ShardMap::new(&Topology::single(), &Placement::off(), Shards::Count(4));
    /// assert_eq!(map.steal_order(2).collect::<Vec<_>>(), [3, 0, 1]);
    /// ```
    pub fn steal_order(&self, shard: usize) -> impl Iterator<Item = usize> + '_ {
        let gi = self.group_by_shard[shard];
        let own = self.groups[gi];
        let same = (1..own.len).map(move |step| own.first + (shard - own.first + step) % own.len);
        let others = (1..self.groups.len())
            .map(move |step| self.groups[(gi + step) % self.groups.len()])
            .flat_map(|g| g.shards());
        same.chain(others)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(groups: &[(usize, usize, usize)]) -> ShardMap {
        ShardMap::from_groups(
            groups
                .iter()
                .map(|&(node, first, len)| ShardGroup { node, first, len })
                .collect(),
        )
    }

    #[test]
    fn steal_order_visits_every_other_shard_once_own_group_first() {
        let m = map(&[(0, 0, 2), (2, 2, 4), (3, 6, 1)]);
        for shard in 0..m.len() {
            let order: Vec<usize> = m.steal_order(shard).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            let expected: Vec<usize> = (0..m.len()).filter(|&s| s != shard).collect();
            assert_eq!(sorted, expected, "from {shard}");
            let own = m.group_for_node(m.node_of_shard(shard)).len - 1;
            assert!(order[..own]
                .iter()
                .all(|&s| m.node_of_shard(s) == m.node_of_shard(shard)));
        }
        assert_eq!(m.steal_order(3).collect::<Vec<_>>(), [4, 5, 2, 6, 0, 1]);
        assert_eq!(m.steal_order(6).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn nodes_without_a_group_spread_over_the_groups() {
        let m = map(&[(1, 0, 2), (3, 2, 2)]);
        assert_eq!(m.group_for_node(1).node, 1);
        assert_eq!(m.group_for_node(3).node, 3);
        assert_eq!(m.group_for_node(0).node, 1);
        assert_eq!(m.group_for_node(2).node, 1);
        assert_eq!(m.group_for_node(5).node, 3);
        assert_eq!(m.home_shard(3, 5), 3);
    }

    #[test]
    fn one_node_keeps_the_shard_count_of_a_pool_without_numa() {
        let t = Topology::single();
        let groups = shard_groups(&t, &Placement::off(), Shards::Auto);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].len, crate::auto_shards());
        let groups = shard_groups(&t, &Placement::off(), Shards::Count(6));
        assert_eq!(groups[0].len, Shards::Count(6).resolve());
    }
}
