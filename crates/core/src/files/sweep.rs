//! Removing blob files that no row names.
//!
//! A large blob is renamed into place before the transaction that records
//! it commits (so a committed row never points at a missing file). A crash
//! between the two leaves a file that nothing refers to and that no other
//! clean-up knows about. The sweep finds them: files in the store whose key
//! is neither in `blobs` nor in `blob_garbage` (where replaced blobs, and the
//! new blobs of an encryption conversion, wait). Only files last written
//! before a cut-off are considered, so a blob between its rename and its
//! commit, which takes milliseconds, is never taken for an orphan.

use std::collections::HashSet;

use strongroom_store::Val;

use super::Files;
use crate::error::{Error, Result};

/// What a sweep found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub files: usize,
    pub bytes: u64,
}

/// Keys looked up per query.
const KEYS_PER_QUERY: usize = 200;

impl Files {
    /// Deletes (unless `dry_run`) the blob files last written before `before`
    /// (Unix seconds) that no row names, and says how many there were.
    pub async fn sweep_orphan_blobs(&self, before: i64, dry_run: bool) -> Result<Swept> {
        let candidates = self
            .blobs
            .files_written_before(before)
            .await
            .map_err(|e| Error::Internal(format!("listing the blob store: {e}")))?;
        let mut swept = Swept::default();
        for group in candidates.chunks(KEYS_PER_QUERY) {
            let marks = strongroom_store::placeholders(group.len());
            let sql = format!(
                "SELECT blob_key FROM blobs WHERE blob_key IN ({marks}) \
                 UNION SELECT blob_key FROM blob_garbage WHERE blob_key IN ({marks})"
            );
            let keys = group.iter().map(|(k, _)| Val::from(k.as_str()));
            let args: Vec<Val> = keys.clone().chain(keys).collect();
            let known: HashSet<String> = self
                .db
                .rows(&sql, &args)
                .await?
                .iter()
                .map(|r| r.str(0))
                .collect::<std::result::Result<_, _>>()?;
            for (key, size) in group.iter().filter(|(k, _)| !known.contains(k.as_str())) {
                if !dry_run {
                    if let Err(e) = self.blobs.delete(key).await {
                        tracing::warn!(blob = %key.as_str(), error = %e, "could not delete an orphaned blob");
                        continue;
                    }
                    tracing::info!(blob = %key.as_str(), bytes = size, "deleted an orphaned blob file");
                }
                swept.files += 1;
                swept.bytes += size;
            }
        }
        Ok(swept)
    }
}
