//! Making and changing shares, with the refusals (status and words) of
//! Nextcloud's sharing API. Every rule is checked on update as on create:
//! a reshare never exceeds what its sharer holds, dates stay within the
//! enforced maximum, links keep an enforced password.

use super::{
    Expiry, GROUP, LINK, Policy, Share, ShareError, Shares, USER,
    dates::{day_start, days, format_date},
};
use crate::{access::perm, files::NodeKind, now_secs, path::TreePath, secret::Secret, users::User};

type Refusal<T> = std::result::Result<T, ShareError>;

/// What a client asks for when it creates a share.
#[derive(Debug, Default)]
pub struct NewShare {
    pub path: Option<String>,
    pub share_type: Option<i64>,
    pub share_with: Option<String>,
    pub permissions: Option<i64>,
    pub public_upload: Option<bool>,
    pub password: Option<Secret>,
    pub expiry: Option<Expiry>,
    pub note: Option<String>,
    pub label: Option<String>,
    pub hide_download: Option<bool>,
}

/// What a client asks to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ShareUpdate {
    pub permissions: Option<i64>,
    pub public_upload: Option<bool>,
    /// An empty password removes it.
    pub password: Option<Secret>,
    pub expiry: Option<Expiry>,
    pub note: Option<String>,
    pub label: Option<String>,
    pub hide_download: Option<bool>,
}

impl ShareUpdate {
    pub fn is_empty(&self) -> bool {
        self.permissions.is_none()
            && self.public_upload.is_none()
            && self.password.is_none()
            && self.expiry.is_none()
            && self.note.is_none()
            && self.label.is_none()
            && self.hide_download.is_none()
    }
}

/// Characters of link tokens: no look-alikes (Nextcloud's alphabet).
const TOKEN_ALPHABET: &[u8] = b"abcdefgijkmnopqrstwxyzABCDEFGHJKLMNPQRSTWXYZ23456789";
const TOKEN_LEN: usize = 15;

fn new_token() -> String {
    (0..TOKEN_LEN)
        .map(|_| TOKEN_ALPHABET[rand::random_range(0..TOKEN_ALPHABET.len())] as char)
        .collect()
}

/// Permissions as the client asked, normalised like Nextcloud does.
fn requested_perms(
    asked: Option<i64>,
    public_upload: Option<bool>,
    link: bool,
    folder: bool,
    policy: &Policy,
) -> Refusal<u32> {
    let mut p = match asked {
        Some(p) if !(0..=perm::ALL as i64).contains(&p) => {
            return Err(ShareError::new(400, "Invalid permissions"));
        }
        Some(p) => p as u32,
        None if link => perm::READ,
        None => policy.default_permissions,
    };
    if link {
        if let Some(up) = public_upload {
            if up && !folder {
                return Err(ShareError::new(
                    400,
                    "Public upload is only possible for publicly shared folders",
                ));
            }
            p = if up {
                perm::READ | perm::UPDATE | perm::CREATE | perm::DELETE
            } else {
                perm::READ
            };
        }
    } else {
        p |= perm::READ;
    }
    if !folder {
        p &= !(perm::CREATE | perm::DELETE);
    }
    if link {
        if p & (perm::READ | perm::CREATE) == 0 {
            return Err(ShareError::new(
                400,
                "Share must at least have READ or CREATE permissions",
            ));
        }
        if p & perm::READ == 0 && p & (perm::UPDATE | perm::DELETE) != 0 {
            return Err(ShareError::new(
                400,
                "Share must have READ permission if UPDATE or DELETE permission is set",
            ));
        }
        if p & (perm::CREATE | perm::UPDATE | perm::DELETE) != 0 && !policy.allow_public_upload {
            return Err(ShareError::new(403, "Public upload disabled by the administrator"));
        }
    }
    if !policy.allow_resharing {
        p &= !perm::SHARE;
    }
    Ok(p)
}

/// The expiry a share gets: what was asked, or the policy's default, within
/// the enforced maximum. Dates compare at 00:00 UTC; today is "in the past".
fn expiry_for(asked: Expiry, link: bool, created: i64, policy: &Policy) -> Refusal<Option<i64>> {
    let today = day_start(now_secs());
    let max = policy.max_days(link).map(|d| day_start(created) + days(d));
    match asked {
        Expiry::Never if max.is_some() => Err(ShareError::new(403, "Expiration date is enforced")),
        Expiry::Never => Ok(None),
        Expiry::Unset => Ok(policy
            .default_days(link)
            .map(|d| today + days(d))
            .map(|t| max.map_or(t, |m| t.min(m)))),
        Expiry::At(t) if t <= today => Err(ShareError::new(404, "Expiration date is in the past")),
        Expiry::At(t) => match (max, policy.max_days(link)) {
            (Some(m), Some(d)) if t > m => Err(ShareError::new(
                404,
                format!("Cannot set expiration date more than {d} day(s) in the future"),
            )),
            _ => Ok(Some(t)),
        },
    }
}

fn check_label(label: &str) -> Refusal<()> {
    if label.len() > 255 {
        return Err(ShareError::new(400, "Maximum label length is 255"));
    }
    Ok(())
}

impl Shares {
    async fn hash_password(&self, sharer: &User, pw: &Secret) -> Refusal<String> {
        crate::password::check(&sharer.uid, pw).map_err(|e| ShareError::new(400, e.to_string()))?;
        Ok(self.users.hash_secret(pw).await?)
    }

    /// Verifies a link's password (Argon2id, on the blocking pool).
    pub async fn check_password(&self, share: &Share, pw: &Secret) -> crate::Result<bool> {
        match &share.password_hash {
            None => Ok(true),
            Some(h) => self.users.verify_secret(h, pw).await,
        }
    }

    /// Creates a share of a node of `sharer`'s tree (own, or received with
    /// the share permission). An identical user or group share is returned
    /// instead of a second one.
    pub async fn create(&self, sharer: &User, req: NewShare) -> Refusal<Share> {
        let policy = self.policy().await?;
        let raw_path = req
            .path
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ShareError::new(404, "Please specify a file or folder path"))?;
        let path = TreePath::from_segments(raw_path.split('/'))
            .map_err(|_| ShareError::new(404, "Wrong path, file/folder does not exist"))?;
        let share_type =
            req.share_type.ok_or_else(|| ShareError::new(400, "Unknown share type"))?;
        if ![USER, GROUP, LINK].contains(&share_type) {
            return Err(ShareError::new(400, "Unknown share type"));
        }
        let link = share_type == LINK;
        let groups = self.users.groups_of(sharer.id).await?;
        if !policy.may_share(&groups) {
            return Err(ShareError::new(403, "Sharing is not allowed for your account"));
        }
        if path.is_root() {
            return Err(ShareError::new(403, "You cannot share your root folder"));
        }
        let at = self.locate(sharer, &path).await?;
        let mut db = self.db.clone();
        let node = crate::files::resolve(&mut db, &at.owner, &at.path)
            .await?
            .and_then(|mut c| c.pop())
            .ok_or_else(|| ShareError::new(404, "Wrong path, file/folder does not exist"))?;
        let name = node.name.clone();
        // What the sharer holds: everything of its own; of a received node,
        // what the share gives, and only with the share permission.
        let (held, via) = match &at.mount {
            None => (perm::ALL, None),
            Some(m) => {
                if !m.grant.has(perm::SHARE) || !policy.allow_resharing {
                    return Err(ShareError::new(
                        404,
                        format!("You are not allowed to share {name}"),
                    ));
                }
                if m.share.share_type == LINK {
                    return Err(ShareError::new(
                        404,
                        format!("You are not allowed to share {name}"),
                    ));
                }
                (m.grant.perms, Some(m.share.id))
            }
        };
        let folder = node.kind == NodeKind::Folder;
        let (recipient_user, recipient_group) = match share_type {
            USER => {
                let with = req.share_with.as_deref().unwrap_or("");
                let r = self.users.get(with).await?.ok_or_else(|| {
                    ShareError::new(404, "Please specify a valid account to share with")
                })?;
                if r.id == sharer.id {
                    return Err(ShareError::new(403, "Cannot share with yourself"));
                }
                if r.id == at.owner.id {
                    return Err(ShareError::new(403, "Cannot share with the owner of the item"));
                }
                if policy.only_share_with_group_members {
                    let theirs = self.users.groups_of(r.id).await?;
                    if !groups.iter().any(|g| theirs.iter().any(|t| t.eq_ignore_ascii_case(g))) {
                        // The words for a missing account: an account one may
                        // not share with is not told to exist.
                        return Err(ShareError::new(
                            404,
                            "Please specify a valid account to share with",
                        ));
                    }
                }
                (Some(r.id), None)
            }
            GROUP => {
                if !policy.allow_group_sharing {
                    return Err(ShareError::new(
                        404,
                        "Group sharing is disabled by the administrator",
                    ));
                }
                let with = req.share_with.as_deref().unwrap_or("");
                let row = self
                    .db
                    .row(
                        "SELECT id, gid FROM user_groups WHERE gid_lower = ?",
                        &[with.to_lowercase().into()],
                    )
                    .await?;
                let Some(row) = row else {
                    return Err(ShareError::new(404, "Please specify a valid group"));
                };
                let gid = row.str(1)?;
                if policy.only_share_with_group_members
                    && !groups.iter().any(|g| g.eq_ignore_ascii_case(&gid))
                {
                    return Err(ShareError::new(404, "Please specify a valid group"));
                }
                (None, Some(row.i64(0)?))
            }
            _ => {
                if !policy.may_link(&groups) {
                    return Err(ShareError::new(
                        404,
                        "Public link sharing is disabled by the administrator",
                    ));
                }
                (None, None)
            }
        };
        let perms = requested_perms(req.permissions, req.public_upload, link, folder, &policy)?;
        if perms & !held != 0 {
            return Err(ShareError::new(404, format!("Cannot increase permissions of {raw_path}")));
        }
        let now = now_secs();
        let expires_at = expiry_for(req.expiry.unwrap_or(Expiry::Unset), link, now, &policy)?;
        let label = req.label.unwrap_or_default();
        check_label(&label)?;
        let password_hash = match req.password.filter(|p| link && !p.expose().is_empty()) {
            Some(pw) => Some(self.hash_password(sharer, &pw).await?),
            None if link && policy.enforce_links_password => {
                return Err(ShareError::new(
                    403,
                    "Passwords are enforced for link and mail shares",
                ));
            }
            None => None,
        };
        let hide = link && req.hide_download.unwrap_or(policy.hide_download_default);
        if !link {
            if let Some(existing) =
                self.same_recipient(node.id, share_type, recipient_user, recipient_group).await?
            {
                return Ok(existing);
            }
        }
        let token = link.then(new_token);
        let mut tx = self.db.begin().await?;
        let id = tx.insert(
            "INSERT INTO shares (share_type, owner_id, sharer_id, node_id, recipient_user, \
             recipient_group, via_share, permissions, token, password_hash, expires_at, label, \
             note, hide_download, target, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                share_type.into(), at.owner.id.into(), sharer.id.into(), node.id.into(),
                recipient_user.into(), recipient_group.into(), via.into(), i64::from(perms).into(),
                token.into(), password_hash.into(), expires_at.into(), label.into(),
                req.note.unwrap_or_default().into(), i64::from(hide).into(), name.into(), now.into(),
            ],
        ).await?;
        tx.commit().await?;
        self.get(id).await?.ok_or_else(|| ShareError::new(500, "the new share vanished"))
    }

    async fn same_recipient(
        &self,
        node_id: i64,
        share_type: i64,
        user: Option<i64>,
        group: Option<i64>,
    ) -> crate::Result<Option<Share>> {
        Ok(self.on_nodes(&[node_id]).await?.into_iter().find(|s| {
            s.share_type == share_type && s.recipient_user == user && s.recipient_group == group
        }))
    }

    /// What `caller` holds of a share's node now: everything when it owns it,
    /// else what its own mount gives (0 when nothing).
    pub async fn held_by(&self, caller: &User, share: &Share) -> crate::Result<u32> {
        if share.owner_id == caller.id {
            return Ok(perm::ALL);
        }
        Ok(match self.mount_of_node(caller, share.node_id).await? {
            Some(m) if m.grant.has(perm::SHARE) => m.grant.perms,
            _ => 0,
        })
    }

    /// Changes a share. Only its sharer or the owner of the node may; the
    /// same rules as on creation hold, against what the sharer holds now.
    pub async fn update(&self, caller: &User, share: &Share, up: ShareUpdate) -> Refusal<Share> {
        if up.is_empty() {
            return Err(ShareError::new(400, "Wrong or no update parameter given"));
        }
        if share.sharer_id != caller.id && share.owner_id != caller.id {
            return Err(ShareError::new(403, "You are not allowed to edit incoming shares"));
        }
        let policy = self.policy().await?;
        let link = share.is_link();
        // What the policy no longer allows cannot be changed either.
        let groups = self.users.groups_of(share.sharer_id).await?;
        if !policy.may_share(&groups) {
            return Err(ShareError::new(403, "Sharing is not allowed for your account"));
        }
        if link && !policy.may_link(&groups) {
            return Err(ShareError::new(
                404,
                "Public link sharing is disabled by the administrator",
            ));
        }
        if share.share_type == GROUP && !policy.allow_group_sharing {
            return Err(ShareError::new(404, "Group sharing is disabled by the administrator"));
        }
        let owner = self
            .users
            .get_by_id(share.owner_id)
            .await?
            .ok_or_else(|| ShareError::new(404, "Wrong share ID, share does not exist"))?;
        let (node, _) = self
            .live_node(&owner, share.node_id)
            .await?
            .ok_or_else(|| ShareError::new(404, "Wrong share ID, share does not exist"))?;
        let folder = node.kind == NodeKind::Folder;
        let sharer = if share.sharer_id == caller.id {
            caller.clone()
        } else {
            self.users.get_by_id(share.sharer_id).await?.unwrap_or_else(|| caller.clone())
        };
        let mut perms = share.permissions;
        if up.permissions.is_some() || up.public_upload.is_some() {
            let asked = up.permissions.or(Some(i64::from(share.permissions)));
            perms = requested_perms(asked, up.public_upload, link, folder, &policy)?;
        }
        let held = self.held_by(&sharer, share).await?;
        if perms & !held != 0 {
            return Err(ShareError::new(
                404,
                format!("Cannot increase permissions of {}", node.name),
            ));
        }
        let expires_at = match up.expiry {
            None | Some(Expiry::Unset) => share.expires_at,
            Some(e) => expiry_for(e, link, share.created_at, &policy).map_err(|e| {
                // Nextcloud answers a bad date on update with 400.
                if e.status == 404 { ShareError::new(400, e.message) } else { e }
            })?,
        };
        let password_hash = match (&up.password, link) {
            (Some(pw), true) if pw.expose().is_empty() => {
                if policy.enforce_links_password {
                    return Err(ShareError::new(
                        403,
                        "Passwords are enforced for link and mail shares",
                    ));
                }
                None
            }
            (Some(pw), true) => Some(self.hash_password(&sharer, pw).await?),
            _ => share.password_hash.clone(),
        };
        let label = match up.label {
            Some(l) if link => {
                check_label(&l)?;
                l
            }
            _ => share.label.clone(),
        };
        let note = up.note.unwrap_or_else(|| share.note.clone());
        let hide = if link { up.hide_download.unwrap_or(share.hide_download) } else { false };
        self.db.exec(
            "UPDATE shares SET permissions = ?, expires_at = ?, password_hash = ?, label = ?, note = ?, hide_download = ? WHERE id = ?",
            &[i64::from(perms).into(), expires_at.into(), password_hash.into(), label.into(), note.into(), i64::from(hide).into(), share.id.into()],
        ).await?;
        // Reshares made through this share never hold more than it does now.
        self.db
            .exec(
                "UPDATE shares SET permissions = permissions & ? WHERE via_share = ?",
                &[i64::from(perms).into(), share.id.into()],
            )
            .await?;
        self.get(share.id)
            .await?
            .ok_or_else(|| ShareError::new(404, "Wrong share ID, share does not exist"))
    }

    /// The expiry date as stored, as the API shows it.
    pub fn expiration_text(share: &Share) -> Option<String> {
        share.expires_at.map(format_date)
    }

    /// The date a share stops working: its own, or sooner the end of the
    /// lifetime the policy enforces now (counted from its creation).
    pub fn effective_expiry(share: &Share, policy: &Policy) -> Option<i64> {
        let enforced =
            policy.max_days(share.is_link()).map(|d| day_start(share.created_at) + days(d));
        match (share.expires_at, enforced) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_normalised_like_nextcloud() {
        let p = Policy::default();
        assert_eq!(requested_perms(None, None, true, true, &p), Ok(1));
        assert_eq!(requested_perms(None, Some(true), true, true, &p), Ok(15));
        assert_eq!(requested_perms(Some(4), None, true, true, &p), Ok(4));
        assert_eq!(requested_perms(Some(31), None, false, false, &p), Ok(19));
        assert_eq!(requested_perms(Some(2), None, false, true, &p), Ok(3));
        assert_eq!(requested_perms(Some(2), None, true, true, &p).unwrap_err().status, 400);
        assert_eq!(requested_perms(Some(0), None, true, true, &p).unwrap_err().status, 400);
        assert_eq!(requested_perms(Some(32), None, false, true, &p).unwrap_err().status, 400);
        assert_eq!(requested_perms(None, Some(true), true, false, &p).unwrap_err().status, 400);
        let closed =
            Policy { allow_public_upload: false, allow_resharing: false, ..Policy::default() };
        assert_eq!(requested_perms(Some(4), None, true, true, &closed).unwrap_err().status, 403);
        assert_eq!(requested_perms(Some(31), None, false, true, &closed), Ok(15));
    }

    #[test]
    fn expiry_within_the_enforced_maximum() {
        let now = now_secs();
        let today = day_start(now);
        let mut p = Policy::default();
        assert_eq!(expiry_for(Expiry::Unset, true, now, &p), Ok(None));
        assert_eq!(expiry_for(Expiry::At(today), true, now, &p).unwrap_err().status, 404);
        assert_eq!(
            expiry_for(Expiry::At(today + days(1)), true, now, &p),
            Ok(Some(today + days(1)))
        );
        p.enforce_link_expire = true;
        p.link_expire_days = 3;
        assert_eq!(expiry_for(Expiry::Unset, true, now, &p), Ok(Some(today + days(3))));
        assert_eq!(expiry_for(Expiry::Never, true, now, &p).unwrap_err().status, 403);
        assert_eq!(expiry_for(Expiry::At(today + days(4)), true, now, &p).unwrap_err().status, 404);
        assert_eq!(expiry_for(Expiry::Never, false, now, &p), Ok(None));
    }
}
