//! Small helpers shared by the services.

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A fresh, never reused entity tag (16 hex characters of randomness).
pub fn new_etag() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}
