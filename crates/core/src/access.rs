//! The one door: every operation on a node of the file tree asks [`authorize`]
//! whether this principal may perform it, and nothing reaches content otherwise.
//!
//! The checks are applied in a fixed order:
//! 1. a request that reaches the tree through a share carries a [`Grant`]
//!    (made by `sharing::Shares`, which has already checked that the share
//!    exists, is not expired, passed its password and is allowed by the
//!    current policy); only the grant's permissions count then, even for the
//!    owner, so an owner using a read-only link is read-only too;
//! 2. otherwise only the owner reaches a tree.
//!
//! Team-folder ACLs and the admin's access-control rules slot in after these.
//! The grant confines a request to the shared subtree by construction: the
//! protocol layers build every path as the share root's path followed by
//! names that passed [`crate::TreePath`] (no `..`), so nothing above the
//! share root can be named.

use crate::error::Error;

/// Who is asking: an authenticated, enabled account, or a public link.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The account's id; for a public link the negated share id, so no
    /// account matches it and locks taken through two links never mix.
    pub user_id: i64,
    /// The account's uid, or `link:<share id>` for a public link (for logs).
    pub uid: String,
}

impl Principal {
    /// Whether an account (not a link's visitor) is asking.
    pub fn is_account(&self) -> bool {
        self.user_id > 0
    }

    /// The visitor of a public link: nobody's account.
    pub fn public_link(share_id: i64) -> Principal {
        debug_assert!(share_id > 0);
        Principal { user_id: -share_id, uid: format!("link:{share_id}") }
    }
}

/// Nextcloud's share permission bits.
pub mod perm {
    pub const READ: u32 = 1;
    pub const UPDATE: u32 = 2;
    pub const CREATE: u32 = 4;
    pub const DELETE: u32 = 8;
    pub const SHARE: u32 = 16;
    pub const ALL: u32 = 31;
}

/// Access to someone's tree through a share, already validated.
#[derive(Debug, Clone)]
pub struct Grant {
    pub share_id: i64,
    /// Effective permissions: the share's, masked by the current policy.
    pub perms: u32,
    /// The shared node.
    pub root_id: i64,
    /// Content may be shown but not downloaded (public links only).
    pub hide_download: bool,
    /// Asks again, just before a long write commits, whether the share
    /// still allows it: an upload may outlast the share that let it start.
    pub recheck: Option<Recheck>,
}

/// A way to validate a grant again (see [`Grant::recheck`]).
#[derive(Clone)]
pub struct Recheck(pub std::sync::Arc<dyn StillAllowed>);

impl std::fmt::Debug for Recheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recheck")
    }
}

/// Implemented by the sharing service for each kind of grant.
pub trait StillAllowed: Send + Sync {
    /// `Ok` when the grant still gives at least the write permissions it
    /// gave; `Err(Forbidden)` otherwise.
    fn still_allowed(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send + '_>>;
}

impl Grant {
    pub fn has(&self, bit: u32) -> bool {
        self.perms & bit == bit
    }

    /// File drop: may add files, but see nothing.
    pub fn is_drop_only(&self) -> bool {
        !self.has(perm::READ) && self.has(perm::CREATE)
    }
}

/// What is being done to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Read one node's metadata.
    Stat,
    /// List a folder's children.
    List,
    /// Read file content.
    Read,
    /// Change content or properties of an existing node.
    Write,
    /// Create a new node inside a folder.
    Create,
    /// Delete, or move away.
    Delete,
    /// Take or release a WebDAV lock.
    Lock,
}

/// Decides whether `who` may perform `op` on a node in the tree of `owner_id`,
/// reached through `grant` when it came through a share. Refusals name no
/// detail that would reveal what exists in someone else's tree.
pub fn authorize(
    who: &Principal,
    op: Op,
    owner_id: i64,
    grant: Option<&Grant>,
) -> Result<(), Error> {
    if let Some(g) = grant {
        let needed = match op {
            // A file drop sees the folder it drops into, and nothing else
            // (the protocol layers never list or stat its children).
            Op::Stat => perm::READ | perm::CREATE,
            Op::List | Op::Read => perm::READ,
            Op::Write | Op::Lock => perm::UPDATE,
            Op::Create => perm::CREATE,
            Op::Delete => perm::DELETE,
        };
        let ok = if op == Op::Stat { g.perms & needed != 0 } else { g.has(needed) };
        if ok {
            return Ok(());
        }
        tracing::info!(user = %who.uid, share = g.share_id, ?op, "refused by the share's permissions");
        return Err(if g.has(perm::READ) {
            Error::Forbidden("the share does not permit this".into())
        } else {
            Error::NotFound
        });
    }
    if who.user_id == owner_id {
        return Ok(());
    }
    tracing::info!(user = %who.uid, ?op, "access denied to another user's tree");
    Err(Error::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_OPS: [Op; 7] =
        [Op::Stat, Op::List, Op::Read, Op::Write, Op::Create, Op::Delete, Op::Lock];

    fn grant(perms: u32) -> Grant {
        Grant { share_id: 9, perms, root_id: 5, hide_download: false, recheck: None }
    }

    #[test]
    fn only_the_owner_reaches_a_tree() {
        let alice = Principal { user_id: 1, uid: "alice".into() };
        assert!(authorize(&alice, Op::Read, 1, None).is_ok());
        for op in ALL_OPS {
            assert!(matches!(authorize(&alice, op, 2, None), Err(Error::NotFound)));
        }
    }

    #[test]
    fn a_grant_allows_exactly_its_bits_even_for_the_owner() {
        let owner = Principal { user_id: 2, uid: "bob".into() };
        let read = grant(perm::READ);
        for op in ALL_OPS {
            let ok = authorize(&owner, op, 2, Some(&read)).is_ok();
            assert_eq!(ok, matches!(op, Op::Stat | Op::List | Op::Read), "{op:?}");
        }
        let all = grant(perm::ALL);
        assert!(ALL_OPS.iter().all(|op| authorize(&owner, *op, 2, Some(&all)).is_ok()));
    }

    #[test]
    fn a_file_drop_stats_and_creates_only_and_is_told_nothing() {
        let link = Principal::public_link(9);
        assert!(link.user_id < 0 && !link.is_account());
        let drop = grant(perm::CREATE);
        assert!(drop.is_drop_only());
        for op in ALL_OPS {
            let r = authorize(&link, op, 2, Some(&drop));
            match op {
                Op::Stat | Op::Create => assert!(r.is_ok(), "{op:?}"),
                _ => assert!(matches!(r, Err(Error::NotFound)), "{op:?}"),
            }
        }
    }
}
