//! `/cloud/users…`: the account operations of the provisioning API.

use serde_json::{Value, json};
use strongroom_core::{
    Error,
    accounts::{ADMIN_GROUP, PROPERTIES, check_email, page, parse_size},
    secret::Secret,
    tokens::random_secret,
};

use super::{
    fail,
    manager::{Manager, Target},
    user_json,
};
use crate::{Ocs, OcsError, params::Params};

/// Columns of the account's own row a user may change; with
/// [`PROPERTIES`] these are the keys a user may change on their own account.
const SELF_ROW_KEYS: &[&str] = &["display", "displayname", "email", "password"];

/// The caller's own browser session, if the call came through one.
fn caller_session(m: &Manager<'_>) -> Option<i64> {
    m.session
}

fn not_found() -> OcsError {
    OcsError::not_found("User does not exist")
}

pub async fn list(
    ocs: &Ocs,
    m: &Manager<'_>,
    p: &Params,
    details: bool,
    disabled_only: bool,
) -> Result<Value, OcsError> {
    if !m.is_manager() {
        return Err(OcsError::new(403, "Logged in account must be at least a sub admin"));
    }
    let (limit, offset) = p.window()?;
    let found = ocs.users.search(p.get("search").unwrap_or("")).await.map_err(fail(996))?;
    let mut visible = Vec::new();
    for u in found {
        if disabled_only && u.enabled {
            continue;
        }
        if let Some(t) = Manager::target(ocs, &u.uid).await? {
            if m.manages(&t) {
                visible.push(t);
            }
        }
    }
    let visible = page(visible, limit, offset);
    if !details {
        return Ok(
            json!({ "users": visible.iter().map(|t| t.user.uid.clone()).collect::<Vec<_>>() }),
        );
    }
    let mut map = serde_json::Map::new();
    for t in &visible {
        map.insert(t.user.uid.clone(), user_json::user(ocs, m, t).await?);
    }
    Ok(json!({ "users": map }))
}

pub async fn get(ocs: &Ocs, m: &Manager<'_>, uid: &str) -> Result<Value, OcsError> {
    let t = Manager::target(ocs, uid).await?.ok_or_else(not_found)?;
    if t.user.id != m.me.id && !m.manages(&t) {
        return Err(not_found());
    }
    user_json::user(ocs, m, &t).await
}

const CREATE_KEYS: &[&str] = &[
    "userid",
    "password",
    "displayName",
    "displayname",
    "email",
    "groups",
    "subadmin",
    "quota",
    "language",
    "manager",
];

/// Creates an account, checking in Nextcloud's order so the first failing
/// rule gives the code a client expects. Nothing is created on a refusal.
pub async fn create(ocs: &Ocs, m: &Manager<'_>, p: &Params) -> Result<Value, OcsError> {
    if !m.is_manager() {
        return Err(OcsError::new(403, "Logged in account must be at least a sub admin"));
    }
    if let Some(k) = p.unknown_body_key(CREATE_KEYS) {
        return Err(OcsError::new(101, format!("Unknown parameter {k}")));
    }
    if p.list("userid").len() > 1 {
        return Err(OcsError::new(101, "userid must be a single value"));
    }
    let uid = p.get("userid").unwrap_or("").to_owned();
    if ocs.users.get(&uid).await.map_err(fail(996))?.is_some() {
        return Err(OcsError::new(102, "User already exists"));
    }
    let groups = p.list("groups");
    for g in &groups {
        if !ocs.users.group_exists(g).await.map_err(fail(996))? {
            return Err(OcsError::new(104, format!("Group {g} does not exist")));
        }
        if !m.administers(g) {
            return Err(OcsError::new(105, format!("Insufficient privileges for group {g}")));
        }
    }
    if !m.admin && groups.is_empty() {
        return Err(OcsError::new(106, "No group specified (required for sub admins)"));
    }
    let subadmin: Vec<String> = p
        .list("subadmin")
        .into_iter()
        .filter(|s| !matches!(s.as_str(), "" | "true" | "false"))
        .collect();
    for g in &subadmin {
        if !ocs.users.group_exists(g).await.map_err(fail(996))? {
            return Err(OcsError::new(102, "Sub admin group does not exist"));
        }
        if g.eq_ignore_ascii_case(ADMIN_GROUP) {
            return Err(OcsError::new(103, "Cannot create sub admins for admin group"));
        }
        if !m.admin {
            return Err(OcsError::new(403, "No permissions to promote sub admins"));
        }
    }
    let password = p.get("password").filter(|s| !s.is_empty());
    let email = p.get("email").filter(|s| !s.is_empty());
    if password.is_some_and(|pw| pw.len() > strongroom_core::password::MAX_LENGTH) {
        return Err(OcsError::new(101, "Invalid password value"));
    }
    if password.is_none() && email.is_none() {
        return Err(OcsError::new(
            108,
            "To send a password link to the user an email address is required",
        ));
    }
    strongroom_core::users::check_uid(&uid).map_err(fail(101))?;
    if let Some(e) = email {
        check_email(e).map_err(fail(101))?;
    }
    let quota = match p.get("quota").filter(|q| !q.is_empty()) {
        Some(q) => Some(
            parse_size(q).map_err(|_| OcsError::new(102, format!("Invalid quota value: {q}")))?,
        ),
        None => None,
    };
    let language = p.get("language").filter(|l| !l.is_empty());
    if let Some(l) = language {
        check_language(l)?;
    }
    let display = p.get("displayName").or(p.get("displayname")).filter(|d| !d.is_empty());
    // Without a password, the account gets a random one until a password is set.
    let secret = match password {
        Some(pw) => Secret::new(pw),
        None => random_secret(32),
    };
    strongroom_core::users::check_password(&uid, &secret)
        .map_err(|e| OcsError::new(107, e.to_string()))?;
    if let Some(d) = display {
        if d.chars().count() > 255 || d.chars().any(char::is_control) {
            return Err(OcsError::new(101, "Invalid display name"));
        }
    }
    let user = ocs.users.create(&uid, &secret, display).await.map_err(|e| match e {
        Error::AlreadyExists(_) => OcsError::new(102, "User already exists"),
        e => fail(101)(e),
    })?;
    let setup = async {
        if let Some(e) = email {
            ocs.users.set_email(&user, Some(e)).await?;
        }
        if let Some(q) = quota {
            ocs.users.set_quota(&user.uid, q).await?;
        }
        if let Some(l) = language {
            ocs.users.set_prop(user.id, "language", l).await?;
        }
        for g in &groups {
            ocs.users.group_add_user(g, &user.uid).await?;
        }
        for g in &subadmin {
            ocs.users.add_group_admin(g, &user).await?;
        }
        Ok::<(), Error>(())
    };
    if let Err(e) = setup.await {
        let _ = ocs.users.delete(&user.uid, &ocs.files).await;
        return Err(fail(101)(e));
    }
    tracing::info!(target: "strongroom::provisioning", by = %m.me.uid, user = %user.uid, "user created");
    Ok(json!({ "id": user.uid }))
}

fn check_language(l: &str) -> Result<(), OcsError> {
    let (lang, region) = l.split_once('_').unwrap_or((l, ""));
    let ok = (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && (region.is_empty()
            || (region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase())));
    if ok { Ok(()) } else { Err(OcsError::new(102, "Invalid language")) }
}

/// The keys the caller may edit on `target_self` (their own account) or as its manager.
fn allowed_keys(m: &Manager<'_>, own: bool, managed: bool) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = Vec::new();
    if own || managed {
        keys.extend(SELF_ROW_KEYS);
        keys.extend(PROPERTIES);
    }
    // Quota and manager are set by those who manage the account, never by the
    // account itself (a group administrator is a member of their group), unless admin.
    if (managed && !own) || (own && m.admin) {
        keys.extend(["quota", "manager"]);
    }
    keys
}

pub fn editable_fields(m: &Manager<'_>, _me: i64) -> Value {
    let mut keys = allowed_keys(m, true, m.admin);
    keys.retain(|k| *k != "display" && *k != "password");
    json!(keys)
}

pub async fn fields_for(ocs: &Ocs, m: &Manager<'_>, uid: &str) -> Result<Value, OcsError> {
    let t = Manager::target(ocs, uid).await?.ok_or_else(not_found)?;
    let own = t.user.id == m.me.id;
    if !own && !m.manages(&t) {
        return Err(not_found());
    }
    let mut keys = allowed_keys(m, own, m.manages(&t));
    keys.retain(|k| *k != "display" && *k != "password");
    Ok(json!(keys))
}

pub async fn edit(ocs: &Ocs, m: &Manager<'_>, uid: &str, p: &Params) -> Result<Value, OcsError> {
    let t = Manager::target(ocs, uid).await?.ok_or_else(not_found)?;
    let own = t.user.id == m.me.id;
    let managed = m.manages(&t);
    if !own && !managed {
        return Err(not_found());
    }
    let key = p.get("key").unwrap_or("");
    let value = p.get("value").unwrap_or("");
    if !allowed_keys(m, own, managed).contains(&key) {
        return Err(OcsError::new(113, "Editing this field is not allowed"));
    }
    let u = &ocs.users;
    match key {
        "display" | "displayname" => u
            .set_display_name(&t.user, Some(value).filter(|v| !v.is_empty()))
            .await
            .map_err(fail(101))?,
        "email" => {
            u.set_email(&t.user, Some(value).filter(|v| !v.is_empty())).await.map_err(fail(101))?
        }
        "password" => {
            if value.len() > strongroom_core::password::MAX_LENGTH {
                return Err(OcsError::new(102, "Invalid password value"));
            }
            u.set_password(&t.user.uid, &Secret::new(value))
                .await
                .map_err(|e| OcsError::new(107, e.to_string()))?;
            // A new password ends the account's browser sessions (not its own, if it is the caller).
            let keep = match caller_session(m) {
                Some(id) if own => Some(id),
                _ => None,
            };
            u.end_sessions(t.user.id, keep).await.map_err(fail(996))?
        }
        "locale" => {
            if !value.is_empty() {
                check_language(value)?;
            }
            u.set_prop(t.user.id, "locale", value).await.map_err(fail(102))?
        }
        "quota" => {
            let q = parse_size(value)
                .map_err(|_| OcsError::new(102, format!("Invalid quota value: {value}")))?;
            u.set_quota(&t.user.uid, q).await.map_err(fail(102))?
        }
        "language" => {
            check_language(value)?;
            u.set_prop(t.user.id, "language", value).await.map_err(fail(102))?
        }
        "website" => {
            if !value.is_empty() && !(value.starts_with("https://") || value.starts_with("http://"))
            {
                return Err(OcsError::new(101, "Invalid website"));
            }
            u.set_prop(t.user.id, "website", value).await.map_err(fail(101))?
        }
        "phone" => {
            let ok = value.chars().all(|c| c.is_ascii_digit() || " +-()./".contains(c))
                && value.chars().filter(char::is_ascii_digit).count() <= 20;
            if !ok {
                return Err(OcsError::new(101, "Invalid phone number"));
            }
            u.set_prop(t.user.id, "phone", value).await.map_err(fail(101))?
        }
        "notify_email" => {
            if !value.is_empty() {
                check_email(value).map_err(fail(101))?;
            }
            u.set_prop(t.user.id, "notify_email", value).await.map_err(fail(101))?
        }
        "manager" => {
            if !value.is_empty() && u.get(value).await.map_err(fail(996))?.is_none() {
                return Err(OcsError::new(101, "The manager does not exist"));
            }
        }
        k if PROPERTIES.contains(&k) => u.set_prop(t.user.id, k, value).await.map_err(fail(101))?,
        _ => return Err(OcsError::new(113, "Editing this field is not allowed")),
    }
    tracing::info!(target: "strongroom::provisioning", by = %m.me.uid, user = %t.user.uid, key, "user changed");
    Ok(json!([]))
}

pub async fn set_enabled(
    ocs: &Ocs,
    m: &Manager<'_>,
    uid: &str,
    enabled: bool,
) -> Result<Value, OcsError> {
    let t = match Manager::target(ocs, uid).await? {
        None => return Err(OcsError::new(101, "User does not exist")),
        Some(t) if t.user.id == m.me.id => {
            return Err(OcsError::new(101, "You cannot change the state of your own account"));
        }
        Some(t) if !m.manages(&t) => return Err(not_found()),
        Some(t) => t,
    };
    ocs.users.set_enabled(&t.user.uid, enabled).await.map_err(fail(101))?;
    if !enabled {
        ocs.users.end_sessions(t.user.id, None).await.map_err(fail(996))?;
    }
    tracing::info!(target: "strongroom::provisioning", by = %m.me.uid, user = %t.user.uid, enabled, "user state changed");
    Ok(json!([]))
}

pub async fn delete(ocs: &Ocs, m: &Manager<'_>, uid: &str) -> Result<Value, OcsError> {
    let t = m.managed(ocs, uid).await?;
    if t.user.id == m.me.id {
        return Err(OcsError::new(101, "You cannot delete your own account"));
    }
    ocs.users.delete(&t.user.uid, &ocs.files).await.map_err(fail(101))?;
    tracing::info!(target: "strongroom::provisioning", by = %m.me.uid, user = %t.user.uid, "user deleted");
    Ok(json!([]))
}

pub async fn wipe(ocs: &Ocs, m: &Manager<'_>, uid: &str) -> Result<Value, OcsError> {
    let t = m.managed(ocs, uid).await?;
    if t.user.id == m.me.id {
        return Err(OcsError::new(101, "You cannot wipe your own devices this way"));
    }
    ocs.tokens.request_wipe_all(t.user.id).await.map_err(fail(101))?;
    Ok(json!([]))
}

pub async fn groups(ocs: &Ocs, m: &Manager<'_>, uid: &str) -> Result<Value, OcsError> {
    let t = Manager::target(ocs, uid).await?.ok_or_else(not_found)?;
    if t.user.id == m.me.id || m.admin {
        return Ok(json!({ "groups": t.groups }));
    }
    if !m.manages(&t) {
        return Err(not_found());
    }
    let mine: Vec<&String> = t.groups.iter().filter(|g| m.administers(g)).collect();
    Ok(json!({ "groups": mine }))
}

async fn group_change_target(
    ocs: &Ocs,
    m: &Manager<'_>,
    uid: &str,
    p: &Params,
) -> Result<(Target, String), OcsError> {
    let gid = p.get("groupid").unwrap_or("").to_owned();
    if gid.is_empty() {
        return Err(OcsError::new(101, "Group id is required"));
    }
    if !ocs.users.group_exists(&gid).await.map_err(fail(996))? {
        return Err(OcsError::new(102, "Group does not exist"));
    }
    let t = Manager::target(ocs, uid)
        .await?
        .ok_or_else(|| OcsError::new(103, "User does not exist"))?;
    if !m.administers(&gid) || !(m.admin || m.manages(&t)) {
        return Err(OcsError::new(104, "Insufficient privileges for this group"));
    }
    Ok((t, gid))
}

pub async fn add_to_group(
    ocs: &Ocs,
    m: &Manager<'_>,
    uid: &str,
    p: &Params,
) -> Result<Value, OcsError> {
    let (t, gid) = group_change_target(ocs, m, uid, p).await?;
    ocs.users.group_add_user(&gid, &t.user.uid).await.map_err(fail(101))?;
    Ok(json!([]))
}

pub async fn remove_from_group(
    ocs: &Ocs,
    m: &Manager<'_>,
    uid: &str,
    p: &Params,
) -> Result<Value, OcsError> {
    let (t, gid) = group_change_target(ocs, m, uid, p).await?;
    if t.user.id == m.me.id && (gid.eq_ignore_ascii_case(ADMIN_GROUP) || !m.admin) {
        return Err(OcsError::new(105, "You cannot remove yourself from this group"));
    }
    if !m.admin {
        let administered = t.groups.iter().filter(|g| m.administers(g)).count();
        if administered <= 1 {
            return Err(OcsError::new(
                105,
                "Not possible to remove the user from their last group you administer",
            ));
        }
    }
    match ocs.users.group_remove_user(&gid, &t.user.uid).await {
        Ok(()) | Err(Error::NotFound) => Ok(json!([])),
        Err(e) => Err(fail(101)(e)),
    }
}

pub async fn subadmin_groups(ocs: &Ocs, m: &Manager<'_>, uid: &str) -> Result<Value, OcsError> {
    if !m.admin {
        return Err(OcsError::new(403, "Only admins may list group administrators"));
    }
    let t = Manager::target(ocs, uid)
        .await?
        .ok_or_else(|| OcsError::new(101, "User does not exist"))?;
    Ok(json!(ocs.users.administered_groups(t.user.id).await.map_err(fail(996))?))
}

async fn subadmin_change(
    ocs: &Ocs,
    m: &Manager<'_>,
    uid: &str,
    p: &Params,
) -> Result<(Target, String), OcsError> {
    if !m.admin {
        return Err(OcsError::new(403, "Only admins may change group administrators"));
    }
    let t = Manager::target(ocs, uid)
        .await?
        .ok_or_else(|| OcsError::new(101, "User does not exist"))?;
    let gid = p.get("groupid").unwrap_or("").to_owned();
    if gid.is_empty() || !ocs.users.group_exists(&gid).await.map_err(fail(996))? {
        return Err(OcsError::new(102, "Group does not exist"));
    }
    Ok((t, gid))
}

pub async fn promote(ocs: &Ocs, m: &Manager<'_>, uid: &str, p: &Params) -> Result<Value, OcsError> {
    let (t, gid) = subadmin_change(ocs, m, uid, p).await?;
    if gid.eq_ignore_ascii_case(ADMIN_GROUP) {
        return Err(OcsError::new(103, "Cannot create sub admins for admin group"));
    }
    ocs.users.add_group_admin(&gid, &t.user).await.map_err(fail(103))?;
    Ok(json!([]))
}

pub async fn demote(ocs: &Ocs, m: &Manager<'_>, uid: &str, p: &Params) -> Result<Value, OcsError> {
    let (t, gid) = subadmin_change(ocs, m, uid, p).await?;
    match ocs.users.remove_group_admin(&gid, &t.user).await {
        Ok(()) => Ok(json!([])),
        Err(Error::NotFound) => Err(OcsError::new(102, "User is not a sub admin of this group")),
        Err(e) => Err(fail(101)(e)),
    }
}
