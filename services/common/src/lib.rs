//! What StreamWeaver's deployables share: how they stop, log, expose metrics and talk to Kafka.
//!
//! Each binary stays a thin `main` that parses its flags and calls a `run` function of its
//! library with a [`CancellationToken`](tokio_util::sync::CancellationToken); tests call the same
//! `run` functions in-process.

pub mod decode;
pub mod duration;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kafka")]
pub mod producer;

/// Exit code for a configuration error (EX_USAGE), as linkerd and the BSDs use it.
pub const EXIT_USAGE: i32 = 64;
