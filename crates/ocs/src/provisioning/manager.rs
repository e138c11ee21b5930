//! Who may manage whom: admins everyone; a group administrator only the
//! non-admin members of the groups they administer.

use strongroom_core::{User, accounts::ADMIN_GROUP};

use super::fail;
use crate::{Ocs, OcsError};

/// The caller with their administrative reach.
pub struct Manager<'a> {
    pub me: &'a User,
    pub admin: bool,
    /// Groups the caller administers (empty for admins: they need none).
    pub groups: Vec<String>,
    /// The caller's browser session, when the call came through one.
    pub session: Option<i64>,
}

/// A target account with what decides who may manage it.
pub struct Target {
    pub user: User,
    pub groups: Vec<String>,
    pub admin: bool,
}

impl<'a> Manager<'a> {
    pub async fn of(
        ocs: &Ocs,
        me: &'a User,
        session: Option<i64>,
    ) -> Result<Manager<'a>, OcsError> {
        let admin = ocs.users.is_admin(me.id).await.map_err(fail(996))?;
        let groups = if admin {
            Vec::new()
        } else {
            ocs.users.administered_groups(me.id).await.map_err(fail(996))?
        };
        Ok(Manager { me, admin, groups, session })
    }

    /// Admin or administrator of at least one group.
    pub fn is_manager(&self) -> bool {
        self.admin || !self.groups.is_empty()
    }

    pub fn administers(&self, gid: &str) -> bool {
        self.admin
            || (!gid.eq_ignore_ascii_case(ADMIN_GROUP)
                && self.groups.iter().any(|g| g.eq_ignore_ascii_case(gid)))
    }

    /// May manage `t`: admins anyone; group administrators members of their
    /// groups who are not admins.
    pub fn manages(&self, t: &Target) -> bool {
        self.admin || (!t.admin && t.groups.iter().any(|g| self.administers(g)))
    }

    /// Loads a target account; unknown ids are `None`.
    pub async fn target(ocs: &Ocs, uid: &str) -> Result<Option<Target>, OcsError> {
        let Some(user) = ocs.users.get(uid).await.map_err(fail(996))? else { return Ok(None) };
        let groups = ocs.users.groups_of(user.id).await.map_err(fail(996))?;
        let admin = groups.iter().any(|g| g.eq_ignore_ascii_case(ADMIN_GROUP));
        Ok(Some(Target { user, groups, admin }))
    }

    /// A target the caller manages, or 998 (never revealing whether it exists).
    pub async fn managed(&self, ocs: &Ocs, uid: &str) -> Result<Target, OcsError> {
        match Self::target(ocs, uid).await? {
            Some(t) if self.manages(&t) => Ok(t),
            _ => Err(OcsError::not_found("User does not exist")),
        }
    }
}
