//! The user object of `GET /cloud/users/{id}`, with the fields each viewer may see.

use serde_json::{Value, json};
use strongroom_core::accounts::PROPERTIES;

use super::{
    fail,
    manager::{Manager, Target},
};
use crate::{Ocs, OcsError};

/// The quota object: bytes used and, when limited, free, total and percentage.
pub async fn quota(ocs: &Ocs, t: &Target) -> Result<Value, OcsError> {
    let used = ocs.users.used_bytes(&t.user).await.map_err(fail(996))?;
    let q = t.user.quota;
    Ok(if q < 0 {
        json!({ "free": -3, "used": used, "total": -3, "relative": 0, "quota": -3 })
    } else {
        let relative =
            if q > 0 { ((used as f64 / q as f64) * 10_000.0).round() / 100.0 } else { 0.0 };
        json!({ "free": (q - used).max(0), "used": used, "total": q, "relative": relative, "quota": q })
    })
}

pub async fn user(ocs: &Ocs, m: &Manager<'_>, t: &Target) -> Result<Value, OcsError> {
    let u = &t.user;
    let props = ocs.users.props(u.id).await.map_err(fail(996))?;
    let subadmin = ocs.users.administered_groups(u.id).await.map_err(fail(996))?;
    let mut obj = json!({
        "id": u.uid,
        "lastLogin": u.last_login,
        "backend": "Database",
        "subadmin": subadmin,
        "quota": quota(ocs, t).await?,
        "manager": "",
        "email": u.email,
        "additional_mail": [],
        "displayname": u.display(),
        "display-name": u.display(),
        "groups": t.groups,
        "language": props.get("language").cloned().unwrap_or_else(|| "en".into()),
        "locale": props.get("locale").cloned().unwrap_or_default(),
        "notify_email": props.get("notify_email"),
        "backendCapabilities": { "setDisplayName": true, "setPassword": true },
    });
    for p in PROPERTIES.iter().filter(|p| !matches!(**p, "language" | "locale" | "notify_email")) {
        let v = props.get(*p).cloned().unwrap_or_default();
        obj[*p] = if *p == "profile_enabled" {
            json!(if v.is_empty() { "1" } else { &v })
        } else {
            json!(v)
        };
    }
    if m.manages(t) {
        obj["enabled"] = json!(u.enabled);
    }
    if m.admin {
        obj["storageLocation"] = json!(format!("/{}", u.uid));
    }
    Ok(obj)
}
