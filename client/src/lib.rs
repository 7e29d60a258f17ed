//! Follow a StreamWeaver gateway from a Rust service, without writing the reconnect, resume and
//! heartbeat handling each time.
//!
//! A [`Subscription`] is a [`Stream`](futures::Stream) of [`Update`]s: typed events (the
//! generated [`proto`] types), and news a service may act on — gaps, partition resets,
//! disconnections and reconnections. Underneath it keeps one native gRPC `Subscribe` call open;
//! when the call fails, or brings nothing (not even a heartbeat) for a few heartbeat intervals,
//! it waits a jittered exponential [`Backoff`] and subscribes again from the last
//! [`Positions`] it yielded.
//!
//! ```no_run
//! use futures::StreamExt;
//! use streamweaver_client::{Subscription, Topic, Update, proto::v1::event::Payload};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), streamweaver_client::ClientError> {
//!     let mut updates = Subscription::builder("http://localhost:8080")
//!         .topics([Topic::StockTrades])
//!         .symbols(["AAPL", "NVDA"])
//!         .subscribe()?;
//!     while let Some(update) = updates.next().await {
//!         match update? {
//!             Update::Event(event) => {
//!                 if let Some(Payload::StockTrade(trade)) = event.payload {
//!                     println!("{} {} @ {}", trade.symbol, trade.quantity, trade.price);
//!                 }
//!             }
//!             Update::Gap(gap) => eprintln!("gap: {} events ({})", gap.missed_events, gap.reason),
//!             other => eprintln!("{other:?}"),
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Guarantees
//!
//! - **Exactly once per partition, in order, across reconnections** — as long as Kafka still
//!   holds the events. Positions are Kafka's (topic, partition, offset). A new connection asks
//!   the gateway to resume after the last position of each partition; the gateway sends what
//!   came after it (from its memory, or read back from Kafka), and this library also drops any
//!   event at or before a position it already yielded. Positions move with events, with
//!   heartbeats (which also count the events a filter passed over) and with gap notices.
//! - **A gap is never silent.** [`Update::Gap`] says the gateway skipped events: this subscriber
//!   fell behind under the `GAP` slow-client policy (choose
//!   [`Disconnect`](proto::v1::SlowClientPolicy::Disconnect) to be dropped and resume instead,
//!   losing nothing), or Kafka no longer holds what it asked for (retention). Its `missed`
//!   field names the offsets.
//! - **A reset is never silent.** [`Update::Reset`] says a partition's offsets started again (its
//!   topic was recreated): its position is replaced by the one given, and events continue from
//!   the new incarnation.
//! - **A dead connection is noticed.** Nothing for [`heartbeat_interval`] ×
//!   [`missed_heartbeats`] (45 s by default) and the connection is dropped and made again.
//! - **A service restart** resumes where it left off when it saves [`Subscription::positions`]
//!   with its own results and passes them to [`resume_from`] at start.
//!
//! Errors that a retry may cure are reported as [`Update::Disconnected`] and retried for ever
//! (or [`max_attempts`] times); a refused request or credential ends the stream with an `Err`.
//!
//! [`heartbeat_interval`]: SubscriptionBuilder::heartbeat_interval
//! [`missed_heartbeats`]: SubscriptionBuilder::missed_heartbeats
//! [`resume_from`]: SubscriptionBuilder::resume_from
//! [`max_attempts`]: SubscriptionBuilder::max_attempts

mod backoff;
mod error;
mod positions;
mod subscription;

pub use backoff::Backoff;
pub use error::ClientError;
pub use positions::Positions;
/// The StreamWeaver contract: every message and service, generated from `proto/`.
pub use streamweaver_proto as proto;
pub use streamweaver_proto::topics::Topic;
pub use subscription::{StartAt, Subscription, SubscriptionBuilder, Update};
/// TLS settings for [`SubscriptionBuilder::tls`], from tonic.
pub use tonic::transport::{Certificate, ClientTlsConfig};
