//! TOTP (RFC 6238 over RFC 4226): HMAC-SHA-1, 30-second steps, 6 digits,
//! as every authenticator app does by default.
//!
//! Written here on the hmac and sha1 crates the tree already has (totp-rs
//! would bring a second generation of both); the tests pin the RFC's test
//! vectors, and the integration tests take their codes from `oathtool`.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

pub const STEP_SECS: i64 = 30;
pub const DIGITS: usize = 6;
/// Steps accepted on either side of now, for clocks that drift.
pub const SKEW_STEPS: i64 = 1;
/// 160-bit secrets, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The code for one time step.
pub fn code_at(key: &[u8], step: u64) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key size");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[offset] & 0x7f, h[offset + 1], h[offset + 2], h[offset + 3]]);
    format!("{:0width$}", bin % 10u32.pow(DIGITS as u32), width = DIGITS)
}

pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// A code as typed: digits only once spaces are removed, exactly six.
pub fn normalise(input: &str) -> Option<String> {
    let s: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    (s.len() == DIGITS && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// The step within the window around `now_step` whose code is `code`, if
/// any, considering only steps after `after` (the last accepted one).
pub fn matching_step(key: &[u8], code: &str, now_step: i64, after: i64) -> Option<i64> {
    let mut found = None;
    // Every candidate is computed, so the time taken does not tell which matched.
    for step in (now_step - SKEW_STEPS)..=(now_step + SKEW_STEPS) {
        if step < 0 {
            continue;
        }
        let same: bool = code_at(key, step as u64).as_bytes().ct_eq(code.as_bytes()).into();
        if same && step > after && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            out.push(BASE32[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = BASE32.iter().position(|&a| a == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// The URI as a QR code, an SVG drawn here (no outside service sees the secret).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 rows (8 digits there; the last six are ours).
    #[test]
    fn rfc6238_vectors() {
        let key = b"12345678901234567890";
        for (t, want) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(key, step_of(t) as u64), want[2..], "time {t}");
        }
    }

    #[test]
    fn base32_round_trip_and_rfc4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("MZXW6YTBOI").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert!(base32_decode("MZ1W").is_none());
        let key: Vec<u8> = (0..20).collect();
        assert_eq!(base32_decode(&base32_encode(&key)).unwrap(), key);
    }

    #[test]
    fn window_and_replay() {
        let key = b"12345678901234567890";
        let now = 1000;
        let code = code_at(key, 1001);
        assert_eq!(matching_step(key, &code, now, -1), Some(1001));
        assert_eq!(matching_step(key, &code, now, 1001), None, "the same step twice");
        assert_eq!(matching_step(key, &code_at(key, 1002), now, -1), None, "two steps ahead");
        assert_eq!(matching_step(key, &code_at(key, 998), now, -1), None, "two steps behind");
        assert_eq!(normalise(" 123 456 "), Some("123456".into()));
        assert_eq!(normalise("12345a"), None);
        assert_eq!(normalise("1234567"), None);
    }

    #[test]
    fn qr_renders() {
        let svg = qr_svg(&otpauth_uri("Strongroom", "alice", "JBSWY3DPEHPK3PXP")).unwrap();
        assert!(svg.starts_with("<?xml") || svg.contains("<svg"));
    }
}

/// Enrolment and verification, stored in `twofactor_totp`.
pub mod store {
    use super::*;
    use crate::{Error, Result, now_secs, secret::Secret, twofactor::TwoFactor};

    /// What a started enrolment shows the user.
    pub struct Enrolment {
        pub secret: Secret,
        pub uri: String,
        pub qr_svg: String,
    }

    impl TwoFactor {
        /// Makes a new secret, not yet active. Refused while TOTP is enabled
        /// (disable it first, so a stolen session cannot swap the secret).
        pub async fn totp_begin(&self, user_id: i64, account: &str) -> Result<Enrolment> {
            let key: [u8; SECRET_BYTES] = rand::random();
            let b32 = base32_encode(&key);
            let mut tx = self.db.begin().await?;
            let row = tx
                .row("SELECT enabled FROM twofactor_totp WHERE user_id = ?", &[user_id.into()])
                .await?;
            if row.map(|r| r.i64(0)).transpose()? == Some(1) {
                return Err(Error::Conflict("TOTP is already enabled; disable it first".into()));
            }
            tx.exec("DELETE FROM twofactor_totp WHERE user_id = ?", &[user_id.into()]).await?;
            tx.exec(
                "INSERT INTO twofactor_totp (user_id, secret, enabled, last_step, created_at) VALUES (?, ?, 0, -1, ?)",
                &[user_id.into(), b32.clone().into(), now_secs().into()],
            )
            .await?;
            tx.commit().await?;
            let uri = otpauth_uri("Strongroom", account, &b32);
            let qr_svg = qr_svg(&uri).unwrap_or_default();
            Ok(Enrolment { secret: Secret::new(b32), uri, qr_svg })
        }

        /// Activates a pending enrolment if `code` is right. The step used
        /// counts as spent, like any later one.
        pub async fn totp_confirm(&self, user_id: i64, code: &str) -> Result<bool> {
            self.totp_check(user_id, code, 0).await
        }

        /// A login's TOTP challenge: right code, never accepted before.
        pub async fn totp_verify(&self, user_id: i64, code: &str) -> Result<bool> {
            self.totp_check(user_id, code, 1).await
        }

        async fn totp_check(&self, user_id: i64, code: &str, enabled: i64) -> Result<bool> {
            let Some(code) = normalise(code) else { return Ok(false) };
            let Some(r) = self
                .db
                .row(
                    "SELECT secret, last_step FROM twofactor_totp WHERE user_id = ? AND enabled = ?",
                    &[user_id.into(), enabled.into()],
                )
                .await?
            else {
                return Ok(false);
            };
            let Some(key) = base32_decode(&r.str(0)?) else { return Ok(false) };
            let last = r.i64(1)?;
            let Some(step) = matching_step(&key, &code, step_of(now_secs()), last) else {
                return Ok(false);
            };
            // Spending the step is one conditional update, so two nodes given
            // the same code at once cannot both accept it.
            let n = self
                .db
                .exec(
                    "UPDATE twofactor_totp SET last_step = ?, enabled = 1 WHERE user_id = ? AND enabled = ? AND last_step < ?",
                    &[step.into(), user_id.into(), enabled.into(), step.into()],
                )
                .await?;
            Ok(n == 1)
        }

        pub async fn totp_disable(&self, user_id: i64) -> Result<bool> {
            let n = self
                .db
                .exec("DELETE FROM twofactor_totp WHERE user_id = ?", &[user_id.into()])
                .await?;
            Ok(n > 0)
        }
    }
}
