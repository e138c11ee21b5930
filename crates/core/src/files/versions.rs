//! Versions: when a file's content is replaced, the old blob is kept as a
//! version of the same file id. Versions are listed, read and restored by file
//! id, and expire by age and count.

use strongroom_store::{Conn, Row, Tx, Val};

use super::{
    Ctx, Files, Node, NodeKind, fetch_node,
    tree::{chain_ids, propagate, unref_blobs},
};
use crate::{
    access::Op,
    error::{Error, Result},
    util::{new_etag, now_secs},
};

/// An earlier content of a file.
#[derive(Debug, Clone)]
pub struct Version {
    pub id: i64,
    pub node_id: i64,
    pub blob_id: Option<i64>,
    pub blob_key: Option<String>,
    pub blob_seal: Option<strongroom_store::crypt::Seal>,
    pub size: i64,
    pub mtime: i64,
    pub checksum: Option<String>,
    pub created_at: i64,
}

impl Version {
    fn from_row(r: &Row) -> Result<Version> {
        Ok(Version {
            id: r.i64(0)?,
            node_id: r.i64(1)?,
            blob_id: r.opt_i64(2)?,
            size: r.i64(3)?,
            mtime: r.i64(4)?,
            checksum: r.opt_str(5)?,
            created_at: r.i64(6)?,
            blob_key: r.opt_str(7)?,
            blob_seal: strongroom_store::crypt::Seal::from_columns(r.opt_str(8)?, r.opt_str(9)?),
        })
    }

    /// The version's name in DAV: its modification time, made unique with the
    /// version id when two versions share a second.
    pub fn name(&self, all: &[Version]) -> String {
        let clash = all.iter().any(|v| v.id != self.id && v.mtime == self.mtime);
        if clash { format!("{}-{}", self.mtime, self.id) } else { self.mtime.to_string() }
    }

    /// The version as a node, for reading and for properties.
    pub fn as_node(&self, file: &Node) -> Node {
        Node {
            id: file.id,
            owner_id: file.owner_id,
            parent_id: None,
            name: file.name.clone(),
            kind: NodeKind::File,
            size: self.size,
            mtime: self.mtime,
            ctime: self.created_at,
            etag: format!("v{}", self.id),
            blob_id: self.blob_id,
            content_type: file.content_type.clone(),
            checksum: self.checksum.clone(),
            blob_key: self.blob_key.clone(),
            blob_seal: self.blob_seal.clone(),
        }
    }
}

const VERSION_COLUMNS: &str = "v.id, v.node_id, v.blob_id, v.size, v.mtime, v.checksum, v.created_at, b.blob_key, \
     b.kek_id, b.wrapped_key";

/// Keeps the current content of `old` as a version; its blob reference moves
/// from the node to the version.
pub(crate) async fn keep(tx: &mut Tx, old: &Node) -> Result<()> {
    tx.exec(
        "INSERT INTO versions (node_id, user_id, blob_id, size, mtime, checksum, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            old.id.into(), old.owner_id.into(), old.blob_id.into(), old.size.into(), old.mtime.into(),
            old.checksum.clone().into(), now_secs().into(),
        ],
    )
    .await?;
    Ok(())
}

/// Deletes the versions of the given nodes; returns blob keys no longer referenced.
pub(crate) async fn drop_for(tx: &mut Tx, node_ids: &[i64]) -> Result<Vec<String>> {
    let mut freed = Vec::new();
    for part in node_ids.chunks(500) {
        let list = strongroom_store::placeholders(part.len());
        let args: Vec<Val> = part.iter().map(|i| Val::I64(*i)).collect();
        let rows = tx
            .rows(
                &format!(
                    "SELECT blob_id FROM versions WHERE node_id IN ({list}) AND blob_id IS NOT NULL"
                ),
                &args,
            )
            .await?;
        let blobs: Vec<i64> =
            rows.iter().map(|r| r.i64(0)).collect::<std::result::Result<_, _>>()?;
        tx.exec(&format!("DELETE FROM versions WHERE node_id IN ({list})"), &args).await?;
        freed.extend(unref_blobs(tx, &blobs).await?);
    }
    Ok(freed)
}

async fn list<C: Conn>(c: &mut C, node_id: i64) -> Result<Vec<Version>> {
    let sql = const_sql!(
        "SELECT {VERSION_COLUMNS} FROM versions v LEFT JOIN blobs b ON b.id = v.blob_id WHERE v.node_id = ? ORDER BY v.mtime DESC, v.id DESC"
    );
    c.rows(sql, &[Val::I64(node_id)]).await?.iter().map(Version::from_row).collect()
}

impl Files {
    /// A file of the owner's live tree by id, with its ancestors (root first).
    pub(crate) async fn file_in_tree<C: Conn>(
        &self,
        c: &mut C,
        cx: &Ctx<'_>,
        file_id: i64,
    ) -> Result<(Node, Vec<Node>)> {
        let node = fetch_node(c, file_id).await?.ok_or(Error::NotFound)?;
        if node.owner_id != cx.owner.id || node.kind != NodeKind::File {
            return Err(Error::NotFound);
        }
        let mut chain = Vec::new();
        let mut parent = node.parent_id;
        while let Some(p) = parent {
            let n = fetch_node(c, p).await?.ok_or(Error::NotFound)?;
            parent = n.parent_id;
            chain.push(n);
        }
        chain.reverse();
        // Versions of items in the trash are not reachable.
        if chain.first().is_none_or(|r| r.id != cx.owner.root_id) {
            return Err(Error::NotFound);
        }
        // Through a share, only files at or below the shared node.
        if let Some(g) = cx.grant {
            if node.id != g.root_id && !chain.iter().any(|n| n.id == g.root_id) {
                return Err(Error::NotFound);
            }
        }
        Ok((node, chain))
    }

    /// The current file and its versions, newest first.
    pub async fn versions(&self, cx: &Ctx<'_>, file_id: i64) -> Result<(Node, Vec<Version>)> {
        cx.allow(Op::Read)?;
        let mut db = self.db.clone();
        let (node, _) = self.file_in_tree(&mut db, cx, file_id).await?;
        let versions = list(&mut db, node.id).await?;
        Ok((node, versions))
    }

    /// Makes a version the current content; the current content becomes a version.
    pub async fn restore_version(
        &self,
        cx: &Ctx<'_>,
        file_id: i64,
        version_id: i64,
    ) -> Result<Node> {
        cx.allow(Op::Write)?;
        self.retry(|| async {
            let mut tx = self.begin_for(cx.owner.id).await?;
            let (node, chain) = self.file_in_tree(&mut tx, cx, file_id).await?;
            let versions = list(&mut tx, node.id).await?;
            let v = versions.into_iter().find(|v| v.id == version_id).ok_or(Error::NotFound)?;
            let path = path_of(&chain, &node);
            self.locks.check(&mut tx, cx, &path, crate::locks::Guard::Write).await?;
            super::write::check_quota_in(&mut tx, cx, v.size - node.size).await?;
            keep(&mut tx, &node).await?;
            tx.exec(
                "UPDATE nodes SET size = ?, mtime = ?, etag = ?, blob_id = ?, checksum = ? WHERE id = ?",
                &[v.size.into(), now_secs().into(), new_etag().into(), v.blob_id.into(), v.checksum.clone().into(), node.id.into()],
            )
            .await?;
            // The version's blob reference now belongs to the node.
            tx.exec("DELETE FROM versions WHERE id = ?", &[v.id.into()]).await?;
            propagate(&mut tx, &chain_ids(&chain), v.size - node.size).await?;
            let restored = fetch_node(&mut tx, node.id).await?.ok_or(Error::Retry)?;
            tx.commit().await?;
            Ok(restored)
        })
        .await
    }

    /// Deletes versions older than `cutoff`, and all but the newest `keep_per_file`
    /// of each file.
    pub async fn versions_expire(&self, cutoff: i64, keep_per_file: usize) -> Result<usize> {
        let rows = self
            .db
            .rows("SELECT id, node_id, created_at, user_id FROM versions ORDER BY user_id, node_id, created_at DESC, id DESC", &[])
            .await?;
        let mut doomed: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
        let mut current = None;
        let mut seen = 0;
        for r in rows {
            let (id, node, created, user) = (r.i64(0)?, r.i64(1)?, r.i64(2)?, r.i64(3)?);
            if current != Some(node) {
                current = Some(node);
                seen = 0;
            }
            seen += 1;
            if created < cutoff || seen > keep_per_file {
                doomed.entry(user).or_default().push(id);
            }
        }
        let mut n = 0;
        for (user, ids) in doomed {
            for part in ids.chunks(200) {
                self.drop_versions(user, part).await?;
                n += part.len();
            }
        }
        Ok(n)
    }

    /// Deletes versions of `user_id`'s files.
    pub(crate) async fn drop_versions(&self, user_id: i64, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_for(user_id).await?;
        let list = strongroom_store::placeholders(ids.len());
        let args: Vec<Val> = ids.iter().map(|i| Val::I64(*i)).collect();
        let rows = tx
            .rows(
                &format!(
                    "SELECT blob_id FROM versions WHERE id IN ({list}) AND blob_id IS NOT NULL"
                ),
                &args,
            )
            .await?;
        let blobs: Vec<i64> =
            rows.iter().map(|r| r.i64(0)).collect::<std::result::Result<_, _>>()?;
        tx.exec(&format!("DELETE FROM versions WHERE id IN ({list})"), &args).await?;
        let freed = unref_blobs(&mut tx, &blobs).await?;
        tx.commit().await?;
        self.release(freed).await;
        Ok(())
    }
}

/// The path of `node` given its ancestors from the root.
fn path_of(chain: &[Node], node: &Node) -> crate::path::TreePath {
    let names =
        chain.iter().skip(1).map(|n| n.name.clone()).chain(std::iter::once(node.name.clone()));
    crate::path::TreePath::from_segments(names).unwrap_or_default()
}
