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
