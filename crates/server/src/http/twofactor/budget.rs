//! Brute-force budgets for second factors. Answers count twice: per client
//! address (action "2fa", as passwords do) and per account (action
//! "2fa#…", counted under one address for everyone), so someone who knows
//! the password cannot go on guessing codes by changing addresses. Sending
//! codes is counted the same way ("2fa-send").

use std::net::{IpAddr, Ipv4Addr};

use sha2::{Digest, Sha256};
use strongroom_core::{Error, Result, audit::Event, bruteforce::Verdict};

use crate::{
    app::App,
    http::{auth::guarded, client::Client},
};

/// The address every account bucket is counted under.
const ACCOUNTS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The per-account action name (the column holds 64 characters; uids 64 too).
fn account_action(action: &str, uid: &str) -> String {
    let h = Sha256::digest(uid.to_lowercase().as_bytes());
    format!("{action}#{}", &hex::encode(h)[..40])
}

/// Counts one attempt against the account's budget; refuses past it.
async fn charge_account(app: &App, client: &Client, action: &str, uid: &str) -> Result<()> {
    match app.throttle.begin_attempt(ACCOUNTS, &account_action(action, uid), uid).await? {
        Verdict::Blocked => {
            let ev = Event::new("throttle.blocked")
                .target(uid)
                .detail(serde_json::json!({ "action": action, "per": "account" }));
            app.audit.record(&client.origin(), ev);
            Err(Error::Busy("too many failed attempts; try again later".into()))
        }
        Verdict::Wait(d) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
    }
}

/// Checks a second-factor answer under both budgets; a success clears both.
pub async fn answer<F, Fut>(app: &App, client: &Client, uid: &str, verify: F) -> Result<Option<()>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Option<()>>>,
{
    charge_account(app, client, "2fa", uid).await?;
    let r = guarded(app, client, "2fa", uid, verify).await?;
    if r.is_some() {
        app.throttle.succeeded(ACCOUNTS, &account_action("2fa", uid), uid).await?;
    }
    Ok(r)
}

/// Forgets the account's spent budgets (an admin reset its factors: the
/// user starts over, whatever was guessed before).
pub async fn clear_account(app: &App, uid: &str) -> Result<()> {
    for action in ["2fa", "2fa-send"] {
        app.throttle.succeeded(ACCOUNTS, &account_action(action, uid), uid).await?;
    }
    Ok(())
}

/// Counts a code sent to the user, per address and per account.
pub async fn send(app: &App, client: &Client, uid: &str) -> Result<()> {
    charge_account(app, client, "2fa-send", uid).await?;
    match app.throttle.begin_attempt(client.address, "2fa-send", uid).await? {
        Verdict::Blocked => Err(Error::Busy("too many codes sent; try again later".into())),
        Verdict::Wait(d) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
    }
}
