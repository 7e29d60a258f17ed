//! The README's example: AAPL and NVDA trades and bars from a gateway on localhost, printed as
//! they come, through reconnections. `cargo run -p streamweaver-client --example follow`.

use futures::StreamExt;
use streamweaver_client::{Subscription, Topic, Update, proto::v1::event::Payload};

#[tokio::main]
async fn main() -> Result<(), streamweaver_client::ClientError> {
    let mut updates = Subscription::builder("http://localhost:8080")
        .topics([Topic::StockTrades, Topic::TradeBars])
        .symbols(["AAPL", "NVDA"])
        .subscribe()?;
    while let Some(update) = updates.next().await {
        match update? {
            Update::Event(event) => match event.payload {
                Some(Payload::StockTrade(t)) => {
                    println!("{} {} @ {}", t.symbol, t.quantity, t.price)
                }
                Some(Payload::TradeBar(b)) => println!(
                    "{} bar: {} trades, close {}",
                    b.symbol, b.trade_count, b.close
                ),
                _ => {}
            },
            Update::Gap(gap) => eprintln!("gap: {} events ({})", gap.missed_events, gap.reason),
            Update::Disconnected { error, retry_in } => eprintln!("{error}; again in {retry_in:?}"),
            _ => {}
        }
    }
    Ok(())
}
