//! Immutable content blobs behind Apache OpenDAL, or in the database.
//!
//! A blob is written once under a fresh random key and never changed; the file
//! tree in SQL points at it. A write is flushed to stable storage before
//! [`BlobWriter::finish`] returns, so metadata committed afterwards never points
//! at bytes that a crash could lose.
//!
//! Small plaintext blobs (up to [`INLINE_LIMIT`]) are not stored here at all:
//! [`BlobWriter::finish`] hands their bytes back in [`StoredBlob::inline`] and
//! the caller stores them in the blob's database row, in the transaction that
//! records the blob. A small upload then costs one transaction, whose flush
//! is shared with concurrent ones, instead of a file created, flushed and
//! renamed and its folder flushed. Reading them is the caller's business too
//! (the row is where they are); [`BlobStore::read`] serves the rest.

use std::{
    ops::Range,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use opendal::{Operator, services::Fs};

use crate::crypt::{
    Encryption, Seal,
    format::{self, BlobCipher, HEADER_LEN, SEALED_SEGMENT, SEGMENT},
};

/// A stream of content bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{0}")]
    Storage(#[from] opendal::Error),
    /// Stored content failed authentication; nothing of it was returned.
    #[error("blob {blob}: {what}")]
    Integrity { blob: String, what: String },
    /// A data key could not be wrapped or unwrapped.
    #[error("blob {blob}: {what}")]
    Key { blob: String, what: String },
}

/// Plain reads of at most this many bytes from a local store are done at once
/// on the calling thread: OpenDAL's fs reader hands the open, the stat and the
/// read each to tokio's blocking pool, and for a small file those three thread
/// hand-offs cost far more than reading it (a page-cache hit of microseconds).
const INLINE_READ: u64 = 64 * 1024;

/// Plaintext read and checked before a read answers, so that damage near the
/// start of a file becomes an error status instead of a cut connection.
const VERIFY_AHEAD: usize = 1024 * 1024;

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
/// folder it lives in (needed to flush directory entries), and the encryption
/// state when a key provider is configured.
#[derive(Clone)]
pub struct BlobStore {
    op: Operator,
    local_root: Option<PathBuf>,
    enc: Option<Arc<Encryption>>,
}

/// A finished blob: its key and, when encrypted, how its data key is kept.
#[derive(Debug, Clone)]
pub struct StoredBlob {
    pub key: BlobKey,
    pub seal: Option<Seal>,
    /// The whole content of a small plaintext blob, to be stored in its
    /// database row: nothing of it is in the store. `None` for stored blobs.
    pub inline: Option<Bytes>,
    /// The data key itself, kept until the blob is committed so that it can be
    /// wrapped again under a master key that replaced the one it was sealed
    /// with, even after that one is gone.
    pub(crate) dek: Option<HeldKey>,
}

impl StoredBlob {
    /// A plaintext blob (or a placeholder row without content).
    pub fn plain(key: BlobKey) -> StoredBlob {
        StoredBlob { key, seal: None, dek: None, inline: None }
    }
}

/// A data key held in memory, shared and wiped when the last holder drops it.
#[derive(Clone)]
pub(crate) struct HeldKey(Arc<crate::crypt::DataKey>);

impl std::fmt::Debug for HeldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldKey(..)")
    }
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
        Ok(BlobStore { op, local_root: Some(root.to_owned()), enc: None })
    }

    /// Adds a key provider: encrypted blobs become readable, and new blobs are
    /// encrypted while [`Encryption::set_switch`] says so.
    pub fn with_encryption(mut self, enc: Arc<Encryption>) -> Self {
        self.enc = Some(enc);
        self
    }

    /// Where a blob lies when the store is a local folder.
    fn local_path(&self, key: &BlobKey) -> Option<PathBuf> {
        self.local_root.as_ref().map(|root| root.join(key.path()))
    }

    pub fn encryption(&self) -> Option<&Arc<Encryption>> {
        self.enc.as_ref()
    }

    /// Removes partial writes left by a crash. Call before serving.
    pub fn clean_partial(&self) -> std::io::Result<()> {
        let Some(root) = &self.local_root else { return Ok(()) };
        for entry in std::fs::read_dir(root.join(".tmp"))? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(())
    }

    /// The blob files of a local store last written before `before` (Unix
    /// seconds), with their sizes: the candidates of a sweep for files that no
    /// row names (a crash between a large blob's rename into place and the
    /// commit that records it leaves one). Partial writes in `.tmp` are not
    /// listed ([`BlobStore::clean_partial`] removes those).
    pub async fn files_written_before(&self, before: i64) -> std::io::Result<Vec<(BlobKey, u64)>> {
        let Some(root) = self.local_root.clone() else { return Ok(Vec::new()) };
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for shard in std::fs::read_dir(&root)? {
                let shard = shard?;
                let shard_name = shard.file_name();
                let Some(shard_name) = shard_name.to_str() else { continue };
                if shard_name.len() != 2 || !shard.file_type()?.is_dir() {
                    continue;
                }
                for file in std::fs::read_dir(shard.path())? {
                    let file = file?;
                    let name = file.file_name();
                    let key = name.to_str().and_then(BlobKey::parse);
                    let Some(key) = key.filter(|k| k.0.starts_with(shard_name)) else { continue };
                    let meta = file.metadata()?;
                    let written = meta.modified()?.duration_since(std::time::UNIX_EPOCH);
                    if meta.is_file() && written.is_ok_and(|t| (t.as_secs() as i64) < before) {
                        found.push((key, meta.len()));
                    }
                }
            }
            Ok(found)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Starts writing a new blob, encrypted when encryption is on.
    pub async fn create(&self) -> Result<BlobWriter, BlobError> {
        let master = self.enc.as_ref().and_then(|e| e.write_key());
        self.create_with(master.as_deref()).await
    }

    /// Starts writing a new blob sealed with `master`, or in plaintext for `None`.
    pub async fn create_with(&self, master: Option<&str>) -> Result<BlobWriter, BlobError> {
        let key = BlobKey::random();
        let sealer = match (master, &self.enc) {
            (None, _) => None,
            (Some(m), Some(enc)) => {
                let (dek, seal) = enc.new_data_key(m, key.as_str()).map_err(|e| {
                    let what = format!("sealing a new data key: {e}");
                    enc.report(key.as_str(), &what);
                    BlobError::Key { blob: key.0.clone(), what }
                })?;
                let cipher = BlobCipher::new(&dek, key.as_str());
                Some(Sealer::new(cipher, seal, HeldKey(Arc::new(dek))))
            }
            (Some(_), None) => {
                return Err(BlobError::Key {
                    blob: key.0.clone(),
                    what: "encryption requested but no key provider is configured".into(),
                });
            }
        };
        let sink = match &sealer {
            None => Sink::Small(Vec::new()),
            Some(_) => Sink::Writer(self.op.writer(&key.path()).await?),
        };
        Ok(BlobWriter { store: self.clone(), key, sink, written: 0, sealer })
    }

    /// The seal to commit a finished blob with (see [`Encryption::reseal`]).
    /// Call it inside the transaction that records the blob.
    pub fn seal_for_commit(&self, stored: &StoredBlob) -> Result<Option<Seal>, BlobError> {
        match (&stored.seal, &self.enc) {
            (Some(seal), Some(enc)) => {
                let dek = stored.dek.as_ref().map(|h| h.0.as_ref());
                enc.reseal(seal, dek, stored.key.as_str()).map(Some).map_err(|e| {
                    let what = format!("re-wrapping the data key for the current master key: {e}");
                    enc.report(stored.key.as_str(), &what);
                    BlobError::Key { blob: stored.key.0.clone(), what }
                })
            }
            (seal, _) => Ok(seal.clone()),
        }
    }

    /// Reports stored content found damaged before decryption (a wrong length,
    /// a missing file) the same way as a failed segment.
    pub fn report_damage(&self, key: &BlobKey, what: &str) {
        if let Some(enc) = &self.enc {
            enc.report(key.as_str(), what);
        }
    }

    /// The number of bytes a blob of `plain` content bytes occupies in storage.
    pub fn stored_len(plain: u64, seal: Option<&Seal>) -> u64 {
        if seal.is_some() { format::sealed_len(plain) } else { plain }
    }

    /// Streams `range` of the content of a blob holding `plain` bytes of
    /// content. Encrypted blobs are decrypted segment by segment, reading only
    /// the segments the range touches; the first MiB is authenticated before
    /// this returns, and a later failure ends the stream with an error instead
    /// of yielding unauthenticated bytes.
    pub async fn read(
        &self,
        key: &BlobKey,
        seal: Option<&Seal>,
        plain: u64,
        range: Range<u64>,
    ) -> Result<ByteStream, BlobError> {
        if let (None, Some(path)) = (seal, self.local_path(key))
            && range.end.saturating_sub(range.start) <= INLINE_READ
        {
            let bytes = read_small(&path, range)?;
            return Ok(Box::pin(futures_util::stream::once(async move { Ok(bytes) })));
        }
        let Some(seal) = seal else {
            if let Some(path) = self.local_path(key) {
                return read_local(&path, range);
            }
            let reader = self.op.reader_with(&key.path()).chunk(256 * 1024).await?;
            let s = reader.into_bytes_stream(range).await?.map_err(std::io::Error::other);
            return Ok(Box::pin(s));
        };
        if range.start >= range.end {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let enc = self.enc.clone().ok_or_else(|| BlobError::Key {
            blob: key.0.clone(),
            what: "the blob is encrypted but no key provider is configured".into(),
        })?;
        let dek = enc.open_data_key(seal, key.as_str()).map_err(|e| {
            let what = format!("opening the data key: {e}");
            enc.report(key.as_str(), &what);
            BlobError::Key { blob: key.0.clone(), what }
        })?;
        let cipher = BlobCipher::new(&dek, key.as_str());
        let first = range.start / SEGMENT as u64;
        let last_needed = (range.end - 1) / SEGMENT as u64;
        let total = format::sealed_len(plain);
        if first == 0 {
            // Read on its own so that the segments below arrive aligned to the
            // chunks (each chunk then decrypts in place, without a copy).
            let header = match self.local_path(key) {
                Some(path) => read_small(&path, 0..HEADER_LEN as u64)?.to_vec(),
                None => self.op.read_with(&key.path()).range(0..HEADER_LEN as u64).await?.to_vec(),
            };
            if let Err(e) = cipher.check_header(&header) {
                let what = e.to_string();
                enc.report(key.as_str(), &what);
                return Err(BlobError::Integrity { blob: key.0.clone(), what });
            }
        }
        let from = HEADER_LEN as u64 + first * SEALED_SEGMENT as u64;
        let to = (HEADER_LEN as u64 + (last_needed + 1) * SEALED_SEGMENT as u64).min(total);
        let inner: ByteStream = match self.local_path(key) {
            // A short span (up to four segments; a 4 KiB range read touches
            // one or two) is read at once, as small plain reads are (see
            // INLINE_READ): the blocking-pool hand-offs cost more than the read.
            Some(path) if to - from <= 4 * SEALED_SEGMENT as u64 => {
                let bytes = read_small(&path, from..to)?;
                Box::pin(futures_util::stream::once(async move { Ok(bytes) }))
            }
            _ => {
                let reader = self.op.reader_with(&key.path()).chunk(4 * SEALED_SEGMENT).await?;
                let s = reader.into_bytes_stream(from..to).await?.map_err(std::io::Error::other);
                Box::pin(s)
            }
        };
        let state = Decrypting {
            inner,
            cipher,
            buf: BytesMut::new(),
            seg: first,
            last: format::segments(plain) - 1,
            plain,
            skip: (range.start - first * SEGMENT as u64) as usize,
            remaining: range.end - range.start,
            enc,
            blob: key.0.clone(),
        };
        let mut stream: ByteStream = Box::pin(
            futures_util::stream::unfold(state, |mut st| async {
                st.next_piece().await.map(|r| (r, st))
            })
            // Polled once more after its end when the verified start was all there is.
            .fuse(),
        );
        // Authenticate the start before the caller commits to a status line.
        let mut ahead = Vec::new();
        let mut got = 0;
        while got < VERIFY_AHEAD {
            match stream.next().await {
                Some(Ok(b)) => {
                    got += b.len();
                    ahead.push(Ok(b));
                }
                Some(Err(e)) => {
                    return Err(BlobError::Integrity { blob: key.0.clone(), what: e.to_string() });
                }
                None => break,
            }
        }
        Ok(Box::pin(futures_util::stream::iter(ahead).chain(stream)))
    }

    pub async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        Ok(self.op.delete(&key.path()).await?)
    }

    /// Removes a finished blob that will not be committed after all (a blob
    /// kept inline has nothing in the store to remove).
    pub async fn discard(&self, blob: &StoredBlob) {
        if blob.inline.is_none() {
            let _ = self.delete(&blob.key).await;
        }
    }

    /// The stored size of a blob, or `None` when it is missing.
    pub async fn size(&self, key: &BlobKey) -> Result<Option<u64>, BlobError> {
        if let Some(path) = self.local_path(key) {
            // One stat(2), done here: through OpenDAL it is a blocking-pool hand-off.
            return match std::fs::metadata(path) {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(local_error("stat of a blob", e)),
            };
        }
        match self.op.stat(&key.path()).await {
            Ok(m) => Ok(Some(m.content_length())),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The raw stored bytes of a blob (tests and tools; not for serving).
    pub async fn read_raw(&self, key: &BlobKey) -> Result<Vec<u8>, BlobError> {
        Ok(self.op.read(&key.path()).await?.to_vec())
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

/// An I/O error of the local store's own fast paths, classified as OpenDAL
/// classifies the same error on its paths.
fn local_error(what: &'static str, e: std::io::Error) -> BlobError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => opendal::ErrorKind::NotFound,
        _ => opendal::ErrorKind::Unexpected,
    };
    BlobError::Storage(opendal::Error::new(kind, what).set_source(e))
}

/// Reads `range` of a local file synchronously (see [`INLINE_READ`]).
fn read_small(path: &Path, range: Range<u64>) -> Result<Bytes, BlobError> {
    use std::os::unix::fs::FileExt;
    let io = |e| local_error("reading a blob", e);
    if range.start >= range.end {
        return Ok(Bytes::new());
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut buf = vec![0; (range.end - range.start) as usize];
    file.read_exact_at(&mut buf, range.start).map_err(io)?;
    Ok(Bytes::from(buf))
}

/// The piece a plain read of a local blob reads at a time (see [`read_local`]).
const LOCAL_PIECE: u64 = 1024 * 1024;

/// Streams `range` of a local file, [`LOCAL_PIECE`] bytes at a time, each
/// read on the blocking pool. The file is opened here, so a missing blob is
/// an error before the caller commits to a status line.
///
/// OpenDAL's reader, used before, cost about a third more CPU per GiB
/// (454 against 336-348 ms); it clears every buffer before reading into it.
/// `read_to_end` reads into the vector's spare capacity without clearing it
/// (in a few reads of growing size, which cost less than clearing a MiB;
/// see bench/README.md).
///
/// Once a piece is handed on, the next one is read while it is being sent
/// ([`ReadAhead`]): reading only when asked left the machine a quarter idle
/// during a large download, the read and the send taking turns.
fn read_local(path: &Path, range: Range<u64>) -> Result<ByteStream, BlobError> {
    use std::io::{Seek, SeekFrom};
    let io = |e| local_error("reading a blob", e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(range.start)).map_err(io)?;
    let pieces = futures_util::stream::try_unfold(ReadAhead::Idle(file, range), |state| async {
        let (task, rest) = match state {
            ReadAhead::Idle(file, range) => match read_piece(file, range) {
                Some(next) => next,
                None => return Ok(None),
            },
            ReadAhead::Reading(task, rest) => (task, rest),
            ReadAhead::Done => return Ok(None),
        };
        let (file, piece) = task.await.map_err(std::io::Error::other)??;
        let next = match read_piece(file, rest) {
            Some((task, rest)) => ReadAhead::Reading(task, rest),
            None => ReadAhead::Done,
        };
        Ok(Some((Bytes::from(piece), next)))
    });
    Ok(Box::pin(pieces))
}

/// Where a [`read_local`] stream is: nothing asked for yet (the first piece
/// is read only when the body is polled: a response that is never sent
/// reads nothing), a piece being read with the range after it, or the end.
enum ReadAhead {
    Idle(std::fs::File, Range<u64>),
    Reading(PieceTask, Range<u64>),
    Done,
}

/// A piece being read on the blocking pool; it gives the file back.
type PieceTask = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;

/// Starts reading the first [`LOCAL_PIECE`] of `range` from where `file`
/// stands; `None` when the range is empty. Returns the range after it.
fn read_piece(file: std::fs::File, range: Range<u64>) -> Option<(PieceTask, Range<u64>)> {
    use std::io::Read;
    if range.start >= range.end {
        return None;
    }
    let n = (range.end - range.start).min(LOCAL_PIECE);
    let task = tokio::task::spawn_blocking(move || {
        let mut piece = Vec::with_capacity(n as usize);
        (&file).take(n).read_to_end(&mut piece)?;
        if piece.len() as u64 != n {
            let e = std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the blob file is shorter than its recorded size",
            );
            return Err(e);
        }
        Ok((file, piece))
    });
    Some((task, range.start + n..range.end))
}

/// The state of a decrypting read.
struct Decrypting {
    inner: ByteStream,
    cipher: BlobCipher,
    buf: BytesMut,
    /// Index of the next segment to decrypt.
    seg: u64,
    /// Index of the blob's final segment.
    last: u64,
    plain: u64,
    /// Plaintext bytes to drop from the next segment (range start).
    skip: usize,
    /// Plaintext bytes still to yield.
    remaining: u64,
    enc: Arc<Encryption>,
    blob: String,
}

impl Decrypting {
    async fn next_piece(&mut self) -> Option<std::io::Result<Bytes>> {
        if self.remaining == 0 {
            return None;
        }
        let r = self.decrypt_next().await;
        if let Err(e) = &r {
            self.remaining = 0;
            self.enc.report(&self.blob, &e.to_string());
        }
        Some(r)
    }

    async fn decrypt_next(&mut self) -> std::io::Result<Bytes> {
        let bad = |e: format::Integrity| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let need = if self.seg == self.last {
            (format::sealed_len(self.plain) - HEADER_LEN as u64 - self.seg * SEALED_SEGMENT as u64)
                as usize
        } else {
            SEALED_SEGMENT
        };
        self.fill(need).await?;
        let mut seg = self.buf.split_to(need);
        let len = self.cipher.open(self.seg, self.seg == self.last, &mut seg).map_err(bad)?;
        seg.truncate(len);
        self.seg += 1;
        let start = self.skip.min(len);
        let end = (start as u64 + self.remaining).min(len as u64) as usize;
        self.skip = 0;
        self.remaining -= (end - start) as u64;
        Ok(seg.freeze().slice(start..end))
    }

    async fn fill(&mut self, n: usize) -> std::io::Result<()> {
        while self.buf.len() < n {
            match self.inner.next().await {
                // Taken over without a copy when it is the only holder.
                Some(Ok(b)) if self.buf.is_empty() => self.buf = BytesMut::from(b),
                Some(Ok(b)) => self.buf.extend_from_slice(&b),
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format::Integrity::Short,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Encrypts a blob while it is written: plaintext collects until a segment is
/// full (and more follows, since the final segment is marked), then goes out
/// sealed.
struct Sealer {
    cipher: BlobCipher,
    seal: Seal,
    dek: HeldKey,
    pending: Vec<u8>,
    index: u64,
    header_written: bool,
}

impl Sealer {
    fn new(cipher: BlobCipher, seal: Seal, dek: HeldKey) -> Sealer {
        Sealer { cipher, seal, dek, pending: Vec::new(), index: 0, header_written: false }
    }

    /// Takes plaintext; returns the stored bytes ready to write.
    fn push(&mut self, bytes: &[u8], finish: bool) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::with_capacity(self.pending.len() + HEADER_LEN + 64);
        if !self.header_written {
            out.extend_from_slice(self.cipher.header());
            self.header_written = true;
        }
        let mut at = 0;
        while self.pending.len() - at > SEGMENT {
            let from = out.len();
            out.extend_from_slice(&self.pending[at..at + SEGMENT]);
            self.cipher.seal(self.index, false, &mut out, from);
            self.index += 1;
            at += SEGMENT;
        }
        if finish {
            let from = out.len();
            out.extend_from_slice(&self.pending[at..]);
            self.cipher.seal(self.index, true, &mut out, from);
            at = self.pending.len();
        }
        self.pending.drain(..at);
        out
    }
}

/// Plaintext blobs of at most this many bytes are held in memory while
/// written and handed back for the database row (see the module's comment);
/// larger ones, and every encrypted one, stream through OpenDAL's writer.
pub const INLINE_LIMIT: usize = 64 * 1024;

/// A blob being written. Dropped without [`BlobWriter::finish`], nothing remains
/// but a partial file that [`BlobStore::clean_partial`] removes.
pub struct BlobWriter {
    store: BlobStore,
    key: BlobKey,
    sink: Sink,
    written: u64,
    sealer: Option<Sealer>,
}

/// Where a blob's bytes go until it is finished.
enum Sink {
    /// Still small: kept in memory.
    Small(Vec<u8>),
    Writer(opendal::Writer),
    Closed,
}

impl BlobWriter {
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), BlobError> {
        self.written += bytes.len() as u64;
        let out = match &mut self.sealer {
            Some(s) => Bytes::from(s.push(&bytes, false)),
            None => bytes,
        };
        if let Sink::Small(buf) = &mut self.sink {
            if buf.len() + out.len() <= INLINE_LIMIT {
                buf.extend_from_slice(&out);
                return Ok(());
            }
            // Grown past the limit: stream from here on.
            let start = Bytes::from(std::mem::take(buf));
            self.sink = Sink::Closed;
            let mut w = self.store.op.writer(&self.key.path()).await?;
            w.write(start).await?;
            self.sink = Sink::Writer(w);
        }
        let Sink::Writer(w) = &mut self.sink else { return Err(closed()) };
        if !out.is_empty() {
            w.write(out).await?;
        }
        Ok(())
    }

    /// The storage key the blob will have.
    pub fn key(&self) -> &BlobKey {
        &self.key
    }

    /// Content bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Completes the blob and flushes it to stable storage; a small one comes
    /// back whole in [`StoredBlob::inline`], for the caller to commit.
    pub async fn finish(mut self) -> Result<StoredBlob, BlobError> {
        let mut w = match std::mem::replace(&mut self.sink, Sink::Closed) {
            Sink::Writer(w) => w,
            Sink::Small(buf) => {
                let inline = Some(Bytes::from(buf));
                return Ok(StoredBlob { key: self.key.clone(), seal: None, dek: None, inline });
            }
            Sink::Closed => return Err(closed()),
        };
        let sealer = self.sealer.take();
        let written = async {
            let sealed = match sealer {
                Some(mut s) => {
                    w.write(Bytes::from(s.push(&[], true))).await?;
                    (Some(s.seal), Some(s.dek))
                }
                None => (None, None),
            };
            w.close().await?;
            Ok::<_, BlobError>(sealed)
        }
        .await;
        // A failed blob leaves nothing behind: not its partial file in
        // `.tmp`, not a file in place that is not known to be on disk.
        let (seal, dek) = match written {
            Ok(sealed) => sealed,
            Err(e) => {
                let _ = w.abort().await;
                return Err(e);
            }
        };
        if let Err(io) = self.store.sync_entry(&self.key).await {
            let _ = self.store.op.delete(&self.key.path()).await;
            let e = opendal::Error::new(opendal::ErrorKind::Unexpected, "flushing blob folder");
            return Err(e.set_source(io).into());
        }
        Ok(StoredBlob { key: self.key.clone(), seal, dek, inline: None })
    }

    /// Abandons the blob.
    pub async fn abort(mut self) {
        if let Sink::Writer(mut w) = std::mem::replace(&mut self.sink, Sink::Closed) {
            let _ = w.abort().await;
        }
    }
}

impl Drop for BlobWriter {
    /// A writer dropped unfinished (an error on the way, a client gone, a
    /// caller's early return) removes its partial file from `.tmp`, which
    /// would otherwise stay until the next start.
    fn drop(&mut self) {
        if let Sink::Writer(mut w) = std::mem::replace(&mut self.sink, Sink::Closed) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = w.abort().await;
                });
            }
        }
    }
}

fn closed() -> BlobError {
    opendal::Error::new(opendal::ErrorKind::Unexpected, "writer closed").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty local store in a folder of its own, named after `tag`.
    fn temp_store(tag: &str) -> (std::path::PathBuf, BlobStore) {
        let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = BlobStore::local(&dir).unwrap();
        (dir, store)
    }

    async fn collect(s: ByteStream) -> Vec<u8> {
        s.try_fold(Vec::new(), |mut v, b| async move {
            v.extend_from_slice(&b);
            Ok(v)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn plain_reads_small_and_large_agree_with_what_was_written() {
        let (dir, store) = temp_store("sr-blobs");
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = store.create().await.unwrap();
        w.write(Bytes::from(content.clone())).await.unwrap();
        let key = w.finish().await.unwrap().key;
        let n = content.len() as u64;
        // Below INLINE_READ (read at once) and above it (read in pieces).
        for r in [0..10, 5..70_000, 0..n, 299_990..n, 7..7] {
            let got = collect(store.read(&key, None, n, r.clone()).await.unwrap()).await;
            assert_eq!(got, content[r.start as usize..r.end as usize], "range {r:?}");
        }
        assert_eq!(store.size(&key).await.unwrap(), Some(n));
        let missing = BlobKey::random();
        assert_eq!(store.size(&missing).await.unwrap(), None);
        for r in [0..10, 0..n] {
            match store.read(&missing, None, n, r).await {
                Ok(s) => assert!(fails(s).await, "a missing blob was read without an error"),
                Err(BlobError::Storage(e)) => assert_eq!(e.kind(), opendal::ErrorKind::NotFound),
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn large_plain_reads_cross_pieces_and_a_short_file_fails_the_stream() {
        let (dir, store) = temp_store("sr-pieces");
        let piece = LOCAL_PIECE;
        let n = 2 * piece + piece / 2;
        let content: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
        let mut w = store.create().await.unwrap();
        w.write(Bytes::from(content.clone())).await.unwrap();
        let key = w.finish().await.unwrap().key;
        for r in [0..n, 1..n - 1, piece - 100_000..piece + 100_000, piece..2 * piece, n - 70_000..n]
        {
            let got = collect(store.read(&key, None, n, r.clone()).await.unwrap()).await;
            assert_eq!(got.len() as u64, r.end - r.start, "range {r:?}");
            assert!(got == content[r.start as usize..r.end as usize], "range {r:?}");
        }
        // A blob file cut short (damaged storage) ends the stream with an
        // error, never with fewer bytes than the length already announced.
        let file = std::fs::OpenOptions::new().write(true).open(dir.join(key.path())).unwrap();
        file.set_len(piece + 10).unwrap();
        for r in [0..n, piece..n] {
            assert!(fails(store.read(&key, None, n, r).await.unwrap()).await);
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_writer_dropped_unfinished_leaves_no_partial_file() {
        let (dir, store) = temp_store("sr-dropped-blob");
        let mut w = store.create().await.unwrap();
        w.write(Bytes::from(vec![1u8; 3 * INLINE_LIMIT])).await.unwrap();
        let tmp = dir.join(".tmp");
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 1, "the partial file is written");
        drop(w);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_dir(&tmp).unwrap().count() > 0 {
            assert!(std::time::Instant::now() < deadline, "the partial file is still there");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_small_plain_blob_comes_back_whole_and_leaves_nothing_in_the_store() {
        let (dir, store) = temp_store("sr-small-blobs");
        let mut w = store.create().await.unwrap();
        for part in [&b"first "[..], b"second ", b"third"] {
            w.write(Bytes::copy_from_slice(part)).await.unwrap();
        }
        assert_eq!(w.written(), 18);
        let stored = w.finish().await.unwrap();
        assert_eq!(stored.inline.as_deref(), Some(&b"first second third"[..]));
        assert!(!dir.join(stored.key.path()).exists());
        assert_eq!(store.size(&stored.key).await.unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.join(".tmp")).unwrap().count(), 0);
        // Exactly the limit is still inline; one byte more goes to the store.
        for (len, inline) in [(INLINE_LIMIT, true), (INLINE_LIMIT + 1, false)] {
            let mut w = store.create().await.unwrap();
            w.write(Bytes::from(vec![7u8; len - 1])).await.unwrap();
            w.write(Bytes::from_static(b"x")).await.unwrap();
            let stored = w.finish().await.unwrap();
            assert_eq!(stored.inline.is_some(), inline, "{len} bytes");
            let in_store = store.size(&stored.key).await.unwrap();
            assert_eq!(in_store, (!inline).then_some(len as u64), "{len} bytes");
            store.discard(&stored).await;
            assert_eq!(store.size(&stored.key).await.unwrap(), None);
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    async fn fails(mut s: ByteStream) -> bool {
        while let Some(item) = s.next().await {
            if item.is_err() {
                return true;
            }
        }
        false
    }
}
