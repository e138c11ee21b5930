//! What a visitor put into a file drop, so that it alone can read back the
//! metadata of its own uploads (see `share_drops` in the migration).

use super::Shares;
use crate::{Result, now_secs};

/// How long an uploader may look at what it sent.
pub(super) const KEEP_SECS: i64 = 3600;

impl Shares {
    /// Records that `address` uploaded `name` through link `share_id`, stored as `node_id`.
    pub async fn record_drop(
        &self,
        share_id: i64,
        address: &str,
        name: &str,
        node_id: i64,
    ) -> Result<()> {
        let now = now_secs();
        self.db
            .exec("DELETE FROM share_drops WHERE created_at < ?", &[(now - KEEP_SECS).into()])
            .await?;
        self.db
            .exec(
                "INSERT INTO share_drops (share_id, address, name, node_id, created_at) VALUES (?, ?, ?, ?, ?)",
                &[share_id.into(), address.into(), name.into(), node_id.into(), now.into()],
            )
            .await?;
        Ok(())
    }

    /// The node `address` most recently uploaded as `name` through link `share_id`, if lately.
    pub async fn dropped(&self, share_id: i64, address: &str, name: &str) -> Result<Option<i64>> {
        let row = self
            .db
            .row(
                "SELECT node_id FROM share_drops WHERE share_id = ? AND address = ? AND name = ? \
                 AND created_at >= ? ORDER BY id DESC",
                &[share_id.into(), address.into(), name.into(), (now_secs() - KEEP_SECS).into()],
            )
            .await?;
        Ok(row.map(|r| r.i64(0)).transpose()?)
    }
}
