//! The stream-consumer: one consumer group over the three topics, forwarding every event to the
//! gateway on a client-streaming gRPC `Publish` call (the original Python design's HTTP POST per message, typed and
//! batched), and committing only what the gateway acknowledged.

pub mod config;
pub mod dead_letter;
pub mod forward;
pub mod log_end;
pub mod metrics;
pub mod partitions;
pub mod rebalance;

use std::{sync::Arc, time::Duration};

use rdkafka::{consumer::Consumer, producer::FutureProducer};
use streamweaver_common::{kafka::ensure_topics, metrics::SharedRegistry};
use streamweaver_proto::{topics, v1::ingest_service_client::IngestServiceClient};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

pub use config::ConsumerArgs;
use forward::{BearerToken, Forwarder};
use rebalance::{HandOff, KafkaConsumer};

/// How long a dead letter may take to reach Kafka (librdkafka retries within it); after that it
/// counts as failed and its record is read again. Long enough to ride out a broker restart.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the consumer could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// A flag's value is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Kafka could not be set up.
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Topics could not be made.
    #[error(transparent)]
    Topics(#[from] streamweaver_common::kafka::TopicError),
    /// The forwarding loop failed.
    #[error(transparent)]
    Forward(#[from] forward::ForwardError),
}

/// Consumes and forwards until `shutdown` is cancelled.
pub async fn run(args: ConsumerArgs, shutdown: CancellationToken) -> Result<(), ConsumerError> {
    let token = BearerToken::new(&args.publish_token)
        .filter(|_| !args.publish_token.is_empty())
        .ok_or_else(|| ConsumerError::Config("--publish-token must be printable ASCII".into()))?;
    let endpoint = gateway_endpoint(&args)?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10));
    // Lazy: the gateway may start later or restart; each call reconnects as needed.
    let client = IngestServiceClient::with_interceptor(endpoint.connect_lazy(), token);

    let registry = SharedRegistry::default();
    let metrics =
        metrics::Metrics::register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(addr) = args.metrics_listen {
        let (registry, shutdown) = (registry.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(error) = streamweaver_common::metrics::serve(addr, registry, shutdown).await
            {
                tracing::error!(error = format!("{error:#}"), "metrics endpoint stopped");
            }
        });
    }

    // Producers create the event topics too; whoever starts first wins, nobody waits.
    ensure_topics(&args.kafka, &topics::ALL, 3).await?;
    ensure_topics(&args.kafka, &[args.dead_letter_topic.as_str()], 1).await?;

    let (hand_off, received) = HandOff::new();
    let mut config = args.kafka.client_config();
    if let Some(instance) = &args.group_instance_id {
        config.set("group.instance.id", instance);
    }
    let consumer: KafkaConsumer = config
        .set("group.id", &args.group_id)
        .set(
            "session.timeout.ms",
            args.session_timeout.as_millis().to_string(),
        )
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        // Offsets are stored by hand, only once the gateway has acknowledged them.
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", &args.auto_offset_reset)
        .set("fetch.wait.max.ms", args.fetch_wait_max_ms.to_string())
        .set("enable.partition.eof", "false")
        .set(
            "statistics.interval.ms",
            log_end::CHECK_INTERVAL_MS.to_string(),
        )
        .create_with_context(hand_off)?;
    consumer.subscribe(&topics::ALL)?;
    let dead_letter_producer: FutureProducer = args
        .kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            DEAD_LETTER_TIMEOUT.as_millis().to_string(),
        )
        .create()?;
    let dead_letters = dead_letter::DeadLetters::new(
        dead_letter_producer,
        args.dead_letter_topic.clone(),
        metrics.clone(),
    );

    tracing::info!(
        gateway = %args.gateway_url,
        group = %args.group_id,
        instance = args.group_instance_id.as_deref().unwrap_or("(dynamic)"),
        topics = ?topics::ALL,
        "forwarding Kafka to the gateway"
    );
    Forwarder::new(
        Arc::new(consumer),
        received,
        client,
        dead_letters,
        metrics,
        args,
    )
    .run(shutdown)
    .await?;
    Ok(())
}

/// The gateway's endpoint: plaintext for `http://`; for `https://`, TLS trusting `--gateway-ca`
/// (else the system's roots) and presenting `--client-cert` when given (mutual TLS).
fn gateway_endpoint(args: &ConsumerArgs) -> Result<Endpoint, ConsumerError> {
    let endpoint = Endpoint::from_shared(args.gateway_url.clone())
        .map_err(|e| ConsumerError::Config(format!("--gateway-url {:?}: {e}", args.gateway_url)))?;
    let tls_files = args.gateway_ca.is_some() || args.client_cert.is_some();
    if !args.gateway_url.starts_with("https://") {
        if tls_files {
            return Err(ConsumerError::Config(
                "--gateway-ca and --client-cert need an https:// --gateway-url".into(),
            ));
        }
        return Ok(endpoint);
    }
    let read = |flag: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| ConsumerError::Config(format!("{flag} {}: {e}", path.display())))
    };
    let mut tls = ClientTlsConfig::new();
    tls = match &args.gateway_ca {
        Some(path) => tls.ca_certificate(Certificate::from_pem(read("--gateway-ca", path)?)),
        None => tls.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        tls = tls.identity(Identity::from_pem(
            read("--client-cert", cert)?,
            read("--client-key", key)?,
        ));
    }
    endpoint
        .tls_config(tls)
        .map_err(|e| ConsumerError::Config(format!("TLS to the gateway: {e}")))
}
