//! App passwords (device tokens): 72 random characters shown once, stored only
//! as a SHA-256 digest. With that much entropy a fast hash is safe, and
//! verifying one is an indexed lookup instead of an Argon2 computation.

use sha2::{Digest, Sha256};
use strongroom_store::{Db, Row, Val};

use crate::{
    error::{Error, Result},
    secret::Secret,
    users::{User, Users},
    util::now_secs,
};

pub const TOKEN_LEN: usize = 72;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Last-use times are written at most this often per token (seconds).
const TOUCH_INTERVAL: i64 = 60;

/// An app password, without its secret.
#[derive(Debug, Clone)]
pub struct AppToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used: i64,
    /// The device was told to wipe itself; the token no longer authenticates.
    pub wipe: bool,
}

const TOKEN_COLUMNS: &str = "id, user_id, name, created_at, last_used, wipe";

impl AppToken {
    fn from_row(r: &Row) -> Result<AppToken> {
        Ok(AppToken {
            id: r.i64(0)?,
            user_id: r.i64(1)?,
            name: r.str(2)?,
            created_at: r.i64(3)?,
            last_used: r.i64(4)?,
            wipe: r.i64(5)? != 0,
        })
    }
}

/// True when a Basic password has the shape of an app password.
pub fn looks_like_token(s: &str) -> bool {
    s.len() == TOKEN_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh random secret of `len` characters from the token alphabet.
pub fn random_secret(len: usize) -> Secret {
    Secret::new((0..len).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect::<String>())
}

#[derive(Clone)]
pub struct Tokens {
    db: Db,
    users: Users,
}

impl Tokens {
    pub fn new(db: Db, users: Users) -> Tokens {
        Tokens { db, users }
    }

    /// Creates an app password named after the client; returns it once.
    pub async fn create(&self, user: &User, name: &str) -> Result<(AppToken, Secret)> {
        let secret = random_secret(TOKEN_LEN);
        let name: String = name.chars().filter(|c| !c.is_control()).take(120).collect();
        let name = if name.trim().is_empty() { "unnamed client".to_owned() } else { name };
        let now = now_secs();
        let mut tx = self.db.begin().await?;
        let id = tx
            .insert(
                "INSERT INTO app_tokens (user_id, name, token_hash, created_at, last_used) VALUES (?, ?, ?, ?, ?)",
                &[user.id.into(), name.as_str().into(), digest(secret.expose()).into(), now.into(), now.into()],
            )
            .await?;
        tx.commit().await?;
        tracing::info!(target: "strongroom::tokens", user = %user.uid, token = id, "app password created");
        Ok((AppToken { id, user_id: user.id, name, created_at: now, last_used: now, wipe: false }, secret))
    }

    /// Checks an app password given with `login`; the token must belong to that
    /// account, and the account must be enabled.
    pub async fn verify(&self, login: &str, secret: &Secret) -> Result<Option<(User, AppToken)>> {
        if !looks_like_token(secret.expose()) {
            return Ok(None);
        }
        let Some(token) = self.by_secret(secret).await? else { return Ok(None) };
        if token.wipe {
            return Ok(None);
        }
        let Some(user) = self.users.get_by_id(token.user_id).await? else { return Ok(None) };
        if !user.enabled || !user.uid.eq_ignore_ascii_case(login) {
            return Ok(None);
        }
        let now = now_secs();
        if now - token.last_used >= TOUCH_INTERVAL {
            self.db.exec("UPDATE app_tokens SET last_used = ? WHERE id = ?", &[now.into(), token.id.into()]).await?;
        }
        Ok(Some((user, token)))
    }

    async fn by_secret(&self, secret: &Secret) -> Result<Option<AppToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM app_tokens WHERE token_hash = ?");
        let row = self.db.row(&sql, &[digest(secret.expose()).into()]).await?;
        row.map(|r| AppToken::from_row(&r)).transpose()
    }

    pub async fn list(&self, user_id: i64) -> Result<Vec<AppToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM app_tokens WHERE user_id = ? ORDER BY id");
        let rows = self.db.rows(&sql, &[Val::I64(user_id)]).await?;
        rows.iter().map(AppToken::from_row).collect()
    }

    /// Marks every device of a user for remote wipe: each is refused at its
    /// next request and, asking why, is told to wipe itself.
    pub async fn request_wipe_all(&self, user_id: i64) -> Result<usize> {
        let n = self.db.exec("UPDATE app_tokens SET wipe = 1 WHERE user_id = ?", &[user_id.into()]).await?;
        tracing::info!(target: "strongroom::tokens", user = user_id, devices = n, "remote wipe requested");
        Ok(n as usize)
    }

    /// Whether the device holding `secret` must wipe itself.
    pub async fn wipe_pending(&self, secret: &Secret) -> Result<bool> {
        Ok(self.by_secret(secret).await?.is_some_and(|t| t.wipe))
    }

    /// The device confirmed its wipe: its token is deleted. False when no wipe was pending.
    pub async fn wipe_done(&self, secret: &Secret) -> Result<bool> {
        let Some(t) = self.by_secret(secret).await?.filter(|t| t.wipe) else { return Ok(false) };
        self.db.exec("DELETE FROM app_tokens WHERE id = ?", &[t.id.into()]).await?;
        tracing::info!(target: "strongroom::tokens", user = t.user_id, token = t.id, "remote wipe confirmed");
        Ok(true)
    }

    /// Revokes one of the user's app passwords; it fails on the very next request.
    pub async fn delete(&self, user_id: i64, token_id: i64) -> Result<()> {
        let n = self.db.exec("DELETE FROM app_tokens WHERE id = ? AND user_id = ?", &[token_id.into(), user_id.into()]).await?;
        if n == 0 {
            return Err(Error::NotFound);
        }
        tracing::info!(target: "strongroom::tokens", token = token_id, "app password revoked");
        Ok(())
    }

    /// Revokes every app password of a user (account deleted or disabled by an admin).
    pub async fn delete_all(&self, user_id: i64) -> Result<()> {
        self.db.exec("DELETE FROM app_tokens WHERE user_id = ?", &[user_id.into()]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_expected_shape() {
        let s = random_secret(TOKEN_LEN);
        assert!(looks_like_token(s.expose()));
        assert!(!looks_like_token("short"));
        assert!(!looks_like_token(&"a-".repeat(36)));
        assert_ne!(random_secret(TOKEN_LEN), s);
    }
}
