//! Second factors: TOTP, backup codes, WebAuthn keys and passkeys, one-time
//! codes by email or SMS; the enforcement policy; ceremonies in progress.
//!
//! A user "has a second factor" when TOTP, a WebAuthn key, or a confirmed
//! email or SMS contact is set up. Backup codes alone do not count (they
//! exist to replace a lost factor). Whoever has a second factor, or falls
//! under the enforcement policy, must pass one after the password in the
//! browser, and may not use the account password over HTTP Basic at all:
//! clients get app passwords through Login Flow v2, whose browser step
//! includes the challenge.

pub mod backup;
pub mod ceremony;
pub mod contacts;
pub mod policy;
pub mod totp;
pub mod webauthn;

use strongroom_store::Db;

use crate::{Result, Users};
pub use policy::Policy;

/// The factors a user has set up.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Factors {
    pub totp: bool,
    /// Pending TOTP enrolment (secret made, no code confirmed yet).
    pub totp_pending: bool,
    pub webauthn_keys: i64,
    pub passkeys: i64,
    pub email: bool,
    pub sms: bool,
    pub backup_total: i64,
    pub backup_remaining: i64,
}

impl Factors {
    /// Whether any real second factor is set up (backup codes do not count).
    pub fn any(&self) -> bool {
        self.totp || self.webauthn_keys > 0 || self.email || self.sms
    }

    /// The ids of the challenges this user can answer, in the order offered.
    pub fn providers(&self) -> Vec<&'static str> {
        let mut p = Vec::new();
        if self.webauthn_keys > 0 {
            p.push("webauthn");
        }
        if self.totp {
            p.push("totp");
        }
        if self.email {
            p.push("email");
        }
        if self.sms {
            p.push("sms");
        }
        if self.any() && self.backup_remaining > 0 {
            p.push("backup_codes");
        }
        p
    }
}

/// The tables holding a user's second factors (deleted with the account or
/// by an admin's reset).
pub const USER_TABLES: &[&str] = &[
    "twofactor_totp",
    "twofactor_backup",
    "webauthn_keys",
    "twofactor_contacts",
    "mfa_challenges",
];

/// Every provider the server offers, for the capabilities and admins.
pub const PROVIDERS: &[&str] = &["totp", "backup_codes", "webauthn", "email", "sms"];

#[derive(Clone)]
pub struct TwoFactor {
    pub(crate) db: Db,
    pub(crate) users: Users,
}

impl TwoFactor {
    pub fn new(db: Db, users: Users) -> TwoFactor {
        TwoFactor { db, users }
    }

    pub async fn factors(&self, user_id: i64) -> Result<Factors> {
        let mut f = Factors::default();
        if let Some(r) = self
            .db
            .row("SELECT enabled FROM twofactor_totp WHERE user_id = ?", &[user_id.into()])
            .await?
        {
            f.totp = r.i64(0)? != 0;
            f.totp_pending = !f.totp;
        }
        let r = self
            .db
            .row(
                "SELECT COUNT(*), COUNT(CASE WHEN passwordless = 1 THEN 1 END) FROM webauthn_keys WHERE user_id = ?",
                &[user_id.into()],
            )
            .await?;
        if let Some(r) = r {
            f.webauthn_keys = r.i64(0)?;
            f.passkeys = r.i64(1)?;
        }
        for r in self
            .db
            .rows(
                "SELECT kind FROM twofactor_contacts WHERE user_id = ? AND enabled = 1",
                &[user_id.into()],
            )
            .await?
        {
            match r.str(0)?.as_str() {
                "email" => f.email = true,
                "sms" => f.sms = true,
                _ => {}
            }
        }
        (f.backup_total, f.backup_remaining) = self.backup_state(user_id).await?;
        Ok(f)
    }

    /// Whether a login of this user must pass a second factor: one is set
    /// up, or the policy enforces them for the user's groups. The same facts
    /// as `factors(..).any()`, in one query: this runs on every request that
    /// authenticates with the account password over Basic.
    pub async fn required(&self, user_id: i64) -> Result<bool> {
        let row = self
            .db
            .row(
                "SELECT (SELECT COUNT(*) FROM twofactor_totp WHERE user_id = ? AND enabled = 1) \
                 + (SELECT COUNT(*) FROM webauthn_keys WHERE user_id = ?) \
                 + (SELECT COUNT(*) FROM twofactor_contacts WHERE user_id = ? AND enabled = 1)",
                &[user_id.into(), user_id.into(), user_id.into()],
            )
            .await?;
        if row.map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0 {
            return Ok(true);
        }
        self.enforced_for(user_id).await
    }

    /// Whether the policy requires a second factor of this user.
    pub async fn enforced_for(&self, user_id: i64) -> Result<bool> {
        let policy = self.policy().await?;
        if !policy.enforced {
            return Ok(false);
        }
        let groups = self.users.groups_of(user_id).await?;
        Ok(policy.applies_to(&groups))
    }

    /// Removes every factor of a user (an admin's reset): TOTP, keys,
    /// contacts, backup codes and ceremonies in progress.
    pub async fn reset(&self, user_id: i64) -> Result<()> {
        let mut tx = self.db.begin().await?;
        for table in USER_TABLES {
            tx.exec(&format!("DELETE FROM {table} WHERE user_id = ?"), &[user_id.into()]).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

pub(crate) fn sha256_hex(s: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s))
}
