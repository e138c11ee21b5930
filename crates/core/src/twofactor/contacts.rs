//! One-time codes sent by email or SMS. A contact (address or phone number)
//! is enabled only after a code sent to it was entered, so a typo cannot
//! lock the user out. Sending is the server's job; this keeps the codes:
//! six random digits, stored hashed in a ceremony bound to the user, at
//! most five wrong tries, valid ten minutes, good once.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{TwoFactor, sha256_hex};
use crate::{Error, Result, secret::Secret};

pub const CODE_TTL_SECS: i64 = 600;
const MAX_TRIES: u32 = 5;

#[derive(Serialize, Deserialize)]
struct CodeState {
    code_hash: String,
    tries: u32,
    /// The contact the code was sent to, enabled when the code is entered.
    address: String,
}

/// Checks an email address or phone number enough to send to it.
pub fn check_address(kind: &str, address: &str) -> Result<()> {
    let ok = match kind {
        "email" => {
            address.len() <= 254
                && address.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                && !address
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        }
        "sms" => {
            let digits = address.strip_prefix('+').unwrap_or(address);
            (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "not a valid {} address",
            if kind == "sms" { "phone" } else { "email" }
        )))
    }
}

impl TwoFactor {
    /// The contact of `kind` ("email" or "sms"): (address, enabled).
    pub async fn contact(&self, user_id: i64, kind: &str) -> Result<Option<(String, bool)>> {
        let r = self
            .db
            .row(
                "SELECT address, enabled FROM twofactor_contacts WHERE user_id = ? AND kind = ?",
                &[user_id.into(), kind.into()],
            )
            .await?;
        r.map(|r| Ok((r.str(0)?, r.i64(1)? != 0))).transpose()
    }

    pub async fn contact_remove(&self, user_id: i64, kind: &str) -> Result<bool> {
        let n = self
            .db
            .exec(
                "DELETE FROM twofactor_contacts WHERE user_id = ? AND kind = ?",
                &[user_id.into(), kind.into()],
            )
            .await?;
        Ok(n > 0)
    }

    /// A new code for `kind`, to be sent to `address`: (handle, code).
    pub async fn code_issue(
        &self,
        user_id: i64,
        kind: &str,
        address: &str,
    ) -> Result<(Secret, Secret)> {
        check_address(kind, address)?;
        let code = Secret::new(format!("{:06}", rand::random_range(0..1_000_000u32)));
        let state = CodeState {
            code_hash: sha256_hex(code.expose().as_bytes()),
            tries: 0,
            address: address.to_owned(),
        };
        let state = serde_json::to_string(&state).map_err(|e| Error::Internal(e.to_string()))?;
        let handle = self
            .ceremony_put(&format!("code-{kind}"), Some(user_id), &state, CODE_TTL_SECS)
            .await?;
        Ok((handle, code))
    }

    /// Checks a code entered for the ceremony `handle`. Right: the ceremony
    /// ends and the contact it was sent to is stored and enabled. Wrong: one
    /// try fewer; the fifth wrong try ends the ceremony.
    pub async fn code_check(
        &self,
        user_id: i64,
        kind: &str,
        handle: &str,
        input: &str,
    ) -> Result<bool> {
        let ceremony = format!("code-{kind}");
        let Some((owner, state)) = self.ceremony_peek(&ceremony, handle).await? else {
            return Ok(false);
        };
        if owner != Some(user_id) {
            return Ok(false);
        }
        let Ok(mut state) = serde_json::from_str::<CodeState>(&state) else { return Ok(false) };
        let typed: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        let right: bool =
            sha256_hex(typed.as_bytes()).as_bytes().ct_eq(state.code_hash.as_bytes()).into();
        if !right {
            state.tries += 1;
            if state.tries >= MAX_TRIES {
                self.ceremony_take(&ceremony, handle).await?;
            } else {
                let s =
                    serde_json::to_string(&state).map_err(|e| Error::Internal(e.to_string()))?;
                self.ceremony_update(handle, &s).await?;
            }
            return Ok(false);
        }
        // Taking it is what makes the code good once.
        if self.ceremony_take(&ceremony, handle).await?.is_none() {
            return Ok(false);
        }
        let mut tx = self.db.begin().await?;
        tx.exec(
            "DELETE FROM twofactor_contacts WHERE user_id = ? AND kind = ?",
            &[user_id.into(), kind.into()],
        )
        .await?;
        tx.exec(
            "INSERT INTO twofactor_contacts (user_id, kind, address, enabled) VALUES (?, ?, ?, 1)",
            &[user_id.into(), kind.into(), state.address.into()],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
