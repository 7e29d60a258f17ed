//! The gateway's endpoints, each with a real client over loopback: native gRPC ingest and
//! subscribe, grpc-web (tonic-web's client layer over HTTP/1.1), WebSocket, CORS and metrics.
//! No Kafka here: events go in through `IngestService.Publish` as the consumer sends them.

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use streamweaver_proto::v1::{
    Event, LogLevel, PublishRequest, SubscribeRequest, SubscribeResponse,
    ingest_service_client::IngestServiceClient, stream_service_client::StreamServiceClient,
    subscribe_response::Kind,
};
use support::*;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
use tonic::Code;

async fn websocket(gateway: &Gateway, origin: &str) -> Result<WebSocket, tungstenite::Error> {
    let mut request = format!("ws://{}/ws", gateway.address).into_client_request()?;
    request
        .headers_mut()
        .insert("origin", origin.parse().expect("header"));
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

#[tokio::test]
async fn websocket_subscribes_changes_subscription_and_survives_bad_frames() {
    let gateway = Gateway::start(&[]).await;
    let mut socket = websocket(&gateway, ORIGIN).await.expect("origin allowed");
    send_json(
        &mut socket,
        r#"{"topics":["stock_trades"],"symbols":["AAPL"]}"#,
    )
    .await;
    let mut offset = wait_subscribed(&gateway, &mut socket, |o| trade(o, "AAPL"), 0).await;

    gateway
        .publish(vec![
            trade(offset, "MSFT"),
            log(0, LogLevel::Error),
            trade(offset + 1, "AAPL"),
        ])
        .await
        .expect("publish");
    offset += 2;
    let event = next_event(&mut socket).await;
    assert_eq!(
        event.offset,
        offset - 1,
        "MSFT and the log line were filtered out"
    );

    // Change the subscription on the open socket.
    send_json(
        &mut socket,
        r#"{"topics":["server_logs"],"logLevels":["LOG_LEVEL_WARN"]}"#,
    )
    .await;
    let mut log_offset =
        wait_subscribed(&gateway, &mut socket, |o| log(o, LogLevel::Warn), 1).await;
    gateway
        .publish(vec![
            trade(offset, "AAPL"),
            log(log_offset, LogLevel::Info),
            log(log_offset + 1, LogLevel::Warn),
        ])
        .await
        .expect("publish");
    log_offset += 2;
    let event = next_event(&mut socket).await;
    assert_eq!(
        (event.topic.as_str(), event.offset),
        ("server_logs", log_offset - 1)
    );

    // Malformed frames get an error naming the problem; the socket stays open.
    for (frame, expected) in [
        ("{not json", "malformed SubscribeRequest"),
        (r#"{"topics":["stonks"]}"#, "unknown topic \"stonks\""),
        (r#"{"logLevels":["LOUD"]}"#, "LOUD"),
    ] {
        send_json(&mut socket, frame).await;
        match next_response(&mut socket).await.kind {
            Some(Kind::Error(error)) => {
                assert_eq!(error.code, "INVALID_ARGUMENT");
                assert!(error.message.contains(expected), "{}", error.message);
            }
            other => panic!("expected an error for {frame}, got {other:?}"),
        }
    }
    socket
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    assert!(matches!(
        next_response(&mut socket).await.kind,
        Some(Kind::Error(_))
    ));
    // The previous subscription still holds.
    gateway
        .publish(vec![log(log_offset, LogLevel::Warn)])
        .await
        .expect("publish");
    assert_eq!(next_event(&mut socket).await.offset, log_offset);

    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(
            r#"gateway_refused_total{endpoint="websocket",reason="malformed_request"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"gateway_refused_total{endpoint="websocket",reason="binary_frame"} 1"#),
        "{metrics}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn websocket_from_a_foreign_origin_is_refused() {
    let gateway = Gateway::start(&[]).await;
    match websocket(&gateway, "http://evil.example").await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_slows_nobody_and_is_told_what_it_missed() {
    let gateway = Gateway::start(&["--subscriber-buffer", "1024"]).await;
    let mut stalled = websocket(&gateway, ORIGIN).await.expect("connect");
    send_json(&mut stalled, r#"{"topics":["stock_trades"]}"#).await;
    let mut reader = websocket(&gateway, ORIGIN).await.expect("connect");
    send_json(&mut reader, r#"{"topics":["stock_trades"]}"#).await;
    let start = wait_subscribed(&gateway, &mut reader, |o| trade(o, "AAPL"), 0).await;
    let start = wait_subscribed(&gateway, &mut stalled, |o| trade(o, "AAPL"), start).await;
    // Drain the probe events the reader got meanwhile.
    while tokio::time::timeout(Duration::from_millis(200), next_response(&mut reader))
        .await
        .is_ok()
    {}

    // 40 000 events (well past what socket buffers hold), 500 at a time; the reader keeps up.
    let symbol = "X".repeat(200);
    let mut offset = start;
    for _ in 0..80 {
        let batch: Vec<Event> = (offset..offset + 500).map(|o| trade(o, &symbol)).collect();
        tokio::time::timeout(WITHIN, gateway.publish(batch))
            .await
            .expect("ingest never waits for a subscriber")
            .expect("publish");
        for expected in offset..offset + 500 {
            assert_eq!(next_event(&mut reader).await.offset, expected);
        }
        offset += 500;
    }

    // The stalled one, reading at last, is told about the gap and then gets the newest events.
    let mut gap = None;
    let mut last = 0;
    while last < offset - 1 {
        match next_response(&mut stalled).await.kind {
            Some(Kind::Gap(notice)) => gap = Some(notice),
            Some(Kind::Event(event)) => last = event.offset,
            other => panic!("{other:?}"),
        }
    }
    let gap = gap.expect("a gap notice");
    assert!(gap.missed_events > 1000, "{gap:?}");
    assert_eq!(gap.reason, "subscriber fell behind");
    assert!(
        gap.last_positions
            .iter()
            .any(|p| p.topic == "stock_trades" && p.offset >= start - 1)
    );
    // Exactly what was skipped: one run of offsets of the one partition.
    let [missed] = gap.missed.as_slice() else {
        panic!("one partition missed: {gap:?}")
    };
    assert_eq!(
        (missed.topic.as_str(), missed.partition),
        ("stock_trades", 0)
    );
    assert_eq!(
        gap.missed_events,
        (missed.last_offset - missed.first_offset + 1) as u64
    );
    assert_eq!(gap.last_positions[0].offset, missed.first_offset - 1);
    assert!(
        gateway
            .metrics()
            .await
            .contains("gateway_gap_notices_total{transport=\"websocket\"}")
    );
    gateway.stop().await;
}

#[tokio::test]
async fn grpc_web_subscribes_over_http1_and_reports_errors_in_trailers() {
    let gateway = Gateway::start(&[]).await;
    // A grpc-web client: tonic-web's client layer over a plain HTTP/1.1 client.
    let http = Client::builder(TokioExecutor::new()).build_http();
    let service = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(http);
    let mut client = StreamServiceClient::with_origin(service, gateway.url().parse().expect("uri"));
    let request = SubscribeRequest {
        topics: vec!["server_logs".into()],
        log_levels: vec![LogLevel::Error.into()],
        ..Default::default()
    };
    let mut stream = client
        .subscribe(request)
        .await
        .expect("subscribe")
        .into_inner();
    // The subscription exists once the response headers arrived.
    gateway
        .publish(vec![
            log(0, LogLevel::Info),
            trade(0, "AAPL"),
            log(1, LogLevel::Error),
        ])
        .await
        .expect("publish");
    let response = next_grpc(&mut stream).await.expect("a message");
    match response.kind {
        Some(Kind::Event(event)) => {
            assert_eq!((event.topic.as_str(), event.offset), ("server_logs", 1))
        }
        other => panic!("{other:?}"),
    }

    // A new request on the same client changes the subscription.
    let mut trades = client
        .subscribe(SubscribeRequest {
            symbols: vec!["MSFT".into()],
            topics: vec!["stock_trades".into()],
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner();
    gateway
        .publish(vec![trade(1, "AAPL"), trade(2, "MSFT")])
        .await
        .expect("publish");
    let response = next_grpc(&mut trades).await.expect("a message");
    assert!(matches!(response.kind, Some(Kind::Event(e)) if e.offset == 2));

    let status = client
        .subscribe(SubscribeRequest {
            topics: vec!["stonks".into()],
            ..Default::default()
        })
        .await
        .expect_err("unknown topic");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("unknown topic \"stonks\""),
        "{}",
        status.message()
    );
    drop((stream, trades));
    gateway.stop().await;
}

#[tokio::test]
async fn browsers_get_the_cors_headers_grpc_web_needs() {
    let gateway = Gateway::start(&[]).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let preflight = http::Request::builder()
        .method("OPTIONS")
        .uri(format!(
            "{}/streamweaver.v1.StreamService/Subscribe",
            gateway.url()
        ))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,x-user-agent",
        )
        .body(Empty::new())
        .expect("request");
    let response = client.request(preflight).await.expect("preflight");
    assert!(response.status().is_success());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii");
    for header in ["content-type", "x-grpc-web", "x-user-agent"] {
        assert!(allowed.contains(header), "{allowed}");
    }

    let actual = http::Request::builder()
        .method("GET")
        .uri(format!("{}/healthz", gateway.url()))
        .header("origin", ORIGIN)
        .body(Empty::new())
        .expect("request");
    let response = client.request(actual).await.expect("GET");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii");
    for header in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(header), "{exposed}");
    }

    let foreign = http::Request::builder()
        .method("OPTIONS")
        .uri(format!(
            "{}/streamweaver.v1.StreamService/Subscribe",
            gateway.url()
        ))
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "POST")
        .body(Empty::new())
        .expect("request");
    let response = client.request(foreign).await.expect("preflight");
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    gateway.stop().await;
}

#[tokio::test]
async fn ingest_refuses_bad_input_clearly_and_keeps_going() {
    let gateway = Gateway::start(&["--max-message-bytes", "65536"]).await;
    let mut subscriber = StreamServiceClient::connect(gateway.url())
        .await
        .expect("connect");
    let mut stream = subscriber
        .subscribe(SubscribeRequest::default())
        .await
        .expect("subscribe")
        .into_inner();

    // No credential.
    let mut client = IngestServiceClient::connect(gateway.url())
        .await
        .expect("connect");
    let status = client
        .publish(futures::stream::iter([PublishRequest {
            events: vec![trade(0, "A")],
        }]))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);

    // Invalid events are counted and skipped; the valid one in the same batch goes through.
    let mut wrong_payload = trade(1, "A");
    wrong_payload.topic = "server_logs".into();
    let response = gateway
        .publish(vec![
            wrong_payload,
            Event {
                topic: "nope".into(),
                ..trade(2, "A")
            },
            trade(3, "A"),
            trade(3, "A"),
        ])
        .await
        .expect("publish");
    assert_eq!(
        (response.accepted, response.rejected, response.duplicates),
        (1, 2, 1)
    );

    // An oversize message ends that call with a clear status; the next call works.
    let huge = Event {
        key: "k".repeat(100_000),
        ..trade(4, "A")
    };
    let status = gateway.publish(vec![huge]).await.expect_err("too large");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    gateway
        .publish(vec![trade(5, "A")])
        .await
        .expect("publish after a bad call");

    let offsets: Vec<i64> = futures::stream::unfold(&mut stream, |s| async move {
        let message = s.message().await.ok().flatten()?;
        Some((message, s))
    })
    .filter_map(|m| async move {
        if let Some(Kind::Event(e)) = m.kind {
            Some(e.offset)
        } else {
            None
        }
    })
    .take(2)
    .collect()
    .await;
    assert_eq!(offsets, vec![3, 5]);

    let metrics = gateway.metrics().await;
    for line in [
        r#"gateway_refused_total{endpoint="ingest",reason="unauthenticated"} 1"#,
        r#"gateway_refused_total{endpoint="ingest",reason="payload_does_not_match_topic"} 1"#,
        r#"gateway_refused_total{endpoint="ingest",reason="unknown_topic"} 1"#,
        r#"gateway_refused_total{endpoint="ingest",reason="bad_message"} 1"#,
        "gateway_events_duplicate_total 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    drop(stream);
    gateway.stop().await;
}

#[tokio::test]
async fn websocket_batch_subprotocol_sends_arrays_of_responses_in_order() {
    let gateway = Gateway::start(&[]).await;
    let mut request = format!("ws://{}/ws", gateway.address)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("origin", ORIGIN.parse().expect("header"));
    request.headers_mut().insert(
        "sec-websocket-protocol",
        gateway::websocket::BATCH_PROTOCOL.parse().expect("header"),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        gateway::websocket::BATCH_PROTOCOL
    );
    send_json(&mut socket, r#"{"topics":["stock_trades"]}"#).await;
    // Until the subscription is live, probe; then 500 events in one go.
    let mut offset = 0;
    'probe: loop {
        gateway
            .publish(vec![trade(offset, "AAPL")])
            .await
            .expect("publish");
        offset += 1;
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_millis(100), socket.next()).await
        {
            let batch: Vec<SubscribeResponse> = serde_json::from_str(&text).expect("a JSON array");
            assert!(!batch.is_empty());
            break 'probe;
        }
    }
    while tokio::time::timeout(Duration::from_millis(200), socket.next())
        .await
        .is_ok()
    {}
    let start = offset;
    gateway
        .publish((start..start + 500).map(|o| trade(o, "AAPL")).collect())
        .await
        .expect("publish");

    let (mut frames, mut offsets) = (0, Vec::new());
    while offsets.len() < 500 {
        let frame = tokio::time::timeout(WITHIN, socket.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("ok");
        let Message::Text(text) = frame else { continue };
        let batch: Vec<SubscribeResponse> = serde_json::from_str(&text).expect("a JSON array");
        frames += 1;
        offsets.extend(batch.into_iter().filter_map(|r| match r.kind {
            Some(Kind::Event(event)) => Some(event.offset),
            _ => None,
        }));
    }
    assert_eq!(
        offsets,
        (start..start + 500).collect::<Vec<_>>(),
        "in order, none lost"
    );
    assert!(frames < 100, "500 events came in {frames} frames");
    gateway.stop().await;
}

#[tokio::test]
async fn shutdown_ends_grpc_streams_with_unavailable_and_websockets_with_going_away() {
    let gateway = Gateway::start(&[]).await;
    let mut client = StreamServiceClient::connect(gateway.url())
        .await
        .expect("connect");
    let mut stream = client
        .subscribe(SubscribeRequest::default())
        .await
        .expect("subscribe")
        .into_inner();
    let mut socket = websocket(&gateway, ORIGIN).await.expect("connect");
    send_json(&mut socket, "{}").await;
    gateway
        .wait_for_metric(r#"gateway_subscribers{transport="websocket"}"#, 1.0)
        .await;

    gateway.begin_stop();
    let status = next_grpc(&mut stream)
        .await
        .expect_err("ends with a status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "gateway is shutting down");
    assert_eq!(close_code(&mut socket).await, 1001);
    gateway.stop().await;
}

#[tokio::test]
async fn oversize_and_overlong_subscribe_requests_are_refused_clearly_and_counted() {
    let gateway = Gateway::start(&[]).await;
    let mut client = StreamServiceClient::connect(gateway.url())
        .await
        .expect("connect");
    let status = client
        .subscribe(SubscribeRequest {
            symbols: vec!["S".repeat(1_000); 100],
            ..Default::default()
        })
        .await
        .expect_err("oversize");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("at most 65536 bytes"),
        "{}",
        status.message()
    );
    let position = streamweaver_proto::v1::Position {
        topic: "stock_trades".into(),
        partition: 0,
        offset: 1,
    };
    let status = client
        .subscribe(SubscribeRequest {
            resume_from: vec![position; 1_025],
            ..Default::default()
        })
        .await
        .expect_err("too many positions");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("at most 1024"),
        "{}",
        status.message()
    );
    // The client and the gateway carry on.
    let mut stream = client
        .subscribe(SubscribeRequest::default())
        .await
        .expect("subscribe")
        .into_inner();
    gateway.publish(vec![trade(0, "A")]).await.expect("publish");
    let response = next_grpc(&mut stream).await.expect("a message");
    assert!(matches!(response.kind, Some(Kind::Event(_))));

    let metrics = gateway.metrics().await;
    for line in [
        r#"gateway_refused_total{endpoint="grpc",reason="request_too_large"} 1"#,
        r#"gateway_refused_total{endpoint="grpc",reason="too_many_positions"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    drop(stream);
    gateway.stop().await;
}

#[tokio::test]
async fn websocket_resubscribes_are_rate_limited() {
    let gateway = Gateway::start(&[]).await;
    let mut socket = websocket(&gateway, ORIGIN).await.expect("connect");
    for _ in 0..12 {
        send_json(&mut socket, r#"{"topics":["stock_trades"]}"#).await;
    }
    let mut limited = 0;
    while limited < 2 {
        match next_response(&mut socket).await.kind {
            Some(Kind::Error(error)) => {
                assert_eq!(error.code, "RESOURCE_EXHAUSTED");
                assert!(error.message.contains("too many subscribe requests"));
                limited += 1;
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    // The last subscription that was allowed holds.
    gateway.publish(vec![trade(0, "A")]).await.expect("publish");
    assert_eq!(next_event(&mut socket).await.offset, 0);
    assert!(gateway.metrics().await.contains(
        r#"gateway_refused_total{endpoint="websocket",reason="resubscribe_rate_limited"} 2"#
    ));
    gateway.stop().await;
}
