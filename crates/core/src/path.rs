//! Validated paths inside one user's tree.
//!
//! Every name is checked once, here, whatever route it came by: no empty, `.`
//! or `..` segments, no `/`, `\`, NUL or other control characters, at most 255
//! bytes per name and 4,096 bytes in all. A new file or folder may not take
//! a reserved name either ([`check_new_name`]), on any route that creates one.

use std::fmt;

use crate::error::Error;

pub const MAX_NAME_BYTES: usize = 255;
pub const MAX_PATH_BYTES: usize = 4096;

/// Names no new file or folder may take, whatever its case. Clients learn
/// them from the capabilities (`files.blacklisted_files`) and skip such
/// files; a web server that serves a data folder would obey a `.htaccess`
/// found in it, so one must not arrive through Strongroom either.
pub const RESERVED_NAMES: &[&str] = &[".htaccess"];

/// A path relative to a tree's root; the root itself has no segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TreePath(Vec<String>);

impl TreePath {
    pub fn root() -> Self {
        TreePath(Vec::new())
    }

    /// Builds a path from already decoded segments, validating each.
    /// Empty segments (from `//` or a trailing `/`) are skipped.
    pub fn from_segments<I, S>(segments: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out = Vec::new();
        let mut total = 0;
        for s in segments {
            let s = s.into();
            if s.is_empty() {
                continue;
            }
            check_name(&s)?;
            total += s.len() + 1;
            if total > MAX_PATH_BYTES {
                return Err(Error::BadRequest(format!("path longer than {MAX_PATH_BYTES} bytes")));
            }
            out.push(s);
        }
        Ok(TreePath(out))
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    pub fn parent(&self) -> Option<TreePath> {
        (!self.0.is_empty()).then(|| TreePath(self.0[..self.0.len() - 1].to_vec()))
    }

    pub fn join(&self, name: &str) -> Result<TreePath, Error> {
        check_name(name)?;
        let mut v = self.0.clone();
        v.push(name.to_owned());
        Ok(TreePath(v))
    }

    /// True when `self` is `other` or lies below it (compared by whole segments).
    pub fn starts_with(&self, other: &TreePath) -> bool {
        self.0.len() >= other.0.len() && self.0[..other.0.len()] == other.0[..]
    }

    /// Replaces the prefix `from` of this path by `to`.
    pub fn rebase(&self, from: &TreePath, to: &TreePath) -> TreePath {
        let mut v = to.0.clone();
        v.extend_from_slice(&self.0[from.0.len()..]);
        TreePath(v)
    }

    /// The path as stored in the lock table: `/a/b` (the root is `/`).
    pub fn to_key(&self) -> String {
        format!("/{}", self.0.join("/"))
    }

    pub fn from_key(key: &str) -> Result<TreePath, Error> {
        TreePath::from_segments(key.split('/'))
    }
}

impl fmt::Display for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key())
    }
}

/// Checks one file or folder name.
pub fn check_name(s: &str) -> Result<(), Error> {
    if s.is_empty() || s == "." || s == ".." {
        return Err(Error::BadRequest(format!("invalid name {s:?}")));
    }
    if s.len() > MAX_NAME_BYTES {
        return Err(Error::BadRequest(format!("name longer than {MAX_NAME_BYTES} bytes")));
    }
    let forbidden = |c: &char| c.is_control() || matches!(c, '/' | '\\' | '\u{FFFE}' | '\u{FFFF}');
    if let Some(c) = s.chars().find(forbidden) {
        return Err(Error::BadRequest(format!("name contains forbidden character {c:?}")));
    }
    Ok(())
}

/// Refuses a reserved name ([`RESERVED_NAMES`]) for a file or folder about
/// to be created or to take a new name (a 403, as Nextcloud answers).
/// Existing files of such a name stay readable, deletable and movable away.
pub fn check_new_name(path: &TreePath) -> Result<(), Error> {
    match path.name() {
        Some(n) if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(n)) => {
            Err(Error::Forbidden(format!("{n:?} is a reserved name")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dot_segments_and_control_characters() {
        for bad in ["..", ".", "a\0b", "a\nb", "a/b", "a\\b", "\u{7f}", "\u{FFFF}"] {
            assert!(TreePath::from_segments([bad]).is_err(), "{bad:?} accepted");
        }
        assert!(TreePath::from_segments(["x".repeat(256)]).is_err());
        assert!(TreePath::from_segments(["x".repeat(255)]).is_ok());
    }

    #[test]
    fn reserved_names_are_refused_in_any_case_only_as_the_new_name() {
        for bad in [".htaccess", ".HTAccess"] {
            let p = TreePath::from_segments(["a", bad]).unwrap();
            assert!(matches!(check_new_name(&p), Err(Error::Forbidden(_))), "{bad:?} accepted");
        }
        for good in [["a", ".htaccess.txt"], [".htaccess", "b"], ["a", "htaccess"]] {
            assert!(check_new_name(&TreePath::from_segments(good).unwrap()).is_ok());
        }
        assert!(check_new_name(&TreePath::root()).is_ok());
    }

    #[test]
    fn refuses_overlong_paths() {
        let long = vec!["a".repeat(200); 21];
        assert!(TreePath::from_segments(long).is_err());
    }

    #[test]
    fn skips_empty_segments_and_compares_whole_segments() {
        let p = TreePath::from_segments(["a", "", "b"]).unwrap();
        assert_eq!(p.to_key(), "/a/b");
        let shared = TreePath::from_segments(["shared"]).unwrap();
        let secret = TreePath::from_segments(["shared-secret"]).unwrap();
        assert!(!secret.starts_with(&shared));
        assert!(p.starts_with(&TreePath::from_segments(["a"]).unwrap()));
    }
}
