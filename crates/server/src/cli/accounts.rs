//! `strongroom user …` and `strongroom group …`.

use std::path::PathBuf;

use clap::Subcommand;
use strongroom_core::secret::Secret;

use strongroom_core::audit::{Event, Origin};

use crate::app::App;

/// Admin commands are audited like API calls, with the command line as origin.
fn audit(app: &App, action: &str, target: &str) {
    audit_detail(app, action, target, serde_json::Value::Null);
}

pub(super) fn audit_detail(app: &App, action: &str, target: &str, detail: serde_json::Value) {
    let origin = Origin {
        request_id: "cli".into(),
        address: "local".into(),
        user_agent: "strongroom command line".into(),
    };
    let admin = std::env::var("USER").unwrap_or_else(|_| "local administrator".into());
    app.audit.record(&origin, Event::new(action).actor(&admin).target(target).detail(detail));
}

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
    /// Set the display name, the email or another account property
    /// (language, phone, address, website, twitter, organisation, role, …).
    Set { uid: String, key: String, value: String },
    /// Mark every device of the account for remote wipe.
    Wipe { uid: String },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    Add {
        gid: String,
    },
    Delete {
        gid: String,
    },
    List,
    /// Add a user to a group.
    Adduser {
        gid: String,
        uid: String,
    },
    /// Remove a user from a group.
    Removeuser {
        gid: String,
        uid: String,
    },
    /// Let a user administer the members of a group.
    Addadmin {
        gid: String,
        uid: String,
    },
    /// Withdraw a user's administration of a group.
    Removeadmin {
        gid: String,
        uid: String,
    },
    /// Change a group's display name.
    Rename {
        gid: String,
        name: String,
    },
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
            audit(app, "user.created", &uid);
            out!("user {uid} created");
        }
        UserCommand::List => {
            for user in u.list().await.map_err(|e| e.to_string())? {
                let groups = u.groups_of(user.id).await.map_err(|e| e.to_string())?;
                let quota = if user.quota < 0 { "none".to_owned() } else { user.quota.to_string() };
                let state = if user.enabled { "enabled" } else { "disabled" };
                out!(
                    "{}\t{}\t{state}\tquota={quota}\tgroups={}",
                    user.uid,
                    user.display(),
                    groups.join(",")
                );
            }
        }
        UserCommand::Delete { uid, yes } => {
            if !yes && !confirm(&uid)? {
                return Err("not confirmed; nothing was deleted".into());
            }
            u.delete(&uid, &app.files).await.map_err(|e| not_found(e, "user", &uid))?;
            audit(app, "user.deleted", &uid);
            out!("user {uid} deleted");
        }
        UserCommand::Passwd { uid, password_file } => {
            let pw = password(password_file)?;
            u.set_password(&uid, &pw).await.map_err(|e| not_found(e, "user", &uid))?;
            if let Some(user) = u.get(&uid).await.map_err(|e| e.to_string())? {
                u.end_sessions(user.id, None).await.map_err(|e| e.to_string())?;
            }
            audit(app, "password.changed", &uid);
            out!("password of {uid} changed");
        }
        UserCommand::Enable { uid } => {
            u.set_enabled(&uid, true).await.map_err(|e| not_found(e, "user", &uid))?;
            audit(app, "user.enabled", &uid);
            out!("user {uid} enabled");
        }
        UserCommand::Disable { uid } => {
            u.set_enabled(&uid, false).await.map_err(|e| not_found(e, "user", &uid))?;
            if let Some(user) = u.get(&uid).await.map_err(|e| e.to_string())? {
                u.end_sessions(user.id, None).await.map_err(|e| e.to_string())?;
            }
            audit(app, "user.disabled", &uid);
            out!("user {uid} disabled");
        }
        UserCommand::Quota { uid, quota } => {
            u.set_quota(&uid, parse_size(&quota)?).await.map_err(|e| not_found(e, "user", &uid))?;
            audit(app, "user.changed", &uid);
            out!("quota of {uid} set");
        }
        UserCommand::Set { uid, key, value } => {
            let user = u
                .get(&uid)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("no such user: {uid}"))?;
            let v = Some(value.as_str()).filter(|v| !v.is_empty());
            match key.as_str() {
                "displayname" | "display" => u.set_display_name(&user, v).await,
                "email" => u.set_email(&user, v).await,
                k => u.set_prop(user.id, k, &value).await,
            }
            .map_err(|e| e.to_string())?;
            audit(app, "user.changed", &uid);
            out!("{key} of {uid} set");
        }
        UserCommand::Wipe { uid } => {
            let user = u
                .get(&uid)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("no such user: {uid}"))?;
            let n = app.tokens.request_wipe_all(user.id).await.map_err(|e| e.to_string())?;
            audit(app, "wipe.requested", &uid);
            out!("{n} devices of {uid} will be wiped");
        }
    }
    Ok(())
}

pub async fn group(app: &App, cmd: GroupCommand) -> Result<(), String> {
    let u = &app.users;
    match cmd {
        GroupCommand::Add { gid } => {
            u.group_create(&gid).await.map_err(|e| e.to_string())?;
            audit(app, "group.created", &gid);
            out!("group {gid} created");
        }
        GroupCommand::Delete { gid } => {
            u.group_delete(&gid).await.map_err(|e| not_found(e, "group", &gid))?;
            audit(app, "group.deleted", &gid);
            out!("group {gid} deleted");
        }
        GroupCommand::List => {
            for g in u.groups().await.map_err(|e| e.to_string())? {
                out!("{}\t{}", g.gid, g.members.join(","));
            }
        }
        GroupCommand::Adduser { gid, uid } => {
            u.group_add_user(&gid, &uid)
                .await
                .map_err(|e| not_found(e, "group or user", &format!("{gid}/{uid}")))?;
            audit(app, "group.member_added", &uid);
            out!("{uid} added to {gid}");
        }
        GroupCommand::Removeuser { gid, uid } => {
            u.group_remove_user(&gid, &uid)
                .await
                .map_err(|e| not_found(e, "membership", &format!("{gid}/{uid}")))?;
            audit(app, "group.member_removed", &uid);
            out!("{uid} removed from {gid}");
        }
        GroupCommand::Addadmin { gid, uid } => {
            let user = u
                .get(&uid)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("no such user: {uid}"))?;
            u.add_group_admin(&gid, &user).await.map_err(|e| not_found(e, "group", &gid))?;
            audit(app, "group.admin_added", &uid);
            out!("{uid} administers {gid}");
        }
        GroupCommand::Removeadmin { gid, uid } => {
            let user = u
                .get(&uid)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("no such user: {uid}"))?;
            u.remove_group_admin(&gid, &user)
                .await
                .map_err(|e| not_found(e, "group administrator", &format!("{gid}/{uid}")))?;
            audit(app, "group.admin_removed", &uid);
            out!("{uid} no longer administers {gid}");
        }
        GroupCommand::Rename { gid, name } => {
            u.group_set_display_name(&gid, &name).await.map_err(|e| not_found(e, "group", &gid))?;
            audit(app, "group.changed", &gid);
            out!("{gid} renamed");
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

/// Parses a quota as Nextcloud writes them (see `strongroom_core::accounts::parse_size`).
pub fn parse_size(s: &str) -> Result<i64, String> {
    strongroom_core::accounts::parse_size(s).map_err(|e| e.to_string())
}
