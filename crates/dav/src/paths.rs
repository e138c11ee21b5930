//! From request URLs to tree paths and back.
//!
//! A URL path is split on `/` first and each segment percent-decoded once, so
//! an encoded `/` (`%2F`) can never separate segments; the decoded segments
//! then pass the tree's name rules ([`TreePath`]), which refuse `..`, NUL,
//! control characters and over-long names whatever their encoding.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use strongroom_core::{Error, TreePath};

/// Characters escaped in hrefs we emit: everything but unreserved and `/`-free sub-delims.
const HREF: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'&')
    .add(b'\'')
    .add(b'+')
    .add(b';')
    .add(b'=')
    .add(b':')
    .add(b'@')
    .add(b'$')
    .add(b',');

/// Decodes the part of a URL path below a mount point into a tree path.
pub fn decode(raw: &str) -> Result<TreePath, Error> {
    if raw.contains('#') {
        return Err(Error::BadRequest("a request URI must not contain a fragment".into()));
    }
    let mut segments = Vec::new();
    for seg in raw.split('/') {
        let bytes: Vec<u8> = percent_decode_str(seg).collect();
        let s = String::from_utf8(bytes)
            .map_err(|_| Error::BadRequest("the path is not valid UTF-8".into()))?;
        segments.push(s);
    }
    TreePath::from_segments(segments)
}

/// The URL path of a node below `prefix` (which has no trailing slash).
/// Folders end in `/`, files do not, also a file that is the root of the
/// tree the prefix names (a file shared on its own: its URL is the prefix).
pub fn href(prefix: &str, path: &TreePath, folder: bool) -> String {
    let mut out = String::with_capacity(prefix.len() + 32);
    out.push_str(prefix);
    for s in path.segments() {
        out.push('/');
        out.extend(utf8_percent_encode(s, HREF));
    }
    if folder || out.is_empty() {
        out.push('/');
    }
    out
}

/// The URL path of a node of the owner's tree when `prefix` names `base`
/// (a share's root); a path outside `base` maps to the prefix itself, so no
/// URL ever shows what lies above a share.
pub fn href_in(prefix: &str, base: &TreePath, path: &TreePath, folder: bool) -> String {
    if base.is_root() {
        return href(prefix, path, folder);
    }
    let below = if path.starts_with(base) {
        path.rebase(base, &TreePath::root())
    } else {
        TreePath::root()
    };
    href(prefix, &below, folder)
}

/// Where a `Destination` header points.
#[derive(Debug)]
pub enum Destination {
    /// Inside the same mount as the request.
    Here(TreePath),
    /// Another host.
    OtherServer,
    /// This server, but outside the tree the request works in.
    OtherTree,
}

/// Interprets a `Destination` header (a full URL or an absolute path) against
/// the URL prefixes that name the tree the request works in. Prefixes compare
/// case-insensitively (user ids do); the part below is taken as it is.
pub fn destination(
    value: &str,
    host: Option<&str>,
    prefixes: &[String],
) -> Result<Destination, Error> {
    let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    let path = if lower.starts_with("http://") || lower.starts_with("https://") {
        let rest = &value[value.find("://").map_or(0, |i| i + 3)..];
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !host.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
            return Ok(Destination::OtherServer);
        }
        path
    } else if value.starts_with('/') {
        value
    } else {
        return Err(Error::BadRequest("the Destination header is not a URL".into()));
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let full = decode(if path.is_empty() { "/" } else { path })?;
    for prefix in prefixes {
        let base = decode(prefix)?;
        let n = base.segments().len();
        let same = full.segments().len() >= n
            && full.segments()[..n]
                .iter()
                .zip(base.segments())
                .all(|(a, b)| a.eq_ignore_ascii_case(b));
        if same {
            return Ok(Destination::Here(TreePath::from_segments(full.segments()[n..].to_vec())?));
        }
    }
    Ok(Destination::OtherTree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_segment_once() {
        assert_eq!(decode("/a%20b/c").unwrap().to_key(), "/a b/c");
        assert!(decode("/a%2Fb").is_err(), "encoded slash");
        assert!(decode("/%2e%2e/x").is_err(), "encoded dot-dot");
        assert!(decode("/a/../b").is_err());
        assert!(decode("/a%00b").is_err());
        assert!(decode("/%C3%28").is_err(), "invalid UTF-8");
        assert!(decode("/a%5Cb").is_err(), "backslash");
    }

    #[test]
    fn hrefs_round_trip() {
        let p = TreePath::from_segments(["Sp ace", "Ün#1.txt"]).unwrap();
        let h = href("/remote.php/dav/files/alice", &p, false);
        assert_eq!(h, "/remote.php/dav/files/alice/Sp%20ace/%C3%9Cn%231.txt");
        assert_eq!(decode(&h["/remote.php/dav/files/alice".len()..]).unwrap(), p);
    }

    #[test]
    fn destinations_stay_in_the_tree() {
        let pre = ["/remote.php/dav/files/alice".to_owned(), "/remote.php/webdav".to_owned()];
        let here =
            |d: Destination, want: &str| matches!(d, Destination::Here(p) if p.to_key() == want);
        assert!(here(
            destination("http://h:1/remote.php/dav/files/alice/x", Some("h:1"), &pre).unwrap(),
            "/x"
        ));
        assert!(here(
            destination("HTTP://h:1/remote.php/dav/files/ALICE/x?q=1", Some("h:1"), &pre).unwrap(),
            "/x"
        ));
        assert!(here(destination("/remote.php/webdav/d/x", None, &pre).unwrap(), "/d/x"));
        assert!(here(destination("/remote.php/dav/files/alice/Ünï", None, &pre).unwrap(), "/Ünï"));
        let d = destination("http://evil/remote.php/dav/files/alice/x", Some("h:1"), &pre).unwrap();
        assert!(matches!(d, Destination::OtherServer));
        let d = destination("http://evil/remote.php/dav/files/alice/x", None, &pre).unwrap();
        assert!(matches!(d, Destination::OtherServer));
        let d = destination("/remote.php/dav/files/bob/x", Some("h:1"), &pre).unwrap();
        assert!(matches!(d, Destination::OtherTree));
        let d = destination("/remote.php/dav/files/alice2/x", Some("h:1"), &pre).unwrap();
        assert!(matches!(d, Destination::OtherTree));
    }
}
