//! Nextcloud's sharing API (`/apps/files_sharing/api/v1/…`): create, list,
//! read, update and delete user, group and public link shares. The rules
//! live in `strongroom_core::sharing`; this module reads parameters, picks
//! what the caller may see, writes the share JSON and the audit lines.

mod json;
mod sharees;

use http::Method;
use serde_json::{Value, json};
use strongroom_core::{
    User,
    audit::{Event, Origin},
    secret::Secret,
    sharing::{Expiry, NewShare, Share, ShareError, ShareUpdate, parse_date},
};

use crate::{Caller, Ocs, OcsError, params::Params};

const PREFIX: &str = "/apps/files_sharing/api/v1";

/// Routes a sharing call; `None` when the path is not one of them.
pub async fn route(
    ocs: &Ocs,
    parts: &http::request::Parts,
    path: &str,
    params: &Params,
    caller: &Caller<'_>,
    origin: &Origin,
) -> Option<Result<Value, OcsError>> {
    let rest = path.strip_prefix(PREFIX)?;
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let Some(me) = caller.user() else { return Some(Err(OcsError::unauthorised())) };
    // A browser session changes shares only with its CSRF token, checked by
    // the middleware; nothing more is asked here, as in Nextcloud.
    let base = base_url(ocs, parts);
    let cx = Cx { ocs, me, origin, base: &base };
    Some(dispatch(&cx, &parts.method, &segs, params).await)
}

/// What every sharing call needs.
pub(crate) struct Cx<'a> {
    pub ocs: &'a Ocs,
    pub me: &'a User,
    pub origin: &'a Origin,
    /// Scheme and host public links are built on.
    pub base: &'a str,
}

fn base_url(ocs: &Ocs, parts: &http::request::Parts) -> String {
    if let Some(u) = &ocs.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host =
        parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("{}://{host}", if ocs.tls { "https" } else { "http" })
}

async fn dispatch(
    cx: &Cx<'_>,
    method: &Method,
    segs: &[&str],
    p: &Params,
) -> Result<Value, OcsError> {
    match (method.as_str(), segs) {
        ("GET", ["shares"]) => list(cx, p).await,
        ("POST", ["shares"]) => create(cx, p).await,
        ("GET", ["shares", "pending"]) => Ok(json!([])),
        ("GET", ["sharees"]) => sharees::search(cx, p).await,
        ("GET", ["shares", "inherited"]) => {
            json::inherited(cx, p.get("path").unwrap_or("")).await.map(Value::Array)
        }
        ("POST", ["shares", "pending", id] | ["pending", id]) => accept(cx, id).await,
        ("DELETE", ["pending", id]) => delete(cx, id).await,
        ("GET", ["deletedshares"]) => left(cx).await,
        ("POST", ["deletedshares", id]) => rejoin(cx, id).await,
        ("GET", ["shares", id]) => get_one(cx, id).await,
        ("PUT", ["shares", id]) => update(cx, id, p).await,
        ("DELETE", ["shares", id]) => delete(cx, id).await,
        _ => Err(OcsError::not_found("Invalid query, please check the syntax")),
    }
}

fn refusal(e: ShareError) -> OcsError {
    OcsError::new(e.status, e.message)
}

fn internal(e: strongroom_core::Error) -> OcsError {
    refusal(e.into())
}

/// A boolean parameter: `true`/`false` (any case) or `1`/`0`; anything else
/// is refused rather than read as false.
fn flag(p: &Params, key: &str) -> Result<Option<bool>, OcsError> {
    match p.get(key).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(Some(false)),
        Some(_) => Err(OcsError::new(400, format!("{key} must be true or false"))),
    }
}

fn number(p: &Params, key: &str) -> Result<Option<i64>, OcsError> {
    match p.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| OcsError::new(400, format!("{key} must be a number"))),
    }
}

fn expiry(p: &Params) -> Result<Option<Expiry>, OcsError> {
    match p.get("expireDate") {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(Some(Expiry::Never)),
        Some(v) => parse_date(v).map(|t| Some(Expiry::At(t))).map_err(refusal),
    }
}

/// `hideDownload`, or the download attribute Nextcloud's newer clients send.
fn hide_download(p: &Params) -> Result<Option<bool>, OcsError> {
    if let Some(h) = flag(p, "hideDownload")? {
        return Ok(Some(h));
    }
    let Some(raw) = p.get("attributes").filter(|a| !a.is_empty()) else { return Ok(None) };
    let list: Vec<Value> = serde_json::from_str(raw)
        .map_err(|_| OcsError::new(400, "Formatted attributes are not valid JSON"))?;
    Ok(list.iter().find_map(|a| {
        (a["scope"] == "permissions" && a["key"] == "download").then(|| a["value"] == false)
    }))
}

fn share_id(id: &str) -> Result<i64, OcsError> {
    id.parse().map_err(|_| OcsError::new(404, "Wrong share ID, share does not exist"))
}

fn audit(ocs: &Ocs, origin: &Origin, me: &User, action: &str, share: &Share, extra: Value) {
    let mut detail = json!({
        "share_type": share.share_type,
        "node": share.node_id,
        "owner": share.owner_id,
        "permissions": share.permissions,
        "expires": strongroom_core::sharing::Shares::expiration_text(share),
        "password": share.password_hash.is_some(),
        "hide_download": share.hide_download,
    });
    if let (Value::Object(d), Value::Object(e)) = (&mut detail, extra) {
        d.extend(e);
    }
    let id = share.id.to_string();
    ocs.audit.record(origin, Event::new(action).actor(&me.uid).target(&id).detail(detail));
}

fn audit_refusal(ocs: &Ocs, origin: &Origin, me: &User, action: &str, target: &str, e: &OcsError) {
    let detail = json!({ "outcome": "refused", "code": e.code, "reason": e.message });
    ocs.audit.record(origin, Event::new(action).actor(&me.uid).target(target).detail(detail));
}

async fn create(cx: &Cx<'_>, p: &Params) -> Result<Value, OcsError> {
    let (ocs, me, origin) = (cx.ocs, cx.me, cx.origin);
    let req = NewShare {
        path: p.get("path").map(str::to_owned),
        share_type: number(p, "shareType")?,
        share_with: p.get("shareWith").map(str::to_owned),
        permissions: number(p, "permissions")?,
        public_upload: flag(p, "publicUpload")?,
        password: p.get("password").map(Secret::new),
        expiry: expiry(p).map_err(|e| OcsError::new(404, e.message))?,
        note: p.get("note").map(str::to_owned),
        label: p.get("label").map(str::to_owned),
        hide_download: hide_download(p)?,
    };
    match ocs.shares.create(me, req).await {
        Ok(share) => {
            audit(ocs, origin, me, "share.created", &share, json!({}));
            json::share(cx, &share).await
        }
        Err(e) => {
            let e = refusal(e);
            audit_refusal(ocs, origin, me, "share.created", p.get("path").unwrap_or(""), &e);
            Err(e)
        }
    }
}

/// A share the caller may see: made by it, on its node, or received.
async fn visible(cx: &Cx<'_>, id: &str) -> Result<Share, OcsError> {
    let (ocs, me) = (cx.ocs, cx.me);
    let id = share_id(id)?;
    let missing = || OcsError::new(404, "Wrong share ID, share does not exist");
    let share = ocs.shares.get(id).await.map_err(internal)?.ok_or_else(missing)?;
    if share.sharer_id == me.id || share.owner_id == me.id {
        return Ok(share);
    }
    let received = ocs.shares.mounts(me).await.map_err(internal)?;
    if received.iter().any(|m| m.node.id == share.node_id) && recipient_of(ocs, me, &share).await? {
        return Ok(share);
    }
    Err(missing())
}

async fn recipient_of(ocs: &Ocs, me: &User, share: &Share) -> Result<bool, OcsError> {
    Ok(match (share.recipient_user, share.recipient_group) {
        (Some(u), _) => u == me.id,
        (_, Some(g)) => {
            let groups = ocs.users.groups().await.map_err(internal)?;
            groups
                .iter()
                .any(|gr| gr.id == g && gr.members.iter().any(|m| m.eq_ignore_ascii_case(&me.uid)))
        }
        _ => false,
    })
}

async fn get_one(cx: &Cx<'_>, id: &str) -> Result<Value, OcsError> {
    let share = visible(cx, id).await?;
    Ok(json!([json::share(cx, &share).await?]))
}

async fn update(cx: &Cx<'_>, id: &str, p: &Params) -> Result<Value, OcsError> {
    let (ocs, me, origin) = (cx.ocs, cx.me, cx.origin);
    let share = visible(cx, id).await?;
    let up = ShareUpdate {
        permissions: number(p, "permissions")?,
        public_upload: flag(p, "publicUpload")?,
        password: p.get("password").map(Secret::new),
        expiry: expiry(p)?,
        note: p.get("note").map(str::to_owned),
        label: p.get("label").map(str::to_owned),
        hide_download: hide_download(p)?,
    };
    match ocs.shares.update(me, &share, up).await {
        Ok(new) => {
            audit(ocs, origin, me, "share.updated", &new, json!({}));
            json::share(cx, &new).await
        }
        Err(e) => {
            let e = refusal(e);
            audit_refusal(ocs, origin, me, "share.updated", id, &e);
            Err(e)
        }
    }
}

async fn delete(cx: &Cx<'_>, id: &str) -> Result<Value, OcsError> {
    let (ocs, me, origin) = (cx.ocs, cx.me, cx.origin);
    let share = visible(cx, id).await?;
    if share.sharer_id == me.id || share.owner_id == me.id {
        for gone in ocs.shares.delete(share.id).await.map_err(internal)? {
            audit(ocs, origin, me, "share.deleted", &gone, json!({}));
        }
        return Ok(json!([]));
    }
    ocs.shares
        .unshare_from_self(&share, me.id)
        .await
        .map_err(|_| OcsError::new(403, "Could not delete share"))?;
    audit(ocs, origin, me, "share.left", &share, json!({}));
    Ok(json!([]))
}

/// Shares are accepted on arrival; accepting one that is visible succeeds.
async fn accept(cx: &Cx<'_>, id: &str) -> Result<Value, OcsError> {
    visible(cx, id).await?;
    Ok(json!([]))
}

async fn left(cx: &Cx<'_>) -> Result<Value, OcsError> {
    let (ocs, me) = (cx.ocs, cx.me);
    let mut out = Vec::new();
    for share in ocs.shares.left_by(me.id).await.map_err(internal)? {
        // Not mounted any more: said where it would appear again.
        let mut v = json::share(cx, &share).await?;
        v["path"] = json!(format!("/{}", share.target));
        v["file_target"] = v["path"].clone();
        out.push(v);
    }
    Ok(Value::Array(out))
}

async fn rejoin(cx: &Cx<'_>, id: &str) -> Result<Value, OcsError> {
    let (ocs, me, origin) = (cx.ocs, cx.me, cx.origin);
    let id = share_id(id)?;
    let share = ocs
        .shares
        .rejoin(id, me.id)
        .await
        .map_err(internal)?
        .ok_or_else(|| OcsError::new(404, "Share not found"))?;
    audit(ocs, origin, me, "share.restored", &share, json!({}));
    Ok(json!([]))
}

async fn list(cx: &Cx<'_>, p: &Params) -> Result<Value, OcsError> {
    let shares = if flag(p, "shared_with_me")? == Some(true) {
        json::received(cx, p.get("path")).await?
    } else {
        json::outgoing(
            cx,
            p.get("path"),
            flag(p, "reshares")? == Some(true),
            flag(p, "subfiles")? == Some(true),
        )
        .await?
    };
    Ok(Value::Array(shares))
}
