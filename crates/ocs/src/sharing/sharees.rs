//! `GET /sharees`: the accounts and groups a user may share with, for the
//! share dialogs of Nextcloud's clients. Exact matches of id or display name
//! come under `exact`; with "share only within one's groups" only members
//! of the caller's groups and the caller's own groups are offered.

use serde_json::{Value, json};

use super::{Cx, internal};
use crate::{OcsError, params::Params};

pub async fn search(cx: &Cx<'_>, p: &Params) -> Result<Value, OcsError> {
    let (ocs, me) = (cx.ocs, cx.me);
    let term = p.get("search").unwrap_or("").trim().to_lowercase();
    let per_page = match p.get("perPage").filter(|v| !v.is_empty()) {
        None => 200,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| OcsError::new(400, "Invalid perPage"))?,
    };
    let types = p.list("shareType");
    let wants = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
    let policy = ocs.shares.policy().await.map_err(internal)?;
    let mine = ocs.users.groups_of(me.id).await.map_err(internal)?;
    let groups = ocs.users.groups().await.map_err(internal)?;
    let in_my_groups = |uid: &str| {
        groups.iter().any(|g| {
            mine.iter().any(|m| m.eq_ignore_ascii_case(&g.gid))
                && g.members.iter().any(|x| x.eq_ignore_ascii_case(uid))
        })
    };
    let matches = |a: &str, b: &str| {
        term.is_empty() || a.to_lowercase().contains(&term) || b.to_lowercase().contains(&term)
    };
    let exact_match = |a: &str, b: &str| {
        !term.is_empty() && (a.to_lowercase() == term || b.to_lowercase() == term)
    };
    let (mut users, mut exact_users) = (Vec::new(), Vec::new());
    if wants("0") {
        for u in ocs.users.list().await.map_err(internal)? {
            if u.id == me.id || !u.enabled || !matches(&u.uid, u.display()) {
                continue;
            }
            if policy.only_share_with_group_members && !in_my_groups(&u.uid) {
                continue;
            }
            let entry = json!({
                "label": u.display(), "subline": "", "icon": "icon-user",
                "value": { "shareType": 0, "shareWith": u.uid },
                "shareWithDisplayNameUnique": u.uid, "status": [],
            });
            if exact_match(&u.uid, u.display()) {
                exact_users.push(entry)
            } else {
                users.push(entry)
            }
        }
    }
    let (mut found_groups, mut exact_groups) = (Vec::new(), Vec::new());
    if wants("1") && policy.allow_group_sharing {
        for g in &groups {
            let name = ocs.shares.group_names(g.id).await.map_err(internal)?.1;
            if !matches(&g.gid, &name) {
                continue;
            }
            if policy.only_share_with_group_members
                && !mine.iter().any(|m| m.eq_ignore_ascii_case(&g.gid))
            {
                continue;
            }
            let entry = json!({ "label": name, "value": { "shareType": 1, "shareWith": g.gid } });
            if exact_match(&g.gid, &name) {
                exact_groups.push(entry)
            } else {
                found_groups.push(entry)
            }
        }
    }
    users.truncate(per_page);
    found_groups.truncate(per_page);
    let empty = || json!([]);
    Ok(json!({
        "exact": {
            "users": exact_users, "groups": exact_groups, "remotes": empty(), "remote_groups": empty(),
            "emails": empty(), "lookup": empty(), "circles": empty(), "rooms": empty(), "deck": empty(),
        },
        "users": users, "groups": found_groups, "remotes": empty(), "remote_groups": empty(),
        "emails": empty(), "lookup": empty(), "circles": empty(), "rooms": empty(), "deck": empty(),
        "lookupEnabled": false,
    }))
}
