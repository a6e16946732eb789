//! Human spellings of sizes and durations, shared by configuration and the DSL's `with`
//! attributes so that `"1GB"` and `"300s"` mean the same everywhere.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A number of bytes. Parses `"512"`, `"512B"`, `"64KB"`, `"1MB"`, `"1GB"`, `"2TB"`
/// (binary units: 1 KB = 1024 B, as in the DSL) and, case-insensitively, the IEC forms
/// `KiB`/`MiB`/`GiB`/`TiB`.
///
/// ```
/// use symbi_types::ByteSize;
/// assert_eq!("1GB".parse::<ByteSize>().unwrap().0, 1 << 30);
/// assert_eq!(ByteSize(1536 << 20).to_string(), "1536MB");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

const SIZE_UNITS: [(&str, u64); 5] = [
    ("TB", 1 << 40),
    ("GB", 1 << 30),
    ("MB", 1 << 20),
    ("KB", 1 << 10),
    ("B", 1),
];

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(format!(
                "invalid size `{s}`: expected a number with a unit such as 512MB or 1GB"
            ));
        }
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid size `{s}`: number out of range"))?;
        let unit = unit.trim().to_ascii_uppercase().replace("IB", "B");
        let mult = if unit.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, m)| *m)
                .ok_or_else(|| {
                    format!("invalid size `{s}`: unknown unit (use B, KB, MB, GB or TB)")
                })?
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size `{s}`: too large"))
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that divides the value exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0B");
        }
        for (unit, mult) in SIZE_UNITS {
            if self.0 % mult == 0 {
                return write!(f, "{}{unit}", self.0 / mult);
            }
        }
        unreachable!("B divides everything")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    /// Accepts a string with a unit or a bare integer number of bytes.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a size such as \"512MB\" or a number of bytes")
        })? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A duration in the spellings of the DSL: `250ms`, `30s`, `5m`, `2h`, `7d`, `1w`, and
/// sequences such as `1h30m`; `"30.seconds"`, `"5.minutes"`, `"2.hours"` too.
///
/// ```
/// use symbi_types::HumanDuration;
/// use std::time::Duration;
/// assert_eq!("1h30m".parse::<HumanDuration>().unwrap().0, Duration::from_secs(5400));
/// assert_eq!(HumanDuration(Duration::from_secs(300)).to_string(), "5m");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

const DURATION_UNITS: [(&str, u64); 9] = [
    ("months", 30 * 86_400_000),
    ("ms", 1),
    ("s", 1000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 7 * 86_400_000),
    ("y", 365 * 86_400_000),
    (".seconds", 1000),
];

fn unit_ms(unit: &str) -> Option<u64> {
    match unit {
        ".minutes" => Some(60_000),
        ".hours" => Some(3_600_000),
        _ => DURATION_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, m)| *m),
    }
}

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || {
            format!("invalid duration `{s}`: expected forms like 250ms, 30s, 5m, 2h, 7d or 1h30m")
        };
        if t.is_empty() {
            return Err(bad());
        }
        let mut rest = t;
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            let mult = unit_ms(unit).ok_or_else(bad)?;
            total = n
                .checked_mul(mult)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("invalid duration `{s}`: too large"))?;
            rest = &rest[unit_len..];
        }
        Ok(HumanDuration(Duration::from_millis(total)))
    }
}

impl fmt::Display for HumanDuration {
    /// Canonical form: the largest unit that divides the duration exactly (`90s`, `2m`,
    /// `1500ms`, `0s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, mult) in [
            ("w", 604_800_000u128),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if ms % mult == 0 {
                return write!(f, "{}{unit}", ms / mult);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration string such as \"300s\" or \"5m\"")
        })?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        assert_eq!("512MB".parse::<ByteSize>().unwrap().0, 512 << 20);
        assert_eq!("8 MiB".parse::<ByteSize>().unwrap().0, 8 << 20);
        assert_eq!("100".parse::<ByteSize>().unwrap().0, 100);
        assert!("1XB".parse::<ByteSize>().is_err());
        assert!("MB".parse::<ByteSize>().is_err());
        assert!("99999999999TB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn durations() {
        let p = |s: &str| s.parse::<HumanDuration>().map(|d| d.0.as_millis());
        assert_eq!(p("300s"), Ok(300_000));
        assert_eq!(p("250ms"), Ok(250));
        assert_eq!(p("6months"), Ok(6 * 30 * 86_400_000));
        assert_eq!(p("30.seconds"), Ok(30_000));
        assert_eq!(p("1h30m"), Ok(5_400_000));
        assert!(p("soon").is_err());
        assert!(p("5").is_err());
        assert!(p("1.5h").is_err());
    }

    proptest! {
        #[test]
        fn size_display_round_trips(n in 0u64..(1u64 << 50)) {
            let s = ByteSize(n).to_string();
            prop_assert_eq!(s.parse::<ByteSize>().unwrap(), ByteSize(n));
        }

        #[test]
        fn duration_display_round_trips(ms in 0u64..(1u64 << 40)) {
            let d = HumanDuration(Duration::from_millis(ms));
            prop_assert_eq!(d.to_string().parse::<HumanDuration>().unwrap(), d);
        }
    }
}
