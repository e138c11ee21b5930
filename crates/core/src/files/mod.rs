//! The file tree: one SQL row per file or folder, content in immutable blobs.
//!
//! Every public operation takes a [`Ctx`] (who asks, whose tree, which lock
//! tokens were submitted) and passes [`crate::access::authorize`] before it
//! reads or changes anything. A change gives the node a new ETag and updates
//! ETag, size and time of every ancestor in the same transaction.

mod content;
mod convert;
mod favorites;
mod mime;
mod node;
mod props;
mod sweep;
mod trash;
mod tree;
mod uploads;
mod versions;
mod write;

use strongroom_store::{BlobKey, BlobStore, Conn, Db, INLINE_LIMIT, Row, Val};

pub use content::Content;
pub use convert::{Batch, BlobCounts};
pub use node::{Node, NodeKind};
pub use props::{DeadProp, PropChange};
pub use sweep::Swept;
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
        find(&mut db, cx.owner, path).await
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

    /// [`Files::stat`] for a download: with the node, where its content is,
    /// read by the same statement. A small file's content is kept in its
    /// blob's row, which the lookup joins anyway; asking for it with a
    /// statement of its own cost a small GET a fifth of its queries.
    pub async fn stat_for_read(
        &self,
        cx: &Ctx<'_>,
        path: &TreePath,
    ) -> Result<Option<(Node, Option<Content>)>> {
        cx.allow(Op::Stat)?;
        let mut db = self.db.clone();
        find_with_content(&mut db, cx.owner, path).await
    }

    /// Streams the bytes `range` of a file.
    pub async fn read(
        &self,
        cx: &Ctx<'_>,
        file: &Node,
        range: std::ops::Range<u64>,
    ) -> Result<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static>
    {
        self.read_located(cx, file, None, range).await
    }

    /// [`Files::read`] of a file whose content was located along with it
    /// ([`Files::stat_for_read`]); `None` looks it up.
    pub async fn read_located(
        &self,
        cx: &Ctx<'_>,
        file: &Node,
        content: Option<Content>,
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
        let seal = file.blob_seal.as_ref();
        let stream = self.serve_blob(&key, seal, file.size as u64, content, range).await;
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

/// Columns of one node in [`NODE_COLUMNS`].
const NODE_WIDTH: usize = 15;

/// Paths of up to this many segments are resolved by a join with one level
/// per segment ([`join_walk_sql`]), deeper ones by a recursive walk. MySQL
/// allows 61 tables in a join, and each level joins two.
const JOIN_WALK_MAX: usize = 24;

/// Resolves `path` in the owner's tree to the chain of nodes from the root to
/// the target, or `None` when some segment does not exist.
///
/// One query whatever the depth, each level found on the `(parent_id, name)`
/// index (files have no children, so a path through a file ends there). Up
/// to [`JOIN_WALK_MAX`] segments it is a chain of left joins that returns one
/// row holding every level: SQLite runs it as plain index lookups, where the
/// recursive walk built and read a queue and a result table of its own (a
/// quarter of a small GET's instructions). Deeper paths take the recursive
/// walk, whose rows number the segments found plus one.
pub(crate) async fn resolve<C: Conn>(
    c: &mut C,
    owner: &User,
    path: &TreePath,
) -> Result<Option<Vec<Node>>> {
    let segs = path.segments();
    // The root alone is a join of one level too: the recursive walk with no
    // step was run by SQLite's planner as a scan of every node.
    if segs.len() <= JOIN_WALK_MAX {
        return join_walk(c, owner, segs).await;
    }
    let mut args: Vec<Val> = Vec::with_capacity(segs.len() + 1);
    args.push(owner.root_id.into());
    args.extend(segs.iter().map(|s| Val::from(s.as_str())));
    let sql = walk_sql(segs.len());
    let rows = c.rows(&sql, &args).await?;
    if rows.is_empty() {
        return Err(Error::Internal("user has no home folder".into()));
    }
    if rows.len() != segs.len() + 1 {
        return Ok(None);
    }
    let nodes = rows.into_iter().map(Node::from_row).collect::<Result<Vec<_>>>()?;
    chain_from_root(nodes, owner.root_id).map(Some)
}

/// The node at `path` in the owner's tree, without the folders above it:
/// [`resolve`] for a caller that needs only the target. Up to
/// [`JOIN_WALK_MAX`] segments the join reads only the ids of the levels
/// above (on the index), and the row carries one node instead of one per
/// level (a third of the columns of a small GET's walk, each copied out and
/// most of them strings).
pub(crate) async fn find<C: Conn>(
    c: &mut C,
    owner: &User,
    path: &TreePath,
) -> Result<Option<Node>> {
    Ok(find_at(c, owner, path, false).await?.map(|(node, _)| node))
}

/// [`find`] with the node's content when its blob's row keeps it ([`Content`]).
async fn find_with_content<C: Conn>(
    c: &mut C,
    owner: &User,
    path: &TreePath,
) -> Result<Option<(Node, Option<Content>)>> {
    find_at(c, owner, path, true).await
}

/// [`find`], and with `content` also where the node's content is: `None`
/// when the path is too deep for the join (the caller then asks).
async fn find_at<C: Conn>(
    c: &mut C,
    owner: &User,
    path: &TreePath,
    content: bool,
) -> Result<Option<(Node, Option<Content>)>> {
    static KEPT: [[std::sync::OnceLock<String>; JOIN_WALK_MAX + 1]; 2] =
        [const { [const { std::sync::OnceLock::new() }; JOIN_WALK_MAX + 1] }; 2];
    let segs = path.segments();
    if segs.len() > JOIN_WALK_MAX {
        let node = resolve(c, owner, path).await?.and_then(|mut chain| chain.pop());
        return Ok(node.map(|n| (n, None)));
    }
    let sql = KEPT[usize::from(content)][segs.len()].get_or_init(|| find_sql(segs.len(), content));
    let mut row = join_walk_row(c, owner, segs, sql).await?;
    // A level the join did not find leaves its columns, and all below, NULL.
    if row.opt_i64(0)?.is_none() {
        return Ok(None);
    }
    let node = Node::from_row_at(&mut row, 0)?;
    let located = match content {
        false => None,
        true => Some(match row.take_bytes(NODE_WIDTH)? {
            // Sealed content is never kept in a row (`Files::locate`).
            Some(bytes) if node.blob_seal.is_none() => Content::Inline(bytes.into()),
            _ => Content::Stored,
        }),
    };
    Ok(Some((node, located)))
}

/// [`join_walk_sql`] that selects the last level only; with `content`, also
/// its blob's inline content when the file is small enough to have any
/// (`INLINE_LIMIT`: a large file's row is not read for it).
fn find_sql(depth: usize, content: bool) -> String {
    let mut from = String::from("nodes n0");
    for i in 1..=depth {
        let up = i - 1;
        from.push_str(&format!(
            " LEFT JOIN nodes n{i} ON n{i}.parent_id = n{up}.id AND n{i}.name = ?"
        ));
    }
    let mut columns = NODE_COLUMNS.replace("n.", &format!("n{depth}."));
    if content {
        columns
            .push_str(&format!(", CASE WHEN n{depth}.size <= {INLINE_LIMIT} THEN b.content END"));
    }
    format!(
        "SELECT {columns} FROM {from} LEFT JOIN blobs b ON b.id = n{depth}.blob_id WHERE n0.id = ?"
    )
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

/// [`resolve`] for paths of 0 to [`JOIN_WALK_MAX`] segments.
async fn join_walk<C: Conn>(c: &mut C, owner: &User, segs: &[String]) -> Result<Option<Vec<Node>>> {
    static KEPT: [std::sync::OnceLock<String>; JOIN_WALK_MAX + 1] =
        [const { std::sync::OnceLock::new() }; JOIN_WALK_MAX + 1];
    let sql = KEPT[segs.len()].get_or_init(|| join_walk_sql(segs.len()));
    let mut row = join_walk_row(c, owner, segs, sql).await?;
    let mut chain = Vec::with_capacity(segs.len() + 1);
    for level in 0..=segs.len() {
        let at = level * NODE_WIDTH;
        // A level the join did not find leaves its columns (and all below) NULL.
        if row.opt_i64(at)?.is_none() {
            return Ok(None);
        }
        chain.push(Node::from_row_at(&mut row, at)?);
    }
    Ok(Some(chain))
}

/// Runs a join walk's `sql` for `segs` from the owner's root; its one row.
async fn join_walk_row<C: Conn>(
    c: &mut C,
    owner: &User,
    segs: &[String],
    sql: &str,
) -> Result<Row> {
    let mut args: Vec<Val> = Vec::with_capacity(segs.len() + 1);
    args.extend(segs.iter().map(|s| Val::from(s.as_str())));
    args.push(owner.root_id.into());
    c.row(sql, &args).await?.ok_or_else(|| Error::Internal("user has no home folder".into()))
}

/// `SELECT` of the nodes from the root (`n0`, whose id is the last
/// parameter) down `depth` named children (one parameter each, in order),
/// each with its blob.
fn join_walk_sql(depth: usize) -> String {
    let level =
        |i: usize| NODE_COLUMNS.replace("n.", &format!("n{i}.")).replace("b.", &format!("b{i}."));
    let columns: Vec<String> = (0..=depth).map(level).collect();
    let mut from = String::from("nodes n0 LEFT JOIN blobs b0 ON b0.id = n0.blob_id");
    for i in 1..=depth {
        let up = i - 1;
        from.push_str(&format!(
            " LEFT JOIN nodes n{i} ON n{i}.parent_id = n{up}.id AND n{i}.name = ? \
             LEFT JOIN blobs b{i} ON b{i}.id = n{i}.blob_id"
        ));
    }
    format!("SELECT {} FROM {from} WHERE n0.id = ?", columns.join(", "))
}

/// The recursive walk for a path of `depth` segments, at least one.
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

/// A node of `owner`'s and its path from their root; `None` when it is not
/// theirs or not in their tree (in the trash, or a folder of versions).
pub(crate) async fn live_node<C: Conn>(
    c: &mut C,
    owner: &User,
    node_id: i64,
) -> Result<Option<(Node, TreePath)>> {
    let Some(node) = fetch_node(c, node_id).await? else { return Ok(None) };
    if node.owner_id != owner.id {
        return Ok(None);
    }
    let mut names = Vec::new();
    let mut at = node.clone();
    while let Some(p) = at.parent_id {
        names.push(at.name.clone());
        match fetch_node(c, p).await? {
            Some(n) => at = n,
            None => return Ok(None),
        }
    }
    if at.id != owner.root_id {
        return Ok(None);
    }
    names.reverse();
    Ok(Some((node, TreePath::from_segments(names)?)))
}

pub(crate) async fn fetch_node<C: Conn>(c: &mut C, id: i64) -> Result<Option<Node>> {
    let sql = const_sql!(
        "SELECT {NODE_COLUMNS} FROM nodes n LEFT JOIN blobs b ON b.id = n.blob_id WHERE n.id = ?"
    );
    let row = c.row(sql, &[Val::I64(id)]).await?;
    row.map(Node::from_row).transpose()
}

pub(crate) async fn child<C: Conn>(c: &mut C, parent: i64, name: &str) -> Result<Option<Node>> {
    let sql = const_sql!(
        "SELECT {NODE_COLUMNS} FROM nodes n LEFT JOIN blobs b ON b.id = n.blob_id \
         WHERE n.parent_id = ? AND n.name = ?"
    );
    let row = c.row(sql, &[parent.into(), name.into()]).await?;
    row.map(Node::from_row).transpose()
}

pub(crate) async fn children<C: Conn>(c: &mut C, parent: i64) -> Result<Vec<Node>> {
    let sql = const_sql!(
        "SELECT {NODE_COLUMNS} FROM nodes n LEFT JOIN blobs b ON b.id = n.blob_id \
         WHERE n.parent_id = ? ORDER BY n.name"
    );
    c.rows(sql, &[Val::I64(parent)]).await?.into_iter().map(Node::from_row).collect()
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
    fn walks_have_one_parameter_per_segment_and_the_root() {
        assert_eq!(walk_sql(2).matches(" THEN ?").count(), 2);
        let join = join_walk_sql(2);
        assert_eq!(join.matches('?').count(), 3);
        assert!(join.ends_with("WHERE n0.id = ?"));
        // Every level brings a whole node.
        assert_eq!(join.matches("n2.").count(), 12 + 3);
        assert_eq!(NODE_COLUMNS.split(',').count(), NODE_WIDTH);
        // The last level only; with its inline content as one column more.
        for content in [false, true] {
            let find = find_sql(2, content);
            assert_eq!(find.matches('?').count(), 3);
            assert_eq!(find.matches("n2.").count(), 12 + 3 + usize::from(content));
            assert_eq!(find.contains("b.content"), content);
        }
    }
}
