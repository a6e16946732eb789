//! When a schedule fires: cron patterns evaluated on the wall clock of an IANA time zone,
//! with the daylight-saving rules of GRAMMAR §4.11.1, and one-shot `at` instants.
//!
//! croner evaluates patterns on a [`NaiveDateTime`] (the local wall clock); this module maps
//! each matching wall-clock time to an instant:
//!
//! * a time that exists once maps to that instant;
//! * a time that occurs twice (autumn change) fires only at its **first** occurrence — the
//!   search cursor is the wall-clock time of the last fire, which only moves forward, so the
//!   repeated hour never matches again;
//! * a time that does not exist (spring gap) fires at the **first instant after the gap**
//!   (e.g. 02:30 on the Berlin spring-change day fires at 03:00 local);
//! * an instant is never fired twice (several times in one gap collapse into one run).

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed recurring pattern or a one-shot instant.
#[derive(Clone, Debug)]
pub enum Timing {
    /// Cron pattern on the wall clock of `tz`.
    Cron {
        /// The pattern as written.
        expr: String,
        /// Parsed.
        cron: croner::Cron,
        /// Zone.
        tz: Tz,
    },
    /// One instant.
    At(DateTime<Utc>),
}

/// Why a timing specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    /// Not a cron pattern of GRAMMAR §4.11.1.
    #[error("invalid cron expression `{expr}`: {message}")]
    Cron {
        /// The pattern.
        expr: String,
        /// Why.
        message: String,
    },
    /// Unknown IANA zone.
    #[error("unknown time zone `{0}` (use an IANA name such as `Europe/Berlin` or `UTC`)")]
    TimeZone(String),
    /// Not an RFC 3339 date-time.
    #[error("invalid `at` time `{0}`: expected an RFC 3339 date-time such as 2027-01-15T09:00:00Z")]
    At(String),
}

/// Parses an IANA zone name.
pub fn parse_tz(name: &str) -> Result<Tz, TimingError> {
    name.parse::<Tz>()
        .map_err(|_| TimingError::TimeZone(name.to_string()))
}

/// Parses a cron pattern: five fields (minute … day-of-week, seconds = 0), six (with
/// seconds first) or seven (with a trailing year). Same parser as the DSL checker, so a
/// pattern the checker accepts is one the engine runs.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, TimingError> {
    symbi_dsl::program::items::parse_cron(expr).map_err(|message| TimingError::Cron {
        expr: expr.to_string(),
        message,
    })
}

/// Parses an `at` time: RFC 3339, or a local date-time without offset in `tz`.
pub fn parse_at(text: &str, tz: Tz) -> Result<DateTime<Utc>, TimingError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(resolve_local(tz, n));
        }
    }
    Err(TimingError::At(text.to_string()))
}

/// The instant a wall-clock time of `tz` stands for (see the module docs).
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => first_instant_after_gap(tz, local),
    }
}

/// The first instant whose wall-clock time is at or after `local`, for a `local` inside a
/// gap. Gaps are at most a few hours; binary search to the second.
fn first_instant_after_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    // Reading `local` as UTC shifted by ±26 h brackets every real offset. Whole seconds.
    let base = local.and_utc().timestamp();
    let (mut lo, mut hi) = (base - 26 * 3600, base + 26 * 3600);
    let at = |t: i64| Utc.timestamp_opt(t, 0).single().expect("in range");
    let wall = |t: i64| at(t).with_timezone(&tz).naive_local();
    // Invariant: wall(lo) < local <= wall(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall(mid) >= local {
            hi = mid
        } else {
            lo = mid
        }
    }
    at(hi)
}

/// A fire time: the wall-clock time it matched and the instant it runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fire {
    /// Wall-clock time in the schedule's zone (for `At`: the instant in UTC).
    pub local: NaiveDateTime,
    /// When it runs.
    pub at: DateTime<Utc>,
}

impl Timing {
    /// A recurring timing.
    pub fn cron(expr: &str, timezone: &str) -> Result<Timing, TimingError> {
        let tz = parse_tz(timezone)?;
        Ok(Timing::Cron {
            expr: expr.to_string(),
            cron: parse_cron(expr)?,
            tz,
        })
    }

    /// Whether this is a one-shot instant.
    pub fn is_at(&self) -> bool {
        matches!(self, Timing::At(_))
    }

    /// The next fire strictly after `cursor` (the last fire, or the start point).
    /// `None` when the pattern has no further match (or a one-shot instant is behind).
    pub fn next_after(&self, cursor: &Fire) -> Option<Fire> {
        match self {
            Timing::At(t) => (*t > cursor.at).then(|| Fire {
                local: t.naive_utc(),
                at: *t,
            }),
            Timing::Cron { cron, tz, .. } => {
                // The wall-clock cursor never moves backwards (first occurrence only in a
                // repeated hour); neither does the instant (no double fire in a gap).
                let now_wall = cursor.at.with_timezone(tz).naive_local();
                let mut local = cursor.local.max(now_wall);
                for _ in 0..10_000 {
                    let next = cron.find_next_occurrence(&local, false).ok()?;
                    let at = resolve_local(*tz, next);
                    if at > cursor.at {
                        return Some(Fire { local: next, at });
                    }
                    local = next;
                }
                None
            }
        }
    }

    /// A cursor standing at `t` (nothing at or before `t` fires).
    pub fn cursor_at(&self, t: DateTime<Utc>) -> Fire {
        match self {
            Timing::At(_) => Fire {
                local: t.naive_utc(),
                at: t,
            },
            Timing::Cron { tz, .. } => Fire {
                local: t.with_timezone(tz).naive_local(),
                at: t,
            },
        }
    }

    /// The next `n` fire instants after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n.min(1000));
        let mut c = self.cursor_at(t);
        while out.len() < n {
            match self.next_after(&c) {
                Some(f) => {
                    out.push(f.at);
                    c = f;
                }
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_six_and_seven_fields() {
        let t = Timing::cron("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            t.upcoming(utc("2026-11-26T08:01:00Z"), 2),
            [utc("2026-11-26T08:15:00Z"), utc("2026-11-26T08:30:00Z")]
        );
        let t = Timing::cron("*/2 * * * * *", "UTC").unwrap();
        assert_eq!(
            t.upcoming(utc("2026-11-26T08:00:00Z"), 2),
            [utc("2026-11-26T08:00:02Z"), utc("2026-11-26T08:00:04Z")]
        );
        let t = Timing::cron("0 0 12 1 JAN * 2030", "UTC").unwrap();
        assert_eq!(
            t.upcoming(utc("2026-11-26T08:00:00Z"), 2),
            [utc("2030-01-01T12:00:00Z")]
        );
        assert!(matches!(
            Timing::cron("61 * * * *", "UTC"),
            Err(TimingError::Cron { .. })
        ));
        assert!(matches!(
            Timing::cron("* * *", "UTC"),
            Err(TimingError::Cron { .. })
        ));
        assert_eq!(
            Timing::cron("* * * * *", "Mars/Base").unwrap_err(),
            TimingError::TimeZone("Mars/Base".into())
        );
    }

    #[test]
    fn unix_weekdays_and_dom_or_dow() {
        // 0 and 7 are Sunday; 2026-11-29 is a Sunday.
        for dow in ["0", "7", "SUN"] {
            let t = Timing::cron(&format!("0 0 9 * * {dow}"), "UTC").unwrap();
            assert_eq!(
                t.upcoming(utc("2026-11-26T00:00:00Z"), 1),
                [utc("2026-11-29T09:00:00Z")],
                "{dow}"
            );
        }
        // Both restricted: the 1st of the month OR a Monday.
        let t = Timing::cron("0 0 0 1 * MON", "UTC").unwrap();
        assert_eq!(
            t.upcoming(utc("2026-11-26T00:00:00Z"), 3),
            [
                utc("2026-11-30T00:00:00Z"),
                utc("2026-12-01T00:00:00Z"),
                utc("2026-12-07T00:00:00Z")
            ]
        );
    }

    #[test]
    fn time_zone_wall_clock() {
        let t = Timing::cron("0 30 2 * * *", "Europe/Berlin").unwrap();
        // Winter: UTC+1.
        assert_eq!(
            t.upcoming(utc("2026-11-26T02:00:00Z"), 1),
            [utc("2026-11-27T01:30:00Z")]
        );
    }

    #[test]
    fn spring_gap_fires_at_first_instant_after_it() {
        // 2027-03-28: Berlin clocks jump from 02:00 to 03:00 (01:00 UTC).
        let t = Timing::cron("0 30 2 * * *", "Europe/Berlin").unwrap();
        let runs = t.upcoming(utc("2027-03-27T12:00:00Z"), 2);
        assert_eq!(
            runs,
            [utc("2027-03-28T01:00:00Z"), utc("2027-03-29T00:30:00Z")]
        );
        // Every minute: the 60 non-existent minutes collapse into one run at 03:00.
        let t = Timing::cron("0 * * * * *", "Europe/Berlin").unwrap();
        let runs = t.upcoming(utc("2027-03-28T00:58:00Z"), 3);
        assert_eq!(
            runs,
            [
                utc("2027-03-28T00:59:00Z"),
                utc("2027-03-28T01:00:00Z"),
                utc("2027-03-28T01:01:00Z")
            ]
        );
    }

    #[test]
    fn autumn_repeat_fires_only_at_first_occurrence() {
        // 2026-10-25: Berlin clocks go back from 03:00 to 02:00 (01:00 UTC); 02:30 happens twice.
        let t = Timing::cron("0 30 2 * * *", "Europe/Berlin").unwrap();
        let runs = t.upcoming(utc("2026-10-24T12:00:00Z"), 2);
        assert_eq!(
            runs,
            [utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]
        );
        // Every 30 minutes through the repeated hour: 02:00 and 02:30 once each.
        let t = Timing::cron("0 */30 * * * *", "Europe/Berlin").unwrap();
        let runs = t.upcoming(utc("2026-10-24T23:45:00Z"), 4);
        assert_eq!(
            runs,
            [
                utc("2026-10-25T00:00:00Z"),
                utc("2026-10-25T00:30:00Z"),
                utc("2026-10-25T02:00:00Z"),
                utc("2026-10-25T02:30:00Z")
            ]
        );
    }

    #[test]
    fn at_times() {
        let tz = parse_tz("Europe/Berlin").unwrap();
        assert_eq!(
            parse_at("2027-01-15T09:00:00Z", tz).unwrap(),
            utc("2027-01-15T09:00:00Z")
        );
        assert_eq!(
            parse_at("2027-01-15T09:00:00", tz).unwrap(),
            utc("2027-01-15T08:00:00Z")
        );
        assert!(parse_at("tomorrow", tz).is_err());
        let t = Timing::At(utc("2027-01-15T09:00:00Z"));
        assert_eq!(
            t.upcoming(utc("2026-01-01T00:00:00Z"), 5),
            [utc("2027-01-15T09:00:00Z")]
        );
        assert!(t.upcoming(utc("2028-01-01T00:00:00Z"), 5).is_empty());
    }
}
