//! `strongroom twofactor …`: a user's factors, the enforcement policy, and
//! an admin's reset of a user's factors (audited, the user is notified).

use clap::Subcommand;
use strongroom_core::{audit::Origin, twofactor::Policy};

use crate::app::App;

#[derive(Subcommand)]
pub enum TwoFactorCommand {
    /// Show the enforcement policy, or one user's factors.
    Status { user: Option<String> },
    /// Require second factors: for everyone (no --group), or for members of
    /// the given groups; --exclude exempts groups; --off ends enforcement.
    Enforce {
        #[arg(long, conflicts_with_all = ["group", "exclude"])]
        off: bool,
        #[arg(long)]
        group: Vec<String>,
        #[arg(long)]
        exclude: Vec<String>,
    },
    /// Remove every factor of a user (TOTP, keys, contacts, backup codes).
    DisableFor { user: String },
}

pub async fn run(app: &App, cmd: TwoFactorCommand) -> Result<(), String> {
    let text = |e: strongroom_core::Error| e.to_string();
    match cmd {
        TwoFactorCommand::Status { user: None } => {
            let p = app.twofactor.policy().await.map_err(text)?;
            print_policy(&p);
        }
        TwoFactorCommand::Status { user: Some(uid) } => {
            let user =
                app.users.get(&uid).await.map_err(text)?.ok_or(format!("no such user: {uid}"))?;
            let f = app.twofactor.factors(user.id).await.map_err(text)?;
            let enforced = app.twofactor.enforced_for(user.id).await.map_err(text)?;
            out!("user: {}", user.uid);
            out!("enforced: {}", if enforced { "yes" } else { "no" });
            out!(
                "totp: {}",
                if f.totp {
                    "on"
                } else if f.totp_pending {
                    "enrolling"
                } else {
                    "off"
                }
            );
            out!("webauthn keys: {} ({} passkeys)", f.webauthn_keys, f.passkeys);
            out!("email: {}", if f.email { "on" } else { "off" });
            out!("sms: {}", if f.sms { "on" } else { "off" });
            out!("backup codes: {} of {} left", f.backup_remaining, f.backup_total);
        }
        TwoFactorCommand::Enforce { off, group, exclude } => {
            let groups = app.users.groups().await.map_err(text)?;
            if let Some(g) = group
                .iter()
                .chain(&exclude)
                .find(|g| !groups.iter().any(|x| x.gid.eq_ignore_ascii_case(g)))
            {
                return Err(format!("no such group: {g}"));
            }
            let p = Policy { enforced: !off, enforced_groups: group, excluded_groups: exclude };
            app.twofactor.set_policy(&p).await.map_err(text)?;
            super::accounts::audit_detail(app, "twofactor.policy", "", serde_json::json!(p));
            print_policy(&p);
        }
        TwoFactorCommand::DisableFor { user: uid } => {
            let user =
                app.users.get(&uid).await.map_err(text)?.ok_or(format!("no such user: {uid}"))?;
            let origin = Origin {
                request_id: "cli".into(),
                address: "local".into(),
                user_agent: "strongroom command line".into(),
            };
            let admin = std::env::var("USER").unwrap_or_else(|_| "local administrator".into());
            crate::http::reset_user(app, &user, &admin, &origin).await.map_err(text)?;
            out!("{}: every second factor removed", user.uid);
        }
    }
    Ok(())
}

fn print_policy(p: &Policy) {
    out!("enforced: {}", if p.enforced { "yes" } else { "no" });
    if p.enforced {
        let all = if p.enforced_groups.is_empty() {
            "everyone".to_owned()
        } else {
            p.enforced_groups.join(", ")
        };
        out!("for: {all}");
        out!(
            "excluded: {}",
            if p.excluded_groups.is_empty() {
                "none".to_owned()
            } else {
                p.excluded_groups.join(", ")
            }
        );
    }
}
