//! Durations and instants as people write them: `"90s"`, `"2d 4h"`, `"2026-03-01T09:00:00Z"`.

use crate::engine::{SimDuration, SimTime};

/// A duration or an instant that does not read, and how to write it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{text:?} is not a duration ({why}); write it like \"90s\", \"6h\", \"30d\" or \"2d 4h\"")]
    NotADuration { text: String, why: String },
    #[error("{0:?} is finer than a millisecond, the simulator's resolution")]
    FinerThanAMillisecond(String),
    #[error("{0:?} is too long")]
    TooLong(String),
    #[error("{text:?} is not an RFC 3339 instant ({why}); write it like \"2026-03-01T09:00:00Z\"")]
    NotAnInstant { text: String, why: String },
    #[error("{text:?} is before the scenario's start {start}")]
    BeforeStart { text: String, start: jiff::Timestamp },
}

/// Parses a human duration (humantime's grammar: `90s`, `6h`, `30d`, `2d 4h`, `1.5d`, `250ms`).
pub fn parse_duration(s: &str) -> Result<SimDuration, TimeError> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| TimeError::NotADuration { text: s.to_string(), why: e.to_string() })?;
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err(TimeError::FinerThanAMillisecond(s.to_string()));
    }
    let ms = u64::try_from(d.as_millis()).map_err(|_| TimeError::TooLong(s.to_string()))?;
    Ok(SimDuration::from_ms(ms))
}

/// A point in simulated time: an offset from the start (`"2d"`) or an RFC 3339 instant at or
/// after the start.
pub fn parse_time(s: &str, start: jiff::Timestamp) -> Result<SimTime, TimeError> {
    if looks_like_instant(s) {
        let ts: jiff::Timestamp = s
            .trim()
            .parse()
            .map_err(|e: jiff::Error| TimeError::NotAnInstant { text: s.to_string(), why: e.to_string() })?;
        let ms = ts.as_millisecond() - start.as_millisecond();
        let ms = u64::try_from(ms).map_err(|_| TimeError::BeforeStart { text: s.to_string(), start })?;
        Ok(SimTime::from_ms(ms))
    } else {
        parse_duration(s).map(|d| SimTime::ZERO + d)
    }
}

fn looks_like_instant(s: &str) -> bool {
    let b = s.trim().as_bytes();
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// `2026-03-01T09:00:00.000Z`: the instant `t` stands for.
#[must_use]
pub fn format_instant(start: jiff::Timestamp, t: SimTime) -> String {
    let ms = start.as_millisecond().saturating_add(i64::try_from(t.as_ms()).unwrap_or(i64::MAX));
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => format!("{start} {t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_to_milliseconds() {
        assert_eq!(parse_duration("90s").unwrap().as_ms(), 90_000);
        assert_eq!(parse_duration("2d 4h").unwrap().as_ms(), (2 * 24 + 4) * 3_600_000);
        assert_eq!(parse_duration("250ms").unwrap().as_ms(), 250);
        assert!(parse_duration("soon").unwrap_err().to_string().contains("\"2d 4h\""));
        assert_eq!(parse_duration("1us"), Err(TimeError::FinerThanAMillisecond("1us".into())));
    }

    #[test]
    fn times_are_offsets_or_instants_after_the_start() {
        let start: jiff::Timestamp = "2026-03-01T09:00:00Z".parse().unwrap();
        assert_eq!(parse_time("1h", start).unwrap().as_ms(), 3_600_000);
        assert_eq!(parse_time("2026-03-01T10:00:00Z", start).unwrap().as_ms(), 3_600_000);
        assert!(
            parse_time("2026-02-01T10:00:00Z", start).unwrap_err().to_string().contains("before the scenario's start")
        );
        assert_eq!(format_instant(start, SimTime::from_ms(90_500)), "2026-03-01T09:01:30.500Z");
    }
}
