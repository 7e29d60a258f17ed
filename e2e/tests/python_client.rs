//! The Python client example (`examples/python/follow.py`, code generated from `proto/` by
//! grpcio-tools at start) against the whole running system, trade-bars included: it sees every
//! topic, and after dropping its connection on purpose it resumes exactly where it was.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::Context;
use serde_json::Value;
use streamweaver_e2e::*;
use streamweaver_proto::topics;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_follows_every_topic_and_resumes_after_a_reconnection()
-> anyhow::Result<()> {
    init_logs();
    let broker = Broker::start().await?;
    let (gateway, gateway_task) =
        start_gateway(broker.gateway_args("127.0.0.1:0".parse()?)).await?;
    let consumer = start_consumer(consumer_args(&broker, gateway));
    let bars = start_trade_bars(trade_bars_args(&broker, gateway));
    let producers = start_all_producers(&broker, 40.0, 100_000);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python/follow.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--gateway", &gateway.to_string()])
        .args(["--heartbeat", "2", "--max-events", "700", "--timeout", "60"])
        .args(["--reconnect-after", "200", "--quiet", "--summary"])
        .arg("--require-topics")
        .arg(topics::ALL.join(","))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .context("follow.py did not stop by itself")?
        .with_context(|| {
            format!("cannot run {python} (make test installs examples/python/requirements.txt)")
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "follow.py failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| format!("no summary line in:\n{stdout}\n{stderr}"))?;

    assert_eq!(summary["events"], 700, "{summary}");
    for topic in topics::ALL {
        assert!(
            summary["per_topic"][topic].as_u64().unwrap_or(0) > 0,
            "no {topic}: {summary}"
        );
    }
    assert!(summary["reconnects"].as_u64() >= Some(1), "{summary}");
    assert!(
        summary["resumed_from"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "the reconnection named its positions: {summary}"
    );
    assert!(
        summary["events_after_resume"].as_u64() > Some(0),
        "{summary}"
    );
    // Resumed exactly: no event twice, none skipped in any partition, no gap.
    assert_eq!(summary["duplicates_dropped"], 0, "{summary}\n{stderr}");
    assert_eq!(summary["holes"], 0, "{summary}\n{stderr}");
    assert_eq!(summary["gaps"], 0, "{summary}\n{stderr}");

    for producer in producers {
        producer.stop().await?;
    }
    bars.stop().await?;
    consumer.stop().await?;
    gateway_task.stop().await?;
    Ok(())
}
