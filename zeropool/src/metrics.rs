//! [`Pool::publish_metrics`]: the [`PoolStats`] through the `metrics`
//! facade (feature `metrics`). The application installs the recorder
//! (Prometheus, StatsD, ...); without one, publishing costs one `stats()`.
//!
//! ```text
//! publish_metrics(name) ─ stats() ─ every counter: counter!(..).absolute(v)
//!                                   every gauge:   gauge!(..).set(v)
//!                         labels: pool = name; class = size in bytes; node = OS index
//! publish_metrics_every(name, every) ─ publish now, then thread "zeropool-metrics":
//!                         sleep `every` ─ publish ─ ... until the handle drops
//! ```
//!
//! Nothing here runs on the pool's hot path: the values are read from a
//! snapshot, as `stats()` reads them.

use crate::stats::{ClassStats, NodeStats, PoolStats};
use crate::{Pool, Poolable};
use metrics::{Label, Unit};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How a metric reads its value from a snapshot.
enum Read<S> {
    /// Monotonic: published with `Counter::absolute`.
    Counter(fn(&S) -> usize),
    /// Published with `Gauge::set`.
    Gauge(fn(&S) -> f64),
}

/// One published metric.
struct Metric<S> {
    name: &'static str,
    unit: Unit,
    help: &'static str,
    read: Read<S>,
}

/// A counter named `zeropool_<field>_total`.
macro_rules! counter {
    ($name:literal, $field:ident, $help:literal) => {
        Metric {
            name: $name,
            unit: Unit::Count,
            help: $help,
            read: Read::Counter(|s| s.$field),
        }
    };
}

/// A gauge named `zeropool_<field>`.
macro_rules! gauge {
    ($name:literal, $unit:ident, |$s:ident| $value:expr, $help:literal) => {
        Metric {
            name: $name,
            unit: Unit::$unit,
            help: $help,
            read: Read::Gauge(|$s| $value),
        }
    };
    ($name:literal, $unit:ident, $field:ident, $help:literal) => {
        gauge!($name, $unit, |s| s.$field as f64, $help)
    };
}

/// Every counter and gauge of [`PoolStats`], labelled `pool`.
const POOL: &[Metric<PoolStats>] = &[
    counter!("zeropool_gets_total", gets, "Objects handed out."),
    counter!(
        "zeropool_puts_total",
        puts,
        "Objects given back: guards dropped plus objects put."
    ),
    counter!(
        "zeropool_tls_hits_total",
        tls_hits,
        "Gets served from the calling thread's cache."
    ),
    counter!(
        "zeropool_shared_hits_total",
        shared_hits,
        "Gets served from a shard."
    ),
    counter!(
        "zeropool_steals_total",
        steals,
        "Shared hits taken from a sibling shard."
    ),
    counter!(
        "zeropool_allocations_total",
        allocations,
        "Objects created because no idle one fitted."
    ),
    counter!(
        "zeropool_oversize_requests_total",
        oversize_requests,
        "Requests larger than the largest class."
    ),
    counter!(
        "zeropool_discards_total",
        discards,
        "Objects freed because the budget had no room."
    ),
    counter!(
        "zeropool_undersize_drops_total",
        undersize_drops,
        "Objects freed for a capacity below the smallest class."
    ),
    counter!(
        "zeropool_oversize_drops_total",
        oversize_drops,
        "Objects freed for being oversize."
    ),
    counter!(
        "zeropool_reset_panics_total",
        reset_panics,
        "Objects freed because a callback of their return panicked."
    ),
    counter!(
        "zeropool_drop_panics_total",
        drop_panics,
        "Objects whose Drop panicked while the pool freed them."
    ),
    counter!(
        "zeropool_trimmed_total",
        trimmed,
        "Objects freed by trim or a lowered budget."
    ),
    counter!(
        "zeropool_freed_total",
        freed,
        "Objects freed, whatever the reason."
    ),
    counter!(
        "zeropool_detached_total",
        detached,
        "Guards turned into plain objects with into_inner."
    ),
    counter!(
        "zeropool_adopted_total",
        adopted,
        "Objects given to the pool with put."
    ),
    counter!(
        "zeropool_contention_events_total",
        contention_events,
        "Times a thread waited for a shard lock."
    ),
    counter!(
        "zeropool_waits_total",
        waits,
        "Requests that waited for room under the cap."
    ),
    counter!(
        "zeropool_timeouts_total",
        timeouts,
        "get_timeout calls that gave up."
    ),
    counter!(
        "zeropool_exhausted_errors_total",
        exhausted_errors,
        "Exhausted errors returned."
    ),
    counter!(
        "zeropool_cap_overshoots_total",
        cap_overshoots,
        "Gets that went past the cap."
    ),
    counter!(
        "zeropool_bind_failures_total",
        bind_failures,
        "Allocations not bound to their NUMA node."
    ),
    counter!(
        "zeropool_pin_failures_total",
        pin_failures,
        "Allocations that could not be locked in RAM."
    ),
    counter!(
        "zeropool_reload_errors_total",
        reload_errors,
        "Config reloads that failed."
    ),
    gauge!(
        "zeropool_objects_retained",
        Count,
        objects_retained,
        "Idle objects in thread caches and shards."
    ),
    gauge!(
        "zeropool_bytes_retained",
        Bytes,
        bytes_retained,
        "Idle bytes in thread caches and shards."
    ),
    gauge!(
        "zeropool_bytes_retained_peak",
        Bytes,
        bytes_retained_peak,
        "High-water mark of idle bytes."
    ),
    gauge!(
        "zeropool_objects_outstanding",
        Count,
        objects_outstanding,
        "Guards alive."
    ),
    gauge!(
        "zeropool_bytes_outstanding",
        Bytes,
        bytes_outstanding,
        "Bytes held by live guards."
    ),
    gauge!(
        "zeropool_bytes_outstanding_peak",
        Bytes,
        bytes_outstanding_peak,
        "High-water mark of bytes handed out."
    ),
    gauge!(
        "zeropool_bytes_reserved",
        Bytes,
        bytes_reserved,
        "Bytes reserved against the budget."
    ),
    gauge!(
        "zeropool_max_total_memory",
        Bytes,
        max_total_memory,
        "The budget of idle bytes."
    ),
    gauge!(
        "zeropool_max_outstanding_memory",
        Bytes,
        |s| s.max_outstanding_memory.unwrap_or(0) as f64,
        "The cap on bytes handed out; 0 when there is none."
    ),
    gauge!(
        "zeropool_bytes_charged",
        Bytes,
        bytes_charged,
        "Bytes charged against the cap."
    ),
    gauge!(
        "zeropool_waiting",
        Count,
        waiting,
        "Requests waiting for room under the cap."
    ),
    gauge!(
        "zeropool_wait_time_total_seconds",
        Seconds,
        |s| s.wait_time_total.as_secs_f64(),
        "Time all served waiters waited, together (only grows)."
    ),
    gauge!(
        "zeropool_wait_time_max_seconds",
        Seconds,
        |s| s.wait_time_max.as_secs_f64(),
        "The longest time a served waiter waited."
    ),
];

/// Every counter and gauge of [`ClassStats`], labelled `pool` and `class`.
const CLASS: &[Metric<ClassStats>] = &[
    counter!(
        "zeropool_class_gets_total",
        gets,
        "Gets routed to the size class."
    ),
    counter!(
        "zeropool_class_tls_hits_total",
        tls_hits,
        "Gets of the class served from a thread cache."
    ),
    counter!(
        "zeropool_class_shared_hits_total",
        shared_hits,
        "Gets of the class served from a shard."
    ),
    counter!(
        "zeropool_class_allocations_total",
        allocations,
        "Objects of the class allocated fresh."
    ),
    gauge!(
        "zeropool_class_shard_objects",
        Count,
        shard_objects,
        "Idle objects of the class in the shards."
    ),
];

/// Every counter and gauge of [`NodeStats`], labelled `pool` and `node`.
const NODE: &[Metric<NodeStats>] = &[
    counter!(
        "zeropool_node_local_hits_total",
        local_hits,
        "Gets served without allocating to threads on the node."
    ),
    counter!(
        "zeropool_node_remote_returns_total",
        remote_returns,
        "Objects freed on another node that came back."
    ),
    counter!(
        "zeropool_node_allocations_total",
        allocations,
        "Fresh objects whose home is the node."
    ),
    gauge!(
        "zeropool_node_bytes_retained",
        Bytes,
        bytes_retained,
        "Idle bytes in the node's shards and caches."
    ),
];

/// Describes each metric of `table` (unit and help text) to the recorder.
fn describe<S>(table: &[Metric<S>]) {
    for m in table {
        match m.read {
            Read::Counter(_) => metrics::describe_counter!(m.name, m.unit, m.help),
            Read::Gauge(_) => metrics::describe_gauge!(m.name, m.unit, m.help),
        }
    }
}

/// Records each metric of `table`, read from `stats`, with `labels`.
fn record<S>(table: &[Metric<S>], stats: &S, labels: &[Label]) {
    for m in table {
        match m.read {
            Read::Counter(read) => {
                metrics::counter!(m.name, labels.iter()).absolute(read(stats) as u64)
            }
            Read::Gauge(read) => metrics::gauge!(m.name, labels.iter()).set(read(stats)),
        }
    }
}

impl PoolStats {
    /// Publishes this snapshot through the `metrics` facade, labelled
    /// `pool = name` (feature `metrics`). [`Pool::publish_metrics`] takes
    /// the snapshot and publishes it in one call.
    ///
    /// Every counter goes out as a `metrics` counter set with `absolute`,
    /// named `zeropool_<field>_total`; every gauge with `set`, named
    /// `zeropool_<field>` (`zeropool_bytes_retained`,
    /// `zeropool_bytes_outstanding_peak`, ...). The two durations are
    /// gauges in seconds, `zeropool_wait_time_total_seconds` and
    /// `zeropool_wait_time_max_seconds` (facade counters hold integers);
    /// `zeropool_max_outstanding_memory` is 0 when no cap is set. Each size
    /// class adds `zeropool_class_{gets,tls_hits,shared_hits,allocations}_total`
    /// and `zeropool_class_shard_objects`, labelled `class` (its size in
    /// bytes); each NUMA node adds
    /// `zeropool_node_{local_hits,remote_returns,allocations}_total` and
    /// `zeropool_node_bytes_retained`, labelled `node` (its OS index). The
    /// text fields (`numa`, `numa_error`, `last_reload_error`) are not
    /// published. Each metric is also described (unit and help text).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// drop(pool.get(4096));
    /// let stats = pool.stats();
    /// // Goes to the recorder the application installed (none here: a no-op).
    /// stats.publish_metrics("uploads");
    /// ```
    pub fn publish_metrics(&self, name: &str) {
        describe(POOL);
        describe(CLASS);
        describe(NODE);
        let pool = Label::new("pool", name.to_owned());
        record(POOL, self, std::slice::from_ref(&pool));
        for class in &self.classes {
            let labels = [pool.clone(), Label::new("class", class.size.to_string())];
            record(CLASS, class, &labels);
        }
        for node in &self.nodes {
            let labels = [pool.clone(), Label::new("node", node.node.to_string())];
            record(NODE, node, &labels);
        }
    }
}

impl<T: Poolable> Pool<T> {
    /// Publishes the pool's [`stats`](Self::stats) now through the `metrics`
    /// facade, labelled `pool = name` (feature `metrics`; the names are
    /// listed at [`PoolStats::publish_metrics`]).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// drop(pool.get(4096));
    /// // To the recorder the application installed, e.g.
    /// // metrics_exporter_prometheus::PrometheusBuilder::new().install()?.
    /// pool.publish_metrics("uploads");
    /// ```
    pub fn publish_metrics(&self, name: &str) {
        self.stats().publish_metrics(name);
    }

    /// Publishes the pool's stats as [`publish_metrics`](Self::publish_metrics)
    /// does, now and then every `every` from a background thread, until the
    /// returned handle drops (feature `metrics`).
    ///
    /// The thread holds a weak reference, as `watch` does:
    /// it does not keep the pool alive, and stops on its own once every
    /// handle to the pool is gone (the metrics keep their last values).
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) if `every` is zero (nothing
    /// is published), or if the thread cannot be spawned.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = zeropool::BufferPool::new();
    /// let publisher = pool.publish_metrics_every("uploads", Duration::from_secs(10))?;
    /// assert_eq!(publisher.name(), "uploads");
    /// drop(pool.get(4096));
    /// drop(publisher); // stops and joins the thread
    ///
    /// let err = pool.publish_metrics_every("uploads", Duration::ZERO).unwrap_err();
    /// assert!(err.to_string().contains("non-zero"));
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn publish_metrics_every(
        &self,
        name: &str,
        every: Duration,
    ) -> Result<MetricsHandle, crate::Error> {
        let refuse = |value: String, accepted: &str| {
            crate::Error::Invalid(vec![crate::Problem::new(
                "publish_metrics_every",
                value,
                crate::Source::Code,
                accepted,
            )])
        };
        if every.is_zero() {
            return Err(refuse(
                format!("{every:?}"),
                "a non-zero interval, e.g. Duration::from_secs(10)",
            ));
        }
        self.publish_metrics(name);
        let (stop, stopped) = mpsc::channel::<()>();
        let pool = Arc::downgrade(&self.inner);
        let label = name.to_owned();
        let thread = std::thread::Builder::new()
            .name("zeropool-metrics".into())
            .spawn(move || loop {
                match stopped.recv_timeout(every) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                let Some(inner) = pool.upgrade() else { return };
                let stats = inner.snapshot();
                drop(inner);
                stats.publish_metrics(&label);
            })
            .map_err(|err| {
                refuse(
                    format!("{every:?}"),
                    &format!(
                        "an interval for a publishing thread, which could not be spawned: {err}"
                    ),
                )
            })?;
        Ok(MetricsHandle {
            name: name.to_owned(),
            every,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Publishes a pool's stats on an interval; dropping it stops the thread
/// and waits for it (feature `metrics`).
///
/// See [`Pool::publish_metrics_every`].
///
/// ```
/// use std::time::Duration;
///
/// let pool = zeropool::BufferPool::new();
/// let publisher = pool.publish_metrics_every("frames", Duration::from_millis(500))?;
/// assert_eq!(publisher.interval(), Duration::from_millis(500));
/// drop(publisher);
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Debug)]
pub struct MetricsHandle {
    name: String,
    every: Duration,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsHandle {
    /// The `pool` label the stats are published under.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let publisher = pool.publish_metrics_every("frames", std::time::Duration::from_secs(1))?;
    /// assert_eq!(publisher.name(), "frames");
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time between two publications.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = zeropool::BufferPool::new();
    /// let publisher = pool.publish_metrics_every("frames", Duration::from_secs(1))?;
    /// assert_eq!(publisher.interval(), Duration::from_secs(1));
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn interval(&self) -> Duration {
        self.every
    }
}

impl Drop for MetricsHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
