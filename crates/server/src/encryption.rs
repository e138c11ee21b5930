//! Encryption at rest as the server runs it: the configured key provider,
//! the switch in the database (`sr_meta`: whether new content is encrypted
//! and with which master key), and the audit trail of failures.
//!
//! The switch lives in the database so that every node of a cluster follows
//! `strongroom encryption enable|disable|rotate-master-key` within
//! [`WATCH_EVERY`] without a restart.

use std::{sync::Arc, time::Duration};

use strongroom_core::audit::{Audit, Event, Origin};
use strongroom_store::{
    BlobStore, Db, DbError, Val,
    crypt::{Encryption, FileKeys, KeyProvider, Pkcs11Keys},
};

use crate::config::Config;

/// How often a running server re-reads the switch.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

const ENABLED: &str = "encryption_enabled";
const MASTER: &str = "encryption_master";
const RETIRING: &str = "encryption_retiring";

/// The switch as stored in the database.
#[derive(Debug, Clone, Default)]
pub struct Switch {
    pub enabled: bool,
    /// The master key that seals new data keys.
    pub master: Option<String>,
    /// Earlier master keys of this installation, to be destroyed once no
    /// blob refers to them (kept across runs, so a rotation that was
    /// interrupted still retires them later; keys of other installations
    /// sharing a token are never touched).
    pub retiring: Vec<String>,
}

impl Switch {
    pub async fn load(db: &Db) -> Result<Switch, DbError> {
        let rows = db
            .rows(
                "SELECT k, v FROM sr_meta WHERE k IN (?, ?, ?)",
                &[ENABLED.into(), MASTER.into(), RETIRING.into()],
            )
            .await?;
        let mut s = Switch::default();
        for r in rows {
            let v = r.str(1)?;
            match r.str(0)?.as_str() {
                ENABLED => s.enabled = v == "1",
                MASTER => s.master = Some(v),
                _ => s.retiring = v.split(',').filter(|k| !k.is_empty()).map(String::from).collect(),
            }
        }
        Ok(s)
    }

    pub async fn save(&self, db: &Db) -> Result<(), DbError> {
        let mut tx = db.begin().await?;
        tx.exec(
            "DELETE FROM sr_meta WHERE k IN (?, ?, ?)",
            &[ENABLED.into(), MASTER.into(), RETIRING.into()],
        )
        .await?;
        let retiring = self.retiring.join(",");
        tx.exec("INSERT INTO sr_meta (k, v) VALUES (?, ?)", &[RETIRING.into(), retiring.into()])
            .await?;
        let enabled = if self.enabled { "1" } else { "0" };
        tx.exec("INSERT INTO sr_meta (k, v) VALUES (?, ?)", &[ENABLED.into(), enabled.into()])
            .await?;
        if let Some(m) = &self.master {
            tx.exec("INSERT INTO sr_meta (k, v) VALUES (?, ?)", &[MASTER.into(), Val::from(m.as_str())])
                .await?;
        }
        tx.commit().await
    }

    /// The master key new blobs are sealed with, if any.
    pub fn write_key(&self) -> Option<String> {
        if self.enabled { self.master.clone() } else { None }
    }
}

/// Opens the configured key provider, if one is configured.
pub fn open_provider(config: &Config) -> Result<Option<Arc<dyn KeyProvider>>, String> {
    let e = &config.encryption;
    match e.provider.as_deref() {
        Some("pkcs11") => {
            let pin = match (&e.pkcs11_pin, &e.pkcs11_pin_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => crate::cli::read_password_file(f)?.expose().to_owned(),
                (None, None) => return Err("key `encryption.pkcs11_pin`: no PIN given".into()),
            };
            let module = e.pkcs11_module.as_deref().unwrap_or_default();
            let token = e.pkcs11_token.as_deref().unwrap_or_default();
            let keys = Pkcs11Keys::open(module, token, &pin).map_err(|e| e.to_string())?;
            Ok(Some(Arc::new(keys)))
        }
        _ => match &e.key_file {
            Some(f) => Ok(Some(Arc::new(FileKeys::open(f).map_err(|e| e.to_string())?))),
            None => Ok(None),
        },
    }
}

/// Gives the blob store its key provider and the current switch, after
/// checking that everything the database says is encrypted can be read.
pub async fn attach(
    config: &Config,
    db: &Db,
    blobs: BlobStore,
    audit: &Audit,
) -> Result<BlobStore, String> {
    let switch = Switch::load(db).await.map_err(|e| e.to_string())?;
    let sealed = db
        .row("SELECT COUNT(*) FROM blobs WHERE kek_id IS NOT NULL", &[])
        .await
        .map_err(|e| e.to_string())?
        .map(|r| r.i64(0))
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or(0);
    let provider = match open_provider(config) {
        Ok(p) => p,
        Err(e) => {
            audit.record(
                &Origin::default(),
                Event::new("encryption.provider_failure").detail(serde_json::json!({"error": e})),
            );
            return Err(format!("encryption key provider: {e}"));
        }
    };
    let Some(provider) = provider else {
        if switch.enabled || sealed > 0 {
            return Err(format!(
                "encryption is enabled or {sealed} blobs are encrypted, but no key provider is \
                 configured (set `encryption.key_file` or `encryption.provider = \"pkcs11\"`)"
            ));
        }
        return Ok(blobs);
    };
    if let Some(m) = switch.write_key() {
        let known = provider.masters().map_err(|e| e.to_string())?;
        if !known.contains(&m) {
            audit.record(
                &Origin::default(),
                Event::new("encryption.provider_failure")
                    .target(&m)
                    .detail(serde_json::json!({"error": "current master key missing"})),
            );
            return Err(format!(
                "the current master key {m} is not in {}; restore it from your key backup",
                provider.describe()
            ));
        }
    }
    let enc = Arc::new(Encryption::new(provider));
    enc.set_write_key(switch.write_key());
    let audit = audit.clone();
    enc.set_failure_hook(Arc::new(move |blob, what| {
        audit.record(
            &Origin::default(),
            Event::new("encryption.failure")
                .target(blob)
                .detail(serde_json::json!({"error": what})),
        );
    }));
    Ok(blobs.with_encryption(enc))
}

/// Follows the switch in the database while the server runs.
pub fn watch(db: Db, blobs: BlobStore) {
    let Some(enc) = blobs.encryption().cloned() else { return };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        loop {
            tick.tick().await;
            match Switch::load(&db).await {
                Ok(s) => enc.set_write_key(s.write_key()),
                Err(e) => tracing::warn!(error = %e, "reading the encryption switch failed"),
            }
        }
    });
}
