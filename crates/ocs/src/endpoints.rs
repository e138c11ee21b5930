//! The OCS endpoints clients call when they start.

use http::{Method, request::Parts};
use serde_json::{Value, json};
use strongroom_core::{
    audit::{Event, Origin},
    files::Ctx,
};

use crate::{Caller, Ocs, OcsError, VERSION};

pub async fn route(
    ocs: &Ocs,
    path: &str,
    parts: &Parts,
    caller: &Caller<'_>,
    origin: &Origin,
) -> Result<Value, OcsError> {
    let path = path.trim_end_matches('/');
    match (&parts.method, path) {
        (&Method::GET, "/cloud/capabilities") => {
            let mut c = capabilities();
            c["capabilities"]["strongroom"] = twofactor_capability(ocs, caller).await?;
            c["capabilities"]["files_sharing"] = sharing_capability(ocs, caller).await?;
            Ok(c)
        }
        (&Method::GET, "/cloud/user") => current_user(ocs, caller).await,
        (&Method::GET, "/core/getapppassword") => {
            get_app_password(ocs, parts, caller, origin).await
        }
        (&Method::DELETE, "/core/apppassword") => delete_app_password(ocs, caller, origin).await,
        _ => Err(OcsError::not_found(
            "Invalid query, please check the syntax. API specifications are here: https://docs.nextcloud.com",
        )),
    }
}

/// What clients may use. Only what exists is advertised: an advertised but
/// missing feature is the surest way to break a client.
pub fn capabilities() -> Value {
    let (major, minor, micro) = VERSION;
    json!({
        "version": {
            "major": major, "minor": minor, "micro": micro,
            "string": format!("{major}.{minor}.{micro}"),
            "edition": "", "extendedSupport": false,
        },
        "capabilities": {
            "core": { "pollinterval": 60, "webdav-root": "remote.php/webdav" },
            "dav": { "chunking": "1.0" },
            "files": {
                "bigfilechunking": true,
                "blacklisted_files": strongroom_core::path::RESERVED_NAMES,
                "undelete": true,
                "versioning": true,
            },
            "checksums": { "supportedTypes": ["SHA1"], "preferredUploadType": "SHA1" },
            "files_sharing": { "api_enabled": false },
        },
    })
}

/// The sharing policy as clients read it, for the caller when known: a
/// client hides what the policy forbids (and the server refuses it anyway).
async fn sharing_capability(ocs: &Ocs, caller: &Caller<'_>) -> Result<Value, OcsError> {
    let p = ocs.shares.policy().await.map_err(internal)?;
    let groups = match caller.user() {
        Some(u) => ocs.users.groups_of(u.id).await.map_err(internal)?,
        None => Vec::new(),
    };
    if !p.may_share(&groups) {
        return Ok(json!({
            "api_enabled": false, "public": { "enabled": false },
            "user": { "send_mail": false }, "resharing": false,
        }));
    }
    let expire = |enabled: bool, days: u32, enforced: bool| {
        if enabled {
            json!({ "enabled": true, "days": days, "enforced": enforced })
        } else {
            json!({ "enabled": false })
        }
    };
    let link_exp =
        expire(p.default_days(true).is_some(), p.link_expire_days, p.enforce_link_expire);
    let internal_exp =
        expire(p.default_days(false).is_some(), p.internal_expire_days, p.enforce_internal_expire);
    Ok(json!({
        "api_enabled": true,
        "public": {
            "enabled": p.may_link(&groups),
            "password": { "enforced": p.enforce_links_password, "askForOptionalPassword": false },
            "multiple_links": true,
            "expire_date": link_exp,
            "expire_date_internal": internal_exp,
            "expire_date_remote": { "enabled": false },
            "send_mail": false,
            "upload": p.allow_public_upload,
            "upload_files_drop": p.allow_public_upload,
            "hide_download_default": p.hide_download_default,
        },
        "resharing": p.allow_resharing,
        "user": { "send_mail": false, "expire_date": { "enabled": true } },
        "group_sharing": p.allow_group_sharing,
        "group": { "enabled": p.allow_group_sharing, "expire_date": { "enabled": true } },
        "default_permissions": p.default_permissions,
        "only_share_with_group_members": p.only_share_with_group_members,
        "federation": { "outgoing": false, "incoming": false, "expire_date": { "enabled": false },
                        "expire_date_supported": { "enabled": false } },
        "sharee": { "query_lookup_default": false, "always_show_unique": true },
    }))
}

/// The second factors offered, and whether they are enforced: for the
/// caller when known, else whether any enforcement is configured.
async fn twofactor_capability(ocs: &Ocs, caller: &Caller<'_>) -> Result<Value, OcsError> {
    let enforced = match caller.user() {
        Some(u) => ocs.twofactor.enforced_for(u.id).await.map_err(internal)?,
        None => ocs.twofactor.policy().await.map_err(internal)?.enforced,
    };
    Ok(json!({ "twofactor": { "providers": ocs.twofactor_providers, "enforced": enforced } }))
}

async fn current_user(ocs: &Ocs, caller: &Caller<'_>) -> Result<Value, OcsError> {
    let user = caller.user().ok_or_else(OcsError::unauthorised)?;
    let principal = strongroom_core::Principal { user_id: user.id, uid: user.uid.clone() };
    let cx = Ctx { who: &principal, owner: user, tokens: &[], grant: None };
    let (used, quota) = ocs.files.usage(&cx).await.map_err(internal)?;
    let groups = ocs.users.groups_of(user.id).await.map_err(internal)?;
    let quota_json = if quota < 0 {
        json!({ "free": -3, "used": used, "total": -3, "relative": 0, "quota": -3 })
    } else {
        let free = (quota - used).max(0);
        let relative =
            if quota > 0 { ((used as f64 / quota as f64) * 10000.0).round() / 100.0 } else { 0.0 };
        json!({ "free": free, "used": used, "total": quota, "relative": relative, "quota": quota })
    };
    Ok(json!({
        "enabled": user.enabled,
        "id": user.uid,
        "display-name": user.display(),
        "displayname": user.display(),
        "email": user.email,
        "quota": quota_json,
        "groups": groups,
        "language": "en",
        "locale": "",
        "backend": "Database",
        "lastLogin": user.last_login,
        "phone": "",
        "address": "",
        "website": "",
        "twitter": "",
        "backendCapabilities": { "setDisplayName": true, "setPassword": true },
    }))
}

/// Turns a password login into an app password (clients migrating from
/// stored passwords). Refused when the caller already uses an app password.
async fn get_app_password(
    ocs: &Ocs,
    parts: &Parts,
    caller: &Caller<'_>,
    origin: &Origin,
) -> Result<Value, OcsError> {
    let user = match caller {
        Caller::Anonymous => return Err(OcsError::unauthorised()),
        Caller::AppToken(..) => {
            return Err(OcsError::new(403, "You are already using an app password"));
        }
        // A browser session must use the devices page, which asks for the password again.
        Caller::Session(..) => return Err(OcsError::new(403, "Password confirmation is required")),
        Caller::Password(u) => *u,
    };
    let agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown client");
    let (token, secret) = ocs.tokens.create(user, agent).await.map_err(internal)?;
    let id = token.id.to_string();
    ocs.audit.record(
        origin,
        Event::new("token.created")
            .actor(&user.uid)
            .target(&id)
            .detail(json!({ "name": token.name })),
    );
    Ok(json!({ "apppassword": secret.expose() }))
}

/// Revokes the app password the request is authenticated with.
async fn delete_app_password(
    ocs: &Ocs,
    caller: &Caller<'_>,
    origin: &Origin,
) -> Result<Value, OcsError> {
    match caller {
        Caller::Anonymous => Err(OcsError::unauthorised()),
        Caller::Password(_) | Caller::Session(..) => {
            Err(OcsError::new(403, "Only an app password can be deleted this way"))
        }
        Caller::AppToken(u, t) => {
            ocs.tokens.delete(u.id, t.id).await.map_err(internal)?;
            let id = t.id.to_string();
            ocs.audit.record(origin, Event::new("token.revoked").actor(&u.uid).target(&id));
            Ok(json!([]))
        }
    }
}

fn internal(e: strongroom_core::Error) -> OcsError {
    if let Some((code, message)) = e.outage() {
        return OcsError::new(code, message);
    }
    tracing::error!(error = %e, "OCS request failed");
    OcsError::new(996, "Internal error")
}
