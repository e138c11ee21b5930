//! Deleting, copying and moving subtrees, and keeping ancestors up to date.

use std::collections::HashMap;

use strongroom_store::{Tx, Val, placeholders};

use super::{Ctx, Files, Node, NodeKind, children, parent_chain, resolve};
use crate::{
    access::Op,
    error::{Error, Result},
    files::write::check_quota_in,
    locks::Guard,
    path::{TreePath, check_new_name},
    users::User,
    util::{new_etag, now_secs},
};

/// Rows changed per statement when a subtree is handled in bulk.
const BATCH: usize = 500;

/// Whether the destination of a copy or move was new or replaced.
#[derive(Debug, Clone)]
pub struct Placed {
    pub node: Node,
    pub created: bool,
}

impl Files {
    /// Deletes a file or a folder with everything below it: it goes to the trash.
    pub async fn delete(&self, cx: &Ctx<'_>, path: &TreePath) -> Result<()> {
        cx.allow(Op::Delete)?;
        if path.is_root() {
            return Err(Error::Forbidden("the root folder cannot be deleted".into()));
        }
        self.retry(|| async {
            let mut tx = self.begin_for(cx.owner.id).await?;
            let mut chain = resolve(&mut tx, cx.owner, path).await?.ok_or(Error::NotFound)?;
            let node = chain.pop().expect("chain");
            self.locks.check(&mut tx, cx, path, Guard::Remove).await?;
            super::trash::move_to_trash(&mut tx, cx.owner.id, &chain, &node, path).await?;
            self.locks.forget_below(&mut tx, cx.owner.id, path).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Copies `from` to `to`. For folders `deep` copies everything below,
    /// otherwise only the folder and its properties.
    pub async fn copy(
        &self,
        cx: &Ctx<'_>,
        from: &TreePath,
        to: &TreePath,
        overwrite: bool,
        deep: bool,
    ) -> Result<Placed> {
        self.copy_across(cx, from, cx, to, overwrite, deep).await
    }

    /// Copies `from` of the tree of `from_cx` to `to` of the tree of `to_cx`
    /// (the same tree, or one's own files and a share one received, or two
    /// shares): content is shared by blob, the copy belongs to the
    /// destination's owner and counts against its quota. Both owners' rows
    /// are locked, in id order, so changes to either tree do not interleave
    /// with it.
    pub async fn copy_across(
        &self,
        from_cx: &Ctx<'_>,
        from: &TreePath,
        to_cx: &Ctx<'_>,
        to: &TreePath,
        overwrite: bool,
        deep: bool,
    ) -> Result<Placed> {
        from_cx.allow(Op::Read)?;
        to_cx.allow(Op::Create)?;
        check_new_name(to)?;
        // Two shares of one owner may name the same tree: never into itself.
        if from_cx.owner.id == to_cx.owner.id {
            check_not_inside(from, to)?;
        }
        let (placed, freed) = self
            .retry(|| async {
                let (a, b) =
                    (from_cx.owner.id.min(to_cx.owner.id), from_cx.owner.id.max(to_cx.owner.id));
                let mut tx = self.begin_for(a).await?;
                if b != a {
                    tx.lock_row("users", b).await?;
                }
                let src = resolve(&mut tx, from_cx.owner, from)
                    .await?
                    .ok_or(Error::NotFound)?
                    .pop()
                    .expect("chain");
                let (chain, replaced, freed) =
                    self.clear_destination(&mut tx, to_cx, to, overwrite).await?;
                let size = if deep || src.kind == NodeKind::File { src.size } else { 0 };
                let delta = size - replaced.as_ref().map_or(0, |n| n.size);
                check_quota_in(&mut tx, to_cx, delta).await?;
                let parent = chain.last().expect("chain").id;
                let name = to.name().unwrap_or_default();
                let new_id =
                    copy_subtree(&mut tx, &src, parent, name, deep, to_cx.owner.id).await?;
                propagate(&mut tx, &chain_ids(&chain), delta).await?;
                let node = node_by_id(&mut tx, new_id).await?;
                tx.commit().await?;
                Ok((Placed { node, created: replaced.is_none() }, freed))
            })
            .await?;
        self.release(freed).await;
        Ok(placed)
    }

    /// Moves `from` of one tree to `to` of another: a copy, then the source
    /// goes to its owner's trash (so a failure half way loses nothing).
    /// Needs the right to delete the source before anything is copied.
    pub async fn move_across(
        &self,
        from_cx: &Ctx<'_>,
        from: &TreePath,
        to_cx: &Ctx<'_>,
        to: &TreePath,
        overwrite: bool,
    ) -> Result<Placed> {
        from_cx.allow(Op::Delete)?;
        if from.is_root() {
            return Err(Error::Forbidden("the root folder cannot be moved".into()));
        }
        let placed = self.copy_across(from_cx, from, to_cx, to, overwrite, true).await?;
        self.delete(from_cx, from).await?;
        Ok(placed)
    }

    /// Moves or renames `from` to `to`; the node keeps its id.
    pub async fn rename(
        &self,
        cx: &Ctx<'_>,
        from: &TreePath,
        to: &TreePath,
        overwrite: bool,
    ) -> Result<Placed> {
        cx.allow(Op::Delete)?;
        cx.allow(Op::Create)?;
        check_new_name(to)?;
        if from.is_root() {
            return Err(Error::Forbidden("the root folder cannot be moved".into()));
        }
        check_not_inside(from, to)?;
        let (placed, freed) = self
            .retry(|| async {
                let mut tx = self.begin_for(cx.owner.id).await?;
                let mut src_chain =
                    resolve(&mut tx, cx.owner, from).await?.ok_or(Error::NotFound)?;
                let src = src_chain.pop().expect("chain");
                self.locks.check(&mut tx, cx, from, Guard::Remove).await?;
                let (chain, replaced, freed) =
                    self.clear_destination(&mut tx, cx, to, overwrite).await?;
                let parent = chain.last().expect("chain").id;
                tx.exec(
                    "UPDATE nodes SET parent_id = ?, name = ? WHERE id = ?",
                    &[parent.into(), to.name().unwrap_or_default().into(), src.id.into()],
                )
                .await?;
                propagate(&mut tx, &chain_ids(&src_chain), -src.size).await?;
                propagate(
                    &mut tx,
                    &chain_ids(&chain),
                    src.size - replaced.as_ref().map_or(0, |n| n.size),
                )
                .await?;
                self.locks.forget_below(&mut tx, cx.owner.id, from).await?;
                let node = node_by_id(&mut tx, src.id).await?;
                tx.commit().await?;
                Ok((Placed { node, created: replaced.is_none() }, freed))
            })
            .await?;
        self.release(freed).await;
        Ok(placed)
    }

    /// Prepares the destination of a copy or move: its parent must exist, and an
    /// existing node is removed when overwriting is allowed.
    async fn clear_destination(
        &self,
        tx: &mut Tx,
        cx: &Ctx<'_>,
        to: &TreePath,
        overwrite: bool,
    ) -> Result<(Vec<Node>, Option<Node>, Vec<String>)> {
        let chain = parent_chain(tx, cx.owner, to).await?;
        let name =
            to.name().ok_or_else(|| Error::Forbidden("the root cannot be replaced".into()))?;
        let existing = super::child(tx, chain.last().expect("chain").id, name).await?;
        // Replacing a node removes it: through a share that needs the right
        // to delete, whatever the operation brings in its place.
        if existing.is_some() {
            cx.allow(Op::Delete)?;
        }
        let guard = if existing.is_some() { Guard::Remove } else { Guard::Create };
        self.locks.check(tx, cx, to, guard).await?;
        let Some(old) = existing else { return Ok((chain, None, Vec::new())) };
        if !overwrite {
            return Err(Error::PreconditionFailed(
                "the destination exists and Overwrite is F".into(),
            ));
        }
        // What is replaced goes to the trash, like a deletion; nothing is lost.
        super::trash::move_to_trash(tx, cx.owner.id, &chain, &old, to).await?;
        self.locks.forget_below(tx, cx.owner.id, to).await?;
        // The chain's sizes now exclude the old node; later propagation adds the new one.
        let chain = parent_chain(tx, cx.owner, to).await?;
        Ok((chain, Some(Node { size: 0, ..old }), Vec::new()))
    }

    /// Runs a transactional step again when it lost a race with another one.
    pub(crate) async fn retry<T, F, Fut>(&self, step: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        crate::util::retry(step).await
    }

    /// Removes every node of a user's tree and trash, their versions and the
    /// user's unfinished uploads (used when the account is deleted).
    pub async fn delete_tree_of(&self, user: &User) -> Result<()> {
        let mut tx = self.begin_for(user.id).await?;
        let mut freed = Vec::new();
        let trash = super::trash::trash_root(&mut tx, user.id).await?;
        for id in [user.root_id, trash] {
            // Already gone when an earlier deletion of the account was cut short.
            if let Some(root) = super::fetch_node(&mut tx, id).await? {
                freed.extend(remove_subtree(&mut tx, &root).await?);
            }
        }
        tx.exec("DELETE FROM trash WHERE user_id = ?", &[user.id.into()]).await?;
        freed.extend(super::uploads::drop_all(&mut tx, user.id).await?);
        tx.commit().await?;
        self.release(freed).await;
        Ok(())
    }
}

fn check_not_inside(from: &TreePath, to: &TreePath) -> Result<()> {
    if to.starts_with(from) {
        return Err(Error::Forbidden("the destination lies inside the source".into()));
    }
    if from.starts_with(to) {
        return Err(Error::Forbidden("the destination contains the source".into()));
    }
    Ok(())
}

pub(crate) fn chain_ids(chain: &[Node]) -> Vec<i64> {
    chain.iter().map(|n| n.id).collect()
}

pub(crate) async fn node_by_id(tx: &mut Tx, id: i64) -> Result<Node> {
    super::fetch_node(tx, id).await?.ok_or(Error::Retry)
}

/// Gives every folder in `ids` a new ETag and time and adds `delta` to its size.
pub(crate) async fn propagate(tx: &mut Tx, ids: &[i64], delta: i64) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE nodes SET etag = ?, mtime = ?, size = size + ? WHERE id IN ({})",
        placeholders(ids.len())
    );
    let mut args: Vec<Val> = vec![new_etag().into(), now_secs().into(), delta.into()];
    args.extend(ids.iter().map(|i| Val::I64(*i)));
    tx.exec(&sql, &args).await?;
    Ok(())
}

/// Every node of the subtree rooted at `root` (included), folders before their children.
async fn collect_subtree(tx: &mut Tx, root: &Node) -> Result<Vec<Node>> {
    let mut all = vec![root.clone()];
    let mut level: Vec<i64> = if root.is_folder() { vec![root.id] } else { Vec::new() };
    while !level.is_empty() {
        let mut next = Vec::new();
        for parent in level {
            for c in children(tx, parent).await? {
                if c.is_folder() {
                    next.push(c.id);
                }
                all.push(c);
            }
        }
        level = next;
    }
    Ok(all)
}

/// Deletes a subtree's rows, properties, favourites and versions; returns blob keys no
/// longer referenced.
pub(crate) async fn remove_subtree(tx: &mut Tx, root: &Node) -> Result<Vec<String>> {
    let nodes = collect_subtree(tx, root).await?;
    let ids: Vec<i64> = nodes.iter().map(|n| n.id).collect();
    for part in ids.chunks(BATCH) {
        let args: Vec<Val> = part.iter().map(|i| Val::I64(*i)).collect();
        let list = placeholders(part.len());
        tx.exec(&format!("DELETE FROM props WHERE node_id IN ({list})"), &args).await?;
        tx.exec(&format!("DELETE FROM favorites WHERE node_id IN ({list})"), &args).await?;
        tx.exec(&format!("DELETE FROM nodes WHERE id IN ({list})"), &args).await?;
    }
    let blobs: Vec<i64> = nodes.iter().filter_map(|n| n.blob_id).collect();
    let mut freed = unref_blobs(tx, &blobs).await?;
    freed.extend(super::versions::drop_for(tx, &ids).await?);
    Ok(freed)
}

/// Drops one reference per entry of `blob_ids`; returns the keys of stored
/// blobs that lost their last reference (their rows are deleted here, their
/// files after commit; inline content goes with its row).
pub(crate) async fn unref_blobs(tx: &mut Tx, blob_ids: &[i64]) -> Result<Vec<String>> {
    let mut counts: HashMap<i64, i64> = HashMap::new();
    for b in blob_ids {
        *counts.entry(*b).or_default() += 1;
    }
    let mut freed = Vec::new();
    for (id, n) in counts {
        tx.exec("UPDATE blobs SET refs = refs - ? WHERE id = ?", &[n.into(), id.into()]).await?;
        let row = tx
            .row(
                "SELECT refs, CASE WHEN content IS NULL THEN blob_key END FROM blobs WHERE id = ?",
                &[id.into()],
            )
            .await?;
        if let Some(r) = row {
            if r.i64(0)? <= 0 {
                freed.extend(r.opt_str(1)?);
                tx.exec("DELETE FROM blobs WHERE id = ?", &[id.into()]).await?;
            }
        }
    }
    Ok(freed)
}

/// Copies a node (and, when `deep`, its subtree) under `parent` as `name`.
/// Content is shared: the copy references the same immutable blobs.
/// Copies `src` (and with `deep` everything below it) under `parent` as
/// `name`, owned by `owner` (the destination tree's owner).
async fn copy_subtree(
    tx: &mut Tx,
    src: &Node,
    parent: i64,
    name: &str,
    deep: bool,
    owner: i64,
) -> Result<i64> {
    let top = insert_copy(tx, src, parent, name, deep || src.kind == NodeKind::File, owner).await?;
    if !(deep && src.is_folder()) {
        return Ok(top);
    }
    let mut level = vec![(src.id, top)];
    while !level.is_empty() {
        let mut next = Vec::new();
        for (old_parent, new_parent) in level {
            for c in children(tx, old_parent).await? {
                let id = insert_copy(tx, &c, new_parent, &c.name, true, owner).await?;
                if c.is_folder() {
                    next.push((c.id, id));
                }
            }
        }
        level = next;
    }
    Ok(top)
}

async fn insert_copy(
    tx: &mut Tx,
    src: &Node,
    parent: i64,
    name: &str,
    with_size: bool,
    owner: i64,
) -> Result<i64> {
    let now = now_secs();
    let size = if with_size { src.size } else { 0 };
    let id = tx
        .insert(
            "INSERT INTO nodes (owner_id, parent_id, name, kind, size, mtime, ctime, etag, blob_id, content_type, checksum) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                owner.into(), parent.into(), name.into(), src.kind.code().into(), size.into(), src.mtime.into(),
                now.into(), new_etag().into(), src.blob_id.into(), src.content_type.clone().into(), src.checksum.clone().into(),
            ],
        )
        .await?;
    if let Some(b) = src.blob_id {
        tx.exec("UPDATE blobs SET refs = refs + 1 WHERE id = ?", &[b.into()]).await?;
    }
    tx.exec(
        "INSERT INTO props (node_id, ns, name, value) SELECT ?, ns, name, value FROM props WHERE node_id = ?",
        &[id.into(), src.id.into()],
    )
    .await?;
    Ok(id)
}
