//! The one door: every operation on a node of the file tree asks [`authorize`]
//! whether this principal may perform it, and nothing reaches content otherwise.
//!
//! The checks are applied in a fixed order: ownership now; shares, team-folder
//! ACLs and the admin's access-control rules slot in after it as they arrive.

use crate::error::Error;

/// Who is asking: an authenticated, enabled account.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub uid: String,
}

/// What is being done to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Read metadata or list a folder.
    Stat,
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

/// Decides whether `who` may perform `op` on a node in the tree of `owner_id`.
/// Refusals name no detail that would reveal what exists in someone else's tree.
pub fn authorize(who: &Principal, op: Op, owner_id: i64) -> Result<(), Error> {
    if who.user_id == owner_id {
        return Ok(());
    }
    tracing::info!(user = %who.uid, ?op, "access denied to another user's tree");
    Err(Error::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_reaches_a_tree() {
        let alice = Principal { user_id: 1, uid: "alice".into() };
        assert!(authorize(&alice, Op::Read, 1).is_ok());
        for op in [Op::Stat, Op::Read, Op::Write, Op::Create, Op::Delete, Op::Lock] {
            assert!(matches!(authorize(&alice, op, 2), Err(Error::NotFound)));
        }
    }
}
