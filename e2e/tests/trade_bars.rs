//! trade-bars on the whole system — a real broker, the stock producer, the consumer, the gateway
//! — with the gateway restarted mid-stream and then the service itself: the bars Kafka ends up
//! with are checked against the trades Kafka holds, every trade in exactly one bar.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use streamweaver_e2e::*;
use streamweaver_proto::{topics, v1::event::Payload};

const WITHIN: Duration = Duration::from_secs(90);

/// One symbol's second, as the trades say or as a bar says.
#[derive(Debug, Clone, PartialEq)]
struct Second {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: u64,
    trades: u32,
}

/// Per (symbol, second), what the trades Kafka holds add up to (in offset order).
async fn seconds_of_trades(broker: &Broker) -> anyhow::Result<BTreeMap<(String, i64), Second>> {
    let mut seconds: BTreeMap<(String, i64), Second> = BTreeMap::new();
    for event in read_topic(broker, topics::STOCK_TRADES).await? {
        let Some(Payload::StockTrade(trade)) = event.payload else {
            anyhow::bail!("not a trade: {event:?}");
        };
        let second = trade.timestamp.expect("the producer stamps trades").seconds;
        let (price, quantity) = (trade.price, u64::from(trade.quantity));
        seconds
            .entry((trade.symbol, second))
            .and_modify(|s| {
                s.high = s.high.max(price);
                s.low = s.low.min(price);
                s.close = price;
                s.volume += quantity;
                s.trades += 1;
            })
            .or_insert(Second {
                open: price,
                high: price,
                low: price,
                close: price,
                volume: quantity,
                trades: 1,
            });
    }
    Ok(seconds)
}

/// Per (symbol, second), the bar Kafka holds; fails if one has two.
async fn bars(broker: &Broker) -> anyhow::Result<BTreeMap<(String, i64), Second>> {
    let mut bars = BTreeMap::new();
    for event in read_topic(broker, topics::TRADE_BARS).await? {
        let Some(Payload::TradeBar(bar)) = event.payload else {
            anyhow::bail!("not a bar: {event:?}");
        };
        let key = (
            bar.symbol.clone(),
            bar.start.expect("decoded bars start").seconds,
        );
        let second = Second {
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            volume: bar.volume,
            trades: bar.trade_count,
        };
        if let Some(earlier) = bars.insert(key.clone(), second.clone()) {
            anyhow::bail!("two bars for {key:?}: {earlier:?} and {second:?}");
        }
    }
    Ok(bars)
}

async fn wait_for_subscriber(gateway: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + WITHIN;
    while gateway_subscribers(gateway).await? < 1 {
        anyhow::ensure!(Instant::now() < deadline, "trade-bars never subscribed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trade_is_in_exactly_one_bar_across_gateway_and_service_restarts()
-> anyhow::Result<()> {
    init_logs();
    const TRADES: u64 = 1_000;
    let broker = Broker::start().await?;
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let (_, first_gateway) = start_gateway(broker.gateway_args(address)).await?;
    let consumer = start_consumer(consumer_args(&broker, address));
    let bar_args = trade_bars_args(&broker, address);
    let first_service = start_trade_bars(bar_args.clone());
    wait_for_subscriber(address).await?;
    // About nine seconds of trades, so that each restart lands mid-stream.
    let producer = start_producer(
        producer_args(&broker, 110.0, TRADES),
        stock_producer::StockTrades::default(),
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    first_gateway.stop().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, second_gateway) = start_gateway(broker.gateway_args(address)).await?;

    tokio::time::sleep(Duration::from_secs(3)).await;
    first_service.stop().await?;
    let second_service = start_trade_bars(bar_args);
    producer.finished().await?;

    let expected = seconds_of_trades(&broker).await?;
    let total: u32 = expected.values().map(|s| s.trades).sum();
    assert_eq!(u64::from(total), TRADES);
    // The last bars close a grace after the last trade; wait until the counts add up.
    let deadline = Instant::now() + WITHIN;
    let mut made = bars(&broker).await?;
    while made.values().map(|s| s.trades).sum::<u32>() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        made = bars(&broker).await?;
    }
    // A moment more, so a bar counted twice would show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let made = bars(&broker).await?;

    let missing: Vec<_> = expected.keys().filter(|k| !made.contains_key(*k)).collect();
    let extra: Vec<_> = made.keys().filter(|k| !expected.contains_key(*k)).collect();
    let wrong: Vec<_> = expected
        .iter()
        .filter_map(|(key, want)| {
            made.get(key)
                .filter(|got| *got != want)
                .map(|got| (key, want, got))
        })
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && wrong.is_empty(),
        "{} seconds of trades ({:?} to {:?}), {} bars\nwithout a bar: {missing:?}\nbars without trades: \
         {extra:?}\nbars that differ from their trades (want, got): {wrong:#?}",
        expected.len(),
        expected.keys().map(|k| k.1).min(),
        expected.keys().map(|k| k.1).max(),
        made.len()
    );

    second_service.stop().await?;
    consumer.stop().await?;
    second_gateway.stop().await?;
    Ok(())
}
