//! The command line: `serve`, `db migrate`, and the admin commands, which work
//! on the same database as the server (found through the same `--data-dir` or
//! `--config`).

/// `println!` for the command line's output. A reader that goes away early
/// (`strongroom user list | head -1`) ends the command quietly instead of a
/// panic on the broken pipe; it must be defined before the modules using it.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("strongroom: cannot write the output: {e}");
            std::process::exit(1);
        }
    }};
}

mod accounts;
mod encryption;
mod security;
mod sharing;
mod twofactor;

use std::{
    io::{BufRead, IsTerminal},
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use strongroom_core::secret::Secret;

use crate::{
    app::App,
    config::{Config, Overrides},
};

#[derive(Parser)]
#[command(
    name = "strongroom",
    version,
    about = "A file sync-and-share server that speaks Nextcloud's protocols"
)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "STRONGROOM_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder (database and content by default).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on, ADDRESS:PORT.
        #[arg(long)]
        listen: Option<String>,
        /// Name of the admin account created on first start.
        #[arg(long, default_value = "admin")]
        admin_user: String,
        /// Read the first admin's password from this file instead of generating one.
        #[arg(long)]
        admin_password_file: Option<PathBuf>,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: accounts::UserCommand,
    },
    /// Manage groups.
    Group {
        #[command(subcommand)]
        command: accounts::GroupCommand,
    },
    /// Security state: brute-force protection counters.
    Security {
        #[command(subcommand)]
        command: security::SecurityCommand,
    },
    /// Encryption at rest: status, enable, convert existing content, rotate the master key.
    Encryption {
        #[command(subcommand)]
        command: encryption::EncryptionCommand,
    },
    /// Second factors: status, enforcement, reset of a user's factors.
    Twofactor {
        #[command(subcommand)]
        command: twofactor::TwoFactorCommand,
    },
    /// Shares: list them, delete one.
    Share {
        #[command(subcommand)]
        command: sharing::ShareCommand,
    },
    /// The sharing policy.
    Sharing {
        #[command(subcommand)]
        command: sharing::SharingCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: security::AuditCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply pending schema migrations.
    Migrate,
    /// Delete blob files that no file, version, trash item or upload refers
    /// to (left by a crash during a large upload).
    SweepBlobs {
        /// Only files last written more than this many hours ago.
        #[arg(long, default_value_t = 24)]
        older_than_hours: u32,
        /// Count them without deleting anything.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let flags = Overrides { data_dir: cli.data_dir.clone(), listen };
    let config = match Config::load(cli.config.as_deref(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strongroom: {e}");
            return ExitCode::from(2);
        }
    };
    crate::logging::init(&config.log);
    for var in crate::config::unknown_env_vars(
        std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()),
    ) {
        tracing::warn!(variable = %var, "an environment variable names no setting and is ignored (README lists them)");
    }
    match execute(cli.command, &config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strongroom: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, config: &Config) -> Result<(), String> {
    // The audit log is checked without opening the installation: a damaged
    // database or a server running elsewhere must not stand in the way.
    let command = match command {
        Command::Audit { command } => return security::audit(config, command),
        other => other,
    };
    check_before_opening(&command)?;
    let app = App::open(config).await.map_err(|e| e.to_string())?;
    match command {
        Command::Serve { admin_user, admin_password_file, .. } => {
            serve(app, config, &admin_user, admin_password_file.as_deref()).await
        }
        Command::Db { command: DbCommand::Migrate } => {
            // App::open has applied them; a second run finds nothing to do.
            let ran = app.db.migrate().await.map_err(|e| e.to_string())?;
            out!("database is up to date ({ran} migrations applied now)");
            Ok(())
        }
        Command::Db { command: DbCommand::SweepBlobs { older_than_hours, dry_run } } => {
            let before = strongroom_core::now_secs() - i64::from(older_than_hours) * 3600;
            let swept =
                app.files.sweep_orphan_blobs(before, dry_run).await.map_err(|e| e.to_string())?;
            let what = if dry_run { "would be deleted" } else { "deleted" };
            out!("{} orphaned blob files ({} bytes) {what}", swept.files, swept.bytes);
            Ok(())
        }
        Command::User { command } => accounts::user(&app, command).await,
        Command::Group { command } => accounts::group(&app, command).await,
        Command::Security { command } => security::security(&app, command).await,
        Command::Encryption { command } => encryption::run(&app, config, command).await,
        Command::Audit { command } => security::audit(config, command),
        Command::Twofactor { command } => twofactor::run(&app, command).await,
        Command::Share { command } => sharing::share(&app, command).await,
        Command::Sharing { command } => sharing::sharing(&app, command).await,
    }
}

/// Refuses what can be refused without the installation, before it is
/// opened (which creates the database and folders of a new one): a password
/// file that others can read or that holds no password.
fn check_before_opening(command: &Command) -> Result<(), String> {
    use accounts::UserCommand::{Add, Passwd};
    if let Command::User {
        command: Add { password_file: Some(f), .. } | Passwd { password_file: Some(f), .. },
    } = command
    {
        read_password_file(f)?;
    }
    Ok(())
}

async fn serve(
    app: App,
    config: &Config,
    admin: &str,
    password_file: Option<&Path>,
) -> Result<(), String> {
    match app.bootstrap_admin(admin, password_file).await? {
        Some(pw) => {
            // Shown once, on standard output, never through the log.
            out!("Created the admin account {admin:?} with the password: {}", pw.expose());
            out!("Store it now; it will not be shown again.");
        }
        None => {}
    }
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(c), Some(k)) => Some(crate::http::tls_acceptor(c, k)?),
        _ => None,
    };
    let addr = config.listen_addr();
    let listener = crate::http::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %local, database = app.db.dialect_name(), tls = tls.is_some(), "listening");
    out!("Strongroom listening on {scheme}://{local}");
    // Only the server clears partial writes: an admin command run beside a
    // running server must not delete the uploads it is receiving.
    let blob_dir = config.blob_dir();
    app.files
        .blob_store()
        .clean_partial()
        .map_err(|e| format!("cannot clear {}/.tmp: {e}", blob_dir.display()))?;
    crate::maintenance::spawn(app.clone(), config);
    crate::encryption::watch(app.db.clone(), app.files.blob_store().clone());
    crate::http::serve(app, listener, tls).await.map_err(|e| e.to_string())
}

/// Reads a password from a file (first line, without its line ending).
/// Refuses files that other users may read.
pub fn read_password_file(path: &Path) -> Result<Secret, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.is_file() && meta.mode() & 0o077 != 0 {
            return Err(format!(
                "{} may be read by other users (mode {:o}); make it private with chmod 600",
                path.display(),
                meta.mode() & 0o777
            ));
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        return Err(format!("{} holds no password", path.display()));
    }
    Ok(Secret::new(line))
}

/// Reads a new password from standard input (one line), prompting on a terminal.
pub fn read_password_stdin() -> Result<Secret, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("New password: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
    let pw = line.trim_end_matches(['\r', '\n']).to_owned();
    if pw.is_empty() {
        return Err("no password given on standard input".into());
    }
    Ok(Secret::new(pw))
}
