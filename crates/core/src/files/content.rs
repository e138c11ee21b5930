//! Reading a blob's content, wherever it is kept: in its database row (small
//! plaintext blobs, see `strongroom_store::blobs`) or in the blob store.

use std::ops::Range;

use bytes::Bytes;
use strongroom_store::{BlobError, BlobKey, BlobStore, ByteStream, INLINE_LIMIT, crypt::Seal};

use super::Files;
use crate::error::{Error, Result};

/// Where the content of a blob is.
pub enum Content {
    /// All of it, from the blob's row.
    Inline(Bytes),
    /// In the blob store.
    Stored,
}

impl Files {
    /// Finds where the content of the blob `key` is. Only a plaintext blob
    /// small enough can be kept in its row; asking the database for any other
    /// would be a wasted query.
    pub(crate) async fn locate(
        &self,
        key: &BlobKey,
        seal: Option<&Seal>,
        plain: u64,
    ) -> Result<Content> {
        if seal.is_some() || plain > INLINE_LIMIT as u64 {
            return Ok(Content::Stored);
        }
        let row = self
            .db
            .row("SELECT content FROM blobs WHERE blob_key = ?", &[key.as_str().into()])
            .await?;
        Ok(match row.map(|r| r.opt_bytes(0)).transpose()?.flatten() {
            Some(bytes) => Content::Inline(Bytes::from(bytes)),
            None => Content::Stored,
        })
    }

    /// Streams `range` of a blob of `plain` content bytes, from its row or
    /// from the blob store.
    pub(crate) async fn blob_stream(
        &self,
        key: &BlobKey,
        seal: Option<&Seal>,
        plain: u64,
        range: Range<u64>,
    ) -> Result<ByteStream> {
        match self.locate(key, seal, plain).await? {
            Content::Inline(bytes) => inline_stream(key, bytes, plain, range),
            Content::Stored => Ok(self.blobs.read(key, seal, plain, range).await?),
        }
    }

    /// [`Files::blob_stream`] for serving: it checks first that all of the
    /// content is there, since once a 200 is out a short blob could only show
    /// as a cut connection.
    pub(crate) async fn serve_blob(
        &self,
        key: &BlobKey,
        seal: Option<&Seal>,
        plain: u64,
        located: Option<Content>,
        range: Range<u64>,
    ) -> Result<ByteStream> {
        let content = match located {
            Some(c) => c,
            None => self.locate(key, seal, plain).await?,
        };
        if let Content::Inline(bytes) = content {
            return inline_stream(key, bytes, plain, range);
        }
        let expected = BlobStore::stored_len(plain, seal);
        match self.blobs.size(key).await? {
            Some(n) if n == expected => {}
            found => {
                if seal.is_some() {
                    let what = format!("stored size {found:?}, {expected} expected");
                    self.blobs.report_damage(key, &what);
                }
                return Err(damaged(key, found, expected));
            }
        }
        self.blobs.read(key, seal, plain, range).await.map_err(|e| match e {
            BlobError::Integrity { .. } | BlobError::Key { .. } => {
                Error::Internal(format!("blob {} cannot be decrypted: {e}", key.as_str()))
            }
            e => e.into(),
        })
    }
}

/// `range` of content kept inline, once its length is checked.
fn inline_stream(key: &BlobKey, bytes: Bytes, plain: u64, range: Range<u64>) -> Result<ByteStream> {
    if bytes.len() as u64 != plain {
        return Err(damaged(key, Some(bytes.len() as u64), plain));
    }
    let end = range.end.min(plain) as usize;
    let part = bytes.slice((range.start as usize).min(end)..end);
    Ok(Box::pin(futures_util::stream::once(async move { Ok(part) })))
}

fn damaged(key: &BlobKey, found: Option<u64>, expected: u64) -> Error {
    Error::Internal(format!(
        "the content of blob {} is damaged: it holds {found:?} bytes, {expected} expected",
        key.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    async fn collect(s: ByteStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(b) = s.next().await {
            out.extend_from_slice(&b.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn inline_content_is_served_by_range_and_refused_when_its_length_is_wrong() {
        let key = BlobKey::random();
        let bytes = Bytes::from_static(b"0123456789");
        for (range, want) in [
            (0..10, &b"0123456789"[..]),
            (2..5, b"234"),
            (8..99, b"89"),
            (7..3, b""),
            (20..30, b""),
        ] {
            let s = inline_stream(&key, bytes.clone(), 10, range.clone()).unwrap();
            assert_eq!(collect(s).await, want, "{range:?}");
        }
        for plain in [9, 11] {
            match inline_stream(&key, bytes.clone(), plain, 0..plain) {
                Err(Error::Internal(what)) => assert!(what.contains("damaged"), "{what}"),
                _ => panic!("a row of 10 bytes for a file of {plain} was served"),
            }
        }
    }
}
