//! Writing WebDAV response bodies.
//!
//! Responses bind exactly the prefixes Nextcloud's clients look up verbatim:
//! `d` for `DAV:`, `s` for sabre, `oc` and `nc`; other namespaces are declared
//! on the element that uses them.

pub const DAV: &str = "DAV:";
pub const OC: &str = "http://owncloud.org/ns";
pub const NC: &str = "http://nextcloud.org/ns";
pub const SABRE: &str = "http://sabredav.org/ns";

pub const ROOT_NS: &str = r#"xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns""#;

/// Escapes text for element content and attribute values. Line ends and
/// tabs are written as references, which a parser keeps as they are (a raw
/// CR would be read as LF, and in an attribute CR, LF and tab as spaces).
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'', '\r', '\n', '\t']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The prefix bound on the root element for a namespace, if any.
pub fn known_prefix(ns: &str) -> Option<&'static str> {
    match ns {
        DAV => Some("d"),
        OC => Some("oc"),
        NC => Some("nc"),
        SABRE => Some("s"),
        _ => None,
    }
}

/// Writes the opening tag of a property element, declaring its namespace if needed.
pub fn open_prop(out: &mut String, ns: &str, name: &str, empty: bool) {
    out.push('<');
    match known_prefix(ns) {
        Some(p) => {
            out.push_str(p);
            out.push(':');
            out.push_str(name);
        }
        None if ns.is_empty() => {
            out.push_str(name);
            out.push_str(" xmlns=\"\"");
        }
        None => {
            out.push_str("x:");
            out.push_str(name);
            out.push_str(" xmlns:x=\"");
            out.push_str(&escape(ns));
            out.push('"');
        }
    }
    out.push_str(if empty { "/>" } else { ">" });
}

pub fn close_prop(out: &mut String, ns: &str, name: &str) {
    out.push_str("</");
    match known_prefix(ns) {
        Some(p) => {
            out.push_str(p);
            out.push(':');
        }
        None if ns.is_empty() => {}
        None => out.push_str("x:"),
    }
    out.push_str(name);
    out.push('>');
}

/// A whole property element with `inner` (already XML) as content.
pub fn prop(out: &mut String, ns: &str, name: &str, inner: &str) {
    if inner.is_empty() {
        open_prop(out, ns, name, true);
    } else {
        open_prop(out, ns, name, false);
        out.push_str(inner);
        close_prop(out, ns, name);
    }
}

/// The `HTTP/1.1 NNN Reason` line used in `d:status`; the two of every
/// listing without formatting.
pub fn status_line(code: u16) -> std::borrow::Cow<'static, str> {
    match code {
        200 => "HTTP/1.1 200 OK".into(),
        404 => "HTTP/1.1 404 Not Found".into(),
        _ => {
            let reason = http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            format!("HTTP/1.1 {code} {reason}").into()
        }
    }
}

/// Starts a multistatus document.
pub fn multistatus_start() -> String {
    format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus {ROOT_NS}>")
}

pub fn multistatus_end(out: &mut String) {
    out.push_str("</d:multistatus>\n");
}
