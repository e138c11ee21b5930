//! Small helpers shared by the services.

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The latest time accepted as a modification time: 9999-12-31T23:59:59Z.
pub const MAX_TIME: i64 = 253_402_300_799;

/// A fresh, never reused entity tag (16 hex characters of randomness).
pub fn new_etag() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DDThh:mm:ss` (UTC, without a zone) of a time in seconds since 1970.
pub fn utc_to_the_second(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", t / 3600, t % 3600 / 60, t % 60)
}

/// A JSON value kept in `sr_meta` under `key`, `None` when absent.
pub(crate) async fn read_meta<T: serde::de::DeserializeOwned>(
    db: &strongroom_store::Db,
    key: &str,
) -> crate::Result<Option<T>> {
    let row = db.row("SELECT v FROM sr_meta WHERE k = ?", &[key.into()]).await?;
    let Some(r) = row else { return Ok(None) };
    serde_json::from_str(&r.str(0)?)
        .map(Some)
        .map_err(|e| crate::Error::Internal(format!("the stored {key} is unreadable: {e}")))
}

/// Stores a JSON value in `sr_meta` under `key`, replacing what was there.
pub(crate) async fn write_meta<T: serde::Serialize>(
    db: &strongroom_store::Db,
    key: &str,
    value: &T,
) -> crate::Result<()> {
    let v = serde_json::to_string(value).map_err(|e| crate::Error::Internal(e.to_string()))?;
    let mut tx = db.begin().await?;
    tx.exec("DELETE FROM sr_meta WHERE k = ?", &[key.into()]).await?;
    tx.exec("INSERT INTO sr_meta (k, v) VALUES (?, ?)", &[key.into(), v.into()]).await?;
    tx.commit().await?;
    Ok(())
}

/// `name (n)`, the number before a file name's extension: `a (2).txt`.
pub fn numbered(name: &str, n: u32) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    format!("{stem} ({n}){ext}")
}

/// How many times a transaction that lost a race is tried again.
const RETRIES: u32 = 20;

/// Runs a transactional step until it does not lose a race (`Error::Retry`:
/// deadlock, serialization failure, unique conflict), backing off with jitter.
pub(crate) async fn retry<T, F, Fut>(mut step: F) -> crate::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = crate::Result<T>>,
{
    for attempt in 0..RETRIES {
        match step().await {
            Err(crate::Error::Retry) => {
                let ceiling = 2u64 << attempt.min(6);
                tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(
                    1..=ceiling,
                )))
                .await;
            }
            other => return other,
        }
    }
    Err(crate::Error::Unavailable("too much contention, try again".into()))
}

/// The outcome of bookkeeping that goes with a read (a token's or an
/// account's last use): when the database has no room left, the read goes
/// on without it rather than failing every request of every client.
pub(crate) fn unless_full<T: Default>(r: crate::Result<T>) -> crate::Result<T> {
    match r {
        Err(crate::Error::InsufficientStorage(_)) => Ok(T::default()),
        r => r,
    }
}

/// How many columns a comma-separated column list names, worked out when
/// compiling, so a count kept beside a list cannot drift from it.
pub(crate) const fn column_count(columns: &str) -> usize {
    let bytes = columns.as_bytes();
    let (mut i, mut n) = (0, 1);
    while i < bytes.len() {
        if bytes[i] == b',' {
            n += 1;
        }
        i += 1;
    }
    n
}

/// A comma-separated column list with each column qualified by a table
/// alias: `prefixed("t", "id, name")` is `"t.id, t.name"`.
pub(crate) fn prefixed(alias: &str, columns: &str) -> String {
    columns.split(',').map(|c| format!("{alias}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}
