//! What happens to a subscriber that reads more slowly than events arrive: its slow-client
//! policy, chosen per subscription (`SubscribeRequest.slow_client_policy`) with a gateway
//! default (`--slow-client-policy`).

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use streamweaver_proto::v1::SlowClientPolicy;

use super::spec::duration_of;

/// Shortest `sample_interval` a subscriber may ask for.
pub const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(10);
/// Longest `sample_interval` a subscriber may ask for.
pub const MAX_SAMPLE_INTERVAL: Duration = Duration::from_secs(3600);

/// The policies, as named on the command line and in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum PolicyKind {
    /// Skip ahead and send a gap notice naming exactly what was skipped.
    Gap,
    /// End the subscription (gRPC RESOURCE_EXHAUSTED, WebSocket close 1008).
    Disconnect,
    /// Keep only the newest queued event per key (conflation).
    LatestPerKey,
    /// At most one event per key per sample interval, always the newest.
    Sample,
}

impl PolicyKind {
    /// Every policy, in declaration order (`kind as usize` indexes this).
    pub const ALL: [PolicyKind; 4] = [
        Self::Gap,
        Self::Disconnect,
        Self::LatestPerKey,
        Self::Sample,
    ];

    /// The label used in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gap => "gap",
            Self::Disconnect => "disconnect",
            Self::LatestPerKey => "latest_per_key",
            Self::Sample => "sample",
        }
    }
}

impl EncodeLabelValue for PolicyKind {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.name(), encoder)
    }
}

/// One subscription's policy, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// See [`PolicyKind::Gap`].
    Gap,
    /// See [`PolicyKind::Disconnect`].
    Disconnect,
    /// See [`PolicyKind::LatestPerKey`].
    LatestPerKey,
    /// See [`PolicyKind::Sample`]: at most one event per key per this interval.
    Sample(Duration),
}

impl Policy {
    /// Which policy this is.
    pub fn kind(self) -> PolicyKind {
        match self {
            Self::Gap => PolicyKind::Gap,
            Self::Disconnect => PolicyKind::Disconnect,
            Self::LatestPerKey => PolicyKind::LatestPerKey,
            Self::Sample(_) => PolicyKind::Sample,
        }
    }

    /// Whether the queue keeps only the newest event per key.
    pub fn conflates(self) -> bool {
        matches!(self, Self::LatestPerKey | Self::Sample(_))
    }
}

/// The gateway's defaults, for requests that leave the policy or the interval unset.
#[derive(Debug, Clone, Copy)]
pub struct PolicyDefaults {
    /// `--slow-client-policy`.
    pub kind: PolicyKind,
    /// `--sample-interval`.
    pub sample_interval: Duration,
}

/// Why a request's policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A number outside the enum.
    #[error("unknown slow_client_policy {0}")]
    Unknown(i32),
    /// A sample interval out of range or malformed.
    #[error(
        "sample_interval must be between {} ms and {} s",
        MIN_SAMPLE_INTERVAL.as_millis(),
        MAX_SAMPLE_INTERVAL.as_secs()
    )]
    BadSampleInterval,
}

impl PolicyError {
    /// A short, fixed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unknown(_) => "unknown_slow_client_policy",
            Self::BadSampleInterval => "bad_sample_interval",
        }
    }
}

impl PolicyDefaults {
    /// The policy a request asks for, its unset parts taken from the defaults.
    pub fn resolve(
        &self,
        requested: i32,
        sample_interval: Option<&pbjson_types::Duration>,
    ) -> Result<Policy, PolicyError> {
        let kind = match SlowClientPolicy::try_from(requested) {
            Ok(SlowClientPolicy::Unspecified) => self.kind,
            Ok(SlowClientPolicy::Gap) => PolicyKind::Gap,
            Ok(SlowClientPolicy::Disconnect) => PolicyKind::Disconnect,
            Ok(SlowClientPolicy::LatestPerKey) => PolicyKind::LatestPerKey,
            Ok(SlowClientPolicy::Sample) => PolicyKind::Sample,
            Err(_) => return Err(PolicyError::Unknown(requested)),
        };
        Ok(match kind {
            PolicyKind::Gap => Policy::Gap,
            PolicyKind::Disconnect => Policy::Disconnect,
            PolicyKind::LatestPerKey => Policy::LatestPerKey,
            PolicyKind::Sample => {
                let interval = match sample_interval {
                    None => self.sample_interval,
                    Some(given) => duration_of(given.seconds, given.nanos)
                        .ok_or(PolicyError::BadSampleInterval)?,
                };
                if !(MIN_SAMPLE_INTERVAL..=MAX_SAMPLE_INTERVAL).contains(&interval) {
                    return Err(PolicyError::BadSampleInterval);
                }
                Policy::Sample(interval)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: PolicyDefaults = PolicyDefaults {
        kind: PolicyKind::Gap,
        sample_interval: Duration::from_secs(1),
    };

    #[test]
    fn unset_parts_come_from_the_defaults() {
        assert_eq!(DEFAULTS.resolve(0, None), Ok(Policy::Gap));
        assert_eq!(
            DEFAULTS.resolve(SlowClientPolicy::Sample as i32, None),
            Ok(Policy::Sample(Duration::from_secs(1)))
        );
        let interval = pbjson_types::Duration {
            seconds: 0,
            nanos: 250_000_000,
        };
        assert_eq!(
            DEFAULTS.resolve(SlowClientPolicy::Sample as i32, Some(&interval)),
            Ok(Policy::Sample(Duration::from_millis(250)))
        );
        assert_eq!(
            DEFAULTS.resolve(SlowClientPolicy::LatestPerKey as i32, None),
            Ok(Policy::LatestPerKey)
        );
    }

    #[test]
    fn bad_policies_and_intervals_are_refused() {
        assert_eq!(DEFAULTS.resolve(9, None), Err(PolicyError::Unknown(9)));
        for (seconds, nanos) in [(0, 1_000_000), (-1, 0), (0, -5), (7200, 0)] {
            let interval = pbjson_types::Duration { seconds, nanos };
            assert_eq!(
                DEFAULTS.resolve(SlowClientPolicy::Sample as i32, Some(&interval)),
                Err(PolicyError::BadSampleInterval),
                "{seconds}s {nanos}ns"
            );
        }
    }
}
