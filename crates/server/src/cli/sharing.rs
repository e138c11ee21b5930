//! `strongroom share list|delete` and `strongroom sharing policy`: the
//! shares that exist, removing one (with the reshares made through it), and
//! the admin's sharing policy. Every change is written to the audit log.

use clap::Subcommand;
use serde_json::Value;
use strongroom_core::sharing::{GROUP, LINK, Policy, Share, Shares, USER};

use crate::app::App;

#[derive(Subcommand)]
pub enum ShareCommand {
    /// List shares, all or those a user made or owns.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a share by id, with the reshares made through it.
    Delete { id: i64 },
}

#[derive(Subcommand)]
pub enum SharingCommand {
    /// Show the sharing policy, or change it with --set KEY=VALUE (repeatable;
    /// lists are comma-separated). A stricter policy also applies to shares
    /// that already exist.
    Policy {
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

pub async fn share(app: &App, cmd: ShareCommand) -> Result<(), String> {
    let text = |e: strongroom_core::Error| e.to_string();
    match cmd {
        ShareCommand::List { user } => {
            let of = match user {
                Some(uid) => Some(
                    app.users
                        .get(&uid)
                        .await
                        .map_err(text)?
                        .ok_or(format!("no such user: {uid}"))?
                        .id,
                ),
                None => None,
            };
            let policy = app.shares.policy().await.map_err(text)?;
            out!(
                "id\ttype\towner\tsharer\tnode\twith\tpermissions\texpires\tpassword\thide_download\tactive"
            );
            for s in app.shares.all(of).await.map_err(text)? {
                let active = app.shares.usable(&s, &policy).await.map_err(text)?;
                out!("{}", row(app, &s, active).await.map_err(text)?);
            }
        }
        ShareCommand::Delete { id } => {
            app.shares.get(id).await.map_err(text)?.ok_or(format!("no such share: {id}"))?;
            for gone in app.shares.delete(id).await.map_err(text)? {
                let detail =
                    serde_json::json!({ "share_type": gone.share_type, "node": gone.node_id });
                super::accounts::audit_detail(app, "share.deleted", &gone.id.to_string(), detail);
                out!("share {} deleted", gone.id);
            }
        }
    }
    Ok(())
}

async fn row(app: &App, s: &Share, active: bool) -> strongroom_core::Result<String> {
    let uid = |id: i64| async move {
        Ok::<_, strongroom_core::Error>(
            app.users.get_by_id(id).await?.map(|u| u.uid).unwrap_or_else(|| format!("#{id}")),
        )
    };
    let (kind, with) = match s.share_type {
        USER => ("user", uid(s.recipient_user.unwrap_or(0)).await?),
        GROUP => ("group", app.shares.group_name(s.recipient_group.unwrap_or(0)).await?),
        // Enough of the token to tell links apart, not enough to use one.
        LINK => (
            "link",
            s.token.as_deref().map(|t| format!("{}…", &t[..t.len().min(5)])).unwrap_or_default(),
        ),
        _ => ("other", String::new()),
    };
    Ok(format!(
        "{}\t{kind}\t{}\t{}\t{}\t{with}\t{}\t{}\t{}\t{}\t{}",
        s.id,
        uid(s.owner_id).await?,
        uid(s.sharer_id).await?,
        s.node_id,
        s.permissions,
        Shares::expiration_text(s).map(|d| d[..10].to_owned()).unwrap_or_else(|| "-".into()),
        if s.password_hash.is_some() { "yes" } else { "no" },
        if s.hide_download { "yes" } else { "no" },
        if active { "yes" } else { "no" },
    ))
}

pub async fn sharing(app: &App, cmd: SharingCommand) -> Result<(), String> {
    let text = |e: strongroom_core::Error| e.to_string();
    let SharingCommand::Policy { set } = cmd;
    let mut policy = app.shares.policy().await.map_err(text)?;
    if !set.is_empty() {
        policy = apply(&policy, &set)?;
        app.shares.set_policy(&policy).await.map_err(text)?;
        super::accounts::audit_detail(app, "sharing.policy", "", serde_json::json!(policy));
    }
    out!("{}", serde_json::to_string_pretty(&policy).map_err(|e| e.to_string())?);
    Ok(())
}

/// The policy with `KEY=VALUE` settings applied, each value read as the
/// key's type (true/false, a number, a comma-separated list, or text).
fn apply(policy: &Policy, set: &[String]) -> Result<Policy, String> {
    let mut v = serde_json::to_value(policy).map_err(|e| e.to_string())?;
    for s in set {
        let (key, raw) = s.split_once('=').ok_or(format!("{s:?}: expected KEY=VALUE"))?;
        let slot = v.get_mut(key).ok_or(format!("unknown policy key {key:?}"))?;
        *slot = match slot {
            Value::Bool(_) => Value::Bool(match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => true,
                "false" | "no" | "off" | "0" => false,
                _ => return Err(format!("{key} takes true or false")),
            }),
            Value::Number(_) => {
                Value::from(raw.parse::<u64>().map_err(|_| format!("{key} takes a number"))?)
            }
            Value::Array(_) => Value::from(
                raw.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
            _ => Value::String(raw.to_owned()),
        };
    }
    serde_json::from_value(v).map_err(|e| format!("invalid policy: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_the_type_of_their_key() {
        let p = apply(
            &Policy::default(),
            &[
                "allow_links=false".into(),
                "link_expire_days=3".into(),
                "exclude_groups=a, b".into(),
                "exclude_mode=allow".into(),
            ],
        )
        .unwrap();
        assert!(!p.allow_links);
        assert_eq!(p.link_expire_days, 3);
        assert_eq!(p.exclude_groups, vec!["a", "b"]);
        assert_eq!(p.exclude_mode, strongroom_core::sharing::ExcludeMode::Allow);
        assert!(apply(&Policy::default(), &["nope=1".into()]).is_err());
        assert!(apply(&Policy::default(), &["allow_links=maybe".into()]).is_err());
        assert!(apply(&Policy::default(), &["exclude_mode=sometimes".into()]).is_err());
    }
}
