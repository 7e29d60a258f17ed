//! What trade-bars counts, served on `--metrics-listen`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Labels of the trade counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// What became of the trade (`Counted::label`).
    pub outcome: &'static str,
}

/// The service's counters.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Trades taken in, by what became of them.
    pub trades: Family<OutcomeLabels, Counter>,
    /// Bars Kafka acknowledged.
    pub bars: Counter,
    /// Bars open now.
    pub open_bars: Gauge,
    /// Trades the gateway reported missed in gap notices.
    pub missed_trades: Counter,
    /// Times the subscription was interrupted.
    pub disconnections: Counter,
    /// Bars read back from Kafka at start.
    pub restored_bars: Gauge,
}

impl Metrics {
    /// New counters, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "trade_bars_trades",
            "Trades taken in, by outcome (in_bar, duplicate, already_in_bar, late, invalid)",
            metrics.trades.clone(),
        );
        registry.register(
            "trade_bars_bars_produced",
            "Bars Kafka acknowledged",
            metrics.bars.clone(),
        );
        registry.register(
            "trade_bars_open_bars",
            "Bars open now",
            metrics.open_bars.clone(),
        );
        registry.register(
            "trade_bars_missed_trades",
            "Trades the gateway reported missed in gap notices",
            metrics.missed_trades.clone(),
        );
        registry.register(
            "trade_bars_disconnections",
            "Times the subscription to the gateway was interrupted",
            metrics.disconnections.clone(),
        );
        registry.register(
            "trade_bars_restored_bars",
            "Bars read back from Kafka at start",
            metrics.restored_bars.clone(),
        );
        metrics
    }
}
