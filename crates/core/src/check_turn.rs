//! One password check at a time for the same login and password.
//!
//! A client that opens several connections with the account password (rclone,
//! nc_py_api, a script) sends them all at once when its verified password
//! has left the cache ([`crate::Users::verify_cached`], two minutes): each
//! ran Argon2 (two at a time) and each counted as an attempt for the
//! brute-force throttle before it ran, so eight connections waited for four
//! rounds of Argon2 and the throttle's delays (a GET took 1.5 s, where
//! cached it takes a fraction of a millisecond). Now the first check runs
//! and the others wait for it, then find its result in the cache. When it
//! found the password wrong, the waiting checks go ahead together, as
//! before: in turn, each would wait out the throttle's delay after the one
//! before it. Checks of other passwords do not wait for each other.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::OwnedMutexGuard;

use crate::secret::Secret;

/// How many entries the map may hold before those nobody holds are dropped.
const PRUNE_AT: usize = 1024;

/// Held by the check running; true once a check of the pair has failed.
type Turn = Arc<tokio::sync::Mutex<bool>>;

/// The checks in progress, by a keyed digest of login and password (the
/// secret itself is never kept).
pub(crate) struct CheckTurns {
    key: [u8; 32],
    turns: Mutex<HashMap<[u8; 32], Turn>>,
}

/// The right to check one login and password; the next waiting check of the
/// same pair goes on when this is dropped.
pub struct CheckTurn<'a> {
    turns: &'a CheckTurns,
    digest: [u8; 32],
    turn: Turn,
    held: Option<OwnedMutexGuard<bool>>,
}

impl CheckTurn<'_> {
    /// Whether a check of the same login and password failed before this
    /// turn came: then this check need not keep the others waiting.
    pub fn earlier_failed(&self) -> bool {
        self.held.as_deref().copied().unwrap_or(true)
    }

    /// Records that this check failed, for the checks waiting.
    pub fn failed(&mut self) {
        if let Some(held) = self.held.as_mut() {
            **held = true;
        }
    }

    /// Lets the next waiting check go on now.
    pub fn release(&mut self) {
        drop(self.held.take());
    }
}

impl CheckTurns {
    pub(crate) fn new() -> CheckTurns {
        CheckTurns { key: rand::random(), turns: Mutex::new(HashMap::new()) }
    }

    /// Waits until no other check of `login` and `password` is running.
    pub(crate) async fn take(&self, login: &str, password: &Secret) -> CheckTurn<'_> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key size");
        mac.update(login.to_lowercase().as_bytes());
        mac.update(&[0]);
        mac.update(password.expose().as_bytes());
        let digest: [u8; 32] = mac.finalize().into_bytes().into();
        let turn = {
            let mut turns = self.lock();
            // A check dropped while it waited (its client hung up) just as
            // the one before it ended leaves an entry nobody holds.
            if turns.len() >= PRUNE_AT {
                turns.retain(|_, t| Arc::strong_count(t) > 1);
            }
            turns.entry(digest).or_default().clone()
        };
        let held = turn.clone().lock_owned().await;
        CheckTurn { turns: self, digest, turn, held: Some(held) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Turn>> {
        self.turns.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for CheckTurn<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut turns = self.turns.lock();
        // The map's reference and ours: nobody else holds or awaits the turn.
        // Waiters clone under the map's lock, so none can appear meanwhile.
        if Arc::strong_count(&self.turn) == 2 {
            turns.remove(&self.digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn checks_of_one_password_wait_for_each_other_others_do_not() {
        let turns = Arc::new(CheckTurns::new());
        let pw = Secret::new("correct horse");
        let first = turns.take("alice", &pw).await;
        // The same login (in any case) and password waits.
        let (t, p) = (turns.clone(), pw.clone());
        let waiting = tokio::spawn(async move {
            let _second = t.take("ALICE", &p).await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        // Another password, or another login, does not.
        let other = Secret::new("wrong");
        let quick = tokio::time::timeout(Duration::from_secs(1), turns.take("alice", &other));
        drop(quick.await.expect("another password waited"));
        let quick = tokio::time::timeout(Duration::from_secs(1), turns.take("bob", &pw));
        drop(quick.await.expect("another login waited"));
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), waiting).await.unwrap().unwrap();
        // Nothing is left behind once every check is done.
        assert_eq!(turns.len(), 0);
    }

    #[tokio::test]
    async fn after_a_failed_check_the_waiting_ones_know() {
        let turns = CheckTurns::new();
        let pw = Secret::new("guess");
        let mut first = turns.take("alice", &pw).await;
        assert!(!first.earlier_failed());
        // Two more checks start waiting (each polled once).
        let mut second = std::pin::pin!(turns.take("alice", &pw));
        let mut third = std::pin::pin!(turns.take("alice", &pw));
        let short = Duration::from_millis(20);
        assert!(tokio::time::timeout(short, &mut second).await.is_err());
        assert!(tokio::time::timeout(short, &mut third).await.is_err());
        first.failed();
        drop(first);
        let mut second = second.await;
        assert!(second.earlier_failed());
        // Released at once, the third goes on while the second still checks.
        second.release();
        let third = tokio::time::timeout(Duration::from_secs(1), third).await.unwrap();
        assert!(third.earlier_failed());
        drop((second, third));
        assert_eq!(turns.len(), 0);
    }
}
