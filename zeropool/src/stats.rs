//! Counters and the [`PoolStats`] snapshot.
//!
//! Each thread cache owns a [`Counters`] set that only its thread writes
//! (relaxed load + store, no read-modify-write); the pool keeps one more set
//! for exited threads and for the rare paths that run without a thread
//! cache. [`PoolStats`] is the sum of all of them plus what the shards
//! publish, taken without stopping any thread.

use crate::sync::Counter;
use serde::{Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// Per-object events, counted once each.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub(crate) enum Ev {
    /// Objects given with `put`/`put_batch`.
    Adopted,
    /// Guards turned into plain objects with `into_inner`.
    Detached,
    /// Objects the pool dropped, for any reason.
    Freed,
    /// Dropped because the budget had no room.
    Discards,
    /// Dropped because their capacity is below the smallest class.
    Undersize,
    /// Dropped because they were oversize requests or grew far past the largest class.
    Oversize,
    /// Dropped because `reset` panicked.
    ResetPanics,
    /// Dropped by `trim` or a lowered budget.
    Trimmed,
    /// A `Drop` of an object the pool freed panicked (caught).
    DropPanics,
}
const EVENTS: usize = 9;

/// Where a `get` was served from.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub(crate) enum Hit {
    Tls,
    Shared,
    /// From a sibling shard; also counted as `Shared`.
    Steal,
    Alloc,
}
const HITS: usize = 4;

/// One thread's (or the pool's fallback) counters.
#[derive(Debug)]
pub(crate) struct Counters {
    events: [Counter; EVENTS],
    /// `classes + 1` rows: the last one is for oversize requests.
    hits: Box<[[Counter; HITS]]>,
}

impl Counters {
    pub(crate) fn new(classes: usize) -> Self {
        Self {
            events: Default::default(),
            hits: (0..=classes).map(|_| Default::default()).collect(),
        }
    }

    #[inline(always)]
    pub(crate) fn event(&self, ev: Ev) -> &Counter {
        &self.events[ev as usize]
    }

    /// `class == classes` is the oversize row.
    #[inline(always)]
    pub(crate) fn hit(&self, class: usize, hit: Hit) -> &Counter {
        &self.hits[class][hit as usize]
    }

    /// Hits of kind `hit` over every class (the oversize row included).
    pub(crate) fn hits_total(&self, hit: Hit) -> u64 {
        self.hits.iter().map(|row| row[hit as usize].get()).sum()
    }

    /// Adds another set into this one (used when a thread exits).
    pub(crate) fn absorb(&self, other: &Counters) {
        for (a, b) in self.events.iter().zip(&other.events) {
            a.add_shared(b.get());
        }
        for (ra, rb) in self.hits.iter().zip(other.hits.iter()) {
            for (a, b) in ra.iter().zip(rb) {
                a.add_shared(b.get());
            }
        }
    }

    pub(crate) fn add_into(&self, t: &mut Totals) {
        for (acc, c) in t.events.iter_mut().zip(&self.events) {
            *acc = acc.wrapping_add(c.get());
        }
        for (row, counters) in t.hits.iter_mut().zip(self.hits.iter()) {
            for (acc, c) in row.iter_mut().zip(counters) {
                *acc = acc.wrapping_add(c.get());
            }
        }
    }
}

/// Plain sums of [`Counters`].
#[derive(Debug)]
pub(crate) struct Totals {
    events: [u64; EVENTS],
    hits: Vec<[u64; HITS]>,
}

impl Totals {
    pub(crate) fn new(classes: usize) -> Self {
        Self {
            events: [0; EVENTS],
            hits: vec![[0; HITS]; classes + 1],
        }
    }

    pub(crate) fn event(&self, ev: Ev) -> usize {
        self.events[ev as usize] as usize
    }

    pub(crate) fn hit(&self, class: usize, hit: Hit) -> usize {
        self.hits[class][hit as usize] as usize
    }

    pub(crate) fn hit_total(&self, hit: Hit) -> usize {
        self.hits.iter().map(|row| row[hit as usize] as usize).sum()
    }
}

/// A snapshot of a pool's counters and gauges.
///
/// Counters count only while statistics are on (`stats(true)`, the
/// default); the gauges (`*_retained`, `*_outstanding`, `bytes_reserved`,
/// `bytes_charged`) are always kept. Nothing is counted when an object
/// comes back on the hot path: the objects and bytes out with a guard are
/// the pool's care (allocated or adopted, and not freed or detached, a
/// gauge kept on slow paths) less the idle ones, and `puts` is derived.
/// Gauges are summed from many places without stopping the pool, so under
/// concurrent use they are approximate; when the pool is quiet they are
/// exact and satisfy
///
/// `allocations + adopted == objects_retained + objects_outstanding + detached + freed`.
///
/// # Example
/// ```
/// use zeropool::BufferPool;
///
/// let pool = BufferPool::new();
/// drop(pool.get(4096));
/// drop(pool.get(4096));
/// let s = pool.stats();
/// assert_eq!((s.gets, s.allocations, s.tls_hits), (2, 1, 1));
/// assert_eq!(s.hit_rate(), 0.5);
/// ```
///
/// # Display and serialization
/// `Display` prints a table of 80 to 100 columns: totals, memory with its
/// peaks and limits, the cap when one is set, then the size classes that
/// saw any activity and, on more than one NUMA node, the nodes.
///
/// `Serialize` writes every field under its own name, the classes and nodes
/// as arrays of objects, and the two durations (`wait_time_total`,
/// `wait_time_max`) as seconds in an `f64`.
///
/// ```
/// let pool = zeropool::BufferPool::new();
/// drop(pool.get(4096));
/// let s = pool.stats();
/// let table = s.to_string();
/// assert!(table.contains("hit rate"));
/// assert!(table.lines().any(|l| l.split_whitespace().next() == Some("4096")));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// Objects handed out (`get`, `get_owned`, `get_batch`, ...).
    pub gets: usize,
    /// Objects given back: guards dropped plus objects passed to `put`.
    pub puts: usize,
    /// Gets served from the calling thread's cache.
    pub tls_hits: usize,
    /// Gets served from a shard (the home shard or a sibling).
    pub shared_hits: usize,
    /// Of `shared_hits`, those taken from a sibling shard.
    pub steals: usize,
    /// Objects created because no idle one fitted (includes oversize requests).
    pub allocations: usize,
    /// Requests larger than the largest class, allocated and freed directly.
    pub oversize_requests: usize,
    /// Objects freed because keeping them would exceed the budget.
    pub discards: usize,
    /// Objects freed because their capacity is below the smallest class.
    pub undersize_drops: usize,
    /// Objects freed because they were oversize or grew past twice the largest class.
    pub oversize_drops: usize,
    /// Objects freed because a callback of their return (`reset`, `wipe`,
    /// `capacity_bytes` or `class_bytes`) panicked.
    pub reset_panics: usize,
    /// Objects whose `Drop` panicked while the pool freed them (the panic is
    /// caught; the object is counted in `freed` under its reason as well).
    pub drop_panics: usize,
    /// Objects freed by `trim` or by lowering the budget.
    pub trimmed: usize,
    /// All objects the pool freed, whatever the reason.
    pub freed: usize,
    /// Guards turned into plain objects with `into_inner`.
    pub detached: usize,
    /// Objects given to the pool with `put`/`put_batch`.
    pub adopted: usize,
    /// Times a thread found a shard lock held and had to wait.
    pub contention_events: usize,
    /// Idle objects in thread caches and shards.
    pub objects_retained: usize,
    /// Idle bytes in thread caches and shards.
    pub bytes_retained: usize,
    /// Guards alive right now.
    pub objects_outstanding: usize,
    /// Bytes held by live guards (capacity when handed out).
    pub bytes_outstanding: usize,
    /// Bytes reserved against the budget: an upper bound of `bytes_retained`
    /// at every instant, read atomically.
    pub bytes_reserved: usize,
    /// The budget (`max_total_memory`).
    pub max_total_memory: usize,
    /// High-water mark of idle bytes (of the bytes reserved for them, an
    /// upper bound never more than the budget).
    pub bytes_retained_peak: usize,
    /// High-water mark of bytes handed out, sampled at allocations and at
    /// each `stats()` call.
    pub bytes_outstanding_peak: usize,
    /// The cap on bytes handed out (`max_outstanding_memory`), if any.
    pub max_outstanding_memory: Option<usize>,
    /// Bytes charged against that cap: what live guards hold, plus grants
    /// to woken waiters that have not run yet (a detached object holds no
    /// charge: detaching ends the loan).
    pub bytes_charged: usize,
    /// Requests that had to wait for room under the cap.
    pub waits: usize,
    /// Requests waiting right now.
    pub waiting: usize,
    /// Time all served waiters waited, together (serialized in seconds).
    #[serde(serialize_with = "seconds")]
    pub wait_time_total: Duration,
    /// The longest time a served waiter waited (serialized in seconds).
    #[serde(serialize_with = "seconds")]
    pub wait_time_max: Duration,
    /// `get_timeout` calls that gave up.
    pub timeouts: usize,
    /// `Exhausted` errors returned (`try_get`, `get_timeout`).
    pub exhausted_errors: usize,
    /// Gets that went past the cap (policy `allocate` or `error`, or a
    /// request larger than the cap itself).
    pub cap_overshoots: usize,
    /// Per size class, ascending.
    pub classes: Vec<ClassStats>,
    /// How the pool places memory: the NUMA policy in force and, when it
    /// runs as one node for want of hwloc, why.
    pub numa: String,
    /// Per NUMA node (one entry on a one-node machine).
    pub nodes: Vec<NodeStats>,
    /// Fresh allocations whose memory could not be bound to their node.
    pub bind_failures: usize,
    /// Fresh allocations that `pinned` could not lock in RAM.
    pub pin_failures: usize,
    /// The first binding or pinning failure, with the memlock limit when
    /// that was the cause (the pool went on without it).
    pub numa_error: Option<String>,
    /// Reloads that failed (bad values, changed fixed keys, or a watched
    /// file that was corrupt or missing).
    pub reload_errors: usize,
    /// The error of the last failed reload, until a reload succeeds.
    pub last_reload_error: Option<String>,
}

/// Counters of one NUMA node.
///
/// ```
/// let pool = zeropool::BufferPool::new();
/// drop(pool.get(4096));
/// let nodes = pool.stats().nodes;
/// assert!(!nodes.is_empty());
/// assert!(nodes.iter().map(|n| n.bytes_retained).sum::<usize>() >= 4096);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NodeStats {
    /// The node's OS number.
    pub node: usize,
    /// Gets served without allocating to threads running on this node.
    pub local_hits: usize,
    /// Objects freed on another node that came back to this node's shards.
    pub remote_returns: usize,
    /// Fresh objects whose home is this node.
    pub allocations: usize,
    /// Idle bytes in this node's shards and its threads' caches.
    pub bytes_retained: usize,
}

/// Counters of one size class.
///
/// ```
/// let pool = zeropool::BufferPool::builder().size_classes(&[4096, 65536]).build()?;
/// drop(pool.get(4000));
/// let class = &pool.stats().classes[0];
/// assert_eq!((class.size, class.gets, class.allocations), (4096, 1, 1));
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClassStats {
    /// The class size in bytes.
    pub size: usize,
    /// Gets routed to this class.
    pub gets: usize,
    /// Of those, served from the thread cache.
    pub tls_hits: usize,
    /// Of those, served from a shard.
    pub shared_hits: usize,
    /// Of those, allocated fresh.
    pub allocations: usize,
    /// Idle objects of this class in the shards (thread caches publish only
    /// their totals, to keep the hot path short).
    pub shard_objects: usize,
}

impl PoolStats {
    /// Fraction of gets served without allocating, in `0.0..=1.0` (0 when
    /// there were no gets).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// assert_eq!(pool.stats().hit_rate(), 0.0);
    /// for _ in 0..4 {
    ///     drop(pool.get(4096)); // one allocation, then three hits
    /// }
    /// assert_eq!(pool.stats().hit_rate(), 0.75);
    /// ```
    pub fn hit_rate(&self) -> f64 {
        if self.gets == 0 {
            0.0
        } else {
            (self.tls_hits + self.shared_hits) as f64 / self.gets as f64
        }
    }

    /// Whether the object ledger balances:
    /// `allocations + adopted == objects_retained + objects_outstanding + detached + freed`.
    ///
    /// The left side and `detached` and `freed` are counters (kept while
    /// stats are on); `objects_retained` and `objects_outstanding` are gauges
    /// the pool keeps whatever the setting, so a counter that missed or
    /// doubled an event makes this false. Exact only when no other thread is
    /// using the pool and stats were on since it was built.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let kept = pool.get(4096).into_inner();   // detached
    /// let held = pool.get(65536);               // outstanding
    /// drop(pool.get(1024));                     // retained
    /// pool.put(Vec::with_capacity(10));         // adopted, freed (below the smallest class)
    /// let s = pool.stats();
    /// assert_eq!((s.allocations, s.adopted), (3, 1));
    /// assert_eq!((s.objects_retained, s.objects_outstanding, s.detached, s.freed), (1, 1, 1, 1));
    /// assert!(s.is_balanced());
    /// # drop((kept, held));
    /// ```
    pub fn is_balanced(&self) -> bool {
        self.allocations + self.adopted
            == self.objects_retained + self.objects_outstanding + self.detached + self.freed
    }
}

/// Serializes a duration as seconds in an `f64`.
fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Width of the row labels, and of the value right after them.
const LABEL: usize = 12;
const VALUE: usize = 10;

impl fmt::Display for PoolStats {
    /// A table: totals, memory, the cap and NUMA when they matter, then the
    /// active size classes and, on more than one node, the nodes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut table = String::new();
        self.table(&mut table)?;
        f.write_str(table.trim_end())
    }
}

impl PoolStats {
    /// Writes the `Display` table, each line ending in a newline.
    fn table(&self, f: &mut String) -> fmt::Result {
        use fmt::Write as _;
        let hit_rate = if self.gets == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", self.hit_rate() * 100.0)
        };
        row(
            f,
            "gets",
            self.gets,
            &[
                format!("hit rate {hit_rate}"),
                format!("tls {}", self.tls_hits),
                format!("shared {} (stolen {})", self.shared_hits, self.steals),
                format!("alloc {}", self.allocations),
            ],
        )?;
        row(
            f,
            "returns",
            self.puts,
            &[
                format!("adopted {}", self.adopted),
                format!("detached {}", self.detached),
                format!("oversize requests {}", self.oversize_requests),
                format!("contention {}", self.contention_events),
            ],
        )?;
        row(
            f,
            "freed",
            self.freed,
            &[
                format!("budget {}", self.discards),
                format!("undersize {}", self.undersize_drops),
                format!("oversize {}", self.oversize_drops),
                format!("reset panics {}", self.reset_panics),
                format!("trimmed {}", self.trimmed),
            ],
        )?;
        row(
            f,
            "drop panics",
            self.drop_panics,
            &["caught while the pool freed objects".to_string()],
        )?;
        row(
            f,
            "retained",
            Bytes(self.bytes_retained),
            &[
                format!("in {} objects", self.objects_retained),
                format!("peak {}", Bytes(self.bytes_retained_peak)),
                format!("budget {}", Bytes(self.max_total_memory)),
                format!("reserved {}", Bytes(self.bytes_reserved)),
            ],
        )?;
        row(
            f,
            "outstanding",
            Bytes(self.bytes_outstanding),
            &[
                format!("in {} objects", self.objects_outstanding),
                format!("peak {}", Bytes(self.bytes_outstanding_peak)),
            ],
        )?;
        if let Some(cap) = self.max_outstanding_memory {
            row(
                f,
                "cap",
                Bytes(cap),
                &[
                    format!("charged {}", Bytes(self.bytes_charged)),
                    format!("waiting {}", self.waiting),
                    format!("exhausted {}", self.exhausted_errors),
                    format!("overshoots {}", self.cap_overshoots),
                ],
            )?;
            row(
                f,
                "waits",
                self.waits,
                &[
                    format!("total {}", Secs(self.wait_time_total)),
                    format!("longest {}", Secs(self.wait_time_max)),
                    format!("timeouts {}", self.timeouts),
                ],
            )?;
        }
        if self.nodes.len() > 1
            || self.bind_failures + self.pin_failures > 0
            || self.numa_error.is_some()
        {
            writeln!(f, "{:<LABEL$}{}", "numa", self.numa)?;
            if self.bind_failures + self.pin_failures > 0 {
                row(
                    f,
                    "",
                    "",
                    &[
                        format!("bind failures {}", self.bind_failures),
                        format!("pin failures {}", self.pin_failures),
                    ],
                )?;
            }
            if let Some(e) = &self.numa_error {
                writeln!(f, "{:<LABEL$}first error: {e}", "")?;
            }
        }
        if self.reload_errors > 0 {
            let last = self.last_reload_error.as_deref().unwrap_or("-");
            row(
                f,
                "reload err",
                self.reload_errors,
                &[format!("last: {last}")],
            )?;
        }

        let active: Vec<&ClassStats> = self
            .classes
            .iter()
            .filter(|c| c.gets > 0 || c.shard_objects > 0)
            .collect();
        if !active.is_empty() {
            writeln!(
                f,
                "\n{:>12} {:>12} {:>12} {:>12} {:>12} {:>15}",
                "class", "gets", "tls", "shared", "alloc", "idle in shards"
            )?;
            for c in &active {
                writeln!(
                    f,
                    "{:>12} {:>12} {:>12} {:>12} {:>12} {:>15}",
                    c.size, c.gets, c.tls_hits, c.shared_hits, c.allocations, c.shard_objects
                )?;
            }
        }
        let idle = self.classes.len() - active.len();
        if idle > 0 {
            writeln!(
                f,
                "({idle} of {} classes without activity not shown)",
                self.classes.len()
            )?;
        }
        if self.nodes.len() > 1 {
            writeln!(
                f,
                "\n{:>12} {:>12} {:>15} {:>12} {:>12}",
                "node", "local hits", "remote returns", "alloc", "retained"
            )?;
            for n in &self.nodes {
                writeln!(
                    f,
                    "{:>12} {:>12} {:>15} {:>12} {:>12}",
                    n.node,
                    n.local_hits,
                    n.remote_returns,
                    n.allocations,
                    Bytes(n.bytes_retained)
                )?;
            }
        }
        Ok(())
    }
}

/// One totals row: a label, its main value right-aligned, then details.
fn row(
    f: &mut impl fmt::Write,
    label: &str,
    value: impl fmt::Display,
    details: &[String],
) -> fmt::Result {
    write!(f, "{label:<LABEL$}{value:>VALUE$}")?;
    for d in details {
        write!(f, "   {d}")?;
    }
    writeln!(f)
}

/// A byte count in binary units: exact below 1 KiB and on whole units,
/// else one decimal (`1.5 MiB`).
struct Bytes(usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let n = self.0 as u64;
        let mut unit = 0;
        while unit + 1 < UNITS.len() && n >> (10 * (unit + 1)) > 0 {
            unit += 1;
        }
        let text = if n.is_multiple_of(1 << (10 * unit)) {
            format!("{} {}", n >> (10 * unit), UNITS[unit])
        } else {
            let v = n as f64 / (1u64 << (10 * unit)) as f64;
            format!("{v:.1} {}", UNITS[unit])
        };
        f.pad(&text)
    }
}

/// A duration with three significant digits at most (`1.25ms`, `3.2s`).
struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs_f64();
        let text = if self.0.is_zero() {
            "0s".to_string()
        } else if s < 1e-3 {
            format!("{:.0}µs", s * 1e6)
        } else if s < 1.0 {
            format!("{:.2}ms", s * 1e3)
        } else {
            format!("{s:.2}s")
        };
        f.pad(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_exact_on_whole_units() {
        let shown = |n| Bytes(n).to_string();
        assert_eq!(shown(0), "0 B");
        assert_eq!(shown(1023), "1023 B");
        assert_eq!(shown(4096), "4 KiB");
        assert_eq!(shown(1536), "1.5 KiB");
        assert_eq!(shown(64 << 20), "64 MiB");
        assert_eq!(shown((1 << 30) + (1 << 29)), "1.5 GiB");
    }

    #[test]
    fn durations_keep_three_digits() {
        let shown = |d| Secs(d).to_string();
        assert_eq!(shown(Duration::ZERO), "0s");
        assert_eq!(shown(Duration::from_micros(250)), "250µs");
        assert_eq!(shown(Duration::from_micros(1250)), "1.25ms");
        assert_eq!(shown(Duration::from_millis(3200)), "3.20s");
    }
}
