//! WebDAV write locks (RFC 4918 §6–7): exclusive and shared, depth 0 or
//! infinity, with timeouts. Locks are rows keyed by a path in the owner's tree,
//! so every node of a cluster sees the same locks.

use strongroom_store::{Conn, Db, Row, Tx, Val};

use crate::{
    access::{Op, authorize},
    error::{Error, Result},
    files::Ctx,
    path::TreePath,
    util::now_secs,
};

/// Default and largest lock lifetime, in seconds.
pub const DEFAULT_TIMEOUT: i64 = 1800;
pub const MAX_TIMEOUT: i64 = 86_400;

/// An active lock.
#[derive(Debug, Clone)]
pub struct Lock {
    pub token: String,
    pub path: TreePath,
    /// Depth infinity (covers everything below `path`).
    pub deep: bool,
    pub shared: bool,
    pub holder_id: i64,
    /// The `DAV:owner` XML the client supplied, returned verbatim.
    pub owner_xml: Option<String>,
    pub timeout_secs: i64,
    pub expires_at: i64,
}

impl Lock {
    fn from_row(r: &Row) -> Result<Lock> {
        Ok(Lock {
            token: r.str(0)?,
            path: TreePath::from_key(&r.str(1)?)?,
            deep: r.i64(2)? != 0,
            shared: r.i64(3)? != 0,
            holder_id: r.i64(4)?,
            owner_xml: r.opt_str(5)?,
            timeout_secs: r.i64(6)?,
            expires_at: r.i64(7)?,
        })
    }

    /// True when this lock applies to `path` itself.
    pub fn covers(&self, path: &TreePath) -> bool {
        self.path == *path || (self.deep && path.starts_with(&self.path))
    }
}

/// What a change does to the locked namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Changes the resource's content or properties.
    Write,
    /// Adds a new member to the parent folder.
    Create,
    /// Removes the resource (and its subtree) from its parent.
    Remove,
}

const LOCK_COLUMNS: &str =
    "token, path, deep, shared, holder_id, owner_xml, timeout_secs, expires_at";

/// The lock service.
#[derive(Clone)]
pub struct Locks {
    db: Db,
}

/// Parameters of a new lock.
#[derive(Debug, Clone)]
pub struct LockRequest {
    pub deep: bool,
    pub shared: bool,
    pub owner_xml: Option<String>,
    pub timeout_secs: i64,
}

impl Locks {
    pub(crate) fn new(db: Db) -> Locks {
        Locks { db }
    }

    /// The unexpired locks in one owner's tree.
    pub async fn active<C: Conn>(&self, c: &mut C, owner_id: i64) -> Result<Vec<Lock>> {
        let sql =
            const_sql!("SELECT {LOCK_COLUMNS} FROM locks WHERE owner_id = ? AND expires_at > ?");
        let rows = c.rows(sql, &[owner_id.into(), now_secs().into()]).await?;
        rows.iter().map(Lock::from_row).collect()
    }

    /// Every unexpired lock in one owner's tree.
    pub async fn all(&self, owner_id: i64) -> Result<Vec<Lock>> {
        let mut db = self.db.clone();
        self.active(&mut db, owner_id).await
    }

    /// Locks that apply to `path` itself (for lock discovery).
    pub async fn on_path(&self, owner_id: i64, path: &TreePath) -> Result<Vec<Lock>> {
        let mut db = self.db.clone();
        Ok(self.active(&mut db, owner_id).await?.into_iter().filter(|l| l.covers(path)).collect())
    }

    /// Refuses the change unless the request submitted a token of every lock
    /// that protects what it changes.
    pub(crate) async fn check<C: Conn>(
        &self,
        c: &mut C,
        cx: &Ctx<'_>,
        path: &TreePath,
        guard: Guard,
    ) -> Result<()> {
        let locks = self.active(c, cx.owner.id).await?;
        if locks.is_empty() {
            return Ok(());
        }
        let parent = path.parent();
        let protecting = locks.iter().filter(|l| {
            let on_target = l.covers(path) && guard != Guard::Create;
            let on_parent = guard != Guard::Write && parent.as_ref().is_some_and(|p| l.covers(p));
            let below = guard == Guard::Remove && l.path.starts_with(path) && l.path != *path;
            on_target || on_parent || below
        });
        for lock in protecting {
            let held =
                lock.holder_id == cx.who.user_id && cx.tokens.iter().any(|t| *t == lock.token);
            if held {
                continue;
            }
            // A shared lock is satisfied by any shared lock on the same root the request holds.
            let shared_ok = lock.shared
                && locks.iter().any(|o| {
                    o.shared
                        && o.path == lock.path
                        && o.holder_id == cx.who.user_id
                        && cx.tokens.contains(&o.token)
                });
            if !shared_ok {
                return Err(Error::Locked(lock.path.to_key()));
            }
        }
        Ok(())
    }

    /// Takes a new lock on `path`, refusing when it conflicts with another.
    pub async fn lock(&self, cx: &Ctx<'_>, path: &TreePath, req: &LockRequest) -> Result<Lock> {
        authorize(cx.who, Op::Lock, cx.owner.id, cx.grant)?;
        crate::util::retry(|| self.try_lock(cx, path, req)).await
    }

    async fn try_lock(&self, cx: &Ctx<'_>, path: &TreePath, req: &LockRequest) -> Result<Lock> {
        let mut tx = self.db.begin().await?;
        // The same order as every change to this tree: the owner's row first.
        tx.lock_row("users", cx.owner.id).await?;
        let locks = self.active(&mut tx, cx.owner.id).await?;
        let conflict = locks.iter().find(|l| {
            let overlaps = l.covers(path) || (req.deep && l.path.starts_with(path));
            overlaps && (!l.shared || !req.shared)
        });
        if let Some(l) = conflict {
            return Err(Error::Locked(l.path.to_key()));
        }
        let lock = Lock {
            token: format!("opaquelocktoken:{}", uuid_v4()),
            path: path.clone(),
            deep: req.deep,
            shared: req.shared,
            holder_id: cx.who.user_id,
            owner_xml: req.owner_xml.clone(),
            timeout_secs: req.timeout_secs,
            expires_at: now_secs() + req.timeout_secs,
        };
        tx.exec(
            "DELETE FROM locks WHERE owner_id = ? AND expires_at <= ?",
            &[cx.owner.id.into(), now_secs().into()],
        )
        .await?;
        tx.exec(
            const_sql!(
                "INSERT INTO locks ({LOCK_COLUMNS}, owner_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            &[
                lock.token.as_str().into(),
                path.to_key().into(),
                i64::from(lock.deep).into(),
                i64::from(lock.shared).into(),
                lock.holder_id.into(),
                lock.owner_xml.clone().into(),
                lock.timeout_secs.into(),
                lock.expires_at.into(),
                cx.owner.id.into(),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(lock)
    }

    /// Extends the lifetime of a lock the request holds and that covers `path`.
    pub async fn refresh(&self, cx: &Ctx<'_>, path: &TreePath, timeout_secs: i64) -> Result<Lock> {
        authorize(cx.who, Op::Lock, cx.owner.id, cx.grant)?;
        let mut db = self.db.clone();
        let locks = self.active(&mut db, cx.owner.id).await?;
        let mut lock = locks
            .into_iter()
            .find(|l| {
                l.covers(path) && l.holder_id == cx.who.user_id && cx.tokens.contains(&l.token)
            })
            .ok_or_else(|| {
                Error::PreconditionFailed("no lock of this request covers the resource".into())
            })?;
        lock.timeout_secs = timeout_secs;
        lock.expires_at = now_secs() + timeout_secs;
        self.db
            .exec(
                "UPDATE locks SET timeout_secs = ?, expires_at = ? WHERE token = ?",
                &[timeout_secs.into(), lock.expires_at.into(), lock.token.as_str().into()],
            )
            .await?;
        Ok(lock)
    }

    /// Releases the lock `token`, which must cover `path`. Its holder may,
    /// and so may the owner of the tree in its own name (a lock taken
    /// through a share must not shut the owner out of its files).
    pub async fn unlock(&self, cx: &Ctx<'_>, path: &TreePath, token: &str) -> Result<()> {
        authorize(cx.who, Op::Lock, cx.owner.id, cx.grant)?;
        let mut db = self.db.clone();
        let locks = self.active(&mut db, cx.owner.id).await?;
        let lock = locks.into_iter().find(|l| l.token == token).ok_or_else(|| {
            Error::Conflict("the lock token does not match a lock on this resource".into())
        })?;
        if !lock.covers(path) {
            return Err(Error::Conflict(
                "the lock token does not match a lock on this resource".into(),
            ));
        }
        let tree_owner = cx.grant.is_none() && cx.who.user_id == cx.owner.id;
        if lock.holder_id != cx.who.user_id && !tree_owner {
            return Err(Error::Forbidden("the lock belongs to someone else".into()));
        }
        self.db.exec("DELETE FROM locks WHERE token = ?", &[token.into()]).await?;
        Ok(())
    }

    /// Drops the locks on `path` and below (the resources went away).
    pub(crate) async fn forget_below(
        &self,
        tx: &mut Tx,
        owner_id: i64,
        path: &TreePath,
    ) -> Result<()> {
        let locks = self.active(tx, owner_id).await?;
        for l in locks.iter().filter(|l| l.path.starts_with(path)) {
            tx.exec("DELETE FROM locks WHERE token = ?", &[Val::Str(l.token.clone())]).await?;
        }
        Ok(())
    }
}

/// A random UUID (version 4) in its usual text form.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
