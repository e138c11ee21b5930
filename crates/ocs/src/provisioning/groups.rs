//! `/cloud/groups…`: listing, creating, renaming and deleting groups, their
//! members and their administrators.

use serde_json::{Value, json};
use strongroom_core::accounts::{ADMIN_GROUP, page};

use super::{fail, manager::Manager, user_json};
use crate::{Ocs, OcsError, params::Params};

pub async fn list(
    ocs: &Ocs,
    m: &Manager<'_>,
    p: &Params,
    details: bool,
) -> Result<Value, OcsError> {
    if !m.is_manager() {
        return Err(OcsError::new(403, "Logged in account must be at least a sub admin"));
    }
    let (limit, offset) = p.window()?;
    let all = ocs.users.group_search(p.get("search").unwrap_or("")).await.map_err(fail(996))?;
    let visible: Vec<_> = all.into_iter().filter(|g| m.administers(&g.gid)).collect();
    let groups = page(visible, limit, offset);
    if details {
        let list: Vec<Value> = groups
            .iter()
            .map(|g| {
                json!({ "id": g.gid, "displayname": g.display_name, "usercount": g.members, "disabled": 0,
                        "canAdd": m.admin, "canRemove": m.admin })
            })
            .collect();
        return Ok(json!({ "groups": list }));
    }
    Ok(json!({ "groups": groups.iter().map(|g| g.gid.clone()).collect::<Vec<_>>() }))
}

pub async fn members(
    ocs: &Ocs,
    m: &Manager<'_>,
    gid: &str,
    p: &Params,
    details: bool,
) -> Result<Value, OcsError> {
    if !ocs.users.group_exists(gid).await.map_err(fail(996))? {
        return Err(OcsError::new(404, "The requested group could not be found"));
    }
    if !m.administers(gid) {
        return Err(OcsError::new(403, "You are not allowed to view this group's members"));
    }
    let (limit, offset) = p.window()?;
    let search = p.get("search").unwrap_or("").to_lowercase();
    let uids: Vec<String> = ocs
        .users
        .group_members(gid)
        .await
        .map_err(fail(996))?
        .into_iter()
        .filter(|u| u.to_lowercase().contains(&search))
        .collect();
    let uids = page(uids, limit, offset);
    if !details {
        return Ok(json!({ "users": uids }));
    }
    let mut map = serde_json::Map::new();
    for uid in uids {
        if let Some(t) = Manager::target(ocs, &uid).await? {
            map.insert(uid, user_json::user(ocs, m, &t).await?);
        }
    }
    Ok(json!({ "users": map }))
}

pub async fn create(ocs: &Ocs, m: &Manager<'_>, p: &Params) -> Result<Value, OcsError> {
    if !m.admin {
        return Err(OcsError::new(403, "Only admins may create groups"));
    }
    let gid = p.get("groupid").unwrap_or("").trim();
    if gid.is_empty() {
        return Err(OcsError::new(101, "Invalid group name"));
    }
    if ocs.users.group_exists(gid).await.map_err(fail(996))? {
        return Err(OcsError::new(102, "group exists"));
    }
    let display = p.get("displayname").filter(|d| !d.trim().is_empty());
    ocs.users.group_create_named(gid, display).await.map_err(fail(101))?;
    Ok(json!([]))
}

pub async fn edit(ocs: &Ocs, m: &Manager<'_>, gid: &str, p: &Params) -> Result<Value, OcsError> {
    if !m.admin {
        return Err(OcsError::new(403, "Only admins may rename groups"));
    }
    if p.get("key") != Some("displayname") {
        return Err(OcsError::new(
            101,
            "Only the display name of a group can be changed (key=displayname)",
        ));
    }
    if !ocs.users.group_exists(gid).await.map_err(fail(996))? {
        return Err(OcsError::not_found("The requested group could not be found"));
    }
    ocs.users.group_set_display_name(gid, p.get("value").unwrap_or("")).await.map_err(fail(101))?;
    Ok(json!([]))
}

pub async fn delete(ocs: &Ocs, m: &Manager<'_>, gid: &str) -> Result<Value, OcsError> {
    if !m.admin {
        return Err(OcsError::new(403, "Only admins may delete groups"));
    }
    if !ocs.users.group_exists(gid).await.map_err(fail(996))? {
        return Err(OcsError::new(101, "The group does not exist"));
    }
    if gid.eq_ignore_ascii_case(ADMIN_GROUP) {
        return Err(OcsError::new(102, "The admin group cannot be deleted"));
    }
    ocs.users.group_delete(gid).await.map_err(fail(102))?;
    Ok(json!([]))
}

pub async fn subadmins(ocs: &Ocs, m: &Manager<'_>, gid: &str) -> Result<Value, OcsError> {
    if !m.admin {
        return Err(OcsError::new(403, "Only admins may list group administrators"));
    }
    if !ocs.users.group_exists(gid).await.map_err(fail(996))? {
        return Err(OcsError::new(101, "Group does not exist"));
    }
    Ok(json!(ocs.users.group_admins(gid).await.map_err(fail(996))?))
}
