//! Nextcloud's OCS APIs: the envelope (v1 and v2, XML and JSON) and the
//! endpoints clients call at start: capabilities, the current user, and app
//! passwords.

mod endpoints;
mod envelope;
mod params;
mod provisioning;
mod sharing;

use axum::response::Response;
use http::request::Parts;
use strongroom_core::{
    Files, User,
    audit::{Audit, Origin},
    tokens::{AppToken, Tokens},
    users::Users,
};

pub use envelope::{Format, OcsError, Version, render};

/// The server version Strongroom reports to clients, as Nextcloud's numbering.
pub const VERSION: (u32, u32, u32) = (30, 0, 0);

/// The OCS service.
#[derive(Clone)]
pub struct Ocs {
    pub users: Users,
    pub files: Files,
    pub tokens: Tokens,
    pub audit: Audit,
    /// How long a browser session's password confirmation allows changes (seconds).
    pub confirm_secs: i64,
    pub twofactor: strongroom_core::twofactor::TwoFactor,
    /// The second-factor providers this server offers (email and SMS only
    /// when a channel is configured), for the capabilities.
    pub twofactor_providers: Vec<&'static str>,
    pub shares: strongroom_core::sharing::Shares,
    /// The address links are built on (`public_url`); without it, the
    /// request's host, over https when `tls`.
    pub public_url: Option<String>,
    pub tls: bool,
}

/// Who is calling, as the authentication middleware resolved it.
pub enum Caller<'a> {
    Anonymous,
    /// Authenticated with the account password.
    Password(&'a User),
    /// Authenticated with an app password.
    AppToken(&'a User, &'a AppToken),
    /// A browser session (its CSRF check already passed).
    Session(&'a User, &'a AppToken),
}

impl Caller<'_> {
    fn user(&self) -> Option<&User> {
        match self {
            Caller::Anonymous => None,
            Caller::Password(u) | Caller::AppToken(u, _) | Caller::Session(u, _) => Some(u),
        }
    }
}

/// Serves `/ocs/v1.php/…` and `/ocs/v2.php/…`; `path` is the part after the
/// `.php` (for example `/cloud/capabilities`); `body` the request body (the
/// caller limits its size).
pub async fn handle(
    ocs: &Ocs,
    version: Version,
    path: &str,
    parts: &Parts,
    body: &[u8],
    caller: Caller<'_>,
    origin: &Origin,
) -> Response {
    let format = Format::of(parts);
    let ctype = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let result = match params::Params::parse(parts.uri.query(), ctype, body) {
        Ok(params) => {
            let shared = sharing::route(ocs, parts, path, &params, &caller, origin).await;
            match shared {
                Some(r) => r,
                None => {
                    match provisioning::route(ocs, &parts.method, path, &params, &caller, origin)
                        .await
                    {
                        Some(r) => r,
                        None => endpoints::route(ocs, path, parts, &caller, origin).await,
                    }
                }
            }
        }
        Err(e) => Err(e),
    };
    render(version, format, result)
}
