//! A client that stops sending a request body is given up after
//! `client_stall_secs`.
//!
//! hyper bounds the wait for a request's headers (and so the idle time of a
//! kept-alive connection), not for its body: a client that announced a body
//! (`Content-Length: 1000000`) and then sent nothing held its connection,
//! its request task and, for an upload, a half-written blob for as long as
//! it kept the socket open. Every request body is wrapped in [`StallLimit`]:
//! the clock runs only while the handler waits for the client (time the
//! server spends between two reads does not count), starts again with every
//! piece that arrives, and when it runs out the body fails with an I/O error
//! of kind `TimedOut`, which an upload turns into 408 and every other reader
//! into its usual refusal of a body it could not read. The failed body is
//! not drained, so hyper closes the connection after the answer.
//!
//! A clock that is noticed to have run out well after it did (the process
//! was paused, or its thread busy) gets a little more time: what the client
//! sent meanwhile may still wait in the socket, unread only because the
//! server was not running.
//!
//! A client that stops taking an answer is not limited here but by the
//! kernel (`listen.rs`, `limit_stalled_sends`, with the same limit). The
//! only sign a stream gives here is that a write waits, and Linux wakes a
//! waiting writer only once a third of the send buffer (up to 4 MiB) has
//! drained: a client reading steadily at 20 KB/s looked stalled for a
//! minute and a half to a timer on the writes.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

/// How late a clock may be noticed to have run out before the server, not
/// the client, is taken to have been held up.
const LATE: Duration = Duration::from_millis(500);

/// The time a client then gets for what it may have sent meanwhile.
const GRACE: Duration = Duration::from_secs(1);

pub struct StallLimit {
    body: Body,
    limit: Duration,
    /// Runs while the handler waits for the client; `None` otherwise.
    clock: Option<Pin<Box<Sleep>>>,
    stalled: bool,
    /// Told when the body is given up, for the request's answer
    /// ([`Stalled::answer`]).
    told: Stalled,
}

/// Whether a request's body was given up, known after its handler ran.
#[derive(Clone, Default)]
pub struct Stalled(Arc<AtomicBool>);

impl Stalled {
    /// The answer to a request whose body was given up: a handler that
    /// could not read it answered with its generic 400 (the forms' and
    /// JSON extractors' "failed to buffer the body"); the client is told
    /// 408, as uploads and OCS requests tell it, and why. The answer's
    /// other headers (the security headers among them) stay.
    pub fn answer(
        &self,
        res: axum::response::Response,
        limit: Duration,
    ) -> axum::response::Response {
        if !self.0.load(Ordering::Relaxed) || res.status() != http::StatusCode::BAD_REQUEST {
            return res;
        }
        let (mut head, _) = res.into_parts();
        head.status = http::StatusCode::REQUEST_TIMEOUT;
        head.headers.remove(http::header::CONTENT_LENGTH);
        let plain = http::HeaderValue::from_static("text/plain; charset=utf-8");
        head.headers.insert(http::header::CONTENT_TYPE, plain);
        let why = format!("the client sent nothing for {} s", limit.as_secs());
        axum::response::Response::from_parts(head, Body::from(why))
    }
}

impl StallLimit {
    pub fn new(body: Body, limit: Duration, told: Stalled) -> StallLimit {
        StallLimit { body, limit, clock: None, stalled: false, told }
    }

    /// Whether the client's time has run out, starting the clock when it
    /// is not running (see the module on a clock noticed late).
    fn run_out(&mut self, cx: &mut Context<'_>) -> bool {
        let limit = self.limit;
        let clock = self.clock.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        loop {
            if clock.as_mut().poll(cx).is_pending() {
                return false;
            }
            let now = tokio::time::Instant::now();
            if now.duration_since(clock.deadline()) <= LATE {
                return true;
            }
            clock.as_mut().reset(now + GRACE.min(limit));
        }
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
        if !self.run_out(cx) {
            return Poll::Pending;
        }
        self.stalled = true;
        self.told.0.store(true, Ordering::Relaxed);
        self.clock = None;
        Poll::Ready(Some(Err(self.stall_error())))
    }

    fn is_end_stream(&self) -> bool {
        !self.stalled && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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
        let mut body = StallLimit::new(body, Duration::from_secs(10), Stalled::default());
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
        let mut body = StallLimit::new(body, Duration::from_secs(10), Stalled::default());
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
    async fn a_clock_noticed_late_gives_what_the_client_sent_meanwhile_a_chance() {
        let (tx, body) = channel_body();
        let mut body = StallLimit::new(body, Duration::from_secs(10), Stalled::default());
        // The handler starts waiting: the clock starts.
        let first = tokio::time::timeout(Duration::ZERO, body.frame()).await;
        assert!(first.is_err(), "nothing has come yet");
        // The server is held up for 30 s; what the client sent meanwhile is
        // read only once it runs again, after the clock is looked at.
        tokio::time::advance(Duration::from_secs(30)).await;
        let sender = tokio::spawn(async move {
            tx.send(Bytes::from_static(b"sent meanwhile")).await.unwrap();
            tx
        });
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "sent meanwhile");
        // After that, silence is given up after the limit as ever.
        let _tx = sender.await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(body.frame().await.unwrap().is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_silent_through_the_grace_is_given_up_all_the_same() {
        let (_tx, body) = channel_body();
        let mut body = StallLimit::new(body, Duration::from_secs(10), Stalled::default());
        let first = tokio::time::timeout(Duration::ZERO, body.frame()).await;
        assert!(first.is_err());
        tokio::time::advance(Duration::from_secs(30)).await;
        let started = tokio::time::Instant::now();
        assert!(body.frame().await.unwrap().is_err());
        assert_eq!(started.elapsed(), GRACE);
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_reader_spends_between_reads_does_not_count() {
        let (tx, body) = channel_body();
        let mut body = StallLimit::new(body, Duration::from_secs(10), Stalled::default());
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
