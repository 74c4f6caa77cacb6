//! Delays of actor-to-actor calls: fixed, or drawn from a distribution on the caller's stream.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::engine::SimDuration;

/// How long a call takes to reach the service that handles it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    Fixed(SimDuration),
    /// Uniform between the bounds, inclusive, to the millisecond.
    Uniform(SimDuration, SimDuration),
    /// Exponential with this mean, rounded to the millisecond.
    Exponential(SimDuration),
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Fixed(SimDuration::ZERO)
    }
}

impl Latency {
    /// Draws one delay. A fixed latency draws nothing, so it never shifts the caller's stream.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> SimDuration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform(lo, hi) => SimDuration::from_ms(rng.random_range(lo.as_ms()..=hi.as_ms())),
            Latency::Exponential(mean) => {
                // Inverse transform; 1 - u is in (0, 1], so the logarithm is finite.
                let u: f64 = rng.random();
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let ms = (-(1.0 - u).ln() * mean.as_ms() as f64).round() as u64;
                SimDuration::from_ms(ms)
            }
        }
    }

    #[must_use]
    pub fn is_zero(&self) -> bool {
        *self == Latency::Fixed(SimDuration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn draws_stay_in_range_and_have_the_declared_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let lo = SimDuration::from_ms(100);
        let hi = SimDuration::from_ms(300);
        let uni = Latency::Uniform(lo, hi);
        let exp = Latency::Exponential(SimDuration::from_ms(1_000));
        let (mut sum_u, mut sum_e) = (0u64, 0u64);
        let n = 20_000;
        for _ in 0..n {
            let d = uni.draw(&mut rng);
            assert!(lo <= d && d <= hi);
            sum_u += d.as_ms();
            sum_e += exp.draw(&mut rng).as_ms();
        }
        // Means 200 and 1000; with 20,000 draws the standard errors are about 0.4 and 7.
        assert!((195..=205).contains(&(sum_u / n)), "uniform mean {}", sum_u / n);
        assert!((960..=1_040).contains(&(sum_e / n)), "exponential mean {}", sum_e / n);
    }
}
