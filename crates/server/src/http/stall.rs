//! A client that stops sending a request body, or stops taking an answer,
//! is given up after `client_stall_secs`.
//!
//! hyper bounds the wait for a request's headers (and so the idle time of a
//! kept-alive connection), not for its body nor for the client to take the
//! answer: a client that announced a body (`Content-Length: 1000000`) and
//! then sent nothing, or asked for a large file and read none of it, held
//! its connection, its request task, an open file and, for an upload, a
//! half-written blob for as long as it kept the socket open.
//!
//! - Every request body is wrapped in [`StallLimit`]: the clock runs only
//!   while the handler waits for the client (time the server spends between
//!   two reads does not count), starts again with every piece that arrives,
//!   and when it runs out the body fails with an I/O error of kind
//!   `TimedOut`, which an upload turns into 408 and every other reader into
//!   its usual refusal of a body it could not read. The failed body is not
//!   drained, so hyper closes the connection after the answer.
//! - Every connection's socket is wrapped in [`WriteStallLimit`]: a write
//!   that the client's full receive window keeps waiting for longer than the
//!   limit fails with `TimedOut`, which ends the connection.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Sleep,
};

pub struct StallLimit {
    body: Body,
    limit: Duration,
    /// Runs while the handler waits for the client; `None` otherwise.
    clock: Option<Pin<Box<Sleep>>>,
    stalled: bool,
}

impl StallLimit {
    pub fn new(body: Body, limit: Duration) -> StallLimit {
        StallLimit { body, limit, clock: None, stalled: false }
    }

    fn stall_error(&self) -> axum::Error {
        axum::Error::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the client sent nothing for {} s", self.limit.as_secs()),
        ))
    }
}

impl http_body::Body for StallLimit {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        // Once given up, always given up: a reader that asks again must not
        // take the silence for the end of the body (a truncated upload).
        if self.stalled {
            return Poll::Ready(Some(Err(self.stall_error())));
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            self.clock = None;
            return Poll::Ready(frame);
        }
        let limit = self.limit;
        let clock = self.clock.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match clock.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = true;
                self.clock = None;
                Poll::Ready(Some(Err(self.stall_error())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.stalled && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's stream whose writes may wait for the client at most
/// `limit` at a time (see the module).
pub struct WriteStallLimit<T> {
    io: T,
    limit: Duration,
    /// Runs while a write waits; `None` otherwise.
    clock: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteStallLimit<T> {
    pub fn new(io: T, limit: Duration) -> WriteStallLimit<T> {
        WriteStallLimit { io, limit, clock: None }
    }

    /// Passes on what a write did; a write still waiting when the clock
    /// that its first wait started runs out fails instead.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        done: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if done.is_ready() {
            self.clock = None;
            return done;
        }
        let limit = self.limit;
        let clock = self.clock.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match clock.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.clock = None;
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the client took nothing for {} s", limit.as_secs()),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStallLimit<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStallLimit<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let done = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, done)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let done = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, done)
    }

    /// hyper writes a response's head and body in one call when the stream
    /// takes several buffers at once.
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let done = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, done)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let done = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body fed by hand: each piece is sent when the test says so.
    fn channel_body() -> (tokio::sync::mpsc::Sender<Bytes>, Body) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
        });
        (tx, Body::from_stream(stream))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_sending_is_read_whole_however_long_it_takes() {
        let (tx, body) = channel_body();
        let mut body = StallLimit::new(body, Duration::from_secs(10));
        let sender = tokio::spawn(async move {
            for _ in 0..5 {
                // Each pause is below the limit; all of them together are not.
                tokio::time::sleep(Duration::from_secs(8)).await;
                tx.send(Bytes::from_static(b"piece")).await.unwrap();
            }
        });
        let mut read = Vec::new();
        while let Some(frame) = body.frame().await {
            read.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        sender.await.unwrap();
        assert_eq!(read, b"piecepiecepiecepiecepiece");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_falls_silent_fails_with_timed_out_and_stays_failed() {
        let (tx, body) = channel_body();
        let mut body = StallLimit::new(body, Duration::from_secs(10));
        tx.send(Bytes::from_static(b"first")).await.unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        let started = tokio::time::Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let io = err.into_inner().downcast::<std::io::Error>().unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        assert!(io.to_string().contains("nothing for 10 s"), "{io}");
        // Still failed when asked again, even though the client sends now.
        tx.send(Bytes::from_static(b"late")).await.unwrap();
        assert!(body.frame().await.unwrap().is_err());
        assert!(!http_body::Body::is_end_stream(&body));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_reader_never_takes_fails_with_timed_out() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A pipe that holds 1 KiB: once it is full, writes wait for the reader.
        let (client, server) = tokio::io::duplex(1024);
        let mut server = WriteStallLimit::new(server, Duration::from_secs(10));
        let (mut client_read, _client_write) = tokio::io::split(client);
        // A reader that takes a little now and then is waited for.
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 4096];
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_secs(8)).await;
                client_read.read_exact(&mut got[..1024]).await.unwrap();
            }
            client_read
        });
        server.write_all(&[7u8; 4096]).await.unwrap();
        server.flush().await.unwrap();
        let _still_open = reader.await.unwrap();
        // One that takes nothing more is not.
        server.write_all(&[7u8; 1024]).await.unwrap();
        let started = tokio::time::Instant::now();
        let err = server.write_all(b"more").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(err.to_string().contains("took nothing for 10 s"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_reader_spends_between_reads_does_not_count() {
        let (tx, body) = channel_body();
        let mut body = StallLimit::new(body, Duration::from_secs(10));
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // The server is busy for longer than the limit (writing what it
        // read); then the client takes a while, within the limit.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            tx.send(Bytes::from_static(b"b")).await.unwrap();
        });
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "b");
        sender.await.unwrap();
    }
}
