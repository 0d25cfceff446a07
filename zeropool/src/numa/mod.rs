//! NUMA awareness: which node a thread runs on, which shards serve that
//! node, and where fresh pool memory is placed.
//!
//! Everything here is standalone: the pool's hot path uses it through a few
//! crate-internal calls. The public types let a program (and the `zeropool
//! topology` command) see what the pool would do on a machine.
//!
//! ## How a request finds its node and shard
//! ```text
//!  get(n) on some thread
//!    │
//!    ▼
//!  NodeLocator::current_node()                                  (current)
//!    │  one node: 0, no lookup at all
//!    │  else: sched_getcpu(), cached in a thread-local and re-read every
//!    │  REFRESH_EVERY calls (a thread that migrates is seen within that)
//!    ▼
//!  Topology::node_of_cpu(cpu) ─► node index (one Vec lookup)     (topology)
//!    │
//!    ▼
//!  ShardMap::home_shard(node, thread_seq)                      (shard_map)
//!    │  the node's group of shards: first + (thread_seq & (len - 1))
//!    │  empty: steal_order() tries the same node's shards first
//!    ▼
//!  allocate: Placement::node_for_fresh(node, counter) ─► home node (placement)
//!    │  off: 0 · local: the thread's node · interleave: round robin ·
//!    │  node list: the thread's node if listed, else round robin over the list
//!    ▼
//!  bind_fresh(area, node) ─► hwloc binds the untouched pages         (bind)
//!  pin(area) when `pinned = true` ─► mlock, the limit named on failure (pin)
//!
//!  drop on another node ─► back to the home node's group (batched by the pool)
//! ```
//!
//! ## Nodes, indices and OS numbers
//! A node is named by its *index* in [`Topology::nodes`] everywhere in the
//! pool (shard groups, placement, home nodes). `numa = [..]` in a config
//! names nodes by their OS number (as `numactl` and
//! `/sys/devices/system/node/nodeN` do); [`Placement::resolve`] maps them.
//! On almost every machine the two are equal.
//!
//! ## Without hwloc
//! Built without the `numa` feature, or when hwloc cannot load a topology,
//! [`Topology::detect`] gives one node holding every CPU and says why
//! ([`Topology::fallback_reason`]); nothing fails.
//!
//! ## Trying a NUMA machine on a small one
//! hwloc honours `HWLOC_SYNTHETIC="pack:2 numa:1 core:2 pu:1"` (and
//! `HWLOC_XMLFILE`): [`Topology::detect`] then loads that machine, shards and
//! placement follow it, and binding does nothing
//! ([`Topology::is_synthetic`]). Threads still run on this machine's CPUs,
//! so only those CPUs' nodes see traffic unless a [`CpuLookup`] is injected.
//!
//! ## What the pool would do here
//! ```
//! use zeropool::numa::{Placement, ShardMap, Topology};
//! use zeropool::{Numa, Shards};
//!
//! let topology = Topology::detect(); // never fails: one node at worst
//! let placement = Placement::resolve(&Numa::Auto, &topology)?;
//! let map = ShardMap::new(&topology, &placement, Shards::Auto);
//! println!("{:?} placement, {} shards", placement.mode(), map.len());
//! for group in map.groups() {
//!     let node = &topology.nodes()[group.node];
//!     println!("node {}: shards {:?}, CPUs {:?}", node.os_index, group.shards(), node.cpus);
//! }
//! assert_eq!(map.groups().len(), placement.nodes().len());
//! # Ok::<(), zeropool::Error>(())
//! ```

mod bind;
mod current;
mod pin;
mod placement;
mod shard_map;
mod topology;

#[allow(unused_imports)] // used by the pool's integration and the tests
pub(crate) use bind::{area_nodes, bind_fresh, BindError, Binding};
pub use current::{CpuLookup, NodeLocator, REFRESH_EVERY};
#[allow(unused_imports)] // used by the pool's integration and the tests
pub(crate) use pin::{memlock_limit, pin, unpin, PinError};
pub use placement::{Placement, PlacementMode};
pub use shard_map::{shard_groups, ShardGroup, ShardMap, MAX_GROUP_SHARDS};
pub use topology::{NodeInfo, Topology};
