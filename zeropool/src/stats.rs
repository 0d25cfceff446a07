//! Counters and the [`PoolStats`] snapshot.
//!
//! Each thread cache owns a [`Counters`] set that only its thread writes
//! (relaxed load + store, no read-modify-write); the pool keeps one more set
//! for exited threads and for the rare paths that run without a thread
//! cache. [`PoolStats`] is the sum of all of them plus what the shards
//! publish, taken without stopping any thread.

use crate::sync::Counter;
use std::fmt;

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
}
const EVENTS: usize = 8;

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
/// default); the gauges (`*_retained`, `bytes_reserved`) are always kept.
/// Nothing is counted when an object comes back on the hot path: returns,
/// and the objects out with a guard, are derived from the objects in the
/// pool's care (allocated or adopted, and not freed or detached) less the
/// idle ones.
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Objects freed because their `reset` panicked.
    pub reset_panics: usize,
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
    /// Bytes charged against that cap: live guards plus detached objects
    /// not yet given back.
    pub bytes_charged: usize,
    /// Requests that had to wait for room under the cap.
    pub waits: usize,
    /// Requests waiting right now.
    pub waiting: usize,
    /// Time all served waiters waited, together.
    pub wait_time_total: std::time::Duration,
    /// The longest time a served waiter waited.
    pub wait_time_max: std::time::Duration,
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    pub fn hit_rate(&self) -> f64 {
        if self.gets == 0 {
            0.0
        } else {
            (self.tls_hits + self.shared_hits) as f64 / self.gets as f64
        }
    }

    /// Whether the object ledger balances:
    /// `allocations + adopted == objects_retained + objects_outstanding + detached + freed`.
    /// Exact only when no other thread is using the pool.
    pub fn is_balanced(&self) -> bool {
        self.allocations + self.adopted
            == self.objects_retained + self.objects_outstanding + self.detached + self.freed
    }
}

impl fmt::Display for PoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "gets {} (tls {}, shared {}, alloc {}), hit rate {:.1}%",
            self.gets,
            self.tls_hits,
            self.shared_hits,
            self.allocations,
            self.hit_rate() * 100.0
        )?;
        writeln!(
            f,
            "retained {} B in {} objects (budget {} B), outstanding {} B in {} objects",
            self.bytes_retained,
            self.objects_retained,
            self.max_total_memory,
            self.bytes_outstanding,
            self.objects_outstanding
        )?;
        write!(
            f,
            "freed {} (budget {}, undersize {}, oversize {}, reset panics {}, trimmed {}), contention {}",
            self.freed,
            self.discards,
            self.undersize_drops,
            self.oversize_drops,
            self.reset_panics,
            self.trimmed,
            self.contention_events
        )?;
        if let Some(cap) = self.max_outstanding_memory {
            write!(
                f,
                "\ncap {} B: charged {} B, waits {} (now {}, longest {:?}), timeouts {}, exhausted {}, overshoots {}",
                cap,
                self.bytes_charged,
                self.waits,
                self.waiting,
                self.wait_time_max,
                self.timeouts,
                self.exhausted_errors,
                self.cap_overshoots
            )?;
        }
        Ok(())
    }
}
