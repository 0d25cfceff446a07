//! The value types of [`PoolConfig`](super::PoolConfig) keys that are more
//! than a number: `shards`, `numa`, `size_classes`, `on_exhausted`. Each
//! displays in TOML syntax.

use super::size::ByteSize;
use crate::builder::MAX_CLASS_SIZE;
use serde::{Serialize, Serializer};
use std::fmt;

/// `shards = "auto"` or a count.
///
/// ```
/// use zeropool::Shards;
///
/// assert_eq!(Shards::Count(6).resolve(), 8);
/// assert!(Shards::Auto.resolve().is_power_of_two());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Shards {
    /// CPUs rounded up to a power of two, at most 64 ([`auto_shards`](crate::auto_shards)).
    #[default]
    Auto,
    /// This many, rounded up to a power of two.
    Count(usize),
}

impl Shards {
    /// The shard count a pool built with this setting has.
    ///
    /// ```
    /// assert_eq!(zeropool::Shards::Count(1).resolve(), 1);
    /// assert_eq!(zeropool::Shards::Auto.resolve(), zeropool::auto_shards());
    /// ```
    pub fn resolve(self) -> usize {
        match self {
            Shards::Auto => crate::builder::auto_shards(),
            Shards::Count(n) => n.max(1).next_power_of_two(),
        }
    }
}

impl fmt::Display for Shards {
    /// TOML syntax: `"auto"` or the integer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shards::Auto => f.write_str("\"auto\""),
            Shards::Count(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Shards {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Shards::Auto => s.serialize_str("auto"),
            Shards::Count(n) => s.serialize_u64(*n as u64),
        }
    }
}

/// `numa = "auto" | "off" | "local" | "interleave" | [nodes]`.
///
/// ```
/// use zeropool::Numa;
///
/// assert_eq!(Numa::Nodes(vec![0, 1]).to_string(), "[0, 1]");
/// assert_eq!(Numa::default().to_string(), "\"auto\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Numa {
    /// Follow the machine: local placement when there are several nodes.
    #[default]
    Auto,
    /// Ignore NUMA.
    Off,
    /// Shards on each thread's own node.
    Local,
    /// Memory interleaved across nodes.
    Interleave,
    /// Only these nodes.
    Nodes(Vec<usize>),
}

impl Numa {
    fn name(&self) -> Option<&'static str> {
        Some(match self {
            Numa::Auto => "auto",
            Numa::Off => "off",
            Numa::Local => "local",
            Numa::Interleave => "interleave",
            Numa::Nodes(_) => return None,
        })
    }
}

impl fmt::Display for Numa {
    /// TOML syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self) {
            (Some(name), _) => write!(f, "\"{name}\""),
            (None, Numa::Nodes(nodes)) => write!(f, "{nodes:?}"),
            (None, _) => unreachable!("every other variant has a name"),
        }
    }
}

impl Serialize for Numa {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.name(), self) {
            (Some(name), _) => s.serialize_str(name),
            (_, Numa::Nodes(nodes)) => nodes.serialize(s),
            _ => unreachable!("every other variant has a name"),
        }
    }
}

/// `size_classes = ["4 KiB", ...]` or `{ min, max, per_doubling }`.
///
/// The default is 4 per doubling from 256 B to 4 MiB.
///
/// ```
/// use zeropool::{ByteSize, SizeClassSpec};
///
/// let spec = SizeClassSpec::Geometric { min: ByteSize(4096), max: ByteSize(65536), per_doubling: 1 };
/// assert_eq!(spec.sizes(), [4096, 8192, 16384, 32768, 65536]);
/// let list = SizeClassSpec::List(vec![ByteSize(4096), ByteSize(16384)]);
/// assert_eq!(list.to_string(), r#"["4 KiB", "16 KiB"]"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SizeClassSpec {
    /// Exactly these sizes.
    List(Vec<ByteSize>),
    /// `per_doubling` steps per doubling from `min` to `max`, rounded to 16
    /// bytes.
    Geometric {
        /// Smallest class.
        min: ByteSize,
        /// Largest class at most.
        max: ByteSize,
        /// Classes per doubling, `1..=64`.
        per_doubling: u32,
    },
}

impl Default for SizeClassSpec {
    fn default() -> Self {
        SizeClassSpec::Geometric {
            min: ByteSize(256),
            max: ByteSize(4 << 20),
            per_doubling: 4,
        }
    }
}

impl SizeClassSpec {
    /// The class sizes in bytes. A geometric spec with a bad range (checked
    /// by validation) gives an empty list; sizes that do not fit a `usize`
    /// saturate.
    ///
    /// ```
    /// use zeropool::{ByteSize, SizeClassSpec};
    ///
    /// assert_eq!(SizeClassSpec::List(vec![ByteSize(64), ByteSize(128)]).sizes(), [64, 128]);
    /// assert_eq!(SizeClassSpec::default().sizes()[0], 256);
    /// ```
    pub fn sizes(&self) -> Vec<usize> {
        if *self == SizeClassSpec::default() {
            return crate::size_class::default_sizes();
        }
        match self {
            SizeClassSpec::List(sizes) => sizes
                .iter()
                .map(|s| s.to_usize().unwrap_or(usize::MAX))
                .collect(),
            SizeClassSpec::Geometric {
                min,
                max,
                per_doubling,
            } => {
                let (min, max) = (min.0, max.0);
                if min == 0 || min > max || max > MAX_CLASS_SIZE as u64 || *per_doubling == 0 {
                    return Vec::new();
                }
                crate::size_class::geometric_sizes(
                    min as usize,
                    max as usize,
                    (*per_doubling).min(64),
                )
            }
        }
    }
}

impl fmt::Display for SizeClassSpec {
    /// TOML syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeClassSpec::List(sizes) => {
                f.write_str("[")?;
                for (i, s) in sizes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "\"{s}\"")?;
                }
                f.write_str("]")
            }
            SizeClassSpec::Geometric {
                min,
                max,
                per_doubling,
            } => write!(
                f,
                "{{ min = \"{min}\", max = \"{max}\", per_doubling = {per_doubling} }}"
            ),
        }
    }
}

impl Serialize for SizeClassSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        match self {
            SizeClassSpec::List(sizes) => sizes.serialize(s),
            SizeClassSpec::Geometric {
                min,
                max,
                per_doubling,
            } => {
                let mut st = s.serialize_struct("SizeClassSpec", 3)?;
                st.serialize_field("min", min)?;
                st.serialize_field("max", max)?;
                st.serialize_field("per_doubling", per_doubling)?;
                st.end()
            }
        }
    }
}

/// `on_exhausted`: what a get does when a request does not fit under
/// `max_outstanding_memory`.
///
/// Whatever the policy, `try_get` fails at once and `get_timeout` waits at
/// most its timeout, each with [`Exhausted`](crate::Exhausted). The policy
/// decides what the gets that cannot return an error do (`get`,
/// `get_owned`, `get_batch`, `get_async`, `get_owned_async`).
///
/// ```
/// use zeropool::{BufferPool, OnExhausted};
///
/// assert_eq!(OnExhausted::Wait.to_string(), "wait");
/// let pool = BufferPool::builder()
///     .size_classes(&[1024])
///     .max_outstanding_memory(1024)
///     .on_exhausted(OnExhausted::Error)
///     .build()?;
/// let held = pool.get(1024);
/// assert!(pool.try_get(1024).is_err()); // the fallible call reports it
/// let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.get(1024).len()));
/// assert!(refused.is_err()); // `get` cannot return an error: it panics
/// assert_eq!(pool.stats().cap_overshoots, 0); // the cap held
/// # drop(held);
/// # Ok::<(), zeropool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExhausted {
    /// Allocate anyway: the get goes past the cap, counted in
    /// `cap_overshoots`.
    #[default]
    Allocate,
    /// The cap is strict: a get that cannot return an error panics (counted
    /// in `exhausted_errors`; nothing is charged), so use `try_get` or
    /// `get_timeout` wherever the cap may be reached. A reload to `error`
    /// lets waiting gets go as refused: they panic too.
    Error,
    /// Wait until bytes come back (a thread blocks; a task parks).
    Wait,
}

impl OnExhausted {
    pub(crate) const NAMES: [(&'static str, OnExhausted); 3] = [
        ("allocate", OnExhausted::Allocate),
        ("error", OnExhausted::Error),
        ("wait", OnExhausted::Wait),
    ];

    /// The policy stored at `index` of [`Self::NAMES`] (allocate if out of range).
    pub(crate) fn from_index(index: usize) -> Self {
        Self::NAMES
            .get(index)
            .map_or(OnExhausted::Allocate, |&(_, e)| e)
    }

    /// The name in a config file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OnExhausted::Allocate => "allocate",
            OnExhausted::Error => "error",
            OnExhausted::Wait => "wait",
        }
    }
}

impl fmt::Display for OnExhausted {
    /// The name, as in a config file: `allocate`, `error` or `wait`.
    ///
    /// ```
    /// assert_eq!(zeropool::OnExhausted::Wait.to_string(), "wait");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
