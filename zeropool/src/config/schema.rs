//! [`PoolConfig`]: the settings of one pool as data, with where each value
//! came from.

use super::period::Period;
use super::size::ByteSize;
use super::values::{Numa, OnExhausted, Shards, SizeClassSpec};
use crate::builder::{DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOTAL_MEMORY, DEFAULT_TLS_CACHE_SIZE};
use crate::error::Source;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The settings of one pool: the `[pool]` (or `[pools.<name>]`) table of a
/// config file, as data.
///
/// Every field has the default of [`PoolBuilder`](crate::PoolBuilder). The
/// fields are the file's keys; `Serialize` writes them back in the same
/// syntax, and `Deserialize` accepts what a file accepts and checks every
/// key (unknown ones too), listing all problems in its error.
///
/// A `PoolConfig` loaded from a file or the environment remembers where each
/// value came from ([`source`](Self::source)); a field changed afterwards
/// reports [`Source::Code`].
///
/// # Example
/// ```
/// use zeropool::{BufferPool, ByteSize, PoolConfig, Shards};
///
/// let config = PoolConfig::from_toml_str(r#"
///     [pool]
///     shards = 4
///     max_total_memory = "256 MiB"
/// "#)?;
/// assert_eq!(config.shards, Shards::Count(4));
/// assert_eq!(config.max_total_memory, ByteSize(256 << 20));
/// assert_eq!(config.tls_cache_size, 8); // the default
///
/// let pool = BufferPool::builder().config(&config).build()?;
/// assert_eq!(pool.shards(), 4);
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Clone, Serialize)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Shared shards: `"auto"` (CPUs rounded up to a power of two, at most
    /// 64) or `1..=1024`, rounded up to a power of two. Fixed once built.
    pub shards: Shards,
    /// NUMA placement. Fixed once built.
    pub numa: Numa,
    /// The size classes. Fixed once built.
    pub size_classes: SizeClassSpec,
    /// Idle objects each thread keeps per class, `1..=65536`. Reloadable.
    pub tls_cache_size: usize,
    /// Objects moved between a thread cache and a shard at once,
    /// `1..=tls_cache_size`. Reloadable.
    pub batch_size: usize,
    /// Most idle bytes the pool keeps. Reloadable; lowering it frees idle
    /// objects at once. When no source sets it, the pool's default budget
    /// policy applies with this value as its cap.
    pub max_total_memory: ByteSize,
    /// Hard cap on bytes handed out, `None` for no cap. Reloadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_outstanding_memory: Option<ByteSize>,
    /// What a `get` does past `max_outstanding_memory`. Reloadable.
    pub on_exhausted: OnExhausted,
    /// Whether counters are kept. Reloadable.
    pub stats: bool,
    /// Zero byte buffers before they are cached. Fixed once built.
    pub wipe_on_return: bool,
    /// Lock fresh pool memory in RAM (mlock); refused locks are counted and
    /// reported, and the pool goes on unpinned. Fixed once built.
    pub pinned: bool,
    /// Record every live guard's call site for `Pool::outstanding` (a
    /// debugging aid: a mutex per get and return). Fixed once built.
    pub track_outstanding: bool,
    /// Release memory idle longer than this (a background thread per pool);
    /// `None` (or `"off"`) keeps it until trimmed. Reloadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trim_after: Option<Period>,
    #[serde(skip)]
    pub(crate) origins: BTreeMap<&'static str, Origin>,
}

/// Where a value came from, and how it read then (to tell whether the field
/// was changed since).
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) source: Source,
    /// The field's text when recorded.
    pub(crate) text: String,
    /// The value as the user wrote it.
    pub(crate) raw: String,
}

/// The config keys, in file order.
pub(crate) const KEYS: [&str; 13] = [
    "shards",
    "numa",
    "size_classes",
    "tls_cache_size",
    "batch_size",
    "max_total_memory",
    "max_outstanding_memory",
    "on_exhausted",
    "stats",
    "wipe_on_return",
    "pinned",
    "track_outstanding",
    "trim_after",
];

/// Keys fixed when the pool is built.
pub(crate) const STRUCTURAL: [&str; 6] = [
    "shards",
    "numa",
    "size_classes",
    "wipe_on_return",
    "pinned",
    "track_outstanding",
];

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            shards: Shards::Auto,
            numa: Numa::Auto,
            size_classes: SizeClassSpec::default(),
            tls_cache_size: DEFAULT_TLS_CACHE_SIZE,
            batch_size: DEFAULT_BATCH_SIZE,
            max_total_memory: ByteSize(DEFAULT_MAX_TOTAL_MEMORY as u64),
            max_outstanding_memory: None,
            on_exhausted: OnExhausted::Allocate,
            stats: true,
            wipe_on_return: false,
            pinned: false,
            track_outstanding: false,
            trim_after: None,
            origins: BTreeMap::new(),
        }
    }
}

impl PoolConfig {
    /// The value of `key` in TOML syntax (`None` for an unknown key; `""` for
    /// an unset `max_outstanding_memory`).
    ///
    /// ```
    /// let c = zeropool::PoolConfig::default();
    /// assert_eq!(c.value_text("max_total_memory").unwrap(), "\"1 GiB\"");
    /// assert_eq!(c.value_text("shards").unwrap(), "\"auto\"");
    /// ```
    pub fn value_text(&self, key: &str) -> Option<String> {
        Some(match key {
            "shards" => self.shards.to_string(),
            "numa" => self.numa.to_string(),
            "size_classes" => self.size_classes.to_string(),
            "tls_cache_size" => self.tls_cache_size.to_string(),
            "batch_size" => self.batch_size.to_string(),
            "max_total_memory" => quoted(self.max_total_memory),
            "max_outstanding_memory" => self.max_outstanding_memory.map_or(String::new(), quoted),
            "on_exhausted" => format!("\"{}\"", self.on_exhausted),
            "stats" => self.stats.to_string(),
            "wipe_on_return" => self.wipe_on_return.to_string(),
            "pinned" => self.pinned.to_string(),
            "track_outstanding" => self.track_outstanding.to_string(),
            "trim_after" => self
                .trim_after
                .map_or(String::new(), |p| format!("\"{p}\"")),
            _ => return None,
        })
    }

    /// Where the value of `key` came from: the file (with its line), an
    /// environment variable, a builder call, the default, or
    /// [`Source::Code`] when the field was changed after loading.
    ///
    /// ```
    /// use zeropool::{PoolConfig, Source};
    ///
    /// let mut c = PoolConfig::from_toml_str("[pool]\nstats = false\n")?;
    /// assert!(matches!(c.source("stats"), Some(Source::File { line: Some(2), .. })));
    /// assert_eq!(c.source("batch_size"), Some(Source::Default));
    /// c.batch_size = 2;
    /// assert_eq!(c.source("batch_size"), Some(Source::Code));
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn source(&self, key: &str) -> Option<Source> {
        let now = self.value_text(key)?;
        if let Some(origin) = self.origins.get(key) {
            if origin.text == now {
                return Some(origin.source.clone());
            }
        } else if PoolConfig::default().value_text(key).as_deref() == Some(&now) {
            return Some(Source::Default);
        }
        Some(Source::Code)
    }

    /// Every setting with its value and source, in file order.
    ///
    /// ```
    /// let c = zeropool::PoolConfig::default();
    /// let s = &c.settings()[0];
    /// assert_eq!((s.key, s.value.as_str()), ("shards", "\"auto\""));
    /// assert_eq!(s.to_string(), "shards = \"auto\" (default)");
    /// ```
    pub fn settings(&self) -> Vec<Setting> {
        KEYS.iter()
            .map(|&key| Setting {
                key,
                value: self.value_text(key).unwrap_or_default(),
                source: self.source(key).unwrap_or(Source::Default),
            })
            .collect()
    }

    /// Copies the field `key` from `other`.
    pub(crate) fn copy_field(&mut self, other: &PoolConfig, key: &str) {
        match key {
            "shards" => self.shards = other.shards,
            "numa" => self.numa = other.numa.clone(),
            "size_classes" => self.size_classes = other.size_classes.clone(),
            "tls_cache_size" => self.tls_cache_size = other.tls_cache_size,
            "batch_size" => self.batch_size = other.batch_size,
            "max_total_memory" => self.max_total_memory = other.max_total_memory,
            "max_outstanding_memory" => self.max_outstanding_memory = other.max_outstanding_memory,
            "on_exhausted" => self.on_exhausted = other.on_exhausted,
            "stats" => self.stats = other.stats,
            "wipe_on_return" => self.wipe_on_return = other.wipe_on_return,
            "pinned" => self.pinned = other.pinned,
            "track_outstanding" => self.track_outstanding = other.track_outstanding,
            "trim_after" => self.trim_after = other.trim_after,
            _ => {}
        }
    }

    /// An unset `batch_size` follows a smaller `tls_cache_size`: a batch
    /// cannot move more objects than a cache holds, so the default batch
    /// becomes the cache size (still reported as the default). A batch size
    /// the user set is left alone, for validation to judge.
    pub(crate) fn follow_cache_size(&mut self) {
        let tls = self.tls_cache_size;
        if tls >= 1 && self.batch_size > tls && self.source("batch_size") == Some(Source::Default) {
            self.batch_size = tls;
            self.record("batch_size", Source::Default, tls.to_string());
        }
    }

    /// Records that `key` now holds a value from `source`, written `raw`.
    pub(crate) fn record(&mut self, key: &'static str, source: Source, raw: String) {
        let text = self.value_text(key).unwrap_or_default();
        self.origins.insert(key, Origin { source, text, raw });
    }

    /// The value as the user wrote it, if it is unchanged since loading.
    pub(crate) fn raw_text(&self, key: &str) -> String {
        let now = self.value_text(key).unwrap_or_default();
        match self.origins.get(key) {
            Some(o) if o.text == now => o.raw.clone(),
            _ => now,
        }
    }
}

impl PartialEq for PoolConfig {
    /// Compares the settings, not where they came from.
    fn eq(&self, other: &Self) -> bool {
        KEYS.iter()
            .all(|k| self.value_text(k) == other.value_text(k))
    }
}

impl Eq for PoolConfig {}

impl fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PoolConfig");
        for key in KEYS {
            d.field(
                key,
                &format_args!("{}", self.value_text(key).unwrap_or_default()),
            );
        }
        d.finish()
    }
}

impl<'de> Deserialize<'de> for PoolConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = <figment::value::Value as Deserialize>::deserialize(d)?;
        super::validate::deserialize_section(&value)
            .map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

/// One setting of a [`PoolConfig`]: key, value in TOML syntax, source.
///
/// ```
/// let c = zeropool::PoolConfig::default();
/// let stats = c.settings().into_iter().find(|s| s.key == "stats").unwrap();
/// assert_eq!(stats.value, "true");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// The key, e.g. `max_total_memory`.
    pub key: &'static str,
    /// The value in TOML syntax (empty when unset).
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.value.is_empty() {
            "(unset)"
        } else {
            &self.value
        };
        write!(f, "{} = {} ({})", self.key, value, self.source)
    }
}

fn quoted(s: ByteSize) -> String {
    format!("\"{s}\"")
}
