//! `strongroom encryption status|enable|disable|encrypt-all|decrypt-all|rotate-master-key`.

use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::json;
use strongroom_core::now_secs;

use super::accounts::audit_detail;
use crate::{
    app::App,
    config::Config,
    encryption::{Lease, Switch},
};

#[derive(Subcommand)]
pub enum EncryptionCommand {
    /// Provider, switch, master keys, and how much content is encrypted.
    Status,
    /// Encrypt all new content from now on (creates a master key if needed).
    Enable,
    /// Store new content in plaintext again; encrypted content stays readable.
    Disable,
    /// Encrypt the existing content. Runs while the server serves; when
    /// interrupted, run it again to continue.
    EncryptAll {
        /// Blobs per database round.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Seconds to wait before the final pass, for uploads that were
        /// finishing under the old setting when the first passes ran.
        #[arg(long, default_value_t = 5)]
        settle_secs: u64,
    },
    /// Decrypt all content (after `disable`). Resumable like encrypt-all.
    DecryptAll {
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 5)]
        settle_secs: u64,
    },
    /// Create a new master key, re-wrap every data key with it (content is not
    /// re-encrypted) and destroy old master keys nothing refers to any more.
    RotateMasterKey {
        /// Seconds to wait after switching, so that running servers (which
        /// re-read the switch every 2 s) and uploads they were finishing use
        /// the new key before old keys are counted and destroyed.
        #[arg(long, default_value_t = 15)]
        settle_secs: u64,
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

/// Twice the servers' re-read interval plus a second: every node has followed
/// a switch by then.
const MIN_SETTLE_SECS: u64 = 5;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl EncryptionCommand {
    fn name(&self) -> &'static str {
        match self {
            EncryptionCommand::Status => "status",
            EncryptionCommand::Enable => "enable",
            EncryptionCommand::Disable => "disable",
            EncryptionCommand::EncryptAll { .. } => "encrypt_all",
            EncryptionCommand::DecryptAll { .. } => "decrypt_all",
            EncryptionCommand::RotateMasterKey { .. } => "rotation",
        }
    }
}

pub async fn run(app: &App, config: &Config, cmd: EncryptionCommand) -> Result<(), String> {
    if let EncryptionCommand::Status = cmd {
        let switch = Switch::load(&app.db).await.map_err(err)?;
        return status(app, &switch, app.files.blob_store().encryption().map(|e| e.as_ref())).await;
    }
    let name = cmd.name();
    let lease = match Lease::take(&app.db, &format!("encryption {name}")).await {
        Ok(l) => l,
        Err(e) => {
            audit_detail(app, &format!("encryption.{name}.failed"), "", json!({"error": e}));
            return Err(e);
        }
    };
    // Follow the switch like a server node, so conversions commit with the
    // current master key.
    crate::encryption::watch(app.db.clone(), app.files.blob_store().clone());
    let result = run_locked(app, config, cmd, &lease).await;
    lease.release().await;
    if let Err(e) = &result {
        audit_detail(app, &format!("encryption.{name}.failed"), "", json!({"error": e}));
    }
    result
}

async fn run_locked(
    app: &App,
    config: &Config,
    cmd: EncryptionCommand,
    lease: &Lease,
) -> Result<(), String> {
    let blobs = app.files.blob_store();
    let enc = blobs.encryption().cloned();
    let need_provider = || {
        enc.clone().ok_or_else(|| {
            "no key provider is configured: set `encryption.key_file` (a path outside the data \
             folder) or `encryption.provider = \"pkcs11\"` with its module, token and PIN"
                .to_string()
        })
    };
    let mut switch = Switch::load(&app.db).await.map_err(err)?;
    match cmd {
        EncryptionCommand::Status => status(app, &switch, enc.as_deref()).await,
        EncryptionCommand::Enable => {
            let enc = need_provider()?;
            let provider = enc.provider();
            let known = provider.masters().map_err(err)?;
            let master = match switch.master.clone().filter(|m| known.contains(m)) {
                Some(m) => m,
                None => {
                    let m = provider.create_master().map_err(err)?;
                    audit_detail(
                        app,
                        "encryption.master_key.created",
                        &m,
                        json!({"provider": provider.describe()}),
                    );
                    m
                }
            };
            switch.enabled = true;
            if switch.check.as_ref().is_none_or(|(m, _)| *m != master) {
                switch.check = Some((master.clone(), enc.make_check(&master).map_err(err)?));
            }
            switch.master = Some(master.clone());
            switch.save(&app.db).await.map_err(err)?;
            audit_detail(
                app,
                "encryption.enabled",
                &master,
                json!({"provider": provider.describe()}),
            );
            out!("encryption is on: new content is sealed with master key {master}");
            out!("run `strongroom encryption encrypt-all` to encrypt existing content");
            Ok(())
        }
        EncryptionCommand::Disable => {
            switch.enabled = false;
            switch.save(&app.db).await.map_err(err)?;
            audit_detail(app, "encryption.disabled", "", serde_json::Value::Null);
            out!("encryption is off for new content; encrypted content stays readable");
            Ok(())
        }
        EncryptionCommand::EncryptAll { batch, settle_secs } => {
            need_provider()?;
            let Some(master) = switch.write_key() else {
                return Err("encryption is off: run `strongroom encryption enable` first".into());
            };
            convert(app, config, Some(&master), batch, settle_secs, lease).await
        }
        EncryptionCommand::DecryptAll { batch, settle_secs } => {
            need_provider()?;
            if switch.enabled {
                return Err("encryption is on: run `strongroom encryption disable` first, or \
                            new uploads would be encrypted again"
                    .into());
            }
            convert(app, config, None, batch, settle_secs, lease).await
        }
        EncryptionCommand::RotateMasterKey { settle_secs, batch } => {
            let enc = need_provider()?;
            rotate(app, &enc, switch, settle_secs, batch, lease).await
        }
    }
}

async fn status(
    app: &App,
    switch: &Switch,
    enc: Option<&strongroom_store::crypt::Encryption>,
) -> Result<(), String> {
    let counts = app.files.blob_counts().await.map_err(err)?;
    out!("encryption: {}", if switch.enabled { "on" } else { "off" });
    out!("current master key: {}", switch.master.as_deref().unwrap_or("none"));
    match enc {
        Some(e) => {
            out!("key provider: {}", e.provider().describe());
            let keys = e.provider().masters().map_err(err)?;
            out!(
                "master keys held: {}",
                if keys.is_empty() { "none".into() } else { keys.join(", ") }
            );
        }
        None => out!("key provider: none configured"),
    }
    out!("plaintext: {} blobs, {} bytes", counts.plain_blobs, counts.plain_bytes);
    for (m, n, bytes) in &counts.sealed {
        out!("encrypted with {m}: {n} blobs, {bytes} bytes");
    }
    Ok(())
}

/// Runs a conversion to the end, printing progress, then once more after
/// `settle_secs` (for uploads that were finishing under the old setting);
/// then deletes the replaced files whose grace period has passed.
async fn convert(
    app: &App,
    config: &Config,
    master: Option<&str>,
    batch: usize,
    settle_secs: u64,
    lease: &Lease,
) -> Result<(), String> {
    let what = if master.is_some() { "encrypt" } else { "decrypt" };
    let counts = app.files.blob_counts().await.map_err(err)?;
    let total: i64 = match master {
        Some(_) => counts.plain_blobs,
        None => counts.sealed.iter().map(|(_, n, _)| n).sum(),
    };
    audit_detail(
        app,
        &format!("encryption.{what}_all.started"),
        master.unwrap_or(""),
        json!({"blobs": total}),
    );
    let started = Instant::now();
    let (mut done, mut bytes) = (0i64, 0i64);
    // Two passes: the second after the settle time, for uploads that were
    // still finishing under the old setting during the first.
    for pass in 0..2 {
        if pass == 1 {
            if settle_secs == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(settle_secs)).await;
        }
        loop {
            let b = app
                .files
                .convert_batch(master, batch.max(1), config.encryption.grace_secs())
                .await
                .map_err(|e| {
                    format!("{what}ion stopped (run the command again to continue): {e}")
                })?;
            if b.found == 0 {
                break;
            }
            lease.check().await?;
            done += b.converted as i64;
            bytes += b.bytes;
            let pct = if total > 0 { (done * 100 / total).min(100) } else { 100 };
            eprintln!("{what}ed {done} of {total} blobs ({pct}%), {} MiB", bytes >> 20);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    audit_detail(
        app,
        &format!("encryption.{what}_all.finished"),
        master.unwrap_or(""),
        json!({"blobs": done, "bytes": bytes}),
    );
    out!("{what}ed {done} blobs ({bytes} bytes) in {secs:.1} s; nothing is left to {what}");
    out!(
        "uploads that started before the switch and are still running land in the old form: \
         check `strongroom encryption status` once they are done, and run this again if needed"
    );
    let purged = app.files.purge_blob_garbage(now_secs()).await.map_err(err)?;
    if config.encryption.grace_secs() > 0 {
        out!(
            "the replaced files are deleted after {} s by the running server (or the next run)",
            config.encryption.grace_secs()
        );
    } else {
        out!("deleted {purged} replaced files");
    }
    Ok(())
}

async fn rotate(
    app: &App,
    enc: &strongroom_store::crypt::Encryption,
    mut switch: Switch,
    settle_secs: u64,
    batch: usize,
    lease: &Lease,
) -> Result<(), String> {
    if settle_secs < MIN_SETTLE_SECS {
        return Err(format!(
            "--settle-secs must be at least {MIN_SETTLE_SECS}: servers re-read the switch every \
             {} s, and a key still in use must not be destroyed",
            crate::encryption::WATCH_EVERY.as_secs()
        ));
    }
    let provider = enc.provider();
    let new = provider.create_master().map_err(err)?;
    audit_detail(
        app,
        "encryption.master_key.created",
        &new,
        json!({"provider": provider.describe()}),
    );
    let old = switch.master.replace(new.clone());
    switch.check = Some((new.clone(), enc.make_check(&new).map_err(err)?));
    switch.retiring.extend(old.clone());
    switch.save(&app.db).await.map_err(err)?;
    audit_detail(app, "encryption.rotation.started", &new, json!({"previous": old}));
    out!("new master key {new}; waiting {settle_secs} s for running servers to switch");
    tokio::time::sleep(Duration::from_secs(settle_secs)).await;
    lease.check().await?;
    let mut total = 0;
    loop {
        let n = app.files.rewrap_batch(&new, batch.max(1)).await.map_err(|e| {
            format!("rotation stopped (run it again; it continues with a newer key): {e}")
        })?;
        if n == 0 {
            // Rows that changed meanwhile are found again; none left means done.
            let left = app.files.blob_counts().await.map_err(err)?;
            if left.sealed.iter().all(|(m, _, _)| *m == new) {
                break;
            }
            continue;
        }
        total += n;
        lease.check().await?;
        eprintln!("re-wrapped {total} data keys");
    }
    audit_detail(app, "encryption.rotation.finished", &new, json!({"rewrapped": total}));
    out!("re-wrapped {total} data keys with {new}; no content was re-encrypted");
    let held = provider.masters().map_err(err)?;
    let mut kept = Vec::new();
    for m in std::mem::take(&mut switch.retiring) {
        let refs = app.files.master_key_refs(&m).await.map_err(err)?;
        if refs > 0 {
            out!("kept master key {m}: {refs} blobs still refer to it");
            kept.push(m);
        } else if held.contains(&m) {
            provider.retire(&m).map_err(err)?;
            audit_detail(app, "encryption.master_key.retired", &m, serde_json::Value::Null);
            out!("retired master key {m}");
        }
    }
    switch.retiring = kept;
    // Re-read the switch: only the retiring list is ours to change here.
    let mut current = Switch::load(&app.db).await.map_err(err)?;
    current.retiring = switch.retiring;
    current.save(&app.db).await.map_err(err)
}
