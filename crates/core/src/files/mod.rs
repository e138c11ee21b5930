//! The file tree: one SQL row per file or folder, content in immutable blobs.
//!
//! Every public operation takes a [`Ctx`] (who asks, whose tree, which lock
//! tokens were submitted) and passes [`crate::access::authorize`] before it
//! reads or changes anything. A change gives the node a new ETag and updates
//! ETag, size and time of every ancestor in the same transaction.

mod content;
mod convert;
mod mime;
mod node;
mod props;
mod trash;
mod tree;
mod uploads;
mod versions;
mod write;

use strongroom_store::{BlobKey, BlobStore, Conn, Db, Val};

pub use convert::{Batch, BlobCounts};
pub use node::{Node, NodeKind};
pub use props::{DeadProp, PropChange};
pub use trash::TrashItem;
pub use tree::Placed;
pub use uploads::{Chunk, Upload};
pub use versions::Version;
pub use write::{PutOptions, PutOutcome};

use crate::{
    access::{Grant, Op, Principal, authorize},
    error::{Error, Result},
    locks::Locks,
    path::TreePath,
    users::User,
};

/// The context of one operation: who asks, in whose tree, holding which locks.
pub struct Ctx<'a> {
    pub who: &'a Principal,
    pub owner: &'a User,
    /// Lock tokens the request submitted (from its `If` header).
    pub tokens: &'a [String],
    /// Set when the tree is reached through a share.
    pub grant: Option<&'a Grant>,
}

impl Ctx<'_> {
    fn allow(&self, op: Op) -> Result<()> {
        authorize(self.who, op, self.owner.id, self.grant)
    }
}

/// The file service.
#[derive(Clone)]
pub struct Files {
    db: Db,
    blobs: BlobStore,
    locks: Locks,
}

impl Files {
    pub fn new(db: Db, blobs: BlobStore) -> Files {
        Files { locks: Locks::new(db.clone()), db, blobs }
    }

    pub fn locks(&self) -> &Locks {
        &self.locks
    }

    /// Looks up a node by path; `None` when it does not exist.
    pub async fn stat(&self, cx: &Ctx<'_>, path: &TreePath) -> Result<Option<Node>> {
        cx.allow(Op::Stat)?;
        let mut db = self.db.clone();
        Ok(resolve(&mut db, cx.owner, path)
            .await?
            .map(|mut chain| chain.pop().expect("chain has the root")))
    }

    /// The direct children of a folder, by name.
    pub async fn children(&self, cx: &Ctx<'_>, folder: &Node) -> Result<Vec<Node>> {
        cx.allow(Op::List)?;
        if folder.owner_id != cx.owner.id {
            return Err(Error::NotFound);
        }
        let mut db = self.db.clone();
        children(&mut db, folder.id).await
    }

    /// Streams the bytes `range` of a file.
    pub async fn read(
        &self,
        cx: &Ctx<'_>,
        file: &Node,
        range: std::ops::Range<u64>,
    ) -> Result<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static>
    {
        cx.allow(Op::Read)?;
        if file.owner_id != cx.owner.id || file.kind != NodeKind::File {
            return Err(Error::NotFound);
        }
        let Some(key) = file.blob_key.as_deref() else {
            // An empty file has no blob.
            return Ok(futures_util::future::Either::Left(futures_util::stream::empty()));
        };
        let key = BlobKey::parse(key).ok_or_else(|| Error::Internal("bad blob key".into()))?;
        let stream = self.serve_blob(&key, file.blob_seal.as_ref(), file.size as u64, range).await;
        let stream = stream.map_err(|e| match e {
            // Said in terms of the file too, for the log; the client gets a 500.
            Error::Internal(what) => Error::Internal(format!("file {}: {what}", file.id)),
            e => e,
        })?;
        Ok(futures_util::future::Either::Right(stream))
    }

    /// Quota state of the owner: (used bytes, quota or negative for unlimited).
    pub async fn usage(&self, cx: &Ctx<'_>) -> Result<(i64, i64)> {
        cx.allow(Op::Stat)?;
        let row =
            self.db.row("SELECT size FROM nodes WHERE id = ?", &[cx.owner.root_id.into()]).await?;
        Ok((row.map(|r| r.i64(0)).transpose()?.unwrap_or(0), cx.owner.quota))
    }

    /// Starts a transaction that changes the tree of `owner_id`. It locks the
    /// owner's account row first, so that changes to one tree never interleave
    /// (sizes, locks and blob references stay consistent), while different
    /// users' trees change in parallel.
    pub(crate) async fn begin_for(&self, owner_id: i64) -> Result<strongroom_store::Tx> {
        let mut tx = self.db.begin().await?;
        tx.lock_row("users", owner_id).await?;
        Ok(tx)
    }

    pub(crate) async fn node<C: Conn>(&self, c: &mut C, id: i64) -> Result<Option<Node>> {
        fetch_node(c, id).await
    }

    /// Removes blobs that no committed row refers to any more. Failures only
    /// leave an orphan file behind, never a row without its bytes.
    async fn release(&self, keys: Vec<String>) {
        for k in keys {
            if let Some(key) = BlobKey::parse(&k) {
                if let Err(e) = self.blobs.delete(&key).await {
                    tracing::warn!(blob = %k, error = %e, "could not delete an unreferenced blob");
                }
            }
        }
    }
}

const NODE_COLUMNS: &str = "n.id, n.owner_id, n.parent_id, n.name, n.kind, n.size, n.mtime, \
     n.ctime, n.etag, n.blob_id, n.content_type, n.checksum, b.blob_key, b.kek_id, b.wrapped_key";

/// Resolves `path` in the owner's tree to the chain of nodes from the root to
/// the target, or `None` when some segment does not exist.
///
/// One query whatever the depth: a recursive walk from the owner's root that
/// at depth `d` follows the child named by segment `d` on the
/// `(parent_id, name)` index (files have no children, so the walk stops at
/// them). Fewer rows than segments plus one means a segment is missing.
pub(crate) async fn resolve<C: Conn>(
    c: &mut C,
    owner: &User,
    path: &TreePath,
) -> Result<Option<Vec<Node>>> {
    let segs = path.segments();
    if segs.is_empty() {
        // The root alone. Not a walk: SQLite's planner turned the walk that
        // has no step into a scan of every node (found by the scan notice of
        // the SQLite pool).
        return match fetch_node(c, owner.root_id).await? {
            Some(root) => Ok(Some(vec![root])),
            None => Err(Error::Internal("user has no home folder".into())),
        };
    }
    let mut args: Vec<Val> = Vec::with_capacity(segs.len() + 1);
    args.push(owner.root_id.into());
    args.extend(segs.iter().map(|s| Val::from(s.as_str())));
    let sql = resolve_sql(segs.len());
    let rows = c.rows(&sql, &args).await?;
    if rows.is_empty() {
        return Err(Error::Internal("user has no home folder".into()));
    }
    if rows.len() != segs.len() + 1 {
        return Ok(None);
    }
    let nodes = rows.iter().map(Node::from_row).collect::<Result<Vec<_>>>()?;
    chain_from_root(nodes, owner.root_id).map(Some)
}

/// Orders the rows of a walk from the root down by following parent links:
/// the query leaves them unordered, which spares the database a sort. Each
/// level holds exactly one node, the child of the level above.
fn chain_from_root(mut nodes: Vec<Node>, root_id: i64) -> Result<Vec<Node>> {
    let mut chain: Vec<Node> = Vec::with_capacity(nodes.len());
    while !nodes.is_empty() {
        let next = nodes.iter().position(|n| match chain.last() {
            None => n.id == root_id,
            Some(above) => n.parent_id == Some(above.id),
        });
        let Some(at) = next else {
            return Err(Error::Internal("a path walk returned a broken chain".into()));
        };
        chain.push(nodes.swap_remove(at));
    }
    Ok(chain)
}

/// The walk of [`resolve`] for paths of `depth` segments. Paths of up to 32
/// segments, nearly all of them, reuse text built once.
fn resolve_sql(depth: usize) -> std::borrow::Cow<'static, str> {
    const KEPT_WALKS: usize = 32;
    static KEPT: [std::sync::OnceLock<String>; KEPT_WALKS] =
        [const { std::sync::OnceLock::new() }; KEPT_WALKS];
    match KEPT.get(depth) {
        Some(kept) => kept.get_or_init(|| walk_sql(depth)).as_str().into(),
        None => walk_sql(depth).into(),
    }
}

/// The walk for a path of `depth` segments, at least one.
fn walk_sql(depth: usize) -> String {
    let mut case = String::from("CASE w.depth");
    for i in 0..depth {
        case.push_str(&format!(" WHEN {i} THEN ?"));
    }
    case.push_str(" END");
    let step = format!(
        "SELECT w.depth + 1, n.id FROM walk w JOIN nodes n ON n.parent_id = w.id \
         AND n.name = {case} WHERE w.depth < {depth}"
    );
    format!(
        "WITH RECURSIVE walk(depth, id) AS (SELECT 0, n0.id FROM nodes n0 WHERE n0.id = ? \
         UNION ALL {step}) \
         SELECT {NODE_COLUMNS} FROM walk w JOIN nodes n ON n.id = w.id \
         LEFT JOIN blobs b ON b.id = n.blob_id"
    )
}

pub(crate) async fn fetch_node<C: Conn>(c: &mut C, id: i64) -> Result<Option<Node>> {
    let sql = const_sql!(
        "SELECT {NODE_COLUMNS} FROM nodes n LEFT JOIN blobs b ON b.id = n.blob_id WHERE n.id = ?"
    );
    let row = c.row(sql, &[Val::I64(id)]).await?;
    row.map(|r| Node::from_row(&r)).transpose()
}

pub(crate) async fn child<C: Conn>(c: &mut C, parent: i64, name: &str) -> Result<Option<Node>> {
    let sql = const_sql!(
        "SELECT {NODE_COLUMNS} FROM nodes n LEFT JOIN blobs b ON b.id = n.blob_id \
         WHERE n.parent_id = ? AND n.name = ?"
    );
    let row = c.row(sql, &[parent.into(), name.into()]).await?;
    row.map(|r| Node::from_row(&r)).transpose()
}

pub(crate) async fn children<C: Conn>(c: &mut C, parent: i64) -> Result<Vec<Node>> {
    let sql = const_sql!(
        "SELECT {NODE_COLUMNS} FROM nodes n LEFT JOIN blobs b ON b.id = n.blob_id \
         WHERE n.parent_id = ? ORDER BY n.name"
    );
    c.rows(sql, &[Val::I64(parent)]).await?.iter().map(Node::from_row).collect()
}

/// Resolves the parent folder chain of `path`, which must exist and be a folder.
pub(crate) async fn parent_chain<C: Conn>(
    c: &mut C,
    owner: &User,
    path: &TreePath,
) -> Result<Vec<Node>> {
    let parent = path
        .parent()
        .ok_or_else(|| Error::Forbidden("the root folder cannot be replaced".into()))?;
    match resolve(c, owner, &parent).await? {
        Some(chain) if chain.last().is_some_and(|n| n.kind == NodeKind::Folder) => Ok(chain),
        _ => Err(Error::Conflict("the parent folder does not exist".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, parent_id: Option<i64>) -> Node {
        Node {
            id,
            owner_id: 1,
            parent_id,
            name: format!("n{id}"),
            kind: NodeKind::Folder,
            size: 0,
            mtime: 0,
            ctime: 0,
            etag: String::new(),
            blob_id: None,
            content_type: None,
            checksum: None,
            blob_key: None,
            blob_seal: None,
        }
    }

    #[test]
    fn a_walk_in_any_order_comes_back_from_the_root_down() {
        // Ids unrelated to depth: a folder made after its subfolder was moved in.
        let rows = vec![node(3, Some(9)), node(7, None), node(5, Some(3)), node(9, Some(7))];
        let chain = chain_from_root(rows, 7).expect("a chain");
        assert_eq!(chain.iter().map(|n| n.id).collect::<Vec<_>>(), [7, 9, 3, 5]);
        let broken = vec![node(7, None), node(5, Some(3))];
        assert!(chain_from_root(broken, 7).is_err());
    }

    #[test]
    fn walks_up_to_the_kept_depth_are_built_once_and_deeper_ones_each_time() {
        assert!(matches!(resolve_sql(3), std::borrow::Cow::Borrowed(_)));
        assert_eq!(resolve_sql(3), walk_sql(3));
        assert!(matches!(resolve_sql(40), std::borrow::Cow::Owned(_)));
        assert_eq!(walk_sql(2).matches(" THEN ?").count(), 2);
    }
}
