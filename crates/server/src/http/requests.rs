//! Request ids, the one access-log line per request, and the task each
//! request runs in.

use std::{
    panic::AssertUnwindSafe,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    body::Body,
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use futures_util::{FutureExt, future::Either};
use http::{HeaderValue, Method, StatusCode};
use tracing::Instrument;

use super::stall::{StallLimit, Stalled};
use crate::app::App;

const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// A client's `X-Request-ID` is kept when it is short and plain; otherwise we make one.
fn request_id(req: &Request) -> String {
    let given = req.headers().get("x-request-id").and_then(|v| v.to_str().ok());
    match given {
        Some(v)
            if !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            v.to_owned()
        }
        _ => hex::encode(rand::random::<[u8; 8]>()),
    }
}

/// The request's id, for handlers and audit events.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The path as logged: secrets that travel in URLs (Login Flow tokens) are cut out.
fn loggable_path(path: &str) -> String {
    match path.strip_prefix("/index.php/login/v2/flow/") {
        Some(_) => "/index.php/login/v2/flow/…".to_owned(),
        None => path.to_owned(),
    }
}

/// Opens the request span and writes the access line: id, user, method, path,
/// status and duration. Never headers or bodies, so no secret reaches the log.
///
/// A request that may change something runs in a task of its own: when a
/// client hangs up, hyper drops the request's future, and a handler dropped
/// between two steps of an upload would leave work half done. In its own task
/// it always finishes (a body cut short fails the upload cleanly). A WebDAV
/// read ([`reads_only`]) runs in place instead, which spares a task and a
/// wake-up per request; dropping it leaves nothing half done, and its access
/// line then says the client closed (499). Either way a panic becomes a 500
/// for this request alone. A body that stops arriving is given up
/// (`stall.rs`).
pub async fn trace(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    // Only a request with a body can stall (most GETs have none).
    let limit = app.security.client_stall;
    let stalled = (!http_body::Body::is_end_stream(req.body())).then(Stalled::default);
    if let Some(told) = stalled.clone() {
        req = req.map(|b| Body::new(StallLimit::new(b, limit, told)));
    }
    let in_place = reads_only(req.method(), req.uri().path());
    // Its reads may share one database connection and transaction (see
    // `strongroom_store::with_read_snapshot`); a body it carries ends the
    // snapshot whenever the request waits for it (`ReleasingBody`).
    let one_snapshot =
        in_place && (matches!(*req.method(), Method::GET | Method::HEAD) || is_propfind(&req));
    if one_snapshot && !http_body::Body::is_end_stream(req.body()) {
        req = req.map(|b| Body::new(ReleasingBody(b)));
    }
    let mut line = AccessLine {
        method: req.method().clone(),
        path: loggable_path(req.uri().path()),
        started: Instant::now(),
        status: None,
    };
    let span = tracing::info_span!("request", id = %id, user = tracing::field::Empty);
    let handler = async move {
        let res = next.run(req).await;
        let res = match &stalled {
            Some(s) => s.answer(res, limit),
            None => res,
        };
        line.status = Some(res.status().as_u16());
        drop(line);
        res
    }
    .instrument(span);
    let outcome = if in_place {
        let handler = match one_snapshot {
            true => Either::Left(strongroom_store::with_read_snapshot(handler)),
            false => Either::Right(handler),
        };
        AssertUnwindSafe(handler).catch_unwind().await.map_err(|_| "it panicked".to_owned())
    } else {
        tokio::spawn(handler).await.map_err(|e| e.to_string())
    };
    let mut res = match outcome {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(request = %id, error = %e, "a request handler failed");
            let mut r = Response::new(Body::from("internal error"));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID, v);
    }
    res
}

/// WebDAV methods that only read. Their handlers write at most single
/// statements on the side (a token's last use, a failed login's count), each
/// complete in itself, so they may stop at any await.
fn reads_only(method: &Method, path: &str) -> bool {
    path.starts_with("/remote.php/")
        && (matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
            || method.as_str() == "PROPFIND")
}

fn is_propfind(req: &Request) -> bool {
    req.method().as_str() == "PROPFIND"
}

/// The body of a request whose reads run in one snapshot. Each time it is
/// polled (a PROPFIND reading its XML, a refusal draining what the client
/// sent) it first ends the snapshot, which gives the request's database
/// connection back: a client that announces a body and sends it slowly, or
/// never, must not hold a connection meanwhile, authenticated or not.
struct ReleasingBody(Body);

impl http_body::Body for ReleasingBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        strongroom_store::end_read_snapshot();
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// The access line of one request, written when it is dropped: after the
/// handler; when the handler panicked (500, as the client is answered); or
/// when the client hung up first (499, "client closed", as nginx logs it).
struct AccessLine {
    method: Method,
    path: String,
    started: Instant,
    status: Option<u16>,
}

impl Drop for AccessLine {
    fn drop(&mut self) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let status = match self.status {
            Some(s) => s,
            None if std::thread::panicking() => 500,
            None => 499,
        };
        let (method, path) = (&self.method, &self.path);
        tracing::info!(target: "strongroom::access", %method, %path, status, ms = format!("{ms:.2}"), "request");
    }
}
