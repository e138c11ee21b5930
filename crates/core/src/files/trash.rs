//! The trash bin: a deleted node keeps its id and its rows, and moves under the
//! owner's hidden trash root as `<name>.d<deletion time>`, with its original
//! location recorded. Restoring moves it back; purging deletes it for good.

use strongroom_store::{Row, Tx, Val};

use super::{
    Ctx, Files, Node, NodeKind, child, children, resolve,
    tree::{chain_ids, node_by_id, propagate, remove_subtree},
};
use crate::{
    access::Op,
    error::{Error, Result},
    path::TreePath,
    users::insert_hidden_root,
    util::now_secs,
};

/// A top-level item in the trash.
#[derive(Debug, Clone)]
pub struct TrashItem {
    pub node: Node,
    /// Path of the item before deletion, relative to the files root (`Docs/a.txt`).
    pub original_path: String,
    pub deleted_at: i64,
}

impl TrashItem {
    pub fn original_name(&self) -> &str {
        self.original_path.rsplit('/').next().unwrap_or(&self.original_path)
    }
}

/// The owner's trash root, made on first use for accounts older than the trash.
pub(crate) async fn trash_root(tx: &mut Tx, user_id: i64) -> Result<i64> {
    let row = tx.row("SELECT trash_root_id FROM users WHERE id = ?", &[user_id.into()]).await?;
    if let Some(id) = row.map(|r| r.opt_i64(0)).transpose()?.flatten() {
        return Ok(id);
    }
    let id = insert_hidden_root(tx, user_id, now_secs()).await?;
    tx.exec("UPDATE users SET trash_root_id = ? WHERE id = ?", &[id.into(), user_id.into()])
        .await?;
    Ok(id)
}

/// Moves `node` (whose ancestors are `chain`, root first) from `path` into the trash.
pub(crate) async fn move_to_trash(
    tx: &mut Tx,
    owner_id: i64,
    chain: &[Node],
    node: &Node,
    path: &TreePath,
) -> Result<()> {
    let root = trash_root(tx, owner_id).await?;
    let now = now_secs();
    let mut stamp = now;
    let name = loop {
        let candidate = format!("{}.d{stamp}", node.name);
        if child(tx, root, &candidate).await?.is_none() {
            break candidate;
        }
        stamp += 1;
    };
    tx.exec(
        "UPDATE nodes SET parent_id = ?, name = ? WHERE id = ?",
        &[root.into(), name.into(), node.id.into()],
    )
    .await?;
    let original = path.segments().join("/");
    tx.exec(
        "INSERT INTO trash (node_id, user_id, original_path, deleted_at) VALUES (?, ?, ?, ?)",
        &[node.id.into(), owner_id.into(), original.into(), now.into()],
    )
    .await?;
    propagate(tx, &chain_ids(chain), -node.size).await?;
    propagate(tx, &[root], node.size).await?;
    Ok(())
}

const TRASH_COLUMNS: &str = "t.node_id, t.original_path, t.deleted_at";

fn trash_meta(r: &Row) -> Result<(i64, String, i64)> {
    Ok((r.i64(0)?, r.str(1)?, r.i64(2)?))
}

impl Files {
    /// The top-level items of the owner's trash, newest first.
    pub async fn trash_list(&self, cx: &Ctx<'_>) -> Result<Vec<TrashItem>> {
        cx.allow(Op::Stat)?;
        let sql = const_sql!(
            "SELECT {TRASH_COLUMNS} FROM trash t WHERE t.user_id = ? ORDER BY t.deleted_at DESC, t.node_id DESC"
        );
        let mut db = self.db.clone();
        let rows = db.rows(sql, &[Val::I64(cx.owner.id)]).await?;
        let mut out = Vec::new();
        for r in rows {
            let (id, original_path, deleted_at) = trash_meta(&r)?;
            if let Some(node) = self.node(&mut db, id).await? {
                out.push(TrashItem { node, original_path, deleted_at });
            }
        }
        Ok(out)
    }

    /// Finds a trash item by its trash name and, below it, `rest`.
    pub async fn trash_lookup(
        &self,
        cx: &Ctx<'_>,
        item: &str,
        rest: &[String],
    ) -> Result<(TrashItem, Node)> {
        cx.allow(Op::Stat)?;
        let items = self.trash_list(cx).await?;
        let item = items.into_iter().find(|i| i.node.name == item).ok_or(Error::NotFound)?;
        let mut db = self.db.clone();
        let mut node = item.node.clone();
        for name in rest {
            if !node.is_folder() {
                return Err(Error::NotFound);
            }
            node = child(&mut db, node.id, name).await?.ok_or(Error::NotFound)?;
        }
        Ok((item, node))
    }

    /// Deletes a trash item for good.
    pub async fn trash_purge(&self, cx: &Ctx<'_>, item: &TrashItem) -> Result<()> {
        cx.allow(Op::Delete)?;
        let freed = self
            .retry(|| async {
                let mut tx = self.begin_for(cx.owner.id).await?;
                let root = trash_root(&mut tx, cx.owner.id).await?;
                let node = node_by_id(&mut tx, item.node.id).await.map_err(|_| Error::NotFound)?;
                if node.parent_id != Some(root) {
                    return Err(Error::NotFound);
                }
                let freed = remove_subtree(&mut tx, &node).await?;
                tx.exec("DELETE FROM trash WHERE node_id = ?", &[node.id.into()]).await?;
                propagate(&mut tx, &[root], -node.size).await?;
                tx.commit().await?;
                Ok(freed)
            })
            .await?;
        self.release(freed).await;
        Ok(())
    }

    /// Empties the owner's trash.
    pub async fn trash_empty(&self, cx: &Ctx<'_>) -> Result<()> {
        for item in self.trash_list(cx).await? {
            match self.trash_purge(cx, &item).await {
                Ok(()) | Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Puts a trash item back at its original location (or in the root when that
    /// folder is gone), under a " (restored)" name when the original is taken.
    /// The node keeps its id.
    pub async fn trash_restore(&self, cx: &Ctx<'_>, item: &TrashItem) -> Result<Node> {
        cx.allow(Op::Create)?;
        self.retry(|| async {
            let mut tx = self.begin_for(cx.owner.id).await?;
            let root = trash_root(&mut tx, cx.owner.id).await?;
            let node = node_by_id(&mut tx, item.node.id).await.map_err(|_| Error::NotFound)?;
            if node.parent_id != Some(root) {
                return Err(Error::NotFound);
            }
            super::write::check_quota_in(&mut tx, cx, node.size).await?;
            let original = TreePath::from_segments(item.original_path.split('/'))?;
            let parent_path = original.parent().unwrap_or_default();
            let chain = match resolve(&mut tx, cx.owner, &parent_path).await? {
                Some(c) if c.last().is_some_and(Node::is_folder) => c,
                _ => resolve(&mut tx, cx.owner, &TreePath::root()).await?.ok_or(Error::NotFound)?,
            };
            let parent = chain.last().expect("chain").id;
            let name = free_name(&mut tx, parent, item.original_name()).await?;
            tx.exec(
                "UPDATE nodes SET parent_id = ?, name = ? WHERE id = ?",
                &[parent.into(), name.into(), node.id.into()],
            )
            .await?;
            tx.exec("DELETE FROM trash WHERE node_id = ?", &[node.id.into()]).await?;
            propagate(&mut tx, &[root], -node.size).await?;
            propagate(&mut tx, &chain_ids(&chain), node.size).await?;
            let restored = node_by_id(&mut tx, node.id).await?;
            tx.commit().await?;
            Ok(restored)
        })
        .await
    }

    /// Purges trash items deleted before `cutoff` (Unix seconds), in every account.
    pub async fn trash_expire(&self, cutoff: i64) -> Result<usize> {
        let rows = self
            .db
            .rows("SELECT node_id, user_id FROM trash WHERE deleted_at < ?", &[cutoff.into()])
            .await?;
        let mut purged = 0;
        for r in rows {
            let (node_id, user_id) = (r.i64(0)?, r.i64(1)?);
            purged += usize::from(self.purge_trash_node(user_id, node_id).await?);
        }
        Ok(purged)
    }

    /// Purges one trashed node of `user_id`; false when it is no longer there.
    pub(crate) async fn purge_trash_node(&self, user_id: i64, node_id: i64) -> Result<bool> {
        let freed = self
            .retry(|| async {
                let mut tx = self.begin_for(user_id).await?;
                let root = trash_root(&mut tx, user_id).await?;
                let Some(node) = super::fetch_node(&mut tx, node_id).await? else {
                    return Ok(None);
                };
                if node.parent_id != Some(root) {
                    return Ok(None);
                }
                let freed = remove_subtree(&mut tx, &node).await?;
                tx.exec("DELETE FROM trash WHERE node_id = ?", &[node.id.into()]).await?;
                propagate(&mut tx, &[root], -node.size).await?;
                tx.commit().await?;
                Ok(Some(freed))
            })
            .await?;
        let Some(freed) = freed else { return Ok(false) };
        self.release(freed).await;
        Ok(true)
    }

    /// The children of a folder inside the trash.
    pub async fn trash_children(&self, cx: &Ctx<'_>, folder: &Node) -> Result<Vec<Node>> {
        cx.allow(Op::Stat)?;
        if folder.owner_id != cx.owner.id || folder.kind != NodeKind::Folder {
            return Err(Error::NotFound);
        }
        let mut db = self.db.clone();
        children(&mut db, folder.id).await
    }
}

/// `name`, or `stem (restored).ext`, `stem (restored 2).ext`, … whichever is free.
async fn free_name(tx: &mut Tx, parent: i64, name: &str) -> Result<String> {
    if child(tx, parent, name).await?.is_none() {
        return Ok(name.to_owned());
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    for n in 1..1000 {
        let label = if n == 1 { " (restored)".to_owned() } else { format!(" (restored {n})") };
        let candidate = format!("{stem}{label}{ext}");
        if child(tx, parent, &candidate).await?.is_none() {
            return Ok(candidate);
        }
    }
    Err(Error::Conflict("no free name to restore to".into()))
}
