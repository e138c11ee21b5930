//! Who is on the other end: the client address (through trusted proxies only),
//! its user agent and the request id, as audit events record them; and the
//! cookies this server sets.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use http::{HeaderMap, header};
use strongroom_core::{audit::Origin, net::client_address};

use super::requests::RequestId;
use crate::app::App;

#[derive(Clone, Debug)]
pub struct Client {
    pub address: IpAddr,
    pub user_agent: String,
    pub request_id: String,
    /// The client reached us over HTTPS: served by this process, or by a
    /// trusted proxy that says so (`X-Forwarded-Proto: https`).
    pub secure: bool,
}

impl Client {
    pub fn of(app: &App, req: &Request) -> Client {
        let peer = peer_of(req);
        let h = req.headers();
        let text = |name| h.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
        let xff: Vec<&str> =
            h.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let address = client_address(peer, &xff, text("forwarded"), &app.security.trusted_proxies);
        let user_agent = at_most_250_chars(text(header::USER_AGENT.as_str()).unwrap_or(""));
        let request_id =
            req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        let secure = secure_origin(app, peer, h);
        Client { address, user_agent, request_id, secure }
    }

    /// [`Client::of`]'s `secure` alone, for every response's headers.
    pub fn is_secure(app: &App, req: &Request) -> bool {
        secure_origin(app, peer_of(req), req.headers())
    }

    pub fn origin(&self) -> Origin {
        Origin {
            request_id: self.request_id.clone(),
            address: self.address.to_string(),
            user_agent: self.user_agent.clone(),
        }
    }
}

/// The first 250 characters of `s` (a user agent as recorded): counted only
/// when its length in bytes does not already tell.
fn at_most_250_chars(s: &str) -> String {
    match s.len() <= 250 {
        true => s.to_owned(),
        false => s.chars().take(250).collect(),
    }
}

/// The address the connection comes from.
fn peer_of(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip())
}

/// Served over HTTPS: here, or by a trusted proxy that says so.
fn secure_origin(app: &App, peer: IpAddr, h: &http::HeaderMap) -> bool {
    let proxied_https = || {
        app.security.trusted_proxies.iter().any(|c| c.contains(peer))
            && h.get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
    };
    app.security.tls || proxied_https()
}

/// The value of a cookie sent with the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Names of the cookies: over HTTPS they carry the `__Host-` prefix, which
/// browsers accept only from a secure origin, for the whole site.
pub fn cookie_name(base: &str, secure: bool) -> String {
    if secure { format!("__Host-{base}") } else { base.to_owned() }
}

pub const SESSION: &str = "sr_session";
pub const LAX: &str = "nc_sameSiteCookielax";
pub const STRICT: &str = "nc_sameSiteCookiestrict";
pub const LOGIN_CSRF: &str = "sr_login";

/// A `Set-Cookie` value: HttpOnly, path `/`, `Secure` over HTTPS.
pub fn set_cookie(
    name: &str,
    value: &str,
    same_site: &str,
    max_age: Option<i64>,
    secure: bool,
) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}
