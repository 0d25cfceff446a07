//! # zeropool
//!
//! A pool for any [`Poolable`] type (`BufferPool` = `Pool<Vec<u8>>`): size
//! classes, a cache per thread *and per pool*, a sharded shared tier, batch
//! operations, an exact budget of idle memory, and counters that cost
//! nothing measurable.
//!
//! ```
//! use zeropool::{BufferPool, PoolStats};
//!
//! let pool = BufferPool::builder().max_total_memory(64 << 20).build()?;
//! let mut buf = pool.get(64 * 1024);          // len 0, capacity >= 64 KiB
//! buf.extend_from_slice(b"payload");
//! drop(buf);                                  // back to this thread's cache
//!
//! let owned = pool.get_owned(4096);           // 'static + Send
//! std::thread::spawn(move || drop(owned)).join().unwrap();
//!
//! let s: PoolStats = pool.stats();
//! assert_eq!(s.gets, 2);
//! assert_eq!(s.objects_outstanding, 0);
//! # Ok::<(), zeropool::Error>(())
//! ```
//!
//! The [guide] says which settings suit which workload, what size classes
//! trade, how the memory limits and NUMA placement behave, and how to read
//! the statistics.
//!
//! ## How an object travels
//! ```text
//!  get(n) ─► size class of n ─► this thread's cache for (this pool, class) ── hit ─► guard
//!                                 │ miss
//!                                 ▼
//!                     home shard: take a batch under one lock
//!                                 │ empty
//!                                 ▼
//!                     sibling shards: try_lock, take a batch (a "steal")
//!                                 │ empty
//!                                 ▼
//!                     allocate (counted)
//!
//!  drop(guard) ─► wipe? ─► reset ─► class of its real capacity
//!                    ─► this thread's cache, if it has room and budget credit
//!                    ─► full: spill the oldest batch to the home shard
//!                    ─► no budget left: free it (counted as a discard)
//! ```
//! Modules, one concern each: `size_class` (routing), `thread_cache` (a
//! thread's slot), `local` (each thread's table of slots), `shard` (the shared
//! tier), `budget` (the idle-byte limit), `stats` (counters and snapshot),
//! `guard` (loans), `batch`, `builder`, `error`, and `sync` (the std/loom
//! facade the loom models run through).
//!
//! ## Guarantees
//! Each names the tests (in the workspace's `tests/tests/`) that fail when
//! it breaks.
//! - **Sound under any safe code.** `Poolable` and `PoolField` are safe
//!   traits: their methods and `Drop` of `T` may call back into the same
//!   pool (any operation) or panic, and the pool still never hands an object
//!   to two owners, loses one, or counts one twice: it runs no user code
//!   while it holds a borrow of its own state or a lock (see [`Poolable`]).
//!   Tests: `reentrant` (every callback re-entering through every
//!   operation, with a census), `faults_callbacks` (a panic in every
//!   callback on every path, thread exit and pool drop included), under
//!   Miri by `.ci/miri`.
//! - The hot path (a hit in the thread cache, and a return into it) takes no
//!   lock, makes no atomic read-modify-write and does not allocate, with stats
//!   on or off (`hot_path::cache_hits_and_returns_do_not_allocate`; its
//!   instructions are counted by `.ci/instructions`).
//! - `bytes_retained` never exceeds `max_total_memory`: bytes are reserved
//!   from the budget before an object becomes idle anywhere. Lowering the
//!   budget frees idle objects in the shards at once; other threads' caches
//!   shed theirs at their next pool operation
//!   (`budget::returned_buffers_never_exceed_the_budget`,
//!   `budget::concurrent_use_never_reserves_more_than_the_budget`,
//!   `budget::lowering_the_budget_frees_idle_objects_at_once`,
//!   `budget::a_lowered_budget_reaches_other_threads_caches_at_their_next_operation`).
//! - `get` returns an empty object (`len() == 0`); every built-in `reset`
//!   empties the value; `wipe_on_return(true)` zeroes used bytes first
//!   (`basics::get_returns_an_empty_object_of_at_least_n_bytes`, `types::*_is_reset`,
//!   `basics::wipe_on_return_zeroes_the_used_bytes_of_a_returned_buffer`).
//! - A panicking `reset` drops the object, keeps the counters exact, and
//!   lets the panic continue (`reset_panic`, `faults_callbacks::a_panicking_reset_on_every_return_path`).
//! - A thread that exits hands its cached objects to its home shard
//!   (`thread_cache::exiting_thread_hands_its_cached_objects_to_a_shard`).
//! - `trim()` frees the shards' and the caller's idle objects at once, and
//!   other threads' cached objects at their next operation
//!   (`budget::trim_frees_every_idle_object_of_the_calling_thread_and_the_shards`,
//!   `budget::trim_reaches_other_threads_caches_at_their_next_operation`).
//!
//! ## Features
//! - `bytes`: [`Poolable`] for `bytes::BytesMut`; `bytes::BufMut` for
//!   guards of byte buffers (so tokio's `read_buf` reads into a guard) and
//!   `into_bytes()`.
//! - `async`: `Pool::get_async` / `get_owned_async` (runtime-agnostic).
//! - `numa`: NUMA placement through hwloc (see the `numa` module).
//! - `tracing`: events for reloads, budget discards, exhaustion, trimming,
//!   and NUMA binding or pinning failures (never on the hot path).
//! - `derive` (default): `#[derive(Poolable)]` for structs, field by field
//!   through [`PoolField`].
//! - `watch`: `Pool::watch` reloads the limits when the config file
//!   changes (with `notify`; reload outcomes are `tracing` events).
//! - `numa`: the machine's NUMA topology and memory binding through hwloc
//!   (`hwlocality`; needs the system hwloc library). Without it,
//!   [`numa::Topology::detect`] is one node and says why.
//! - `metrics`: `Pool::publish_metrics` and `Pool::publish_metrics_every`
//!   publish every counter and gauge of [`PoolStats`] through the `metrics`
//!   facade, labelled by pool, size class and NUMA node.
//!
//! ## Configuration
//! `Pool::from_config()` reads `$ZEROPOOL_CONFIG` (else `./zeropool.toml`)
//! and `ZEROPOOL_*` variables; [`PoolBuilder::config_file`],
//! [`PoolBuilder::named`] and [`PoolBuilder::load_config`] do the same under
//! builder calls. A plain builder reads no file or variable. Precedence:
//! defaults < file < environment < builder calls; every problem is reported
//! with where its value came from ([`Problem`], [`Source`]).
//! [`Pool::reload`] changes the limits of a running pool all at once; the
//! `zeropool` binary (`zeropool check`, `zeropool topology`) shows what a
//! file resolves to.

#![warn(missing_docs)]

mod acquire;
#[cfg(feature = "async")]
mod async_get;
mod batch;
mod budget;
mod builder;
mod capped;
mod config;
mod error;
mod field;
mod gate;
mod guard;
mod home;
mod idle;
mod idle_object;
mod interop;
mod local;
mod maintain;
#[cfg(feature = "metrics")]
mod metrics;
pub mod numa;
mod outstanding;

#[doc = include_str!("../GUIDE.md")]
pub mod guide {}
mod pool;
mod poolable;
mod recycle;
mod shard;
mod size_class;
mod snapshot;
mod stats;
mod sync;
mod thread_cache;
mod trace;

#[cfg(feature = "metrics")]
pub use crate::metrics::MetricsHandle;
#[cfg(feature = "async")]
pub use async_get::{GetAsync, GetOwnedAsync};
pub use builder::{
    auto_shards, PoolBuilder, DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOTAL_MEMORY, DEFAULT_TLS_CACHE_SIZE,
    MAX_CLASS_SIZE, MAX_SHARDS, MAX_SIZE_CLASSES, MAX_TLS_CACHE_SIZE,
};
#[cfg(feature = "watch")]
pub use config::WatchHandle;
pub use config::{
    ByteSize, Change, ConfigSet, Numa, OnExhausted, Period, PoolConfig, ReloadReport, Setting,
    Shards, SizeClassSpec,
};
pub use error::{Error, Problem, Source};
#[doc(hidden)]
pub use field::__private;
pub use field::PoolField;
pub use gate::Exhausted;
pub use guard::{OwnedPoolGuard, PoolGuard};
pub use outstanding::OutstandingEntry;
pub use poolable::Poolable;
pub use stats::{ClassStats, NodeStats, PoolStats};
#[cfg(feature = "derive")]
pub use zeropool_derive::Poolable;

use pool::Inner;
use std::fmt;
use std::sync::Arc;

/// A pool of byte buffers: `Pool<Vec<u8>>`.
///
/// ```
/// let pool = zeropool::BufferPool::new();
/// let mut buf = pool.get(1500);
/// buf.extend_from_slice(b"packet");
/// assert_eq!(buf.as_slice(), b"packet");
/// ```
pub type BufferPool = Pool<Vec<u8>>;

/// A pool of `T`: a cheap, cloneable, `Send + Sync` handle.
///
/// # Example
/// ```
/// use zeropool::Pool;
///
/// let pool: Pool<String> = Pool::new();
/// let mut s = pool.get(100);
/// s.push_str("reused");
/// drop(s);
/// assert!(pool.get(100).is_empty());
/// ```
pub struct Pool<T: Poolable> {
    pub(crate) inner: Arc<Inner<T>>,
    /// A user's handle (counted in `Inner::handles`), or an owned guard's.
    pub(crate) user: bool,
}

impl<T: Poolable> Clone for Pool<T> {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, sync::Ordering::Relaxed);
        Self {
            inner: self.inner.clone(),
            user: true,
        }
    }
}

impl<T: Poolable> Drop for Pool<T> {
    fn drop(&mut self) {
        if self.user && self.inner.handles.fetch_sub(1, sync::Ordering::AcqRel) == 1 {
            self.inner.last_handle_dropped();
        }
    }
}

impl<T: Poolable> Default for Pool<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Poolable> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("type", &std::any::type_name::<T>())
            .field("shards", &self.shards())
            .field("size_classes", &self.size_classes().len())
            .field("max_total_memory", &self.max_total_memory())
            .finish_non_exhaustive()
    }
}

impl<T: Poolable> Pool<T> {
    /// A pool with the default settings (see [`PoolBuilder`]).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// assert!(pool.get(10_000).capacity() >= 10_000);
    /// ```
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default settings are valid")
    }

    /// A builder to choose the settings.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().shards(2).build()?;
    /// assert_eq!(pool.shards(), 2);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn builder() -> PoolBuilder<T> {
        PoolBuilder::default()
    }

    /// An empty object that can hold at least `n` bytes, on loan until the
    /// guard drops. Requests larger than the largest class are allocated
    /// exactly and freed on return.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let buf = pool.get(65536);
    /// assert_eq!(buf.len(), 0);
    /// assert!(buf.capacity() >= 65536);
    /// ```
    #[inline]
    #[track_caller]
    pub fn get(&self, n: usize) -> PoolGuard<'_, T> {
        PoolGuard::new(&self.inner, self.inner.acquire(n))
    }

    /// Like [`get`](Self::get), but the guard owns a handle to the pool, so
    /// it is `'static` and can move to another thread or task.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let buf = pool.get_owned(4096);
    /// std::thread::spawn(move || assert!(buf.capacity() >= 4096)).join().unwrap();
    /// ```
    #[inline]
    #[track_caller]
    pub fn get_owned(&self, n: usize) -> OwnedPoolGuard<T> {
        OwnedPoolGuard::new(self.guard_handle(), self.inner.acquire(n))
    }

    /// Gives an object to the pool: one detached with `into_inner`, or one
    /// that never came from it. It is reset and kept if its capacity fits a
    /// class and the budget allows, else freed.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// pool.put(Vec::with_capacity(8192));
    /// assert_eq!(pool.get(8000).capacity(), 8192);
    /// ```
    #[inline]
    pub fn put(&self, obj: T) {
        self.inner.recycle(obj, pool::Origin::Adopted);
    }

    /// One guard per requested size, in order; each shard lock is taken at
    /// most once.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let many = pool.get_batch(&[4096; 32]);
    /// assert_eq!(many.len(), 32);
    /// ```
    #[track_caller]
    pub fn get_batch(&self, sizes: &[usize]) -> Vec<PoolGuard<'_, T>> {
        let at = std::panic::Location::caller();
        self.inner
            .acquire_batch(sizes, |loan| PoolGuard::new_at(&self.inner, loan, at))
    }

    /// Gives many objects to the pool (as [`put`](Self::put) does), taking
    /// the home shard's lock at most once.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let objs: Vec<Vec<u8>> = pool.get_batch(&[4096; 64]).into_iter().map(|g| g.into_inner()).collect();
    /// pool.put_batch(objs);
    /// assert_eq!(pool.stats().objects_retained, 64);
    /// ```
    pub fn put_batch(&self, objs: impl IntoIterator<Item = T>) {
        self.inner.recycle_batch(objs);
    }

    /// Returns many guards at once, as dropping them would, but through
    /// this thread's cache and then the home shard under one lock: the fast
    /// way back for what [`get_batch`](Self::get_batch) handed out. Guards
    /// of another pool, and charged, tracked or NUMA-remote ones, are simply
    /// dropped (each returns itself).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let guards = pool.get_batch(&[4096; 64]);
    /// pool.put_guards(guards);
    /// let s = pool.stats();
    /// assert_eq!((s.objects_outstanding, s.objects_retained), (0, 64));
    /// assert_eq!((s.detached, s.adopted), (0, 0)); // tickets kept
    /// ```
    pub fn put_guards<'a>(&'a self, guards: impl IntoIterator<Item = PoolGuard<'a, T>>) {
        self.inner.release_batch(guards);
    }

    /// Frees idle objects from the shards and the calling thread's cache
    /// (largest classes first) until `stats().bytes_retained` is at most
    /// `bytes`, or until those are empty. Other threads' cached objects count
    /// but stay (`trim` reaches them at their next operation); credit they
    /// reserved beyond what they hold does not count.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// drop(pool.get_batch(&[65536; 16]));
    /// pool.trim_to(128 << 10);
    /// assert!(pool.stats().bytes_retained <= 128 << 10);
    /// ```
    pub fn trim_to(&self, bytes: usize) {
        self.inner.trim_to(bytes);
    }

    /// Releases memory idle longer than `after`, every `after`, from a
    /// background thread (`None` turns it off). Per class, the objects no
    /// get touched for a whole period go; those recent demand cycles
    /// through stay. Thread caches give back their slack credit at their
    /// next operation.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = zeropool::BufferPool::new();
    /// pool.set_trim_after(Some(Duration::from_millis(20)));
    /// std::thread::spawn({
    ///     let pool = pool.clone();
    ///     move || drop(pool.get_batch(&[65536; 16])) // a burst on another thread
    /// }).join().unwrap();
    /// let deadline = std::time::Instant::now() + Duration::from_secs(5);
    /// while pool.stats().bytes_retained > 0 && std::time::Instant::now() < deadline {
    ///     std::thread::sleep(Duration::from_millis(5));
    /// }
    /// assert_eq!(pool.stats().bytes_retained, 0);
    /// ```
    pub fn set_trim_after(&self, after: Option<std::time::Duration>) {
        self.inner.set_trim_after(after);
    }

    /// The idle trimmer's period, if it is on.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = zeropool::BufferPool::new();
    /// assert_eq!(pool.trim_after(), None);
    /// pool.set_trim_after(Some(Duration::from_secs(30)));
    /// assert_eq!(pool.trim_after(), Some(Duration::from_secs(30)));
    /// pool.set_trim_after(None);
    /// assert_eq!(pool.trim_after(), None);
    /// ```
    pub fn trim_after(&self) -> Option<std::time::Duration> {
        self.inner.idle.period()
    }

    /// Frees every idle object: the shards' and the calling thread's cache at
    /// once, other threads' caches at their next pool operation (or exit).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// drop(pool.get(4096));
    /// pool.trim();
    /// assert_eq!(pool.stats().bytes_retained, 0);
    /// ```
    pub fn trim(&self) {
        self.inner.trim();
    }

    /// Changes the budget of idle bytes. Lowering it frees idle objects from
    /// the shards and this thread's cache at once; other threads' caches
    /// give back what they hold above it at their next operation.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let bufs = pool.get_batch(&[4096; 16]);
    /// drop(bufs);
    /// pool.set_max_total_memory(8192);
    /// assert!(pool.stats().bytes_retained <= 8192);
    /// ```
    pub fn set_max_total_memory(&self, bytes: usize) {
        self.inner.set_max_total_memory(bytes);
    }

    /// The budget of idle bytes (the cap when no source set it: the pool
    /// then keeps idle bytes in proportion to the bytes in use under it).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().max_total_memory(64 << 20).build()?;
    /// assert_eq!(pool.max_total_memory(), 64 << 20);
    /// pool.set_max_total_memory(16 << 20);
    /// assert_eq!(pool.max_total_memory(), 16 << 20);
    /// assert_eq!(zeropool::BufferPool::new().max_total_memory(), zeropool::DEFAULT_MAX_TOTAL_MEMORY);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn max_total_memory(&self) -> usize {
        self.inner.budget.limit()
    }

    /// The size classes, ascending, in bytes.
    ///
    /// ```
    /// let classes = zeropool::BufferPool::new().size_classes().to_vec();
    /// assert_eq!((classes[0], *classes.last().unwrap()), (256, 4 << 20));
    /// assert_eq!(&classes[..5], [256, 304, 368, 432, 512]); // 4 per doubling
    /// ```
    pub fn size_classes(&self) -> &[usize] {
        self.inner.classes.sizes()
    }

    /// The number of shards (a power of two; with NUMA placement, the sum
    /// of the nodes' groups).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().shards(5).build()?;
    /// assert_eq!(pool.shards(), 8);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn shards(&self) -> usize {
        self.inner.shards.len()
    }

    /// Idle objects per class each thread keeps.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// assert_eq!(pool.tls_cache_size(), zeropool::DEFAULT_TLS_CACHE_SIZE);
    /// ```
    pub fn tls_cache_size(&self) -> usize {
        self.inner.tls_cache_size.load(sync::Ordering::Relaxed)
    }

    /// Objects moved between a thread cache and a shard at once.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().tls_cache_size(64).batch_size(16).build()?;
    /// assert_eq!(pool.batch_size(), 16);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn batch_size(&self) -> usize {
        self.inner.batch_size.load(sync::Ordering::Relaxed)
    }

    /// Whether byte buffers are zeroed before they are cached.
    ///
    /// ```
    /// assert!(!zeropool::BufferPool::new().wipe_on_return());
    /// ```
    pub fn wipe_on_return(&self) -> bool {
        self.inner.fixed.wipe_on_return
    }

    /// The live guards grouped by the call site that took them, most bytes
    /// first; empty unless the pool was built with `track_outstanding(true)`.
    /// See [`OutstandingEntry`].
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().track_outstanding(true).build()?;
    /// let small = pool.get_batch(&[4096; 3]);
    /// let big = pool.get(1 << 20);
    /// let report = pool.outstanding();
    /// assert_eq!((report[0].count, report[0].bytes), (1, 1 << 20)); // most bytes first
    /// assert_eq!((report[1].count, report[1].bytes), (3, 3 * 4096));
    /// drop((small, big));
    /// assert!(pool.outstanding().is_empty());
    /// assert!(zeropool::BufferPool::new().outstanding().is_empty()); // tracking off
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn outstanding(&self) -> Vec<OutstandingEntry> {
        self.inner
            .tracker
            .as_ref()
            .map_or_else(Vec::new, |t| t.report())
    }

    /// A handle for an owned guard: not counted as a user's handle.
    pub(crate) fn guard_handle(&self) -> Pool<T> {
        Pool {
            inner: self.inner.clone(),
            user: false,
        }
    }

    /// A snapshot of the counters and gauges (see [`PoolStats`], and the
    /// [guide] on reading them).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let held = pool.get(4096);
    /// drop(pool.get(4096));
    /// let s = pool.stats();
    /// assert_eq!((s.gets, s.allocations), (2, 2));
    /// assert_eq!((s.objects_outstanding, s.objects_retained), (1, 1));
    /// assert!(s.is_balanced());
    /// drop(held);
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.inner.snapshot()
    }
}

impl Pool<Vec<u8>> {
    /// A buffer of exactly `n` zero bytes (`len() == n`).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let mut a = pool.get(16);
    /// a.extend_from_slice(&[0xAA; 16]);
    /// drop(a);
    /// let b = pool.get_zeroed(16);
    /// assert_eq!(&b[..], &[0u8; 16]);
    /// ```
    #[track_caller]
    pub fn get_zeroed(&self, n: usize) -> PoolGuard<'_, Vec<u8>> {
        let mut buf = self.get(n);
        buf.resize(n, 0);
        buf
    }
}
