//! Local accounts and groups, and password verification.
//!
//! Passwords are hashed with Argon2id. Verifying one costs tens of milliseconds
//! of CPU on purpose, so hashing runs on the blocking pool behind a semaphore,
//! and a password verified once is remembered for a short time as a keyed
//! digest (never in clear) so that WebDAV clients sending Basic auth on every
//! request do not pay it each time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use strongroom_store::{Db, Row, Val};
use tokio::sync::Semaphore;

use crate::{
    check_turn::{CheckTurn, CheckTurns},
    error::{Error, Result},
    files::NodeKind,
    secret::Secret,
    util::{new_etag, now_secs},
};

pub(crate) const USER_COLUMNS: &str = "id, uid, display_name, email, password_hash, enabled, quota, root_id, created_at, trash_root_id, last_login";

/// What a password check found.
pub enum PasswordCheck {
    Passed(User),
    /// No such account, or not its password.
    Wrong,
    /// The account's password, but the account is disabled.
    Disabled,
}

/// An account.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub uid: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
    /// Bytes; negative means unlimited.
    pub quota: i64,
    pub root_id: i64,
    pub created_at: i64,
    /// The hidden folder that holds the user's deleted items.
    pub trash_root_id: Option<i64>,
    /// Milliseconds since the epoch of the last login (0: never).
    pub last_login: i64,
    password_hash: Option<String>,
    /// Whether the account receives any user or group share, where the
    /// query that read the account also asked (the app-password lookup, see
    /// [`crate::sharing::receives_shares_sql`]): a request of an account
    /// that receives none need not look for its mounts.
    pub(crate) receives_shares: Option<bool>,
}

impl User {
    fn from_row(r: &Row) -> Result<User> {
        User::from_row_at(r, 0)
    }

    /// The account whose [`USER_COLUMNS`] start at column `at` of `r` (after
    /// another table's columns in a join).
    pub(crate) fn from_row_at(r: &Row, at: usize) -> Result<User> {
        Ok(User {
            id: r.i64(at)?,
            uid: r.str(at + 1)?,
            display_name: r.opt_str(at + 2)?,
            email: r.opt_str(at + 3)?,
            password_hash: r.opt_str(at + 4)?,
            enabled: r.i64(at + 5)? != 0,
            quota: r.i64(at + 6)?,
            root_id: r.opt_i64(at + 7)?.unwrap_or(0),
            created_at: r.i64(at + 8)?,
            trash_root_id: r.opt_i64(at + 9)?,
            last_login: r.i64(at + 10)?,
            receives_shares: None,
        })
    }

    pub fn display(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.uid)
    }
}

/// A group of accounts.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: i64,
    pub gid: String,
    pub members: Vec<String>,
}

/// Remembers recently verified passwords as keyed digests.
struct VerifiedCache {
    key: [u8; 32],
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

const CACHE_TTL: Duration = Duration::from_secs(120);
const CACHE_MAX: usize = 10_000;

impl VerifiedCache {
    /// The digest binds the stored hash too, so a changed password (on any node)
    /// no longer matches an old entry.
    fn digest(&self, user: &User, password: &Secret) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key size");
        mac.update(&user.id.to_le_bytes());
        mac.update(user.password_hash.as_deref().unwrap_or("").as_bytes());
        mac.update(&[0]);
        mac.update(password.expose().as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn hit(&self, d: &[u8; 32]) -> bool {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(d).is_some_and(|t| t.elapsed() < CACHE_TTL)
    }

    fn insert(&self, d: [u8; 32]) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX {
            map.retain(|_, t| t.elapsed() < CACHE_TTL);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(d, Instant::now());
    }
}

/// The account service.
#[derive(Clone)]
pub struct Users {
    pub(crate) db: Db,
    hashing: Arc<Semaphore>,
    cache: Arc<VerifiedCache>,
    turns: Arc<CheckTurns>,
    /// A hash of a random password, verified when the account does not exist so
    /// that an unknown user costs the same time as a wrong password.
    decoy_hash: Arc<String>,
}

/// A folder outside the user's visible tree (no parent), such as the trash root.
pub(crate) async fn insert_hidden_root(
    tx: &mut strongroom_store::Tx,
    user_id: i64,
    now: i64,
) -> Result<i64> {
    Ok(tx
        .insert(
            "INSERT INTO nodes (owner_id, parent_id, name, kind, size, mtime, ctime, etag) VALUES (?, NULL, '', ?, 0, ?, ?, ?)",
            &[user_id.into(), NodeKind::Folder.code().into(), now.into(), now.into(), new_etag().into()],
        )
        .await?)
}

/// Why a user id is not acceptable, or `None` when it is.
pub fn check_uid(uid: &str) -> Result<()> {
    let bad = |m: &str| Err(Error::BadRequest(m.to_owned()));
    if uid.is_empty() {
        return bad("the user id must not be empty");
    }
    if uid.len() > 64 {
        return bad("the user id must be at most 64 characters");
    }
    if uid == "." || uid == ".." || uid.trim() != uid || uid.starts_with('-') {
        return bad("the user id is not valid");
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || "_.@-' ".contains(c);
    if !uid.chars().all(ok) {
        return bad("only the characters a-z, A-Z, 0-9, spaces and _.@-' are allowed in a user id");
    }
    Ok(())
}

/// The password rules applied wherever a password is set.
pub fn check_password(uid: &str, password: &Secret) -> Result<()> {
    crate::password::check(uid, password)
}

impl Users {
    pub fn new(db: Db) -> Users {
        let decoy = Argon2::default()
            .hash_password(&rand::random::<[u8; 16]>())
            .map(|h| h.to_string())
            .unwrap_or_default();
        Users {
            db,
            hashing: Arc::new(Semaphore::new(2)),
            cache: Arc::new(VerifiedCache {
                key: rand::random(),
                entries: Mutex::new(HashMap::new()),
            }),
            turns: Arc::new(CheckTurns::new()),
            decoy_hash: Arc::new(decoy),
        }
    }

    pub async fn count(&self) -> Result<i64> {
        let row = self.db.row("SELECT COUNT(*) FROM users", &[]).await?;
        Ok(row.map(|r| r.i64(0)).transpose()?.unwrap_or(0))
    }

    pub async fn get(&self, uid: &str) -> Result<Option<User>> {
        let sql = const_sql!("SELECT {USER_COLUMNS} FROM users WHERE uid_lower = ?");
        let row = self.db.row(sql, &[uid.to_lowercase().into()]).await?;
        row.map(|r| User::from_row(&r)).transpose()
    }

    pub async fn get_by_id(&self, id: i64) -> Result<Option<User>> {
        let sql = const_sql!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        let row = self.db.row(sql, &[id.into()]).await?;
        row.map(|r| User::from_row(&r)).transpose()
    }

    pub async fn list(&self) -> Result<Vec<User>> {
        let sql = const_sql!("SELECT {USER_COLUMNS} FROM users ORDER BY uid_lower");
        self.db.rows(sql, &[]).await?.iter().map(User::from_row).collect()
    }

    /// Creates an account with its (empty) home folder.
    pub async fn create(
        &self,
        uid: &str,
        password: &Secret,
        display_name: Option<&str>,
    ) -> Result<User> {
        check_uid(uid)?;
        check_password(uid, password)?;
        let hash = self.hash(password).await?;
        let now = now_secs();
        let mut tx = self.db.begin().await?;
        let lower = [Val::from(uid.to_lowercase())];
        if tx.row("SELECT id FROM users WHERE uid_lower = ?", &lower).await?.is_some() {
            return Err(Error::AlreadyExists(format!("the user {uid:?} already exists")));
        }
        let id = tx
            .insert(
                "INSERT INTO users (uid, uid_lower, display_name, email, password_hash, enabled, \
                 quota, created_at) VALUES (?, ?, ?, NULL, ?, 1, -1, ?)",
                &[
                    uid.into(),
                    uid.to_lowercase().into(),
                    display_name.into(),
                    hash.into(),
                    now.into(),
                ],
            )
            .await
            .map_err(|e| match e {
                strongroom_store::DbError::Conflict => {
                    Error::AlreadyExists(format!("the user {uid:?} already exists"))
                }
                e => e.into(),
            })?;
        let root = tx
            .insert(
                "INSERT INTO nodes (owner_id, parent_id, name, kind, size, mtime, ctime, etag) \
                 VALUES (?, NULL, '', ?, 0, ?, ?, ?)",
                &[
                    id.into(),
                    NodeKind::Folder.code().into(),
                    now.into(),
                    now.into(),
                    new_etag().into(),
                ],
            )
            .await?;
        let trash = insert_hidden_root(&mut tx, id, now).await?;
        tx.exec(
            "UPDATE users SET root_id = ?, trash_root_id = ? WHERE id = ?",
            &[root.into(), trash.into(), id.into()],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(target: "strongroom::users", user = uid, "user created");
        self.get_by_id(id).await?.ok_or_else(|| Error::Internal("user vanished".into()))
    }

    pub async fn set_password(&self, uid: &str, password: &Secret) -> Result<()> {
        let user = self.get(uid).await?.ok_or(Error::NotFound)?;
        check_password(&user.uid, password)?;
        let hash = self.hash(password).await?;
        self.db
            .exec("UPDATE users SET password_hash = ? WHERE id = ?", &[hash.into(), user.id.into()])
            .await?;
        Ok(())
    }

    pub async fn set_enabled(&self, uid: &str, enabled: bool) -> Result<()> {
        let n = self
            .db
            .exec(
                "UPDATE users SET enabled = ? WHERE uid_lower = ?",
                &[i64::from(enabled).into(), uid.to_lowercase().into()],
            )
            .await?;
        if n == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    /// Sets the quota in bytes (negative: unlimited).
    pub async fn set_quota(&self, uid: &str, quota: i64) -> Result<()> {
        let n = self
            .db
            .exec(
                "UPDATE users SET quota = ? WHERE uid_lower = ?",
                &[quota.into(), uid.to_lowercase().into()],
            )
            .await?;
        if n == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    /// Verifies a password login. Unknown users, disabled users and wrong
    /// passwords all answer `None` after the same amount of work.
    pub async fn verify_password(&self, uid: &str, password: &Secret) -> Result<Option<User>> {
        Ok(match self.check_password(uid, password).await? {
            PasswordCheck::Passed(user) => Some(user),
            PasswordCheck::Wrong | PasswordCheck::Disabled => None,
        })
    }

    /// [`Users::verify_password`], telling a disabled account's right
    /// password from a wrong one (for the audit log, never for the client).
    pub async fn check_password(&self, uid: &str, password: &Secret) -> Result<PasswordCheck> {
        let user = self.get(uid).await?;
        let Some(user) = user else {
            let decoy = self.decoy_hash.clone();
            self.verify_hash(decoy.as_str().to_owned(), password.clone()).await?;
            return Ok(PasswordCheck::Wrong);
        };
        let digest = self.cache.digest(&user, password);
        let ok = if self.cache.hit(&digest) {
            true
        } else {
            let stored = user.password_hash.clone().unwrap_or_else(|| self.decoy_hash.to_string());
            let ok =
                self.verify_hash(stored, password.clone()).await? && user.password_hash.is_some();
            if ok {
                self.cache.insert(digest);
                if user.enabled {
                    self.record_login(&user).await?;
                }
            }
            ok
        };
        Ok(match (ok, user.enabled) {
            (true, true) => PasswordCheck::Passed(user),
            (true, false) => PasswordCheck::Disabled,
            (false, _) => PasswordCheck::Wrong,
        })
    }

    /// The account when `password` was verified for it a moment ago (kept as a
    /// keyed digest), without any Argon2 work; `None` otherwise.
    pub async fn verify_cached(&self, uid: &str, password: &Secret) -> Result<Option<User>> {
        let Some(user) = self.get(uid).await? else { return Ok(None) };
        let hit = self.cache.hit(&self.cache.digest(&user, password));
        Ok((hit && user.enabled).then_some(user))
    }

    /// Waits until no other check of this login and password is running
    /// (see [`crate::check_turn`]); look in the cache again once it is yours.
    pub async fn check_turn(&self, login: &str, password: &Secret) -> CheckTurn<'_> {
        self.turns.take(login, password).await
    }

    /// Ends every browser session of an account (password reset, account
    /// disabled), except `keep`.
    pub async fn end_sessions(&self, user_id: i64, keep: Option<i64>) -> Result<()> {
        self.db
            .exec(
                "DELETE FROM app_tokens WHERE user_id = ? AND kind = 0 AND id <> ?",
                &[user_id.into(), keep.unwrap_or(-1).into()],
            )
            .await?;
        Ok(())
    }

    /// Hashes a secret other than an account password (a link's password)
    /// with the same Argon2id parameters and the same bound on parallel work.
    pub async fn hash_secret(&self, secret: &Secret) -> Result<String> {
        self.hash(secret).await
    }

    /// Verifies a secret against a hash made by [`Users::hash_secret`].
    pub async fn verify_secret(&self, stored: &str, secret: &Secret) -> Result<bool> {
        self.verify_hash(stored.to_owned(), secret.clone()).await
    }

    async fn hash(&self, password: &Secret) -> Result<String> {
        let _permit = self.hashing.acquire().await.map_err(|e| Error::Internal(e.to_string()))?;
        let pw = password.clone();
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(pw.expose().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| Error::Internal(format!("hashing failed: {e}")))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
    }

    async fn verify_hash(&self, stored: String, password: Secret) -> Result<bool> {
        let _permit = self.hashing.acquire().await.map_err(|e| Error::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&stored) else { return false };
            Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok()
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Deletes an account, its files and its group memberships.
    pub async fn delete(&self, uid: &str, files: &crate::Files) -> Result<()> {
        let user = self.get(uid).await?.ok_or(Error::NotFound)?;
        // Disabled first, in a commit of its own: while the files go (which
        // can take a while) the account's requests are refused as for any
        // disabled account, and a deletion cut short by a crash leaves an
        // account that is off and that a second `delete` finishes.
        self.set_enabled(&user.uid, false).await?;
        // A connection that verified one of its app passwords just before
        // may let reads in for a moment more when this runs in another
        // process (`tokens::VERIFIED_HOLD`): they find the files, not an
        // account without a home folder.
        tokio::time::sleep(crate::tokens::VERIFIED_HOLD).await;
        files.delete_tree_of(&user).await?;
        let mut tx = self.db.begin().await?;
        tx.exec("DELETE FROM group_members WHERE user_id = ?", &[user.id.into()]).await?;
        tx.exec("DELETE FROM locks WHERE owner_id = ?", &[user.id.into()]).await?;
        tx.exec("DELETE FROM app_tokens WHERE user_id = ?", &[user.id.into()]).await?;
        tx.exec("DELETE FROM group_admins WHERE user_id = ?", &[user.id.into()]).await?;
        tx.exec("DELETE FROM account_props WHERE user_id = ?", &[user.id.into()]).await?;
        tx.exec("DELETE FROM favorites WHERE user_id = ?", &[user.id.into()]).await?;
        crate::sharing::Shares::forget_user(&mut tx, user.id).await?;
        for table in crate::twofactor::USER_TABLES {
            tx.exec(&format!("DELETE FROM {table} WHERE user_id = ?"), &[user.id.into()]).await?;
        }
        tx.exec("DELETE FROM users WHERE id = ?", &[user.id.into()]).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- groups -------------------------------------------------------------

    pub async fn group_create(&self, gid: &str) -> Result<()> {
        self.group_create_named(gid, None).await
    }

    pub async fn group_create_named(&self, gid: &str, display_name: Option<&str>) -> Result<()> {
        check_uid(gid).map_err(|_| Error::BadRequest(format!("invalid group id {gid:?}")))?;
        let mut tx = self.db.begin().await?;
        if tx
            .row("SELECT id FROM user_groups WHERE gid_lower = ?", &[gid.to_lowercase().into()])
            .await?
            .is_some()
        {
            return Err(Error::AlreadyExists(format!("the group {gid:?} already exists")));
        }
        tx.insert(
            "INSERT INTO user_groups (gid, gid_lower, display_name, created_at) VALUES (?, ?, ?, ?)",
            &[gid.into(), gid.to_lowercase().into(), display_name.into(), now_secs().into()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn group_id(&self, gid: &str) -> Result<i64> {
        let row = self
            .db
            .row("SELECT id FROM user_groups WHERE gid_lower = ?", &[gid.to_lowercase().into()])
            .await?;
        row.ok_or(Error::NotFound)?.i64(0).map_err(Into::into)
    }

    pub async fn group_delete(&self, gid: &str) -> Result<()> {
        let id = self.group_id(gid).await?;
        let mut tx = self.db.begin().await?;
        tx.exec("DELETE FROM group_members WHERE group_id = ?", &[id.into()]).await?;
        tx.exec("DELETE FROM group_admins WHERE group_id = ?", &[id.into()]).await?;
        crate::sharing::Shares::forget_group(&mut tx, id).await?;
        tx.exec("DELETE FROM user_groups WHERE id = ?", &[id.into()]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn group_add_user(&self, gid: &str, uid: &str) -> Result<()> {
        let group = self.group_id(gid).await?;
        let user = self.get(uid).await?.ok_or(Error::NotFound)?;
        let mut tx = self.db.begin().await?;
        let args = [group.into(), user.id.into()];
        if tx
            .row("SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?", &args)
            .await?
            .is_none()
        {
            tx.exec("INSERT INTO group_members (group_id, user_id) VALUES (?, ?)", &args).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn group_remove_user(&self, gid: &str, uid: &str) -> Result<()> {
        let group = self.group_id(gid).await?;
        let user = self.get(uid).await?.ok_or(Error::NotFound)?;
        let n = self
            .db
            .exec(
                "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
                &[group.into(), user.id.into()],
            )
            .await?;
        if n == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    pub async fn groups(&self) -> Result<Vec<Group>> {
        let rows = self
            .db
            .rows(
                "SELECT g.id, g.gid, u.uid FROM user_groups g LEFT JOIN group_members m ON m.group_id = g.id \
                 LEFT JOIN users u ON u.id = m.user_id ORDER BY g.gid_lower, u.uid_lower",
                &[],
            )
            .await?;
        let mut out: Vec<Group> = Vec::new();
        for r in rows {
            let id = r.i64(0)?;
            if out.last().is_none_or(|g| g.id != id) {
                out.push(Group { id, gid: r.str(1)?, members: Vec::new() });
            }
            if let (Some(g), Some(uid)) = (out.last_mut(), r.opt_str(2)?) {
                g.members.push(uid);
            }
        }
        Ok(out)
    }

    pub async fn groups_of(&self, user_id: i64) -> Result<Vec<String>> {
        let rows = self
            .db
            .rows(
                "SELECT g.gid FROM user_groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.gid_lower",
                &[user_id.into()],
            )
            .await?;
        rows.iter().map(|r| r.str(0).map_err(Into::into)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_follow_the_nextcloud_alphabet() {
        for ok in ["alice", "a.b@c-d_e", "O'Brien", "x y"] {
            assert!(check_uid(ok).is_ok(), "{ok}");
        }
        for bad in ["", "..", " lead", "-opt", "a/b", "a\\b", "ümlaut", &"x".repeat(65)] {
            assert!(check_uid(bad).is_err(), "{bad}");
        }
    }
}
