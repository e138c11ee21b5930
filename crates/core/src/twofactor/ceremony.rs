//! Ceremonies in progress (a WebAuthn challenge, a code sent by email or
//! SMS): state kept server-side in `mfa_challenges`, found by the SHA-256 of
//! a random handle the client holds. Taking one deletes it, so each is
//! answered at most once, on any node; expired ones are refused.

use super::{TwoFactor, sha256_hex};
use crate::{Result, now_secs, secret::Secret, tokens::random_secret};

impl TwoFactor {
    /// Stores a ceremony's state for `ttl_secs`; returns the handle once.
    pub async fn ceremony_put(
        &self,
        kind: &str,
        user_id: Option<i64>,
        state: &str,
        ttl_secs: i64,
    ) -> Result<Secret> {
        let handle = random_secret(43);
        let now = now_secs();
        self.db.exec("DELETE FROM mfa_challenges WHERE expires_at < ?", &[now.into()]).await?;
        self.db
            .exec(
                "INSERT INTO mfa_challenges (handle_hash, user_id, kind, state, expires_at) VALUES (?, ?, ?, ?, ?)",
                &[
                    sha256_hex(handle.expose().as_bytes()).into(),
                    user_id.into(),
                    kind.into(),
                    state.into(),
                    (now + ttl_secs).into(),
                ],
            )
            .await?;
        Ok(handle)
    }

    /// Takes a ceremony of `kind` by its handle: (user, state), once.
    pub async fn ceremony_take(
        &self,
        kind: &str,
        handle: &str,
    ) -> Result<Option<(Option<i64>, String)>> {
        let key = sha256_hex(handle.as_bytes());
        let Some(r) = self
            .db
            .row(
                "SELECT user_id, state, expires_at FROM mfa_challenges WHERE handle_hash = ? AND kind = ?",
                &[key.clone().into(), kind.into()],
            )
            .await?
        else {
            return Ok(None);
        };
        let n =
            self.db.exec("DELETE FROM mfa_challenges WHERE handle_hash = ?", &[key.into()]).await?;
        if n != 1 || r.i64(2)? < now_secs() {
            return Ok(None);
        }
        Ok(Some((r.opt_i64(0)?, r.str(1)?)))
    }

    /// Replaces the state of a ceremony that stays open (a code with its
    /// remaining attempts), keeping its handle and expiry.
    pub async fn ceremony_update(&self, handle: &str, state: &str) -> Result<()> {
        self.db
            .exec(
                "UPDATE mfa_challenges SET state = ? WHERE handle_hash = ?",
                &[state.into(), sha256_hex(handle.as_bytes()).into()],
            )
            .await?;
        Ok(())
    }

    /// Reads a ceremony without taking it.
    pub async fn ceremony_peek(
        &self,
        kind: &str,
        handle: &str,
    ) -> Result<Option<(Option<i64>, String)>> {
        let r = self
            .db
            .row(
                "SELECT user_id, state FROM mfa_challenges WHERE handle_hash = ? AND kind = ? AND expires_at >= ?",
                &[sha256_hex(handle.as_bytes()).into(), kind.into(), now_secs().into()],
            )
            .await?;
        r.map(|r| Ok((r.opt_i64(0)?, r.str(1)?))).transpose()
    }
}
