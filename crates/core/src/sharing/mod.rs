//! Shares: a user's file or folder given to another user, to a group, or to
//! anyone holding a public link.
//!
//! A share is a row (`shares`); what it allows is decided when it is used,
//! not only when it is made: [`Shares::effective`] applies the current admin
//! policy, the expiry date and the share it was reshared through every time a
//! share is turned into a [`Grant`] for the one door. So a stricter policy
//! also holds for shares that already exist.
//!
//! - `policy.rs`: the admin's sharing policy, kept in `sr_meta`.
//! - `dates.rs`: expiry dates as clients send and read them.
//! - `manage.rs`: create, update, delete, with Nextcloud's refusals.
//! - `mounts.rs`: where shares appear: a recipient's mounts, a public link,
//!   the share through which someone reaches a node.

mod dates;
mod drops;
mod lookup;
mod manage;
mod mounts;
mod pass;
mod policy;

use strongroom_store::{Db, Row, Tx, Val};

pub use dates::{Expiry, day_start, format_date, parse_date};
pub use manage::{NewShare, ShareUpdate};
pub(crate) use mounts::receives_shares_sql;
pub use mounts::{Located, Mount, PublicLink, free_name};
pub use pass::PASS_SECS;
pub use policy::{ExcludeMode, Policy};

use crate::{
    access::perm,
    error::{Error, Result},
    users::Users,
};

pub const USER: i64 = 0;
pub const GROUP: i64 = 1;
pub const LINK: i64 = 3;

/// A refusal as the sharing API reports it: an HTTP-like status and words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareError {
    pub status: u16,
    pub message: String,
}

impl ShareError {
    pub fn new(status: u16, message: impl Into<String>) -> ShareError {
        ShareError { status, message: message.into() }
    }
}

impl From<strongroom_store::DbError> for ShareError {
    fn from(e: strongroom_store::DbError) -> Self {
        Error::from(e).into()
    }
}

impl From<Error> for ShareError {
    fn from(e: Error) -> Self {
        if let Some((status, message)) = e.outage() {
            return ShareError::new(status, message);
        }
        match e {
            Error::NotFound => ShareError::new(404, "Wrong path, file/folder does not exist"),
            Error::BadRequest(m) => ShareError::new(400, m),
            Error::Forbidden(m) => ShareError::new(403, m),
            e => {
                tracing::error!(error = %e, "sharing failed");
                ShareError::new(500, "internal error")
            }
        }
    }
}

/// One row of `shares`.
#[derive(Debug, Clone)]
pub struct Share {
    pub id: i64,
    pub share_type: i64,
    pub owner_id: i64,
    pub sharer_id: i64,
    pub node_id: i64,
    pub recipient_user: Option<i64>,
    pub recipient_group: Option<i64>,
    /// The share the sharer received the node through (a reshare).
    pub via_share: Option<i64>,
    pub permissions: u32,
    pub token: Option<String>,
    pub password_hash: Option<String>,
    /// First second the share is no longer valid (00:00 UTC of its date).
    pub expires_at: Option<i64>,
    pub label: String,
    pub note: String,
    pub hide_download: bool,
    /// Name of the mount point in a recipient's tree.
    pub target: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, share_type, owner_id, sharer_id, node_id, recipient_user, \
     recipient_group, via_share, permissions, token, password_hash, expires_at, label, note, \
     hide_download, target, created_at";

impl Share {
    fn from_row(r: &Row) -> Result<Share> {
        Ok(Share {
            id: r.i64(0)?,
            share_type: r.i64(1)?,
            owner_id: r.i64(2)?,
            sharer_id: r.i64(3)?,
            node_id: r.i64(4)?,
            recipient_user: r.opt_i64(5)?,
            recipient_group: r.opt_i64(6)?,
            via_share: r.opt_i64(7)?,
            permissions: r.i64(8)?.clamp(0, perm::ALL as i64) as u32,
            token: r.opt_str(9)?,
            password_hash: r.opt_str(10)?,
            expires_at: r.opt_i64(11)?,
            label: r.str(12)?,
            note: r.str(13)?,
            hide_download: r.i64(14)? != 0,
            target: r.str(15)?,
            created_at: r.i64(16)?,
        })
    }

    pub fn is_link(&self) -> bool {
        self.share_type == LINK
    }

    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

/// The sharing service.
#[derive(Clone)]
pub struct Shares {
    db: Db,
    users: Users,
}

impl Shares {
    pub fn new(db: Db, users: Users) -> Shares {
        Shares { db, users }
    }

    pub async fn get(&self, id: i64) -> Result<Option<Share>> {
        let sql = const_sql!("SELECT {COLUMNS} FROM shares WHERE id = ?");
        self.db.row(sql, &[id.into()]).await?.map(|r| Share::from_row(&r)).transpose()
    }

    pub async fn by_token(&self, token: &str) -> Result<Option<Share>> {
        let sql = const_sql!("SELECT {COLUMNS} FROM shares WHERE token = ? AND share_type = ?");
        let row = self.db.row(sql, &[token.into(), LINK.into()]).await?;
        row.map(|r| Share::from_row(&r)).transpose()
    }

    /// Every share, for the command line; `of` limits them to one sharer or owner.
    pub async fn all(&self, of: Option<i64>) -> Result<Vec<Share>> {
        let rows = match of {
            Some(u) => {
                let sql = const_sql!(
                    "SELECT {COLUMNS} FROM shares WHERE sharer_id = ? OR owner_id = ? ORDER BY id"
                );
                self.db.rows(sql, &[u.into(), u.into()]).await?
            }
            None => {
                self.db.rows(const_sql!("SELECT {COLUMNS} FROM shares ORDER BY id"), &[]).await?
            }
        };
        rows.iter().map(Share::from_row).collect()
    }

    /// Shares made by `user_id`, or (with `owned`) also those others made on
    /// nodes `user_id` owns.
    pub async fn outgoing(&self, user_id: i64, owned: bool) -> Result<Vec<Share>> {
        let (sql, args): (&str, Vec<Val>) = if owned {
            (
                const_sql!(
                    "SELECT {COLUMNS} FROM shares WHERE sharer_id = ? OR owner_id = ? ORDER BY id"
                ),
                vec![user_id.into(), user_id.into()],
            )
        } else {
            (
                const_sql!("SELECT {COLUMNS} FROM shares WHERE sharer_id = ? ORDER BY id"),
                vec![user_id.into()],
            )
        };
        self.db.rows(sql, &args).await?.iter().map(Share::from_row).collect()
    }

    /// Shares on any of `node_ids`.
    pub async fn on_nodes(&self, node_ids: &[i64]) -> Result<Vec<Share>> {
        if node_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in node_ids.chunks(500) {
            let sql = format!(
                "SELECT {COLUMNS} FROM shares WHERE node_id IN ({}) ORDER BY id",
                strongroom_store::placeholders(chunk.len())
            );
            let args: Vec<Val> = chunk.iter().map(|i| Val::I64(*i)).collect();
            for r in self.db.rows(&sql, &args).await? {
                out.push(Share::from_row(&r)?);
            }
        }
        Ok(out)
    }

    /// Deletes a share for everyone, with every reshare made through it.
    pub async fn delete(&self, id: i64) -> Result<Vec<Share>> {
        let mut tx = self.db.begin().await?;
        let mut gone = Vec::new();
        let mut queue = vec![id];
        while let Some(id) = queue.pop() {
            let sql = const_sql!("SELECT {COLUMNS} FROM shares WHERE id = ?");
            if let Some(r) = tx.row(sql, &[id.into()]).await? {
                gone.push(Share::from_row(&r)?);
            }
            for r in tx.rows("SELECT id FROM shares WHERE via_share = ?", &[id.into()]).await? {
                queue.push(r.i64(0)?);
            }
            tx.exec("DELETE FROM share_left WHERE share_id = ?", &[id.into()]).await?;
            tx.exec("DELETE FROM share_drops WHERE share_id = ?", &[id.into()]).await?;
            tx.exec("DELETE FROM shares WHERE id = ?", &[id.into()]).await?;
        }
        tx.commit().await?;
        for s in &gone {
            self.release_locks(s).await?;
        }
        Ok(gone)
    }

    /// Drops the WebDAV locks that others than the owner hold on a share's
    /// node or below: they were taken through the share, which is gone.
    async fn release_locks(&self, share: &Share) -> Result<()> {
        let Some(owner) = self.users.get_by_id(share.owner_id).await? else { return Ok(()) };
        let Some((_, base)) = self.live_node(&owner, share.node_id).await? else { return Ok(()) };
        let rows = self
            .db
            .rows("SELECT token, path, holder_id FROM locks WHERE owner_id = ?", &[owner.id.into()])
            .await?;
        for r in rows {
            let inside = crate::TreePath::from_key(&r.str(1)?).is_ok_and(|p| p.starts_with(&base));
            if inside && r.i64(2)? != owner.id {
                self.db.exec("DELETE FROM locks WHERE token = ?", &[r.str(0)?.into()]).await?;
            }
        }
        Ok(())
    }

    /// A recipient removes a share from its own tree: a user share is
    /// declined (deleted), a group share is left by this member only.
    pub async fn unshare_from_self(&self, share: &Share, user_id: i64) -> Result<()> {
        match share.share_type {
            GROUP => self.leave(share.id, user_id).await,
            USER if share.recipient_user == Some(user_id) => self.delete(share.id).await.map(drop),
            _ => Err(Error::Forbidden("this share cannot be removed here".into())),
        }
    }

    /// A group member removes a group share from their own tree only.
    pub async fn leave(&self, share_id: i64, user_id: i64) -> Result<()> {
        let mut tx = self.db.begin().await?;
        tx.exec(
            "DELETE FROM share_left WHERE share_id = ? AND user_id = ?",
            &[share_id.into(), user_id.into()],
        )
        .await?;
        tx.exec(
            "INSERT INTO share_left (share_id, user_id) VALUES (?, ?)",
            &[share_id.into(), user_id.into()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the shares (with their reshares) of nodes purged for good,
    /// and file drop records past their hour. Shares of nodes in the trash
    /// stay: restoring the node brings them back. Returns how many shares went.
    pub async fn forget_orphans(&self, now: i64) -> Result<usize> {
        self.db
            .exec(
                "DELETE FROM share_drops WHERE created_at < ?",
                &[(now - drops::KEEP_SECS).into()],
            )
            .await?;
        let rows = self
            .db
            .rows("SELECT s.id FROM shares s LEFT JOIN nodes n ON n.id = s.node_id WHERE n.id IS NULL", &[])
            .await?;
        let mut n = 0;
        for r in rows {
            n += self.delete(r.i64(0)?).await?.len();
        }
        Ok(n)
    }

    /// Removes what refers to an account about to be deleted.
    pub(crate) async fn forget_user(c: &mut Tx, user_id: i64) -> Result<()> {
        c.exec(
            "DELETE FROM shares WHERE owner_id = ? OR sharer_id = ? OR recipient_user = ?",
            &[user_id.into(), user_id.into(), user_id.into()],
        )
        .await?;
        c.exec("DELETE FROM share_left WHERE user_id = ?", &[user_id.into()]).await?;
        Ok(())
    }

    /// Removes the shares with a group about to be deleted.
    pub(crate) async fn forget_group(c: &mut Tx, group_id: i64) -> Result<()> {
        c.exec(
            "DELETE FROM shares WHERE share_type = ? AND recipient_group = ?",
            &[GROUP.into(), group_id.into()],
        )
        .await?;
        Ok(())
    }
}
