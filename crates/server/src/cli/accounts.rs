//! `strongroom user …` and `strongroom group …`.

use std::path::PathBuf;

use clap::Subcommand;
use strongroom_core::secret::Secret;

use crate::app::App;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account; the password comes from --password-file or standard input.
    Add {
        uid: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Storage quota, e.g. "10 GB", "512MB", "none".
        #[arg(long)]
        quota: Option<String>,
        /// Add the account to the admin group.
        #[arg(long)]
        admin: bool,
    },
    /// List accounts.
    List,
    /// Delete an account with all its files.
    Delete {
        uid: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Set a new password, from --password-file or standard input.
    Passwd {
        uid: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Allow the account to log in again.
    Enable { uid: String },
    /// Refuse every login of the account.
    Disable { uid: String },
    /// Set the storage quota, e.g. "10 GB", "512MB", "none".
    Quota { uid: String, quota: String },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    Add { gid: String },
    Delete { gid: String },
    List,
    /// Add a user to a group.
    Adduser { gid: String, uid: String },
    /// Remove a user from a group.
    Removeuser { gid: String, uid: String },
}

fn password(file: Option<PathBuf>) -> Result<Secret, String> {
    match file {
        Some(f) => super::read_password_file(&f),
        None => super::read_password_stdin(),
    }
}

pub async fn user(app: &App, cmd: UserCommand) -> Result<(), String> {
    let u = &app.users;
    match cmd {
        UserCommand::Add { uid, display_name, password_file, quota, admin } => {
            let quota = quota.map(|q| parse_size(&q)).transpose()?;
            let pw = password(password_file)?;
            u.create(&uid, &pw, display_name.as_deref()).await.map_err(|e| e.to_string())?;
            if let Some(q) = quota {
                u.set_quota(&uid, q).await.map_err(|e| e.to_string())?;
            }
            if admin {
                match u.group_create("admin").await {
                    Ok(()) | Err(strongroom_core::Error::AlreadyExists(_)) => {}
                    Err(e) => return Err(e.to_string()),
                }
                u.group_add_user("admin", &uid).await.map_err(|e| e.to_string())?;
            }
            println!("user {uid} created");
        }
        UserCommand::List => {
            for user in u.list().await.map_err(|e| e.to_string())? {
                let groups = u.groups_of(user.id).await.map_err(|e| e.to_string())?;
                let quota = if user.quota < 0 { "none".to_owned() } else { user.quota.to_string() };
                let state = if user.enabled { "enabled" } else { "disabled" };
                println!("{}\t{}\t{state}\tquota={quota}\tgroups={}", user.uid, user.display(), groups.join(","));
            }
        }
        UserCommand::Delete { uid, yes } => {
            if !yes && !confirm(&uid)? {
                return Err("not confirmed; nothing was deleted".into());
            }
            u.delete(&uid, &app.files).await.map_err(|e| not_found(e, "user", &uid))?;
            println!("user {uid} deleted");
        }
        UserCommand::Passwd { uid, password_file } => {
            let pw = password(password_file)?;
            u.set_password(&uid, &pw).await.map_err(|e| not_found(e, "user", &uid))?;
            println!("password of {uid} changed");
        }
        UserCommand::Enable { uid } => {
            u.set_enabled(&uid, true).await.map_err(|e| not_found(e, "user", &uid))?;
            println!("user {uid} enabled");
        }
        UserCommand::Disable { uid } => {
            u.set_enabled(&uid, false).await.map_err(|e| not_found(e, "user", &uid))?;
            println!("user {uid} disabled");
        }
        UserCommand::Quota { uid, quota } => {
            u.set_quota(&uid, parse_size(&quota)?).await.map_err(|e| not_found(e, "user", &uid))?;
            println!("quota of {uid} set");
        }
    }
    Ok(())
}

pub async fn group(app: &App, cmd: GroupCommand) -> Result<(), String> {
    let u = &app.users;
    match cmd {
        GroupCommand::Add { gid } => {
            u.group_create(&gid).await.map_err(|e| e.to_string())?;
            println!("group {gid} created");
        }
        GroupCommand::Delete { gid } => {
            u.group_delete(&gid).await.map_err(|e| not_found(e, "group", &gid))?;
            println!("group {gid} deleted");
        }
        GroupCommand::List => {
            for g in u.groups().await.map_err(|e| e.to_string())? {
                println!("{}\t{}", g.gid, g.members.join(","));
            }
        }
        GroupCommand::Adduser { gid, uid } => {
            u.group_add_user(&gid, &uid).await.map_err(|e| not_found(e, "group or user", &format!("{gid}/{uid}")))?;
            println!("{uid} added to {gid}");
        }
        GroupCommand::Removeuser { gid, uid } => {
            u.group_remove_user(&gid, &uid).await.map_err(|e| not_found(e, "membership", &format!("{gid}/{uid}")))?;
            println!("{uid} removed from {gid}");
        }
    }
    Ok(())
}

fn not_found(e: strongroom_core::Error, what: &str, name: &str) -> String {
    match e {
        strongroom_core::Error::NotFound => format!("no such {what}: {name}"),
        e => e.to_string(),
    }
}

fn confirm(uid: &str) -> Result<bool, String> {
    eprint!("Type the user id ({uid}) to delete it with all its files: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line.trim() == uid)
}

/// Parses a size as Nextcloud writes them: bytes, or a number with B, KB, MB,
/// GB or TB (powers of 1024); "none" or "unlimited" for no limit (-1).
pub fn parse_size(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "none" || t == "unlimited" || t == "default" {
        return Ok(-1);
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => return Err(format!("{s:?} is not a size")),
    };
    let v = n * mult;
    if !v.is_finite() || v < 0.0 || v > 9.0e18 || v.fract() != 0.0 {
        return Err(format!("{s:?} is not a size"));
    }
    Ok(v as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

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
}
