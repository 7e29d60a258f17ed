//! The gateway's accept loop: every connection of the one port, HTTP/1.1 and HTTP/2, plaintext
//! or TLS, served by hyper over the same axum router.
//!
//! Written out (instead of `axum::serve`) for what a public port needs: a connection is admitted
//! or refused at accept ([`Admission`]); the TLS handshake and the first request must arrive
//! within `--header-read-timeout`, and every later HTTP/1 request head too (slowloris); HTTP/2
//! pings find dead peers; HTTP/2 streams per connection are capped; buffers are sized for
//! thousands of idle connections; handlers see who is connected ([`ConnectionInfo`]); and
//! shutdown drains every connection, then ends what is left after the drain timeout.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo};
use futures::future;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Notify, Semaphore},
    time::{Instant, sleep_until},
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{
    either::Either,
    sync::CancellationToken,
    task::{TaskTracker, task_tracker::TaskTrackerToken},
};
use tower::ServiceExt;

use crate::{
    admission::{Admission, ConnectionPermit, Refusal},
    metrics::Metrics,
    tls::{self, ClientIdentity, TlsInfo},
};

/// The `endpoint` label of connection-level refusals in `gateway_refused_total`.
pub const CONNECTION_ENDPOINT: &str = "connection";
/// Largest HTTP/1 read buffer: a request head (with a bearer token) fits many times over.
const HTTP1_MAX_BUFFER: usize = 16 * 1024;
/// HTTP/2 flow-control windows: what one peer can make the gateway buffer before it reads.
const HTTP2_STREAM_WINDOW: u32 = 256 * 1024;
const HTTP2_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// At most this much of a stream's responses waits in HTTP/2 for a slow reader; beyond it the
/// subscription's own queue and slow-client policy decide.
const HTTP2_MAX_SEND_BUFFER: usize = 128 * 1024;
/// Refused connections answered at once (with a 503 or RESOURCE_EXHAUSTED saying why); beyond
/// this many, a refused connection is closed at accept without an answer.
const REFUSAL_ANSWERS: usize = 64;
/// How long a connection told to close gets to finish its last response before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How connections are served.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time for the TLS handshake plus the first request's head, and for each later HTTP/1
    /// request head.
    pub header_read_timeout: Duration,
    /// HTTP/2 ping interval on a connection that has been quiet.
    pub http2_keepalive_interval: Duration,
    /// A ping unanswered for this long closes the connection.
    pub http2_keepalive_timeout: Duration,
    /// Most concurrent HTTP/2 streams (gRPC calls) per connection.
    pub http2_max_concurrent_streams: u32,
    /// How long shutdown waits for connections to finish before ending them.
    pub drain_timeout: Duration,
}

/// Who is on the other end of a request's connection; in every request's extensions.
///
/// Holds the connection's admission permit, so the place stays taken while any handler (a
/// WebSocket after its upgrade, say) keeps this; and shutdown waits for it too.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    inner: Arc<ConnectionDetails>,
}

#[derive(Debug)]
struct ConnectionDetails {
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    _permit: ConnectionPermit,
    _running: TaskTrackerToken,
}

impl ConnectionInfo {
    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The TLS side of the connection; `None` for plaintext.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.inner.tls.as_ref()
    }

    /// The verified client certificate's holder, if the client presented one.
    pub fn client_identity(&self) -> Option<&ClientIdentity> {
        self.tls().and_then(|tls| tls.client.as_ref())
    }
}

/// What every connection task shares.
struct Shared {
    router: Router,
    builder: auto::Builder<TokioExecutor>,
    refusal_builder: auto::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    options: ServeOptions,
    metrics: Metrics,
    shutdown: CancellationToken,
    /// Cancelled once the drain timeout has passed: what is still open is dropped.
    hard_stop: CancellationToken,
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then drains: connections are
/// asked to finish (HTTP/2 GOAWAY, HTTP/1 close after the current response) and, after
/// `options.drain_timeout`, whatever is still open is closed. Returns when every connection,
/// upgraded WebSockets included, has ended.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    admission: Admission,
    tls: Option<TlsAcceptor>,
    options: ServeOptions,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let shared = Arc::new(Shared {
        builder: builder(&options, true),
        refusal_builder: builder(&options, false),
        router,
        tls,
        options,
        metrics,
        shutdown: shutdown.clone(),
        hard_stop: CancellationToken::new(),
    });
    let tracker = TaskTracker::new();
    let refusal_answers = Arc::new(Semaphore::new(REFUSAL_ANSWERS));
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error, &shared.metrics, &shutdown).await;
                    continue;
                }
            },
        };
        // Small frames go out at once: without TCP_NODELAY, Nagle's algorithm and delayed ACKs
        // hold a lone event back by up to 40 ms.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        match admission.admit(peer.ip()) {
            Ok(permit) => {
                let admitted = Ok((permit, tracker.token()));
                tracker.spawn(connection(tcp, peer, admitted, shared.clone()));
            }
            Err(refusal) => {
                shared.metrics.refuse(CONNECTION_ENDPOINT, refusal.reason());
                tracing::debug!(%peer, %refusal, "connection refused");
                // Answering costs a task; under a flood, closing at accept is the answer.
                if let Ok(slot) = refusal_answers.clone().try_acquire_owned() {
                    let shared = shared.clone();
                    tracker.spawn(async move {
                        connection(tcp, peer, Err(refusal), shared).await;
                        drop(slot);
                    });
                }
            }
        }
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(shared.options.drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            "connections still open after {:?}; closing them",
            shared.options.drain_timeout
        );
        shared.hard_stop.cancel();
        // Connection tasks end at once; an upgraded WebSocket ends on `shutdown` by itself.
        if tokio::time::timeout(CLOSE_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(open = tracker.len(), "connections still open; leaving them");
        }
    }
}

/// The hyper settings of every connection; `keep_alive` off for connections only answered with
/// a refusal.
fn builder(options: &ServeOptions, keep_alive: bool) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(HTTP1_MAX_BUFFER)
        .keep_alive(keep_alive);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(options.http2_keepalive_interval)
        .keep_alive_timeout(options.http2_keepalive_timeout)
        .max_concurrent_streams(options.http2_max_concurrent_streams)
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
        .max_send_buf_size(HTTP2_MAX_SEND_BUFFER);
    builder
}

/// After a failed accept: go on at once for errors of that one connection; otherwise (out of
/// file descriptors, say) pause briefly so the loop does not spin.
async fn accept_failed(error: &std::io::Error, metrics: &Metrics, shutdown: &CancellationToken) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    metrics.refuse(CONNECTION_ENDPOINT, "accept_failed");
    tracing::warn!(%error, "accept failed; pausing 100 ms");
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(Duration::from_millis(100)) => {}
    }
}

/// Serves one connection: the TLS handshake if any, then HTTP until the peer leaves, a deadline
/// passes, or shutdown. A refused connection gets one answer saying why, then is closed.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    admitted: Result<(ConnectionPermit, TaskTrackerToken), Refusal>,
    shared: Arc<Shared>,
) {
    let first_request_by = Instant::now() + shared.options.header_read_timeout;
    let (io, tls) = match &shared.tls {
        None => (Either::Left(tcp), None),
        Some(acceptor) => {
            let handshake = tokio::time::timeout_at(first_request_by, acceptor.accept(tcp));
            let outcome = tokio::select! {
                () = shared.shutdown.cancelled() => return,
                outcome = handshake => outcome,
            };
            match outcome {
                Ok(Ok(stream)) => {
                    let info = tls::info(stream.get_ref().1);
                    // Boxed: inline, rustls's state would make every plaintext connection
                    // (and every upgraded WebSocket) 1.2 KiB larger.
                    (Either::Right(Box::new(stream)), Some(info))
                }
                Ok(Err(error)) => {
                    shared.metrics.refuse(CONNECTION_ENDPOINT, "tls_handshake");
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    shared.metrics.refuse(CONNECTION_ENDPOINT, "header_timeout");
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let refusing = admitted.is_err();
    let admitted = admitted.map(|(permit, running)| ConnectionInfo {
        inner: Arc::new(ConnectionDetails {
            peer,
            tls,
            _permit: permit,
            _running: running,
        }),
    });
    let requested = Arc::new(Notify::new());
    let notify = requested.clone();
    let router = shared.router.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        notify.notify_one();
        match &admitted {
            Ok(info) => {
                let extensions = request.extensions_mut();
                extensions.insert(info.clone());
                extensions.insert(ConnectInfo(info.peer()));
                future::Either::Left(router.clone().oneshot(request))
            }
            Err(refusal) => future::Either::Right(future::ready(Ok::<_, Infallible>(
                refusal_response(refusal, &request),
            ))),
        }
    });
    let builder = if refusing {
        &shared.refusal_builder
    } else {
        &shared.builder
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);

    // Closed gracefully when the first request is late, after the one answer a refused
    // connection gets, or on shutdown; at once after the drain.
    let mut got_request = false;
    let mut draining = false;
    // Once asked to close, a connection gets `CLOSE_GRACE` to do so.
    let mut close_by: Option<Instant> = None;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    if error.downcast_ref().is_some_and(hyper::Error::is_timeout) {
                        shared.metrics.refuse(CONNECTION_ENDPOINT, "header_timeout");
                        tracing::debug!(%peer, "request head not read in time; closed");
                    } else {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                }
                return;
            }
            () = requested.notified(), if !got_request => {
                got_request = true;
                if refusing {
                    conn.as_mut().graceful_shutdown();
                    close_by = Some(Instant::now() + CLOSE_GRACE);
                }
            }
            () = sleep_until(first_request_by), if !got_request && close_by.is_none() => {
                shared.metrics.refuse(CONNECTION_ENDPOINT, "header_timeout");
                tracing::debug!(%peer, "no request within the header read timeout; closing");
                conn.as_mut().graceful_shutdown();
                close_by = Some(Instant::now() + CLOSE_GRACE);
            }
            () = shared.shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = sleep_until(close_by.unwrap_or(first_request_by)), if close_by.is_some() => return,
            () = shared.hard_stop.cancelled() => return,
        }
    }
}

/// The answer to a refused connection's request: gRPC clients get `RESOURCE_EXHAUSTED`, others
/// `503 Service Unavailable`, both saying which cap was hit.
fn refusal_response(refusal: &Refusal, request: &Request<Incoming>) -> Response<Body> {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    if grpc {
        return tonic::Status::resource_exhausted(refusal.to_string()).into_http();
    }
    let mut response = Response::new(Body::from(format!("{refusal}\n")));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}
