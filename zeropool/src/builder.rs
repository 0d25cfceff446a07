//! [`PoolBuilder`]: the settings of a pool, checked all together.

use crate::error::{Error, Problem, Source};
use crate::pool::{Fixed, Inner};
use crate::size_class;
use crate::{Pool, Poolable};
use std::fmt;
use std::marker::PhantomData;

/// Most shards a pool may have.
pub const MAX_SHARDS: usize = 1024;
/// Most objects per class a thread cache may hold.
pub const MAX_TLS_CACHE_SIZE: usize = 1 << 16;
/// Most size classes a pool may have.
pub const MAX_SIZE_CLASSES: usize = 1024;
/// Largest size class: 1 TiB.
pub const MAX_CLASS_SIZE: usize = 1 << 40;

/// Default objects per class in each thread cache.
pub const DEFAULT_TLS_CACHE_SIZE: usize = 8;
/// Default objects moved between a thread cache and a shard at once.
pub const DEFAULT_BATCH_SIZE: usize = 4;
/// Default budget of idle bytes: 1 GiB.
pub const DEFAULT_MAX_TOTAL_MEMORY: usize = 1 << 30;

/// Builds a [`Pool`]; every setting has a default.
///
/// | setting | default |
/// |---|---|
/// | `shards` | CPU count rounded up to a power of two, at most 64 |
/// | `tls_cache_size` | 8 objects per class |
/// | `batch_size` | 4 |
/// | `size_classes` | 4 per doubling, 256 B to 4 MiB |
/// | `max_total_memory` | 1 GiB |
/// | `stats` | on |
/// | `wipe_on_return` | off |
///
/// # Example
/// ```
/// use zeropool::BufferPool;
///
/// let pool = BufferPool::builder()
///     .shards(4)
///     .tls_cache_size(8)
///     .batch_size(4)
///     .size_classes(&[4096, 16384, 65536])
///     .max_total_memory(256 << 20)
///     .stats(true)
///     .build()?;
/// assert_eq!(pool.size_classes(), &[4096, 16384, 65536]);
/// # Ok::<(), zeropool::Error>(())
/// ```
pub struct PoolBuilder<T> {
    shards: Option<usize>,
    tls_cache_size: usize,
    batch_size: usize,
    size_classes: Option<Vec<usize>>,
    max_total_memory: Option<usize>,
    stats: bool,
    wipe_on_return: bool,
    _type: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for PoolBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("shards", &self.shards)
            .field("tls_cache_size", &self.tls_cache_size)
            .field("batch_size", &self.batch_size)
            .field("size_classes", &self.size_classes)
            .field("max_total_memory", &self.max_total_memory)
            .field("stats", &self.stats)
            .field("wipe_on_return", &self.wipe_on_return)
            .finish()
    }
}

impl<T: Poolable> Default for PoolBuilder<T> {
    fn default() -> Self {
        Self {
            shards: None,
            tls_cache_size: DEFAULT_TLS_CACHE_SIZE,
            batch_size: DEFAULT_BATCH_SIZE,
            size_classes: None,
            max_total_memory: None,
            stats: true,
            wipe_on_return: false,
            _type: PhantomData,
        }
    }
}

/// The shard count `shards = "auto"` picks: available CPUs rounded up to a
/// power of two, at most 64.
pub fn auto_shards() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .next_power_of_two()
        .min(64)
}

impl<T: Poolable> PoolBuilder<T> {
    /// Number of shared shards, `1..=1024`; rounded up to a power of two.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Idle objects each thread keeps per size class, `1..=65536`.
    pub fn tls_cache_size(mut self, n: usize) -> Self {
        self.tls_cache_size = n;
        self
    }

    /// Objects moved between a thread cache and a shard at once,
    /// `1..=tls_cache_size`.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Size classes in bytes: non-empty, strictly ascending, each in
    /// `1..=2^40`, at most 1024 of them.
    pub fn size_classes(mut self, sizes: &[usize]) -> Self {
        self.size_classes = Some(sizes.to_vec());
        self
    }

    /// Most idle bytes the pool keeps across all thread caches and shards;
    /// `0` keeps nothing.
    pub fn max_total_memory(mut self, bytes: usize) -> Self {
        self.max_total_memory = Some(bytes);
        self
    }

    /// Whether counters are kept (gauges always are).
    pub fn stats(mut self, on: bool) -> Self {
        self.stats = on;
        self
    }

    /// Zero the used bytes of byte buffers before they are cached (for keys
    /// and personal data). Only types whose [`Poolable::wipe`] does so are
    /// affected.
    pub fn wipe_on_return(mut self, on: bool) -> Self {
        self.wipe_on_return = on;
        self
    }

    /// Checks every setting and builds the pool, or lists all problems.
    pub fn build(self) -> Result<Pool<T>, Error> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, value: String, accepted: String| {
            problems.push(Problem {
                key: key.into(),
                value,
                source: Source::Builder,
                accepted,
            });
        };
        let shards = match self.shards {
            None => auto_shards(),
            Some(n) if (1..=MAX_SHARDS).contains(&n) => n.next_power_of_two(),
            Some(n) => {
                bad(
                    "shards",
                    n.to_string(),
                    format!("an integer from 1 to {MAX_SHARDS}"),
                );
                1
            }
        };
        if !(1..=MAX_TLS_CACHE_SIZE).contains(&self.tls_cache_size) {
            bad(
                "tls_cache_size",
                self.tls_cache_size.to_string(),
                format!("an integer from 1 to {MAX_TLS_CACHE_SIZE}"),
            );
        }
        if self.batch_size == 0 || self.batch_size > self.tls_cache_size {
            bad(
                "batch_size",
                self.batch_size.to_string(),
                format!(
                    "an integer from 1 to tls_cache_size ({})",
                    self.tls_cache_size
                ),
            );
        }
        let classes = self.size_classes.unwrap_or_else(size_class::default_sizes);
        if let Some(reason) = check_classes(&classes) {
            bad("size_classes", format!("{classes:?}"), reason);
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let fixed = Fixed {
            shards,
            classes,
            wipe_on_return: self.wipe_on_return,
        };
        Ok(Pool {
            inner: Inner::new(
                fixed,
                self.tls_cache_size,
                self.batch_size,
                self.max_total_memory,
                self.stats,
            ),
        })
    }
}

/// What is wrong with a class list, if anything.
fn check_classes(classes: &[usize]) -> Option<String> {
    let accepted = format!(
        "1 to {MAX_SIZE_CLASSES} sizes in bytes, strictly ascending, each from 1 to {MAX_CLASS_SIZE}"
    );
    if classes.is_empty() {
        return Some(format!("{accepted}; the list is empty"));
    }
    if classes.len() > MAX_SIZE_CLASSES {
        return Some(format!("{accepted}; got {} sizes", classes.len()));
    }
    if let Some(&s) = classes.iter().find(|&&s| s == 0 || s > MAX_CLASS_SIZE) {
        return Some(format!("{accepted}; {s} is out of range"));
    }
    if let Some(w) = classes.windows(2).find(|w| w[0] >= w[1]) {
        return Some(format!("{accepted}; {} is followed by {}", w[0], w[1]));
    }
    None
}
