//! Creating folders and writing file content.
//!
//! A PUT streams into a new blob, flushes it, and only then commits one
//! transaction that points the node at it; a crash at any point leaves the old
//! content or the new, never a mix and never a row without its bytes.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use strongroom_store::{INLINE_LIMIT, StoredBlob, Tx, Val};

use super::{
    Ctx, Files, Node, NodeKind, mime, parent_chain,
    tree::{chain_ids, propagate},
};
use crate::{
    access::Op,
    checksum::{Expected, Hasher},
    error::{Error, Result},
    locks::Guard,
    path::{TreePath, check_new_name},
    util::{new_etag, now_secs},
};

/// Conditions and metadata of an upload.
#[derive(Debug, Default, Clone)]
pub struct PutOptions {
    /// Modification time to record (seconds), else now.
    pub mtime: Option<i64>,
    /// The length the client announced, checked against what arrives.
    pub expected_len: Option<u64>,
    /// Only write if the current ETag is one of these (`If-Match`).
    pub if_match: Option<Vec<String>>,
    /// Only write if nothing exists at the path (`If-None-Match: *`).
    pub if_none_match_any: bool,
    /// Refuse if the current ETag is one of these (`If-None-Match`).
    pub if_none_match: Vec<String>,
    /// Refuse if the file was modified after this time, in seconds
    /// (`If-Unmodified-Since`).
    pub if_unmodified_since: Option<i64>,
    /// Only write if something exists at the path (`If-Match: *`).
    pub require_existing: bool,
    /// The checksum the client announced (`OC-Checksum`); a mismatch is refused.
    pub checksum: Option<Expected>,
    /// Never replace: when the name is taken (also by an upload that
    /// committed meanwhile), store under the first free "name (n)".
    pub free_name: bool,
    /// The client waits for `100 Continue` before it sends the body: the
    /// checks run before it whatever its size, so that a refused upload is
    /// never sent.
    pub awaits_continue: bool,
}

/// The result of a successful upload.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    pub node: Node,
    pub created: bool,
}

/// Something kept for recovery, with its size and age, as a candidate for purging.
struct Kept {
    what: History,
    size: i64,
    at: i64,
}

enum History {
    Version(i64),
    Trash(i64),
}

/// Content written and flushed, not yet referenced by any row. An empty file
/// has no blob.
pub(crate) struct Staged {
    pub key: Option<StoredBlob>,
    pub size: i64,
    /// `SHA1:… [TYPE:…]`, verified against the client's announcement.
    pub checksum: String,
}

impl Files {
    /// Creates a folder; the parent must exist and the name be free.
    pub async fn mkdir(&self, cx: &Ctx<'_>, path: &TreePath) -> Result<Node> {
        cx.allow(Op::Create)?;
        let name =
            path.name().ok_or_else(|| Error::AlreadyExists("the root folder exists".into()))?;
        check_new_name(path)?;
        self.retry(|| async {
            let mut tx = self.begin_for(cx.owner.id).await?;
            let chain = parent_chain(&mut tx, cx.owner, path).await?;
            let parent = chain.last().expect("non-empty chain");
            if super::child(&mut tx, parent.id, name).await?.is_some() {
                return Err(Error::AlreadyExists("the name is already taken".into()));
            }
            self.locks.check(&mut tx, cx, path, Guard::Create).await?;
            let now = now_secs();
            tx.insert(
                "INSERT INTO nodes (owner_id, parent_id, name, kind, size, mtime, ctime, etag) \
                 VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                &[
                    cx.owner.id.into(),
                    parent.id.into(),
                    name.into(),
                    NodeKind::Folder.code().into(),
                    now.into(),
                    now.into(),
                    new_etag().into(),
                ],
            )
            .await?;
            propagate(&mut tx, &chain_ids(&chain), 0).await?;
            let node = super::child(&mut tx, parent.id, name).await?.ok_or(Error::Retry)?;
            tx.commit().await?;
            Ok(node)
        })
        .await
    }

    /// Writes a file from a stream of bytes, creating or replacing it.
    pub async fn put<S>(
        &self,
        cx: &Ctx<'_>,
        path: &TreePath,
        body: S,
        opts: PutOptions,
    ) -> Result<PutOutcome>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send,
    {
        cx.allow(Op::Stat)?;
        path.name().ok_or_else(|| Error::NotAllowed("the root is a folder".into()))?;
        check_new_name(path)?;
        // Every check runs again in the transaction that commits. Before the
        // body they only spare receiving one that would be refused, which for
        // a small body of announced length is worth less than their queries
        // (a third of a small upload's), unless a quota may need room made
        // or the client holds the body back until told to send it.
        let small = opts.expected_len.is_some_and(|l| l <= INLINE_LIMIT as u64);
        let old_size = match small && cx.owner.quota < 0 && !opts.awaits_continue {
            true => 0,
            false => self.check_before_body(cx, path, &opts).await?,
        };
        if let Some(len) = opts.expected_len {
            self.make_room(cx, len as i64 - old_size).await?;
        }
        // A body of unknown length is cut off as soon as it outgrows the quota.
        let limit = match cx.owner.quota < 0 {
            true => None,
            false => {
                let (used, quota) = self.usage(cx).await?;
                Some((quota - used + old_size).max(0) as u64)
            }
        };
        let staged = self.stage(body, opts.expected_len, opts.checksum.as_ref(), limit).await?;
        if opts.expected_len.is_none() {
            if let Err(e) = self.make_room(cx, staged.size - old_size).await {
                if let Some(k) = &staged.key {
                    self.blobs.discard(k).await;
                }
                return Err(e);
            }
        }
        self.place(cx, path, staged, &opts).await
    }

    /// The checks of a PUT that need no content, made before receiving any;
    /// returns the size of the file the upload replaces (0 for a new one).
    async fn check_before_body(
        &self,
        cx: &Ctx<'_>,
        path: &TreePath,
        opts: &PutOptions,
    ) -> Result<i64> {
        let mut db = self.db.clone();
        let chain = parent_chain(&mut db, cx.owner, path).await?;
        let existing =
            super::child(&mut db, chain.last().expect("chain").id, path.name().unwrap_or(""))
                .await?;
        // A free name is looked for when committing.
        let existing = existing.filter(|_| !opts.free_name);
        // Replacing needs the right to change; adding, the right to create.
        cx.allow(if existing.is_some() { Op::Write } else { Op::Create })?;
        check_target(existing.as_ref(), opts)?;
        let guard = if existing.is_some() { Guard::Write } else { Guard::Create };
        self.locks.check(&mut db, cx, path, guard).await?;
        Ok(existing.as_ref().map_or(0, |n| n.size))
    }

    /// Commits staged content at `path`; on failure the blob is removed again.
    pub(crate) async fn place(
        &self,
        cx: &Ctx<'_>,
        path: &TreePath,
        staged: Staged,
        opts: &PutOptions,
    ) -> Result<PutOutcome> {
        let key = staged.key.clone();
        // The body may have taken long: the share that allowed it may be gone.
        let still = match cx.grant.and_then(|g| g.recheck.as_ref()) {
            Some(r) => r.0.still_allowed().await,
            None => Ok(()),
        };
        let result = match still {
            Ok(()) => self.commit_put(cx, path, &staged, opts).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            if let Some(k) = key {
                self.blobs.discard(&k).await;
            }
        }
        let (outcome, freed) = result?;
        self.release(freed).await;
        Ok(outcome)
    }

    /// Makes sure `delta` more bytes of files fit in the owner's quota. Trash
    /// and versions count against the quota too, but give way: when a write needs
    /// their room, the oldest of them are purged first.
    pub(crate) async fn make_room(&self, cx: &Ctx<'_>, delta: i64) -> Result<()> {
        if cx.owner.quota < 0 || delta <= 0 {
            return Ok(());
        }
        let (used, quota) = self.usage(cx).await?;
        if used + delta > quota {
            return Err(Error::InsufficientStorage(format!(
                "insufficient space: {delta} bytes required, {} available",
                (quota - used).max(0)
            )));
        }
        let mut history = self.history(cx).await?;
        let mut excess = used + delta + history.iter().map(|h| h.size).sum::<i64>() - quota;
        history.sort_by_key(|h| h.at);
        for h in history {
            if excess <= 0 {
                break;
            }
            match h.what {
                History::Version(id) => self.drop_versions(cx.owner.id, &[id]).await?,
                History::Trash(node) => {
                    self.purge_trash_node(cx.owner.id, node).await?;
                }
            }
            excess -= h.size;
        }
        Ok(())
    }

    /// Everything of the owner's that is kept for recovery: versions and trash items.
    async fn history(&self, cx: &Ctx<'_>) -> Result<Vec<Kept>> {
        let mut out = Vec::new();
        for r in self
            .db
            .rows(
                "SELECT id, size, created_at FROM versions WHERE user_id = ?",
                &[cx.owner.id.into()],
            )
            .await?
        {
            out.push(Kept { what: History::Version(r.i64(0)?), size: r.i64(1)?, at: r.i64(2)? });
        }
        let trash = self
            .db
            .rows("SELECT t.node_id, n.size, t.deleted_at FROM trash t JOIN nodes n ON n.id = t.node_id WHERE t.user_id = ?", &[cx.owner.id.into()])
            .await?;
        for r in trash {
            out.push(Kept { what: History::Trash(r.i64(0)?), size: r.i64(1)?, at: r.i64(2)? });
        }
        Ok(out)
    }

    /// Streams the body into a new blob, hashing it, and flushes it.
    pub(crate) async fn stage<S>(
        &self,
        body: S,
        expected: Option<u64>,
        checksum: Option<&Expected>,
        limit: Option<u64>,
    ) -> Result<Staged>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send,
    {
        let mut body = std::pin::pin!(body);
        let mut writer: Option<strongroom_store::BlobWriter> = None;
        let mut hasher = Hasher::new(checksum.map(|c| c.algo));
        let mut size: u64 = 0;
        let fail = |w: Option<strongroom_store::BlobWriter>, e: Error| async move {
            if let Some(w) = w {
                w.abort().await;
            }
            Err(e)
        };
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let message = format!("the upload was interrupted: {e}");
                    let e = match e.kind() {
                        std::io::ErrorKind::TimedOut => Error::TimedOut(message),
                        _ => Error::BadRequest(message),
                    };
                    return fail(writer, e).await;
                }
            };
            if chunk.is_empty() {
                continue;
            }
            size += chunk.len() as u64;
            if expected.is_some_and(|e| size > e) {
                return fail(
                    writer,
                    Error::BadRequest("the body is longer than its Content-Length".into()),
                )
                .await;
            }
            if limit.is_some_and(|l| size > l) {
                return fail(
                    writer,
                    Error::InsufficientStorage(
                        "insufficient space: the upload exceeds the quota".into(),
                    ),
                )
                .await;
            }
            hasher.update(&chunk);
            if writer.is_none() {
                writer = Some(self.blobs.create().await?);
            }
            if let Some(w) = writer.as_mut() {
                if let Err(e) = w.write(chunk).await {
                    return fail(writer, e.into()).await;
                }
            }
        }
        if expected.is_some_and(|e| size != e) {
            return fail(
                writer,
                Error::BadRequest("the body is shorter than its Content-Length".into()),
            )
            .await;
        }
        let checksum = match hasher.finish(checksum) {
            Ok(c) => c,
            Err(e) => return fail(writer, e).await,
        };
        let key = match writer {
            Some(w) => Some(w.finish().await?),
            None => None,
        };
        Ok(Staged { key, size: size as i64, checksum })
    }

    async fn commit_put(
        &self,
        cx: &Ctx<'_>,
        path: &TreePath,
        staged: &Staged,
        opts: &PutOptions,
    ) -> Result<(PutOutcome, Vec<String>)> {
        let name = path.name().unwrap_or_default();
        self.retry(|| async {
            let mut tx = self.begin_for(cx.owner.id).await?;
            let chain = parent_chain(&mut tx, cx.owner, path).await?;
            let parent_id = chain.last().expect("chain").id;
            let (name, path) = match opts.free_name {
                true => free_name_in(&mut tx, parent_id, path).await?,
                false => (name.to_owned(), path.clone()),
            };
            let (name, path) = (name.as_str(), &path);
            let existing = super::child(&mut tx, parent_id, name).await?;
            // Again here: the name may have been taken while the body arrived.
            cx.allow(if existing.is_some() { Op::Write } else { Op::Create })?;
            check_target(existing.as_ref(), opts)?;
            let guard = if existing.is_some() { Guard::Write } else { Guard::Create };
            self.locks.check(&mut tx, cx, path, guard).await?;
            let delta = staged.size - existing.as_ref().map_or(0, |n| n.size);
            check_quota_in(&mut tx, cx, delta).await?;
            let blob_id = match &staged.key {
                Some(stored) => Some(self.insert_blob(&mut tx, stored, staged.size).await?),
                None => None,
            };
            let freed =
                write_row(&mut tx, cx, parent_id, name, existing.as_ref(), staged, blob_id, opts)
                    .await?;
            propagate(&mut tx, &chain_ids(&chain), delta).await?;
            let node = super::child(&mut tx, parent_id, name).await?.ok_or(Error::Retry)?;
            tx.commit().await?;
            Ok((PutOutcome { node, created: existing.is_none() }, freed))
        })
        .await
    }
}

impl Files {
    /// Records a finished blob with one reference, inside the transaction that
    /// uses it, with its content when it is kept inline; returns its row id.
    /// The data key is re-wrapped first if the master key changed while the
    /// blob was written.
    pub(crate) async fn insert_blob(&self, tx: &mut Tx, b: &StoredBlob, size: i64) -> Result<i64> {
        let (kek, wrapped) = match self.blobs.seal_for_commit(b)? {
            Some(s) => (Some(s.master.clone()), Some(s.wrapped_hex())),
            None => (None, None),
        };
        Ok(tx
            .insert(
                "INSERT INTO blobs (blob_key, size, refs, created_at, kek_id, wrapped_key, content) \
                 VALUES (?, ?, 1, ?, ?, ?, ?)",
                &[
                    b.key.as_str().into(),
                    size.into(),
                    now_secs().into(),
                    kek.into(),
                    wrapped.into(),
                    b.inline.clone().into(),
                ],
            )
            .await?)
    }
}

/// Inserts or updates the file row; the content it replaces becomes a version.
/// Returns blob keys that lost their last reference.
#[allow(clippy::too_many_arguments)]
async fn write_row(
    tx: &mut Tx,
    cx: &Ctx<'_>,
    parent_id: i64,
    name: &str,
    existing: Option<&Node>,
    staged: &Staged,
    blob_id: Option<i64>,
    opts: &PutOptions,
) -> Result<Vec<String>> {
    let now = now_secs();
    let mtime = opts.mtime.unwrap_or(now);
    let ctype = mime::guess(name);
    match existing {
        Some(old) => {
            tx.exec(
                "UPDATE nodes SET size = ?, mtime = ?, etag = ?, blob_id = ?, content_type = ?, checksum = ? WHERE id = ?",
                &[
                    staged.size.into(), mtime.into(), new_etag().into(), blob_id.into(), ctype.into(),
                    staged.checksum.as_str().into(), old.id.into(),
                ],
            )
            .await?;
            super::versions::keep(tx, old).await?;
            Ok(Vec::new())
        }
        None => {
            let inserted = tx
                .insert(
                    "INSERT INTO nodes (owner_id, parent_id, name, kind, size, mtime, ctime, etag, blob_id, content_type, checksum) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &[
                        cx.owner.id.into(), parent_id.into(), name.into(), NodeKind::File.code().into(), staged.size.into(),
                        mtime.into(), now.into(), new_etag().into(), blob_id.into(), ctype.into(), staged.checksum.as_str().into(),
                    ],
                )
                .await;
            match inserted {
                Ok(_) => Ok(Vec::new()),
                // Another upload created the same name first: start over, it is now an update.
                Err(strongroom_store::DbError::Conflict) => Err(Error::Retry),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// The first of `name`, `name (2)`, `name (3)`… not taken in the folder.
async fn free_name_in(tx: &mut Tx, parent_id: i64, path: &TreePath) -> Result<(String, TreePath)> {
    let name = path.name().unwrap_or_default();
    for n in 1..=10_000u32 {
        let candidate = if n == 1 { name.to_owned() } else { crate::util::numbered(name, n) };
        if super::child(tx, parent_id, &candidate).await?.is_none() {
            let parent = path.parent().unwrap_or_default();
            return Ok((candidate.clone(), parent.join(&candidate)?));
        }
    }
    Err(Error::Conflict("no free name for the upload".into()))
}

fn check_target(existing: Option<&Node>, opts: &PutOptions) -> Result<()> {
    if existing.is_some_and(Node::is_folder) {
        return Err(Error::NotAllowed("a folder exists at this path".into()));
    }
    if opts.require_existing && existing.is_none() {
        return Err(Error::PreconditionFailed("the file does not exist".into()));
    }
    if opts.if_none_match_any && existing.is_some() {
        return Err(Error::PreconditionFailed("the file already exists".into()));
    }
    let changed = || Err(Error::PreconditionFailed("the file has changed on the server".into()));
    if let Some(wanted) = &opts.if_match {
        if !existing.is_some_and(|n| wanted.contains(&n.etag)) {
            return changed();
        }
    }
    if existing.is_some_and(|n| opts.if_none_match.contains(&n.etag)) {
        return changed();
    }
    if let (Some(n), Some(since)) = (existing, opts.if_unmodified_since) {
        if n.mtime > since {
            return changed();
        }
    }
    Ok(())
}

pub(crate) async fn check_quota_in(tx: &mut Tx, cx: &Ctx<'_>, delta: i64) -> Result<()> {
    if cx.owner.quota < 0 || delta <= 0 {
        return Ok(());
    }
    let row = tx.row("SELECT size FROM nodes WHERE id = ?", &[Val::I64(cx.owner.root_id)]).await?;
    let used = row.map(|r| r.i64(0)).transpose()?.unwrap_or(0);
    if used + delta > cx.owner.quota {
        return Err(Error::InsufficientStorage(format!(
            "insufficient space: {delta} bytes required, {} available",
            (cx.owner.quota - used).max(0)
        )));
    }
    Ok(())
}
