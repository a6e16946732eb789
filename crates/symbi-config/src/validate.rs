//! Range-checked deserializers. Used with `#[serde(deserialize_with = ...)]` so that a bad
//! value is reported by the TOML parser with the value's own position.

use serde::{Deserialize, Deserializer, de::Error};
use symbi_types::{ByteSize, HumanDuration};

/// An unsigned integer in `MIN..=MAX`.
pub fn u64_in<'de, const MIN: u64, const MAX: u64, D: Deserializer<'de>>(
    d: D,
) -> Result<u64, D::Error> {
    let v = i64::deserialize(d)?;
    if v < MIN as i64 || (v as u64) > MAX {
        return Err(D::Error::custom(format!(
            "must be between {MIN} and {MAX}, found {v}"
        )));
    }
    Ok(v as u64)
}

/// `u64_in` narrowed to u32.
pub fn u32_in<'de, const MIN: u64, const MAX: u64, D: Deserializer<'de>>(
    d: D,
) -> Result<u32, D::Error> {
    u64_in::<MIN, MAX, D>(d).map(|v| v as u32)
}

/// `u64_in` narrowed to usize.
pub fn usize_in<'de, const MIN: u64, const MAX: u64, D: Deserializer<'de>>(
    d: D,
) -> Result<usize, D::Error> {
    u64_in::<MIN, MAX, D>(d).map(|v| v as usize)
}

/// A size of at least `MIN` bytes.
pub fn size_at_least<'de, const MIN: u64, D: Deserializer<'de>>(
    d: D,
) -> Result<ByteSize, D::Error> {
    let v = ByteSize::deserialize(d)?;
    if v.0 < MIN {
        return Err(D::Error::custom(format!(
            "must be at least {}, found {v}",
            ByteSize(MIN)
        )));
    }
    Ok(v)
}

/// A duration that is not zero.
pub fn nonzero_duration<'de, D: Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
    let v = HumanDuration::deserialize(d)?;
    if v.0.is_zero() {
        return Err(D::Error::custom("must be longer than zero"));
    }
    Ok(v)
}

/// A float in `[min, max]` given in thousandths (const generics cannot be floats).
pub fn f64_in_milli<'de, const MIN_MILLI: i64, const MAX_MILLI: i64, D: Deserializer<'de>>(
    d: D,
) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    let (min, max) = (MIN_MILLI as f64 / 1000.0, MAX_MILLI as f64 / 1000.0);
    if !(min..=max).contains(&v) {
        return Err(D::Error::custom(format!(
            "must be between {min} and {max}, found {v}"
        )));
    }
    Ok(v)
}
