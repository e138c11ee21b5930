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
const CHECK: &str = "encryption_check";

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
    /// The key check of the current master key: (master, wrapped check key).
    pub check: Option<(String, Vec<u8>)>,
}

impl Switch {
    pub async fn load(db: &Db) -> Result<Switch, DbError> {
        let rows = db
            .rows(
                "SELECT k, v FROM sr_meta WHERE k IN (?, ?, ?, ?)",
                &[ENABLED.into(), MASTER.into(), RETIRING.into(), CHECK.into()],
            )
            .await?;
        let mut s = Switch::default();
        for r in rows {
            let v = r.str(1)?;
            match r.str(0)?.as_str() {
                ENABLED => s.enabled = v == "1",
                MASTER => s.master = Some(v),
                CHECK => {
                    s.check = v
                        .split_once('|')
                        .and_then(|(m, h)| Some((m.to_owned(), hex::decode(h).ok()?)))
                }
                _ => {
                    s.retiring = v.split(',').filter(|k| !k.is_empty()).map(String::from).collect()
                }
            }
        }
        Ok(s)
    }

    pub async fn save(&self, db: &Db) -> Result<(), DbError> {
        let mut tx = db.begin().await?;
        tx.exec(
            "DELETE FROM sr_meta WHERE k IN (?, ?, ?, ?)",
            &[ENABLED.into(), MASTER.into(), RETIRING.into(), CHECK.into()],
        )
        .await?;
        if let Some((m, w)) = &self.check {
            let v = format!("{m}|{}", hex::encode(w));
            tx.exec("INSERT INTO sr_meta (k, v) VALUES (?, ?)", &[CHECK.into(), v.into()]).await?;
        }
        let retiring = self.retiring.join(",");
        tx.exec("INSERT INTO sr_meta (k, v) VALUES (?, ?)", &[RETIRING.into(), retiring.into()])
            .await?;
        let enabled = if self.enabled { "1" } else { "0" };
        tx.exec("INSERT INTO sr_meta (k, v) VALUES (?, ?)", &[ENABLED.into(), enabled.into()])
            .await?;
        if let Some(m) = &self.master {
            tx.exec(
                "INSERT INTO sr_meta (k, v) VALUES (?, ?)",
                &[MASTER.into(), Val::from(m.as_str())],
            )
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
            return Err(e);
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
    if let Err(e) = check_keys(db, provider.as_ref(), &switch).await {
        audit.record(
            &Origin::default(),
            Event::new("encryption.provider_failure").detail(serde_json::json!({"error": e})),
        );
        return Err(e);
    }
    let enc = Arc::new(Encryption::new(provider));
    enc.set_switch(switch.enabled, switch.master.clone());
    enc.set_check(switch.check.clone());
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

/// Checks that the provider holds the current master key and every master key
/// the database refers to, and that each of them really opens a data key (a
/// key file with the right ids but wrong bytes would otherwise only show as
/// 500s, and new content would be sealed with a key no backup has).
async fn check_keys(db: &Db, provider: &dyn KeyProvider, switch: &Switch) -> Result<(), String> {
    let held = provider.masters().map_err(|e| e.to_string())?;
    let rows = db
        .rows("SELECT DISTINCT kek_id FROM blobs WHERE kek_id IS NOT NULL", &[])
        .await
        .map_err(|e| e.to_string())?;
    let mut used = Vec::new();
    for r in rows {
        used.push(r.str(0).map_err(|e| e.to_string())?);
    }
    for m in switch.write_key().iter().chain(used.iter()) {
        if !held.contains(m) {
            return Err(format!(
                "master key {m} is not in {}; restore it from your key backup",
                provider.describe()
            ));
        }
    }
    if let Some((m, check)) = &switch.check {
        if held.contains(m) {
            strongroom_store::crypt::verify_key_check(provider, m, check)
                .map_err(|e| e.to_string())?;
        }
    }
    for m in &used {
        let row = db
            .row(
                "SELECT blob_key, wrapped_key FROM blobs WHERE kek_id = ? LIMIT 1",
                &[Val::from(m.as_str())],
            )
            .await
            .map_err(|e| e.to_string())?;
        let Some(row) = row else { continue };
        let (blob, wrapped) = (
            row.str(0).map_err(|e| e.to_string())?,
            row.opt_str(1).map_err(|e| e.to_string())?.unwrap_or_default(),
        );
        let wrapped = hex::decode(wrapped).unwrap_or_default();
        if let Err(e) = provider.unwrap(m, &wrapped, blob.as_bytes()) {
            return Err(format!(
                "master key {m} in {} does not open the data keys sealed with it ({e}); \
                 restore the right key file or token",
                provider.describe()
            ));
        }
    }
    Ok(())
}

/// Follows the switch in the database while the server runs.
pub fn watch(db: Db, blobs: BlobStore) {
    let Some(enc) = blobs.encryption().cloned() else { return };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        loop {
            tick.tick().await;
            match Switch::load(&db).await {
                Ok(s) => {
                    enc.set_check(s.check);
                    enc.set_switch(s.enabled, s.master);
                }
                Err(e) => tracing::warn!(error = %e, "reading the encryption switch failed"),
            }
        }
    });
}

/// Only one encryption command changes keys or converts content at a time:
/// two rotations at once would re-wrap keys back and forth and destroy each
/// other's master key. The lease is a row of `sr_meta`, so it holds across
/// nodes. While the command runs, a background task renews it every
/// [`RENEW_EVERY`]; one left by a killed command is taken over once
/// [`LEASE_STALE_SECS`] pass without renewal, or at once when its process
/// on this machine has ended.
pub struct Lease {
    state: Arc<tokio::sync::Mutex<LeaseState>>,
    renewer: tokio::task::JoinHandle<()>,
}

struct LeaseState {
    db: Db,
    value: String,
    what: String,
    /// Part of the value, so each renewal changes the row (MySQL counts only
    /// rows whose value changed).
    renewals: u64,
    lost: bool,
}

const LEASE: &str = "encryption_job";
pub const LEASE_STALE_SECS: i64 = 120;
const RENEW_EVERY: Duration = Duration::from_secs(20);

impl Lease {
    pub async fn take(db: &Db, what: &str) -> Result<Lease, String> {
        for _ in 0..3 {
            let value = lease_value(what, 0);
            let inserted = db
                .exec(
                    "INSERT INTO sr_meta (k, v) VALUES (?, ?)",
                    &[LEASE.into(), value.as_str().into()],
                )
                .await;
            if inserted.is_ok() {
                let state = Arc::new(tokio::sync::Mutex::new(LeaseState {
                    db: db.clone(),
                    value,
                    what: what.to_owned(),
                    renewals: 0,
                    lost: false,
                }));
                let renewer = tokio::spawn(keep_renewing(state.clone()));
                return Ok(Lease { state, renewer });
            }
            let held = db
                .row("SELECT v FROM sr_meta WHERE k = ?", &[LEASE.into()])
                .await
                .map_err(|e| e.to_string())?;
            let Some(held) = held else { continue };
            let held = held.str(0).map_err(|e| e.to_string())?;
            let since: i64 = held.split('|').next().and_then(|t| t.parse().ok()).unwrap_or(0);
            if strongroom_core::now_secs() - since > LEASE_STALE_SECS || holder_is_gone(&held) {
                // Left by a command that died; take it over.
                db.exec("DELETE FROM sr_meta WHERE k = ? AND v = ?", &[LEASE.into(), held.into()])
                    .await
                    .map_err(|e| e.to_string())?;
                continue;
            }
            let who = held.splitn(3, '|').nth(2).unwrap_or("another command");
            return Err(format!(
                "another encryption command is running ({who}); wait for it to finish \
                 (the lease of a command that died is taken over once its process is gone, \
                 or after {LEASE_STALE_SECS} s from another machine)"
            ));
        }
        Err("could not take the encryption lease".into())
    }

    /// Fails if the lease was lost (taken over by another command): the
    /// caller must stop before changing anything more.
    pub async fn check(&self) -> Result<(), String> {
        if self.state.lock().await.lost {
            return Err("the encryption lease was lost to another command; stopping".into());
        }
        Ok(())
    }

    pub async fn release(self) {
        self.renewer.abort();
        let st = self.state.lock().await;
        let _ = st
            .db
            .exec(
                "DELETE FROM sr_meta WHERE k = ? AND v = ?",
                &[LEASE.into(), st.value.as_str().into()],
            )
            .await;
    }
}

async fn keep_renewing(state: Arc<tokio::sync::Mutex<LeaseState>>) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let mut st = state.lock().await;
        st.renewals += 1;
        let value = lease_value(&st.what, st.renewals);
        let n = st
            .db
            .exec(
                "UPDATE sr_meta SET v = ? WHERE k = ? AND v = ?",
                &[value.as_str().into(), LEASE.into(), st.value.as_str().into()],
            )
            .await;
        match n {
            Ok(1) => st.value = value,
            Ok(_) => {
                st.lost = true;
                return;
            }
            // A database hiccup: try again at the next round, well before it goes stale.
            Err(e) => tracing::warn!(error = %e, "renewing the encryption lease failed"),
        }
    }
}

/// `TIME|RENEWALS|WHAT, pid PID on HOST`
fn lease_value(what: &str, renewals: u64) -> String {
    let (pid, host) = (std::process::id(), hostname());
    format!("{}|{renewals}|{what}, pid {pid} on {host}", strongroom_core::now_secs())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Whether the lease was taken by a process of this machine that has ended
/// (a killed command need not block the next one for the whole stale time).
fn holder_is_gone(value: &str) -> bool {
    let Some((pid, host)) = value.rsplit_once(", pid ").and_then(|(_, r)| r.split_once(" on "))
    else {
        return false;
    };
    host == hostname()
        && !host.is_empty()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}
