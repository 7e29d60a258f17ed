//! Part `costs`: CPU per event of what a subscriber chooses, measured in this process on the
//! gateway's own code. A filter expression (CEL) per event it is evaluated on, beside the list
//! fields it can stand for; and what a client spends decoding an event from the gateway's
//! shared JSON encoding (`/ws`, `/sse`) beside its Protobuf one (the binary WebSocket
//! `streamweaver.v1.proto`, gRPC). Thread CPU time, best of several rounds, so other work on a
//! shared machine weighs little.

use std::sync::Arc;

use anyhow::Context;
use gateway::{event::SharedEvent, expr::Expressions, filter::Filter};
use prost::Message;
use serde::{Deserialize, Serialize};
use streamweaver_proto::{
    topics::Topic,
    v1::{
        Event, LogEntry, LogLevel, SocialPost, StockTrade, SubscribeRequest, SubscribeResponse,
        TradeSide, event::Payload,
    },
};

/// The typical expression the report leads with.
pub const TYPICAL_EXPRESSION: &str =
    r#"stock_trade.price > 500.0 && stock_trade.symbol in ["NVDA", "META"]"#;
/// Expressions measured, the typical one first.
const EXPRESSIONS: &[&str] = &[
    TYPICAL_EXPRESSION,
    r#"stock_trade.symbol in ["NVDA", "META"]"#,
    r#"log_entry.service.startsWith("pay") && log_entry.level >= LOG_LEVEL_WARN"#,
    r#"log_entry.message.matches("(?i)timeout")"#,
    r#""rust" in social_post.hashtags"#,
    // The interpreter's floor: an activation, one literal.
    "true",
];
/// Rounds per measurement; the best is kept.
const ROUNDS: usize = 5;

/// One filter's cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilterCost {
    /// The filter, as a person writes it.
    pub filter: String,
    /// CPU nanoseconds per event it is evaluated on.
    pub ns_per_event: f64,
    /// Events of the sample it is offered (the hub offers only the topics it may match).
    pub offered: usize,
    /// Of those, how many it took.
    pub matched: usize,
}

/// Decoding one trade event on the client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecodeCost {
    /// `JSON` or `Protobuf`.
    pub encoding: String,
    /// Bytes of one event's encoding.
    pub bytes: usize,
    /// CPU nanoseconds per event.
    pub ns_per_event: f64,
}

/// What part `costs` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostFigures {
    /// The list-field baseline first, then each expression.
    pub filters: Vec<FilterCost>,
    /// JSON, then Protobuf.
    pub decoding: Vec<DecodeCost>,
}

/// CPU time this thread has used, from the scheduler's own count. The kernel brings it up to date
/// only at its ticks (a few milliseconds apart), so a measurement must run far longer than a tick.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// How much CPU one round runs for: a hundred ticks or so, so the tick's granularity is noise.
const ROUND_CPU_NS: u64 = 200_000_000;

/// The best CPU nanoseconds per item over [`ROUNDS`] rounds, each repeating `work` over `items`
/// items until it has used [`ROUND_CPU_NS`].
fn best_ns_per_item(items: usize, mut work: impl FnMut()) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let start = thread_cpu_ns();
            let mut repeats = 0u64;
            let used = loop {
                work();
                repeats += 1;
                let used = thread_cpu_ns().saturating_sub(start);
                if used >= ROUND_CPU_NS {
                    break used;
                }
            };
            used as f64 / (repeats as f64 * items.max(1) as f64)
        })
        .fold(f64::MAX, f64::min)
}

fn event(topic: Topic, i: usize, payload: Payload) -> Event {
    Event {
        topic: topic.name().into(),
        partition: (i % 3) as i32,
        offset: i as i64,
        payload: Some(payload),
        ..Default::default()
    }
}

fn trade(i: usize) -> Event {
    let (symbol, price) = [
        ("NVDA", 880.4),
        ("AAPL", 189.5),
        ("META", 495.6),
        ("MSFT", 415.2),
    ][i % 4];
    event(
        Topic::StockTrades,
        i,
        Payload::StockTrade(StockTrade {
            trade_id: format!("t-{i}"),
            symbol: symbol.into(),
            price: price + (i % 20) as f64,
            quantity: 100,
            side: TradeSide::Buy.into(),
            exchange: "NASDAQ".into(),
            timestamp: Some(pbjson_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 0,
            }),
        }),
    )
}

/// A mix like the producers': trades, log lines, posts.
fn sample() -> Vec<Event> {
    (0..1200)
        .map(|i| match i % 3 {
            0 => trade(i),
            1 => event(
                Topic::ServerLogs,
                i,
                Payload::LogEntry(LogEntry {
                    service: ["payment-service", "auth-service"][i % 2].into(),
                    level: [LogLevel::Info, LogLevel::Warn, LogLevel::Error][i % 3].into(),
                    message: ["GET /orders completed", "upstream timeout after 3 retries"][i % 2]
                        .into(),
                    ..Default::default()
                }),
            ),
            _ => event(
                Topic::SocialFeed,
                i,
                Payload::SocialPost(SocialPost {
                    author: "ada".into(),
                    text: "shipping it".into(),
                    hashtags: vec!["rust".into(), "tech".into()],
                    ..Default::default()
                }),
            ),
        })
        .collect()
}

/// The cost of `matches` per event of `offered`.
fn filter_cost(filter: String, offered: &[&Event], matches: impl Fn(&Event) -> bool) -> FilterCost {
    let repeats = 200;
    let mut matched = 0;
    let ns_per_event = best_ns_per_item(repeats * offered.len(), || {
        matched = 0;
        for _ in 0..repeats {
            for event in offered {
                matched += usize::from(matches(std::hint::black_box(event)));
            }
        }
    });
    FilterCost {
        filter,
        ns_per_event,
        offered: offered.len(),
        matched: matched / repeats,
    }
}

/// Measures filters and decoding; takes a few seconds.
pub fn run() -> anyhow::Result<CostFigures> {
    let events = sample();
    let mut filters = Vec::new();
    let baseline = Filter::from_request(&SubscribeRequest {
        topics: vec![Topic::StockTrades.name().into()],
        symbols: vec!["NVDA".into(), "META".into()],
        ..Default::default()
    })
    .context("the baseline filter")?;
    let trades: Vec<&Event> = events
        .iter()
        .filter(|e| e.topic == Topic::StockTrades.name())
        .collect();
    filters.push(filter_cost(
        "list fields: topics=stock_trades, symbols=NVDA,META (the baseline)".into(),
        &trades,
        |e| baseline.matches(e),
    ));
    let expressions = Expressions::default();
    for source in EXPRESSIONS {
        let expression = expressions
            .get_blocking(source)
            .with_context(|| format!("compiling {source}"))?
            .context("an empty expression")?;
        let offered: Vec<&Event> = events
            .iter()
            .filter(|e| {
                e.topic
                    .parse::<Topic>()
                    .is_ok_and(|t| expression.may_match(t))
            })
            .collect();
        let expression = Arc::clone(&expression);
        filters.push(filter_cost(format!("`{source}`"), &offered, |e| {
            expression.matches(e)
        }));
    }

    let shared: Vec<SharedEvent> = (0..2000)
        .map(|i| SharedEvent::new(trade(i)).context("a valid event"))
        .collect::<anyhow::Result<_>>()?;
    // Both encodings read back as the same response, or the comparison means nothing.
    let from_json: SubscribeResponse =
        serde_json::from_slice(shared[0].json()).context("decoding the shared JSON")?;
    let from_protobuf = SubscribeResponse::decode(shared[0].protobuf().clone())
        .context("decoding the shared Protobuf")?;
    anyhow::ensure!(
        from_json == from_protobuf,
        "the JSON and Protobuf encodings differ"
    );
    let decode_json = best_ns_per_item(shared.len(), || {
        for event in &shared {
            let response: Result<SubscribeResponse, _> = serde_json::from_slice(event.json());
            let _ = std::hint::black_box(response);
        }
    });
    let decode_protobuf = best_ns_per_item(shared.len(), || {
        for event in &shared {
            let _ = std::hint::black_box(SubscribeResponse::decode(event.protobuf().clone()));
        }
    });
    let decoding = vec![
        DecodeCost {
            encoding: "JSON (`/ws`, `/sse`)".into(),
            bytes: shared[0].json().len(),
            ns_per_event: decode_json,
        },
        DecodeCost {
            encoding: "Protobuf (binary WebSocket, gRPC)".into(),
            bytes: shared[0].protobuf().len(),
            ns_per_event: decode_protobuf,
        },
    ];
    Ok(CostFigures { filters, decoding })
}
