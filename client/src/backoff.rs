//! How long to wait before the next connection attempt: exponential, capped, and jittered, so
//! that a thousand services that lost the same gateway do not all come back in the same instant.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with "equal jitter": the wait before retry `n` (counting from 0) is a
/// random duration between half and all of `min(max, initial × multiplier^n)`. Half the ceiling
/// is always waited, so retries never hammer a gateway that is down; the random half spreads
/// clients apart. The attempt count starts again once a connection delivers a message.
///
/// ```
/// use std::time::Duration;
/// use streamweaver_client::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
/// assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
/// assert_eq!(backoff.ceiling(20), Duration::from_secs(5));
/// let wait = backoff.delay(3, &mut rand::rng());
/// assert!(wait >= Duration::from_millis(400) && wait <= Duration::from_millis(800));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub initial: Duration,
    /// The largest ceiling.
    pub max: Duration,
    /// How much the ceiling grows per failed attempt (at least 1).
    pub multiplier: f64,
}

impl Default for Backoff {
    /// 100 ms, doubling, up to 10 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

impl Backoff {
    /// A backoff from `initial` up to `max`, doubling per attempt.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            multiplier: 2.0,
        }
    }

    /// The most that is waited before retry `attempt` (0 is the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(attempt.min(64) as i32);
        let ceiling = self.initial.as_secs_f64() * factor;
        if ceiling.is_finite() && ceiling < self.max.as_secs_f64() {
            Duration::from_secs_f64(ceiling)
        } else {
            self.max
        }
    }

    /// A random wait before retry `attempt`, between half and all of its [`ceiling`](Self::ceiling).
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let floor = ceiling / 2;
        if ceiling <= floor {
            return ceiling;
        }
        rng.random_range(floor..=ceiling)
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn waits_stay_between_half_and_all_of_a_capped_doubling_ceiling() {
        let backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        let mut rng = StdRng::seed_from_u64(7);
        let mut ceilings = Vec::new();
        for attempt in 0..12 {
            let ceiling = backoff.ceiling(attempt);
            ceilings.push(ceiling);
            let (mut shortest, mut longest) = (Duration::MAX, Duration::ZERO);
            for _ in 0..500 {
                let wait = backoff.delay(attempt, &mut rng);
                assert!(
                    wait >= ceiling / 2 && wait <= ceiling,
                    "attempt {attempt}: {wait:?} outside {ceiling:?}/2..={ceiling:?}"
                );
                shortest = shortest.min(wait);
                longest = longest.max(wait);
            }
            // Jittered: the waits really spread over the range, not one fixed value.
            assert!(
                longest - shortest > ceiling / 4,
                "attempt {attempt}: {shortest:?}..{longest:?}"
            );
        }
        assert_eq!(ceilings[0], Duration::from_millis(50));
        assert_eq!(ceilings[1], Duration::from_millis(100));
        assert_eq!(ceilings[5], Duration::from_millis(1600));
        assert!(ceilings[6..].iter().all(|c| *c == Duration::from_secs(2)));
    }

    #[test]
    fn extreme_settings_stay_finite() {
        let backoff = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            multiplier: f64::INFINITY,
        };
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(30));
        let zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.delay(3, &mut rand::rng()), Duration::ZERO);
        let shrinking = Backoff {
            multiplier: 0.5,
            ..Backoff::default()
        };
        assert_eq!(shrinking.ceiling(4), Duration::from_millis(100));
    }
}
