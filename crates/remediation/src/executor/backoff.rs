//! Retry delays: exponential with "equal jitter" (half the step fixed, half random), capped.
//! The random half spreads the retries of many clients hitting one recovering endpoint; the
//! fixed half keeps a floor so a retry never comes back immediately.

use std::time::Duration;

/// Exponential backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The step before the first retry (before jitter).
    pub base: Duration,
    /// No delay is longer than this (also bounds a server's `Retry-After`).
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `retry` (1 = the first retry): `base * 2^(retry-1)`,
    /// capped at `max`, of which the upper half is scaled by `jitter` (in `[0, 1]`).
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        step / 2 + (step / 2).mul_f64(jitter)
    }

    /// The delay, honouring a server's `Retry-After` (seconds) when it asks for longer,
    /// never beyond `max`.
    pub fn delay_with_hint(
        &self,
        retry: u32,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Duration {
        let d = self.delay(retry, jitter);
        match retry_after {
            Some(hint) if hint > d => hint.min(self.max),
            _ => d,
        }
    }
}

/// A uniform number in `[0, 1)` from the OS; 0.5 when it has none (jitter is a nicety).
pub fn random_unit() -> f64 {
    getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
    };

    #[test]
    fn delay_doubles_per_retry_within_its_jitter_band() {
        for (retry, step_ms) in [(1u32, 100u64), (2, 200), (3, 400), (4, 800), (5, 1600)] {
            assert_eq!(
                B.delay(retry, 0.0),
                Duration::from_millis(step_ms / 2),
                "{retry}"
            );
            assert_eq!(
                B.delay(retry, 1.0),
                Duration::from_millis(step_ms),
                "{retry}"
            );
            let mid = B.delay(retry, 0.5);
            assert!(mid > B.delay(retry, 0.0) && mid < B.delay(retry, 1.0));
        }
    }

    #[test]
    fn delay_is_capped_and_never_overflows() {
        assert_eq!(B.delay(7, 1.0), Duration::from_secs(5));
        assert_eq!(B.delay(u32::MAX, 1.0), Duration::from_secs(5));
        assert_eq!(B.delay(u32::MAX, 0.0), Duration::from_millis(2500));
        // Out-of-range jitter is clamped, not trusted.
        assert_eq!(B.delay(1, 7.0), B.delay(1, 1.0));
        assert_eq!(B.delay(1, f64::NAN), B.delay(1, 0.0));
        assert_eq!(B.delay(0, 1.0), Duration::from_millis(100));
    }

    #[test]
    fn retry_after_lengthens_but_never_past_the_cap() {
        let d = B.delay_with_hint(1, 0.0, Some(Duration::from_secs(2)));
        assert_eq!(d, Duration::from_secs(2));
        let d = B.delay_with_hint(1, 0.0, Some(Duration::from_secs(3600)));
        assert_eq!(d, Duration::from_secs(5));
        // A shorter hint does not shorten the backoff.
        let d = B.delay_with_hint(3, 1.0, Some(Duration::from_millis(1)));
        assert_eq!(d, Duration::from_millis(400));
    }

    #[test]
    fn random_unit_is_in_range() {
        for _ in 0..1000 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r), "{r}");
        }
    }
}
