//! Security headers on every response: a Content-Security-Policy with a nonce
//! fresh for each response (pages carry no inline script or style, so the
//! nonce only admits what a page explicitly marks), no framing, no sniffing,
//! no referrer, no indexing, and HSTS over HTTPS (served here or by a
//! trusted proxy).
//! A response that brings its own stricter policy (downloads) keeps it.

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use base64::Engine;
use http::{HeaderName, HeaderValue, header};

use crate::app::App;

// Named once: a name given as text is parsed again on every insert.
const X_ROBOTS_TAG: HeaderName = HeaderName::from_static("x-robots-tag");
const X_PERMITTED_CROSS_DOMAIN_POLICIES: HeaderName =
    HeaderName::from_static("x-permitted-cross-domain-policies");

/// This response's nonce, for a page that loads a script (`<script nonce=…>`).
#[derive(Clone)]
pub struct CspNonce(pub String);

pub async fn apply(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let nonce = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 18]>());
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let secure = super::client::Client::is_secure(&app, &req);
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let csp = format!(
            "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_ROBOTS_TAG, HeaderValue::from_static("noindex, nofollow"));
    h.insert(X_PERMITTED_CROSS_DOMAIN_POLICIES, HeaderValue::from_static("none"));
    if secure {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    // Pages carry a per-response nonce and personal data: never cached.
    if h.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html")) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
