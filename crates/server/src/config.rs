//! Configuration: one TOML file, every key overridable by an environment
//! variable (`STRONGROOM_` + the key in upper case, `.` as `_`), and a few by
//! command-line flags. Validated at start with errors that name the key.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

/// Every key, declared once: its dotted name and, for numbers, the range of
/// values allowed (`None` for strings). The environment variable of a key is
/// derived from its name.
const KEYS: &[(&str, Option<(i64, i64)>)] = &[
    ("listen", None),
    ("data_dir", None),
    ("database.url", None),
    ("database.max_connections", Some((1, 1000))),
    ("storage.path", None),
    ("log.format", None),
    ("log.level", None),
    ("uploads.expire_after_secs", Some((1, 3_650 * 86_400))),
    ("trash.retention_days", Some((0, 36_500))),
    ("versions.retention_days", Some((0, 36_500))),
    ("versions.max_per_file", Some((0, 100_000))),
    ("maintenance.interval_secs", Some((1, 86_400))),
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
                text.parse::<toml::Table>().map_err(|e| ConfigError(format!("{}: {}", p.display(), e.to_string().trim())))?
            }
            None => toml::Table::new(),
        };
        for (key, range) in KEYS {
            let var = env_name(key);
            if let Some(v) = env(&var) {
                let value = if range.is_some() {
                    let n = v.trim().parse::<i64>().map_err(|_| {
                        ConfigError(format!("key `{key}` (from {var}): expected a number, got {v:?}"))
                    })?;
                    toml::Value::Integer(n)
                } else {
                    toml::Value::String(v)
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
        check_keys(&table, "")?;
        let config: Config = Config::deserialize(table).map_err(|e| ConfigError(describe(&e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |k: &str, m: String| Err(ConfigError(format!("key `{k}`: {m}")));
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad("listen", format!("{:?} is not an ADDRESS:PORT", self.listen));
        }
        if let Some(url) = &self.database.url {
            let ok = ["sqlite:", "postgres:", "postgresql:", "mysql:", "mariadb:"].iter().any(|s| url.starts_with(s));
            if !ok {
                return bad("database.url", "must start with sqlite://, postgres:// or mysql://".into());
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad("log.format", format!("{:?} is neither \"text\" nor \"json\"", self.log.format));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad("log.level", format!("{:?} is not a log filter", self.log.level));
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
            None => format!("sqlite://{}", absolute(&self.data_dir).join("strongroom.db").display()),
        }
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.storage.path.clone().unwrap_or_else(|| self.data_dir.join("blobs"))
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
                _ => return Err(ConfigError(format!("key `{key}`: expected a table of settings, got {v}"))),
            }
            continue;
        }
        match KEYS.iter().find(|(name, _)| *name == key) {
            None => return Err(ConfigError(format!("unknown key `{key}`"))),
            Some((_, Some((lo, hi)))) => match v.as_integer() {
                Some(n) if (*lo..=*hi).contains(&n) => {}
                _ => return Err(ConfigError(format!("key `{key}`: expected a number from {lo} to {hi}, got {v}"))),
            },
            Some((_, None)) if !v.is_str() => {
                return Err(ConfigError(format!("key `{key}`: expected a string, got {v}")));
            }
            Some(_) => {}
        }
    }
    Ok(())
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

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("sr-cfg-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, file).unwrap();
        let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let r = Config::load_with_env(Some(&path), &Overrides::default(), |k| {
            env.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone())
        });
        let _ = std::fs::remove_dir_all(dir);
        r
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load("listen = \"127.0.0.1:1\"\n[database]\nmax_connections = 3\n", &[
            ("STRONGROOM_LISTEN", "127.0.0.1:2"),
            ("STRONGROOM_DATABASE_MAX_CONNECTIONS", "7"),
        ])
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:2");
        assert_eq!(c.database.max_connections, Some(7));
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
        let e = load("database = \"x\"", &[]).unwrap_err().0;
        assert!(e.contains("`database`") && e.contains("table"), "{e}");
        let e = load("listen = ", &[]).unwrap_err().0;
        assert!(e.contains("line 1"), "{e}");
    }
}
