//! The consumer's flags, each with an environment fallback.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;
use streamweaver_common::{duration::parse_duration, kafka::KafkaArgs};

/// Everything `stream-consumer` can be told.
#[derive(Debug, Clone, Args)]
pub struct ConsumerArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub kafka: KafkaArgs,
    /// Consumer group; consumers in one group share the partitions.
    #[arg(long, env = "CONSUMER_GROUP_ID", default_value = "stream-consumer")]
    pub group_id: String,
    /// This consumer's fixed identity in its group (static membership, `group.instance.id`):
    /// started again after a crash, it takes its old place and partitions at once instead of
    /// waiting for the group to give up on its old self. Unique per consumer process (a
    /// replica's name); unset means dynamic membership.
    #[arg(long, env = "CONSUMER_GROUP_INSTANCE_ID", value_parser = parse_instance_id)]
    pub group_instance_id: Option<String>,
    /// How long the group waits for a silent member before giving its partitions to the others
    /// (`session.timeout.ms`; the broker takes the value of the member that formed the group).
    #[arg(long, env = "CONSUMER_SESSION_TIMEOUT", default_value = "45s",
          value_parser = parse_session_timeout)]
    pub session_timeout: Duration,
    /// Where to start when the group has no committed offset: earliest or latest.
    #[arg(long, env = "CONSUMER_AUTO_OFFSET_RESET", default_value = "earliest",
          value_parser = ["earliest", "latest"])]
    pub auto_offset_reset: String,
    /// How long the broker may hold a fetch waiting for data (fetch.wait.max.ms). Low values cut
    /// latency on brokers that answer only when this runs out (the embedded tansu).
    #[arg(long, env = "CONSUMER_FETCH_WAIT_MAX_MS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(0..=300_000))]
    pub fetch_wait_max_ms: u32,
    /// The gateway's gRPC address; `https://` for a gateway that speaks TLS.
    #[arg(long, env = "GATEWAY_URL", default_value = "http://127.0.0.1:8080")]
    pub gateway_url: String,
    /// PEM CA the gateway's TLS certificate must chain to (default: the system's trust roots).
    #[arg(long, env = "GATEWAY_CA")]
    pub gateway_ca: Option<PathBuf>,
    /// PEM client certificate for a gateway that requires mutual TLS for Publish.
    #[arg(long, env = "CONSUMER_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "CONSUMER_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Bearer token the gateway requires for Publish.
    #[arg(long, env = "STREAMWEAVER_PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: String,
    /// Most events in one PublishRequest message.
    #[arg(long, env = "CONSUMER_BATCH_MAX", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_max: u32,
    /// How long one Publish call stays open before it is closed and acknowledged; offsets are
    /// committed at this pace (events are forwarded at once regardless).
    #[arg(long, env = "CONSUMER_ACK_INTERVAL", default_value = "250ms", value_parser = parse_duration)]
    pub ack_interval: Duration,
    /// Largest record value forwarded; larger ones go to the dead-letter topic.
    #[arg(long, env = "CONSUMER_MAX_VALUE_BYTES", default_value_t = 1 << 20)]
    pub max_value_bytes: usize,
    /// Topic for records that are not valid events.
    #[arg(
        long,
        env = "CONSUMER_DEAD_LETTER_TOPIC",
        default_value = "streamweaver_dead_letters"
    )]
    pub dead_letter_topic: String,
    /// Longest wait between reconnection attempts to the gateway.
    #[arg(long, env = "CONSUMER_MAX_BACKOFF", default_value = "5s", value_parser = parse_duration)]
    pub max_backoff: Duration,
    /// Serve Prometheus /metrics and /healthz on this address (default: off).
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// A `group.instance.id`: Kafka's rules for names (at most 249 of `[a-zA-Z0-9._-]`).
fn parse_instance_id(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 249
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(value.to_owned())
    } else {
        Err("1 to 249 characters of a-z, A-Z, 0-9, '.', '_' or '-'".into())
    }
}

/// A session timeout Kafka accepts by default (6 s to 1 h): well above librdkafka's 3 s
/// heartbeat interval.
fn parse_session_timeout(value: &str) -> Result<Duration, String> {
    let timeout = parse_duration(value)?;
    if (Duration::from_secs(6)..=Duration::from_secs(3600)).contains(&timeout) {
        Ok(timeout)
    } else {
        Err("between 6s and 1h".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_and_session_timeouts_are_checked() {
        assert_eq!(
            parse_instance_id("stream-consumer-0").as_deref(),
            Ok("stream-consumer-0")
        );
        assert!(parse_instance_id("").is_err());
        assert!(parse_instance_id("has space").is_err());
        assert!(parse_instance_id(&"x".repeat(250)).is_err());
        assert_eq!(parse_session_timeout("10s"), Ok(Duration::from_secs(10)));
        assert!(parse_session_timeout("1s").is_err());
        assert!(parse_session_timeout("2h").is_err());
    }
}
