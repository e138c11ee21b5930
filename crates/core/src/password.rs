//! The password policy, applied wherever a password is set (OCS, command
//! line, web): a minimum length, not the user id, not one of the passwords
//! people choose most often. Each refusal says why.

use std::{collections::HashSet, sync::OnceLock};

use crate::{
    error::{Error, Result},
    secret::Secret,
};

pub const MIN_LENGTH: usize = 10;
/// Nextcloud refuses longer passwords; so do we, so hashing stays bounded.
pub const MAX_LENGTH: usize = 469;

fn common() -> &'static HashSet<String> {
    static LIST: OnceLock<HashSet<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../data/common-passwords.txt")
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

/// Why `password` may not be used by `uid`, as a `BadRequest` naming the rule.
pub fn check(uid: &str, password: &Secret) -> Result<()> {
    let pw = password.expose();
    let refuse = |m: &str| Err(Error::BadRequest(m.to_owned()));
    if pw.chars().count() < MIN_LENGTH {
        return refuse("the password must be at least 10 characters long");
    }
    if pw.len() > MAX_LENGTH {
        // Bytes, as Nextcloud counts (PHP's strlen).
        return refuse(
            "the password must be at most 469 bytes long (fewer characters outside ASCII)",
        );
    }
    let lower = pw.to_lowercase();
    if lower == uid.to_lowercase() {
        return refuse("the password must not be the user id");
    }
    if common().contains(&lower) {
        return refuse("the password is among the most common passwords");
    }
    let first = lower.chars().next().unwrap_or(' ');
    if lower.chars().all(|c| c == first) {
        return refuse("the password must not repeat one character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(uid: &str, pw: &str) -> bool {
        check(uid, &Secret::new(pw)).is_ok()
    }

    #[test]
    fn each_rule_refuses_with_its_reason() {
        assert!(!ok("alice", "short"));
        assert!(!ok("alicealice", "AliceAlice"));
        assert!(!ok("bob", "Password123"));
        assert!(!ok("bob", "qwertyuiop"));
        assert!(!ok("bob", "1234567890"));
        assert!(!ok("bob", "zzzzzzzzzzzz"));
        assert!(!ok("bob", &"x".repeat(470)));
        assert!(ok("bob", "correct horse battery"));
        let e = check("bob", &Secret::new("Password123")).unwrap_err().to_string();
        assert!(e.contains("common"), "{e}");
    }
}
