//! `strongroom security bruteforce status|reset ADDRESS` and `strongroom audit verify`.

use std::{net::IpAddr, path::PathBuf};

use clap::Subcommand;
use strongroom_core::audit::{Verdict, verify};

use crate::{app::App, config::Config};

#[derive(Subcommand)]
pub enum SecurityCommand {
    /// Brute-force protection counters.
    Bruteforce {
        #[command(subcommand)]
        command: BruteforceCommand,
    },
}

#[derive(Subcommand)]
pub enum BruteforceCommand {
    /// Failed attempts recorded for an address's subnet, per action.
    Status { address: IpAddr },
    /// Forget the failed attempts of an address's subnet.
    Reset { address: IpAddr },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of an audit log file; names the first broken line.
    Verify {
        /// The file to check (the configured audit file by default).
        #[arg(long)]
        path: Option<PathBuf>,
    },
}

pub async fn security(app: &App, cmd: SecurityCommand) -> Result<(), String> {
    match cmd {
        SecurityCommand::Bruteforce { command: BruteforceCommand::Status { address } } => {
            let counts = app.throttle.status(address).await.map_err(|e| e.to_string())?;
            if counts.is_empty() {
                out!("{address}: no failed attempts recorded");
            }
            for (action, n) in counts {
                out!("{address}\t{action}\t{n} failed attempts in the last 12 hours");
            }
        }
        SecurityCommand::Bruteforce { command: BruteforceCommand::Reset { address } } => {
            app.throttle.reset(address).await.map_err(|e| e.to_string())?;
            out!("{address}: failed attempts forgotten");
        }
    }
    Ok(())
}

pub fn audit(config: &Config, cmd: AuditCommand) -> Result<(), String> {
    let AuditCommand::Verify { path } = cmd;
    let path = path.unwrap_or_else(|| config.audit_path());
    match verify(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))? {
        Verdict::Intact { lines } => {
            out!("{}: {lines} records, chain intact", path.display());
            Ok(())
        }
        Verdict::Broken { line, reason } => {
            Err(format!("{}: line {line}: {reason}", path.display()))
        }
    }
}
