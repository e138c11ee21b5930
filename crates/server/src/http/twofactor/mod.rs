//! Second factors over HTTP: the login challenge (`challenge.rs`), setting
//! factors up (`settings.rs`), passwordless login with a passkey
//! (`passkey.rs`), the admin policy (`admin.rs`) and sending one-time codes
//! (`send.rs`). Pages that run WebAuthn load `/index.php/js/twofactor.js`
//! (no inline script), admitted by the response's CSP nonce.

pub mod admin;
pub mod budget;
pub mod challenge;
pub mod passkey;
pub mod send;
pub mod settings;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

use super::{client::Client, headers::CspNonce, pages::page};
use crate::app::App;

/// The relying party: `public_url` when configured, else the request's own
/// origin (the browser checks that the page's origin matches, and keys are
/// bound to the host name, so a key made for one host works only there).
/// Why [`relying_party`] found none, for the page to show: WebAuthn accepts
/// no IP address as the name keys are bound to.
pub const NO_RELYING_PARTY: &str = "security keys and passkeys need this server's host name: \
     open it as localhost or by its name over HTTPS (set public_url behind a proxy), not by an IP address";

pub fn relying_party(app: &App, client: &Client, headers: &http::HeaderMap) -> Option<Webauthn> {
    let origin = match &app.security.public_url {
        Some(u) => Url::parse(u).ok()?,
        None => {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            let scheme = if client.secure { "https" } else { "http" };
            Url::parse(&format!("{scheme}://{host}")).ok()?
        }
    };
    let rp_id = origin.host_str()?.to_owned();
    WebauthnBuilder::new(&rp_id, &origin).ok()?.rp_name("Strongroom").build().ok()
}

/// A page that loads the WebAuthn script, admitted by this response's
/// CSP nonce (the policy stays nonce-only).
pub fn script_page(nonce: &CspNonce, title: &str, body: &str) -> Response {
    let body = format!(
        "{body}<script nonce=\"{}\" src=\"/index.php/js/twofactor.js\"></script>",
        super::pages::escape(nonce.value())
    );
    page(title, &body).into_response()
}

/// `GET /index.php/js/twofactor.js`.
pub async fn script() -> Response {
    let mut r = include_str!("twofactor.js").into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    r
}

/// A refusal with Nextcloud's JSON body (`{"message": …}`).
pub fn refuse(status: http::StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "message": message }))).into_response()
}

/// The value for a query parameter.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A provider's name on pages.
pub fn label(provider: &str) -> &'static str {
    match provider {
        "totp" => "Authenticator app (TOTP)",
        "backup_codes" => "Backup code",
        "webauthn" => "Security key or passkey",
        "email" => "Code by email",
        "sms" => "Code by SMS",
        _ => "Unknown",
    }
}
