//! Request ids, the one access-log line per request, and the task each
//! request runs in.

use std::time::Instant;

use axum::{body::Body, extract::Request, middleware::Next, response::Response};
use http::{HeaderValue, StatusCode};
use tracing::Instrument;

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

/// Opens the request span and writes the access line: id, user, method, path,
/// status and duration. Never headers or bodies, so no secret reaches the log.
///
/// The handler runs in a task of its own: when a client hangs up, hyper drops
/// the request's future, and a handler dropped between two steps of an upload
/// would leave work half done. In its own task it always finishes (a body cut
/// short fails the upload cleanly), and a panic becomes a 500 for this request.
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

pub async fn trace(mut req: Request, next: Next) -> Response {
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = loggable_path(req.uri().path());
    let span = tracing::info_span!("request", id = %id, user = tracing::field::Empty);
    let started = Instant::now();
    // The access line is written inside the task, so it is there even when the
    // client has gone before the answer.
    let handler = tokio::spawn(
        async move {
            let res = next.run(req).await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let status = res.status().as_u16();
            tracing::info!(target: "strongroom::access", %method, %path, status, ms = format!("{ms:.2}"), "request");
            res
        }
        .instrument(span),
    );
    let mut res = match handler.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(request = %id, error = %e, "a request handler failed");
            let mut r = Response::new(Body::from("internal error"));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("X-Request-ID", v);
    }
    res
}
