//! Proof that a visitor gave a link's password: a cookie value
//! `expiry.mac`, the MAC (HMAC-SHA256) binding the share, the expiry and the
//! share's password hash, under a key kept in `sr_meta` so every node
//! accepts it. Changing or removing the password invalidates every proof.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Share, Shares};
use crate::{Error, Result, now_secs};

const KEY: &str = "link_pass_key";
/// How long a visitor stays let in after giving the password.
pub const PASS_SECS: i64 = 3600;

impl Shares {
    async fn pass_key(&self) -> Result<Vec<u8>> {
        let read = || async {
            let row = self.db.row("SELECT v FROM sr_meta WHERE k = ?", &[KEY.into()]).await?;
            Ok::<_, Error>(row.map(|r| r.str(0)).transpose()?)
        };
        if let Some(v) = read().await? {
            return hex::decode(v).map_err(|e| Error::Internal(format!("bad {KEY}: {e}")));
        }
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        // Two nodes may race here; the unique key keeps one value, which both read back.
        let _ = self
            .db
            .exec("INSERT INTO sr_meta (k, v) VALUES (?, ?)", &[KEY.into(), fresh.into()])
            .await;
        let v = read().await?.ok_or_else(|| Error::Internal(format!("{KEY} missing")))?;
        hex::decode(v).map_err(|e| Error::Internal(format!("bad {KEY}: {e}")))
    }

    fn mac(key: &[u8], share: &Share, expiry: i64) -> Result<Hmac<Sha256>> {
        let mut m =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key size");
        m.update(
            format!("{}|{expiry}|{}", share.id, share.password_hash.as_deref().unwrap_or(""))
                .as_bytes(),
        );
        Ok(m)
    }

    /// A proof that the password of `share` was just given.
    pub async fn issue_pass(&self, share: &Share) -> Result<String> {
        let expiry = now_secs() + PASS_SECS;
        let mac = Self::mac(&self.pass_key().await?, share, expiry)?;
        Ok(format!("{expiry}.{}", hex::encode(mac.finalize().into_bytes())))
    }

    /// Whether `value` proves the password of `share` (as it is now) was given.
    pub async fn check_pass(&self, share: &Share, value: &str) -> Result<bool> {
        let Some((exp, mac)) = value.split_once('.') else { return Ok(false) };
        let (Ok(expiry), Ok(mac)) = (exp.parse::<i64>(), hex::decode(mac)) else {
            return Ok(false);
        };
        if expiry < now_secs() || expiry > now_secs() + PASS_SECS {
            return Ok(false);
        }
        Ok(Self::mac(&self.pass_key().await?, share, expiry)?.verify_slice(&mac).is_ok())
    }
}
