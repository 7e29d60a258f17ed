//! The gateway's connections under abuse, with real sockets over loopback: slow senders, silent
//! sockets, WebSockets that never subscribe, dead HTTP/2 peers, too many streams or connections,
//! and a shutdown with work still in flight.

mod support;

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioIo},
};
use streamweaver_proto::v1::{
    SubscribeRequest, stream_service_client::StreamServiceClient, subscribe_response::Kind,
};
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    time::Instant,
};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
use tonic::{Code, transport::Endpoint};

/// A TCP connection to `to` from the loopback address `from` (any 127.x.y.z reaches 127.0.0.1).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let source: IpAddr = from.parse().expect("address");
    socket.bind(SocketAddr::new(source, 0)).expect("bind");
    tokio::time::timeout(WITHIN, socket.connect(to))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Sends `bytes` one at a time, `every` apart, until the server closes the connection; returns
/// how long that took, or `None` if every byte went out and it stayed open for `every` more.
async fn send_slowly(stream: &mut TcpStream, bytes: &[u8], every: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buffer = [0u8; 1024];
    for byte in bytes {
        if stream.write_all(&[*byte]).await.is_err() {
            return Some(start.elapsed());
        }
        let deadline = Instant::now() + every;
        // Whatever the server says (a 408, say) is read; end of stream or a reset is the close.
        while let Ok(read) = tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            match read {
                Ok(0) | Err(_) => return Some(start.elapsed()),
                Ok(_) => {}
            }
        }
    }
    None
}

/// A plain HTTP/1.1 GET from the loopback address `from`: the status and body.
async fn http_get(from: &str, to: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = connect_from(from, to).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    tokio::time::timeout(WITHIN, stream.read_to_string(&mut response))
        .await
        .expect("answer in time")
        .expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A WebSocket from the loopback address `from`, subscribed to everything.
async fn subscribed_websocket_from(
    from: &str,
    gateway: &Gateway,
) -> Result<WebSocket, tungstenite::Error> {
    let stream = connect_from(from, gateway.address).await;
    let request = format!("ws://{}/ws", gateway.address).into_client_request()?;
    let (mut socket, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await?;
    send_json(&mut socket, "{}").await;
    Ok(socket)
}

#[tokio::test]
async fn slow_and_silent_clients_are_closed_after_the_header_timeout() {
    let gateway = Gateway::start(&["--header-read-timeout", "2s"]).await;
    let expected = Duration::from_millis(1_500)..Duration::from_secs(8);

    // HTTP/1 headers at a byte per second.
    let mut slowloris = connect_from("127.0.0.1", gateway.address).await;
    let headers =
        b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Padding: abcdefghijklmnopqrstuvwxyz\r\n\r\n";
    let closed_after = send_slowly(&mut slowloris, headers, Duration::from_secs(1))
        .await
        .expect("a slowloris is closed");
    assert!(expected.contains(&closed_after), "{closed_after:?}");

    // The HTTP/2 preface at a byte per second (it would otherwise stall protocol detection).
    let mut slow_preface = connect_from("127.0.0.1", gateway.address).await;
    let closed_after = send_slowly(
        &mut slow_preface,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        Duration::from_secs(1),
    )
    .await
    .expect("a slow HTTP/2 preface is closed");
    assert!(expected.contains(&closed_after), "{closed_after:?}");

    // A connection that says nothing at all.
    let mut silent = connect_from("127.0.0.1", gateway.address).await;
    let start = Instant::now();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(WITHIN, silent.read(&mut buffer))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(expected.contains(&start.elapsed()), "{:?}", start.elapsed());

    // A client that sends its request at once is served, before and after a keep-alive pause.
    let (status, body) = http_get("127.0.0.1", gateway.address, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let metrics = gateway.metrics().await;
    assert!(
        metric(
            &metrics,
            r#"gateway_refused_total{endpoint="connection",reason="header_timeout"}"#
        ) >= 3.0,
        "{metrics}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn long_streams_outlive_the_header_timeout() {
    let gateway = Gateway::start(&["--header-read-timeout", "1s"]).await;
    // grpc-web over HTTP/1.1, as a browser streams.
    let http = Client::builder(TokioExecutor::new()).build_http();
    let service = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(http);
    let mut grpc_web =
        StreamServiceClient::with_origin(service, gateway.url().parse().expect("uri"))
            .subscribe(SubscribeRequest::default())
            .await
            .expect("grpc-web subscribe")
            .into_inner();
    let mut grpc = StreamServiceClient::new(gateway.channel().await)
        .subscribe(SubscribeRequest::default())
        .await
        .expect("gRPC subscribe")
        .into_inner();
    let (mut socket, _) = websocket(&gateway, "", &[]).await.expect("open");
    send_json(&mut socket, "{}").await;

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    gateway
        .publish(vec![trade(0, "AAPL")])
        .await
        .expect("publish");
    assert_eq!(next_event(&mut socket).await.offset, 0);
    for stream in [&mut grpc_web, &mut grpc] {
        let response = next_grpc(stream).await.expect("still open");
        assert!(matches!(response.kind, Some(Kind::Event(e)) if e.offset == 0));
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_websocket_that_never_subscribes_is_closed() {
    let gateway = Gateway::start(&["--ws-subscribe-timeout", "1s"]).await;
    let (mut idle, _) = websocket(&gateway, "", &[]).await.expect("open");
    let (mut subscriber, _) = websocket(&gateway, "", &[]).await.expect("open");
    send_json(&mut subscriber, r#"{"topics":["stock_trades"]}"#).await;

    let start = Instant::now();
    let (code, reason) = next_frame(&mut idle).await.expect_err("closed");
    assert_eq!(code, 1008);
    assert!(reason.contains("no SubscribeRequest within 1s"), "{reason}");
    assert!(start.elapsed() >= Duration::from_millis(800));

    // The one that subscribed in time stays, past the timeout.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    wait_subscribed(&gateway, &mut subscriber, |o| trade(o, "AAPL"), 0).await;
    let metrics = gateway.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"gateway_refused_total{endpoint="websocket",reason="no_subscription"}"#
        ),
        1.0,
        "{metrics}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn connection_caps_hold_in_total_and_per_address() {
    let gateway =
        Gateway::start(&["--max-connections", "3", "--max-connections-per-ip", "2"]).await;
    let a1 = subscribed_websocket_from("127.0.0.1", &gateway)
        .await
        .expect("first from .1");
    let _a2 = subscribed_websocket_from("127.0.0.1", &gateway)
        .await
        .expect("second from .1");

    // A third from the same address: refused with a 503 that says why.
    let (status, body) = http_get("127.0.0.1", gateway.address, "/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("127.0.0.1 has its maximum of 2 connections"),
        "{body}"
    );
    match subscribed_websocket_from("127.0.0.1", &gateway).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected a 503, got {:?}", other.map(|_| ())),
    }

    // Another address still gets in, up to the total.
    let b1 = subscribed_websocket_from("127.0.0.2", &gateway)
        .await
        .expect("first from .2");
    let (status, body) = http_get("127.0.0.3", gateway.address, "/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("maximum of 3 connections"), "{body}");

    // gRPC clients are told in their own terms.
    let from_4 = tower::service_fn(|uri: http::Uri| async move {
        let port = uri.port_u16().expect("port");
        let stream = connect_from("127.0.0.4", SocketAddr::from(([127, 0, 0, 1], port))).await;
        Ok::<_, std::io::Error>(TokioIo::new(stream))
    });
    let channel = Endpoint::from_shared(gateway.url())
        .expect("url")
        .connect_with_connector(from_4)
        .await
        .expect("TCP connects");
    let refused = StreamServiceClient::new(channel)
        .subscribe(SubscribeRequest::default())
        .await
        .expect_err("over the total");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("maximum of 3 connections"),
        "{refused:?}"
    );

    // A place freed is a place taken again.
    drop(a1);
    let deadline = Instant::now() + WITHIN;
    let _a3 = loop {
        match subscribed_websocket_from("127.0.0.1", &gateway).await {
            Ok(socket) => break socket,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the freed place was not given back: {error}"),
        }
    };
    drop(b1);
    let deadline = Instant::now() + WITHIN;
    let metrics = loop {
        let (status, body) = http_get("127.0.0.5", gateway.address, "/metrics").await;
        if status == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "no place came free: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(metric(&metrics, "gateway_connections"), 3.0, "{metrics}");
    assert_refused(
        &metrics,
        "connection",
        &["too_many_connections_from_address", "too_many_connections"],
    );
    gateway.stop().await;
}

/// Forwards one TCP connection until frozen; then reads and drops what the gateway sends, as a
/// peer that vanished would, and reports when the gateway closes its side.
async fn freezable_proxy(
    gateway: SocketAddr,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Duration>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (freeze, frozen) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.expect("accept");
        let mut upstream = TcpStream::connect(gateway).await.expect("connect");
        {
            let (mut client_read, mut client_write) = client.split();
            let (mut upstream_read, mut upstream_write) = upstream.split();
            tokio::select! {
                _ = frozen => {}
                _ = tokio::io::copy(&mut client_read, &mut upstream_write) => panic!("client left"),
                _ = tokio::io::copy(&mut upstream_read, &mut client_write) => panic!("gateway left early"),
            }
        }
        let start = Instant::now();
        let mut sink = [0u8; 4096];
        loop {
            match upstream.read(&mut sink).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    });
    (address, freeze, task)
}

#[tokio::test]
async fn http2_pings_find_a_dead_grpc_peer() {
    let gateway = Gateway::start(&[
        "--http2-keepalive-interval",
        "500ms",
        "--http2-keepalive-timeout",
        "1s",
    ])
    .await;
    let (proxy, freeze, closed) = freezable_proxy(gateway.address).await;
    let channel = Endpoint::from_shared(format!("http://{proxy}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let stream = StreamServiceClient::new(channel)
        .subscribe(SubscribeRequest::default())
        .await
        .expect("subscribed")
        .into_inner();
    // Alive and answering pings for a while: the connection stays.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!closed.is_finished(), "a live peer was closed");

    freeze.send(()).expect("proxy running");
    let closed_after = tokio::time::timeout(WITHIN, closed)
        .await
        .expect("the gateway closed the dead connection in time")
        .expect("proxy");
    assert!(closed_after < Duration::from_secs(5), "{closed_after:?}");
    let metrics = gateway.metrics().await;
    assert_eq!(metric(&metrics, "gateway_connections"), 1.0, "{metrics}");
    drop(stream);
    gateway.stop().await;
}

#[tokio::test]
async fn http2_streams_per_connection_are_capped() {
    let gateway = Gateway::start(&["--http2-max-concurrent-streams", "2"]).await;
    let mut client = StreamServiceClient::new(gateway.channel().await);
    let first = client
        .subscribe(SubscribeRequest::default())
        .await
        .expect("first stream");
    let _second = client
        .subscribe(SubscribeRequest::default())
        .await
        .expect("second stream");
    let mut third_client = client.clone();
    let third = tokio::spawn(async move {
        third_client
            .subscribe(SubscribeRequest::default())
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!third.is_finished(), "a third stream opened past the cap");
    drop(first);
    tokio::time::timeout(WITHIN, third)
        .await
        .expect("the third stream opens once one closes")
        .expect("task")
        .expect("subscribed");
    gateway.stop().await;
}

#[tokio::test]
async fn shutdown_drains_then_closes_what_is_left() {
    let gateway = Gateway::start(&["--drain-timeout", "1s"]).await;
    // A request whose body never finishes keeps its connection busy through the drain.
    let mut stuck = connect_from("127.0.0.1", gateway.address).await;
    stuck
        .write_all(
            b"POST /streamweaver.v1.StreamService/Subscribe HTTP/1.1\r\nHost: gateway\r\n\
              content-type: application/grpc-web+proto\r\ncontent-length: 100\r\n\r\n\0\0\0",
        )
        .await
        .expect("send");
    let (mut socket, _) = websocket(&gateway, "", &[]).await.expect("open");
    send_json(&mut socket, "{}").await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let start = Instant::now();
    gateway.stop().await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let mut buffer = [0u8; 256];
    let mut closed = false;
    while let Ok(Ok(read)) = tokio::time::timeout(WITHIN, stuck.read(&mut buffer)).await {
        if read == 0 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the stuck connection was left open");
    next_frame(&mut socket)
        .await
        .expect_err("the WebSocket is closed too");
}
