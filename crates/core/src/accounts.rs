//! What the provisioning API and the admin command line manage beyond the
//! basics in `users.rs`: searching accounts and groups, account properties,
//! display names and email, group administrators, and login times.

use std::collections::HashMap;

use strongroom_store::Val;

use crate::{
    error::{Error, Result},
    users::{User, Users},
    util::now_secs,
};

/// The name of the group whose members administer the installation.
pub const ADMIN_GROUP: &str = "admin";

/// Properties an account may carry besides its row in `users`.
pub const PROPERTIES: &[&str] = &[
    "language",
    "locale",
    "phone",
    "address",
    "website",
    "twitter",
    "fediverse",
    "organisation",
    "role",
    "headline",
    "biography",
    "profile_enabled",
    "notify_email",
];

/// A group with its display name and member count.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    pub gid: String,
    pub display_name: String,
    pub members: usize,
}

/// Keeps the `offset`/`limit` window of a sorted list.
pub fn page<T>(items: Vec<T>, limit: Option<usize>, offset: usize) -> Vec<T> {
    items.into_iter().skip(offset).take(limit.unwrap_or(usize::MAX)).collect()
}

impl Users {
    /// Accounts whose id, display name or email contains `search` (case-insensitive), by id.
    pub async fn search(&self, search: &str) -> Result<Vec<User>> {
        let needle = search.to_lowercase();
        let all = self.list().await?;
        Ok(all
            .into_iter()
            .filter(|u| {
                needle.is_empty()
                    || u.uid.to_lowercase().contains(&needle)
                    || u.display_name.as_deref().is_some_and(|d| d.to_lowercase().contains(&needle))
                    || u.email.as_deref().is_some_and(|e| e.to_lowercase().contains(&needle))
            })
            .collect())
    }

    /// Bytes of files in the account (trash and versions not included).
    pub async fn used_bytes(&self, user: &User) -> Result<i64> {
        let row =
            self.db.row("SELECT size FROM nodes WHERE id = ?", &[user.root_id.into()]).await?;
        Ok(row.map(|r| r.i64(0)).transpose()?.unwrap_or(0))
    }

    pub async fn is_admin(&self, user_id: i64) -> Result<bool> {
        let row = self
            .db
            .row(
                "SELECT 1 FROM group_members m JOIN user_groups g ON g.id = m.group_id WHERE m.user_id = ? AND g.gid_lower = ?",
                &[user_id.into(), ADMIN_GROUP.into()],
            )
            .await?;
        Ok(row.is_some())
    }

    pub async fn set_display_name(&self, user: &User, name: Option<&str>) -> Result<()> {
        if let Some(n) = name {
            if n.chars().count() > 255 || n.chars().any(char::is_control) {
                return Err(Error::BadRequest(
                    "the display name must be at most 255 characters, without control characters"
                        .into(),
                ));
            }
        }
        self.db
            .exec("UPDATE users SET display_name = ? WHERE id = ?", &[name.into(), user.id.into()])
            .await?;
        Ok(())
    }

    pub async fn set_email(&self, user: &User, email: Option<&str>) -> Result<()> {
        if let Some(e) = email {
            check_email(e)?;
        }
        self.db
            .exec("UPDATE users SET email = ? WHERE id = ?", &[email.into(), user.id.into()])
            .await?;
        Ok(())
    }

    pub async fn props(&self, user_id: i64) -> Result<HashMap<String, String>> {
        let rows = self
            .db
            .rows("SELECT name, value FROM account_props WHERE user_id = ?", &[Val::I64(user_id)])
            .await?;
        rows.iter().map(|r| Ok((r.str(0)?, r.str(1)?))).collect()
    }

    /// Sets an account property; an empty value removes it.
    pub async fn set_prop(&self, user_id: i64, name: &str, value: &str) -> Result<()> {
        if !PROPERTIES.contains(&name) {
            return Err(Error::BadRequest(format!("unknown account property {name:?}")));
        }
        if value.chars().count() > 2000 || value.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::BadRequest(format!("invalid value for {name}")));
        }
        let mut tx = self.db.begin().await?;
        tx.exec(
            "DELETE FROM account_props WHERE user_id = ? AND name = ?",
            &[user_id.into(), name.into()],
        )
        .await?;
        if !value.is_empty() {
            tx.exec(
                "INSERT INTO account_props (user_id, name, value) VALUES (?, ?, ?)",
                &[user_id.into(), name.into(), value.into()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Remembers a successful login (at most once a minute per account).
    pub async fn record_login(&self, user: &User) -> Result<()> {
        let now_ms = now_secs() * 1000;
        if now_ms - user.last_login >= 60_000 {
            let recorded = self
                .db
                .exec(
                    "UPDATE users SET last_login = ? WHERE id = ?",
                    &[now_ms.into(), user.id.into()],
                )
                .await;
            crate::util::unless_full(recorded.map(drop).map_err(Into::into))?;
        }
        Ok(())
    }

    /// Leaves a message for a user about their account.
    pub async fn notify(&self, user_id: i64, subject: &str) -> Result<()> {
        self.db
            .exec(
                "INSERT INTO notifications (user_id, created_at, subject) VALUES (?, ?, ?)",
                &[user_id.into(), now_secs().into(), subject.into()],
            )
            .await?;
        Ok(())
    }

    /// The user's latest messages, newest first: (time, subject).
    pub async fn notifications(&self, user_id: i64, limit: usize) -> Result<Vec<(i64, String)>> {
        let rows = self
            .db
            .rows(
                "SELECT created_at, subject FROM notifications WHERE user_id = ? ORDER BY id DESC",
                &[Val::I64(user_id)],
            )
            .await?;
        rows.iter().take(limit).map(|r| Ok((r.i64(0)?, r.str(1)?))).collect()
    }

    /// Groups whose id or display name contains `search`, with member counts.
    pub async fn group_search(&self, search: &str) -> Result<Vec<GroupInfo>> {
        let needle = search.to_lowercase();
        let rows = self
            .db
            .rows(
                "SELECT g.gid, g.display_name, COUNT(m.user_id) FROM user_groups g LEFT JOIN group_members m ON m.group_id = g.id \
                 GROUP BY g.id, g.gid, g.display_name, g.gid_lower ORDER BY g.gid_lower",
                &[],
            )
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let gid = r.str(0)?;
            let display_name = r.opt_str(1)?.unwrap_or_else(|| gid.clone());
            if needle.is_empty()
                || gid.to_lowercase().contains(&needle)
                || display_name.to_lowercase().contains(&needle)
            {
                out.push(GroupInfo { gid, display_name, members: r.i64(2)? as usize });
            }
        }
        Ok(out)
    }

    pub async fn group_exists(&self, gid: &str) -> Result<bool> {
        match self.group_id(gid).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Member ids of a group.
    pub async fn group_members(&self, gid: &str) -> Result<Vec<String>> {
        let id = self.group_id(gid).await?;
        let rows = self
            .db
            .rows("SELECT u.uid FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.uid_lower", &[id.into()])
            .await?;
        rows.iter().map(|r| r.str(0).map_err(Into::into)).collect()
    }

    pub async fn group_set_display_name(&self, gid: &str, name: &str) -> Result<()> {
        let id = self.group_id(gid).await?;
        if name.trim().is_empty()
            || name.chars().count() > 255
            || name.chars().any(char::is_control)
        {
            return Err(Error::BadRequest("invalid display name".into()));
        }
        self.db
            .exec("UPDATE user_groups SET display_name = ? WHERE id = ?", &[name.into(), id.into()])
            .await?;
        Ok(())
    }

    /// The groups `user_id` administers.
    pub async fn administered_groups(&self, user_id: i64) -> Result<Vec<String>> {
        let rows = self
            .db
            .rows(
                "SELECT g.gid FROM group_admins a JOIN user_groups g ON g.id = a.group_id WHERE a.user_id = ? ORDER BY g.gid_lower",
                &[user_id.into()],
            )
            .await?;
        rows.iter().map(|r| r.str(0).map_err(Into::into)).collect()
    }

    /// The administrators of a group.
    pub async fn group_admins(&self, gid: &str) -> Result<Vec<String>> {
        let id = self.group_id(gid).await?;
        let rows = self
            .db
            .rows("SELECT u.uid FROM group_admins a JOIN users u ON u.id = a.user_id WHERE a.group_id = ? ORDER BY u.uid_lower", &[id.into()])
            .await?;
        rows.iter().map(|r| r.str(0).map_err(Into::into)).collect()
    }

    /// Makes `user` an administrator of `gid` (already one: nothing changes).
    pub async fn add_group_admin(&self, gid: &str, user: &User) -> Result<()> {
        if gid.eq_ignore_ascii_case(ADMIN_GROUP) {
            return Err(Error::Forbidden("the admin group has no group administrators".into()));
        }
        let id = self.group_id(gid).await?;
        let mut tx = self.db.begin().await?;
        let args = [Val::I64(id), Val::I64(user.id)];
        if tx
            .row("SELECT 1 FROM group_admins WHERE group_id = ? AND user_id = ?", &args)
            .await?
            .is_none()
        {
            tx.exec("INSERT INTO group_admins (group_id, user_id) VALUES (?, ?)", &args).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_group_admin(&self, gid: &str, user: &User) -> Result<()> {
        let id = self.group_id(gid).await?;
        let n = self
            .db
            .exec(
                "DELETE FROM group_admins WHERE group_id = ? AND user_id = ?",
                &[id.into(), user.id.into()],
            )
            .await?;
        if n == 0 { Err(Error::NotFound) } else { Ok(()) }
    }
}

/// Parses a size as Nextcloud writes them: bytes, or a number with B, KB, MB,
/// GB or TB (powers of 1024); "none", "unlimited" or "default" for no limit (-1).
pub fn parse_size(s: &str) -> Result<i64> {
    let bad = || Error::BadRequest(format!("{s:?} is not a size"));
    let t = s.trim().to_ascii_lowercase();
    if matches!(t.as_str(), "none" | "unlimited" | "default" | "-1" | "-3") {
        return Ok(-1);
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => return Err(bad()),
    };
    let v = n * mult;
    if !v.is_finite() || v < 0.0 || v > 9.0e18 || v.fract() != 0.0 {
        return Err(bad());
    }
    Ok(v as i64)
}

/// A plausible email address: one `@`, a non-empty local part, a dotted domain,
/// no spaces or control characters, at most 254 characters.
pub fn check_email(e: &str) -> Result<()> {
    let bad = || Err(Error::BadRequest(format!("{e:?} is not a valid email address")));
    if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad();
    }
    let Some((local, domain)) = e.split_once('@') else { return bad() };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
    if local.is_empty() || domain.contains('@') || !domain_ok {
        return bad();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.c", "first.last+tag@example.org", "x@sub.example.co.uk"] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        for bad in ["", "nobody", "a@b", "@b.c", "a@.b.c", "a b@c.d", "a@b@c.d", "a@b..c"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("1 GB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5kb").unwrap(), 1536);
        assert_eq!(parse_size("none").unwrap(), -1);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-5").is_err());
        assert!(parse_size("0.5").is_err());
    }

    #[test]
    fn paging() {
        assert_eq!(page(vec![1, 2, 3, 4], Some(2), 1), vec![2, 3]);
        assert_eq!(page(vec![1, 2], None, 0), vec![1, 2]);
    }
}
