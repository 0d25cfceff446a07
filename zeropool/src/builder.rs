//! [`PoolBuilder`]: the settings of a pool, from defaults, a config file,
//! the environment and builder calls, checked all together.
//!
//! ```text
//! defaults < file (.config_file / $ZEROPOOL_CONFIG / ./zeropool.toml) < ZEROPOOL_* env < builder calls
//!                 └─ read only by from_config(), .config_file(), .named(), .load_config()
//! ```

use crate::config::sources::{self, FileChoice};
use crate::config::{validate, ConfigState, Numa, OnExhausted, PoolConfig, Shards, SizeClassSpec};
use crate::config::{ByteSize, KEYS};
use crate::error::{Error, Source};
use crate::home::NumaState;
use crate::numa::{CpuLookup, NodeLocator, Placement, ShardMap, Topology};
use crate::pool::{Fixed, Inner};
use crate::{Pool, Poolable};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

/// Most shards a pool may have.
///
/// ```
/// use zeropool::{BufferPool, MAX_SHARDS};
///
/// assert_eq!(BufferPool::builder().shards(MAX_SHARDS).build()?.shards(), MAX_SHARDS);
/// assert!(BufferPool::builder().shards(MAX_SHARDS + 1).build().is_err());
/// # Ok::<(), zeropool::Error>(())
/// ```
pub const MAX_SHARDS: usize = 1024;
/// Most objects per class a thread cache may hold.
///
/// ```
/// use zeropool::{BufferPool, MAX_TLS_CACHE_SIZE};
///
/// assert!(BufferPool::builder().tls_cache_size(MAX_TLS_CACHE_SIZE).build().is_ok());
/// assert!(BufferPool::builder().tls_cache_size(MAX_TLS_CACHE_SIZE + 1).build().is_err());
/// ```
pub const MAX_TLS_CACHE_SIZE: usize = 1 << 16;
/// Most size classes a pool may have.
///
/// ```
/// use zeropool::{BufferPool, MAX_SIZE_CLASSES};
///
/// let too_many: Vec<usize> = (1..=MAX_SIZE_CLASSES + 1).collect();
/// assert!(BufferPool::builder().size_classes(&too_many).build().is_err());
/// assert!(BufferPool::builder().size_classes(&too_many[1..]).build().is_ok());
/// ```
pub const MAX_SIZE_CLASSES: usize = 1024;
/// Largest size class: 1 TiB.
///
/// ```
/// use zeropool::{BufferPool, MAX_CLASS_SIZE};
///
/// assert!(BufferPool::builder().size_classes(&[4096, MAX_CLASS_SIZE]).build().is_ok());
/// assert!(BufferPool::builder().size_classes(&[4096, MAX_CLASS_SIZE + 1]).build().is_err());
/// ```
pub const MAX_CLASS_SIZE: usize = 1 << 40;

/// Default objects per class in each thread cache.
///
/// ```
/// assert_eq!(zeropool::BufferPool::new().tls_cache_size(), zeropool::DEFAULT_TLS_CACHE_SIZE);
/// ```
pub const DEFAULT_TLS_CACHE_SIZE: usize = 8;
/// Default objects moved between a thread cache and a shard at once.
///
/// ```
/// assert_eq!(zeropool::BufferPool::new().batch_size(), zeropool::DEFAULT_BATCH_SIZE);
/// ```
pub const DEFAULT_BATCH_SIZE: usize = 4;
/// Default budget of idle bytes: 1 GiB. When no source sets
/// `max_total_memory`, this is the cap of the default policy, which keeps
/// idle bytes near 1/16 of the bytes in use (at least 1 MiB); see the
/// [guide](crate::guide).
///
/// ```
/// use zeropool::{BufferPool, DEFAULT_MAX_TOTAL_MEMORY};
///
/// let pool = BufferPool::new();
/// assert_eq!(pool.max_total_memory(), DEFAULT_MAX_TOTAL_MEMORY);
/// // 8 MiB handed out and returned: the default policy keeps 1 MiB of it idle.
/// drop(pool.get_batch(&[1 << 20; 8]));
/// assert!(pool.stats().bytes_retained <= 1 << 20);
/// ```
pub const DEFAULT_MAX_TOTAL_MEMORY: usize = 1 << 30;

/// Builds a [`Pool`]; every setting has a default.
///
/// | setting | default |
/// |---|---|
/// | `shards` | CPU count rounded up to a power of two, at most 64 |
/// | `tls_cache_size` | 8 objects per class |
/// | `batch_size` | 4, or `tls_cache_size` when that is smaller |
/// | `size_classes` | 4 per doubling, 256 B to 4 MiB |
/// | `max_total_memory` | 1 GiB |
/// | `stats` | on |
/// | `wipe_on_return` | off |
///
/// ## Sources
/// A plain builder reads nothing but its own calls: it is hermetic, whatever
/// files or variables exist. [`config_file`](Self::config_file),
/// [`named`](Self::named) and [`load_config`](Self::load_config) (which
/// [`Pool::from_config`] uses) make it read, in increasing precedence:
/// defaults < the config file < `ZEROPOOL_*` environment variables < the
/// builder's own calls. Every setting, from every source, is checked
/// together; `build` lists every problem with where its value came from,
/// and builds nothing if there is one.
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
    explicit: Explicit,
    file: Option<PathBuf>,
    name: Option<String>,
    load: bool,
    topology: Option<Topology>,
    cpu_lookup: Option<CpuLookup>,
    _type: PhantomData<fn() -> T>,
}

/// Settings given by builder calls (or [`PoolBuilder::config`]), with their
/// sources; applied over the file and the environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Explicit {
    values: PoolConfig,
    set: BTreeMap<&'static str, Source>,
}

impl Explicit {
    fn set(&mut self, key: &'static str, f: impl FnOnce(&mut PoolConfig)) {
        f(&mut self.values);
        self.values.origins.remove(key);
        self.set.insert(key, Source::Builder);
    }

    /// Copies every set value into `cfg`, recording its source.
    pub(crate) fn apply(&self, cfg: &mut PoolConfig) {
        for (&key, source) in &self.set {
            cfg.copy_field(&self.values, key);
            cfg.record(key, source.clone(), self.values.raw_text(key));
        }
    }
}

impl<T> fmt::Debug for PoolBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PoolBuilder");
        for key in KEYS {
            let value = self
                .explicit
                .set
                .contains_key(key)
                .then(|| self.explicit.values.value_text(key).unwrap_or_default());
            d.field(key, &value);
        }
        d.field("config_file", &self.file)
            .field("named", &self.name)
            .field("load_config", &self.load)
            .field("topology", &self.topology)
            .field("cpu_lookup", &self.cpu_lookup.is_some())
            .finish()
    }
}

impl<T: Poolable> Default for PoolBuilder<T> {
    fn default() -> Self {
        Self {
            explicit: Explicit::default(),
            file: None,
            name: None,
            load: false,
            topology: None,
            cpu_lookup: None,
            _type: PhantomData,
        }
    }
}

/// The shard count `shards = "auto"` picks: available CPUs rounded up to a
/// power of two, at most 64.
///
/// ```
/// assert!(zeropool::auto_shards().is_power_of_two());
/// ```
pub fn auto_shards() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .next_power_of_two()
        .min(64)
}

impl<T: Poolable> PoolBuilder<T> {
    /// Number of shared shards, `1..=1024`; rounded up to a power of two.
    ///
    /// ```
    /// assert_eq!(zeropool::BufferPool::builder().shards(3).build()?.shards(), 4);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn shards(mut self, n: usize) -> Self {
        self.explicit.set("shards", |c| c.shards = Shards::Count(n));
        self
    }

    /// Idle objects each thread keeps per size class, `1..=65536`.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().tls_cache_size(32).build()?;
    /// assert_eq!(pool.tls_cache_size(), 32);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn tls_cache_size(mut self, n: usize) -> Self {
        self.explicit
            .set("tls_cache_size", |c| c.tls_cache_size = n);
        self
    }

    /// Objects moved between a thread cache and a shard at once,
    /// `1..=tls_cache_size`.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().batch_size(2).build()?;
    /// assert_eq!(pool.batch_size(), 2);
    /// assert!(zeropool::BufferPool::builder().batch_size(9).build().is_err());
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn batch_size(mut self, n: usize) -> Self {
        self.explicit.set("batch_size", |c| c.batch_size = n);
        self
    }

    /// Size classes in bytes: non-empty, strictly ascending, each in
    /// `1..=2^40`, at most 1024 of them.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().size_classes(&[1024, 8192]).build()?;
    /// assert_eq!(pool.size_classes(), &[1024, 8192]);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn size_classes(mut self, sizes: &[usize]) -> Self {
        let list = SizeClassSpec::List(sizes.iter().map(|&s| ByteSize::from(s)).collect());
        self.explicit.set("size_classes", |c| c.size_classes = list);
        self
    }

    /// Most idle bytes the pool keeps across all thread caches and shards;
    /// `0` keeps nothing.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().max_total_memory(1 << 20).build()?;
    /// assert_eq!(pool.max_total_memory(), 1 << 20);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn max_total_memory(mut self, bytes: usize) -> Self {
        self.explicit
            .set("max_total_memory", |c| c.max_total_memory = bytes.into());
        self
    }

    /// Whether counters are kept (gauges always are).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().stats(false).build()?;
    /// drop(pool.get(4096));
    /// assert_eq!(pool.stats().gets, 0);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn stats(mut self, on: bool) -> Self {
        self.explicit.set("stats", |c| c.stats = on);
        self
    }

    /// Zero the used bytes of byte buffers before they are cached (for keys
    /// and personal data). Only types whose [`Poolable::wipe`] does so are
    /// affected.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().wipe_on_return(true).build()?;
    /// assert!(pool.wipe_on_return());
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn wipe_on_return(mut self, on: bool) -> Self {
        self.explicit
            .set("wipe_on_return", |c| c.wipe_on_return = on);
        self
    }

    /// Lock fresh pool memory in RAM (`mlock`). When the memlock limit
    /// refuses it, the pool goes on unpinned and counts the failure
    /// (`PoolStats::pin_failures`, with the limit in `numa_error`). The
    /// pool unlocks (`munlock`) each object it frees, so locked memory
    /// follows what the pool holds; an object taken out for good
    /// (`into_inner`) stays locked until the allocator unmaps its pages.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().pinned(true).build()?;
    /// drop(pool.get(1 << 20));
    /// let s = pool.stats();
    /// assert!(s.pin_failures == 0 || s.numa_error.is_some());
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn pinned(mut self, on: bool) -> Self {
        self.explicit.set("pinned", |c| c.pinned = on);
        self
    }

    /// Record the call site of every live guard, for
    /// [`Pool::outstanding`](crate::Pool::outstanding) (a debugging aid:
    /// each get and return then takes a mutex).
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().track_outstanding(true).build()?;
    /// let _held = pool.get(4096);
    /// assert_eq!(pool.outstanding()[0].count, 1);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn track_outstanding(mut self, on: bool) -> Self {
        self.explicit
            .set("track_outstanding", |c| c.track_outstanding = on);
        self
    }

    /// Release memory idle longer than `after` (see
    /// [`Pool::set_trim_after`](crate::Pool::set_trim_after)); config key
    /// `trim_after = "30s"`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = zeropool::BufferPool::builder().trim_after(Duration::from_secs(30)).build()?;
    /// assert_eq!(pool.trim_after(), Some(Duration::from_secs(30)));
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn trim_after(mut self, after: std::time::Duration) -> Self {
        self.explicit
            .set("trim_after", |c| c.trim_after = Some(crate::Period(after)));
        self
    }

    /// The machine to place shards and memory on; by default the one hwloc
    /// sees ([`Topology::detect`]). A synthetic topology lets a program (or a
    /// test) see what the pool does on a NUMA machine.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// use zeropool::{numa::Topology, BufferPool, Numa};
    ///
    /// let two = Topology::synthetic("pack:2 numa:1 core:2 pu:1")?;
    /// let pool = BufferPool::builder().topology(two).numa(Numa::Local).build()?;
    /// assert_eq!(pool.stats().nodes.len(), 2);
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn topology(mut self, topology: Topology) -> Self {
        self.topology = Some(topology);
        self
    }

    /// How the pool learns which CPU a thread runs on, instead of
    /// `sched_getcpu` (called on slow paths only): for simulations and tests
    /// on a synthetic topology.
    ///
    /// ```
    /// # #[cfg(feature = "numa")] {
    /// use std::sync::Arc;
    /// use zeropool::{numa::Topology, BufferPool, Numa};
    ///
    /// // Every thread "runs" on CPU 3, which is on node 1 of this machine.
    /// let pool = BufferPool::builder()
    ///     .topology(Topology::synthetic("pack:2 numa:1 core:2 pu:1")?)
    ///     .numa(Numa::Local)
    ///     .cpu_lookup(Arc::new(|| 3))
    ///     .build()?;
    /// drop(pool.get(4096));
    /// let nodes = pool.stats().nodes;
    /// assert_eq!((nodes[0].allocations, nodes[1].allocations), (0, 1));
    /// # }
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn cpu_lookup(mut self, lookup: CpuLookup) -> Self {
        self.cpu_lookup = Some(lookup);
        self
    }

    /// NUMA placement: shards grouped per node, fresh memory placed by the
    /// policy, objects returned to their home node (feature `numa`; without
    /// hwloc the pool is one node and `numa` changes nothing).
    ///
    /// ```
    /// use zeropool::{BufferPool, Numa};
    ///
    /// let pool = BufferPool::builder().numa(Numa::Off).build()?;
    /// assert_eq!(pool.config().numa, Numa::Off);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn numa(mut self, numa: Numa) -> Self {
        self.explicit.set("numa", |c| c.numa = numa);
        self
    }

    /// Hard cap on bytes handed out and not yet returned (see
    /// [`Pool::try_get`](crate::Pool::try_get)).
    ///
    /// ```
    /// use zeropool::{BufferPool, ByteSize};
    ///
    /// let pool = BufferPool::builder().max_outstanding_memory(4 << 30).build()?;
    /// assert_eq!(pool.config().max_outstanding_memory, Some(ByteSize(4 << 30)));
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn max_outstanding_memory(mut self, bytes: usize) -> Self {
        self.explicit.set("max_outstanding_memory", |c| {
            c.max_outstanding_memory = Some(bytes.into())
        });
        self
    }

    /// What a get that cannot return an error (`get`, `get_batch`,
    /// `get_async`, ...) does past `max_outstanding_memory`: see
    /// [`OnExhausted`].
    ///
    /// ```
    /// use zeropool::{BufferPool, OnExhausted};
    ///
    /// let pool = BufferPool::builder().on_exhausted(OnExhausted::Wait).build()?;
    /// assert_eq!(pool.config().on_exhausted, OnExhausted::Wait);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn on_exhausted(mut self, on: OnExhausted) -> Self {
        self.explicit.set("on_exhausted", |c| c.on_exhausted = on);
        self
    }

    /// Every setting of `config`, as if each were a builder call (later
    /// calls still override them). Values keep the sources `config`
    /// recorded, so problems still name the file line they came from.
    ///
    /// ```
    /// use zeropool::{BufferPool, PoolConfig};
    ///
    /// let config = PoolConfig::from_toml_str("[pool]\nshards = 2\n")?;
    /// let pool = BufferPool::builder().config(&config).tls_cache_size(16).build()?;
    /// assert_eq!((pool.shards(), pool.tls_cache_size()), (2, 16));
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn config(mut self, config: &PoolConfig) -> Self {
        for key in KEYS {
            self.explicit.values.copy_field(config, key);
            // Keep how the value was written, for messages.
            match config.origins.get(key) {
                Some(origin) => self.explicit.values.origins.insert(key, origin.clone()),
                None => self.explicit.values.origins.remove(key),
            };
            let source = match config.source(key) {
                Some(Source::Default) | None => Source::Builder,
                Some(s) => s,
            };
            self.explicit.set.insert(key, source);
        }
        self
    }

    /// Reads this TOML file (it must exist) and the `ZEROPOOL_*` environment,
    /// under the builder's own calls.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("zp-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("pool.toml");
    /// std::fs::write(&path, "[pool]\nshards = 2\nmax_total_memory = \"64 MiB\"\n")?;
    ///
    /// let pool = zeropool::BufferPool::builder().config_file(&path).build()?;
    /// assert_eq!(pool.shards(), 2);
    /// assert_eq!(pool.max_total_memory(), 64 << 20);
    ///
    /// let missing = zeropool::BufferPool::builder().config_file(dir.join("nope.toml")).build();
    /// assert!(missing.unwrap_err().to_string().contains("nope.toml"));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Reads the named pool's table, `[pools.<name>]`, instead of `[pool]`
    /// (from the [`config_file`](Self::config_file), else the discovered
    /// file, plus `ZEROPOOL_POOLS__<NAME>__*` variables). A name with no
    /// table gets the defaults.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().named("net").build()?;
    /// assert_eq!(pool.config_section(), "pools.net");
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Reads the discovered config file (`$ZEROPOOL_CONFIG`, else
    /// `./zeropool.toml` if present) and the `ZEROPOOL_*` environment, under
    /// the builder's own calls. [`Pool::from_config`] is
    /// `builder().load_config().build()`.
    ///
    /// ```
    /// let pool = zeropool::BufferPool::builder().load_config().stats(false).build()?;
    /// assert!(!pool.config().stats);
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn load_config(mut self) -> Self {
        self.load = true;
        self
    }

    /// Checks every setting and builds the pool, or lists all problems.
    ///
    /// ```
    /// use zeropool::{BufferPool, Error};
    ///
    /// let err = BufferPool::builder().shards(0).tls_cache_size(0).build().unwrap_err();
    /// assert_eq!(err.problems().len(), 2);
    /// assert!(BufferPool::builder().build().is_ok());
    /// ```
    pub fn build(self) -> Result<Pool<T>, Error> {
        let section = match (&self.name, T::config_section()) {
            (Some(name), _) => format!("pools.{name}"),
            (None, Some(name)) => format!("pools.{name}"),
            (None, None) => "pool".to_string(),
        };
        let reads = self.file.is_some() || self.name.is_some() || self.load;
        let (mut cfg, unparsed, mut problems, file) = if reads {
            let choice = match &self.file {
                Some(path) => FileChoice::Required(path.clone(), Source::Builder),
                None => FileChoice::Discover,
            };
            let gathered = sources::gather(choice, true);
            let s = gathered.section(&section);
            let problems = gathered.problems_except(&section);
            (s.config, s.unparsed, problems, gathered.file)
        } else {
            (PoolConfig::default(), Vec::new(), Vec::new(), None)
        };
        self.explicit.apply(&mut cfg);
        problems.extend(validate::check(
            &cfg,
            reads.then_some(section.as_str()),
            &unparsed,
        ));
        let topology = self.topology.clone().unwrap_or_else(Topology::detect);
        let numa_key = if reads {
            format!("{section}.numa")
        } else {
            "numa".to_string()
        };
        let numa_source = cfg.source("numa").unwrap_or(Source::Default);
        let placement = match Placement::resolve_at(&cfg.numa, &topology, &numa_key, numa_source) {
            Ok(placement) => placement,
            Err(err) => {
                problems.extend(err.problems().iter().cloned());
                Placement::off()
            }
        };
        if !problems.is_empty() {
            return Err(validate::invalid(problems));
        }
        let map = ShardMap::new(&topology, &placement, cfg.shards);
        let mut locator = NodeLocator::new(topology);
        if let Some(lookup) = self.cpu_lookup.clone() {
            locator = locator.with_cpu_lookup(lookup);
        }
        let numa = NumaState::new(locator, placement, map, cfg.pinned);
        let fixed = Fixed {
            track: cfg.track_outstanding,
            classes: cfg.size_classes.sizes(),
            wipe_on_return: cfg.wipe_on_return,
        };
        // An unset budget is left to the pool's default policy.
        let budget = (cfg.source("max_total_memory") != Some(Source::Default))
            .then(|| cfg.max_total_memory.to_usize().unwrap_or(usize::MAX));
        cfg.follow_cache_size();
        let (tls, batch, stats) = (cfg.tls_cache_size, cfg.batch_size, cfg.stats);
        let track = cfg.track_outstanding;
        let trim_after = cfg.trim_after;
        let state = ConfigState::new(cfg, section, reads, self.explicit, file);
        let inner = Inner::new(fixed, tls, batch, budget, stats, state, numa, track);
        if let Some(period) = trim_after {
            inner.set_trim_after(Some(period.0));
        }
        inner.apply_placeholder_limits();
        Ok(Pool { inner, user: true })
    }
}
