//! Immutable content blobs behind Apache OpenDAL.
//!
//! A blob is written once under a fresh random key and never changed; the file
//! tree in SQL points at it. A write is flushed to stable storage before
//! [`BlobWriter::finish`] returns, so metadata committed afterwards never points
//! at bytes that a crash could lose.

use std::{
    ops::Range,
    path::{Path, PathBuf},
};

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use opendal::{Operator, services::Fs};

/// The storage key of a blob: 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn random() -> Self {
        BlobKey(hex::encode(rand::random::<[u8; 16]>()))
    }

    /// Accepts a key read back from the database, refusing anything that is not
    /// a key this store could have made (it becomes part of a storage path).
    pub fn parse(s: &str) -> Option<Self> {
        let ok =
            s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| BlobKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Sharded on the first two characters so no directory grows too large.
    fn path(&self) -> String {
        format!("{}/{}", &self.0[..2], self.0)
    }
}

/// The blob store: an OpenDAL operator plus, for the local file system, the
/// folder it lives in (needed to flush directory entries).
#[derive(Clone)]
pub struct BlobStore {
    op: Operator,
    local_root: Option<PathBuf>,
}

impl BlobStore {
    /// A store in a local folder. Partial writes go to `root/.tmp` and are renamed
    /// into place only when complete; [`BlobStore::clean_partial`] clears leftovers.
    pub fn local(root: &Path) -> std::io::Result<Self> {
        let tmp = root.join(".tmp");
        std::fs::create_dir_all(&tmp)?;
        let builder =
            Fs::default().root(&root.to_string_lossy()).atomic_write_dir(&tmp.to_string_lossy());
        let op = Operator::new(builder).map_err(std::io::Error::other)?;
        Ok(BlobStore { op, local_root: Some(root.to_owned()) })
    }

    /// Removes partial writes left by a crash. Call before serving.
    pub fn clean_partial(&self) -> std::io::Result<()> {
        let Some(root) = &self.local_root else { return Ok(()) };
        for entry in std::fs::read_dir(root.join(".tmp"))? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(())
    }

    /// Starts writing a new blob.
    pub async fn create(&self) -> Result<BlobWriter, opendal::Error> {
        let key = BlobKey::random();
        let writer = self.op.writer(&key.path()).await?;
        Ok(BlobWriter { store: self.clone(), key, writer: Some(writer), written: 0 })
    }

    /// Streams `range` of a blob (the whole blob for `0..size`).
    pub async fn read(
        &self,
        key: &BlobKey,
        range: Range<u64>,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + use<>, opendal::Error> {
        let reader = self.op.reader_with(&key.path()).chunk(256 * 1024).await?;
        Ok(reader.into_bytes_stream(range).await?.map_err(std::io::Error::other))
    }

    pub async fn delete(&self, key: &BlobKey) -> Result<(), opendal::Error> {
        self.op.delete(&key.path()).await
    }

    /// The stored size of a blob, or `None` when it is missing.
    pub async fn size(&self, key: &BlobKey) -> Result<Option<u64>, opendal::Error> {
        match self.op.stat(&key.path()).await {
            Ok(m) => Ok(Some(m.content_length())),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes the directory entry of a finished local blob durable. OpenDAL flushes
    /// the file itself; the rename into place needs its folder flushed too.
    async fn sync_entry(&self, key: &BlobKey) -> std::io::Result<()> {
        let Some(root) = &self.local_root else { return Ok(()) };
        let dir = root.join(&key.0[..2]);
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(std::io::Error::other)?
    }
}

/// A blob being written. Dropped without [`BlobWriter::finish`], nothing remains
/// but a partial file that [`BlobStore::clean_partial`] removes.
pub struct BlobWriter {
    store: BlobStore,
    key: BlobKey,
    writer: Option<opendal::Writer>,
    written: u64,
}

impl BlobWriter {
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), opendal::Error> {
        self.written += bytes.len() as u64;
        match &mut self.writer {
            Some(w) => w.write(bytes).await,
            None => Err(opendal::Error::new(opendal::ErrorKind::Unexpected, "writer closed")),
        }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Completes the blob and flushes it to stable storage.
    pub async fn finish(mut self) -> Result<BlobKey, opendal::Error> {
        let Some(mut w) = self.writer.take() else {
            return Err(opendal::Error::new(opendal::ErrorKind::Unexpected, "writer closed"));
        };
        w.close().await?;
        self.store.sync_entry(&self.key).await.map_err(|e| {
            opendal::Error::new(opendal::ErrorKind::Unexpected, "flushing blob folder")
                .set_source(e)
        })?;
        Ok(self.key.clone())
    }

    /// Abandons the blob.
    pub async fn abort(mut self) {
        if let Some(mut w) = self.writer.take() {
            let _ = w.abort().await;
        }
    }
}
