//! Accept loops for the API and the store: one task per connection, HTTP/1 and HTTP/2, and a
//! shutdown signal that drops every connection at once (so tests can stop a server mid-upload).

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves connections from `listener` with the service `make(peer)` until `shutdown` turns true.
pub(crate) async fn serve<M, S, B>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
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
    loop {
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
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
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
