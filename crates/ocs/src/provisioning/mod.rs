//! The provisioning API (`/cloud/users…`, `/cloud/groups…`): accounts and
//! groups managed by admins and by group administrators ("subadmins"), with
//! Nextcloud's status codes for every refusal.

mod groups;
mod manager;
mod user_json;
mod users;

use http::Method;
use percent_encoding::percent_decode_str;
use serde_json::Value;

use strongroom_core::audit::{Event, Origin};

use crate::{Caller, Ocs, OcsError, params::Params};
use manager::Manager;

/// Routes a provisioning call; `None` when the path is not one of them.
pub async fn route(
    ocs: &Ocs,
    method: &Method,
    path: &str,
    params: &Params,
    caller: &Caller<'_>,
    origin: &Origin,
) -> Option<Result<Value, OcsError>> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let known = matches!(
        segs.as_slice(),
        ["cloud", "users", ..] | ["cloud", "groups", ..] | ["cloud", "user", "fields", ..]
    );
    if !known {
        return None;
    }
    let action = audit_action(method, &segs[1..], params);
    // A browser session changes accounts only with a fresh password confirmation.
    if let (Some(_), Caller::Session(_, s)) = (action, caller) {
        if strongroom_core::now_secs() - s.confirmed_at > ocs.confirm_secs {
            return Some(Err(OcsError::new(403, "Password confirmation is required")));
        }
    }
    let result = dispatch(ocs, method, &segs[1..], params, caller).await;
    if let Some(action) = action {
        audit(ocs, origin, caller, action, &segs[1..], params, &result);
    }
    Some(result)
}

/// The audit action of a state-changing provisioning call, `None` for reads.
fn audit_action(method: &Method, segs: &[&str], p: &Params) -> Option<&'static str> {
    Some(match (method.as_str(), segs) {
        ("POST", ["users"]) => "user.created",
        ("PUT", ["users", _]) if p.get("key") == Some("password") => "password.changed",
        ("PUT", ["users", _]) => "user.changed",
        ("DELETE", ["users", _]) => "user.deleted",
        ("PUT", ["users", _, "enable"]) => "user.enabled",
        ("PUT", ["users", _, "disable"]) => "user.disabled",
        ("POST", ["users", _, "wipe"]) => "wipe.requested",
        ("POST", ["users", _, "groups"]) => "group.member_added",
        ("DELETE", ["users", _, "groups"]) => "group.member_removed",
        ("POST", ["users", _, "subadmins"]) => "group.admin_added",
        ("DELETE", ["users", _, "subadmins"]) => "group.admin_removed",
        ("POST", ["groups"]) => "group.created",
        ("PUT", ["groups", _]) => "group.changed",
        ("DELETE", ["groups", _]) => "group.deleted",
        _ => return None,
    })
}

fn audit(
    ocs: &Ocs,
    origin: &Origin,
    caller: &Caller<'_>,
    action: &str,
    segs: &[&str],
    p: &Params,
    result: &Result<Value, OcsError>,
) {
    let actor = caller.user().map(|u| u.uid.as_str());
    let target = match segs {
        ["users", id, ..] | ["groups", id, ..] => Some(*id),
        ["users"] => p.get("userid"),
        ["groups"] => p.get("groupid"),
        _ => None,
    };
    let mut detail = match result {
        Ok(_) => serde_json::json!({ "outcome": "success" }),
        Err(e) => serde_json::json!({ "outcome": "refused", "code": e.code, "reason": e.message }),
    };
    // What was changed, never to what value (it may be a password).
    if let Some(g) = p.get("groupid").filter(|_| segs.len() > 1) {
        detail["group"] = serde_json::json!(g);
    }
    if let Some(k) = p.get("key") {
        detail["key"] = serde_json::json!(k);
    }
    let mut ev = Event::new(action).detail(detail);
    ev.actor = actor;
    ev.target = target;
    ocs.audit.record(origin, ev);
}

async fn dispatch(
    ocs: &Ocs,
    method: &Method,
    segs: &[&str],
    p: &Params,
    caller: &Caller<'_>,
) -> Result<Value, OcsError> {
    let me = caller.user().ok_or_else(OcsError::unauthorised)?;
    let session = match caller {
        Caller::Session(_, s) => Some(s.id),
        _ => None,
    };
    let m = Manager::of(ocs, me, session).await?;
    let get = method == Method::GET;
    let post = method == Method::POST;
    let put = method == Method::PUT;
    let delete = method == Method::DELETE;
    match segs {
        ["users"] if get => users::list(ocs, &m, p, false, false).await,
        ["users", "details"] if get => users::list(ocs, &m, p, true, false).await,
        ["users", "disabled"] if get => users::list(ocs, &m, p, true, true).await,
        ["users"] if post => users::create(ocs, &m, p).await,
        ["users", id] if get => users::get(ocs, &m, id).await,
        ["users", id] if put => users::edit(ocs, &m, id, p).await,
        ["users", id] if delete => users::delete(ocs, &m, id).await,
        ["users", id, "enable"] if put => users::set_enabled(ocs, &m, id, true).await,
        ["users", id, "disable"] if put => users::set_enabled(ocs, &m, id, false).await,
        ["users", id, "wipe"] if post => users::wipe(ocs, &m, id).await,
        ["users", id, "groups"] if get => users::groups(ocs, &m, id).await,
        ["users", id, "groups"] if post => users::add_to_group(ocs, &m, id, p).await,
        ["users", id, "groups"] if delete => users::remove_from_group(ocs, &m, id, p).await,
        ["users", id, "subadmins"] if get => users::subadmin_groups(ocs, &m, id).await,
        ["users", id, "subadmins"] if post => users::promote(ocs, &m, id, p).await,
        ["users", id, "subadmins"] if delete => users::demote(ocs, &m, id, p).await,
        ["user", "fields"] if get => Ok(users::editable_fields(&m, me.id)),
        ["user", "fields", id] if get => users::fields_for(ocs, &m, id).await,
        ["groups"] if get => groups::list(ocs, &m, p, false).await,
        ["groups", "details"] if get => groups::list(ocs, &m, p, true).await,
        ["groups"] if post => groups::create(ocs, &m, p).await,
        ["groups", gid] | ["groups", gid, "users"] if get => {
            groups::members(ocs, &m, gid, p, false).await
        }
        ["groups", gid, "users", "details"] if get => groups::members(ocs, &m, gid, p, true).await,
        ["groups", gid] if put => groups::edit(ocs, &m, gid, p).await,
        ["groups", gid] if delete => groups::delete(ocs, &m, gid).await,
        ["groups", gid, "subadmins"] if get => groups::subadmins(ocs, &m, gid).await,
        _ => Err(OcsError::not_found("Invalid query, please check the syntax")),
    }
}

/// Maps a domain error of a provisioning step to an OCS failure with `code`.
fn fail(code: u16) -> impl Fn(strongroom_core::Error) -> OcsError {
    move |e| {
        if let Some((code, message)) = e.outage() {
            return OcsError::new(code, message);
        }
        match e {
            strongroom_core::Error::Internal(m) => {
                tracing::error!(error = %m, "provisioning failed");
                OcsError::new(996, "Internal error")
            }
            e => OcsError::new(code, e.to_string()),
        }
    }
}
