//! Human byte sizes: `"256 B"`, `"64 KiB"`, `"1.5 GiB"`, `"64MiB"`, or a
//! plain integer of bytes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A number of bytes, written in config files as an integer or a human size.
///
/// Accepted units (case-insensitive, space optional): `B`; binary `KiB`,
/// `MiB`, `GiB`, `TiB`, `PiB` (powers of 1024); decimal `KB`, `MB`, `GB`,
/// `TB`, `PB` (powers of 1000). A fraction is allowed when it comes to a
/// whole number of bytes (`"1.5 GiB"`, not `"1.5 B"`). Negative numbers,
/// unknown units and values above `u64::MAX` are rejected.
///
/// `Display` (and `Serialize`) writes the largest binary unit that divides
/// the value exactly, so every value reads back unchanged.
///
/// # Example
/// ```
/// use zeropool::ByteSize;
///
/// let s: ByteSize = "1.5 GiB".parse()?;
/// assert_eq!(s.bytes(), 3 << 29);
/// assert_eq!(s.to_string(), "1536 MiB");
/// assert_eq!("64MiB".parse::<ByteSize>()?, ByteSize(64 << 20));
/// assert_eq!("4096".parse::<ByteSize>()?, ByteSize(4096));
/// assert!("-1 KiB".parse::<ByteSize>().is_err());
/// assert!("3 parsecs".parse::<ByteSize>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(
    /// The number of bytes.
    pub u64,
);

/// What a size may look like, for error messages.
pub(crate) const SIZE_HELP: &str =
    "a size in bytes: an integer, or a number with a unit (B, KiB, MiB, GiB, TiB, PiB, KB, MB, GB, TB, PB), e.g. \"64 KiB\"";

const UNITS: [(&str, u64); 11] = [
    ("b", 1),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("pib", 1 << 50),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("pb", 1_000_000_000_000_000),
];

impl ByteSize {
    /// The number of bytes.
    ///
    /// ```
    /// assert_eq!(zeropool::ByteSize(4096).bytes(), 4096);
    /// ```
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The size as a `usize`, or `None` where it does not fit (32-bit).
    ///
    /// ```
    /// assert_eq!(zeropool::ByteSize(4096).to_usize(), Some(4096));
    /// ```
    pub fn to_usize(self) -> Option<usize> {
        usize::try_from(self.0).ok()
    }
}

impl From<usize> for ByteSize {
    fn from(n: usize) -> Self {
        ByteSize(n as u64)
    }
}

impl FromStr for ByteSize {
    type Err = String;

    /// Parses a human size; the error says what is wrong with it.
    fn from_str(text: &str) -> Result<Self, String> {
        parse(text).map(ByteSize)
    }
}

/// Parses `"1.5 GiB"` and friends into bytes.
pub(crate) fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err("negative sizes are not allowed".into());
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (number, unit) = (t[..split].replace('_', ""), t[split..].trim());
    if number.is_empty() {
        return Err("no number".into());
    }
    let multiplier = if unit.is_empty() {
        1
    } else {
        let lower = unit.to_ascii_lowercase();
        match UNITS.iter().find(|(u, _)| *u == lower) {
            Some(&(_, m)) => m,
            None => return Err(format!("unknown unit `{unit}`")),
        }
    };
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number.as_str(), ""),
    };
    if frac.contains('.') || (whole.is_empty() && frac.is_empty()) {
        return Err("not a number".into());
    }
    let too_large = || format!("larger than the most bytes a size can hold ({})", u64::MAX);
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let mut bytes = whole
        .checked_mul(multiplier as u128)
        .ok_or_else(too_large)?;
    if !frac.is_empty() {
        if frac.len() > 18 {
            return Err("too many decimal places".into());
        }
        let digits: u128 = frac.parse().map_err(|_| "not a number".to_string())?;
        let scale = 10u128.pow(frac.len() as u32);
        let part = digits * multiplier as u128;
        if !part.is_multiple_of(scale) {
            return Err("not a whole number of bytes".into());
        }
        bytes = bytes.checked_add(part / scale).ok_or_else(too_large)?;
    }
    u64::try_from(bytes).map_err(|_| too_large())
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const BINARY: [(&str, u64); 5] = [
            ("PiB", 1 << 50),
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ];
        let n = self.0;
        match BINARY.iter().find(|(_, m)| n != 0 && n.is_multiple_of(*m)) {
            Some((unit, m)) => write!(f, "{} {unit}", n / m),
            None => write!(f, "{n} B"),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = <figment::value::Value as Deserialize>::deserialize(d)?;
        super::validate::byte_size(&value)
            .map_err(|why| serde::de::Error::custom(format!("{why}; expected {SIZE_HELP}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_fractions() {
        let ok = [
            ("0", 0),
            ("256 B", 256),
            ("256b", 256),
            ("4 KiB", 4096),
            ("4kib", 4096),
            ("64MiB", 64 << 20),
            ("1.5 GiB", 3 << 29),
            (".5 KiB", 512),
            ("2 TiB", 2 << 40),
            ("1 PiB", 1 << 50),
            ("1 KB", 1000),
            ("1.5 MB", 1_500_000),
            ("1_000", 1000),
            (" 7 ", 7),
            ("16383 PiB", 16383 << 50),
        ];
        for (text, bytes) in ok {
            assert_eq!(parse(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn rejects_bad_sizes_with_a_reason() {
        let bad = [
            ("-1", "negative"),
            ("-4 KiB", "negative"),
            ("4 KiBs", "unknown unit `KiBs`"),
            ("4 parsecs", "unknown unit"),
            ("KiB", "no number"),
            ("", "no number"),
            ("1.5 B", "whole number"),
            ("1.2.3 KiB", "not a number"),
            ("16384 PiB", "larger than"),
            ("99999999999999999999999999999999999999999", "larger than"),
            // u128::MAX - 455 bytes, then a fraction that carries past it.
            ("340282366920938463463374607431768211.5 KB", "larger than"),
            (".", "not a number"),
        ];
        for (text, why) in bad {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn display_reads_back() {
        for n in [
            0u64,
            1,
            1023,
            1024,
            1536,
            3 << 29,
            1 << 40,
            u64::MAX,
            1 << 63,
        ] {
            let s = ByteSize(n).to_string();
            assert_eq!(parse(&s), Ok(n), "{s}");
        }
        assert_eq!(ByteSize(64 << 10).to_string(), "64 KiB");
        assert_eq!(ByteSize(100).to_string(), "100 B");
    }
}
