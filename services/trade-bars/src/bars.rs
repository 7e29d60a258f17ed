//! The bars themselves: trades in, one-second OHLC bars out, each trade counted exactly once.
//!
//! No I/O here, so every rule is unit-tested. The service feeds it the trades the subscription
//! delivers, and the positions heartbeats and gap notices report; it produces the bars this
//! returns and reports back which ones Kafka acknowledged.
//!
//! **When a bar closes.** A bar holds the trades of one symbol in one second (by the trades' own
//! timestamps). It closes when, of the same symbol, a trade of a later second arrives; or when
//! the symbol's partition has moved on by `grace` past the bar's end (a trade of any symbol
//! there is that much later: partitions are in time order, so nothing of that second can follow
//! but a straggler); or, for a partition that has gone quiet (nothing came from it for `grace`:
//! a partition whose trades still come, however late, closes its bars by their timestamps),
//! when the wall clock is `grace` past the bar's end while the partition is caught up. A trade of a second whose bar has closed
//! is late: counted, and not in any bar.
//!
//! **Caught up.** After the subscription (re)connects, the gateway first serves what the
//! service missed, which may take longer than `grace` on a busy machine: until then the clock
//! closes nothing of that partition. A partition is caught up again once a trade stamped at or
//! after the connection comes on it (delivery is in offset order, so everything before it has
//! come), or a heartbeat says the subscription has caught up.
//!
//! **The checkpoint.** Per `stock_trades` partition, the offset up to which every trade is in a
//! bar Kafka acknowledged (or was dropped as a duplicate or late): one less than the first trade
//! of the earliest bar still open or still in flight, or else the last offset consumed. Every bar
//! carries the checkpoint of the moment it was made. After a restart the service takes the
//! highest checkpoint found in the bars Kafka holds, subscribes from there, and skips each trade
//! already in its symbol's last bar — so what an unacknowledged bar held is counted again, and
//! nothing an acknowledged bar holds is counted twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use streamweaver_proto::{
    topics::Topic,
    v1::{Position, StockTrade, TradeBar},
};

const MILLIS_PER_SECOND: i64 = 1_000;

/// What happened to one trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counted {
    /// It is in its bar now.
    InBar,
    /// Its position was consumed before (a repeat after a reconnection).
    Duplicate,
    /// A bar Kafka holds already counts it (replayed after the service restarted).
    AlreadyInBar,
    /// Its second's bar had closed when it came.
    Late,
    /// It has no usable timestamp, price or quantity.
    Invalid,
}

impl Counted {
    /// A fixed label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::InBar => "in_bar",
            Self::Duplicate => "duplicate",
            Self::AlreadyInBar => "already_in_bar",
            Self::Late => "late",
            Self::Invalid => "invalid",
        }
    }
}

/// A bar that closed, to be produced; [`Bars::acknowledged`] takes its `id` back once Kafka
/// has it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedBar {
    /// Names the bar until Kafka acknowledges it.
    pub id: u64,
    /// The bar, its checkpoint filled in.
    pub bar: TradeBar,
}

/// The last bar of a symbol that Kafka holds: trades up to `last_offset` are in it or before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastBar {
    /// The `stock_trades` partition of the symbol.
    pub partition: i32,
    /// The bar's second (seconds since the epoch).
    pub second: i64,
    /// The offset of the bar's last trade.
    pub last_offset: i64,
}

/// What a restart begins from, as read back from the bars in Kafka.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Restored {
    /// The highest checkpoint per `stock_trades` partition.
    pub checkpoint: BTreeMap<i32, i64>,
    /// Each symbol's last bar.
    pub last_bars: HashMap<String, LastBar>,
}

impl Restored {
    /// Takes in one bar read back from Kafka (in any order).
    pub fn add(&mut self, bar: &TradeBar) {
        for position in &bar.checkpoint {
            let cut = self
                .checkpoint
                .entry(position.partition)
                .or_insert(position.offset);
            *cut = (*cut).max(position.offset);
        }
        let (Some(start), Some(last)) = (&bar.start, &bar.last_trade) else {
            return;
        };
        let candidate = LastBar {
            partition: last.partition,
            second: start.seconds,
            last_offset: last.offset,
        };
        self.last_bars
            .entry(bar.symbol.clone())
            .and_modify(|known| {
                if (candidate.second, candidate.last_offset) > (known.second, known.last_offset) {
                    *known = candidate;
                }
            })
            .or_insert(candidate);
    }

    /// The positions to resume the subscription from.
    pub fn resume_from(&self) -> Vec<Position> {
        self.checkpoint
            .iter()
            .map(|(partition, offset)| position(*partition, *offset))
            .collect()
    }
}

fn position(partition: i32, offset: i64) -> Position {
    Position {
        topic: Topic::StockTrades.name().into(),
        partition,
        offset,
    }
}

struct OpenBar {
    bar: TradeBar,
    partition: i32,
    second: i64,
    first_offset: i64,
}

impl OpenBar {
    fn end_millis(&self) -> i64 {
        (self.second + 1) * MILLIS_PER_SECOND
    }
}

/// The bars being built, and what is needed to count every trade once.
pub struct Bars {
    grace_millis: i64,
    open: HashMap<String, OpenBar>,
    last_bars: HashMap<String, LastBar>,
    /// Per partition, the last offset consumed or passed over (-1 before any).
    consumed: BTreeMap<i32, i64>,
    /// Bars handed out but not yet acknowledged: id → (partition, first offset).
    in_flight: BTreeMap<u64, (i32, i64)>,
    next_id: u64,
    /// When the subscription last (re)connected (wall clock, ms); `None` while disconnected.
    connected_at: Option<i64>,
    /// Partitions caught up since then: only their bars close by the clock.
    caught_up: BTreeSet<i32>,
    /// Per partition, when (wall clock, ms) a trade of it last came.
    last_received: HashMap<i32, i64>,
}

impl Bars {
    /// Bars closing `grace` after their second's end, beginning from `restored`.
    pub fn new(grace: std::time::Duration, restored: Restored) -> Self {
        Self {
            grace_millis: i64::try_from(grace.as_millis()).unwrap_or(i64::MAX),
            open: HashMap::new(),
            last_bars: restored.last_bars,
            consumed: restored.checkpoint,
            in_flight: BTreeMap::new(),
            next_id: 0,
            connected_at: None,
            caught_up: BTreeSet::new(),
            last_received: HashMap::new(),
        }
    }

    /// A trade of `partition` came at `now_millis` (wall clock): the partition is not quiet.
    pub fn received(&mut self, partition: i32, now_millis: i64) {
        self.last_received.insert(partition, now_millis);
    }

    /// The subscription (re)connected at `now_millis`: no partition is caught up until it shows.
    pub fn connected(&mut self, now_millis: i64) {
        self.connected_at = Some(now_millis);
        self.caught_up.clear();
    }

    /// The subscription is down: the clock closes nothing until it is back and caught up.
    pub fn disconnected(&mut self) {
        self.connected_at = None;
        self.caught_up.clear();
    }

    /// A heartbeat said the subscription caught up: `partitions` have nothing more to come from
    /// the past.
    pub fn heartbeat(&mut self, partitions: impl IntoIterator<Item = i32>) {
        if self.connected_at.is_some() {
            self.caught_up.extend(partitions);
        }
    }

    /// Takes in one trade at `partition`/`offset`; returns what became of it and the bars it
    /// closed.
    pub fn trade(
        &mut self,
        partition: i32,
        offset: i64,
        trade: &StockTrade,
    ) -> (Counted, Vec<ClosedBar>) {
        let consumed = self.consumed.entry(partition).or_insert(-1);
        if offset <= *consumed {
            return (Counted::Duplicate, Vec::new());
        }
        *consumed = offset;
        let Some(at) = trade.timestamp.as_ref().filter(|t| {
            t.seconds >= 0
                && (0..1_000_000_000).contains(&t.nanos)
                && trade.price.is_finite()
                && trade.price > 0.0
                && !trade.symbol.is_empty()
        }) else {
            return (Counted::Invalid, Vec::new());
        };
        let (second, millis) = (
            at.seconds,
            at.seconds * MILLIS_PER_SECOND + i64::from(at.nanos) / 1_000_000,
        );
        if self.connected_at.is_some_and(|since| millis >= since) {
            self.caught_up.insert(partition);
        }

        let mut closed = Vec::new();
        let counted = match self.last_bars.get(&trade.symbol) {
            Some(last) if last.partition == partition && offset <= last.last_offset => {
                Counted::AlreadyInBar
            }
            Some(last) if second <= last.second => Counted::Late,
            _ => match self.open.get_mut(&trade.symbol) {
                Some(open) if open.second == second => {
                    add(&mut open.bar, partition, offset, trade);
                    Counted::InBar
                }
                Some(open) if open.second > second => Counted::Late,
                _ => {
                    // A later second of the same symbol: its bar is complete.
                    if let Some(open) = self.open.remove(&trade.symbol) {
                        closed.push(self.close(open));
                    }
                    self.open.insert(
                        trade.symbol.clone(),
                        OpenBar {
                            bar: first_trade(second, partition, offset, trade),
                            partition,
                            second,
                            first_offset: offset,
                        },
                    );
                    Counted::InBar
                }
            },
        };
        // The partition moved on: bars it can no longer add to are complete.
        let horizon = millis - self.grace_millis;
        closed.extend(
            self.close_where(|open| open.partition == partition && open.end_millis() <= horizon),
        );
        (counted, closed)
    }

    /// Every offset of `partition` up to `offset` was consumed (a heartbeat's positions, or the
    /// last position before a gap): none of them can come any more.
    pub fn passed(&mut self, partition: i32, offset: i64) {
        let consumed = self.consumed.entry(partition).or_insert(-1);
        *consumed = (*consumed).max(offset);
    }

    /// Closes the bars whose second ended `grace` before `now_millis` (wall clock): for
    /// partitions that went quiet (nothing came for `grace`). Only on partitions caught up
    /// since the subscription last connected, or trades the gateway has yet to serve would be
    /// late.
    pub fn close_idle(&mut self, now_millis: i64) -> Vec<ClosedBar> {
        let horizon = now_millis - self.grace_millis;
        let caught_up = std::mem::take(&mut self.caught_up);
        let last_received = std::mem::take(&mut self.last_received);
        let closed = self.close_where(|open| {
            caught_up.contains(&open.partition)
                && open.end_millis() <= horizon
                && last_received
                    .get(&open.partition)
                    .is_none_or(|at| *at <= horizon)
        });
        self.caught_up = caught_up;
        self.last_received = last_received;
        closed
    }

    /// `partition`'s offsets started again at `offset` (its topic was recreated): the bars of
    /// the old offsets close now, and their positions mean nothing any more.
    pub fn reset(&mut self, partition: i32, offset: i64) -> Vec<ClosedBar> {
        let closed = self.close_where(|open| open.partition == partition);
        self.last_bars.retain(|_, last| last.partition != partition);
        self.consumed.insert(partition, offset);
        closed
    }

    /// Kafka acknowledged bar `id`: the checkpoint may pass its trades.
    pub fn acknowledged(&mut self, id: u64) {
        self.in_flight.remove(&id);
    }

    /// Bars open now.
    pub fn open_bars(&self) -> usize {
        self.open.len()
    }

    /// Per partition, the offset up to which every trade is accounted for in Kafka.
    pub fn checkpoint(&self) -> Vec<Position> {
        let mut first_pending: BTreeMap<i32, i64> = BTreeMap::new();
        let pending = self
            .open
            .values()
            .map(|open| (open.partition, open.first_offset))
            .chain(self.in_flight.values().copied());
        for (partition, first) in pending {
            let earliest = first_pending.entry(partition).or_insert(first);
            *earliest = (*earliest).min(first);
        }
        self.consumed
            .iter()
            .filter(|(_, consumed)| **consumed >= 0)
            .map(|(partition, consumed)| {
                let cut = first_pending
                    .get(partition)
                    .map_or(*consumed, |first| (first - 1).min(*consumed));
                position(*partition, cut)
            })
            .collect()
    }

    fn close_where(&mut self, done: impl Fn(&OpenBar) -> bool) -> Vec<ClosedBar> {
        let mut symbols: Vec<String> = self
            .open
            .iter()
            .filter(|(_, open)| done(open))
            .map(|(symbol, _)| symbol.clone())
            .collect();
        // A fixed order, so bars of one call come out the same way every time.
        symbols.sort_unstable();
        let mut closed = Vec::with_capacity(symbols.len());
        for symbol in symbols {
            if let Some(open) = self.open.remove(&symbol) {
                closed.push(self.close(open));
            }
        }
        closed
    }

    fn close(&mut self, open: OpenBar) -> ClosedBar {
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight
            .insert(id, (open.partition, open.first_offset));
        let mut bar = open.bar;
        if let Some(last) = &bar.last_trade {
            self.last_bars.insert(
                bar.symbol.clone(),
                LastBar {
                    partition: open.partition,
                    second: open.second,
                    last_offset: last.offset,
                },
            );
        }
        bar.checkpoint = self.checkpoint();
        ClosedBar { id, bar }
    }
}

fn first_trade(second: i64, partition: i32, offset: i64, trade: &StockTrade) -> TradeBar {
    TradeBar {
        symbol: trade.symbol.clone(),
        start: Some(pbjson_types::Timestamp {
            seconds: second,
            nanos: 0,
        }),
        open: trade.price,
        high: trade.price,
        low: trade.price,
        close: trade.price,
        volume: u64::from(trade.quantity),
        trade_count: 1,
        first_trade: Some(position(partition, offset)),
        last_trade: Some(position(partition, offset)),
        checkpoint: Vec::new(),
    }
}

fn add(bar: &mut TradeBar, partition: i32, offset: i64, trade: &StockTrade) {
    bar.high = bar.high.max(trade.price);
    bar.low = bar.low.min(trade.price);
    bar.close = trade.price;
    bar.volume += u64::from(trade.quantity);
    bar.trade_count += 1;
    bar.last_trade = Some(position(partition, offset));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T0: i64 = 1_700_000_000;

    fn trade(symbol: &str, millis: i64, price: f64, quantity: u32) -> StockTrade {
        StockTrade {
            symbol: symbol.into(),
            price,
            quantity,
            timestamp: Some(pbjson_types::Timestamp {
                seconds: T0 + millis.div_euclid(1000),
                nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
            }),
            ..Default::default()
        }
    }

    fn bars() -> Bars {
        Bars::new(Duration::from_secs(2), Restored::default())
    }

    fn cut(bars: &Bars, partition: i32) -> Option<i64> {
        bars.checkpoint()
            .into_iter()
            .find(|p| p.partition == partition)
            .map(|p| p.offset)
    }

    #[test]
    fn a_later_second_of_the_same_symbol_closes_its_bar_with_ohlc_volume_and_count() {
        let mut bars = bars();
        let mut offset = 0;
        let mut feed = |bars: &mut Bars, t: StockTrade| {
            offset += 1;
            bars.trade(0, offset, &t)
        };
        for (millis, price, quantity) in [
            (100, 10.0, 5),
            (300, 12.5, 1),
            (700, 9.0, 2),
            (999, 11.0, 3),
        ] {
            let (counted, closed) = feed(&mut bars, trade("AAPL", millis, price, quantity));
            assert_eq!((counted, closed.len()), (Counted::InBar, 0));
        }
        // Another symbol's later second does not close AAPL's bar (within the grace).
        assert!(feed(&mut bars, trade("MSFT", 1_500, 300.0, 1)).1.is_empty());
        let (_, closed) = feed(&mut bars, trade("AAPL", 1_001, 11.5, 4));
        assert_eq!(closed.len(), 1);
        let bar = &closed[0].bar;
        assert_eq!(bar.start.map(|s| s.seconds), Some(T0));
        assert_eq!(
            (bar.open, bar.high, bar.low, bar.close),
            (10.0, 12.5, 9.0, 11.0)
        );
        assert_eq!((bar.volume, bar.trade_count), (11, 4));
        assert_eq!(bar.first_trade.as_ref().map(|p| p.offset), Some(1));
        assert_eq!(bar.last_trade.as_ref().map(|p| p.offset), Some(4));
        // The bar's own trades (from offset 1) are not in Kafka yet: the checkpoint it carries
        // stays before them, and moves past them once Kafka acknowledges it.
        assert_eq!(bar.checkpoint, [position(0, 0)]);
        bars.acknowledged(closed[0].id);
        assert_eq!(cut(&bars, 0), Some(4), "MSFT's bar is open from offset 5");
    }

    #[test]
    fn the_checkpoint_waits_for_open_and_unacknowledged_bars() {
        let mut bars = bars();
        bars.trade(0, 10, &trade("A", 0, 1.0, 1));
        bars.trade(0, 11, &trade("B", 10, 1.0, 1));
        bars.trade(0, 12, &trade("A", 20, 1.0, 1));
        assert_eq!(cut(&bars, 0), Some(9), "A's bar is open from 10");
        let (_, closed) = bars.trade(0, 13, &trade("A", 1_000, 1.0, 1));
        assert_eq!(closed[0].bar.checkpoint, [position(0, 9)]);
        bars.acknowledged(closed[0].id);
        assert_eq!(
            cut(&bars, 0),
            Some(10),
            "now B's bar, from 11, is the earliest"
        );
        let (_, closed) = bars.trade(0, 14, &trade("B", 1_000, 1.0, 1));
        assert_eq!(cut(&bars, 0), Some(10), "B's bar is in flight");
        bars.acknowledged(closed[0].id);
        assert_eq!(
            cut(&bars, 0),
            Some(12),
            "A's and B's second bars are open from 13"
        );
        bars.passed(1, 77);
        assert_eq!(
            cut(&bars, 1),
            Some(77),
            "a quiet partition follows the heartbeats"
        );
    }

    #[test]
    fn a_partition_that_moved_on_by_the_grace_closes_its_quiet_symbols() {
        let mut bars = bars();
        bars.trade(0, 0, &trade("RARE", 0, 5.0, 1));
        bars.trade(1, 0, &trade("OTHER", 9_000, 5.0, 1));
        assert_eq!(bars.open_bars(), 2, "another partition's time says nothing");
        assert!(bars.trade(0, 1, &trade("BUSY", 2_999, 5.0, 1)).1.is_empty());
        let (_, closed) = bars.trade(0, 2, &trade("BUSY", 3_000, 5.0, 1));
        let symbols: Vec<&str> = closed.iter().map(|c| c.bar.symbol.as_str()).collect();
        assert_eq!(
            symbols,
            ["BUSY", "RARE"],
            "BUSY by its own next second, RARE by the grace"
        );
        // A straggler of that second is late, counted apart.
        assert_eq!(
            bars.trade(0, 3, &trade("RARE", 900, 5.0, 1)).0,
            Counted::Late
        );
    }

    #[test]
    fn quiet_bars_close_by_the_wall_clock() {
        let mut bars = bars();
        bars.connected(T0 * 1_000);
        bars.trade(0, 0, &trade("A", 500, 5.0, 1));
        bars.trade(0, 1, &trade("B", 2_500, 5.0, 1));
        // B came late, at +2.6 s: the partition is not quiet until +4.6 s.
        bars.received(0, T0 * 1_000 + 2_600);
        assert!(
            bars.close_idle((T0 + 3) * 1_000).is_empty(),
            "trades still come: their timestamps close the bars"
        );
        let closed = bars.close_idle(T0 * 1_000 + 4_600);
        assert_eq!(
            closed.len(),
            1,
            "A ended at +1 s, and the partition went quiet"
        );
        assert_eq!(closed[0].bar.symbol, "A");
        assert!(
            bars.close_idle(T0 * 1_000 + 4_999).is_empty(),
            "B ends at +3 s"
        );
        assert_eq!(bars.close_idle((T0 + 5) * 1_000).len(), 1);
        assert_eq!(bars.open_bars(), 0);
    }

    #[test]
    fn after_a_reconnection_the_clock_waits_for_the_partition_to_catch_up() {
        let mut bars = bars();
        bars.connected(T0 * 1_000);
        bars.trade(0, 0, &trade("A", 100, 5.0, 1));
        bars.trade(1, 0, &trade("B", 100, 5.0, 1));
        bars.disconnected();
        let later = (T0 + 10) * 1_000;
        assert!(bars.close_idle(later).is_empty(), "down: nothing closes");
        // Back at +5 s: what the gateway serves first was traded before that.
        bars.connected((T0 + 5) * 1_000);
        assert!(bars.close_idle(later).is_empty(), "nothing caught up yet");
        assert_eq!(bars.trade(0, 1, &trade("A", 900, 6.0, 1)).0, Counted::InBar);
        assert!(
            bars.close_idle(later).is_empty(),
            "a trade from before the reconnection: still catching up"
        );
        // A trade stamped after the reconnection: partition 0 has everything before it.
        let (_, closed) = bars.trade(0, 2, &trade("C", 5_100, 5.0, 1));
        assert_eq!(closed.len(), 1, "A's bar closes as partition 0 moved on");
        let closed = bars.close_idle(later);
        assert_eq!(
            closed.len(),
            1,
            "C's bar, by the clock; B's partition waits"
        );
        assert_eq!(closed[0].bar.symbol, "C");
        bars.heartbeat([1]);
        let closed = bars.close_idle(later);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].bar.symbol, "B");
    }

    #[test]
    fn repeats_and_trades_already_in_a_kafka_bar_are_not_counted_again() {
        let mut bars = bars();
        assert_eq!(bars.trade(0, 5, &trade("A", 0, 1.0, 1)).0, Counted::InBar);
        assert_eq!(
            bars.trade(0, 5, &trade("A", 0, 1.0, 1)).0,
            Counted::Duplicate
        );
        assert_eq!(
            bars.trade(0, 4, &trade("A", 0, 1.0, 1)).0,
            Counted::Duplicate
        );

        // A restart: A's bar of second 0 holds offsets up to 12; B's bar (from 11) was lost.
        let mut restored = Restored::default();
        restored.add(&TradeBar {
            symbol: "A".into(),
            start: Some(pbjson_types::Timestamp {
                seconds: T0,
                nanos: 0,
            }),
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 2,
            trade_count: 2,
            first_trade: Some(position(0, 10)),
            last_trade: Some(position(0, 12)),
            checkpoint: vec![position(0, 9)],
        });
        assert_eq!(restored.resume_from(), [position(0, 9)]);
        let mut bars = Bars::new(Duration::from_secs(2), restored);
        assert_eq!(
            bars.trade(0, 9, &trade("B", 0, 1.0, 1)).0,
            Counted::Duplicate
        );
        assert_eq!(
            bars.trade(0, 10, &trade("A", 0, 1.0, 1)).0,
            Counted::AlreadyInBar
        );
        assert_eq!(bars.trade(0, 11, &trade("B", 0, 1.0, 1)).0, Counted::InBar);
        assert_eq!(
            bars.trade(0, 12, &trade("A", 0, 1.0, 1)).0,
            Counted::AlreadyInBar
        );
        assert_eq!(bars.trade(0, 13, &trade("A", 500, 1.0, 1)).0, Counted::Late);
        assert_eq!(
            bars.trade(0, 14, &trade("A", 1_000, 1.0, 1)).0,
            Counted::InBar
        );
    }

    #[test]
    fn restoring_takes_the_highest_checkpoint_and_each_symbols_last_bar() {
        let bar = |symbol: &str, second: i64, last: i64, cut: &[(i32, i64)]| TradeBar {
            symbol: symbol.into(),
            start: Some(pbjson_types::Timestamp {
                seconds: second,
                nanos: 0,
            }),
            last_trade: Some(position(0, last)),
            checkpoint: cut.iter().map(|(p, o)| position(*p, *o)).collect(),
            ..Default::default()
        };
        let mut restored = Restored::default();
        restored.add(&bar("A", 2, 30, &[(0, 20), (1, 5)]));
        restored.add(&bar("A", 1, 12, &[(0, 10), (1, 8)]));
        restored.add(&bar("B", 2, 25, &[(0, 19)]));
        assert_eq!(restored.resume_from(), [position(0, 20), position(1, 8)]);
        assert_eq!(restored.last_bars["A"].last_offset, 30);
        assert_eq!(restored.last_bars["A"].second, 2);
        assert_eq!(restored.last_bars["B"].last_offset, 25);
    }

    #[test]
    fn a_reset_partition_closes_its_bars_and_starts_over() {
        let mut bars = bars();
        bars.trade(0, 500, &trade("A", 0, 1.0, 1));
        bars.trade(1, 7, &trade("B", 0, 1.0, 1));
        let closed = bars.reset(0, -1);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].bar.symbol, "A");
        assert_eq!(
            bars.trade(0, 0, &trade("A", 1_000, 1.0, 1)).0,
            Counted::InBar
        );
    }

    #[test]
    fn trades_without_a_time_or_a_price_are_refused() {
        let mut bars = bars();
        let mut untimed = trade("A", 0, 1.0, 1);
        untimed.timestamp = None;
        assert_eq!(bars.trade(0, 0, &untimed).0, Counted::Invalid);
        assert_eq!(
            bars.trade(0, 1, &trade("A", 0, f64::NAN, 1)).0,
            Counted::Invalid
        );
        assert_eq!(bars.open_bars(), 0);
    }
}
