//! The calling thread's node: the CPU it runs on, read with `sched_getcpu`
//! and cached per thread, mapped through the topology.
//!
//! The cache holds the CPU, not the node, so one thread-local serves every
//! topology (the machine's, and synthetic ones in tests). It is re-read
//! every [`REFRESH_EVERY`] lookups, so a thread the scheduler moves is seen
//! on its new node soon after, at the cost of one `sched_getcpu` (a vDSO
//! call on Linux, not a syscall) per that many lookups.

use super::Topology;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

/// Lookups served from a thread's cached CPU before it is read again.
///
/// ```
/// use zeropool::numa::{NodeLocator, Topology, REFRESH_EVERY};
///
/// // A thread moved by the scheduler is seen on its new node within this
/// // many lookups (or at once after `NodeLocator::refresh`).
/// assert_eq!(REFRESH_EVERY, 1024);
/// let locator = NodeLocator::new(Topology::detect());
/// for _ in 0..2 * REFRESH_EVERY {
///     assert!(locator.current_node() < locator.topology().nodes().len());
/// }
/// ```
pub const REFRESH_EVERY: u32 = 1024;

/// A stand-in for `sched_getcpu`: the CPU (OS number) the calling thread
/// runs on. Tests inject one to play a thread on any node of a synthetic
/// topology.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use zeropool::numa::{CpuLookup, NodeLocator, Topology};
///
/// static CPU: AtomicUsize = AtomicUsize::new(0);
/// let lookup: CpuLookup = Arc::new(|| CPU.load(Ordering::Relaxed));
/// let locator = NodeLocator::new(Topology::single()).with_cpu_lookup(lookup);
/// CPU.store(1, Ordering::Relaxed);
/// assert_eq!(locator.current_cpu(), 1); // asked on every lookup, never cached
/// ```
pub type CpuLookup = Arc<dyn Fn() -> usize + Send + Sync>;

/// Finds the node the calling thread runs on.
///
/// ```
/// # #[cfg(feature = "numa")] {
/// use std::sync::Arc;
/// use zeropool::numa::{NodeLocator, Topology};
///
/// let t = Topology::synthetic("pack:2 numa:1 core:2 pu:1")?;
/// let on_cpu_3 = NodeLocator::new(t.clone()).with_cpu_lookup(Arc::new(|| 3));
/// assert_eq!(on_cpu_3.current_node(), 1);
/// let real = NodeLocator::new(t);
/// assert!(real.current_node() < 2);
/// # }
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Clone)]
pub struct NodeLocator {
    topology: Topology,
    lookup: Option<CpuLookup>,
    /// The topology has one node: no CPU needs reading.
    single: bool,
}

impl NodeLocator {
    /// Locates threads in `topology` by the CPU they run on.
    ///
    /// ```
    /// use zeropool::numa::{NodeLocator, Topology};
    ///
    /// let one = NodeLocator::new(Topology::single());
    /// assert_eq!(one.current_node(), 0); // one node: no CPU is even read
    /// ```
    pub fn new(topology: Topology) -> NodeLocator {
        NodeLocator {
            single: topology.nodes().len() == 1,
            topology,
            lookup: None,
        }
    }

    /// Uses `lookup` instead of `sched_getcpu`, called on every lookup (not
    /// cached: it serves tests and simulations).
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// use std::sync::Arc;
    /// use zeropool::numa::{NodeLocator, Topology};
    ///
    /// let t = Topology::synthetic("numa:4 core:2 pu:1")?; // CPUs 0-7, two per node
    /// let on_cpu_5 = NodeLocator::new(t).with_cpu_lookup(Arc::new(|| 5));
    /// assert_eq!((on_cpu_5.current_cpu(), on_cpu_5.current_node()), (5, 2));
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn with_cpu_lookup(mut self, lookup: CpuLookup) -> NodeLocator {
        self.lookup = Some(lookup);
        self.single = false;
        self
    }

    /// The topology threads are located in.
    ///
    /// ```
    /// use zeropool::numa::{NodeLocator, Topology};
    ///
    /// let locator = NodeLocator::new(Topology::single());
    /// assert_eq!(locator.topology().nodes().len(), 1);
    /// ```
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The CPU the calling thread runs on (as of its last refresh), or the
    /// injected lookup's answer.
    ///
    /// ```
    /// use zeropool::numa::{NodeLocator, Topology};
    ///
    /// let locator = NodeLocator::new(Topology::detect());
    /// let cpu = locator.current_cpu(); // sched_getcpu on Linux, 0 elsewhere
    /// assert!(locator.topology().node_of_cpu(cpu) < locator.topology().nodes().len());
    /// ```
    #[inline]
    pub fn current_cpu(&self) -> usize {
        match &self.lookup {
            Some(lookup) => lookup(),
            None => cached_cpu(),
        }
    }

    /// The index of the node the calling thread runs on.
    ///
    /// ```
    /// use zeropool::numa::{NodeLocator, Topology};
    ///
    /// let locator = NodeLocator::new(Topology::detect());
    /// let node = locator.current_node();
    /// println!("this thread runs on NUMA node {}", locator.topology().nodes()[node].os_index);
    /// ```
    #[inline]
    pub fn current_node(&self) -> usize {
        if self.single {
            return 0;
        }
        self.topology.node_of_cpu(self.current_cpu())
    }

    /// Makes the calling thread's next lookup read its CPU again (after
    /// pinning the thread elsewhere, say).
    ///
    /// ```
    /// use zeropool::numa::{NodeLocator, Topology};
    ///
    /// let locator = NodeLocator::new(Topology::detect());
    /// // ... after moving this thread to another CPU (sched_setaffinity):
    /// NodeLocator::refresh();
    /// let cpu = locator.current_cpu(); // read from the OS again
    /// assert!(locator.topology().node_of_cpu(cpu) < locator.topology().nodes().len());
    /// ```
    pub fn refresh() {
        // A thread being torn down has no cache left to refresh.
        let _ = CPU.try_with(|c| c.set(CpuCache::EMPTY));
    }
}

impl fmt::Debug for NodeLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeLocator")
            .field("topology", &self.topology)
            .field("injected_lookup", &self.lookup.is_some())
            .finish()
    }
}

/// A thread's CPU and how many more lookups it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuCache {
    cpu: usize,
    left: u32,
}

impl CpuCache {
    const EMPTY: CpuCache = CpuCache { cpu: 0, left: 0 };

    /// The cached CPU, read with `read` when used up.
    #[inline]
    fn next(&mut self, read: impl FnOnce() -> usize) -> usize {
        if self.left == 0 {
            self.cpu = read();
            self.left = REFRESH_EVERY;
        }
        self.left -= 1;
        self.cpu
    }
}

thread_local! {
    static CPU: Cell<CpuCache> = const { Cell::new(CpuCache::EMPTY) };
}

#[inline]
fn cached_cpu() -> usize {
    CPU.try_with(|c| {
        let mut cache = c.get();
        let cpu = cache.next(os_cpu);
        c.set(cache);
        cpu
    })
    // During thread-local teardown: ask the OS directly.
    .unwrap_or_else(|_| os_cpu())
}

/// The CPU the calling thread runs on right now (0 where the OS cannot say,
/// and under Miri, which cannot call `sched_getcpu`).
pub(crate) fn os_cpu() -> usize {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        // SAFETY: sched_getcpu takes no arguments and touches no memory of
        // ours; it only returns a number or -1 (with errno set).
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).unwrap_or(0)
    }
    #[cfg(any(not(target_os = "linux"), miri))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_reads_the_cpu_once_per_refresh_period() {
        let mut cache = CpuCache::EMPTY;
        let mut reads = 0;
        let mut cpu = 5;
        for i in 0..(3 * REFRESH_EVERY as usize) {
            let seen = cache.next(|| {
                reads += 1;
                cpu
            });
            // The thread "moves" right after the first read of each period.
            assert_eq!(seen, 5 + i / REFRESH_EVERY as usize);
            if i % REFRESH_EVERY as usize == 0 {
                cpu += 1;
            }
        }
        assert_eq!(reads, 3);
    }

    #[test]
    fn refresh_makes_the_next_lookup_read_again() {
        std::thread::spawn(|| {
            let _ = cached_cpu();
            assert_ne!(CPU.with(Cell::get).left, 0);
            NodeLocator::refresh();
            assert_eq!(CPU.with(Cell::get), CpuCache::EMPTY);
            let cpu = cached_cpu();
            assert_eq!(CPU.with(Cell::get).left, REFRESH_EVERY - 1);
            assert_eq!(CPU.with(Cell::get).cpu, cpu);
        })
        .join()
        .unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot call sched_getcpu: os_cpu is 0 there")]
    fn the_os_cpu_is_one_the_machine_has() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Affinity can hide CPUs from available_parallelism, so only a sanity
        // bound: the OS number is below the machine's possible CPU count.
        assert!(os_cpu() < 4096.max(cpus));
    }

    #[test]
    fn one_node_needs_no_lookup() {
        let locator = NodeLocator::new(Topology::single());
        assert_eq!(locator.current_node(), 0);
        let injected = NodeLocator::new(Topology::single()).with_cpu_lookup(Arc::new(|| 9));
        assert_eq!(injected.current_cpu(), 9);
        assert_eq!(injected.current_node(), 0);
    }
}
