//! A password verified on a connection a moment ago is taken again there
//! without its queries.
//!
//! A sync client sends every request of a sync on one keep-alive connection
//! with the same app password, and looking the token and its account up was
//! a fifth of a small GET's instructions (`bench/callgrind-request`: 150,455
//! with the lookup, 119,008 without) and about a tenth of its CPU time
//! (`bench/cpu-per-get`; see bench/README.md). A client sending the account
//! password itself (a script, a WebDAV mount) costs more: the app-password
//! lookup that finds nothing, the account, the cache of verified passwords
//! and whether the account must use a second factor. Only reads (GET, HEAD,
//! OPTIONS, PROPFIND) remember, and only reads are let in by what was
//! remembered: a request that may write would mostly make it stale by its
//! own commit, and is always checked against the database as it is. What a
//! connection remembers is used again only while all of these hold:
//! - the `Authorization` header is byte for byte the one verified (compared
//!   in constant time: behind a reverse proxy one connection carries the
//!   requests of many users);
//! - this process has committed nothing since the lookup began
//!   ([`strongroom_store::ChangeMark`]). Revoking or wiping a device,
//!   disabling an account, changing its password, quota or groups, making
//!   it use a second factor, sharing with it: done through the server, each
//!   commits, so it takes effect on the next request as before. The mark is
//!   taken before the lookup, which is the request's first read (its SQLite
//!   read snapshot begins there), so a commit the lookup did not see
//!   changes it;
//! - the lookup began less than [`HOLD`] ago: what another process changes
//!   (the command line writes to the database directly) leaves no trace
//!   that could be looked at without a system call, which cost what the
//!   lookup saves (a `statx` of the WAL file per request took the gain
//!   away), so it is seen within that time. Nextcloud keeps verified tokens
//!   in its cache for ten seconds.
//!
//! PostgreSQL and MySQL have no mark (several nodes share them, and the
//! others' writes are what matters), so there every request looks its
//! password up.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use http::HeaderValue;
use subtle::ConstantTimeEq;

/// How long a verified password is taken again without a lookup,
/// counted from the start of the lookup.
const HOLD: Duration = strongroom_core::tokens::VERIFIED_HOLD;

/// What one connection remembers of its last verified password: in the
/// server who it authenticated (`T`), with the database's
/// [`strongroom_store::ChangeMark`] (`M`).
pub struct Recalled<T, M>(Mutex<Option<Verified<T, M>>>);

struct Verified<T, M> {
    header: HeaderValue,
    at: Instant,
    mark: M,
    what: T,
}

impl<T, M> Default for Recalled<T, M> {
    fn default() -> Self {
        Recalled(Mutex::new(None))
    }
}

impl<T: Clone, M: PartialEq> Recalled<T, M> {
    /// What was verified for `header` on this connection, while still good
    /// with the database's mark now `mark` (see the module's note).
    pub fn get(&self, header: &HeaderValue, mark: &M) -> Option<T> {
        self.get_at(header, mark, Instant::now())
    }

    fn get_at(&self, header: &HeaderValue, mark: &M, now: Instant) -> Option<T> {
        let slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let v = slot.as_ref()?;
        let same: bool = v.header.as_bytes().ct_eq(header.as_bytes()).into();
        let fresh = now.saturating_duration_since(v.at) < HOLD && v.mark == *mark;
        (same && fresh).then(|| v.what.clone())
    }

    /// Remembers a verification whose lookup began at `at`, with the
    /// database's mark at `mark`.
    pub fn put(&self, header: &HeaderValue, mark: M, at: Instant, what: T) {
        let v = Verified { header: header.clone(), at, mark, what };
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_header_with_nothing_committed_within_the_hold_is_recalled() {
        let r = Recalled::default();
        let header = HeaderValue::from_static("Basic dTphYmNkZWY=");
        assert_eq!(r.get(&header, &7), None, "nothing verified yet");
        r.put(&header, 7, Instant::now(), "alice");
        assert_eq!(r.get(&header, &7), Some("alice"));
        let other = HeaderValue::from_static("Basic dTphYmNkZWc=");
        assert_eq!(r.get(&other, &7), None, "another password");
        assert_eq!(r.get(&HeaderValue::from_static("Basic"), &7), None, "a prefix of it");
        assert_eq!(r.get(&header, &8), None, "a write was committed since");
        let later = Instant::now() + HOLD;
        assert_eq!(r.get_at(&header, &7, later), None, "held too long");
        r.put(&other, 8, Instant::now(), "bob");
        assert_eq!(r.get(&header, &8), None, "one password per connection");
        assert_eq!(r.get(&other, &8), Some("bob"));
    }
}
