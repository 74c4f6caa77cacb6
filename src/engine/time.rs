//! Simulated time: integer milliseconds since the scenario's start instant.
//!
//! Time is never a float, so event order never depends on rounding, and nothing here reads the wall
//! clock. Formatting durations for people lives here too, because humantime's formatter writes 60 days
//! as "1month 29days 13h 26m 24s".

#![forbid(unsafe_code)]

use std::fmt;
use std::ops::{Add, Sub};

/// An instant of simulated time, in milliseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

/// A span of simulated time, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    #[must_use]
    pub const fn from_ms(ms: u64) -> SimTime {
        SimTime(ms)
    }

    #[must_use]
    pub const fn as_ms(self) -> u64 {
        self.0
    }

    /// The span from the start of the run to this instant.
    #[must_use]
    pub const fn since_start(self) -> SimDuration {
        SimDuration(self.0)
    }

    /// `self + d`, or `None` past the end of representable time.
    #[must_use]
    pub fn checked_add(self, d: SimDuration) -> Option<SimTime> {
        self.0.checked_add(d.0).map(SimTime)
    }

    /// `self - d`, clamped at the start of the run.
    #[must_use]
    pub fn saturating_sub(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_sub(d.0))
    }
}

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);

    #[must_use]
    pub const fn from_ms(ms: u64) -> SimDuration {
        SimDuration(ms)
    }
    #[must_use]
    pub const fn from_secs(s: u64) -> SimDuration {
        SimDuration(s * 1_000)
    }
    #[must_use]
    pub const fn from_mins(m: u64) -> SimDuration {
        SimDuration(m * 60_000)
    }
    #[must_use]
    pub const fn from_hours(h: u64) -> SimDuration {
        SimDuration(h * 3_600_000)
    }
    #[must_use]
    pub const fn from_days(d: u64) -> SimDuration {
        SimDuration(d * 86_400_000)
    }
    #[must_use]
    pub const fn as_ms(self) -> u64 {
        self.0
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    /// Saturates rather than wraps: an event "after the end of time" simply never runs.
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}

impl Sub for SimTime {
    type Output = SimDuration;
    /// The span between two instants, zero if `rhs` is later.
    fn sub(self, rhs: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(rhs.0))
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, rhs: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(rhs.0))
    }
}

impl fmt::Display for SimDuration {
    /// Compact, exact, largest units first: `2d 4h`, `90s` is `1m 30s`, `250ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        let mut first = true;
        for (name, size) in UNITS {
            let n = rest / size;
            if n > 0 {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{n}{name}")?;
                first = false;
                rest -= n * size;
            }
        }
        Ok(())
    }
}

impl fmt::Display for SimTime {
    /// An instant as its offset from the start: `+2d 4h`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.since_start())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_exactly_with_largest_units_first() {
        assert_eq!(SimDuration::ZERO.to_string(), "0s");
        assert_eq!(SimDuration::from_secs(90).to_string(), "1m 30s");
        assert_eq!((SimDuration::from_days(2) + SimDuration::from_hours(4)).to_string(), "2d 4h");
        assert_eq!(SimDuration::from_days(60).to_string(), "60d");
        assert_eq!(SimDuration::from_ms(1_250).to_string(), "1s 250ms");
    }

    #[test]
    fn time_arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(SimTime::MAX + SimDuration::from_ms(1), SimTime::MAX);
        assert_eq!(SimTime::from_ms(5) - SimTime::from_ms(9), SimDuration::ZERO);
        assert_eq!(SimTime::MAX.checked_add(SimDuration::from_ms(1)), None);
    }
}
