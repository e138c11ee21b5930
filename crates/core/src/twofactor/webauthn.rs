//! WebAuthn keys through webauthn-rs: registered as passkeys (user
//! verification required, so a PIN or biometric guards even a second-factor
//! key), usable as a second factor after the password, and, when registered
//! as discoverable ("passwordless"), for login without a password.
//!
//! Ceremony state stays on the server (`mfa_challenges`), bound to the user
//! and the session that started it, valid two minutes, taken once. The
//! signature counter is checked by webauthn-rs against the stored credential
//! and again here when the row is updated: a counter that does not grow
//! means a cloned authenticator and is refused.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnError,
};

use super::{TwoFactor, sha256_hex};
use crate::{Error, Result, User, now_secs, secret::Secret};

const TTL_SECS: i64 = 120;

/// A registered key, for listing.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: i64,
    pub name: String,
    pub passwordless: bool,
    pub created_at: i64,
    pub last_used: i64,
}

/// Why an assertion was refused (all are refusals; the kind goes to the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No such ceremony (expired, answered already, another session's).
    Challenge,
    /// The signature counter did not grow: a cloned authenticator.
    Cloned,
    /// The authenticator did not verify the user (PIN, biometric).
    NotVerified,
    /// Made for another origin or relying party.
    Origin,
    /// Unknown credential, wrong user, bad signature, origin or RP id.
    Invalid,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Challenge => "unknown or expired challenge",
            Refused::Cloned => "signature counter went backwards (cloned authenticator)",
            Refused::NotVerified => "user verification required but not performed",
            Refused::Origin => "made for another origin or relying party",
            Refused::Invalid => "invalid assertion",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RegState {
    session: i64,
    passwordless: bool,
    handle: Uuid,
    reg: PasskeyRegistration,
}

#[derive(Serialize, Deserialize)]
struct AuthState {
    session: i64,
    auth: PasskeyAuthentication,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(internal)
}

impl TwoFactor {
    /// The user handle of this user's keys (a random UUID made with the first).
    async fn user_handle(&self, user_id: i64) -> Result<Uuid> {
        let r = self
            .db
            .row("SELECT user_handle FROM webauthn_keys WHERE user_id = ?", &[user_id.into()])
            .await?;
        Ok(match r.map(|r| r.str(0)).transpose()?.and_then(|s| Uuid::parse_str(&s).ok()) {
            Some(u) => u,
            None => Uuid::from_bytes(rand::random()),
        })
    }

    async fn passkeys(&self, user_id: i64) -> Result<Vec<(i64, Passkey)>> {
        let rows = self
            .db
            .rows("SELECT id, passkey FROM webauthn_keys WHERE user_id = ?", &[user_id.into()])
            .await?;
        let mut out = Vec::new();
        for r in rows {
            if let Ok(pk) = serde_json::from_str::<Passkey>(&r.str(1)?) {
                out.push((r.i64(0)?, pk));
            }
        }
        Ok(out)
    }

    pub async fn webauthn_keys(&self, user_id: i64) -> Result<Vec<KeyInfo>> {
        let rows = self
            .db
            .rows(
                "SELECT id, name, passwordless, created_at, last_used FROM webauthn_keys WHERE user_id = ? ORDER BY id",
                &[user_id.into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyInfo {
                    id: r.i64(0)?,
                    name: r.str(1)?,
                    passwordless: r.i64(2)? != 0,
                    created_at: r.i64(3)?,
                    last_used: r.i64(4)?,
                })
            })
            .collect()
    }

    pub async fn webauthn_remove(&self, user_id: i64, key_id: i64) -> Result<bool> {
        let n = self
            .db
            .exec(
                "DELETE FROM webauthn_keys WHERE id = ? AND user_id = ?",
                &[key_id.into(), user_id.into()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Starts registering a key: (options for `navigator.credentials.create`, handle).
    pub async fn webauthn_register_start(
        &self,
        w: &Webauthn,
        user: &User,
        session_id: i64,
        passwordless: bool,
    ) -> Result<(Value, Secret)> {
        let handle = self.user_handle(user.id).await?;
        let exclude: Vec<_> =
            self.passkeys(user.id).await?.into_iter().map(|(_, p)| p.cred_id().clone()).collect();
        let (options, reg) = w
            .start_passkey_registration(handle, &user.uid, user.display(), Some(exclude))
            .map_err(internal)?;
        let mut options = serde_json::to_value(&options).map_err(internal)?;
        // A passwordless key must live on the authenticator (discoverable),
        // or the browser could not offer it before the user is known.
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
            sel["residentKey"] = Value::from(if passwordless { "required" } else { "discouraged" });
            sel["requireResidentKey"] = Value::from(passwordless);
        }
        let state = json(&RegState { session: session_id, passwordless, handle, reg })?;
        let h = self.ceremony_put("webauthn-register", Some(user.id), &state, TTL_SECS).await?;
        Ok((options, h))
    }

    /// Finishes a registration; the key is stored under `name`.
    pub async fn webauthn_register_finish(
        &self,
        w: &Webauthn,
        user: &User,
        session_id: i64,
        handle: &str,
        name: &str,
        credential: &Value,
    ) -> Result<KeyInfo> {
        let bad = |m: &str| Error::BadRequest(m.to_owned());
        let Some((Some(owner), state)) = self.ceremony_take("webauthn-register", handle).await?
        else {
            return Err(bad("unknown or expired registration"));
        };
        let state: RegState = serde_json::from_str(&state).map_err(internal)?;
        if owner != user.id || state.session != session_id {
            return Err(bad("unknown or expired registration"));
        }
        let cred: RegisterPublicKeyCredential =
            serde_json::from_value(credential.clone()).map_err(|_| bad("malformed credential"))?;
        let passkey = w
            .finish_passkey_registration(&cred, &state.reg)
            .map_err(|e| bad(&format!("registration refused: {e}")))?;
        let name: String = name.chars().filter(|c| !c.is_control()).take(120).collect();
        let name = if name.trim().is_empty() { "Security key".to_owned() } else { name };
        let now = now_secs();
        let id = {
            let mut tx = self.db.begin().await?;
            let id = tx
                .insert(
                    "INSERT INTO webauthn_keys (user_id, user_handle, name, cred_hash, passkey, counter, passwordless, created_at, last_used) \
                     VALUES (?, ?, ?, ?, ?, 0, ?, ?, 0)",
                    &[
                        user.id.into(),
                        state.handle.to_string().into(),
                        name.clone().into(),
                        sha256_hex(passkey.cred_id().as_ref()).into(),
                        json(&passkey)?.into(),
                        i64::from(state.passwordless).into(),
                        now.into(),
                    ],
                )
                .await
                .map_err(|e| match e {
                    strongroom_store::DbError::Conflict => bad("this key is already registered"),
                    e => e.into(),
                })?;
            tx.commit().await?;
            id
        };
        Ok(KeyInfo { id, name, passwordless: state.passwordless, created_at: now, last_used: 0 })
    }

    /// Starts a second-factor assertion over all of the user's keys.
    pub async fn webauthn_auth_start(
        &self,
        w: &Webauthn,
        user_id: i64,
        session_id: i64,
    ) -> Result<(Value, Secret)> {
        let keys: Vec<Passkey> =
            self.passkeys(user_id).await?.into_iter().map(|(_, p)| p).collect();
        if keys.is_empty() {
            return Err(Error::NotFound);
        }
        let (options, auth) = w.start_passkey_authentication(&keys).map_err(internal)?;
        let options = serde_json::to_value(&options).map_err(internal)?;
        let state = json(&AuthState { session: session_id, auth })?;
        let h = self.ceremony_put("webauthn-2fa", Some(user_id), &state, TTL_SECS).await?;
        Ok((options, h))
    }

    /// Checks a second-factor assertion. Ok(Err(_)) is a refusal.
    pub async fn webauthn_auth_finish(
        &self,
        w: &Webauthn,
        user_id: i64,
        session_id: i64,
        handle: &str,
        credential: &Value,
    ) -> Result<std::result::Result<i64, Refused>> {
        let Some((Some(owner), state)) = self.ceremony_take("webauthn-2fa", handle).await? else {
            return Ok(Err(Refused::Challenge));
        };
        let Ok(state) = serde_json::from_str::<AuthState>(&state) else {
            return Ok(Err(Refused::Challenge));
        };
        if owner != user_id || state.session != session_id {
            return Ok(Err(Refused::Challenge));
        }
        let Ok(cred) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else {
            return Ok(Err(Refused::Invalid));
        };
        let result = match w.finish_passkey_authentication(&cred, &state.auth) {
            Ok(r) => r,
            Err(e) => return Ok(Err(refusal(&e))),
        };
        self.record_use(user_id, result.cred_id().as_ref(), &result).await
    }

    /// Starts a passwordless login: the browser offers any discoverable key.
    pub async fn passkey_start(&self, w: &Webauthn) -> Result<(Value, Secret)> {
        let (options, auth) = w.start_discoverable_authentication().map_err(internal)?;
        let mut options = serde_json::to_value(&options).map_err(internal)?;
        // webauthn-rs asks for conditional mediation (autofill); the login
        // page offers a button instead, which needs the ordinary modal call.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        let h = self.ceremony_put("passkey", None, &json(&auth)?, TTL_SECS).await?;
        Ok((options, h))
    }

    /// Finishes a passwordless login: the user whose passwordless key signed.
    pub async fn passkey_finish(
        &self,
        w: &Webauthn,
        handle: &str,
        credential: &Value,
    ) -> Result<std::result::Result<i64, Refused>> {
        let Some((_, state)) = self.ceremony_take("passkey", handle).await? else {
            return Ok(Err(Refused::Challenge));
        };
        let Ok(state) = serde_json::from_str::<DiscoverableAuthentication>(&state) else {
            return Ok(Err(Refused::Challenge));
        };
        let Ok(cred) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else {
            return Ok(Err(Refused::Invalid));
        };
        let Ok((user_handle, cred_id)) = w.identify_discoverable_authentication(&cred) else {
            return Ok(Err(Refused::Invalid));
        };
        let Some(r) = self
            .db
            .row(
                "SELECT user_id, user_handle, passkey FROM webauthn_keys WHERE cred_hash = ? AND passwordless = 1",
                &[sha256_hex(cred_id).into()],
            )
            .await?
        else {
            return Ok(Err(Refused::Invalid));
        };
        let user_id = r.i64(0)?;
        if r.str(1)? != user_handle.to_string() {
            return Ok(Err(Refused::Invalid));
        }
        let Ok(passkey) = serde_json::from_str::<Passkey>(&r.str(2)?) else {
            return Ok(Err(Refused::Invalid));
        };
        let result = match w.finish_discoverable_authentication_v2(&cred, state, &passkey) {
            Ok(r) => r,
            Err(e) => return Ok(Err(refusal(&e))),
        };
        self.record_use(user_id, result.cred_id().as_ref(), &result).await
    }

    /// Stores the new counter of the key that signed, refusing a counter
    /// that did not grow past the stored one (checked again in the UPDATE,
    /// so two nodes cannot both accept the same counter).
    async fn record_use(
        &self,
        user_id: i64,
        cred_id: &[u8],
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<std::result::Result<i64, Refused>> {
        let hash = sha256_hex(cred_id);
        let Some(r) = self
            .db
            .row(
                "SELECT id, passkey, counter FROM webauthn_keys WHERE cred_hash = ? AND user_id = ?",
                &[hash.into(), user_id.into()],
            )
            .await?
        else {
            return Ok(Err(Refused::Invalid));
        };
        let (key_id, stored) = (r.i64(0)?, r.i64(2)?);
        let Ok(mut passkey) = serde_json::from_str::<Passkey>(&r.str(1)?) else {
            return Ok(Err(Refused::Invalid));
        };
        let counter = i64::from(result.counter());
        if (counter > 0 || stored > 0) && counter <= stored {
            return Ok(Err(Refused::Cloned));
        }
        passkey.update_credential(result);
        let n = self
            .db
            .exec(
                "UPDATE webauthn_keys SET passkey = ?, counter = ?, last_used = ? WHERE id = ? AND counter = ?",
                &[json(&passkey)?.into(), counter.into(), now_secs().into(), key_id.into(), stored.into()],
            )
            .await?;
        if n != 1 {
            return Ok(Err(Refused::Cloned));
        }
        Ok(Ok(user_id))
    }
}

fn refusal(e: &WebauthnError) -> Refused {
    match e {
        WebauthnError::CredentialPossibleCompromise => Refused::Cloned,
        WebauthnError::UserNotVerified => Refused::NotVerified,
        WebauthnError::InvalidRPOrigin | WebauthnError::InvalidRPIDHash => Refused::Origin,
        _ => Refused::Invalid,
    }
}
