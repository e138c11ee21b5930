//! Where shares appear, and what they allow right now.
//!
//! A recipient sees each share it received as a folder or file (a "mount")
//! in its share folder (`Policy::share_folder` when that folder exists in
//! its tree, else its root). A path below a mount names a node of the
//! owner's tree: the mount's base path there followed by the rest. Every
//! lookup re-reads the share and applies [`Shares::effective`].

use std::collections::{HashMap, HashSet};

use strongroom_store::Val;

use super::{COLUMNS, GROUP, LINK, Policy, Share, Shares, USER};
use crate::{
    Error,
    access::{Grant, Recheck, StillAllowed, perm},
    error::Result,
    files::{Node, NodeKind},
    now_secs,
    path::TreePath,
    users::User,
};

/// A share as it appears in a recipient's tree.
#[derive(Debug, Clone)]
pub struct Mount {
    pub share: Share,
    pub grant: Grant,
    pub owner: User,
    /// The shared node, as it is now in the owner's tree.
    pub node: Node,
    /// The node's path in the owner's tree.
    pub base: TreePath,
    /// The mount point in the recipient's tree.
    pub at: TreePath,
}

/// A path of a user's tree, resolved through the mounts.
#[derive(Debug, Clone)]
pub struct Located {
    /// Whose tree the path lies in.
    pub owner: User,
    /// The path in that tree.
    pub path: TreePath,
    /// Set when the path lies in a mount.
    pub mount: Option<Mount>,
}

/// A public link that may be used now.
#[derive(Debug, Clone)]
pub struct PublicLink {
    pub share: Share,
    pub grant: Grant,
    pub owner: User,
    pub node: Node,
    pub base: TreePath,
}

/// An SQL expression that is `user_id` (an account's id, a column of the
/// enclosing query) when that account receives a user or group share, NULL
/// when [`Shares::mounts`] would find none. Left shares and shares of one's
/// own nodes count: they only spare a lookup where there is nothing at all.
/// The id rather than a literal 1: PostgreSQL would type that as a 4-byte
/// integer, the id column is 8 bytes on every database.
pub(crate) fn receives_shares_sql(user_id: &str) -> String {
    format!(
        "CASE WHEN EXISTS (SELECT 1 FROM shares rs WHERE rs.share_type = {USER} \
         AND rs.recipient_user = {user_id}) OR EXISTS (SELECT 1 FROM group_members rm \
         JOIN shares rs ON rs.recipient_group = rm.group_id WHERE rm.user_id = {user_id} \
         AND rs.share_type = {GROUP}) THEN {user_id} END"
    )
}

/// The `shares` columns prefixed with a table alias.
pub(super) fn columns(alias: &str) -> String {
    crate::util::prefixed(alias, COLUMNS)
}

impl Shares {
    /// The permissions `share` gives now, or `None` when it gives nothing:
    /// expired (by its date or by the policy's enforced maximum), refused by
    /// the current policy, or reshared through a share that no longer holds.
    pub async fn effective(&self, share: &Share, policy: &Policy) -> Result<Option<u32>> {
        let now = now_secs();
        let mut perms = share.permissions;
        let mut cur = share.clone();
        for _ in 0..16 {
            if !self.valid(&cur, policy, now).await? {
                return Ok(None);
            }
            perms &= cur.permissions;
            let Some(via) = cur.via_share else {
                if !policy.allow_resharing {
                    perms &= !perm::SHARE;
                }
                if share.is_link() && !policy.allow_public_upload {
                    perms &= !(perm::CREATE | perm::UPDATE | perm::DELETE);
                }
                return Ok((perms & (perm::READ | perm::CREATE) != 0).then_some(perms));
            };
            if !policy.allow_resharing {
                return Ok(None);
            }
            // The resharer must still receive what it reshared.
            match self.get(via).await? {
                Some(s) if self.receives(cur.sharer_id, &s).await? => cur = s,
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Whether `share` gives anything now: [`Shares::effective`], and its
    /// node still in the owner's live tree (not in the trash, not purged).
    pub async fn usable(&self, share: &Share, policy: &Policy) -> Result<bool> {
        if self.effective(share, policy).await?.is_none() {
            return Ok(false);
        }
        let Some(owner) = self.users.get_by_id(share.owner_id).await? else { return Ok(false) };
        Ok(self.live_node(&owner, share.node_id).await?.is_some())
    }

    /// Whether user `user_id` is a recipient of `share` now (named in a user
    /// share, or a member of the group of a group share it has not left).
    async fn receives(&self, user_id: i64, share: &Share) -> Result<bool> {
        Ok(match share.share_type {
            USER => share.recipient_user == Some(user_id),
            GROUP => {
                let row = self
                    .db
                    .row(
                        "SELECT 1 FROM group_members m WHERE m.group_id = ? AND m.user_id = ? AND NOT EXISTS \
                         (SELECT 1 FROM share_left l WHERE l.share_id = ? AND l.user_id = ?)",
                        &[share.recipient_group.unwrap_or(0).into(), user_id.into(), share.id.into(), user_id.into()],
                    )
                    .await?;
                row.is_some()
            }
            _ => false,
        })
    }

    /// One share's own conditions, without the chain it was reshared through.
    async fn valid(&self, s: &Share, policy: &Policy, now: i64) -> Result<bool> {
        if Shares::effective_expiry(s, policy).is_some_and(|e| now >= e) {
            return Ok(false);
        }
        let sharer_groups = self.users.groups_of(s.sharer_id).await?;
        if !policy.may_share(&sharer_groups) {
            return Ok(false);
        }
        Ok(match s.share_type {
            LINK => {
                policy.may_link(&sharer_groups)
                    && (!policy.enforce_links_password || s.password_hash.is_some())
            }
            GROUP => {
                let Some(gid) = s.recipient_group else { return Ok(false) };
                let row =
                    self.db.row("SELECT gid FROM user_groups WHERE id = ?", &[gid.into()]).await?;
                let Some(name) = row.map(|r| r.str(0)).transpose()? else { return Ok(false) };
                policy.allow_group_sharing
                    && (!policy.only_share_with_group_members
                        || sharer_groups.iter().any(|g| g.eq_ignore_ascii_case(&name)))
            }
            USER => {
                let Some(r) = s.recipient_user else { return Ok(false) };
                if !policy.only_share_with_group_members {
                    return Ok(true);
                }
                let theirs = self.users.groups_of(r).await?;
                sharer_groups.iter().any(|g| theirs.iter().any(|t| t.eq_ignore_ascii_case(g)))
            }
            _ => false,
        })
    }

    /// The node a share points at and its path in the owner's live tree;
    /// `None` when it is gone or in the trash.
    pub(crate) async fn live_node(
        &self,
        owner: &User,
        node_id: i64,
    ) -> Result<Option<(Node, TreePath)>> {
        let mut db = self.db.clone();
        crate::files::live_node(&mut db, owner, node_id).await
    }

    /// The folder of `user`'s tree where received shares appear.
    pub async fn share_folder(&self, user: &User, policy: &Policy) -> Result<TreePath> {
        let wanted = TreePath::from_segments(policy.share_folder.split('/'))?;
        if wanted.is_root() {
            return Ok(wanted);
        }
        let mut db = self.db.clone();
        Ok(match crate::files::find(&mut db, user, &wanted).await? {
            Some(n) if n.kind == NodeKind::Folder => wanted,
            _ => TreePath::root(),
        })
    }

    /// The shares `user` receives that hold now, one mount per shared node
    /// (the permissions of several shares of one node add up), named after
    /// the share's target, with " (2)", " (3)"… where a name is taken.
    pub async fn mounts(&self, user: &User) -> Result<Vec<Mount>> {
        if user.receives_shares == Some(false) {
            return Ok(Vec::new());
        }
        // Every request into a tree asks this; its text is built once.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let s = columns("s");
            format!(
                "SELECT {s} FROM shares s WHERE s.share_type = ? AND s.recipient_user = ? \
                 UNION ALL SELECT {s} FROM shares s JOIN group_members m ON m.group_id = s.recipient_group \
                 WHERE s.share_type = ? AND m.user_id = ? AND NOT EXISTS \
                 (SELECT 1 FROM share_left l WHERE l.share_id = s.id AND l.user_id = ?)"
            )
        });
        let args: Vec<Val> =
            vec![USER.into(), user.id.into(), GROUP.into(), user.id.into(), user.id.into()];
        let rows = self.db.rows(&SQL, &args).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut shares: Vec<Share> = rows.iter().map(Share::from_row).collect::<Result<_>>()?;
        shares.sort_by_key(|s| s.id);
        let policy = self.policy().await?;
        let mut by_node: HashMap<i64, Mount> = HashMap::new();
        let mut order = Vec::new();
        for share in shares {
            if share.owner_id == user.id {
                continue;
            }
            let Some(perms) = self.effective(&share, &policy).await? else { continue };
            if let Some(m) = by_node.get_mut(&share.node_id) {
                m.grant.perms |= perms;
                continue;
            }
            let Some(owner) = self.users.get_by_id(share.owner_id).await? else { continue };
            let Some((node, base)) = self.live_node(&owner, share.node_id).await? else { continue };
            let recheck =
                self.recheck(Again::Mount { user: user.clone(), node_id: node.id, perms });
            let grant = Grant {
                share_id: share.id,
                perms,
                root_id: node.id,
                hide_download: false,
                recheck,
            };
            order.push(share.node_id);
            let at = TreePath::root();
            by_node.insert(share.node_id, Mount { share, grant, owner, node, base, at });
        }
        let folder = self.share_folder(user, &policy).await?;
        let mut mounts: Vec<Mount> =
            order.into_iter().filter_map(|id| by_node.remove(&id)).collect();
        let mut taken = self.own_names(user, &folder, &mounts).await?;
        for m in &mut mounts {
            let name = free_name(&m.share.target, &mut taken);
            m.at = folder.join(&name)?;
        }
        Ok(mounts)
    }

    /// Names in `user`'s share folder that the mounts' targets would collide with.
    async fn own_names(
        &self,
        user: &User,
        folder: &TreePath,
        mounts: &[Mount],
    ) -> Result<HashSet<String>> {
        let mut db = self.db.clone();
        let Some(parent) = crate::files::find(&mut db, user, folder).await? else {
            return Ok(HashSet::new());
        };
        let parent = parent.id;
        let mut taken = HashSet::new();
        let targets: Vec<&str> = mounts.iter().map(|m| m.share.target.as_str()).collect();
        for chunk in targets.chunks(200) {
            let sql = format!(
                "SELECT name FROM nodes WHERE parent_id = ? AND name IN ({})",
                strongroom_store::placeholders(chunk.len())
            );
            let mut args: Vec<Val> = vec![parent.into()];
            args.extend(chunk.iter().map(|t| Val::Str((*t).to_owned())));
            for r in db.rows(&sql, &args).await? {
                taken.insert(r.str(0)?);
            }
        }
        Ok(taken)
    }

    /// Resolves a path of `user`'s tree: into a mount when it lies in one,
    /// else in the user's own tree.
    pub async fn locate(&self, user: &User, path: &TreePath) -> Result<Located> {
        if !path.is_root() {
            for m in self.mounts(user).await? {
                if path.starts_with(&m.at) {
                    let path = path.rebase(&m.at, &m.base);
                    return Ok(Located { owner: m.owner.clone(), path, mount: Some(m) });
                }
            }
        }
        Ok(Located { owner: user.clone(), path: path.clone(), mount: None })
    }

    /// The mount through which `user` reaches node `node_id` of someone
    /// else's tree (the node itself or one of its folders is shared with them).
    pub async fn mount_of_node(&self, user: &User, node_id: i64) -> Result<Option<Mount>> {
        let mounts = self.mounts(user).await?;
        if mounts.is_empty() {
            return Ok(None);
        }
        let mut db = self.db.clone();
        let mut at = crate::files::fetch_node(&mut db, node_id).await?;
        while let Some(n) = at {
            if let Some(m) = mounts.iter().find(|m| m.node.id == n.id) {
                return Ok(Some(m.clone()));
            }
            at = match n.parent_id {
                Some(p) => crate::files::fetch_node(&mut db, p).await?,
                None => None,
            };
        }
        Ok(None)
    }

    /// The public link with this token, when it may be used now. Unknown,
    /// expired and policy-refused links are all `None`: a visitor learns
    /// nothing about which.
    pub async fn link(&self, token: &str) -> Result<Option<PublicLink>> {
        if token.is_empty() || token.len() > 64 {
            return Ok(None);
        }
        let Some(share) = self.by_token(token).await? else { return Ok(None) };
        let policy = self.policy().await?;
        let Some(perms) = self.effective(&share, &policy).await? else { return Ok(None) };
        let Some(owner) = self.users.get_by_id(share.owner_id).await? else { return Ok(None) };
        let Some((node, base)) = self.live_node(&owner, share.node_id).await? else {
            return Ok(None);
        };
        // A file can only be read (or replaced, with update).
        let perms =
            if node.kind == NodeKind::File { perms & (perm::READ | perm::UPDATE) } else { perms };
        if perms & (perm::READ | perm::CREATE) == 0 {
            return Ok(None);
        }
        let recheck = self.recheck(Again::Link { token: token.to_owned(), perms });
        let grant = Grant {
            share_id: share.id,
            perms,
            root_id: node.id,
            hide_download: share.hide_download,
            recheck,
        };
        Ok(Some(PublicLink { share, grant, owner, node, base }))
    }

    /// Share types on each of `node_ids` (for `oc:share-types`), counting only
    /// shares made by `sharer_id`, as Nextcloud shows them.
    pub async fn types_on(
        &self,
        sharer_id: i64,
        node_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<i64>>> {
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        for s in self.on_nodes(node_ids).await? {
            if s.sharer_id != sharer_id {
                continue;
            }
            let list = out.entry(s.node_id).or_default();
            if !list.contains(&s.share_type) {
                list.push(s.share_type);
            }
        }
        Ok(out)
    }
}

/// What to look up again to see whether a grant still holds.
enum Again {
    Mount { user: User, node_id: i64, perms: u32 },
    Link { token: String, perms: u32 },
}

struct StillShared {
    shares: Shares,
    again: Again,
}

impl StillAllowed for StillShared {
    fn still_allowed(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + '_>> {
        Box::pin(async move {
            const WRITE: u32 = perm::UPDATE | perm::CREATE | perm::DELETE;
            let (now, before) = match &self.again {
                Again::Mount { user, node_id, perms } => {
                    let mounts = self.shares.mounts(user).await?;
                    (mounts.iter().find(|m| m.node.id == *node_id).map(|m| m.grant.perms), *perms)
                }
                Again::Link { token, perms } => {
                    (self.shares.link(token).await?.map(|l| l.grant.perms), *perms)
                }
            };
            match now {
                Some(p) if p & before & WRITE == before & WRITE => Ok(()),
                _ => Err(Error::Forbidden(
                    "the share ended or changed while the upload was running".into(),
                )),
            }
        })
    }
}

impl Shares {
    fn recheck(&self, again: Again) -> Option<Recheck> {
        Some(Recheck(std::sync::Arc::new(StillShared { shares: self.clone(), again })))
    }
}

/// `name`, or `name (2)`, `name (3)`… when taken; records the name chosen.
pub fn free_name(name: &str, taken: &mut HashSet<String>) -> String {
    let mut candidate = name.to_owned();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = crate::util::numbered(name, n);
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_names_count_up_before_the_extension() {
        let mut taken: HashSet<String> = ["a.txt".to_owned(), "a (2).txt".to_owned()].into();
        assert_eq!(free_name("a.txt", &mut taken), "a (3).txt");
        assert_eq!(free_name("Folder", &mut taken), "Folder");
        assert_eq!(free_name("Folder", &mut taken), "Folder (2)");
        assert_eq!(free_name(".profile", &mut taken), ".profile");
    }
}
