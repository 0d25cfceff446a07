//! A running pool's configuration: [`Pool::config`], [`Pool::reload`] and
//! what a reload reports.
//!
//! ```text
//! reload(cfg) ─ lock ─ check every key ─ compare the fixed keys ─ apply the limits ─ report
//!                        │ problems          │ any differs
//!                        └─ Err(Invalid)     └─ Err(RestartRequired)      (nothing changed)
//! ```
//! Reloads are serialised by one lock, and every check runs before the first
//! limit changes, so a reload applies whole or not at all. Other threads
//! keep using the pool throughout: the limits are atomics their next
//! operation reads.

use super::schema::{PoolConfig, KEYS, STRUCTURAL};
use super::validate;
use super::values::OnExhausted;
use crate::builder::Explicit;
use crate::error::{Error, Problem};
use crate::pool::Inner;
use crate::sync::Ordering;
use crate::{Pool, Poolable};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;

/// What a pool remembers of its configuration.
#[derive(Debug)]
pub(crate) struct ConfigState {
    /// The config applied last (the reloadable limits are read live).
    current: parking_lot::Mutex<PoolConfig>,
    /// The table the pool reads: `pool` or `pools.<name>`.
    pub(crate) section: String,
    /// Whether problems name keys by their table path.
    qualified: bool,
    /// Builder calls, reapplied over the file when it is watched.
    #[cfg_attr(not(feature = "watch"), allow(dead_code))]
    pub(crate) explicit: Explicit,
    /// The file the pool was built from, if any.
    pub(crate) file: Option<PathBuf>,
    last_error: parking_lot::Mutex<Option<Error>>,
    reload_errors: AtomicUsize,
}

impl ConfigState {
    pub(crate) fn new(
        config: PoolConfig,
        section: String,
        qualified: bool,
        explicit: Explicit,
        file: Option<PathBuf>,
    ) -> Self {
        Self {
            current: parking_lot::Mutex::new(config),
            section,
            qualified,
            explicit,
            file,
            last_error: parking_lot::Mutex::new(None),
            reload_errors: AtomicUsize::new(0),
        }
    }

    /// Failed reloads so far, and the error of the last one (cleared by a
    /// successful reload).
    pub(crate) fn errors(&self) -> (usize, Option<String>) {
        let n = self
            .reload_errors
            .load(std::sync::atomic::Ordering::Relaxed);
        (n, self.last_error.lock().as_ref().map(Error::to_string))
    }

    pub(crate) fn record_error(&self, err: &Error) {
        self.reload_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.last_error.lock() = Some(err.clone());
    }
}

impl<T: Poolable> Inner<T> {
    /// Applies the outstanding-memory cap and its policy from the config.
    pub(crate) fn apply_placeholder_limits(&self) {
        let cfg = self.config.current.lock();
        self.store_placeholders(&cfg);
    }

    fn store_placeholders(&self, cfg: &PoolConfig) {
        let cap = cfg
            .max_outstanding_memory
            .map_or(usize::MAX, |b| b.to_usize().unwrap_or(usize::MAX));
        // Set the policy first: waiters the new cap frees see the new policy.
        let mode = OnExhausted::NAMES
            .iter()
            .position(|&(_, e)| e == cfg.on_exhausted)
            .unwrap_or(0);
        self.on_exhausted.store(mode, Ordering::Relaxed);
        if cfg.on_exhausted != OnExhausted::Wait {
            // Nobody waits under `allocate` or `error`: release the queue.
            self.gate.refuse_all();
        }
        if cap != self.gate.cap() {
            // Wakes the waiters that now fit; refuses those that never can.
            self.gate.set_cap(cap);
        }
    }

    /// The applied config with the live limits.
    fn live_config(&self, applied: &PoolConfig) -> PoolConfig {
        let mut cfg = applied.clone();
        cfg.max_total_memory = self.budget.limit().into();
        cfg.tls_cache_size = self.tls_cache_size.load(Ordering::Relaxed);
        cfg.batch_size = self.batch_size.load(Ordering::Relaxed);
        cfg.stats = self.stats_on.load(Ordering::Relaxed);
        cfg.trim_after = self.idle.period().map(super::period::Period);
        cfg
    }

    /// What a structural key runs with, if `new` differs from it.
    fn structural_difference(
        &self,
        key: &str,
        new: &PoolConfig,
        old: &PoolConfig,
    ) -> Option<String> {
        match key {
            "shards" => {
                let n = self.shards.len();
                if let super::Shards::Count(count) = new.shards {
                    if count > crate::builder::MAX_SHARDS {
                        // Refused by `check` already; its shard map may not
                        // even be computable (the count overflows), so it
                        // is not built.
                        return Some(format!("{n} shards"));
                    }
                }
                let numa = &self.numa;
                let wanted = crate::numa::ShardMap::new(
                    numa.locator.topology(),
                    &numa.placement,
                    new.shards,
                )
                .len();
                (wanted != n).then(|| format!("{n} shards"))
            }
            "size_classes" => (new.size_classes.sizes() != self.classes.sizes())
                .then(|| old.size_classes.to_string()),
            "numa" => (new.numa != old.numa).then(|| old.numa.to_string()),
            "wipe_on_return" => (new.wipe_on_return != self.fixed.wipe_on_return)
                .then(|| self.fixed.wipe_on_return.to_string()),
            "pinned" => (new.pinned != self.numa.pinned).then(|| self.numa.pinned.to_string()),
            "track_outstanding" => (new.track_outstanding != self.tracker.is_some())
                .then(|| self.tracker.is_some().to_string()),
            _ => None,
        }
    }

    pub(crate) fn reload(&self, new: &PoolConfig) -> Result<ReloadReport, Error> {
        let mut new = new.clone();
        new.follow_cache_size();
        let new = &new;
        // Objects a lowered budget frees are dropped after the config lock
        // is released (declared first, dropped last): a `Drop` may call
        // `config()` or `reload` on this pool.
        let mut doomed = crate::idle_object::Doomed::new();
        let report = self.reload_locked(new, &mut doomed);
        self.free(self.local(), doomed);
        report
    }

    fn reload_locked(
        &self,
        new: &PoolConfig,
        doomed: &mut crate::idle_object::Doomed<T>,
    ) -> Result<ReloadReport, Error> {
        let mut applied = self.config.current.lock();
        let old = self.live_config(&applied);
        let prefix = self
            .config
            .qualified
            .then_some(self.config.section.as_str());
        let name = |key: &str| match prefix {
            Some(p) => format!("{p}.{key}"),
            None => key.to_string(),
        };
        let mut problems = validate::check(new, prefix, &[]);
        let refused: Vec<Problem> = STRUCTURAL
            .iter()
            .filter_map(|&key| {
                let running = self.structural_difference(key, new, &old)?;
                Some(Problem::new(
                    name(key),
                    new.raw_text(key),
                    new.source(key).unwrap_or(crate::Source::Code),
                    format!(
                        "cannot change while the pool runs: restart to change `{key}` (running with {running})"
                    ),
                ))
            })
            .collect();
        let err = if !problems.is_empty() {
            problems.extend(refused);
            Some(validate::invalid(problems))
        } else if !refused.is_empty() {
            Some(Error::RestartRequired(refused))
        } else {
            None
        };
        if let Some(err) = err {
            self.config.record_error(&err);
            return Err(err);
        }
        // Every check passed: apply. Batch size never exceeds the cache size
        // in between: first the smaller batch, then the cache, then the batch.
        let (old_batch, new_batch) = (old.batch_size, new.batch_size);
        if new_batch != old_batch {
            self.set_batch_size(old_batch.min(new_batch));
        }
        if new.tls_cache_size != old.tls_cache_size {
            self.set_tls_cache_size(new.tls_cache_size);
        }
        if new_batch != old_batch {
            self.set_batch_size(new_batch);
        }
        if new.stats != old.stats {
            self.set_stats(new.stats);
        }
        if new.max_total_memory != old.max_total_memory {
            let bytes = new.max_total_memory.to_usize().unwrap_or(usize::MAX);
            self.cut_budget(bytes, doomed);
        }
        if new.trim_after != old.trim_after {
            self.set_trim_after(new.trim_after.map(|p| p.0));
        }
        self.store_placeholders(new);
        let mut report = ReloadReport::default();
        for key in KEYS {
            let (before, after) = (old.value_text(key), new.value_text(key));
            if before != after && !STRUCTURAL.contains(&key) {
                report.changed.push(Change {
                    key,
                    old: before.unwrap_or_default(),
                    new: after.unwrap_or_default(),
                });
            } else {
                report.unchanged.push(key);
            }
        }
        let mut next = new.clone();
        // Fixed keys keep the form they were built with ("auto" stays).
        for key in STRUCTURAL {
            next.copy_field(&applied, key);
            if let Some(origin) = applied.origins.get(key) {
                next.origins.insert(key, origin.clone());
            } else {
                next.origins.remove(key);
            }
        }
        *applied = next;
        *self.config.last_error.lock() = None;
        Ok(report)
    }
}

/// What a successful [`Pool::reload`] changed.
///
/// ```
/// use zeropool::{BufferPool, ByteSize};
///
/// let pool = BufferPool::builder().max_total_memory(1 << 30).build()?;
/// let mut cfg = pool.config();
/// cfg.max_total_memory = ByteSize(512 << 20);
/// let report = pool.reload(&cfg)?;
/// assert_eq!(report.changed[0].key, "max_total_memory");
/// assert_eq!(report.changed[0].to_string(), r#"max_total_memory: "1 GiB" -> "512 MiB""#);
/// assert!(report.unchanged.contains(&"shards"));
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// The limits that changed, in file order.
    pub changed: Vec<Change>,
    /// Every other key, in file order.
    pub unchanged: Vec<&'static str>,
}

impl ReloadReport {
    /// Whether nothing changed.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// assert!(pool.reload(&pool.config())?.is_empty());
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
    }
}

impl fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changed.is_empty() {
            f.write_str("no change")?;
        } else {
            let changed: Vec<String> = self.changed.iter().map(Change::to_string).collect();
            write!(f, "changed {}", changed.join(", "))?;
        }
        write!(f, "; unchanged: {}", self.unchanged.join(", "))
    }
}

/// One limit a reload changed.
///
/// ```
/// let pool = zeropool::BufferPool::new();
/// let mut cfg = pool.config();
/// cfg.tls_cache_size = 16;
/// let change = &pool.reload(&cfg)?.changed[0];
/// assert_eq!((change.key, change.old.as_str(), change.new.as_str()), ("tls_cache_size", "8", "16"));
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The key.
    pub key: &'static str,
    /// The value before, in TOML syntax (empty when unset).
    pub old: String,
    /// The value after, in TOML syntax (empty when unset).
    pub new: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |s: &str| {
            if s.is_empty() {
                "(unset)".to_string()
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "{}: {} -> {}",
            self.key,
            show(&self.old),
            show(&self.new)
        )
    }
}

impl<T: Poolable> Pool<T> {
    /// A pool configured from the discovered file (`$ZEROPOOL_CONFIG`, else
    /// `./zeropool.toml` if present) and the `ZEROPOOL_*` environment, over
    /// the defaults. It reads `[pool]`, or `[pools.<section>]` when `T`
    /// names a section ([`Poolable::config_section`]).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::from_config()?;
    /// assert_eq!(pool.config_section(), "pool");
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn from_config() -> Result<Self, Error> {
        Self::builder().load_config().build()
    }

    /// The settings in effect: the sources merged at build time, then each
    /// reload and limit change, with where each value came from
    /// ([`PoolConfig::source`]). Fixed keys read as given (`shards = "auto"`
    /// stays `"auto"`; [`shards`](Self::shards) tells what it resolved to).
    ///
    /// ```
    /// use zeropool::{BufferPool, ByteSize, Source};
    ///
    /// let pool = BufferPool::builder().max_total_memory(64 << 20).build()?;
    /// let cfg = pool.config();
    /// assert_eq!(cfg.max_total_memory, ByteSize(64 << 20));
    /// assert_eq!(cfg.source("max_total_memory"), Some(Source::Builder));
    /// pool.set_max_total_memory(32 << 20);
    /// assert_eq!(pool.config().source("max_total_memory"), Some(Source::Code));
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn config(&self) -> PoolConfig {
        let applied = self.inner.config.current.lock();
        self.inner.live_config(&applied)
    }

    /// The table this pool reads in a config file: `pool` or `pools.<name>`.
    ///
    /// ```
    /// assert_eq!(zeropool::BufferPool::new().config_section(), "pool");
    /// ```
    pub fn config_section(&self) -> &str {
        &self.inner.config.section
    }

    /// The config file the pool was built from, if it read one.
    ///
    /// ```
    /// assert_eq!(zeropool::BufferPool::new().config_file(), None);
    /// ```
    pub fn config_file(&self) -> Option<&std::path::Path> {
        self.inner.config.file.as_deref()
    }

    /// Applies the reloadable limits of `config` (`max_total_memory`,
    /// `max_outstanding_memory`, `on_exhausted`, `tls_cache_size`,
    /// `batch_size`, `stats`, `trim_after`) all together while other
    /// threads keep using the pool. Lowering `max_total_memory` frees idle
    /// memory at once.
    ///
    /// Every key is checked first. A bad value gives
    /// [`Error::Invalid`]; a changed fixed key (`shards`, `size_classes`,
    /// `numa`, `wipe_on_return`, `pinned`, `track_outstanding`) gives
    /// [`Error::RestartRequired`] naming each one. Either way nothing
    /// changes, and the error is kept as
    /// [`last_reload_error`](Self::last_reload_error).
    ///
    /// ```
    /// use zeropool::{BufferPool, Error, Shards};
    ///
    /// let pool = BufferPool::builder().shards(2).build()?;
    /// let mut cfg = pool.config();
    /// cfg.shards = Shards::Count(8);
    /// cfg.batch_size = 2;
    /// let err = pool.reload(&cfg).unwrap_err();
    /// assert!(matches!(err, Error::RestartRequired(_)));
    /// assert!(err.to_string().contains("restart to change `shards`"));
    /// assert_eq!(pool.batch_size(), 4); // nothing changed
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn reload(&self, config: &PoolConfig) -> Result<ReloadReport, Error> {
        let result = self.inner.reload(config);
        #[cfg(feature = "tracing")]
        match &result {
            Ok(report) => crate::trace::event!(info, "reload applied: {report}"),
            Err(err) => crate::trace::event!(warn, "reload refused, nothing changed: {err}"),
        }
        result
    }

    /// The error of the last failed reload (by [`reload`](Self::reload) or a
    /// watched file), until a reload succeeds.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::new();
    /// let mut cfg = pool.config();
    /// cfg.tls_cache_size = 0;
    /// assert!(pool.reload(&cfg).is_err());
    /// assert!(pool.last_reload_error().is_some());
    /// assert_eq!(pool.stats().reload_errors, 1);
    /// ```
    pub fn last_reload_error(&self) -> Option<Error> {
        self.inner.config.last_error.lock().clone()
    }
}
