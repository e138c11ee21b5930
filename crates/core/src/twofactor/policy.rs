//! Enforcement of second factors, as Nextcloud words it: not enforced means
//! nobody is forced; enforced with no groups means everyone but the excluded
//! groups; enforced with groups means their members, minus anyone in an
//! excluded group (exclusion wins). Kept in `sr_meta` so every node agrees.

use serde::{Deserialize, Serialize};

use super::TwoFactor;
use crate::Result;

const KEY: &str = "twofactor_policy";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub enforced: bool,
    #[serde(default)]
    pub enforced_groups: Vec<String>,
    #[serde(default)]
    pub excluded_groups: Vec<String>,
}

impl Policy {
    /// Whether the policy requires a second factor of a member of `groups`.
    pub fn applies_to(&self, groups: &[String]) -> bool {
        let member =
            |list: &[String]| list.iter().any(|g| groups.iter().any(|m| m.eq_ignore_ascii_case(g)));
        self.enforced
            && (self.enforced_groups.is_empty() || member(&self.enforced_groups))
            && !member(&self.excluded_groups)
    }
}

impl TwoFactor {
    pub async fn policy(&self) -> Result<Policy> {
        // An unreadable stored policy is an error, not "nothing enforced".
        Ok(crate::util::read_meta(&self.db, KEY).await?.unwrap_or_default())
    }

    pub async fn set_policy(&self, policy: &Policy) -> Result<()> {
        crate::util::write_meta(&self.db, KEY, policy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(enforced: bool, groups: &[&str], excluded: &[&str]) -> Policy {
        Policy {
            enforced,
            enforced_groups: groups.iter().map(|s| s.to_string()).collect(),
            excluded_groups: excluded.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn exclusion_wins_and_empty_means_everyone() {
        let staff = vec!["staff".to_owned()];
        let both = vec!["staff".to_owned(), "service".to_owned()];
        assert!(!p(false, &[], &[]).applies_to(&staff));
        assert!(p(true, &[], &[]).applies_to(&[]));
        assert!(p(true, &["Staff"], &[]).applies_to(&staff));
        assert!(!p(true, &["admin"], &[]).applies_to(&staff));
        assert!(!p(true, &["staff"], &["service"]).applies_to(&both));
        assert!(!p(true, &[], &["service"]).applies_to(&both));
    }
}
