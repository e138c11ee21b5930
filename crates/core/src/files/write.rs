//! Creating folders and writing file content.
//!
//! A PUT streams into a new blob, flushes it, and only then commits one
//! transaction that points the node at it; a crash at any point leaves the old
//! content or the new, never a mix and never a row without its bytes.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha1::{Digest, Sha1};
use strongroom_store::{BlobKey, Tx, Val};

use super::{
    Ctx, Files, Node, NodeKind, RETRIES, mime, parent_chain,
    tree::{chain_ids, propagate, unref_blobs},
};
use crate::{
    access::Op,
    error::{Error, Result},
    locks::Guard,
    path::TreePath,
    util::{new_etag, now_secs},
};

/// Conditions and metadata of an upload.
#[derive(Debug, Default, Clone)]
pub struct PutOptions {
    /// Modification time to record (seconds), else now.
    pub mtime: Option<i64>,
    /// The length the client announced, checked against what arrives.
    pub expected_len: Option<u64>,
    /// Only write if the current ETag is this one.
    pub if_match: Option<String>,
    /// Only write if nothing exists at the path.
    pub if_none_match_any: bool,
    /// Only write if something exists at the path (`If-Match: *`).
    pub require_existing: bool,
}

/// The result of a successful upload.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    pub node: Node,
    pub created: bool,
}

/// A blob written and flushed, not yet referenced by any row.
struct StagedBlob {
    key: BlobKey,
    size: i64,
    sha1: String,
}

impl Files {
    /// Creates a folder; the parent must exist and the name be free.
    pub async fn mkdir(&self, cx: &Ctx<'_>, path: &TreePath) -> Result<Node> {
        cx.allow(Op::Create)?;
        let name = path.name().ok_or_else(|| Error::AlreadyExists("the root folder exists".into()))?;
        for _ in 0..RETRIES {
            let mut tx = self.db.begin().await?;
            let chain = parent_chain(&mut tx, cx.owner, path).await?;
            let parent = chain.last().expect("non-empty chain");
            if super::child(&mut tx, parent.id, name).await?.is_some() {
                return Err(Error::AlreadyExists("the name is already taken".into()));
            }
            self.locks.check(&mut tx, cx, path, Guard::Create).await?;
            let now = now_secs();
            let inserted = tx
                .insert(
                    "INSERT INTO nodes (owner_id, parent_id, name, kind, size, mtime, ctime, etag) \
                     VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                    &[cx.owner.id.into(), parent.id.into(), name.into(), NodeKind::Folder.code().into(), now.into(), now.into(), new_etag().into()],
                )
                .await;
            match inserted {
                Ok(_) => {}
                Err(strongroom_store::DbError::Conflict) => {
                    return Err(Error::AlreadyExists("the name is already taken".into()));
                }
                Err(e) => return Err(e.into()),
            }
            propagate(&mut tx, &chain_ids(&chain), 0).await?;
            let node = super::child(&mut tx, parent.id, name).await?.ok_or(Error::Retry)?;
            match tx.commit().await {
                Ok(()) => return Ok(node),
                Err(strongroom_store::DbError::Retry) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable("the folder could not be created: too much contention".into()))
    }

    /// Writes a file from a stream of bytes, creating or replacing it.
    pub async fn put<S>(&self, cx: &Ctx<'_>, path: &TreePath, body: S, opts: PutOptions) -> Result<PutOutcome>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send,
    {
        cx.allow(Op::Write)?;
        path.name().ok_or_else(|| Error::NotAllowed("the root is a folder".into()))?;
        // Checks that need no content, before receiving any.
        let mut db = self.db.clone();
        let chain = parent_chain(&mut db, cx.owner, path).await?;
        let existing = super::child(&mut db, chain.last().expect("chain").id, path.name().unwrap_or("")).await?;
        check_target(existing.as_ref(), &opts)?;
        self.locks.check(&mut db, cx, path, Guard::Write).await?;
        if let Some(len) = opts.expected_len {
            self.check_quota(cx, len as i64 - existing.as_ref().map_or(0, |n| n.size)).await?;
        }

        let staged = self.stage(body, opts.expected_len).await?;
        let key = staged.as_ref().map(|s| s.key.clone());
        let result = self.commit_put(cx, path, staged, &opts).await;
        if result.is_err() {
            if let Some(k) = key {
                let _ = self.blobs.delete(&k).await;
            }
        }
        let (outcome, freed) = result?;
        self.release(freed).await;
        Ok(outcome)
    }

    async fn check_quota(&self, cx: &Ctx<'_>, delta: i64) -> Result<()> {
        let (used, quota) = self.usage(cx).await?;
        if quota >= 0 && delta > 0 && used + delta > quota {
            return Err(Error::InsufficientStorage(format!(
                "insufficient space: {delta} bytes required, {} available",
                (quota - used).max(0)
            )));
        }
        Ok(())
    }

    /// Streams the body into a new blob and flushes it. An empty body makes no blob.
    async fn stage<S>(&self, body: S, expected: Option<u64>) -> Result<Option<StagedBlob>>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send,
    {
        let mut body = std::pin::pin!(body);
        let mut writer: Option<strongroom_store::BlobWriter> = None;
        let mut hasher = Sha1::new();
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    if let Some(w) = writer {
                        w.abort().await;
                    }
                    return Err(Error::BadRequest(format!("the upload was interrupted: {e}")));
                }
            };
            if chunk.is_empty() {
                continue;
            }
            size += chunk.len() as u64;
            if expected.is_some_and(|e| size > e) {
                if let Some(w) = writer {
                    w.abort().await;
                }
                return Err(Error::BadRequest("the body is longer than its Content-Length".into()));
            }
            hasher.update(&chunk);
            if writer.is_none() {
                writer = Some(self.blobs.create().await?);
            }
            if let Some(w) = writer.as_mut() {
                w.write(chunk).await?;
            }
        }
        if expected.is_some_and(|e| size != e) {
            if let Some(w) = writer {
                w.abort().await;
            }
            return Err(Error::BadRequest("the body is shorter than its Content-Length".into()));
        }
        let Some(w) = writer else { return Ok(None) };
        let key = w.finish().await?;
        Ok(Some(StagedBlob { key, size: size as i64, sha1: hex::encode(hasher.finalize()) }))
    }

    async fn commit_put(
        &self,
        cx: &Ctx<'_>,
        path: &TreePath,
        staged: Option<StagedBlob>,
        opts: &PutOptions,
    ) -> Result<(PutOutcome, Vec<String>)> {
        let name = path.name().unwrap_or_default();
        for _ in 0..RETRIES {
            let mut tx = self.db.begin().await?;
            let chain = parent_chain(&mut tx, cx.owner, path).await?;
            let parent_id = chain.last().expect("chain").id;
            let existing = super::child(&mut tx, parent_id, name).await?;
            check_target(existing.as_ref(), opts)?;
            self.locks.check(&mut tx, cx, path, Guard::Write).await?;
            let size = staged.as_ref().map_or(0, |s| s.size);
            let delta = size - existing.as_ref().map_or(0, |n| n.size);
            check_quota_in(&mut tx, cx, delta).await?;
            let step = write_row(&mut tx, cx, parent_id, name, existing.as_ref(), staged.as_ref(), opts).await;
            let freed = match step {
                Ok(f) => f,
                Err(Error::Retry) => continue,
                Err(e) => return Err(e),
            };
            propagate(&mut tx, &chain_ids(&chain), delta).await?;
            let node = super::child(&mut tx, parent_id, name).await?.ok_or(Error::Retry)?;
            match tx.commit().await {
                Ok(()) => return Ok((PutOutcome { node, created: existing.is_none() }, freed)),
                Err(strongroom_store::DbError::Retry) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable("the file could not be written: too much contention".into()))
    }
}

/// Inserts or updates the file row; returns blob keys that lost their last reference.
async fn write_row(
    tx: &mut Tx,
    cx: &Ctx<'_>,
    parent_id: i64,
    name: &str,
    existing: Option<&Node>,
    staged: Option<&StagedBlob>,
    opts: &PutOptions,
) -> Result<Vec<String>> {
    let now = now_secs();
    let blob_id = match staged {
        Some(s) => Some(
            tx.insert(
                "INSERT INTO blobs (blob_key, size, refs, created_at) VALUES (?, ?, 1, ?)",
                &[s.key.as_str().into(), s.size.into(), now.into()],
            )
            .await?,
        ),
        None => None,
    };
    let size = staged.map_or(0, |s| s.size);
    // The SHA-1 of no bytes, so empty files carry a checksum like any other.
    let sha1 = staged.map_or("da39a3ee5e6b4b0d3255bfef95601890afd80709", |s| s.sha1.as_str());
    let checksum = format!("SHA1:{sha1}");
    let mtime = opts.mtime.unwrap_or(now);
    let ctype = mime::guess(name);
    match existing {
        Some(old) => {
            tx.exec(
                "UPDATE nodes SET size = ?, mtime = ?, etag = ?, blob_id = ?, content_type = ?, checksum = ? WHERE id = ?",
                &[size.into(), mtime.into(), new_etag().into(), blob_id.into(), ctype.into(), checksum.into(), old.id.into()],
            )
            .await?;
            let old_blobs: Vec<i64> = old.blob_id.into_iter().collect();
            unref_blobs(tx, &old_blobs).await
        }
        None => {
            let inserted = tx
                .insert(
                    "INSERT INTO nodes (owner_id, parent_id, name, kind, size, mtime, ctime, etag, blob_id, content_type, checksum) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &[
                        cx.owner.id.into(), parent_id.into(), name.into(), NodeKind::File.code().into(), size.into(),
                        mtime.into(), now.into(), new_etag().into(), blob_id.into(), ctype.into(), checksum.into(),
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
    if let Some(want) = &opts.if_match {
        match existing {
            Some(n) if n.etag == *want => {}
            _ => return Err(Error::PreconditionFailed("the file has changed on the server".into())),
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
