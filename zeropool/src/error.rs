//! The crate's error type, and where a setting came from.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong building, configuring or reloading a pool.
///
/// # Example
/// ```
/// use zeropool::{BufferPool, Error};
///
/// let err = BufferPool::builder().shards(0).batch_size(100).build().unwrap_err();
/// let Error::Invalid(problems) = &err else { unreachable!() };
/// assert_eq!(problems.len(), 2);
/// assert!(err.to_string().contains("`shards` = 0"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// One or more settings are out of range, unknown, or unreadable; every
    /// problem found is listed. Nothing was built or applied.
    #[error("invalid pool configuration:{}", ProblemList(.0))]
    Invalid(Vec<Problem>),
    /// A reload tried to change settings fixed when the pool was built
    /// (`shards`, `numa`, `size_classes`, `wipe_on_return`, `pinned`,
    /// `track_outstanding`); nothing changed.
    #[error("reload refused, nothing changed:{}", ProblemList(.0))]
    RestartRequired(Vec<Problem>),
    /// Watching a config file could not start.
    #[error("cannot watch {}: {reason}", .path.display())]
    Watch {
        /// The file to watch.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// The problems listed by [`Invalid`](Self::Invalid) and
    /// [`RestartRequired`](Self::RestartRequired) (empty for other kinds).
    ///
    /// ```
    /// let err = zeropool::BufferPool::builder().shards(0).build().unwrap_err();
    /// assert_eq!(err.problems()[0].key, "shards");
    /// ```
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Invalid(p) | Error::RestartRequired(p) => p,
            Error::Watch { .. } => &[],
        }
    }
}

/// One bad setting: which key, the value given, where it came from and what
/// is accepted.
///
/// `key` is the path in the config file (`pool.batch_size`,
/// `pools.net.shards`) for pools that read a file or the environment, and the
/// builder method's name (`batch_size`) for values set by a builder call or
/// on a pool that reads no sources. Problems with a file as a whole (it
/// cannot be read, or is not TOML) have the key `config_file` or an empty
/// key.
///
/// # Example
/// ```
/// use zeropool::{Problem, Source};
///
/// let err = zeropool::PoolConfig::from_toml_str("[pool]\ntls_cache_size = 8\nbatch_size = 99\n")
///     .unwrap_err();
/// let p: &Problem = &err.problems()[0];
/// assert_eq!(p.key, "pool.batch_size");
/// assert_eq!(p.value, "99");
/// assert!(matches!(p.source, Source::File { line: Some(3), .. }));
/// assert_eq!(p.to_string(), "`pool.batch_size` = 99 (from <string> line 3): an integer from 1 to tls_cache_size (8)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The setting's name or path (see above).
    pub key: String,
    /// The value that was given, as text (TOML syntax for file values).
    pub value: String,
    /// Where the value came from.
    pub source: Source,
    /// What values are accepted (or, for a whole-file problem, what is wrong).
    pub accepted: String,
}

impl Problem {
    pub(crate) fn new(
        key: impl Into<String>,
        value: impl Into<String>,
        source: Source,
        accepted: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            source,
            accepted: accepted.into(),
        }
    }
}

/// Where a setting's value came from.
///
/// ```
/// use zeropool::Source;
///
/// let s = Source::Env { var: "ZEROPOOL_POOL__SHARDS".into() };
/// assert_eq!(s.to_string(), "from env ZEROPOOL_POOL__SHARDS");
/// let s = Source::File { path: "/etc/zeropool.toml".into(), line: Some(7) };
/// assert_eq!(s.to_string(), "from /etc/zeropool.toml line 7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The built-in default.
    Default,
    /// A builder method call.
    Builder,
    /// A config file (or TOML text, whose path reads `<string>`), with the
    /// line of the key where the parser gives it.
    File {
        /// The file's path as given or discovered.
        path: PathBuf,
        /// 1-based line of the key.
        line: Option<usize>,
    },
    /// An environment variable.
    Env {
        /// The variable's name, e.g. `ZEROPOOL_POOL__MAX_TOTAL_MEMORY`.
        var: String,
    },
    /// A [`PoolConfig`](crate::PoolConfig) field built, changed or
    /// deserialized by the program, or a limit changed at run time
    /// (e.g. [`Pool::set_max_total_memory`](crate::Pool::set_max_total_memory)).
    Code,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Builder => f.write_str("set by builder"),
            Source::File { path, line } => {
                write!(f, "from {}", path.display())?;
                match line {
                    Some(line) => write!(f, " line {line}"),
                    None => Ok(()),
                }
            }
            Source::Env { var } => write!(f, "from env {var}"),
            Source::Code => f.write_str("set in code"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{} ({})", self.accepted, self.source)
        } else {
            write!(
                f,
                "`{}` = {} ({}): {}",
                self.key, self.value, self.source, self.accepted
            )
        }
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}
