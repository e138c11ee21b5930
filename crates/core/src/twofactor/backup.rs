//! Backup codes: ten single-use codes, shown once, stored as SHA-256 (16
//! characters from a 32-letter alphabet are 80 bits: no fast hash reverses
//! that). Making a new set voids the old one.

use super::{TwoFactor, sha256_hex};
use crate::{Result, now_secs, secret::Secret};

pub const COUNT: usize = 10;
pub const LEN: usize = 16;
/// No 0/O, 1/I: codes are read off paper.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A code as typed: case, spaces and dashes do not matter.
fn normalise(input: &str) -> String {
    input.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

impl TwoFactor {
    /// Replaces the user's backup codes with a new set, returned once.
    pub async fn backup_generate(&self, user_id: i64) -> Result<Vec<Secret>> {
        let codes: Vec<Secret> = (0..COUNT)
            .map(|_| {
                Secret::new(
                    (0..LEN)
                        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
                        .collect::<String>(),
                )
            })
            .collect();
        let now = now_secs();
        let mut tx = self.db.begin().await?;
        tx.exec("DELETE FROM twofactor_backup WHERE user_id = ?", &[user_id.into()]).await?;
        for c in &codes {
            tx.exec(
                "INSERT INTO twofactor_backup (user_id, code_hash, used, created_at) VALUES (?, ?, 0, ?)",
                &[user_id.into(), sha256_hex(c.expose().as_bytes()).into(), now.into()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(codes)
    }

    /// Uses up a code: true once per code, false for anything else.
    pub async fn backup_use(&self, user_id: i64, input: &str) -> Result<bool> {
        let code = normalise(input);
        if code.len() != LEN {
            return Ok(false);
        }
        let n = self
            .db
            .exec(
                "UPDATE twofactor_backup SET used = 1 WHERE user_id = ? AND code_hash = ? AND used = 0",
                &[user_id.into(), sha256_hex(code.as_bytes()).into()],
            )
            .await?;
        Ok(n == 1)
    }

    /// (codes in the set, codes not used yet).
    pub async fn backup_state(&self, user_id: i64) -> Result<(i64, i64)> {
        let r = self
            .db
            .row(
                "SELECT COUNT(*), COUNT(CASE WHEN used = 0 THEN 1 END) FROM twofactor_backup WHERE user_id = ?",
                &[user_id.into()],
            )
            .await?;
        Ok(match r {
            Some(r) => (r.i64(0)?, r.i64(1)?),
            None => (0, 0),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(super::normalise("abcd-efgh jkln-pqrs"), "ABCDEFGHJKLNPQRS");
    }
}
