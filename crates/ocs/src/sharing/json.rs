//! The share object as Nextcloud's clients read it, and the lists of them.
//! Paths are said as the caller sees them: the owner's own path, or the
//! path through the caller's mount. A link's password hash is never sent
//! (Nextcloud sends it; nothing needs it).

use serde_json::{Value, json};
use strongroom_core::{
    Node, NodeKind, TreePath, User,
    access::perm,
    sharing::{GROUP, LINK, Share, Shares, USER, format_date},
};

use super::Cx;
use super::internal;
use crate::{Ocs, OcsError};

/// The JSON of one share for `me`.
pub async fn share(cx: &Cx<'_>, s: &Share) -> Result<Value, OcsError> {
    let (ocs, me) = (cx.ocs, cx.me);
    let (node, path) = match ocs.shares.view_of(me, s).await.map_err(internal)? {
        Some(v) => v,
        None => {
            // The node is gone or out of sight (in the trash); the share is
            // still described, without a path.
            let n = ocs.shares.node(s.node_id).await.map_err(internal)?;
            let Some(n) = n else {
                return Err(OcsError::new(404, "Wrong share ID, share does not exist"));
            };
            (n, TreePath::root())
        }
    };
    share_at(cx, s, &node, &path).await
}

async fn user_json(ocs: &Ocs, id: i64) -> Result<(String, String), OcsError> {
    Ok(match ocs.users.get_by_id(id).await.map_err(internal)? {
        Some(u) => (u.uid.clone(), u.display().to_owned()),
        None => (String::new(), String::new()),
    })
}

async fn share_at(cx: &Cx<'_>, s: &Share, node: &Node, path: &TreePath) -> Result<Value, OcsError> {
    let (ocs, me) = (cx.ocs, cx.me);
    let (sharer, sharer_name) = user_json(ocs, s.sharer_id).await?;
    let (owner, owner_name) = user_json(ocs, s.owner_id).await?;
    let folder = node.kind == NodeKind::Folder;
    let mine = s.sharer_id == me.id || s.owner_id == me.id;
    let policy = ocs.shares.policy().await.map_err(internal)?;
    // What the share gives now, after the policy; what the caller holds.
    let effective = ocs.shares.effective(s, &policy).await.map_err(internal)?.unwrap_or(0);
    let item_permissions = if s.owner_id == me.id {
        perm::ALL
    } else {
        ocs.shares.held_by(me, s).await.map_err(internal)? | effective
    };
    let mut v = json!({
        "id": s.id.to_string(),
        "share_type": s.share_type,
        "uid_owner": sharer,
        "displayname_owner": sharer_name,
        "uid_file_owner": owner,
        "displayname_file_owner": owner_name,
        "permissions": if mine { s.permissions } else { effective },
        "can_edit": mine,
        "can_delete": true,
        "stime": s.created_at,
        "parent": null,
        "expiration": Shares::effective_expiry(s, &policy).map(format_date),
        "token": s.token,
        "note": s.note,
        "label": s.label,
        "path": path.to_key(),
        "item_type": if folder { "folder" } else { "file" },
        "item_permissions": item_permissions,
        "is-mount-root": !mine,
        "mount-type": if mine { "" } else { "shared" },
        "mimetype": if folder { "httpd/unix-directory".to_owned() } else { node.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()) },
        "has_preview": false,
        "storage_id": format!("home::{owner}"),
        "storage": s.owner_id,
        "item_source": node.id,
        "file_source": node.id,
        "file_parent": node.parent_id,
        // Where the share is: for the sharer its name as shared, for a
        // recipient the mount as it appears in its tree now.
        "file_target": if mine { format!("/{}", s.target) } else { path.to_key() },
        "item_size": node.size,
        "item_mtime": node.mtime,
        "mail_send": 0,
        "hide_download": i64::from(s.hide_download),
        "attributes": if s.hide_download {
            Value::String(r#"[{"scope":"permissions","key":"download","value":false}]"#.into())
        } else {
            Value::Null
        },
        "status": { "status": "offline", "message": null, "icon": null, "clearAt": null },
    });
    match s.share_type {
        USER => {
            let (uid, name) = user_json(ocs, s.recipient_user.unwrap_or(0)).await?;
            v["share_with"] = json!(uid);
            v["share_with_displayname"] = json!(name);
            v["share_with_displayname_unique"] = json!(uid);
        }
        GROUP => {
            let group = s.recipient_group.unwrap_or(0);
            let (gid, name) = ocs.shares.group_names(group).await.map_err(internal)?;
            v["share_with"] = json!(gid);
            v["share_with_displayname"] = json!(name);
        }
        LINK => {
            v["share_with"] = Value::Null;
            v["share_with_displayname"] =
                json!(if s.label.is_empty() { "(Shared link)" } else { &s.label });
            v["password"] = Value::Null;
            v["has_password"] = json!(s.password_hash.is_some());
            v["send_password_by_talk"] = json!(false);
            let token = s.token.clone().unwrap_or_default();
            v["url"] = json!(format!("{}/s/{token}", cx.base));
        }
        _ => {}
    }
    Ok(v)
}

/// The node at a user-relative path, through the caller's mounts.
async fn node_at(ocs: &Ocs, me: &User, raw: &str) -> Result<(Node, TreePath), OcsError> {
    let missing = || OcsError::new(404, "Wrong path, file/folder does not exist");
    let path = TreePath::from_segments(raw.split('/')).map_err(|_| missing())?;
    let at = ocs.shares.locate(me, &path).await.map_err(internal)?;
    let node =
        ocs.shares.node_at(&at.owner, &at.path).await.map_err(internal)?.ok_or_else(missing)?;
    Ok((node, path))
}

/// Shares made by `me` (with `reshares`, also those others made on what
/// `me` owns), optionally only on the node at `path` or its children.
pub async fn outgoing(
    cx: &Cx<'_>,
    path: Option<&str>,
    reshares: bool,
    subfiles: bool,
) -> Result<Vec<Value>, OcsError> {
    let (ocs, me) = (cx.ocs, cx.me);
    let filter: Option<Vec<i64>> = match path.filter(|p| !p.is_empty()) {
        None => None,
        Some(raw) => {
            let (node, _) = node_at(ocs, me, raw).await?;
            if subfiles {
                if node.kind != NodeKind::Folder {
                    return Err(OcsError::new(400, "Not a directory"));
                }
                Some(ocs.shares.child_ids(node.id).await.map_err(internal)?)
            } else {
                Some(vec![node.id])
            }
        }
    };
    let all = match &filter {
        Some(ids) => ocs.shares.on_nodes(ids).await.map_err(internal)?,
        None => ocs.shares.outgoing(me.id, reshares).await.map_err(internal)?,
    };
    let mut out = Vec::new();
    for s in all {
        let visible = s.sharer_id == me.id || (reshares && s.owner_id == me.id);
        if !visible {
            continue;
        }
        if let Some((node, p)) = ocs.shares.view_of(me, &s).await.map_err(internal)? {
            out.push(share_at(cx, &s, &node, &p).await?);
        }
    }
    Ok(out)
}

/// Shares `me` receives and may use now, with their paths in `me`'s tree.
pub async fn received(cx: &Cx<'_>, path: Option<&str>) -> Result<Vec<Value>, OcsError> {
    let (ocs, me) = (cx.ocs, cx.me);
    let only: Option<TreePath> = match path.filter(|p| !p.is_empty()) {
        Some(raw) => Some(node_at(ocs, me, raw).await?.1),
        None => None,
    };
    let mut out = Vec::new();
    for m in ocs.shares.mounts(me).await.map_err(internal)? {
        if only.as_ref().is_some_and(|p| *p != m.at) {
            continue;
        }
        for s in ocs.shares.received_on(me, m.node.id).await.map_err(internal)? {
            out.push(share_at(cx, &s, &m.node, &m.at).await?);
        }
    }
    Ok(out)
}

/// Shares made by or on what `me` owns, on the folders above `path`.
pub async fn inherited(cx: &Cx<'_>, raw: &str) -> Result<Vec<Value>, OcsError> {
    let (ocs, me) = (cx.ocs, cx.me);
    let (node, path) = node_at(ocs, me, raw).await?;
    let mut out = Vec::new();
    let ancestors = ocs.shares.ancestors(node.id).await.map_err(internal)?;
    let ids: Vec<i64> = ancestors.iter().map(|n| n.id).collect();
    for s in ocs.shares.on_nodes(&ids).await.map_err(internal)? {
        if s.sharer_id != me.id && s.owner_id != me.id {
            continue;
        }
        if let Some((n, p)) = ocs.shares.view_of(me, &s).await.map_err(internal)? {
            if !path.starts_with(&p) {
                continue;
            }
            let mut v = share_at(cx, &s, &n, &p).await?;
            v["via_fileid"] = json!(n.id);
            v["via_path"] = json!(p.to_key());
            out.push(v);
        }
    }
    Ok(out)
}
