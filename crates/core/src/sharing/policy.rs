//! The admin's sharing policy, kept in `sr_meta` so every node agrees. It is
//! applied when a share is made or changed, and again every time a share is
//! used ([`super::Shares::effective`]), so tightening it also covers shares
//! that already exist.

use serde::{Deserialize, Serialize};

use super::Shares;
use crate::{Error, Result, access::perm};

const KEY: &str = "sharing_policy";

/// Who may share at all, by group (Nextcloud's `shareapi_exclude_groups`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExcludeMode {
    /// Everybody may share.
    #[default]
    No,
    /// Members of any listed group may not share.
    Yes,
    /// Only members of a listed group may share.
    Allow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct Policy {
    /// The master switch.
    pub enabled: bool,
    pub allow_links: bool,
    /// Members of these groups may not create or keep public links.
    pub links_exclude_groups: Vec<String>,
    /// Links that let visitors add, change or delete.
    pub allow_public_upload: bool,
    pub enforce_links_password: bool,
    /// New links get an expiry date of `link_expire_days` from today.
    pub default_link_expire: bool,
    /// Links may not live longer than `link_expire_days`.
    pub enforce_link_expire: bool,
    pub link_expire_days: u32,
    /// The same for user and group shares.
    pub default_internal_expire: bool,
    pub enforce_internal_expire: bool,
    pub internal_expire_days: u32,
    pub allow_resharing: bool,
    pub allow_group_sharing: bool,
    /// Users share only with members of a group they are in themselves.
    pub only_share_with_group_members: bool,
    pub exclude_mode: ExcludeMode,
    pub exclude_groups: Vec<String>,
    /// Permissions of new user and group shares when none are asked for.
    pub default_permissions: u32,
    /// New links hide the download unless asked otherwise.
    pub hide_download_default: bool,
    /// Where shares appear in a recipient's tree, when that folder exists.
    pub share_folder: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: true,
            allow_links: true,
            links_exclude_groups: Vec::new(),
            allow_public_upload: true,
            enforce_links_password: false,
            default_link_expire: false,
            enforce_link_expire: false,
            link_expire_days: 7,
            default_internal_expire: false,
            enforce_internal_expire: false,
            internal_expire_days: 7,
            allow_resharing: true,
            allow_group_sharing: true,
            only_share_with_group_members: false,
            exclude_mode: ExcludeMode::No,
            exclude_groups: Vec::new(),
            default_permissions: perm::ALL,
            hide_download_default: false,
            share_folder: "/".into(),
        }
    }
}

fn member(groups: &[String], list: &[String]) -> bool {
    list.iter().any(|g| groups.iter().any(|m| m.eq_ignore_ascii_case(g)))
}

impl Policy {
    /// Whether a member of `groups` may share at all.
    pub fn may_share(&self, groups: &[String]) -> bool {
        self.enabled
            && match self.exclude_mode {
                ExcludeMode::No => true,
                ExcludeMode::Yes => !member(groups, &self.exclude_groups),
                ExcludeMode::Allow => member(groups, &self.exclude_groups),
            }
    }

    /// Whether a member of `groups` may make (and keep) public links.
    pub fn may_link(&self, groups: &[String]) -> bool {
        self.may_share(groups) && self.allow_links && !member(groups, &self.links_exclude_groups)
    }

    /// The enforced maximum lifetime in days for a kind of share, if any.
    pub fn max_days(&self, link: bool) -> Option<u32> {
        match link {
            true => self.enforce_link_expire.then_some(self.link_expire_days),
            false => self.enforce_internal_expire.then_some(self.internal_expire_days),
        }
    }

    /// The lifetime in days new shares get when none is asked for.
    pub fn default_days(&self, link: bool) -> Option<u32> {
        match link {
            true => (self.default_link_expire || self.enforce_link_expire)
                .then_some(self.link_expire_days),
            false => (self.default_internal_expire || self.enforce_internal_expire)
                .then_some(self.internal_expire_days),
        }
    }

    /// Refuses values that make no sense, naming the setting.
    pub fn check(&self) -> Result<()> {
        if self.default_permissions & perm::READ == 0 || self.default_permissions > perm::ALL {
            return Err(Error::BadRequest(
                "default_permissions must include read (1) and be at most 31".into(),
            ));
        }
        if self.link_expire_days == 0 || self.internal_expire_days == 0 {
            return Err(Error::BadRequest("expiry days must be at least 1".into()));
        }
        if self.link_expire_days > 36_500 || self.internal_expire_days > 36_500 {
            return Err(Error::BadRequest("expiry days must be at most 36500".into()));
        }
        crate::TreePath::from_segments(self.share_folder.split('/'))
            .map_err(|e| Error::BadRequest(format!("share_folder: {e}")))?;
        Ok(())
    }
}

impl Shares {
    pub async fn policy(&self) -> Result<Policy> {
        Ok(crate::util::read_meta(&self.db, KEY).await?.unwrap_or_default())
    }

    pub async fn set_policy(&self, policy: &Policy) -> Result<()> {
        policy.check()?;
        crate::util::write_meta(&self.db, KEY, policy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_modes() {
        let staff = vec!["staff".to_owned()];
        let mut p = Policy::default();
        assert!(p.may_share(&staff) && p.may_link(&staff));
        p.exclude_mode = ExcludeMode::Yes;
        p.exclude_groups = vec!["Staff".into()];
        assert!(!p.may_share(&staff) && p.may_share(&[]));
        p.exclude_mode = ExcludeMode::Allow;
        assert!(p.may_share(&staff) && !p.may_share(&[]));
        p.links_exclude_groups = vec!["staff".into()];
        assert!(!p.may_link(&staff));
        p.enabled = false;
        assert!(!p.may_share(&staff));
    }

    #[test]
    fn stored_policies_keep_defaults_for_missing_keys() {
        let p: Policy = serde_json::from_str(r#"{"allow_links": false}"#).unwrap();
        assert!(!p.allow_links && p.enabled && p.default_permissions == 31);
        assert!(Policy { default_permissions: 4, ..Policy::default() }.check().is_err());
    }
}
