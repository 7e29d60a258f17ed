//! A subscribe request, checked once: what the subscriber wants to see (its filter), where each
//! partition starts (resume positions, a start point, or live), and its slow-client policy.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use streamweaver_proto::{
    topics::Topic,
    v1::{SubscribeRequest, start_at::Point},
};

use super::policy::{Policy, PolicyDefaults, PolicyError};
use crate::{
    expr::{ExprError, Expression},
    filter::{Filter, FilterError},
};

/// Most resume positions one request may carry.
pub const MAX_RESUME_POSITIONS: usize = 1024;

/// Where the partitions a subscriber names no position for start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPoint {
    /// At the first event at or after this time (Kafka's offsets-for-times).
    Time(SystemTime),
    /// At the first event Kafka still holds.
    Earliest,
}

/// A resume position: the last offset the subscriber has of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePosition {
    /// The topic.
    pub topic: Topic,
    /// The partition.
    pub partition: i32,
    /// The last offset the subscriber has (-1: none yet).
    pub offset: i64,
}

/// A checked subscribe request.
#[derive(Debug, Clone)]
pub struct Spec {
    /// What the subscriber wants to see.
    pub filter: Filter,
    /// Positions for partitions of the filter's topics, sorted.
    pub resume: Vec<ResumePosition>,
    /// Where the other partitions start; `None` for live events only.
    pub start_at: Option<StartPoint>,
    /// What happens when the subscriber falls behind.
    pub policy: Policy,
}

/// Why a subscribe request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The filter is not valid.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The filter expression is not valid (or could not be checked now).
    #[error(transparent)]
    Expression(#[from] ExprError),
    /// The slow-client policy is not valid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// More resume positions than allowed.
    #[error("resume_from has {0} positions; at most {MAX_RESUME_POSITIONS} are allowed")]
    TooManyPositions(usize),
    /// A resume position names an unknown topic or a negative partition.
    #[error("resume position {0} names no partition of a known topic")]
    BadPosition(String),
    /// Two resume positions for one partition.
    #[error("resume_from names {0} more than once")]
    DuplicatePosition(String),
    /// A start point that is not a time.
    #[error("start_at: {0}")]
    BadStartAt(&'static str),
}

impl RequestError {
    /// A short, fixed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Filter(error) => error.reason(),
            Self::Expression(error) => error.reason(),
            Self::Policy(error) => error.reason(),
            Self::TooManyPositions(_) => "too_many_positions",
            Self::BadPosition(_) => "bad_resume_position",
            Self::DuplicatePosition(_) => "duplicate_resume_position",
            Self::BadStartAt(_) => "bad_start_at",
        }
    }

    /// Whether the request may be fine and only could not be checked now (worth a retry).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Expression(ExprError::Unavailable(_)))
    }
}

/// A non-negative span given as Protobuf seconds and nanos; `None` when negative or malformed.
pub(super) fn duration_of(seconds: i64, nanos: i32) -> Option<Duration> {
    let seconds = u64::try_from(seconds).ok()?;
    let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
    Some(Duration::new(seconds, nanos))
}

impl Spec {
    /// Checks `request`, whose `filter` compiled to `expression`; unset policy parts come from
    /// `defaults`, `last` counts back from `now`.
    pub fn from_request(
        request: &SubscribeRequest,
        expression: Option<Arc<Expression>>,
        defaults: &PolicyDefaults,
        now: SystemTime,
    ) -> Result<Self, RequestError> {
        if request.resume_from.len() > MAX_RESUME_POSITIONS {
            return Err(RequestError::TooManyPositions(request.resume_from.len()));
        }
        let filter = Filter::from_request(request)?.with_expression(expression);
        let mut resume = Vec::with_capacity(request.resume_from.len());
        for position in &request.resume_from {
            let named = || {
                format!(
                    "{}/{}/{}",
                    position.topic, position.partition, position.offset
                )
            };
            let topic: Topic = position
                .topic
                .parse()
                .map_err(|_| RequestError::BadPosition(named()))?;
            if position.partition < 0 {
                return Err(RequestError::BadPosition(named()));
            }
            if !filter.topics().contains(topic) {
                continue;
            }
            resume.push(ResumePosition {
                topic,
                partition: position.partition,
                // Anything below "nothing yet" means the same.
                offset: position.offset.max(-1),
            });
        }
        resume.sort_unstable_by_key(|p| (p.topic, p.partition));
        if let Some(twice) = resume
            .windows(2)
            .find(|pair| (pair[0].topic, pair[0].partition) == (pair[1].topic, pair[1].partition))
        {
            return Err(RequestError::DuplicatePosition(format!(
                "{}/{}",
                twice[0].topic, twice[0].partition
            )));
        }
        let start_at = match request.start_at.as_ref().and_then(|s| s.point.as_ref()) {
            None | Some(Point::Earliest(false)) => None,
            Some(Point::Earliest(true)) => Some(StartPoint::Earliest),
            Some(Point::Time(time)) => {
                let since_epoch = duration_of(time.seconds, time.nanos)
                    .ok_or(RequestError::BadStartAt("time is before 1970 or malformed"))?;
                let time = UNIX_EPOCH
                    .checked_add(since_epoch)
                    .ok_or(RequestError::BadStartAt("time is out of range"))?;
                Some(StartPoint::Time(time))
            }
            Some(Point::Last(last)) => {
                let last = duration_of(last.seconds, last.nanos)
                    .ok_or(RequestError::BadStartAt("last is negative or malformed"))?;
                let time = now.checked_sub(last).unwrap_or(UNIX_EPOCH).max(UNIX_EPOCH);
                Some(StartPoint::Time(time))
            }
        };
        let policy =
            defaults.resolve(request.slow_client_policy, request.sample_interval.as_ref())?;
        Ok(Self {
            filter,
            resume,
            start_at,
            policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use streamweaver_proto::v1::{Position, StartAt};

    use super::*;
    use crate::hub::policy::PolicyKind;

    const DEFAULTS: PolicyDefaults = PolicyDefaults {
        kind: PolicyKind::Gap,
        sample_interval: Duration::from_secs(1),
    };

    fn position(topic: &str, partition: i32, offset: i64) -> Position {
        Position {
            topic: topic.into(),
            partition,
            offset,
        }
    }

    fn check(request: SubscribeRequest) -> Result<Spec, RequestError> {
        Spec::from_request(
            &request,
            None,
            &DEFAULTS,
            UNIX_EPOCH + Duration::from_secs(1_000),
        )
    }

    #[test]
    fn positions_are_checked_sorted_and_bounded() {
        let spec = check(SubscribeRequest {
            topics: vec!["stock_trades".into()],
            resume_from: vec![
                position("stock_trades", 2, 7),
                position("stock_trades", 0, i64::MIN),
                position("server_logs", 0, 3),
            ],
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(
            spec.resume,
            vec![
                ResumePosition {
                    topic: Topic::StockTrades,
                    partition: 0,
                    offset: -1
                },
                ResumePosition {
                    topic: Topic::StockTrades,
                    partition: 2,
                    offset: 7
                },
            ],
            "other topics' positions are left out"
        );
        let too_many = check(SubscribeRequest {
            resume_from: vec![position("stock_trades", 0, 1); MAX_RESUME_POSITIONS + 1],
            ..Default::default()
        })
        .expect_err("too many");
        assert_eq!(too_many.reason(), "too_many_positions");
        assert!(too_many.to_string().contains("at most 1024"), "{too_many}");
        for bad in [position("nope", 0, 1), position("stock_trades", -1, 1)] {
            let error = check(SubscribeRequest {
                resume_from: vec![bad],
                ..Default::default()
            })
            .expect_err("bad");
            assert_eq!(error.reason(), "bad_resume_position");
        }
        let twice = check(SubscribeRequest {
            resume_from: vec![
                position("stock_trades", 0, 1),
                position("stock_trades", 0, 2),
            ],
            ..Default::default()
        })
        .expect_err("twice");
        assert_eq!(twice.reason(), "duplicate_resume_position");
    }

    #[test]
    fn start_points() {
        let start = |point| {
            check(SubscribeRequest {
                start_at: Some(StartAt { point: Some(point) }),
                ..Default::default()
            })
            .map(|spec| spec.start_at)
        };
        assert_eq!(start(Point::Earliest(true)), Ok(Some(StartPoint::Earliest)));
        assert_eq!(
            start(Point::Last(pbjson_types::Duration {
                seconds: 300,
                nanos: 0
            })),
            Ok(Some(StartPoint::Time(
                UNIX_EPOCH + Duration::from_secs(700)
            )))
        );
        assert_eq!(
            start(Point::Time(pbjson_types::Timestamp {
                seconds: 5,
                nanos: 0
            })),
            Ok(Some(StartPoint::Time(UNIX_EPOCH + Duration::from_secs(5))))
        );
        assert!(
            start(Point::Time(pbjson_types::Timestamp {
                seconds: -5,
                nanos: 0
            }))
            .is_err()
        );
        assert_eq!(
            check(SubscribeRequest::default()).map(|spec| spec.start_at),
            Ok(None)
        );
    }
}
