//! Placing fresh memory on its node with hwloc's area binding.
//!
//! The allocator hands the pool memory it has (usually) not touched yet:
//! binding it before the first write decides where its pages are created.
//! No migration is asked for, so pages the allocator already touched stay
//! where they are: moving them would cost a copy per allocation.
//!
//! Only whole pages inside the area are bound: the partial pages at its ends
//! may hold other allocations, which the pool must not move. An area smaller
//! than a page (or straddling two) is left to first touch, which for a
//! thread allocating on its own node is the same place.
//!
//! ```text
//!   area:   [....|xxxx|xxxx|xxxx|..]      x: bound, .: left alone
//!          page boundaries ─┘
//! ```

use super::{Placement, PlacementMode, Topology};
use std::fmt;
use std::mem::MaybeUninit;

/// What [`bind_fresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "numa"), allow(dead_code, reason = "only hwloc binds"))]
pub(crate) enum Binding {
    /// The whole pages of the area are bound as the placement asks.
    Bound,
    /// Nothing to do: placement off, no whole page in the area, or a
    /// synthetic topology (binding there is a no-op in hwloc too).
    Skipped,
}

/// Why fresh memory could not be bound. The pool keeps the memory either
/// way; it counts the failure and reports the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BindError {
    /// This build, OS or topology cannot bind memory this way: report once,
    /// then stop trying.
    Unsupported(String),
    /// Binding this area failed.
    Failed(String),
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Unsupported(why) => {
                write!(f, "NUMA memory binding is not supported here: {why}")
            }
            BindError::Failed(why) => write!(f, "NUMA memory binding failed: {why}"),
        }
    }
}

/// Binds the whole pages of `area`, fresh memory whose home is node index
/// `node` (from [`Placement::node_for_fresh`]): to that node for local and
/// list placement, interleaved across the nodes in use for interleave.
pub(crate) fn bind_fresh(
    topology: &Topology,
    area: &[MaybeUninit<u8>],
    placement: &Placement,
    node: usize,
) -> Result<Binding, BindError> {
    if placement.mode() == PlacementMode::Off || topology.is_synthetic() {
        return Ok(Binding::Skipped);
    }
    let pages = whole_pages(area);
    if pages.is_empty() {
        return Ok(Binding::Skipped);
    }
    let (interleave, nodes): (bool, &[usize]) = match placement.mode() {
        PlacementMode::Interleave => (true, placement.nodes()),
        _ => (false, std::slice::from_ref(&node)),
    };
    let os_nodes: Vec<usize> = nodes
        .iter()
        .filter_map(|&n| topology.nodes().get(n).map(|n| n.os_index))
        .collect();
    if os_nodes.len() != nodes.len() {
        return Err(BindError::Failed(format!(
            "node index {node} is not in the topology ({} nodes)",
            topology.nodes().len()
        )));
    }
    hwloc_bind(topology, pages, interleave, &os_nodes)
}

#[cfg(feature = "numa")]
fn hwloc_bind(
    topology: &Topology,
    pages: &[MaybeUninit<u8>],
    interleave: bool,
    os_nodes: &[usize],
) -> Result<Binding, BindError> {
    use hwlocality::errors::HybridError;
    use hwlocality::memory::binding::{
        MemoryBindingError, MemoryBindingFlags, MemoryBindingPolicy,
    };
    use hwlocality::memory::nodeset::NodeSet;

    let Some(hwloc) = topology.hwloc_machine() else {
        return Err(BindError::Unsupported(
            topology
                .fallback_reason()
                .unwrap_or("no hwloc topology of this machine")
                .to_string(),
        ));
    };
    let (policy, name) = if interleave {
        (MemoryBindingPolicy::Interleave, "interleave")
    } else {
        (MemoryBindingPolicy::Bind, "bind")
    };
    let support = hwloc.feature_support().memory_binding();
    let supported = support.is_some_and(|s| {
        s.set_area()
            && if interleave {
                s.interleave_policy()
            } else {
                s.bind_policy()
            }
    });
    if !supported {
        return Err(BindError::Unsupported(format!(
            "hwloc cannot bind a memory area with the {name} policy on this system"
        )));
    }
    let mut set = NodeSet::new();
    for &os in os_nodes {
        set.set(os);
    }
    match hwloc.bind_memory_area(pages, &set, policy, MemoryBindingFlags::empty()) {
        Ok(()) => Ok(Binding::Bound),
        Err(HybridError::Rust(MemoryBindingError::Unsupported)) => Err(BindError::Unsupported(
            format!("the OS refuses {name} binding of a memory area"),
        )),
        // EPERM: a seccomp filter (containers) or policy forbids mbind.
        Err(HybridError::Hwloc(e)) if e.errno.is_some_and(|n| n.0 == libc::EPERM) => Err(
            BindError::Unsupported(format!("the OS does not permit it ({e})")),
        ),
        Err(e) => Err(BindError::Failed(format!(
            "{name} {} bytes to NUMA node set {set}: {e}",
            pages.len()
        ))),
    }
}

#[cfg(not(feature = "numa"))]
fn hwloc_bind(
    topology: &Topology,
    _pages: &[MaybeUninit<u8>],
    _interleave: bool,
    _os_nodes: &[usize],
) -> Result<Binding, BindError> {
    Err(BindError::Unsupported(
        topology
            .fallback_reason()
            .unwrap_or("built without the `numa` feature")
            .to_string(),
    ))
}

/// The node indices the whole pages of `area` are bound to (hwloc's query
/// of the area's binding), or where they physically are if the binding
/// cannot be queried. `None` where neither can be asked: a synthetic
/// topology, no hwloc, an OS without the query, or no whole page.
#[cfg_attr(not(test), allow(dead_code))] // tests check placement with it
pub(crate) fn area_nodes(topology: &Topology, area: &[MaybeUninit<u8>]) -> Option<Vec<usize>> {
    let pages = whole_pages(area);
    if pages.is_empty() {
        return None;
    }
    #[cfg(feature = "numa")]
    {
        use hwlocality::memory::binding::MemoryBindingFlags;
        use hwlocality::memory::nodeset::NodeSet;

        let hwloc = topology.hwloc_machine()?;
        let set: NodeSet =
            match hwloc.area_memory_binding::<_, NodeSet>(pages, MemoryBindingFlags::empty()) {
                Ok((set, _policy)) => set,
                Err(_) => hwloc
                    .area_memory_location::<_, NodeSet>(pages, MemoryBindingFlags::empty())
                    .ok()?,
            };
        // A nodeset from the OS is finite: iter_set ends.
        Some(
            set.iter_set()
                .filter_map(|os| topology.node_index(usize::from(os)))
                .collect(),
        )
    }
    #[cfg(not(feature = "numa"))]
    {
        let _ = topology;
        None
    }
}

/// The part of `area` made of whole pages.
fn whole_pages(area: &[MaybeUninit<u8>]) -> &[MaybeUninit<u8>] {
    let page = page_size();
    let addr = area.as_ptr() as usize;
    let start = addr.next_multiple_of(page) - addr;
    let end = (addr + area.len()) / page * page;
    match end.checked_sub(addr) {
        Some(end) if end > start => &area[start..end],
        _ => &[],
    }
}

/// The OS page size (4096 where it cannot be asked).
pub(crate) fn page_size() -> usize {
    use std::sync::OnceLock;
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: sysconf takes a constant name and touches no memory of
            // ours; it returns -1 on error, handled below.
            let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            usize::try_from(n)
                .ok()
                .filter(|n| n.is_power_of_two())
                .unwrap_or(4096)
        }
        #[cfg(not(unix))]
        {
            4096
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Numa;

    /// A fresh, untouched allocation of `len` bytes.
    fn fresh(len: usize) -> Vec<u8> {
        Vec::with_capacity(len)
    }

    #[test]
    fn only_whole_pages_are_bound() {
        let page = page_size();
        let mut buf = fresh(4 * page);
        let area = buf.spare_capacity_mut();
        let addr = area.as_ptr() as usize;
        let inner = whole_pages(area);
        let (lo, hi) = (
            inner.as_ptr() as usize,
            inner.as_ptr() as usize + inner.len(),
        );
        assert!(lo.is_multiple_of(page) && hi.is_multiple_of(page));
        assert!(lo >= addr && hi <= addr + 4 * page);
        assert!(inner.len() >= 3 * page);
        assert!(whole_pages(&area[1..page]).is_empty());
        assert!(whole_pages(&[]).is_empty());
    }

    #[test]
    fn off_and_tiny_areas_are_skipped() {
        let t = Topology::detect();
        let mut buf = fresh(1 << 20);
        let area = buf.spare_capacity_mut();
        assert_eq!(
            bind_fresh(&t, area, &Placement::off(), 0),
            Ok(Binding::Skipped)
        );
        let local = Placement::resolve(&Numa::Local, &t).unwrap();
        assert_eq!(bind_fresh(&t, &area[..16], &local, 0), Ok(Binding::Skipped));
    }

    #[test]
    fn binding_fresh_memory_to_node_0_on_this_machine() {
        let t = Topology::detect();
        let local = Placement::resolve(&Numa::Local, &t).unwrap();
        // Miri writes and reads each byte below in about 0.3 ms: a few pages.
        let len = if cfg!(miri) { 4 * page_size() } else { 1 << 20 };
        let mut buf = fresh(len);
        let area = buf.spare_capacity_mut();
        let outcome = bind_fresh(&t, area, &local, 0);
        eprintln!("bind_fresh on this machine: {outcome:?}");
        match outcome {
            Ok(Binding::Bound) => {
                assert!(t.can_bind_memory());
                // Where the OS can say, the pages are bound to node 0.
                let nodes = area_nodes(&t, area);
                #[cfg(feature = "numa")]
                if t.hwloc_machine()
                    .and_then(|h| h.feature_support().memory_binding())
                    .is_some_and(|m| m.get_area())
                {
                    assert!(nodes.is_some(), "hwloc claims it can query an area");
                }
                if let Some(nodes) = nodes {
                    assert_eq!(nodes, [0]);
                }
            }
            Err(BindError::Unsupported(why)) => {
                assert!(!why.is_empty());
                if cfg!(not(feature = "numa")) {
                    assert_eq!(why, "built without the `numa` feature");
                }
            }
            other => panic!("unexpected: {other:?}"),
        }
        // The memory works either way.
        buf.resize(len, 7);
        assert!(buf.iter().all(|&b| b == 7));
    }

    #[cfg(feature = "numa")]
    #[test]
    fn interleave_on_this_machine_covers_the_nodes_in_use() {
        let t = Topology::detect();
        let p = Placement::resolve(&Numa::Interleave, &t).unwrap();
        let mut buf = fresh(1 << 20);
        let area = buf.spare_capacity_mut();
        if let Ok(Binding::Bound) = bind_fresh(&t, area, &p, p.node_for_fresh(0, 0)) {
            if let Some(nodes) = area_nodes(&t, area) {
                assert_eq!(nodes, p.nodes());
            }
        }
    }

    #[cfg(feature = "numa")]
    #[test]
    fn binding_on_a_synthetic_topology_is_a_no_op() {
        let t = Topology::synthetic("pack:2 numa:1 core:2 pu:1").unwrap();
        let p = Placement::resolve(&Numa::Nodes(vec![1]), &t).unwrap();
        let mut buf = fresh(1 << 20);
        let area = buf.spare_capacity_mut();
        assert_eq!(bind_fresh(&t, area, &p, 1), Ok(Binding::Skipped));
        assert_eq!(area_nodes(&t, area), None);
    }

    #[test]
    fn a_bad_node_index_is_an_error_not_a_panic() {
        let t = Topology::detect();
        let local = Placement::resolve(&Numa::Local, &t).unwrap();
        let mut buf = fresh(1 << 20);
        let err = bind_fresh(&t, buf.spare_capacity_mut(), &local, 99).unwrap_err();
        assert!(err.to_string().contains("node index 99"), "{err}");
    }

    #[test]
    fn messages_say_what_failed() {
        let e = BindError::Unsupported("built without the `numa` feature".into());
        assert_eq!(
            e.to_string(),
            "NUMA memory binding is not supported here: built without the `numa` feature"
        );
    }
}
