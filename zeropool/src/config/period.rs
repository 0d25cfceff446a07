//! Durations in config files: `"30s"`, `"250 ms"`, `"1.5s"`, `"5m"`, `"1h"`.

use serde::{Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration as a config file writes it (`trim_after = "30s"`).
///
/// ```
/// use std::time::Duration;
/// use zeropool::Period;
///
/// assert_eq!("250 ms".parse::<Period>().unwrap(), Period(Duration::from_millis(250)));
/// assert_eq!("1.5s".parse::<Period>().unwrap().0, Duration::from_millis(1500));
/// assert_eq!(Period(Duration::from_secs(90)).to_string(), "90s");
/// assert!("soon".parse::<Period>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period(
    /// The duration.
    pub Duration,
);

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = (s[..split].trim(), s[split..].trim());
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{s}` does not start with a number"))?;
        let seconds = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "" => return Err(format!("`{s}` has no unit: write ms, s, m or h")),
            other => return Err(format!("unknown unit `{other}`: write ms, s, m or h")),
        };
        if !(seconds.is_finite() && seconds > 0.0 && seconds < 1e9) {
            return Err(format!(
                "`{s}` is out of range (more than 0, less than 30 years)"
            ));
        }
        Ok(Period(Duration::from_secs_f64(seconds)))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
