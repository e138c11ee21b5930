//! Request ids, the one access-log line per request, and the panic guard.

use std::time::Instant;

use axum::{body::Body, extract::Request, middleware::Next, response::Response};
use futures_util::FutureExt;
use http::{HeaderValue, StatusCode};
use tracing::Instrument;

/// A client's `X-Request-ID` is kept when it is short and plain; otherwise we make one.
fn request_id(req: &Request) -> String {
    let given = req.headers().get("x-request-id").and_then(|v| v.to_str().ok());
    match given {
        Some(v) if !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            v.to_owned()
        }
        _ => hex::encode(rand::random::<[u8; 8]>()),
    }
}

/// Opens the request span and writes the access line: id, user, method, path,
/// status and duration. Never headers or bodies, so no secret reaches the log.
pub async fn trace(req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", id = %id, user = tracing::field::Empty);
    let started = Instant::now();
    async move {
        let mut res = next.run(req).await;
        let status = res.status().as_u16();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(target: "strongroom::access", %method, %path, status, ms = format!("{ms:.2}"), "request");
        if let Ok(v) = HeaderValue::from_str(&id) {
            res.headers_mut().insert("X-Request-ID", v);
        }
        res
    }
    .instrument(span)
    .await
}

/// Turns a panic in a handler into a 500 for that request alone.
pub async fn guard(req: Request, next: Next) -> Response {
    match std::panic::AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => {
            tracing::error!("a request handler panicked");
            let mut r = Response::new(Body::from("internal error"));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}
