//! The accept loop, for plain HTTP and for TLS alike: one task per
//! connection, HTTP/1.1 with a deadline for each request's headers, and a
//! shutdown that stops accepting and lets the requests in flight finish.
//!
//! The deadline also bounds how long a kept-alive connection may sit idle
//! (the wait for the next request's headers is under it), so a client that
//! opens connections and sends nothing, or trickles its headers, cannot hold
//! them (and their file descriptors) for ever.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::watch};
use tower::ServiceExt;

use super::tls::Acceptor;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers, counted from
/// when the connection is ready for the next request (so also idle time).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until `shutdown` completes, then waits for the
/// connections to finish the requests they are serving.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Acceptor>,
    routes: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    // Dropping `stop` tells every connection to finish; every connection
    // holds a clone of `open`, so `open_tx.closed()` waits for the last.
    let (stop, stopped) = watch::channel(());
    let (open_tx, open) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        // Running out of file descriptors (or a connection reset before
        // accept) must not end the server: wait a little and go on.
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (tls, routes, stopped, open) =
            (tls.clone(), routes.clone(), stopped.clone(), open.clone());
        tokio::spawn(async move {
            match tls {
                None => drive(TokioIo::new(tcp), peer, routes, stopped).await,
                Some(acceptor) => {
                    // A client that never completes the handshake is dropped.
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                    if let Ok(Ok(stream)) = handshake.await {
                        drive(TokioIo::new(stream), peer, routes, stopped).await;
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(stop);
    drop(open);
    open_tx.closed().await;
    Ok(())
}

/// Serves the requests of one connection until it closes, or until `stopped`
/// says the server is shutting down (then after the request in flight).
async fn drive<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    routes: Router,
    mut stopped: watch::Receiver<()>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        routes.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended");
                }
                return;
            }
            _ = stopped.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
