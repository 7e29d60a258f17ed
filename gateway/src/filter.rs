//! What a subscriber asked to see, checked once when it subscribes and then applied to every
//! event cheaply.

use std::{collections::HashSet, sync::Arc};

use streamweaver_proto::{
    topics::{self, Topic},
    v1::{Event, LogLevel, SubscribeRequest, event::Payload},
};

use crate::expr::Expression;

/// Most values one filter field may hold, so one request cannot make every event expensive.
pub const MAX_FILTER_VALUES: usize = 1_000;

/// Why a subscribe request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A topic StreamWeaver does not carry.
    #[error("unknown topic {0:?}; known topics are stock_trades, social_feed, server_logs")]
    UnknownTopic(String),
    /// A log level number outside the enum.
    #[error("unknown log level {0}")]
    UnknownLogLevel(i32),
    /// A resume position names an unknown topic or a negative partition.
    #[error("resume position {0} names no partition of a known topic")]
    BadPosition(String),
    /// A field holds too many values.
    #[error("{field} has {count} values; at most {MAX_FILTER_VALUES} are allowed")]
    TooManyValues {
        /// Which field.
        field: &'static str,
        /// How many it had.
        count: usize,
    },
}

impl FilterError {
    /// A short, fixed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownTopic(_) => "unknown_topic",
            Self::UnknownLogLevel(_) => "unknown_log_level",
            Self::TooManyValues { .. } => "too_many_values",
            Self::BadPosition(_) => "bad_resume_position",
        }
    }
}

/// A checked subscription filter. Empty sets mean "everything".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    topics: HashSet<String>,
    symbols: HashSet<String>,
    authors: HashSet<String>,
    hashtags: HashSet<String>,
    log_levels: HashSet<i32>,
    services: HashSet<String>,
    /// The request's CEL expression, compiled once and shared by equal filters.
    expression: Option<Arc<Expression>>,
}

fn set(field: &'static str, values: &[String]) -> Result<HashSet<String>, FilterError> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(FilterError::TooManyValues {
            field,
            count: values.len(),
        });
    }
    Ok(values.iter().cloned().collect())
}

impl Filter {
    /// Checks `request` and makes its filter.
    pub fn from_request(request: &SubscribeRequest) -> Result<Self, FilterError> {
        let topics = set("topics", &request.topics)?;
        if let Some(unknown) = topics.iter().find(|t| !topics::ALL.contains(&t.as_str())) {
            return Err(FilterError::UnknownTopic(unknown.clone()));
        }
        if request.log_levels.len() > MAX_FILTER_VALUES {
            return Err(FilterError::TooManyValues {
                field: "log_levels",
                count: request.log_levels.len(),
            });
        }
        if request.resume_from.len() > MAX_FILTER_VALUES {
            return Err(FilterError::TooManyValues {
                field: "resume_from",
                count: request.resume_from.len(),
            });
        }
        if let Some(position) = request
            .resume_from
            .iter()
            .find(|p| !topics::ALL.contains(&p.topic.as_str()) || p.partition < 0)
        {
            return Err(FilterError::BadPosition(format!(
                "{}/{}/{}",
                position.topic, position.partition, position.offset
            )));
        }
        if let Some(&level) = request
            .log_levels
            .iter()
            .find(|&&l| LogLevel::try_from(l).is_err())
        {
            return Err(FilterError::UnknownLogLevel(level));
        }
        Ok(Self {
            topics,
            symbols: set("symbols", &request.symbols)?,
            authors: set("authors", &request.authors)?,
            hashtags: set("hashtags", &request.hashtags)?,
            log_levels: request.log_levels.iter().copied().collect(),
            services: set("services", &request.services)?,
            expression: None,
        })
    }

    /// The filter with the request's compiled `filter` expression as well.
    pub fn with_expression(self, expression: Option<Arc<Expression>>) -> Self {
        Self { expression, ..self }
    }

    /// Whether the subscriber wants `event`. Each field filter narrows only its own topic.
    pub fn matches(&self, event: &Event) -> bool {
        if !self.topics.is_empty() && !self.topics.contains(&event.topic) {
            return false;
        }
        let allows = |set: &HashSet<String>, value: &String| set.is_empty() || set.contains(value);
        let fields = match &event.payload {
            Some(Payload::StockTrade(trade)) => allows(&self.symbols, &trade.symbol),
            Some(Payload::SocialPost(post)) => {
                allows(&self.authors, &post.author)
                    && (self.hashtags.is_empty()
                        || post.hashtags.iter().any(|tag| self.hashtags.contains(tag)))
            }
            Some(Payload::LogEntry(entry)) => {
                (self.log_levels.is_empty() || self.log_levels.contains(&entry.level))
                    && allows(&self.services, &entry.service)
            }
            None => false,
        };
        fields
            && self.expression.as_ref().is_none_or(|expression| {
                event
                    .topic
                    .parse::<Topic>()
                    .is_ok_and(|topic| expression.may_match(topic))
                    && expression.matches(event)
            })
    }
}

#[cfg(test)]
mod tests {
    use streamweaver_proto::v1::{LogEntry, SocialPost, StockTrade};

    use super::*;

    fn trade(symbol: &str) -> Event {
        Event {
            topic: topics::STOCK_TRADES.into(),
            payload: Some(Payload::StockTrade(StockTrade {
                symbol: symbol.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn log(level: LogLevel) -> Event {
        Event {
            topic: topics::SERVER_LOGS.into(),
            payload: Some(Payload::LogEntry(LogEntry {
                service: "auth".into(),
                level: level.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn post(tags: &[&str]) -> Event {
        Event {
            topic: topics::SOCIAL_FEED.into(),
            payload: Some(Payload::SocialPost(SocialPost {
                author: "ada".into(),
                hashtags: tags.iter().map(|t| (*t).to_owned()).collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn empty_request_matches_everything() {
        let filter = Filter::from_request(&SubscribeRequest::default()).expect("valid");
        assert!(filter.matches(&trade("AAPL")));
        assert!(filter.matches(&log(LogLevel::Debug)));
        assert!(filter.matches(&post(&[])));
    }

    #[test]
    fn field_filters_narrow_their_own_topic_only() {
        let filter = Filter::from_request(&SubscribeRequest {
            symbols: vec!["AAPL".into()],
            log_levels: vec![LogLevel::Error.into()],
            hashtags: vec!["rustlang".into()],
            ..Default::default()
        })
        .expect("valid");
        assert!(filter.matches(&trade("AAPL")));
        assert!(!filter.matches(&trade("MSFT")));
        assert!(filter.matches(&log(LogLevel::Error)));
        assert!(!filter.matches(&log(LogLevel::Warn)));
        assert!(filter.matches(&post(&["rustlang", "tech"])));
        assert!(!filter.matches(&post(&["tech"])));
    }

    #[test]
    fn topics_narrow_and_unknown_ones_are_refused() {
        let filter = Filter::from_request(&SubscribeRequest {
            topics: vec![topics::SERVER_LOGS.into()],
            ..Default::default()
        })
        .expect("valid");
        assert!(!filter.matches(&trade("AAPL")));
        assert!(filter.matches(&log(LogLevel::Info)));

        let error = Filter::from_request(&SubscribeRequest {
            topics: vec!["stock_trade".into()],
            ..Default::default()
        })
        .expect_err("unknown topic");
        assert_eq!(error.reason(), "unknown_topic");
        assert!(error.to_string().contains("stock_trade"));
        let error = Filter::from_request(&SubscribeRequest {
            log_levels: vec![42],
            ..Default::default()
        })
        .expect_err("unknown level");
        assert_eq!(error, FilterError::UnknownLogLevel(42));
        let error = Filter::from_request(&SubscribeRequest {
            resume_from: vec![streamweaver_proto::v1::Position {
                topic: "nope".into(),
                partition: 0,
                offset: 1,
            }],
            ..Default::default()
        })
        .expect_err("unknown resume topic");
        assert_eq!(error.reason(), "bad_resume_position");
    }
}
