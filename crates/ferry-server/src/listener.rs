//! Accept loops for the API and the store: one task per connection, HTTP/1 and HTTP/2, and a
//! shutdown signal that drops every connection at once (so tests can stop a server mid-upload).
//!
//! A client must send a request head within the header read timeout (it also ends idle
//! keep-alive connections), so connections held open by slow or silent clients (slowloris) are
//! closed rather than kept forever. Heads are limited by hyper's read buffer (~400 KB, then
//! `431`); HTTP/2 peers that stop answering pings are dropped.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connections served at once per listener; further ones wait in the accept queue.
const MAX_CONNECTIONS: usize = 1024;

/// How long an HTTP/2 peer may leave a ping unanswered.
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The connection settings both listeners use.
fn builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_TIMEOUT)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    builder
}

/// Serves connections from `listener` with the service `make(peer)` until `shutdown` turns true.
pub(crate) async fn serve<M, S, B>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    header_read_timeout: Duration,
    make: M,
) where
    M: Fn(SocketAddr) -> S,
    S: Service<http::Request<Incoming>, Response = http::Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let builder = std::sync::Arc::new(builder(header_read_timeout));
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stopped(&mut shutdown) => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => return,
        };
        let _ = stream.set_nodelay(true);
        let service = make(peer);
        let mut stop = shutdown.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => {
                    if let Err(err) = result {
                        tracing::debug!(%peer, %err, "connection ended with an error");
                    }
                }
                _ = stopped(&mut stop) => {}
            }
        });
    }
}

/// Resolves once the shutdown flag is set (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// The axum router for one connection, with the peer address for `ConnectInfo`.
pub(crate) fn with_peer(
    router: axum::Router,
    peer: SocketAddr,
) -> impl Service<
    http::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send + 'static,
> + Send
+ 'static {
    hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        tower::ServiceExt::oneshot(router.clone(), request)
    })
}
