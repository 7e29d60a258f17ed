//! What a subscriber asked to see, checked once when it subscribes and then applied to every
//! event cheaply. A filter is canonical (its values sorted and deduplicated), so two requests
//! that ask for the same thing make equal filters: the hub compiles each distinct filter once
//! and evaluates it once per event for every subscriber that shares it.
//!
//! A filter may carry a CEL expression ([`crate::expr`]), compiled once per distinct source and
//! shared; what it says about topics and keys narrows the routing like the fields do.

use std::sync::Arc;

use streamweaver_proto::{
    topics::Topic,
    v1::{Event, LogLevel, SubscribeRequest, event::Payload},
};

use crate::expr::Expression;

/// Most values one filter field may hold, so one request cannot make every event expensive.
pub const MAX_FILTER_VALUES: usize = 1_000;

/// Why a subscribe request's filter is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A topic StreamWeaver does not carry.
    #[error(
        "unknown topic {0:?}; known topics are stock_trades, social_feed, server_logs, trade_bars"
    )]
    UnknownTopic(String),
    /// A log level number outside the enum.
    #[error("unknown log level {0}")]
    UnknownLogLevel(i32),
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
        }
    }
}

/// A set of topics, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TopicSet(u8);

impl TopicSet {
    /// Every topic.
    pub const ALL: TopicSet = TopicSet((1 << Topic::ALL.len()) - 1);

    /// Whether `topic` is in the set.
    pub fn contains(self, topic: Topic) -> bool {
        self.0 & (1 << topic.index()) != 0
    }

    /// The set with `topic` added.
    pub fn with(self, topic: Topic) -> Self {
        Self(self.0 | (1 << topic.index()))
    }

    /// The topics in the set, in [`Topic::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Topic> {
        Topic::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

/// Sorted, deduplicated values; empty means "any".
type Values = Box<[Box<str>]>;

fn values(field: &'static str, given: &[String]) -> Result<Values, FilterError> {
    if given.len() > MAX_FILTER_VALUES {
        return Err(FilterError::TooManyValues {
            field,
            count: given.len(),
        });
    }
    let mut values: Vec<Box<str>> = given.iter().map(|v| v.as_str().into()).collect();
    values.sort_unstable();
    values.dedup();
    Ok(values.into_boxed_slice())
}

fn allows(values: &[Box<str>], value: &str) -> bool {
    values.is_empty() || values.binary_search_by(|v| (**v).cmp(value)).is_ok()
}

/// A checked subscription filter. Empty value lists mean "everything".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    topics: TopicSet,
    symbols: Values,
    authors: Values,
    hashtags: Values,
    /// One bit per [`LogLevel`] value; 0 means any.
    log_levels: u8,
    services: Values,
    /// The request's CEL expression, compiled once and shared by equal filters.
    expression: Option<Arc<Expression>>,
    /// The topics an event can match at all: `topics`, less those the expression rules out.
    routed: TopicSet,
    /// Per topic, the keys an event must have ([`Filter::keys`]): the fields' and the
    /// expression's, intersected; `None` for any.
    keys: [Option<Values>; Topic::ALL.len()],
}

impl Filter {
    /// Checks `request` and makes its filter.
    pub fn from_request(request: &SubscribeRequest) -> Result<Self, FilterError> {
        if request.topics.len() > MAX_FILTER_VALUES {
            return Err(FilterError::TooManyValues {
                field: "topics",
                count: request.topics.len(),
            });
        }
        let mut topics = TopicSet::default();
        for name in &request.topics {
            let topic: Topic = name
                .parse()
                .map_err(|_| FilterError::UnknownTopic(name.clone()))?;
            topics = topics.with(topic);
        }
        if request.topics.is_empty() {
            topics = TopicSet::ALL;
        }
        if request.log_levels.len() > MAX_FILTER_VALUES {
            return Err(FilterError::TooManyValues {
                field: "log_levels",
                count: request.log_levels.len(),
            });
        }
        let mut log_levels = 0u8;
        for &level in &request.log_levels {
            let known =
                LogLevel::try_from(level).map_err(|_| FilterError::UnknownLogLevel(level))?;
            log_levels |= 1 << (known as u8);
        }
        let mut filter = Self {
            topics,
            symbols: values("symbols", &request.symbols)?,
            authors: values("authors", &request.authors)?,
            hashtags: values("hashtags", &request.hashtags)?,
            log_levels,
            services: values("services", &request.services)?,
            expression: None,
            routed: topics,
            keys: Default::default(),
        };
        filter.narrow();
        Ok(filter)
    }

    /// The filter with `expression` (the request's compiled `filter`) as well.
    pub fn with_expression(mut self, expression: Option<Arc<Expression>>) -> Self {
        self.expression = expression;
        self.narrow();
        self
    }

    /// The expression, if any.
    pub fn expression(&self) -> Option<&Arc<Expression>> {
        self.expression.as_ref()
    }

    /// Works out [`Filter::routed_topics`] and [`Filter::keys`] from the fields and the
    /// expression.
    fn narrow(&mut self) {
        self.routed = TopicSet::default();
        for topic in self.topics.iter() {
            let fields = match topic {
                Topic::StockTrades | Topic::TradeBars => &self.symbols,
                Topic::SocialFeed => &self.authors,
                Topic::ServerLogs => &self.services,
            };
            let fields = (!fields.is_empty()).then_some(&**fields);
            let expression = match &self.expression {
                Some(expression) if !expression.may_match(topic) => continue,
                Some(expression) => expression.keys(topic),
                None => None,
            };
            let keys: Option<Values> = match (fields, expression) {
                (None, None) => None,
                (Some(keys), None) | (None, Some(keys)) => Some(keys.into()),
                (Some(fields), Some(expression)) => Some(
                    fields
                        .iter()
                        .filter(|key| expression.binary_search(key).is_ok())
                        .cloned()
                        .collect(),
                ),
            };
            // No key can pass both: nothing of this topic can match.
            if keys.as_ref().is_some_and(|keys| keys.is_empty()) {
                continue;
            }
            self.keys[topic.index()] = keys;
            self.routed = self.routed.with(topic);
        }
    }

    /// The topics the subscriber follows: its positions (resume, heartbeats) are in these.
    pub fn topics(&self) -> TopicSet {
        self.topics
    }

    /// The topics whose events the filter can take at all (an expression may rule some out):
    /// what the hub's routing index files the filter under.
    pub fn routed_topics(&self) -> TopicSet {
        self.routed
    }

    /// The keys (symbols, authors or services) the filter narrows `topic` to, or `None` when it
    /// takes every key of it: what the hub's routing index is keyed by. Never empty.
    pub fn keys(&self, topic: Topic) -> Option<&[Box<str>]> {
        self.keys[topic.index()].as_deref()
    }

    /// Whether the subscriber wants `event`. Each field filter narrows only its own topic.
    pub fn matches(&self, event: &Event) -> bool {
        let Some(payload) = &event.payload else {
            return false;
        };
        let topic = Topic::of_payload(payload);
        if !self.routed.contains(topic) {
            return false;
        }
        let key_allowed = match self.keys(topic) {
            Some(keys) => allows(keys, routing_key(payload)),
            None => true,
        };
        key_allowed && self.matches_besides_key(event, payload)
    }

    /// Whether the subscriber wants `event` (with `payload`) when the routing index already
    /// matched its topic and key: only the conditions that are not about the key are left, the
    /// expression last (it costs the most).
    pub fn matches_besides_key(&self, event: &Event, payload: &Payload) -> bool {
        let fields = match payload {
            Payload::StockTrade(_) | Payload::TradeBar(_) => true,
            Payload::SocialPost(post) => {
                self.hashtags.is_empty()
                    || post.hashtags.iter().any(|tag| allows(&self.hashtags, tag))
            }
            Payload::LogEntry(entry) => {
                self.log_levels == 0
                    || u8::try_from(entry.level)
                        .ok()
                        .filter(|level| *level < 8)
                        .is_some_and(|level| self.log_levels & (1 << level) != 0)
            }
        };
        fields
            && self
                .expression
                .as_ref()
                .is_none_or(|expression| expression.matches(event))
    }
}

/// The value a filter's keys are compared with: the payload's symbol, author or service (the
/// Kafka record key of a well-behaved producer, but the payload is what a filter promises).
pub fn routing_key(payload: &Payload) -> &str {
    match payload {
        Payload::StockTrade(trade) => &trade.symbol,
        Payload::TradeBar(bar) => &bar.symbol,
        Payload::SocialPost(post) => &post.author,
        Payload::LogEntry(entry) => &entry.service,
    }
}

#[cfg(test)]
mod tests {
    use streamweaver_proto::{
        topics,
        v1::{LogEntry, SocialPost, StockTrade},
    };

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
        assert_eq!(filter.topics(), TopicSet::ALL);
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
        let bar = |symbol: &str| Event {
            topic: topics::TRADE_BARS.into(),
            payload: Some(Payload::TradeBar(streamweaver_proto::v1::TradeBar {
                symbol: symbol.into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(filter.matches(&bar("AAPL")), "symbols narrow bars too");
        assert!(!filter.matches(&bar("MSFT")));
        assert!(!filter.matches(&post(&["tech"])));
        assert_eq!(filter.keys(Topic::StockTrades), Some(&["AAPL".into()][..]));
        assert_eq!(filter.keys(Topic::TradeBars), Some(&["AAPL".into()][..]));
        assert_eq!(filter.keys(Topic::ServerLogs), None);
    }

    fn with_expression(request: SubscribeRequest, source: &str) -> Filter {
        let expression = crate::expr::Expressions::default()
            .get_blocking(source)
            .expect("a valid expression");
        Filter::from_request(&request)
            .expect("valid")
            .with_expression(expression)
    }

    #[test]
    fn an_expression_narrows_routing_like_the_fields() {
        // Keys named by the expression, intersected with the fields' keys.
        let filter = with_expression(
            SubscribeRequest {
                symbols: vec!["AAPL".into(), "NVDA".into()],
                ..Default::default()
            },
            r#"stock_trade.symbol in ["NVDA", "META"] && stock_trade.price > 500.0"#,
        );
        assert_eq!(filter.keys(Topic::StockTrades), Some(&["NVDA".into()][..]));
        // Reading a trade's fields rules out the other topics, but they stay followed.
        // (Trade bars, which expressions have no variable for, are evaluated event by event.)
        assert_eq!(
            filter.routed_topics(),
            TopicSet::default()
                .with(Topic::StockTrades)
                .with(Topic::TradeBars)
        );
        assert_eq!(filter.topics(), TopicSet::ALL);
        let priced = |symbol: &str, price: f64| Event {
            topic: topics::STOCK_TRADES.into(),
            payload: Some(Payload::StockTrade(StockTrade {
                symbol: symbol.into(),
                price,
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(filter.matches(&priced("NVDA", 880.0)));
        assert!(!filter.matches(&priced("NVDA", 100.0)));
        assert!(
            !filter.matches(&priced("META", 880.0)),
            "not in the fields' symbols"
        );
        assert!(!filter.matches(&log(LogLevel::Error)));

        // No key passes both: nothing of the topic can match.
        let none = with_expression(
            SubscribeRequest {
                symbols: vec!["AAPL".into()],
                ..Default::default()
            },
            r#"stock_trade.symbol == "NVDA""#,
        );
        assert!(!none.routed_topics().contains(Topic::StockTrades));
        // The same expression makes the same filter; another makes another.
        let source = r#"log_entry.service.startsWith("pay")"#;
        assert_eq!(
            with_expression(SubscribeRequest::default(), source),
            with_expression(SubscribeRequest::default(), source)
        );
        assert_ne!(
            with_expression(SubscribeRequest::default(), source),
            Filter::from_request(&SubscribeRequest::default()).expect("valid")
        );
    }

    #[test]
    fn the_same_request_in_another_order_is_the_same_filter() {
        let one = Filter::from_request(&SubscribeRequest {
            topics: vec!["stock_trades".into(), "server_logs".into()],
            symbols: vec!["B".into(), "A".into(), "B".into()],
            ..Default::default()
        })
        .expect("valid");
        let other = Filter::from_request(&SubscribeRequest {
            topics: vec!["server_logs".into(), "stock_trades".into()],
            symbols: vec!["A".into(), "B".into()],
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(one, other);
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
            symbols: vec!["X".into(); MAX_FILTER_VALUES + 1],
            ..Default::default()
        })
        .expect_err("too many");
        assert_eq!(error.reason(), "too_many_values");
    }
}
