//! The crate's error type.

use std::fmt;

/// Everything that can go wrong building or configuring a pool.
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
    /// One or more settings are out of range; every problem found is listed.
    #[error("invalid pool configuration:{}", ProblemList(.0))]
    Invalid(Vec<Problem>),
}

/// One bad setting: which key, the value given, where it came from and what
/// is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The setting's name, as in the builder method and the config file.
    pub key: String,
    /// The value that was given, as text.
    pub value: String,
    /// Where the value came from.
    pub source: Source,
    /// What values are accepted.
    pub accepted: String,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The built-in default.
    Default,
    /// A builder method call.
    Builder,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Builder => f.write_str("set by builder"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` = {} ({}): {}",
            self.key, self.value, self.source, self.accepted
        )
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
