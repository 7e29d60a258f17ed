//! The stock producer: trades whose prices follow a random walk per symbol, keyed by symbol so
//! each symbol's trades stay in order.

use std::time::SystemTime;

use prost::Message;
use rand::{Rng, rngs::StdRng, seq::IndexedRandom};
use rand_distr::{Distribution, LogNormal, Normal};
use streamweaver_common::producer::{EventSource, Record};
use streamweaver_proto::{
    time::timestamp,
    topics,
    v1::{StockTrade, TradeSide},
};

/// Symbols traded by default, with a starting price.
pub const DEFAULT_SYMBOLS: &[(&str, f64)] = &[
    ("AAPL", 189.50),
    ("MSFT", 415.20),
    ("GOOGL", 152.80),
    ("AMZN", 178.10),
    ("NVDA", 880.40),
    ("TSLA", 175.30),
    ("META", 495.60),
    ("NFLX", 610.90),
];

const EXCHANGES: &[&str] = &["NASDAQ", "NYSE", "ARCA", "BATS", "IEX"];

/// Per-trade volatility of the log price (about 0.1 % a trade).
const VOLATILITY: f64 = 0.001;

struct Symbol {
    name: &'static str,
    price: f64,
}

/// Makes stock trades: a geometric random walk per symbol, lot-sized quantities.
pub struct StockTrades {
    symbols: Vec<Symbol>,
    step: Normal<f64>,
    quantity: LogNormal<f64>,
    sequence: u64,
}

impl Default for StockTrades {
    fn default() -> Self {
        Self::new(DEFAULT_SYMBOLS)
    }
}

impl StockTrades {
    /// A source trading `symbols`, each starting at its price.
    pub fn new(symbols: &[(&'static str, f64)]) -> Self {
        Self {
            symbols: symbols
                .iter()
                .map(|&(name, price)| Symbol { name, price })
                .collect(),
            // Both parameters are constants that are valid for these distributions.
            step: Normal::new(0.0, VOLATILITY).unwrap_or_else(|_| unreachable!()),
            quantity: LogNormal::new(4.0, 1.0).unwrap_or_else(|_| unreachable!()),
            sequence: 0,
        }
    }

    /// The next trade as a typed message.
    pub fn next_trade(&mut self, rng: &mut StdRng, now: SystemTime) -> StockTrade {
        let index = rng.random_range(0..self.symbols.len());
        let symbol = &mut self.symbols[index];
        symbol.price = (symbol.price * self.step.sample(rng).exp()).max(0.01);
        self.sequence += 1;
        let side = if rng.random_bool(0.5) {
            TradeSide::Buy
        } else {
            TradeSide::Sell
        };
        StockTrade {
            trade_id: format!(
                "T{:012x}{:06}",
                rng.random::<u64>() >> 16,
                self.sequence % 1_000_000
            ),
            symbol: symbol.name.to_owned(),
            price: (symbol.price * 100.0).round() / 100.0,
            quantity: self.quantity.sample(rng).round().clamp(1.0, 100_000.0) as u32,
            side: side.into(),
            exchange: EXCHANGES
                .choose(rng)
                .copied()
                .unwrap_or("NASDAQ")
                .to_owned(),
            timestamp: Some(timestamp(now)),
        }
    }
}

impl EventSource for StockTrades {
    fn topic(&self) -> &'static str {
        topics::STOCK_TRADES
    }

    fn next_record(&mut self, rng: &mut StdRng, now: SystemTime) -> Record {
        let trade = self.next_trade(rng, now);
        Record {
            key: trade.symbol.clone(),
            value: trade.encode_to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn prices_walk_and_stay_positive() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut source = StockTrades::new(&[("AAPL", 100.0)]);
        let prices: Vec<f64> = (0..5_000)
            .map(|_| source.next_trade(&mut rng, SystemTime::now()).price)
            .collect();
        assert!(prices.iter().all(|&p| p > 0.0));
        // A walk moves, but by small steps: no jump of more than 1 % between trades.
        assert!(prices.windows(2).any(|w| w[0] != w[1]));
        assert!(prices.windows(2).all(|w| (w[1] / w[0] - 1.0).abs() < 0.01));
    }

    #[test]
    fn records_are_keyed_by_symbol_and_decode() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut source = StockTrades::default();
        for _ in 0..100 {
            let record = source.next_record(&mut rng, SystemTime::now());
            let trade = StockTrade::decode(record.value.as_slice()).expect("valid protobuf");
            assert_eq!(record.key, trade.symbol);
            assert!(trade.quantity >= 1);
            assert!(trade.timestamp.is_some());
            assert_ne!(trade.side, i32::from(TradeSide::Unspecified));
        }
    }
}
