//! The WebDAV `If` header (RFC 4918 §10.4): lists of state-token and entity-tag
//! conditions, optionally tagged with the resource they apply to.

use strongroom_core::Error;

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Token(String),
    Etag(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub not: bool,
    pub check: Check,
}

/// One parenthesised list; all its conditions must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    /// The resource the list is about (a URL), or the request URL when `None`.
    pub tag: Option<String>,
    pub conditions: Vec<Condition>,
}

/// Parses the header; a malformed header is a 400.
pub fn parse(value: &str) -> Result<Vec<List>, Error> {
    let bad = || Error::BadRequest("malformed If header".into());
    let mut lists = Vec::new();
    let mut tag: Option<String> = None;
    let mut rest = value.trim_start();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('<') {
            let end = r.find('>').ok_or_else(bad)?;
            tag = Some(r[..end].to_owned());
            rest = r[end + 1..].trim_start();
        } else if let Some(r) = rest.strip_prefix('(') {
            let end = r.find(')').ok_or_else(bad)?;
            let conditions = parse_conditions(&r[..end]).ok_or_else(bad)?;
            if conditions.is_empty() {
                return Err(bad());
            }
            lists.push(List { tag: tag.clone(), conditions });
            rest = r[end + 1..].trim_start();
        } else {
            return Err(bad());
        }
    }
    if lists.is_empty() {
        return Err(bad());
    }
    Ok(lists)
}

fn parse_conditions(mut s: &str) -> Option<Vec<Condition>> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Some(out);
        }
        let mut not = false;
        if s.len() >= 3 && s[..3].eq_ignore_ascii_case("not") {
            not = true;
            s = s[3..].trim_start();
        }
        let check = if let Some(r) = s.strip_prefix('<') {
            let end = r.find('>')?;
            let t = Check::Token(r[..end].to_owned());
            s = &r[end + 1..];
            t
        } else if let Some(r) = s.strip_prefix('[') {
            let end = r.find(']')?;
            let t = Check::Etag(strip_etag(&r[..end]).to_owned());
            s = &r[end + 1..];
            t
        } else {
            return None;
        };
        out.push(Condition { not, check });
    }
}

/// `W/"abc"` or `"abc"` → `abc`.
pub fn strip_etag(s: &str) -> &str {
    let s = s.trim();
    let s = s.strip_prefix("W/").unwrap_or(s);
    s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s)
}

/// Every state token the header mentions: the locks the request claims to hold.
pub fn tokens(lists: &[List]) -> Vec<String> {
    let mut out = Vec::new();
    for l in lists {
        for c in &l.conditions {
            if let Check::Token(t) = &c.check {
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tagged_and_negated_lists() {
        let l = parse(r#"<http://h/a> (<opaquelocktoken:x> ["e1"]) (Not <DAV:no-lock>)"#).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].tag.as_deref(), Some("http://h/a"));
        assert_eq!(l[0].conditions[1].check, Check::Etag("e1".into()));
        assert!(l[1].conditions[0].not);
        assert_eq!(tokens(&l), vec!["opaquelocktoken:x".to_owned(), "DAV:no-lock".to_owned()]);
        assert!(parse("(").is_err());
        assert!(parse("garbage").is_err());
        assert!(parse("()").is_err());
    }
}
