//! The machine's NUMA nodes and CPUs, from hwloc or a one-node fallback.
//!
//! A [`Topology`] is loaded once and then read only: the pool asks it which
//! node a CPU belongs to (a `Vec` lookup) and what each node holds. With the
//! `numa` feature it keeps hwloc's topology inside, which [`bind`](super::bind)
//! uses to place memory.

use crate::{Error, Problem, Source};
use std::fmt;
use std::sync::{Arc, OnceLock};

/// One NUMA node: its number, its CPUs and its memory.
///
/// ```
/// let topology = zeropool::numa::Topology::single();
/// let node = &topology.nodes()[0];
/// assert_eq!((node.index, node.os_index), (0, 0));
/// assert!(!node.cpus.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Position in [`Topology::nodes`]: how the pool names this node.
    pub index: usize,
    /// The operating system's number for the node (`nodeN` in
    /// `/sys/devices/system/node`, and in `numa = [..]`).
    pub os_index: usize,
    /// OS numbers of the CPUs (hardware threads) local to this node,
    /// ascending. Empty for a memory-only node.
    pub cpus: Vec<usize>,
    /// Memory local to this node in bytes, 0 if unknown.
    pub memory: u64,
}

/// The NUMA nodes and CPUs the pool works with: detected by hwloc, described
/// synthetically (tests, `zeropool topology --synthetic`), or one node.
///
/// Cloning is cheap (an `Arc`).
///
/// ```
/// use zeropool::numa::Topology;
///
/// let t = Topology::detect();
/// assert!(!t.nodes().is_empty());            // never fails: one node at worst
/// let node = t.node_of_cpu(t.cpus()[0]);
/// assert!(node < t.nodes().len());
/// if cfg!(not(feature = "numa")) {
///     assert_eq!(t.fallback_reason(), Some("built without the `numa` feature"));
/// }
/// ```
#[derive(Clone)]
pub struct Topology {
    inner: Arc<Inner>,
}

struct Inner {
    nodes: Vec<NodeInfo>,
    /// Every CPU's OS number, ascending.
    cpus: Vec<usize>,
    /// Node index by CPU OS number (0 for numbers no node claims).
    node_by_cpu: Vec<usize>,
    /// The nodes some CPU maps to, ascending.
    cpu_nodes: Vec<usize>,
    origin: Origin,
    /// Why this is a one-node stand-in for the machine, if it is.
    fallback: Option<String>,
    /// hwloc's topology, kept for memory binding.
    #[cfg(feature = "numa")]
    hwloc: Option<hwlocality::Topology>,
}

/// Where a topology came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    not(feature = "numa"),
    allow(dead_code, reason = "only hwloc gives other origins")
)]
enum Origin {
    /// hwloc probed this machine.
    Machine,
    /// One node, not from hwloc.
    Single,
    /// A synthetic description.
    Synthetic(String),
    /// An XML description.
    Xml,
    /// hwloc was told to load another machine (`HWLOC_SYNTHETIC`,
    /// `HWLOC_XMLFILE`): a synthetic topology for the whole process.
    Imported,
}

impl Topology {
    /// This machine's topology, loaded by hwloc the first time it is asked
    /// for and shared afterwards.
    ///
    /// Never fails: without the `numa` feature, or when hwloc cannot load a
    /// topology, it is one node holding every CPU, and
    /// [`fallback_reason`](Self::fallback_reason) says why.
    ///
    /// ```
    /// let t = zeropool::numa::Topology::detect();
    /// match t.fallback_reason() {
    ///     Some(why) => println!("one node: {why}"),
    ///     None => println!("{} NUMA node(s), {} CPUs", t.nodes().len(), t.cpus().len()),
    /// }
    /// assert!(std::ptr::eq(t.nodes(), zeropool::numa::Topology::detect().nodes())); // loaded once
    /// ```
    pub fn detect() -> Topology {
        static DETECTED: OnceLock<Topology> = OnceLock::new();
        DETECTED.get_or_init(Self::load).clone()
    }

    /// Loads this machine's topology (uncached).
    fn load() -> Topology {
        #[cfg(feature = "numa")]
        {
            match guarded(|| {
                hwlocality::Topology::new()
                    .map_err(|e| format!("hwloc could not load this machine's topology: {e}"))
            })
            .and_then(|t| {
                // hwloc honours HWLOC_SYNTHETIC and HWLOC_XMLFILE: then the
                // topology is not this machine and binding must not act.
                let origin = if t.is_this_system() {
                    Origin::Machine
                } else {
                    Origin::Imported
                };
                Self::from_hwloc(t, origin)
            }) {
                Ok(t) => t,
                Err(reason) => Self::single_because(Some(reason)),
            }
        }
        #[cfg(not(feature = "numa"))]
        {
            Self::single_because(Some("built without the `numa` feature".into()))
        }
    }

    /// One node holding every CPU available to this process (numbered from
    /// 0), with unknown memory.
    ///
    /// ```
    /// let t = zeropool::numa::Topology::single();
    /// assert_eq!(t.nodes().len(), 1);
    /// assert_eq!(t.cpus().len(), std::thread::available_parallelism().map_or(1, |n| n.get()));
    /// assert_eq!(t.fallback_reason(), None);
    /// ```
    pub fn single() -> Topology {
        Self::single_because(None)
    }

    fn single_because(fallback: Option<String>) -> Topology {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpus: Vec<usize> = (0..n).collect();
        Self::from_parts(
            vec![NodeInfo {
                index: 0,
                os_index: 0,
                cpus,
                memory: 0,
            }],
            Origin::Single,
            fallback,
            #[cfg(feature = "numa")]
            None,
        )
    }

    /// A topology from an hwloc synthetic description, such as
    /// `"pack:2 numa:1 core:2 pu:1"` (2 packages, each one node of 2 cores)
    /// or `"numa:4 core:2 pu:1"`; `numa:1(memory=1GB)` sets node memory.
    /// Binding memory on it does nothing.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the description when hwloc rejects it, or
    /// when zeropool was built without the `numa` feature.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// let t = zeropool::numa::Topology::synthetic("pack:2 numa:1 core:2 pu:1")?;
    /// assert_eq!(t.nodes().len(), 2);
    /// assert_eq!(t.nodes()[1].cpus, [2, 3]);
    /// assert_eq!(t.node_of_cpu(3), 1);
    /// assert!(zeropool::numa::Topology::synthetic("pack:two").is_err());
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn synthetic(description: &str) -> Result<Topology, Error> {
        #[cfg(feature = "numa")]
        {
            guarded(|| {
                hwlocality::Topology::builder()
                    .from_synthetic(description)
                    .map_err(|e| e.to_string())?
                    .build()
                    .map_err(|e| e.to_string())
            })
            .and_then(|t| Self::from_hwloc(t, Origin::Synthetic(description.to_string())))
            .map_err(|reason| {
                text_problem(
                    "synthetic",
                    description,
                    format!(
                        "an hwloc synthetic topology such as \"pack:2 numa:1 core:2 pu:1\" ({reason})"
                    ),
                )
            })
        }
        #[cfg(not(feature = "numa"))]
        {
            Err(text_problem(
                "synthetic",
                description,
                "synthetic topologies need zeropool built with the `numa` feature".into(),
            ))
        }
    }

    /// A topology from an hwloc XML description (as `lstopo file.xml` or
    /// `hwloc-gather-topology` write). Binding memory on it does nothing.
    ///
    /// # Errors
    /// [`Error::Invalid`] when hwloc rejects the XML, or when zeropool was
    /// built without the `numa` feature.
    ///
    /// ```
    /// use zeropool::numa::Topology;
    ///
    /// // A one-node machine with two CPUs and 1 GiB, as hwloc 2 writes it.
    /// let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
    /// <!DOCTYPE topology SYSTEM "hwloc2.dtd">
    /// <topology version="2.0">
    ///   <object type="Machine" os_index="0" cpuset="0x00000003" complete_cpuset="0x00000003"
    ///           allowed_cpuset="0x00000003" nodeset="0x00000001" complete_nodeset="0x00000001"
    ///           allowed_nodeset="0x00000001" gp_index="1">
    ///     <object type="NUMANode" os_index="0" cpuset="0x00000003" complete_cpuset="0x00000003"
    ///             nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="2"
    ///             local_memory="1073741824"/>
    ///     <object type="Core" os_index="0" cpuset="0x00000001" complete_cpuset="0x00000001"
    ///             nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="3">
    ///       <object type="PU" os_index="0" cpuset="0x00000001" complete_cpuset="0x00000001"
    ///               nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="4"/>
    ///     </object>
    ///     <object type="Core" os_index="1" cpuset="0x00000002" complete_cpuset="0x00000002"
    ///             nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="5">
    ///       <object type="PU" os_index="1" cpuset="0x00000002" complete_cpuset="0x00000002"
    ///               nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="6"/>
    ///     </object>
    ///   </object>
    /// </topology>"#;
    /// if cfg!(feature = "numa") {
    ///     let t = Topology::from_xml(xml)?;
    ///     assert_eq!(t.cpus(), [0, 1]);
    ///     assert_eq!(t.nodes()[0].memory, 1 << 30);
    ///     assert!(t.is_synthetic());
    /// } else {
    ///     assert!(Topology::from_xml(xml).is_err()); // needs hwloc
    /// }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn from_xml(xml: &str) -> Result<Topology, Error> {
        #[cfg(feature = "numa")]
        {
            guarded(|| {
                hwlocality::Topology::builder()
                    .from_xml(xml)
                    .map_err(|e| e.to_string())?
                    .build()
                    .map_err(|e| e.to_string())
            })
            .and_then(|t| Self::from_hwloc(t, Origin::Xml))
            .map_err(|reason| {
                text_problem("xml", "<xml>", format!("an hwloc XML topology ({reason})"))
            })
        }
        #[cfg(not(feature = "numa"))]
        {
            let _ = xml;
            Err(text_problem(
                "xml",
                "<xml>",
                "XML topologies need zeropool built with the `numa` feature".into(),
            ))
        }
    }

    /// Reads nodes and CPUs out of an hwloc topology.
    #[cfg(feature = "numa")]
    fn from_hwloc(topology: hwlocality::Topology, origin: Origin) -> Result<Topology, String> {
        use hwlocality::object::attributes::ObjectAttributes;
        use hwlocality::object::types::ObjectType;

        let nodes: Vec<NodeInfo> = topology
            .objects_with_type(ObjectType::NUMANode)
            .enumerate()
            .map(|(index, obj)| NodeInfo {
                index,
                os_index: obj.os_index().unwrap_or(index),
                // Object cpusets are finite: iter_set ends.
                cpus: obj
                    .cpuset()
                    .map(|set| set.iter_set().map(usize::from).collect())
                    .unwrap_or_default(),
                memory: match obj.attributes() {
                    Some(ObjectAttributes::NUMANode(attr)) => {
                        attr.local_memory().map_or(0, |m| m.get())
                    }
                    _ => 0,
                },
            })
            .collect();
        if nodes.is_empty() {
            return Err("hwloc found no NUMA node".into());
        }
        Ok(Self::from_parts(nodes, origin, None, Some(topology)))
    }

    fn from_parts(
        nodes: Vec<NodeInfo>,
        origin: Origin,
        fallback: Option<String>,
        #[cfg(feature = "numa")] hwloc: Option<hwlocality::Topology>,
    ) -> Topology {
        let mut cpus: Vec<usize> = nodes.iter().flat_map(|n| n.cpus.iter().copied()).collect();
        cpus.sort_unstable();
        cpus.dedup();
        let mut node_by_cpu = vec![usize::MAX; cpus.last().map_or(0, |&c| c + 1)];
        // A CPU listed by several nodes (a memory-side node sharing its
        // cpuset, as on KNL or with CXL memory) belongs to the first.
        for node in &nodes {
            for &cpu in &node.cpus {
                if node_by_cpu[cpu] == usize::MAX {
                    node_by_cpu[cpu] = node.index;
                }
            }
        }
        let mut cpu_nodes: Vec<usize> = cpus.iter().map(|&c| node_by_cpu[c]).collect();
        cpu_nodes.sort_unstable();
        cpu_nodes.dedup();
        for slot in &mut node_by_cpu {
            if *slot == usize::MAX {
                *slot = 0;
            }
        }
        Topology {
            inner: Arc::new(Inner {
                nodes,
                cpus,
                node_by_cpu,
                cpu_nodes,
                origin,
                fallback,
                #[cfg(feature = "numa")]
                hwloc,
            }),
        }
    }

    /// The NUMA nodes, in hwloc's logical order; index `i` is node `i`.
    ///
    /// ```
    /// for node in zeropool::numa::Topology::detect().nodes() {
    ///     println!("node {} (index {}): CPUs {:?}, {} bytes", node.os_index, node.index, node.cpus, node.memory);
    /// }
    /// # #[cfg(feature = "numa")] {
    /// let t = zeropool::numa::Topology::synthetic("numa:2(memory=1GB) core:1 pu:2")?;
    /// assert_eq!(t.nodes().iter().map(|n| n.cpus.clone()).collect::<Vec<_>>(), [[0, 1], [2, 3]]);
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.inner.nodes
    }

    /// Every CPU's OS number, ascending.
    ///
    /// ```
    /// let t = zeropool::numa::Topology::single();
    /// assert_eq!(t.cpus(), (0..t.cpus().len()).collect::<Vec<_>>());
    /// ```
    pub fn cpus(&self) -> &[usize] {
        &self.inner.cpus
    }

    /// The index of the node CPU `cpu` (an OS number, as `sched_getcpu`
    /// returns) belongs to. A CPU the topology does not know (offline, or
    /// beyond a synthetic machine) counts as node 0.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// let t = zeropool::numa::Topology::synthetic("pack:2 numa:1 core:2 pu:1")?;
    /// assert_eq!([0, 1, 2, 3].map(|cpu| t.node_of_cpu(cpu)), [0, 0, 1, 1]);
    /// assert_eq!(t.node_of_cpu(1000), 0); // unknown CPU
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    #[inline]
    pub fn node_of_cpu(&self, cpu: usize) -> usize {
        self.inner.node_by_cpu.get(cpu).copied().unwrap_or(0)
    }

    /// The indices of the nodes some CPU maps to (by
    /// [`node_of_cpu`](Self::node_of_cpu)), ascending: the nodes threads run
    /// on. Memory-only nodes (CXL or HBM memory, which hwloc lists with no
    /// CPUs or with the CPUs of the node before them) are not among them.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// // Each package: a node with its cores, then a memory-side node.
    /// let t = zeropool::numa::Topology::synthetic("pack:2 [numa] [numa(memory=4GB)] core:2 pu:1")?;
    /// assert_eq!(t.nodes().len(), 4);
    /// assert_eq!(t.cpu_nodes(), [0, 2]);
    /// # }
    /// assert_eq!(zeropool::numa::Topology::single().cpu_nodes(), [0]);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn cpu_nodes(&self) -> &[usize] {
        &self.inner.cpu_nodes
    }

    /// The index of the node whose OS number is `os_index`.
    ///
    /// ```
    /// let t = zeropool::numa::Topology::single();
    /// assert_eq!(t.node_index(0), Some(0));
    /// assert_eq!(t.node_index(7), None);
    /// ```
    pub fn node_index(&self, os_index: usize) -> Option<usize> {
        self.inner.nodes.iter().position(|n| n.os_index == os_index)
    }

    /// Why this topology stands in for the machine as one node, if it does:
    /// zeropool was built without the `numa` feature, or hwloc failed (its
    /// error). `None` for a topology hwloc loaded or was given.
    ///
    /// ```
    /// use zeropool::numa::Topology;
    ///
    /// assert_eq!(Topology::single().fallback_reason(), None); // asked for, not a fallback
    /// let detected = Topology::detect();
    /// if cfg!(not(feature = "numa")) {
    ///     assert_eq!(detected.fallback_reason(), Some("built without the `numa` feature"));
    /// }
    /// ```
    pub fn fallback_reason(&self) -> Option<&str> {
        self.inner.fallback.as_deref()
    }

    /// Whether this topology describes another machine (a synthetic or XML
    /// description, also one hwloc loaded because `HWLOC_SYNTHETIC` or
    /// `HWLOC_XMLFILE` is set): binding memory on it does nothing.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// assert!(zeropool::numa::Topology::synthetic("numa:2 core:1 pu:1")?.is_synthetic());
    /// # }
    /// assert!(!zeropool::numa::Topology::single().is_synthetic());
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn is_synthetic(&self) -> bool {
        matches!(
            self.inner.origin,
            Origin::Synthetic(_) | Origin::Xml | Origin::Imported
        )
    }

    /// Whether fresh memory can be bound to nodes: hwloc loaded this machine
    /// and reports it can bind a memory area.
    ///
    /// ```
    /// use zeropool::numa::Topology;
    ///
    /// assert!(!Topology::single().can_bind_memory()); // no hwloc behind it
    /// # #[cfg(feature = "numa")] {
    /// assert!(!Topology::synthetic("numa:2 core:1 pu:1")?.can_bind_memory()); // not this machine
    /// # }
    /// println!("binding: {}", Topology::detect().can_bind_memory());
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn can_bind_memory(&self) -> bool {
        #[cfg(feature = "numa")]
        {
            self.hwloc_machine().is_some_and(|t| {
                t.feature_support()
                    .memory_binding()
                    .is_some_and(|m| m.set_area() && m.bind_policy())
            })
        }
        #[cfg(not(feature = "numa"))]
        {
            false
        }
    }

    /// hwloc's topology, if hwloc loaded this one.
    #[cfg(feature = "numa")]
    pub(crate) fn hwloc(&self) -> Option<&hwlocality::Topology> {
        self.inner.hwloc.as_ref()
    }

    /// hwloc's topology, if it describes this machine (binding acts on it).
    #[cfg(feature = "numa")]
    pub(crate) fn hwloc_machine(&self) -> Option<&hwlocality::Topology> {
        self.hwloc()
            .filter(|_| self.inner.origin == Origin::Machine)
    }
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field("nodes", &self.inner.nodes)
            .field("origin", &self.inner.origin)
            .field("fallback", &self.inner.fallback)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Topology {
    /// One line: nodes, CPUs and where they come from.
    ///
    /// ```
    /// let t = zeropool::numa::Topology::single();
    /// assert!(t.to_string().starts_with("1 NUMA node, "));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (nodes, cpus) = (self.nodes().len(), self.cpus().len());
        write!(
            f,
            "{nodes} NUMA node{}, {cpus} CPU{}",
            plural(nodes),
            plural(cpus)
        )?;
        match (&self.inner.origin, &self.inner.fallback) {
            (_, Some(reason)) => write!(f, " (one node: {reason})"),
            (Origin::Machine, None) => f.write_str(" (hwloc)"),
            (Origin::Single, None) => f.write_str(" (one node)"),
            (Origin::Synthetic(desc), None) => write!(f, " (synthetic \"{desc}\")"),
            (Origin::Xml, None) => f.write_str(" (XML)"),
            (Origin::Imported, None) => {
                f.write_str(" (hwloc, not this machine: HWLOC_SYNTHETIC or HWLOC_XMLFILE is set)")
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// An [`Error::Invalid`] for a topology description given in code.
fn text_problem(key: &str, value: &str, accepted: String) -> Error {
    Error::Invalid(vec![Problem::new(
        key,
        format!("{value:?}"),
        Source::Code,
        accepted,
    )])
}

/// Runs an hwloc call, turning a panic in the bindings (they assert on
/// errors hwloc is not documented to return) into an error: NUMA support
/// must never take the pool down.
#[cfg(feature = "numa")]
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown error".into());
        Err(format!("hwloc failed: {what}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_holds_every_cpu_on_node_zero() {
        let t = Topology::single();
        assert_eq!(t.nodes().len(), 1);
        assert!(t.cpus().iter().all(|&c| t.node_of_cpu(c) == 0));
        assert_eq!(t.node_of_cpu(100_000), 0);
        assert!(!t.is_synthetic());
        assert!(!t.can_bind_memory());
    }

    #[test]
    fn first_node_claiming_a_cpu_owns_it() {
        let node = |index, cpus: Vec<usize>| NodeInfo {
            index,
            os_index: index,
            cpus,
            memory: 0,
        };
        let t = Topology::from_parts(
            vec![
                node(0, vec![0, 1]),
                node(1, vec![2, 3]),
                node(2, vec![2, 3]),
            ],
            Origin::Single,
            None,
            #[cfg(feature = "numa")]
            None,
        );
        assert_eq!(t.cpus(), [0, 1, 2, 3]);
        assert_eq!(
            (0..5).map(|c| t.node_of_cpu(c)).collect::<Vec<_>>(),
            [0, 0, 1, 1, 0]
        );
        assert_eq!(t.cpu_nodes(), [0, 1]);
    }

    #[cfg(not(feature = "numa"))]
    #[test]
    fn without_the_feature_detect_is_one_node_and_says_why() {
        let t = Topology::detect();
        assert_eq!(t.nodes().len(), 1);
        assert_eq!(
            t.fallback_reason(),
            Some("built without the `numa` feature")
        );
        assert!(t.to_string().contains("built without the `numa` feature"));
        let err = Topology::synthetic("numa:2").unwrap_err();
        assert!(err.to_string().contains("`numa` feature"), "{err}");
    }

    #[cfg(feature = "numa")]
    #[test]
    fn a_panic_in_hwloc_becomes_an_error() {
        let r: Result<(), String> = guarded(|| panic!("boom"));
        assert_eq!(r.unwrap_err(), "hwloc failed: boom");
    }
}
