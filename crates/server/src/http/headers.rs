//! Security headers on every response: a Content-Security-Policy, no
//! framing, no sniffing, no referrer, no indexing, and HSTS over HTTPS
//! (served here or by a trusted proxy).
//!
//! The policy admits no script or style at all, except on a page that asked
//! for this response's nonce ([`CspNonce::value`]; pages carry no inline
//! script or style, so the nonce only admits what such a page explicitly
//! marks). The nonce is made only when asked for: the WebDAV and OCS
//! answers, nearly every response, need none, and a fresh random value and
//! its policy text for each of them was work for nothing.
//! A response that brings its own stricter policy (downloads) keeps it.

use std::sync::{Arc, OnceLock};

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

/// The policy of a response whose page asked for no nonce: nothing runs.
const NO_SCRIPT_POLICY: &str = "default-src 'none'; img-src 'self' data:; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// This response's nonce, for a page that loads a script (`<script nonce=…>`).
#[derive(Clone, Default)]
pub struct CspNonce(Arc<OnceLock<String>>);

impl CspNonce {
    /// The nonce, made on the first call; the response's policy then admits
    /// the scripts and styles that carry it.
    pub fn value(&self) -> &str {
        self.0.get_or_init(|| {
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 18]>())
        })
    }

    /// The policy for the response: with the nonce if a page took it.
    fn policy(&self) -> HeaderValue {
        let Some(nonce) = self.0.get() else {
            return HeaderValue::from_static(NO_SCRIPT_POLICY);
        };
        let with_nonce = format!(
            "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        // A nonce is base64, always a valid header value.
        HeaderValue::from_str(&with_nonce).unwrap_or(HeaderValue::from_static(NO_SCRIPT_POLICY))
    }
}

pub async fn apply(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let nonce = CspNonce::default();
    req.extensions_mut().insert(nonce.clone());
    let secure = super::client::Client::is_secure(&app, &req);
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, nonce.policy());
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
    // Pages carry personal data (and some a per-response nonce): never cached.
    if h.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html")) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
