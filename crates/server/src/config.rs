//! Configuration: one TOML file, every key overridable by an environment
//! variable (`STRONGROOM_` + the key in upper case, `.` as `_`), and a few by
//! command-line flags. Validated at start with errors that name the key.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

/// The type of a configuration value.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    /// A whole number within the bounds.
    Int(i64, i64),
    Bool,
    /// A list of strings; in the environment, comma-separated.
    List,
}

use Kind::{Bool, Int, List, Str};

/// Every key, declared once: its dotted name and its type. The environment
/// variable of a key is derived from its name.
const KEYS: &[(&str, Kind)] = &[
    ("listen", Str),
    ("data_dir", Str),
    ("client_stall_secs", Int(1, 3_600)),
    ("database.url", Str),
    ("database.max_connections", Int(1, 1000)),
    ("storage.path", Str),
    ("log.format", Str),
    ("log.level", Str),
    ("uploads.expire_after_secs", Int(1, 3_650 * 86_400)),
    ("trash.retention_days", Int(0, 36_500)),
    ("versions.retention_days", Int(0, 36_500)),
    ("versions.max_per_file", Int(0, 100_000)),
    ("maintenance.interval_secs", Int(1, 86_400)),
    ("trusted_proxies", List),
    ("tls.cert", Str),
    ("tls.key", Str),
    ("redis.url", Str),
    ("bruteforce.enabled", Bool),
    ("bruteforce.max_attempts", Int(1, 1000)),
    ("bruteforce.base_delay_ms", Int(0, 10_000)),
    ("bruteforce.max_delay_ms", Int(0, 60_000)),
    ("bruteforce.allow", List),
    ("session.idle_secs", Int(1, 30 * 86_400)),
    ("session.absolute_secs", Int(1, 365 * 86_400)),
    ("session.remember_secs", Int(0, 365 * 86_400)),
    ("session.confirm_secs", Int(0, 86_400)),
    ("audit.target", Str),
    ("audit.path", Str),
    ("encryption.provider", Str),
    ("encryption.key_file", Str),
    ("encryption.pkcs11_module", Str),
    ("encryption.pkcs11_token", Str),
    ("encryption.pkcs11_pin", Str),
    ("encryption.pkcs11_pin_file", Str),
    ("encryption.replaced_grace_secs", Int(0, 30 * 86_400)),
    ("public_url", Str),
    ("twofactor.smtp_host", Str),
    ("twofactor.smtp_port", Int(1, 65_535)),
    ("twofactor.smtp_from", Str),
    ("twofactor.sms_url", Str),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub uploads: UploadsConfig,
    #[serde(default)]
    pub trash: TrashConfig,
    #[serde(default)]
    pub versions: VersionsConfig,
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
    /// Addresses (or CIDR ranges) of reverse proxies whose `X-Forwarded-For`
    /// and `Forwarded` headers are believed; nobody else's are.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub redis: RedisConfig,
    #[serde(default)]
    pub bruteforce: BruteforceConfig,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub encryption: EncryptionConfig,
    /// The address users reach the server at (`https://cloud.example.org`).
    /// WebAuthn binds keys to its host name; when unset, the host of each
    /// request is used, as Nextcloud does.
    pub public_url: Option<String>,
    /// A client that sends nothing of a request body it announced for this
    /// long is given up (`http/stall.rs`).
    #[serde(default = "minute")]
    pub client_stall_secs: u64,
    #[serde(default)]
    pub twofactor: TwoFactorConfig,
}

/// Where one-time codes are sent from. Without `smtp_host` there are no
/// email codes; without `sms_url` no SMS codes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoFactorConfig {
    /// An SMTP relay that accepts mail for delivery without login (a local
    /// MTA); the message is handed over in plain SMTP.
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_from: Option<String>,
    /// An HTTP endpoint that sends SMS: it receives a POST with the JSON body
    /// `{"to": "+15551234567", "message": "…"}` and answers 2xx once accepted.
    pub sms_url: Option<String>,
}

/// Where the master keys of encryption at rest live. Whether new content is
/// encrypted is not configured here but in the database (`strongroom
/// encryption enable`), so every node of a cluster agrees.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// "file" (the default when `key_file` is set) or "pkcs11".
    pub provider: Option<String>,
    /// The master key file; must lie outside the data and storage folders.
    pub key_file: Option<PathBuf>,
    /// The PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    pub pkcs11_module: Option<String>,
    /// The label of the token holding the master keys.
    pub pkcs11_token: Option<String>,
    /// The user PIN; better given as `STRONGROOM_ENCRYPTION_PKCS11_PIN` or in a file.
    pub pkcs11_pin: Option<String>,
    pub pkcs11_pin_file: Option<PathBuf>,
    /// How long a blob file replaced by `encrypt-all`/`decrypt-all` stays for
    /// downloads that were already reading it (default one hour).
    pub replaced_grace_secs: Option<u64>,
}

impl EncryptionConfig {
    pub fn grace_secs(&self) -> i64 {
        self.replaced_grace_secs.unwrap_or(3_600) as i64
    }
}

/// HTTPS served by the server itself, from PEM files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// A Redis shared by several nodes for counters (brute-force protection).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BruteforceConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Failures in 30 minutes after which every attempt is refused with 429.
    #[serde(default = "ten_u32")]
    pub max_attempts: u32,
    /// The delay after the first failure; it doubles with each further one.
    #[serde(default = "two_hundred")]
    pub base_delay_ms: u64,
    #[serde(default = "twenty_five_thousand")]
    pub max_delay_ms: u64,
    /// Addresses or CIDR ranges never delayed nor counted.
    #[serde(default)]
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// A web session unused this long ends.
    #[serde(default = "day")]
    pub idle_secs: u64,
    /// A web session ends this long after login, used or not.
    #[serde(default = "week")]
    pub absolute_secs: u64,
    /// "Remember me" keeps a session this long (0 disables it).
    #[serde(default = "fifteen_days")]
    pub remember_secs: u64,
    /// A password confirmation allows sensitive actions for this long.
    #[serde(default = "half_hour")]
    pub confirm_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where audit events go: "file" (default), "stdout" or "syslog".
    #[serde(default = "audit_file")]
    pub target: String,
    /// The audit file; `DATA_DIR/audit.log` by default.
    pub path: Option<PathBuf>,
}

fn yes() -> bool {
    true
}
fn ten_u32() -> u32 {
    10
}
fn two_hundred() -> u64 {
    200
}
fn twenty_five_thousand() -> u64 {
    25_000
}
fn week() -> u64 {
    7 * 86_400
}
fn fifteen_days() -> u64 {
    15 * 86_400
}
fn half_hour() -> u64 {
    1_800
}
fn audit_file() -> String {
    "file".into()
}

impl Default for BruteforceConfig {
    fn default() -> Self {
        BruteforceConfig {
            enabled: true,
            max_attempts: 10,
            base_delay_ms: 200,
            max_delay_ms: 25_000,
            allow: Vec::new(),
        }
    }
}
impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_secs: day(),
            absolute_secs: week(),
            remember_secs: fifteen_days(),
            confirm_secs: half_hour(),
        }
    }
}
impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { target: audit_file(), path: None }
    }
}

/// Unfinished chunked uploads untouched this long are deleted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadsConfig {
    #[serde(default = "day")]
    pub expire_after_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrashConfig {
    /// Deleted items are purged after this many days (they also give way to
    /// new files when the quota is reached).
    #[serde(default = "thirty")]
    pub retention_days: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionsConfig {
    #[serde(default = "thirty")]
    pub retention_days: u64,
    #[serde(default = "fifty")]
    pub max_per_file: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// How often expiry runs.
    #[serde(default = "ten_minutes")]
    pub interval_secs: u64,
}

fn day() -> u64 {
    86_400
}
fn thirty() -> u64 {
    30
}
fn fifty() -> u64 {
    50
}
fn minute() -> u64 {
    60
}
fn ten_minutes() -> u64 {
    600
}

impl Default for UploadsConfig {
    fn default() -> Self {
        UploadsConfig { expire_after_secs: day() }
    }
}
impl Default for TrashConfig {
    fn default() -> Self {
        TrashConfig { retention_days: thirty() }
    }
}
impl Default for VersionsConfig {
    fn default() -> Self {
        VersionsConfig { retention_days: thirty(), max_per_file: fifty() }
    }
}
impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig { interval_secs: ten_minutes() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…`, `postgres://…` or `mysql://…`; SQLite in the data folder by default.
    pub url: Option<String>,
    pub max_connections: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Folder for content blobs; `DATA_DIR/blobs` by default.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default = "default_log_format")]
    pub format: String,
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: default_log_format(), level: default_log_level() }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_log_format() -> String {
    "text".into()
}
fn default_log_level() -> String {
    "info".into()
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Values given on the command line, which win over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
}

impl Config {
    /// Loads the file (if any), applies the environment, then the flags, and validates.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Config, ConfigError> {
        Self::load_with_env(file, flags, |k| std::env::var(k).ok())
    }

    fn load_with_env(
        file: Option<&Path>,
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", p.display())))?;
                text.parse::<toml::Table>().map_err(|e| {
                    ConfigError(format!("{}: {}", p.display(), e.to_string().trim()))
                })?
            }
            None => toml::Table::new(),
        };
        // Which keys the environment set, to name the variable in an error.
        let mut from_env = Vec::new();
        for (key, kind) in KEYS {
            let var = env_name(key);
            if let Some(v) = env(&var) {
                from_env.push((*key, var.clone()));
                let value = match kind {
                    Int(..) => toml::Value::Integer(v.trim().parse::<i64>().map_err(|_| {
                        ConfigError(format!(
                            "key `{key}` (from {var}): expected a number, got {v:?}"
                        ))
                    })?),
                    Bool => toml::Value::Boolean(match v.trim() {
                        "true" | "1" | "yes" => true,
                        "false" | "0" | "no" => false,
                        _ => {
                            return Err(ConfigError(format!(
                                "key `{key}` (from {var}): expected true or false, got {v:?}"
                            )));
                        }
                    }),
                    List => toml::Value::Array(
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|s| toml::Value::String(s.to_owned()))
                            .collect(),
                    ),
                    Str => toml::Value::String(v),
                };
                set(&mut table, key, value);
            }
        }
        if let Some(d) = &flags.data_dir {
            set(&mut table, "data_dir", toml::Value::String(d.to_string_lossy().into_owned()));
        }
        if let Some(l) = &flags.listen {
            set(&mut table, "listen", toml::Value::String(l.clone()));
        }
        let named =
            |e: ConfigError| match from_env.iter().find(|(k, _)| e.0.contains(&format!("`{k}`"))) {
                Some((_, var)) => ConfigError(format!("{} (set by {var})", e.0)),
                None => e,
            };
        check_keys(&table, "").map_err(named)?;
        let config: Config =
            Config::deserialize(table).map_err(|e| named(ConfigError(describe(&e))))?;
        config.validate().map_err(named)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |k: &str, m: String| Err(ConfigError(format!("key `{k}`: {m}")));
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad("listen", format!("{:?} is not an ADDRESS:PORT", self.listen));
        }
        if let Some(url) = &self.database.url {
            let ok = ["sqlite:", "postgres:", "postgresql:", "mysql:", "mariadb:"]
                .iter()
                .any(|s| url.starts_with(s));
            if !ok {
                return bad(
                    "database.url",
                    "must start with sqlite://, postgres:// or mysql://".into(),
                );
            }
        }
        for (key, list) in [
            ("trusted_proxies", &self.trusted_proxies),
            ("bruteforce.allow", &self.bruteforce.allow),
        ] {
            if let Some(bad) = list.iter().find(|c| strongroom_core::net::Cidr::parse(c).is_none())
            {
                return Err(ConfigError(format!(
                    "key `{key}`: {bad:?} is not an address or CIDR range"
                )));
            }
        }
        if let Some(u) = &self.public_url {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && webauthn_rs::prelude::Url::parse(u).is_ok_and(|u| u.host_str().is_some());
            if !ok {
                return bad("public_url", format!("{u:?} is not an http(s) URL"));
            }
        }
        if let Some(u) = &self.twofactor.sms_url {
            if !u.starts_with("http://") {
                return bad("twofactor.sms_url", "must be an http:// URL (a local gateway)".into());
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return bad("tls.cert", "tls.cert and tls.key must be given together".into());
        }
        if !matches!(self.audit.target.as_str(), "file" | "stdout" | "syslog") {
            return bad(
                "audit.target",
                format!("{:?} is not one of \"file\", \"stdout\", \"syslog\"", self.audit.target),
            );
        }
        if let Some(u) = &self.redis.url {
            if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
                return bad("redis.url", "must start with redis://".into());
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad(
                "log.format",
                format!("{:?} is neither \"text\" nor \"json\"", self.log.format),
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err()
            || !is_level_filter(&self.log.level)
        {
            return bad("log.level", format!("{:?} is not a log filter", self.log.level));
        }
        self.validate_encryption()
    }

    fn validate_encryption(&self) -> Result<(), ConfigError> {
        let e = &self.encryption;
        let bad = |k: &str, m: String| Err(ConfigError(format!("key `encryption.{k}`: {m}")));
        match e.provider.as_deref() {
            None | Some("file") => {
                if let Some(f) = &e.key_file {
                    // Compared after resolving `..` and symbolic links, on both sides.
                    let f = resolved(f);
                    for (key, dir) in
                        [("data_dir", &self.data_dir), ("storage.path", &self.blob_dir())]
                    {
                        if f.starts_with(resolved(dir)) {
                            return bad(
                                "key_file",
                                format!(
                                    "{} lies inside `{key}`; keep the master keys apart from the data they protect",
                                    f.display()
                                ),
                            );
                        }
                    }
                } else if e.provider.is_some() {
                    return bad("key_file", "the file provider needs a key file path".into());
                }
            }
            Some("pkcs11") => {
                if e.pkcs11_module.is_none() || e.pkcs11_token.is_none() {
                    return bad(
                        "pkcs11_module",
                        "the pkcs11 provider needs pkcs11_module and pkcs11_token".into(),
                    );
                }
                if e.pkcs11_pin.is_none() && e.pkcs11_pin_file.is_none() {
                    return bad("pkcs11_pin", "give the token's user PIN or a pin file".into());
                }
            }
            Some(other) => {
                return bad("provider", format!("{other:?} is neither \"file\" nor \"pkcs11\""));
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.parse().expect("validated at load")
    }

    /// The database URL: the configured one, or SQLite in the data folder.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) => u.clone(),
            None => {
                format!("sqlite://{}", absolute(&self.data_dir).join("strongroom.db").display())
            }
        }
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.storage.path.clone().unwrap_or_else(|| self.data_dir.join("blobs"))
    }

    pub fn audit_path(&self) -> PathBuf {
        self.audit.path.clone().unwrap_or_else(|| self.data_dir.join("audit.log"))
    }

    pub fn max_connections(&self) -> u32 {
        self.database.max_connections.unwrap_or(16)
    }
}

/// Refuses unknown keys and values of the wrong type, naming the dotted key.
fn check_keys(table: &toml::Table, prefix: &str) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        let section = KEYS.iter().any(|(name, _)| name.starts_with(&format!("{key}.")));
        if section {
            match v {
                toml::Value::Table(t) => check_keys(t, &key)?,
                _ => {
                    return Err(ConfigError(format!(
                        "key `{key}`: expected a table of settings, got {v}"
                    )));
                }
            }
            continue;
        }
        let wrong = |what: &str| Err(ConfigError(format!("key `{key}`: expected {what}, got {v}")));
        match KEYS.iter().find(|(name, _)| *name == key).map(|(_, k)| *k) {
            None => return Err(ConfigError(format!("unknown key `{key}`"))),
            Some(Int(lo, hi)) => match v.as_integer() {
                Some(n) if (lo..=hi).contains(&n) => {}
                _ => return wrong(&format!("a number from {lo} to {hi}")),
            },
            Some(Str) if !v.is_str() => return wrong("a string"),
            Some(Bool) if !v.is_bool() => return wrong("true or false"),
            Some(List) if !v.as_array().is_some_and(|a| a.iter().all(toml::Value::is_str)) => {
                return wrong("a list of strings");
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The `STRONGROOM_…` variables among `names` that name no setting: a
/// misspelled one would otherwise be ignored without a word, where an
/// unknown key in the file is an error. `STRONGROOM_CONFIG` names the file;
/// `STRONGROOM_TEST_…` belong to the test suite, not the server.
pub fn unknown_env_vars(names: impl Iterator<Item = String>) -> Vec<String> {
    let known: Vec<String> = KEYS.iter().map(|(k, _)| env_name(k)).collect();
    names
        .filter(|n| n.starts_with("STRONGROOM_") && !n.starts_with("STRONGROOM_TEST_"))
        .filter(|n| n != "STRONGROOM_CONFIG" && !known.contains(n))
        .collect()
}

/// `database.url` → `STRONGROOM_DATABASE_URL`.
pub fn env_name(key: &str) -> String {
    format!("STRONGROOM_{}", key.replace('.', "_").to_ascii_uppercase())
}

fn set(table: &mut toml::Table, dotted: &str, value: toml::Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts.pop().unwrap_or(dotted);
    let mut t = table;
    for p in parts {
        let entry = t.entry(p.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        t = entry.as_table_mut().expect("made a table above");
    }
    t.insert(last.to_owned(), value);
}

fn describe(e: &toml::de::Error) -> String {
    e.message().trim().to_owned()
}

/// The real location of a path that may not exist yet: its longest existing
/// ancestor resolved (symbolic links, `..`), the rest appended.
fn resolved(p: &Path) -> PathBuf {
    let p = absolute(&strongroom_store::crypt::keys::follow_links(&absolute(p)));
    let parts: Vec<_> = p.components().collect();
    // The longest prefix that exists, resolved by the system; the rest with
    // `.` and `..` applied by hand.
    for cut in (1..=parts.len()).rev() {
        let head: PathBuf = parts[..cut].iter().collect();
        if let Ok(mut out) = std::fs::canonicalize(&head) {
            for part in &parts[cut..] {
                match part {
                    std::path::Component::CurDir => {}
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    other => out.push(other),
                }
            }
            return out;
        }
    }
    p
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_owned())
    }
}

/// Whether a log filter says what it means: not empty, no blank around it,
/// and each directive without a `target=` names a level. tracing accepts
/// all of these and then logs nothing: an empty filter, one with a blank
/// (" info" is read as a target), and a bare word, which enables everything
/// of a target by that name (a misspelt level, "inf"); a target is written
/// `target=level` here.
fn is_level_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    !filter.is_empty()
        && filter.trim() == filter
        && filter.split(',').all(|d| {
            d.trim() == d
                && !d.is_empty()
                && (d.contains('=') || LEVELS.iter().any(|l| l.eq_ignore_ascii_case(d)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("sr-cfg-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, file).unwrap();
        let env: Vec<(String, String)> =
            env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let r = Config::load_with_env(Some(&path), &Overrides::default(), |k| {
            env.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone())
        });
        let _ = std::fs::remove_dir_all(dir);
        r
    }

    #[test]
    fn a_log_level_must_be_a_level_or_target_and_level() {
        for good in ["info", "WARN", "off", "warn,strongroom=debug", "strongroom::access=off"] {
            assert!(load(&format!("[log]\nlevel = {good:?}\n"), &[]).is_ok(), "{good}");
        }
        for bad in
            ["inf", "warning", "info,strongroom", "debug,tower_http", "", ",", " info", "info\n"]
        {
            assert!(load(&format!("[log]\nlevel = {bad:?}\n"), &[]).is_err(), "{bad}");
        }
        assert!(load("", &[("STRONGROOM_LOG_LEVEL", "bogus")]).is_err());
        // An empty variable (`STRONGROOM_LOG_LEVEL=` in an env file) too.
        assert!(load("", &[("STRONGROOM_LOG_LEVEL", "")]).is_err());
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load(
            "listen = \"127.0.0.1:1\"\n[database]\nmax_connections = 3\n",
            &[("STRONGROOM_LISTEN", "127.0.0.1:2"), ("STRONGROOM_DATABASE_MAX_CONNECTIONS", "7")],
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:2");
        assert_eq!(c.database.max_connections, Some(7));
    }

    #[test]
    fn misspelled_variables_are_found() {
        let names = [
            "STRONGROOM_LISTEN",
            "STRONGROOM_LISTN",
            "STRONGROOM_CONFIG",
            "PATH",
            "STRONGROOM_TEST_POSTGRES",
            "STRONGROOM_DATABASE_URL",
        ];
        let unknown = unknown_env_vars(names.iter().map(|n| n.to_string()));
        assert_eq!(unknown, ["STRONGROOM_LISTN"]);
    }

    #[test]
    fn errors_name_the_key() {
        let e = load("listen = \"nonsense\"", &[]).unwrap_err().0;
        assert!(e.contains("`listen`"), "{e}");
        let e = load("[database]\nurl = \"ftp://x\"", &[]).unwrap_err().0;
        assert!(e.contains("database.url"), "{e}");
        let e = load("bogus = 1", &[]).unwrap_err().0;
        assert!(e.contains("bogus"), "{e}");
        let e = load("", &[("STRONGROOM_DATABASE_MAX_CONNECTIONS", "many")]).unwrap_err().0;
        assert!(e.contains("database.max_connections"), "{e}");
        let e = load("[log]\nformat = \"xml\"", &[]).unwrap_err().0;
        assert!(e.contains("log.format"), "{e}");
        let e = load("[database]\nmax_connections = -5", &[]).unwrap_err().0;
        assert!(e.contains("database.max_connections"), "{e}");
        let e = load("", &[("STRONGROOM_DATABASE_MAX_CONNECTIONS", "99999999999")]).unwrap_err().0;
        assert!(e.contains("database.max_connections"), "{e}");
        assert!(e.contains("STRONGROOM_DATABASE_MAX_CONNECTIONS"), "the variable: {e}");
        let e = load("client_stall_secs = 0", &[]).unwrap_err().0;
        assert!(e.contains("client_stall_secs") && !e.contains("STRONGROOM_"), "{e}");
        let e = load("database = \"x\"", &[]).unwrap_err().0;
        assert!(e.contains("`database`") && e.contains("table"), "{e}");
        let e = load("listen = ", &[]).unwrap_err().0;
        assert!(e.contains("line 1"), "{e}");
    }
}
