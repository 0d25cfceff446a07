//! Declarative configuration: `zeropool.toml`, `ZEROPOOL_*` variables and
//! builder calls, checked together with where each value came from;
//! reloading the limits of a running pool.
//!
//! ```text
//! schema    PoolConfig: the keys, with where each value came from
//! values    Shards, Numa, SizeClassSpec, OnExhausted
//! size      "64 KiB" and friends
//! env       the ZEROPOOL_* variables as a figment provider
//! sources   which file, figment (Toml::file_exact + Env), lines and variable names
//! validate  every key parsed, every range and cross-key rule
//! suggest   "did you mean"
//! reload    Pool::reload / config / last_reload_error, ReloadReport
//! watch     Pool::watch (feature `watch`)
//! ```
//!
//! ## The file
//! ```toml
//! [pool]                        # the default pool
//! shards = "auto"
//! max_total_memory = "1 GiB"
//!
//! [pools.net]                   # BufferPool::builder().named("net")
//! shards = 8
//! ```
//! A `[pools.<name>]` table does not inherit from `[pool]`: each table is a
//! whole pool over the defaults. Environment variables mirror the keys:
//! `ZEROPOOL_POOL__MAX_TOTAL_MEMORY="2 GiB"`, `ZEROPOOL_POOLS__NET__SHARDS=8`;
//! `ZEROPOOL_CONFIG` names the file.

mod env;
mod period;
mod reload;
mod schema;
mod size;
pub(crate) mod sources;
mod suggest;
pub(crate) mod validate;
mod values;
#[cfg(feature = "watch")]
mod watch;

pub use period::Period;
pub(crate) use reload::ConfigState;
pub use reload::{Change, ReloadReport};
pub(crate) use schema::KEYS;
pub use schema::{PoolConfig, Setting};
pub use size::ByteSize;
pub use values::{Numa, OnExhausted, Shards, SizeClassSpec};
#[cfg(feature = "watch")]
pub use watch::WatchHandle;

use crate::error::{Error, Source};
use sources::{FileChoice, Gathered};
use std::path::{Path, PathBuf};

impl PoolConfig {
    /// The `[pool]` table of TOML text, checked: every problem in the text
    /// (any table's) is listed, with its line. The environment is not read.
    ///
    /// ```
    /// use zeropool::{ByteSize, PoolConfig, SizeClassSpec};
    ///
    /// let c = PoolConfig::from_toml_str(r#"
    ///     [pool]
    ///     size_classes = { min = "256 B", max = "64 MiB", per_doubling = 4 }
    ///     max_total_memory = 1073741824
    /// "#)?;
    /// assert!(matches!(c.size_classes, SizeClassSpec::Geometric { per_doubling: 4, .. }));
    /// assert_eq!(c.max_total_memory, ByteSize(1 << 30));
    ///
    /// let err = PoolConfig::from_toml_str("[pool]\nshards = 0\nmax_total_memroy = 5\n").unwrap_err();
    /// assert_eq!(err.problems().len(), 2);
    /// assert!(err.to_string().contains("did you mean `max_total_memory`?"));
    /// # Ok::<(), zeropool::Error>(())
    /// ```
    pub fn from_toml_str(text: &str) -> Result<PoolConfig, Error> {
        pool_table(sources::gather(FileChoice::Text(text.to_string()), false))
    }

    /// The `[pool]` table of the TOML file at `path` (which must exist),
    /// checked like [`from_toml_str`](Self::from_toml_str). The environment
    /// is not read.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("zp-load-{}.toml", std::process::id()));
    /// std::fs::write(&path, "[pool]\ntls_cache_size = 16\n")?;
    /// let c = zeropool::PoolConfig::load(&path)?;
    /// assert_eq!(c.tls_cache_size, 16);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<PoolConfig, Error> {
        let choice = FileChoice::Required(path.as_ref().to_path_buf(), Source::Code);
        pool_table(sources::gather(choice, false))
    }
}

fn pool_table(gathered: Gathered) -> Result<PoolConfig, Error> {
    let problems = gathered.all_problems();
    if problems.is_empty() {
        Ok(gathered.section("pool").config)
    } else {
        Err(validate::invalid(problems))
    }
}

/// Every pool a config file and the environment describe, resolved over the
/// defaults: what `zeropool check` prints.
///
/// # Example
/// ```
/// use zeropool::{ConfigSet, Shards};
///
/// let path = std::env::temp_dir().join(format!("zp-set-{}.toml", std::process::id()));
/// std::fs::write(&path, "[pool]\nshards = 2\n[pools.net]\nshards = 8\n")?;
/// let set = ConfigSet::resolve(Some(&path))?;
/// let names: Vec<&str> = set.pools().map(|(name, _)| name).collect();
/// assert_eq!(names, ["pool", "pools.net"]);
/// assert_eq!(set.get("pools.net").unwrap().shards, Shards::Count(8));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConfigSet {
    file: Option<PathBuf>,
    pools: Vec<(String, PoolConfig)>,
}

impl ConfigSet {
    /// Reads `file` (which must exist), or the discovered one
    /// (`$ZEROPOOL_CONFIG`, else `./zeropool.toml` if present), and the
    /// `ZEROPOOL_*` environment; checks everything and lists every problem.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("zp-resolve-{}.toml", std::process::id()));
    /// std::fs::write(&path, "[pool]\nshards = 0\n")?;
    /// let err = zeropool::ConfigSet::resolve(Some(&path)).unwrap_err();
    /// assert_eq!(err.problems()[0].key, "pool.shards");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve(file: Option<&Path>) -> Result<ConfigSet, Error> {
        let choice = match file {
            Some(path) => FileChoice::Required(path.to_path_buf(), Source::Code),
            None => FileChoice::Discover,
        };
        let gathered = sources::gather(choice, true);
        let problems = gathered.all_problems();
        if !problems.is_empty() {
            return Err(validate::invalid(problems));
        }
        let mut pools = vec![("pool".to_string(), gathered.section("pool").config)];
        for (name, section) in gathered.sections {
            if name != "pool" {
                pools.push((name, section.config));
            }
        }
        Ok(ConfigSet {
            file: gathered.file,
            pools,
        })
    }

    /// The file read, if any.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("zp-file-{}.toml", std::process::id()));
    /// std::fs::write(&path, "")?;
    /// assert_eq!(zeropool::ConfigSet::resolve(Some(&path))?.file(), Some(path.as_path()));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Each pool's table path (`pool` first, then `pools.<name>` in name
    /// order) with its resolved config.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("zp-pools-{}.toml", std::process::id()));
    /// std::fs::write(&path, "[pools.b]\n[pools.a]\n")?;
    /// let set = zeropool::ConfigSet::resolve(Some(&path))?;
    /// let names: Vec<&str> = set.pools().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["pool", "pools.a", "pools.b"]);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pools(&self) -> impl Iterator<Item = (&str, &PoolConfig)> {
        self.pools.iter().map(|(n, c)| (n.as_str(), c))
    }

    /// The pool at a table path such as `pool` or `pools.net`.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("zp-get-{}.toml", std::process::id()));
    /// std::fs::write(&path, "[pools.net]\nstats = false\n")?;
    /// let set = zeropool::ConfigSet::resolve(Some(&path))?;
    /// assert!(!set.get("pools.net").unwrap().stats);
    /// assert!(set.get("pools.web").is_none());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, table: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|(n, _)| n == table).map(|(_, c)| c)
    }
}
