//! Lookups the sharing API needs to describe shares: nodes by id and path,
//! a share's node as a given user sees it, group names, left group shares.

use strongroom_store::Val;

use super::{COLUMNS, GROUP, Share, Shares, mounts::columns};
use crate::{
    error::Result,
    files::{Node, fetch_node},
    path::TreePath,
    users::User,
};

impl Shares {
    /// An account by id (the sharing service's view of users).
    pub async fn account(&self, id: i64) -> Result<Option<User>> {
        self.users.get_by_id(id).await
    }

    pub async fn node(&self, id: i64) -> Result<Option<Node>> {
        let mut db = self.db.clone();
        fetch_node(&mut db, id).await
    }

    pub async fn node_at(&self, owner: &User, path: &TreePath) -> Result<Option<Node>> {
        let mut db = self.db.clone();
        crate::files::find(&mut db, owner, path).await
    }

    /// Ids of a folder's direct children.
    pub async fn child_ids(&self, folder: i64) -> Result<Vec<i64>> {
        let rows =
            self.db.rows("SELECT id FROM nodes WHERE parent_id = ?", &[folder.into()]).await?;
        rows.iter().map(|r| r.i64(0).map_err(Into::into)).collect()
    }

    /// The folders above a node, nearest first.
    pub async fn ancestors(&self, id: i64) -> Result<Vec<Node>> {
        let mut db = self.db.clone();
        let mut out = Vec::new();
        let mut at = fetch_node(&mut db, id).await?.and_then(|n| n.parent_id);
        while let Some(p) = at {
            let Some(n) = fetch_node(&mut db, p).await? else { break };
            at = n.parent_id;
            out.push(n);
        }
        Ok(out)
    }

    /// A group's id and display name (the id when it has none).
    pub async fn group_names(&self, id: i64) -> Result<(String, String)> {
        let row = self
            .db
            .row("SELECT gid, display_name FROM user_groups WHERE id = ?", &[id.into()])
            .await?;
        let Some(r) = row else { return Ok((String::new(), String::new())) };
        let gid = r.str(0)?;
        let name = r.opt_str(1)?.filter(|n| !n.is_empty()).unwrap_or_else(|| gid.clone());
        Ok((gid, name))
    }

    pub async fn group_name(&self, id: i64) -> Result<String> {
        let row = self.db.row("SELECT gid FROM user_groups WHERE id = ?", &[id.into()]).await?;
        Ok(row.map(|r| r.str(0)).transpose()?.unwrap_or_default())
    }

    /// A share's node and its path as `user` sees it: the owner's path, or
    /// the path through `user`'s mount; `None` when `user` cannot see it.
    pub async fn view_of(&self, user: &User, share: &Share) -> Result<Option<(Node, TreePath)>> {
        if share.owner_id == user.id {
            return self.live_node(user, share.node_id).await;
        }
        let Some(m) = self.mount_of_node(user, share.node_id).await? else { return Ok(None) };
        let Some(owner) = self.users.get_by_id(share.owner_id).await? else { return Ok(None) };
        let Some((node, path)) = self.live_node(&owner, share.node_id).await? else {
            return Ok(None);
        };
        if !path.starts_with(&m.base) {
            return Ok(None);
        }
        Ok(Some((node, path.rebase(&m.base, &m.at))))
    }

    /// The shares of node `node_id` that `user` receives (as user or group member).
    pub async fn received_on(&self, user: &User, node_id: i64) -> Result<Vec<Share>> {
        let groups = self.users.groups_of(user.id).await?;
        let mut out = Vec::new();
        for s in self.on_nodes(&[node_id]).await? {
            let mine = match s.share_type {
                GROUP => {
                    let name = self.group_name(s.recipient_group.unwrap_or(0)).await?;
                    groups.iter().any(|g| g.eq_ignore_ascii_case(&name))
                        && !self.has_left(s.id, user.id).await?
                }
                _ => s.recipient_user == Some(user.id),
            };
            if mine {
                out.push(s);
            }
        }
        Ok(out)
    }

    async fn has_left(&self, share_id: i64, user_id: i64) -> Result<bool> {
        let row = self
            .db
            .row(
                "SELECT 1 FROM share_left WHERE share_id = ? AND user_id = ?",
                &[share_id.into(), user_id.into()],
            )
            .await?;
        Ok(row.is_some())
    }

    /// Group shares `user_id` removed from its tree.
    pub async fn left_by(&self, user_id: i64) -> Result<Vec<Share>> {
        let sql = format!(
            "SELECT {} FROM shares s JOIN share_left l ON l.share_id = s.id WHERE l.user_id = ? ORDER BY s.id",
            columns("s")
        );
        self.db.rows(&sql, &[Val::I64(user_id)]).await?.iter().map(Share::from_row).collect()
    }

    /// Puts a group share `user_id` had left back into its tree; `None`
    /// when it had not left it or is no longer a member of the group.
    pub async fn rejoin(&self, share_id: i64, user_id: i64) -> Result<Option<Share>> {
        let Some(share) = self.get(share_id).await? else { return Ok(None) };
        let member = self
            .db
            .row(
                "SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?",
                &[share.recipient_group.unwrap_or(0).into(), user_id.into()],
            )
            .await?
            .is_some();
        if share.share_type != GROUP || !member {
            return Ok(None);
        }
        let n = self
            .db
            .exec(
                "DELETE FROM share_left WHERE share_id = ? AND user_id = ?",
                &[share_id.into(), user_id.into()],
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
        let sql = const_sql!("SELECT {COLUMNS} FROM shares WHERE id = ?");
        self.db.row(sql, &[share_id.into()]).await?.map(|r| Share::from_row(&r)).transpose()
    }
}
