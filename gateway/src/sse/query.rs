//! The query string of `/sse`: the fields of a `SubscribeRequest`, spelled as a browser's
//! `EventSource` URL can carry them.
//!
//! | parameter | `SubscribeRequest` field | example |
//! | --- | --- | --- |
//! | `topics` | `topics` | `topics=stock_trades,server_logs` or `topics=a&topics=b` |
//! | `symbols`, `authors`, `hashtags`, `services` | the same | `symbols=NVDA,META` |
//! | `logLevels` | `log_levels` | `logLevels=ERROR,WARN` (or `LOG_LEVEL_ERROR`, or `4`) |
//! | `filter` | `filter` (CEL) | `filter=stock_trade.price%20%3E%20500.0` |
//! | `slowClientPolicy` | `slow_client_policy` | `GAP`, `DISCONNECT`, `LATEST_PER_KEY`, `SAMPLE` |
//! | `sampleInterval` | `sample_interval` | `250ms`, `2s` |
//! | `startLast` / `startTime` / `startEarliest` | `start_at` | `300s` / `2026-01-01T00:00:00Z` / `true` |
//! | `lastEventId` | `resume_from`, as a resume token | an `id:` this gateway sent |
//! | `resumeFrom` | `resume_from` | `stock_trades:0:41,server_logs:2:7` (topic:partition:offset) |
//!
//! Names are accepted in camelCase and snake_case, list names also in the singular (`topic`).
//! Where a resume token is given (`Last-Event-ID`, else `lastEventId`), it replaces
//! `resumeFrom`.
//! An unknown parameter is refused, so a typo is not silently a different subscription — and
//! so is `token`: a credential in a URL ends up in proxy and server logs, so `/sse` takes it
//! only in a header or a cookie (see [`super`]).

use std::time::Duration;

use streamweaver_common::duration::parse_duration;
use streamweaver_proto::v1::{
    LogLevel, Position, SlowClientPolicy, StartAt, SubscribeRequest, start_at,
};

/// What the query string asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseQuery {
    /// The subscription; its `resume_from` is `resumeFrom`'s, which a resume token replaces.
    pub request: SubscribeRequest,
    /// A resume token given in the URL; a `Last-Event-ID` header overrides it.
    pub last_event_id: Option<String>,
}

/// Why a query string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A parameter `/sse` does not know.
    #[error("unknown parameter {0:?}; see the README for /sse's parameters")]
    Unknown(String),
    /// A value that does not parse.
    #[error("{name}={value:?}: {reason}")]
    BadValue {
        /// The parameter.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A credential in the URL, where logs keep it.
    #[error(
        "a token is not accepted in the URL (logs keep URLs): send it as authorization: Bearer, or as the streamweaver_token cookie"
    )]
    TokenInUrl,
    /// A parameter that may appear once appeared again, or two start points were given.
    #[error("{0}")]
    Conflict(String),
}

/// Parses `raw`, the query string without its `?`.
pub fn parse(raw: &str) -> Result<SseQuery, QueryError> {
    let mut query = SseQuery::default();
    let request = &mut query.request;
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        let bad = |reason: String| QueryError::BadValue {
            name: name.to_string(),
            value: value.to_string(),
            reason,
        };
        let list = || {
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        match canonical(&name) {
            Some("topics") => request.topics.extend(list()),
            Some("symbols") => request.symbols.extend(list()),
            Some("authors") => request.authors.extend(list()),
            Some("hashtags") => request.hashtags.extend(list()),
            Some("services") => request.services.extend(list()),
            Some("logLevels") => {
                for level in list() {
                    request.log_levels.push(log_level(&level).ok_or_else(|| {
                        bad(format!(
                            "{level:?} is not a log level (DEBUG, INFO, WARN, ERROR)"
                        ))
                    })? as i32);
                }
            }
            Some("filter") => {
                once(&request.filter.is_empty(), "filter")?;
                request.filter = value.into_owned();
            }
            Some("slowClientPolicy") => {
                once(&(request.slow_client_policy == 0), "slowClientPolicy")?;
                request.slow_client_policy = slow_client_policy(&value)
                    .ok_or_else(|| bad("use GAP, DISCONNECT, LATEST_PER_KEY or SAMPLE".into()))?
                    as i32;
            }
            Some("sampleInterval") => {
                once(&request.sample_interval.is_none(), "sampleInterval")?;
                request.sample_interval =
                    Some(proto_duration(parse_duration(&value).map_err(bad)?));
            }
            Some(point @ ("startLast" | "startTime" | "startEarliest")) => {
                if request.start_at.is_some() {
                    return Err(QueryError::Conflict(
                        "give one of startLast, startTime and startEarliest".into(),
                    ));
                }
                let point = match point {
                    "startLast" => {
                        start_at::Point::Last(proto_duration(parse_duration(&value).map_err(bad)?))
                    }
                    "startTime" => start_at::Point::Time(timestamp(&value).map_err(bad)?),
                    _ => match value.as_ref() {
                        "" | "true" | "1" => start_at::Point::Earliest(true),
                        "false" | "0" => continue,
                        _ => return Err(bad("use true or false".into())),
                    },
                };
                request.start_at = Some(StartAt { point: Some(point) });
            }
            Some("resumeFrom") => {
                for position in list() {
                    request
                        .resume_from
                        .push(resume_position(&position).ok_or_else(|| {
                            bad(format!("{position:?} is not topic:partition:offset"))
                        })?);
                }
            }
            Some("lastEventId") => {
                once(&query.last_event_id.is_none(), "lastEventId")?;
                query.last_event_id = Some(value.into_owned());
            }
            Some("token") => return Err(QueryError::TokenInUrl),
            _ => return Err(QueryError::Unknown(name.into_owned())),
        }
    }
    Ok(query)
}

/// The camelCase name of a parameter spelled in any accepted way.
fn canonical(name: &str) -> Option<&'static str> {
    Some(match name {
        "topics" | "topic" => "topics",
        "symbols" | "symbol" => "symbols",
        "authors" | "author" => "authors",
        "hashtags" | "hashtag" => "hashtags",
        "services" | "service" => "services",
        "logLevels" | "log_levels" | "logLevel" | "log_level" => "logLevels",
        "filter" => "filter",
        "slowClientPolicy" | "slow_client_policy" => "slowClientPolicy",
        "sampleInterval" | "sample_interval" => "sampleInterval",
        "startLast" | "start_last" => "startLast",
        "startTime" | "start_time" => "startTime",
        "startEarliest" | "start_earliest" => "startEarliest",
        "lastEventId" | "last_event_id" => "lastEventId",
        "resumeFrom" | "resume_from" => "resumeFrom",
        "token" => "token",
        _ => return None,
    })
}

fn once(first: &bool, name: &str) -> Result<(), QueryError> {
    if *first {
        Ok(())
    } else {
        Err(QueryError::Conflict(format!("{name} may be given once")))
    }
}

fn log_level(value: &str) -> Option<LogLevel> {
    let upper = value.to_ascii_uppercase();
    LogLevel::from_str_name(&upper)
        .or_else(|| LogLevel::from_str_name(&format!("LOG_LEVEL_{upper}")))
        .or_else(|| {
            value
                .parse::<i32>()
                .ok()
                .and_then(|n| LogLevel::try_from(n).ok())
        })
        .filter(|level| *level != LogLevel::Unspecified)
}

fn slow_client_policy(value: &str) -> Option<SlowClientPolicy> {
    let upper = value.to_ascii_uppercase();
    SlowClientPolicy::from_str_name(&upper)
        .or_else(|| SlowClientPolicy::from_str_name(&format!("SLOW_CLIENT_POLICY_{upper}")))
        .or_else(|| {
            value
                .parse::<i32>()
                .ok()
                .and_then(|n| SlowClientPolicy::try_from(n).ok())
        })
}

/// `topic:partition:offset`; the topic is checked where every request's positions are.
fn resume_position(value: &str) -> Option<Position> {
    let mut parts = value.splitn(3, ':');
    let topic = parts.next()?.to_owned();
    let partition = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    Some(Position {
        topic,
        partition,
        offset,
    })
}

fn proto_duration(duration: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(duration.subsec_nanos()).unwrap_or(0),
    }
}

fn timestamp(value: &str) -> Result<pbjson_types::Timestamp, String> {
    let time = chrono::DateTime::parse_from_rfc3339(value)
        .map_err(|e| format!("not an RFC 3339 time such as 2026-01-01T00:00:00Z: {e}"))?;
    Ok(pbjson_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_can_be_given() {
        let query = parse(
            "topics=stock_trades,server_logs&topic=social_feed&symbols=NVDA&symbol=META\
             &logLevels=ERROR,LOG_LEVEL_WARN,2&services=pay&authors=ada&hashtags=rust\
             &filter=stock_trade.price%20%3E%20500.0&slowClientPolicy=latest_per_key\
             &sampleInterval=250ms&startLast=300s&lastEventId=abc\
             &resumeFrom=stock_trades:0:41,server_logs:2:7",
        )
        .expect("valid");
        let request = &query.request;
        assert_eq!(
            request.topics,
            ["stock_trades", "server_logs", "social_feed"]
        );
        assert_eq!(request.symbols, ["NVDA", "META"]);
        assert_eq!(request.log_levels, [4, 3, 2]);
        assert_eq!(request.services, ["pay"]);
        assert_eq!(request.authors, ["ada"]);
        assert_eq!(request.hashtags, ["rust"]);
        assert_eq!(request.filter, "stock_trade.price > 500.0");
        assert_eq!(
            request.slow_client_policy,
            SlowClientPolicy::LatestPerKey as i32
        );
        assert_eq!(
            request.sample_interval,
            Some(pbjson_types::Duration {
                seconds: 0,
                nanos: 250_000_000
            })
        );
        assert_eq!(
            request.start_at,
            Some(StartAt {
                point: Some(start_at::Point::Last(pbjson_types::Duration {
                    seconds: 300,
                    nanos: 0
                }))
            })
        );
        assert_eq!(query.last_event_id.as_deref(), Some("abc"));
        assert_eq!(
            request.resume_from,
            [
                Position {
                    topic: "stock_trades".into(),
                    partition: 0,
                    offset: 41
                },
                Position {
                    topic: "server_logs".into(),
                    partition: 2,
                    offset: 7
                }
            ]
        );
        assert_eq!(
            parse("topics=stock_trades&token=s3cret"),
            Err(QueryError::TokenInUrl)
        );
        assert_eq!(parse("").expect("empty"), SseQuery::default());
    }

    #[test]
    fn start_points() {
        let time = parse("startTime=2026-01-01T00:00:00Z").expect("valid");
        assert_eq!(
            time.request.start_at,
            Some(StartAt {
                point: Some(start_at::Point::Time(pbjson_types::Timestamp {
                    seconds: 1_767_225_600,
                    nanos: 0
                }))
            })
        );
        let earliest = parse("startEarliest").expect("valid");
        assert_eq!(
            earliest.request.start_at,
            Some(StartAt {
                point: Some(start_at::Point::Earliest(true))
            })
        );
        assert_eq!(
            parse("startEarliest=false")
                .expect("valid")
                .request
                .start_at,
            None
        );
    }

    #[test]
    fn mistakes_are_refused_saying_what() {
        let cases = [
            ("topicz=stock_trades", "unknown parameter \"topicz\""),
            ("logLevels=LOUD", "not a log level"),
            ("slowClientPolicy=FAST", "use GAP"),
            ("sampleInterval=5", "needs a unit"),
            ("startTime=yesterday", "RFC 3339"),
            ("startLast=5s&startEarliest=true", "one of startLast"),
            ("filter=a&filter=b", "filter may be given once"),
            ("startEarliest=maybe", "true or false"),
            ("resumeFrom=stock_trades:0", "topic:partition:offset"),
        ];
        for (raw, expected) in cases {
            let error = parse(raw).expect_err(raw);
            assert!(error.to_string().contains(expected), "{raw}: {error}");
        }
    }
}
