//! The accept loop, for plain HTTP and for TLS alike: one task per
//! connection on one of the connection threads (see [`ConnectionThreads`]),
//! HTTP/1.1 with a deadline for each request's headers, and a
//! shutdown that stops accepting and lets the requests in flight finish
//! (for as long as the caller's `give_up` allows).
//!
//! The deadline also bounds how long a kept-alive connection may sit idle
//! (the wait for the next request's headers is under it), so a client that
//! opens connections and sends nothing, or trickles its headers, cannot hold
//! them (and their file descriptors) for ever.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    runtime::Handle,
    sync::{oneshot, watch},
};
use tower::ServiceExt;

use super::{auth::ConnectionRecall, tls::Acceptor};

/// Connections the kernel keeps waiting for `accept` (capped by
/// `net.core.somaxconn`). `bind` in std and tokio asks for 128: 256 clients
/// connecting at once (the benchmark's memory run; every sync client after
/// a restart) overflowed it, and a client whose SYN is dropped sends it
/// again only after a second, which was the p99 of that run.
const ACCEPT_BACKLOG: u32 = 1024;

/// Listens on `addr` with [`ACCEPT_BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As std's bind does on Unix: a restart may bind while the connections
    // of the last run linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers, counted from
/// when the connection is ready for the next request (so also idle time).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until `shutdown` completes, then waits for the
/// connections to finish the requests they are serving, or for `give_up`
/// (first polled then), which ends those still open. A connection whose
/// client takes nothing of what is sent to it for `stall` is closed (see
/// [`limit_stalled_sends`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Acceptor>,
    routes: Router,
    stall: Duration,
    shutdown: impl Future<Output = ()>,
    give_up: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    // Dropping `stop` tells every connection to finish; every connection
    // holds a clone of `open`, so `open_tx.closed()` waits for the last.
    let (stop, stopped) = watch::channel(());
    let (open_tx, open) = watch::channel(());
    let mut threads = ConnectionThreads::start()?;
    let mut accept_errors = AcceptErrors::default();
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
                if let Some(since) = accept_errors.count(std::time::Instant::now()) {
                    tracing::warn!(error = %e, failed_since_last_report = since, "accepting connections failed; trying again every 100 ms");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        limit_stalled_sends(&tcp, stall);
        // Out of the accepting runtime's epoll, into the connection thread's.
        let Ok(tcp) = tcp.into_std() else { continue };
        let (tls, routes, stopped, open) =
            (tls.clone(), routes.clone(), stopped.clone(), open.clone());
        threads.next().spawn(async move {
            let Ok(tcp) = TcpStream::from_std(tcp) else { return };
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
    tokio::select! {
        () = open_tx.closed() => {}
        () = give_up => {}
    }
    // Connections still open end with their threads' runtimes.
    threads.stop().await;
    Ok(())
}

/// Has the kernel close the connection when what the server sent stays
/// untaken for `stall`: unacknowledged, or unsent because the client's
/// receive window stayed shut (TCP_USER_TIMEOUT, which since Linux 5.11 also
/// bounds the probes of a shut window). A client that stops reading a
/// download would otherwise hold its connection, its request and the file
/// it reads for ever. The time starts anew when the window opens far
/// enough for the next segment the server has queued, which a reader
/// does by taking that much within the limit; a very slow one may not: on
/// loopback (segments of 64 KiB) readers of 20-45 KB/s were measured to be
/// cut with a 3 s limit and 10 KB/s with 10 s, while 20 and 40 KB/s got
/// every byte with 10 s, so at the default 60 s a reader slower than about
/// 2-3 KB/s can be cut. A timer on the server's writes would cut far
/// faster readers (Linux wakes a waiting writer only once a third of the
/// send buffer has drained, see `stall.rs`), as web servers' send timeouts
/// do. The write then fails and hyper ends the connection.
fn limit_stalled_sends(tcp: &tokio::net::TcpStream, stall: Duration) {
    let ms = u32::try_from(stall.as_millis()).unwrap_or(u32::MAX);
    if let Err(e) = rustix::net::sockopt::set_tcp_user_timeout(tcp, ms) {
        tracing::debug!(error = %e, "TCP_USER_TIMEOUT could not be set");
    }
}

/// Failed accepts, reported at most once a minute: out of file descriptors
/// (which many open connections can bring about) the loop fails ten times a
/// second for as long as it lasts, and a line each filled the log.
#[derive(Default)]
struct AcceptErrors {
    last_report: Option<std::time::Instant>,
    unreported: u64,
}

impl AcceptErrors {
    /// Counts a failure at `now`; `Some(failures since the last report,
    /// this one included)` when it is time to report.
    fn count(&mut self, now: std::time::Instant) -> Option<u64> {
        self.unreported += 1;
        let due = self.last_report.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60));
        if !due {
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

/// The threads that serve the connections: one per core, each running a
/// single-threaded runtime of its own, dealt new connections in turn.
///
/// With one runtime whose worker threads share all connections, a worker
/// that found a connection ready woke the other to share the work, and most
/// of the time there was none to share: the wake-ups and the switches were
/// about 15 % of a small GET's CPU time (`strongroom-bench --perf
/// get-small`). A connection now stays on one thread with its epoll, its
/// timers and the tasks its requests spawn. The price: a thread busy with one
/// connection's long computation delays that thread's other connections
/// rather than handing them to an idle core.
struct ConnectionThreads {
    runtimes: Vec<Handle>,
    last: usize,
    /// Dropping these ends the threads' runtimes (after their last connection).
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ConnectionThreads {
    fn start() -> std::io::Result<ConnectionThreads> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut me = ConnectionThreads {
            runtimes: Vec::with_capacity(cores),
            last: 0,
            stops: Vec::with_capacity(cores),
            threads: Vec::with_capacity(cores),
        };
        for i in 0..cores {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            me.runtimes.push(runtime.handle().clone());
            me.stops.push(stop);
            let thread =
                std::thread::Builder::new().name(format!("connections-{i}")).spawn(move || {
                    // Dropping the runtime then waits for its blocking tasks
                    // (a write transaction a request started) to end.
                    let _ = runtime.block_on(stopped);
                })?;
            me.threads.push(thread);
        }
        Ok(me)
    }

    /// Where the next connection goes.
    fn next(&mut self) -> &Handle {
        self.last = (self.last + 1) % self.runtimes.len();
        &self.runtimes[self.last]
    }

    /// Ends the threads, once every connection has closed or the wait for
    /// them was given up: the tasks of connections still open are dropped.
    async fn stop(self) {
        drop(self.stops);
        let threads = self.threads;
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        });
        let _ = joined.await;
    }
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
    let recalled = Arc::new(ConnectionRecall::default());
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        req.extensions_mut().insert(recalled.clone());
        routes.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        // A client may shut its sending side once its request is out and
        // still wait for the answer; without this the end of its stream
        // ended the connection and the answer was lost (a PUT committed
        // all the same).
        .half_close(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_are_reported_once_a_minute_with_their_count() {
        let mut errors = AcceptErrors::default();
        let start = std::time::Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(errors.count(at(0)), Some(1), "the first is reported at once");
        let quiet = (1..600).filter_map(|i| errors.count(at(i * 100))).count();
        assert_eq!(quiet, 0, "a minute of failures every 100 ms: no more lines");
        assert_eq!(errors.count(at(60_000)), Some(600), "then one line with their count");
        assert_eq!(errors.count(at(60_100)), None);
    }

    #[tokio::test]
    async fn a_burst_of_connections_waits_for_accept_rather_than_being_dropped() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nothing accepts: every connection stays in the kernel's queue, as
        // when hundreds arrive at once. The kernel caps the queue at
        // net.core.somaxconn (4096 on current kernels).
        let cap = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(4096);
        let n = cap.min(ACCEPT_BACKLOG as usize).saturating_sub(24).min(400);
        assert!(n > 200, "net.core.somaxconn is {cap}: too small to hold a burst");
        let mut held = Vec::with_capacity(n);
        for i in 0..n {
            let c =
                tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await;
            // A dropped SYN is sent again only after a second: a timeout.
            let c = c.unwrap_or_else(|_| panic!("connection {i} of {n} was not queued"));
            held.push(c.unwrap());
        }
        drop(listener);
    }

    #[tokio::test]
    async fn connections_are_dealt_to_every_thread_in_turn_and_the_threads_end() {
        let mut threads = ConnectionThreads::start().unwrap();
        let cores = threads.runtimes.len();
        let mut served_by = Vec::new();
        for _ in 0..3 * cores {
            let (tx, rx) = oneshot::channel();
            threads.next().spawn(async move {
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            });
            served_by.push(rx.await.unwrap().expect("a named thread"));
        }
        for (i, name) in served_by.iter().enumerate() {
            assert!(name.starts_with("connections-"), "{name}");
            assert_eq!(name, &served_by[i % cores], "turn {i}: {served_by:?}");
        }
        let mut distinct = served_by.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), cores, "{served_by:?}");
        // Returns only once every thread has ended.
        tokio::time::timeout(Duration::from_secs(10), threads.stop()).await.unwrap();
    }
}
