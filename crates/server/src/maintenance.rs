//! Periodic clean-up: abandoned chunked uploads, expired trash and versions,
//! blob files replaced by an encryption conversion, shares of nodes that
//! no longer exist and file drop records past their hour.
//! Every step is idempotent, so several nodes may run it at the same time.

use std::time::Duration;

use strongroom_core::now_secs;

use crate::{app::App, config::Config};

const DAY: i64 = 86_400;

/// Runs the clean-up now and then every `maintenance.interval_secs`.
pub fn spawn(app: App, config: &Config) {
    let every = Duration::from_secs(config.maintenance.interval_secs);
    let uploads = config.uploads.expire_after_secs as i64;
    let trash_days = config.trash.retention_days as i64;
    let version_days = config.versions.retention_days as i64;
    let per_file = config.versions.max_per_file as usize;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let now = now_secs();
            let files = &app.files;
            report("abandoned uploads", files.uploads_expire(now - uploads).await);
            report("trash items", files.trash_expire(now - trash_days * DAY).await);
            report("versions", files.versions_expire(now - version_days * DAY, per_file).await);
            report("replaced blobs", files.purge_blob_garbage(now).await);
            report("shares of deleted files", app.shares.forget_orphans(now).await);
        }
    });
}

fn report(what: &str, r: Result<usize, strongroom_core::Error>) {
    match r {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "expired {what}"),
        Err(e) => tracing::warn!(error = %e, "expiring {what} failed"),
    }
}
