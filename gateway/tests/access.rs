//! Who may connect, with real clients over loopback: TLS with a CA made at test time, Publish
//! over mutual TLS, and subscriber JWTs on gRPC, grpc-web and WebSocket (subprotocol, first
//! frame, never the URL), including expiry and topics outside the token.

mod support;

use std::{sync::Arc, time::Duration};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use streamweaver_proto::v1::{
    LogLevel, SubscribeRequest, SubscribeResponse, stream_service_client::StreamServiceClient,
    subscribe_response::Kind,
};
use support::*;
use tokio_rustls::{
    TlsConnector,
    rustls::{
        self,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, ServerName, pem::PemObject},
    },
};
use tokio_tungstenite::tungstenite::{self, Message};
use tonic::{Code, Request, Streaming, metadata::MetadataValue, transport::Channel};

/// A gRPC subscription with `token` (if any) as its bearer.
async fn subscribe(
    channel: Channel,
    request: SubscribeRequest,
    token: Option<&str>,
) -> Result<Streaming<SubscribeResponse>, tonic::Status> {
    let mut request = Request::new(request);
    if let Some(token) = token {
        let bearer: MetadataValue<_> = format!("Bearer {token}").parse().expect("ascii");
        request.metadata_mut().insert("authorization", bearer);
    }
    StreamServiceClient::new(channel)
        .subscribe(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The next event on a gRPC stream (skipping heartbeats), or the status it ended with.
async fn next_grpc_event(
    stream: &mut Streaming<SubscribeResponse>,
) -> Result<streamweaver_proto::v1::Event, tonic::Status> {
    loop {
        let message = tokio::time::timeout(WITHIN, stream.message())
            .await
            .expect("a message in time")?;
        match message.and_then(|m| m.kind) {
            Some(Kind::Event(event)) => return Ok(event),
            Some(Kind::Heartbeat(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Publishes `probe` events on `publisher` until `stream` gets one; returns the next offset.
async fn grpc_wait_subscribed(
    publisher: &Channel,
    stream: &mut Streaming<SubscribeResponse>,
    probe: impl Fn(i64) -> streamweaver_proto::v1::Event,
    from: i64,
) -> i64 {
    let mut offset = from;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "nothing arrived");
        publish(publisher.clone(), vec![probe(offset)])
            .await
            .expect("publish");
        offset += 1;
        if let Ok(event) =
            tokio::time::timeout(Duration::from_millis(100), next_grpc_event(stream)).await
        {
            assert_eq!(event.expect("an event").offset, offset - 1);
            return offset;
        }
    }
}

/// A gateway whose subscribers need tokens signed with [`JWT_SECRET`], with no clock leeway.
async fn gateway_requiring_tokens() -> Gateway {
    Gateway::start(&[
        "--subscribe-jwt-secret",
        JWT_SECRET,
        "--subscribe-jwt-leeway",
        "0s",
    ])
    .await
}

#[tokio::test]
async fn grpc_over_tls_with_a_generated_ca() {
    let pki = Pki::generate();
    let flags = pki.flags(false);
    let gateway = Gateway::start(&flags.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let channel = pki.channel(gateway.address, None).await.expect("TLS");
    let mut stream = subscribe(channel.clone(), SubscribeRequest::default(), None)
        .await
        .expect("subscribed over TLS");
    let offset = grpc_wait_subscribed(&channel, &mut stream, |o| trade(o, "AAPL"), 0).await;

    // The same port serves WebSockets over TLS (a browser's wss:// negotiates HTTP/1.1).
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&pki.ca).expect("CA"))
        .expect("a trust anchor");
    let mut config =
        rustls::ClientConfig::builder_with_provider(aws_lc_rs::default_provider().into())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(gateway.address)
        .await
        .expect("connect");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    let url = format!("wss://localhost:{}/ws", gateway.address.port());
    let (mut socket, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("WebSocket over TLS");
    socket
        .send(Message::text(r#"{"topics":["stock_trades"]}"#))
        .await
        .expect("send");
    let mut probe = offset;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing over wss://"
        );
        publish(channel.clone(), vec![trade(probe, "AAPL")])
            .await
            .expect("publish");
        probe += 1;
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_millis(100), socket.next()).await
        {
            // A heartbeat comes first, at once.
            if text.contains("heartbeat") {
                continue;
            }
            assert!(text.contains("stockTrade"), "{text}");
            break;
        }
    }

    // Plaintext on the TLS port gets nowhere.
    let plaintext = tokio::time::timeout(
        WITHIN,
        StreamServiceClient::new(gateway.channel_lazy()).subscribe(SubscribeRequest::default()),
    )
    .await
    .expect("an answer in time");
    assert!(plaintext.is_err(), "plaintext got through");
    gateway.stop().await;
}

#[tokio::test]
async fn publish_over_mutual_tls_needs_a_client_certificate() {
    let pki = Pki::generate();
    let flags = pki.flags(true);
    let gateway = Gateway::start(&flags.iter().map(String::as_str).collect::<Vec<_>>()).await;

    let with_certificate = pki
        .channel(gateway.address, Some(&pki.client))
        .await
        .expect("mutual TLS");
    let response = publish(with_certificate, vec![trade(0, "AAPL")])
        .await
        .expect("accepted with a client certificate");
    assert_eq!(response.accepted, 1);

    // Without a certificate the connection is fine (subscribers need none), but Publish is not.
    let without = pki.channel(gateway.address, None).await.expect("TLS");
    let refused = publish(without.clone(), vec![trade(1, "AAPL")])
        .await
        .expect_err("refused without a client certificate");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        refused.message().contains("mutual TLS"),
        "{}",
        refused.message()
    );
    subscribe(without, SubscribeRequest::default(), None)
        .await
        .expect("subscribers need no certificate");

    // A certificate from another CA does not get through the handshake.
    let rogue = match pki.channel(gateway.address, Some(&pki.rogue_client)).await {
        Err(_) => None,
        Ok(channel) => Some(publish(channel, vec![trade(2, "AAPL")]).await),
    };
    assert!(
        !matches!(rogue, Some(Ok(_))),
        "a certificate from the wrong CA published: {rogue:?}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn grpc_subscribers_need_a_valid_token_within_its_topics() {
    let gateway = gateway_requiring_tokens().await;
    let channel = gateway.channel().await;
    let refusal =
        |result: Result<Streaming<SubscribeResponse>, tonic::Status>| result.expect_err("refused");

    let missing = refusal(subscribe(channel.clone(), SubscribeRequest::default(), None).await);
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(
        missing.message().contains("authorization: Bearer"),
        "{missing:?}"
    );
    let expired = refusal(
        subscribe(
            channel.clone(),
            SubscribeRequest::default(),
            Some(&jwt(-10, json!({}))),
        )
        .await,
    );
    assert_eq!(expired.code(), Code::Unauthenticated);
    assert!(expired.message().contains("expired"), "{expired:?}");
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"exp": u32::MAX}),
        &jsonwebtoken::EncodingKey::from_secret(b"guessed").expect("key"),
    )
    .expect("encodes");
    assert_eq!(
        refusal(subscribe(channel.clone(), SubscribeRequest::default(), Some(&forged)).await)
            .code(),
        Code::Unauthenticated
    );

    // A token for stock trades: an explicit other topic is refused…
    let trades_only = jwt(3600, json!({"topics": ["stock_trades"], "sub": "ana"}));
    let logs = SubscribeRequest {
        topics: vec!["server_logs".into()],
        ..Default::default()
    };
    let denied = refusal(subscribe(channel.clone(), logs, Some(&trades_only)).await);
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("\"server_logs\""), "{denied:?}");

    // …and "everything" is narrowed to what the token allows.
    let mut stream = subscribe(
        channel.clone(),
        SubscribeRequest::default(),
        Some(&trades_only),
    )
    .await
    .expect("valid token");
    let offset = grpc_wait_subscribed(&channel, &mut stream, |o| trade(o, "AAPL"), 0).await;
    publish(
        channel.clone(),
        vec![log(0, LogLevel::Error), trade(offset, "AAPL")],
    )
    .await
    .expect("publish");
    let event = next_grpc_event(&mut stream).await.expect("an event");
    assert_eq!(
        (event.topic.as_str(), event.offset),
        ("stock_trades", offset),
        "the log line is outside the token"
    );

    // The stream ends when the token expires.
    let short = jwt(2, json!({}));
    let mut ending = subscribe(channel.clone(), SubscribeRequest::default(), Some(&short))
        .await
        .expect("valid for two seconds");
    let status = loop {
        match next_grpc_event(&mut ending).await {
            Ok(_) => {}
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("expired"), "{status:?}");

    assert_refused(
        &gateway.metrics().await,
        "grpc",
        &[
            "unauthenticated",
            "token_expired",
            "invalid_token",
            "topic_not_allowed",
        ],
    );
    gateway.stop().await;
}

#[tokio::test]
async fn grpc_web_subscribers_need_a_valid_token_within_its_topics() {
    let gateway = gateway_requiring_tokens().await;
    // A grpc-web client: tonic-web's client layer over a plain HTTP/1.1 client.
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let service = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(http);
    let client = StreamServiceClient::with_origin(service, gateway.url().parse().expect("uri"));
    let subscribe = |request: SubscribeRequest, token: Option<&str>| {
        let mut client = client.clone();
        let mut request = Request::new(request);
        if let Some(token) = token {
            let bearer: MetadataValue<_> = format!("Bearer {token}").parse().expect("ascii");
            request.metadata_mut().insert("authorization", bearer);
        }
        async move {
            client
                .subscribe(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };

    let missing = subscribe(SubscribeRequest::default(), None)
        .await
        .expect_err("no token");
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    let trades_only = jwt(3600, json!({"topics": ["stock_trades"]}));
    let logs = SubscribeRequest {
        topics: vec!["server_logs".into()],
        ..Default::default()
    };
    let denied = subscribe(logs, Some(&trades_only))
        .await
        .expect_err("outside the token");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    // Resuming a partition of a topic outside the token is refused too.
    let resume_logs = SubscribeRequest {
        topics: vec!["stock_trades".into()],
        resume_from: vec![streamweaver_proto::v1::Position {
            topic: "server_logs".into(),
            partition: 0,
            offset: 0,
        }],
        ..Default::default()
    };
    let denied = subscribe(resume_logs, Some(&trades_only))
        .await
        .expect_err("resume outside the token");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // "Everything" is narrowed to the token's topics.
    let mut stream = subscribe(SubscribeRequest::default(), Some(&trades_only))
        .await
        .expect("valid token");
    // The subscription exists once the response headers arrived.
    gateway
        .publish(vec![log(0, LogLevel::Error), trade(0, "AAPL")])
        .await
        .expect("publish");
    let event = next_grpc_event(&mut stream).await.expect("an event");
    assert_eq!((event.topic.as_str(), event.offset), ("stock_trades", 0));

    assert_refused(
        &gateway.metrics().await,
        "grpc-web",
        &["unauthenticated", "topic_not_allowed"],
    );
    drop(stream);
    gateway.stop().await;
}

#[tokio::test]
async fn websocket_tokens_travel_in_the_subprotocol_or_a_first_frame_never_the_url() {
    let gateway = gateway_requiring_tokens().await;
    let token = jwt(3600, json!({"topics": ["stock_trades"]}));

    // In the URL: refused, saying where the token goes now.
    match websocket(&gateway, &format!("?token={token}"), &[]).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("not accepted in the URL"), "{body}");
            assert!(body.contains("streamweaver.v1.bearer."), "{body}");
        }
        other => panic!("expected a 400, got {:?}", other.map(|_| ())),
    }
    // A bad token in the subprotocol: refused at the upgrade.
    match websocket(
        &gateway,
        "",
        &["streamweaver.v1.json", "streamweaver.v1.bearer.nonsense"],
    )
    .await
    {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401, got {:?}", other.map(|_| ())),
    }

    // In the subprotocol header, beside the real subprotocol, which alone is echoed back.
    let bearer = format!("streamweaver.v1.bearer.{token}");
    let (mut by_header, response) = websocket(&gateway, "", &["streamweaver.v1.json", &bearer])
        .await
        .expect("token accepted");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().expect("ascii")),
        Some("streamweaver.v1.json")
    );
    send_json(&mut by_header, "{}").await;
    let offset = wait_subscribed(&gateway, &mut by_header, |o| trade(o, "AAPL"), 0).await;

    // In a first frame.
    let (mut by_frame, _) = websocket(&gateway, "", &[]).await.expect("open");
    send_json(&mut by_frame, r#"{"topics":["stock_trades"]}"#).await;
    let (code, message) = next_error(&mut by_frame).await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert!(message.contains("authorization"), "{message}");
    send_json(
        &mut by_frame,
        &json!({ "authorization": format!("Bearer {token}") }).to_string(),
    )
    .await;
    send_json(&mut by_frame, r#"{"topics":["stock_trades"]}"#).await;
    let mut offset = wait_subscribed(&gateway, &mut by_frame, |o| trade(o, "AAPL"), offset).await;

    // A change to a topic outside the token is refused; the subscription in force goes on.
    send_json(&mut by_frame, r#"{"topics":["server_logs"]}"#).await;
    let (code, message) = next_error(&mut by_frame).await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert!(message.contains("\"server_logs\""), "{message}");
    publish(
        gateway.channel().await,
        vec![log(0, LogLevel::Error), trade(offset, "AAPL")],
    )
    .await
    .expect("publish");
    assert_eq!(next_event(&mut by_frame).await.offset, offset);
    offset += 1;

    // An expiring token: an error frame, then the socket closes.
    let (mut expiring, _) = websocket(
        &gateway,
        "",
        &[
            "streamweaver.v1.json",
            &format!("streamweaver.v1.bearer.{}", jwt(2, json!({}))),
        ],
    )
    .await
    .expect("valid for two seconds");
    send_json(&mut expiring, "{}").await;
    wait_subscribed(&gateway, &mut expiring, |o| trade(o, "AAPL"), offset).await;
    let ended = loop {
        match next_frame(&mut expiring).await {
            Ok(SubscribeResponse {
                kind: Some(Kind::Event(_)),
            }) => {}
            other => break other,
        }
    };
    match ended {
        Ok(SubscribeResponse {
            kind: Some(Kind::Error(error)),
        }) => assert_eq!(error.code, "UNAUTHENTICATED"),
        other => panic!("expected an UNAUTHENTICATED error frame, got {other:?}"),
    }
    let (code, _) = next_frame(&mut expiring).await.expect_err("closed");
    assert_eq!(code, 1008);

    assert_refused(
        &gateway.metrics().await,
        "websocket",
        &[
            "token_in_url",
            "invalid_token",
            "unauthenticated",
            "topic_not_allowed",
            "token_expired",
        ],
    );
    gateway.stop().await;
}
