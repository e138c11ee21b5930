//! Public links: the page at `/s/TOKEN` and WebDAV at
//! `/public.php/dav/files/TOKEN/…` (and the legacy `/public.php/webdav/`,
//! where the token is the Basic user name). Both pass the same gate: the
//! link must be usable now (`Shares::link` applies expiry and the current
//! policy), and a password-protected link needs its password, given in
//! this request (Basic) or earlier on the page (a signed cookie bound to the
//! password). Wrong passwords count against the visitor's address (past
//! the budget it is refused with 429) and against the link itself (past the
//! budget every attempt on it waits the longest delay, but is not refused:
//! guesses from elsewhere must not lock the link's visitors out). Every public request is written to the audit
//! log. Unknown, expired and refused links all look the same: 404.

pub mod dav;
pub mod page;

use std::net::{IpAddr, Ipv4Addr};

use http::HeaderMap;
use strongroom_core::{
    Error,
    audit::{Event, Origin},
    bruteforce::Verdict,
    secret::Secret,
    sharing::PublicLink,
};

use super::client::{Client, cookie};
use crate::app::App;

/// The throttle action for link passwords (Nextcloud's name).
const ACTION: &str = "publicLinkAuth";
/// The address under which failures against one link are counted, whatever
/// address they come from (the action names the link).
const PER_LINK: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The name of the cookie proving a link's password was given.
pub fn pass_cookie(share_id: i64) -> String {
    format!("sr_link_{share_id}")
}

/// What a password attempt came to.
pub enum Attempt {
    Right,
    Wrong,
    Throttled,
}

/// Whether the visitor already proved the password of a protected link.
pub async fn has_pass(app: &App, headers: &HeaderMap, link: &PublicLink) -> Result<bool, Error> {
    if link.share.password_hash.is_none() {
        return Ok(true);
    }
    match cookie(headers, &pass_cookie(link.share.id)) {
        Some(v) => app.shares.check_pass(&link.share, v).await,
        None => Ok(false),
    }
}

/// Checks a link password, throttled per address and per link.
pub async fn try_password(
    app: &App,
    client: &Client,
    link: &PublicLink,
    password: &Secret,
) -> Result<Attempt, Error> {
    let per_link = format!("{ACTION}:{}", link.share.id);
    let who = format!("link:{}", link.share.id);
    let by_address = app.throttle.begin_attempt(client.address, ACTION, &who).await?;
    let by_link = app.throttle.begin_attempt(PER_LINK, &per_link, &who).await?;
    // Past the budget an address is refused; a link only slows down to the
    // longest delay, so guesses from elsewhere cannot lock its visitors out.
    let link_wait = match by_link {
        Verdict::Blocked => app.throttle.max_delay(),
        Verdict::Wait(d) => d,
    };
    let wait = match by_address {
        Verdict::Blocked => {
            audit(app, &client.origin(), link, "share.password_throttled", serde_json::json!({}));
            return Ok(Attempt::Throttled);
        }
        Verdict::Wait(d) => d.max(link_wait),
    };
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    if app.shares.check_password(&link.share, password).await? {
        app.throttle.succeeded(client.address, ACTION, &who).await?;
        app.throttle.succeeded(PER_LINK, &per_link, &who).await?;
        return Ok(Attempt::Right);
    }
    audit(app, &client.origin(), link, "share.password_failed", serde_json::json!({}));
    Ok(Attempt::Wrong)
}

/// What a visitor's address may do before a link is looked up: refused
/// past the budget of wrong passwords and unknown tokens.
pub async fn admit(app: &App, client: &Client) -> Result<bool, Error> {
    Ok(app.throttle.check(client.address, ACTION).await? != Verdict::Blocked)
}

/// A token that names no usable link counts like a wrong password, and is
/// answered after the same growing delay: tokens cannot be enumerated fast.
pub async fn unknown_token(app: &App, client: &Client) -> Result<(), Error> {
    if let Verdict::Wait(d) = app.throttle.check(client.address, ACTION).await? {
        tokio::time::sleep(d).await;
    }
    app.throttle.failed(client.address, ACTION, "unknown link").await
}

/// One line of the audit log about a link.
pub fn audit(
    app: &App,
    origin: &Origin,
    link: &PublicLink,
    action: &str,
    detail: serde_json::Value,
) {
    let actor = format!("link:{}", link.share.id);
    let target = link.share.node_id.to_string();
    let mut d = serde_json::json!({ "share": link.share.id, "owner": link.owner.uid });
    if let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (&mut d, detail) {
        a.extend(b);
    }
    app.audit.record(origin, Event::new(action).actor(&actor).target(&target).detail(d));
}
