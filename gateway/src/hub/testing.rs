//! Events for the hub's tests.

use streamweaver_proto::v1::{Event, LogEntry, LogLevel, StockTrade, event::Payload};

use crate::event::SharedEvent;

/// A stock trade of `symbol` (also its key) at a position.
pub(crate) fn trade(partition: i32, offset: i64, symbol: &str) -> SharedEvent {
    SharedEvent::new(Event {
        topic: "stock_trades".into(),
        key: symbol.into(),
        partition,
        offset,
        payload: Some(Payload::StockTrade(StockTrade {
            symbol: symbol.into(),
            ..Default::default()
        })),
        ..Default::default()
    })
    .expect("valid")
}

/// A log line of service `auth` at a position.
pub(crate) fn log(partition: i32, offset: i64, level: LogLevel) -> SharedEvent {
    SharedEvent::new(Event {
        topic: "server_logs".into(),
        key: "auth".into(),
        partition,
        offset,
        payload: Some(Payload::LogEntry(LogEntry {
            service: "auth".into(),
            level: level.into(),
            ..Default::default()
        })),
        ..Default::default()
    })
    .expect("valid")
}
