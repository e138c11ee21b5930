//! Opening an installation: database, migrations, blob store, services, and
//! the first-start set-up (instance id and the first admin account).

use std::{path::Path, sync::Arc};

use strongroom_core::{
    Files, Users,
    audit::Audit,
    bruteforce::{Settings, Throttle},
    loginflow::LoginFlows,
    net::Cidr,
    secret::Secret,
    tokens::{Lifetimes, Tokens},
    twofactor::TwoFactor,
};
use strongroom_dav::Dav;
use strongroom_ocs::Ocs;
use strongroom_store::{BlobStore, Db, Val};

use crate::config::Config;

/// Everything a request handler or an admin command needs. Cloned for every
/// request (axum's state), so it is one shared pointer: a clone of the
/// services themselves was several dozen reference counts and a `Vec` copy.
#[derive(Clone)]
pub struct App(Arc<Services>);

impl std::ops::Deref for App {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind an [`App`].
pub struct Services {
    pub db: Db,
    pub users: Users,
    pub files: Files,
    pub tokens: Tokens,
    pub flows: LoginFlows,
    pub dav: Dav,
    pub ocs: Ocs,
    pub throttle: Throttle,
    pub audit: Audit,
    pub security: Security,
    pub twofactor: TwoFactor,
    pub twofactor_config: crate::config::TwoFactorConfig,
    pub shares: strongroom_core::sharing::Shares,
}

/// Settings of the HTTP surface that handlers consult on every request.
#[derive(Clone, Debug)]
pub struct Security {
    pub trusted_proxies: Vec<Cidr>,
    /// Served over TLS by this process: cookies are `Secure`, HSTS is sent.
    pub tls: bool,
    /// How long a password confirmation allows sensitive actions (seconds).
    pub confirm_secs: i64,
    /// How long "remember me" keeps a session (0: the option is off).
    pub remember_secs: i64,
    /// `public_url`: the origin WebAuthn keys are bound to, when configured.
    pub public_url: Option<String>,
    /// How long a client may send nothing of a request body it announced
    /// (`client_stall_secs`).
    pub client_stall: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot prepare the folder {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("cannot open the database (key `database.url`): {0}")]
    Db(#[from] strongroom_store::DbError),
    #[error("{0}")]
    Core(#[from] strongroom_core::Error),
    #[error("cannot open the audit log (key `audit.target`/`audit.path`): {0}")]
    Audit(std::io::Error),
    #[error("{0}")]
    Keys(String),
}

impl App {
    /// Opens the installation described by `config`, creating and migrating
    /// what does not exist yet.
    pub async fn open(config: &Config) -> Result<App, OpenError> {
        prepare_dir(&config.data_dir, "data_dir")?;
        let blob_dir = config.blob_dir();
        prepare_dir(&blob_dir, "storage.path")?;
        let db = Db::connect(&config.database_url(), config.max_connections()).await?;
        db.migrate().await?;
        let blobs = BlobStore::local(&blob_dir)
            .map_err(|e| OpenError::DataDir(blob_dir.display().to_string(), e))?;
        let audit = open_audit(config)?;
        let blobs =
            crate::encryption::attach(config, &db, blobs, &audit).await.map_err(OpenError::Keys)?;
        let instance_id = instance_id(&db).await?;
        let users = Users::new(db.clone());
        let files = Files::new(db.clone(), blobs);
        let s = &config.session;
        let lifetimes = Lifetimes {
            idle: s.idle_secs as i64,
            absolute: s.absolute_secs as i64,
            remember: s.remember_secs as i64,
        };
        let tokens = Tokens::new(db.clone(), users.clone(), lifetimes);
        let shares = strongroom_core::sharing::Shares::new(db.clone(), users.clone());
        let dav =
            Dav { files: files.clone(), instance_id, shares: shares.clone(), audit: audit.clone() };
        let twofactor = TwoFactor::new(db.clone(), users.clone());
        let ocs = Ocs {
            users: users.clone(),
            files: files.clone(),
            tokens: tokens.clone(),
            audit: audit.clone(),
            confirm_secs: config.session.confirm_secs as i64,
            twofactor: twofactor.clone(),
            twofactor_providers: strongroom_core::twofactor::PROVIDERS
                .iter()
                .copied()
                .filter(|p| match *p {
                    "email" => config.twofactor.smtp_host.is_some(),
                    "sms" => config.twofactor.sms_url.is_some(),
                    _ => true,
                })
                .collect(),
            shares: shares.clone(),
            public_url: config.public_url.clone(),
            tls: config.tls.cert.is_some(),
        };
        let flows = LoginFlows::new(db.clone(), users.clone(), tokens.clone());
        let throttle = open_throttle(config, &db).await?;
        let cidrs = |l: &[String]| l.iter().filter_map(|c| Cidr::parse(c)).collect::<Vec<_>>();
        let security = Security {
            trusted_proxies: cidrs(&config.trusted_proxies),
            tls: config.tls.cert.is_some(),
            confirm_secs: s.confirm_secs as i64,
            remember_secs: s.remember_secs as i64,
            public_url: config.public_url.clone(),
            client_stall: std::time::Duration::from_secs(config.client_stall_secs),
        };
        let twofactor_config = config.twofactor.clone();
        Ok(App(Arc::new(Services {
            db,
            users,
            files,
            tokens,
            flows,
            dav,
            ocs,
            throttle,
            audit,
            security,
            twofactor,
            twofactor_config,
            shares,
        })))
    }

    /// On the very first start, creates the admin account. Returns the
    /// generated password when one was made (for the caller to show once).
    pub async fn bootstrap_admin(
        &self,
        name: &str,
        password_file: Option<&Path>,
    ) -> Result<Option<Secret>, String> {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        if meta_get(&self.db, "initialized").await.map_err(|e| text(&e))?.is_some() {
            return Ok(None);
        }
        let (password, generated) = match password_file {
            Some(f) => (crate::cli::read_password_file(f)?, false),
            None => (Secret::new(generate_password()), true),
        };
        if self.users.get(name).await.map_err(|e| text(&e))?.is_none() {
            self.users.create(name, &password, None).await.map_err(|e| text(&e))?;
        }
        match self.users.group_create("admin").await {
            Ok(()) | Err(strongroom_core::Error::AlreadyExists(_)) => {}
            Err(e) => return Err(text(&e)),
        }
        self.users.group_add_user("admin", name).await.map_err(|e| text(&e))?;
        meta_set(&self.db, "initialized", "1").await.map_err(|e| text(&e))?;
        Ok(generated.then_some(password))
    }
}

fn open_audit(config: &Config) -> Result<Audit, OpenError> {
    match config.audit.target.as_str() {
        "stdout" => Ok(Audit::to_stdout()),
        "syslog" => Audit::to_syslog().map_err(OpenError::Audit),
        _ => Audit::to_file(&config.audit_path()).map_err(OpenError::Audit),
    }
}

async fn open_throttle(config: &Config, db: &Db) -> Result<Throttle, OpenError> {
    let b = &config.bruteforce;
    let settings = Settings {
        enabled: b.enabled,
        max_attempts: b.max_attempts,
        base_delay: std::time::Duration::from_millis(b.base_delay_ms),
        max_delay: std::time::Duration::from_millis(b.max_delay_ms),
        allow: b.allow.iter().filter_map(|c| Cidr::parse(c)).collect(),
    };
    match &config.redis.url {
        // Several nodes share their counts through Redis.
        Some(url) => Ok(Throttle::with_redis(url, settings).await?),
        None => Ok(Throttle::with_db(db.clone(), settings)),
    }
}

/// Creates a folder readable by the server's user only; errors name the key.
fn prepare_dir(dir: &Path, key: &str) -> Result<(), OpenError> {
    let err = |e| OpenError::DataDir(format!("{} (key `{key}`)", dir.display()), e);
    std::fs::create_dir_all(dir).map_err(err)?;
    // Only the server's own account may look inside, even in a folder that
    // existed before (it holds the database, the audit log and content).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

async fn meta_get(db: &Db, key: &str) -> Result<Option<String>, strongroom_store::DbError> {
    match db.row("SELECT v FROM sr_meta WHERE k = ?", &[key.into()]).await? {
        Some(r) => Ok(Some(r.str(0)?)),
        None => Ok(None),
    }
}

async fn meta_set(db: &Db, key: &str, value: &str) -> Result<(), strongroom_store::DbError> {
    db.exec("DELETE FROM sr_meta WHERE k = ?", &[key.into()]).await?;
    db.exec("INSERT INTO sr_meta (k, v) VALUES (?, ?)", &[Val::from(key), Val::from(value)])
        .await?;
    Ok(())
}

/// The installation's stable id: `oc` and ten random lower-case letters or digits.
async fn instance_id(db: &Db) -> Result<String, strongroom_store::DbError> {
    if let Some(id) = meta_get(db, "instance_id").await? {
        return Ok(id);
    }
    let id = format!("oc{}", random_chars(10, b"abcdefghijklmnopqrstuvwxyz0123456789"));
    // Two nodes starting at once: the first insert wins, the other reads it.
    let _ = db
        .exec(
            "INSERT INTO sr_meta (k, v) VALUES (?, ?)",
            &[Val::from("instance_id"), Val::from(id.as_str())],
        )
        .await;
    Ok(meta_get(db, "instance_id").await?.unwrap_or(id))
}

fn random_chars(n: usize, alphabet: &[u8]) -> String {
    (0..n).map(|_| alphabet[rand::random_range(0..alphabet.len())] as char).collect()
}

/// A generated password: 24 characters from an alphabet without look-alikes.
pub fn generate_password() -> String {
    random_chars(24, b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
}
