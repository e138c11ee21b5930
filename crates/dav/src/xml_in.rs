//! Parsing of request bodies into a small namespace-resolved element tree.
//!
//! Bodies are small (at most 1 MiB), so a tree is simpler than streaming.
//! Documents with a DTD are refused outright, unknown entities are errors (no
//! entity is ever expanded beyond the five predefined ones and character
//! references), and nesting depth and element count are capped.

use quick_xml::{
    NsReader,
    escape::resolve_predefined_entity,
    events::{BytesStart, Event},
    name::ResolveResult,
};

/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 64;
/// Most elements accepted in one body.
const MAX_ELEMENTS: usize = 100_000;

/// An element with its resolved namespace ("" for none).
#[derive(Debug, Clone, PartialEq)]
pub struct Elem {
    pub ns: String,
    pub name: String,
    /// Attributes other than namespace declarations: (namespace, local name, value).
    pub attrs: Vec<(String, String, String)>,
    pub children: Vec<Content>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Elem(Elem),
    Text(String),
}

impl Elem {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// Child elements, skipping text.
    pub fn elems(&self) -> impl Iterator<Item = &Elem> {
        self.children.iter().filter_map(|c| match c {
            Content::Elem(e) => Some(e),
            Content::Text(_) => None,
        })
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Elem> {
        self.elems().find(|e| e.is(ns, name))
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.children {
            match c {
                Content::Text(t) => s.push_str(t),
                Content::Elem(e) => s.push_str(&e.text()),
            }
        }
        s
    }

    /// The element's content as a self-contained XML fragment: every element
    /// declares its own namespace, so the fragment means the same wherever it
    /// is later embedded.
    pub fn inner_xml(&self) -> String {
        let mut out = String::new();
        for c in &self.children {
            write_content(&mut out, c);
        }
        out
    }
}

fn write_content(out: &mut String, c: &Content) {
    match c {
        Content::Text(t) => out.push_str(&crate::xml_out::escape(t)),
        Content::Elem(e) => {
            out.push('<');
            out.push_str(&e.name);
            out.push_str(" xmlns=\"");
            out.push_str(&crate::xml_out::escape(&e.ns));
            out.push('"');
            for (i, (ns, name, value)) in e.attrs.iter().enumerate() {
                if ns.is_empty() {
                    out.push_str(&format!(" {name}=\"{}\"", crate::xml_out::escape(value)));
                } else if ns == XML_NS {
                    // Bound to `xml` by definition; no other prefix may name it.
                    out.push_str(&format!(" xml:{name}=\"{}\"", crate::xml_out::escape(value)));
                } else {
                    let ns = crate::xml_out::escape(ns);
                    out.push_str(&format!(
                        " xmlns:a{i}=\"{ns}\" a{i}:{name}=\"{}\"",
                        crate::xml_out::escape(value)
                    ));
                }
            }
            if e.children.is_empty() {
                out.push_str("/>");
            } else {
                out.push('>');
                for c in &e.children {
                    write_content(out, c);
                }
                out.push_str("</");
                out.push_str(&e.name);
                out.push('>');
            }
        }
    }
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct XmlError(pub String);

fn err(m: impl Into<String>) -> XmlError {
    XmlError(m.into())
}

/// Parses a whole document and returns its root element.
pub fn parse(body: &[u8]) -> Result<Elem, XmlError> {
    let text = std::str::from_utf8(body).map_err(|_| err("the XML body is not valid UTF-8"))?;
    // Text and attribute values are checked as they are read; this also
    // covers names, which the parser lets control characters into, and
    // which a response may write back.
    check_chars(text)?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Elem> = Vec::new();
    let mut root: Option<Elem> = None;
    let mut count = 0;
    loop {
        let (ns, event) =
            reader.read_resolved_event().map_err(|e| err(format!("malformed XML: {e}")))?;
        let ns = namespace(ns)?;
        match event {
            Event::Start(s) | Event::Empty(s) if root.is_some() => {
                let _ = s;
                return Err(err("content after the root element"));
            }
            Event::Start(s) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(err("the XML body is nested too deeply or too large"));
                }
                stack.push(element(&reader, &s, ns)?);
            }
            Event::Empty(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(err("the XML body is too large"));
                }
                let e = element(&reader, &s, ns)?;
                close(&mut stack, &mut root, e);
            }
            Event::End(_) => {
                let e = stack.pop().ok_or_else(|| err("unbalanced end tag"))?;
                close(&mut stack, &mut root, e);
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content())?,
            Event::CData(t) => {
                push_text(&mut stack, &t.xml10_content())?;
            }
            Event::GeneralRef(r) => {
                let s = if r.is_char_ref() {
                    let c = r
                        .resolve_char_ref()
                        .map_err(|e| err(format!("bad character reference: {e}")))?;
                    c.ok_or_else(|| err("bad character reference"))?.to_string()
                } else {
                    let name = r.xml10_content();
                    resolve_predefined_entity(&name)
                        .ok_or_else(|| err(format!("entity &{name}; is not allowed")))?
                        .to_owned()
                };
                push_text(&mut stack, &s)?;
            }
            Event::DocType(_) => return Err(err("documents with a DTD are not accepted")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(err("the XML body ends inside an element"));
    }
    root.ok_or_else(|| err("the XML body has no root element"))
}

fn namespace(r: ResolveResult<'_>) -> Result<String, XmlError> {
    match r {
        // Declared in an attribute, so it may hold references: `urn:&#65;`
        // is `urn:A`, and `urn:&#27;` is as refused as in any other value.
        ResolveResult::Bound(ns) => {
            let uri = quick_xml::escape::unescape(ns.0)
                .map_err(|e| err(format!("bad namespace name: {e}")))?;
            check_chars(&uri)?;
            Ok(uri.into_owned())
        }
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(err(format!("undeclared namespace prefix {p:?}"))),
    }
}

/// The namespace of the `xml` prefix (`xml:lang`, `xml:space`).
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

fn element(reader: &NsReader<&[u8]>, s: &BytesStart<'_>, ns: String) -> Result<Elem, XmlError> {
    if ns == XML_NS {
        // Names in it are reserved, and could only be written back unbound.
        return Err(err("elements in the xml namespace are reserved"));
    }
    let name = s.local_name().into_inner().to_owned();
    let mut attrs = Vec::new();
    for a in s.attributes() {
        let a = a.map_err(|e| err(format!("malformed attribute: {e}")))?;
        let key = a.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (ans, local) = reader.resolver().resolve_attribute(key);
        let ans = namespace(ans)?;
        let local = local.into_inner();
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| err(format!("bad attribute value: {e}")))?;
        check_chars(&value)?;
        attrs.push((ans, local.to_owned(), value.into_owned()));
    }
    Ok(Elem { ns, name, attrs, children: Vec::new() })
}

fn close(stack: &mut [Elem], root: &mut Option<Elem>, e: Elem) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Content::Elem(e)),
        None => *root = Some(e),
    }
}

/// Characters XML 1.0 allows in documents (§2.2): no control characters
/// below U+0020 but tab and line ends, no U+FFFE or U+FFFF.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

fn check_chars(s: &str) -> Result<(), XmlError> {
    match s.chars().find(|c| !xml_char(*c)) {
        Some(c) => Err(err(format!("the character {c:?} is not allowed in XML"))),
        None => Ok(()),
    }
}

fn push_text(stack: &mut [Elem], s: &str) -> Result<(), XmlError> {
    check_chars(s)?;
    match stack.last_mut() {
        Some(parent) => {
            if let Some(Content::Text(t)) = parent.children.last_mut() {
                t.push_str(s);
            } else {
                parent.children.push(Content::Text(s.to_owned()));
            }
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(err("text outside the root element")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_xml_does_not_allow_are_refused_wherever_they_are() {
        let ok = "<a xmlns=\"urn:a\">\tline\r\n\u{1F600}&#x10000;&#9;</a>";
        assert_eq!(parse(ok.as_bytes()).unwrap().name, "a");
        for bad in [
            "<a\u{1b} xmlns=\"urn:a\"/>",
            "<a xmlns=\"urn:a\">\u{7}</a>",
            "<a xmlns=\"urn:a\">\u{FFFE}</a>",
            "<a xmlns=\"urn:a\">&#27;</a>",
            "<a xmlns=\"urn:a\">&#xFFFF;</a>",
            "<a xmlns=\"urn:&#27;\"/>",
            "<x:a xmlns:x=\"urn:&#x1B;\"/>",
        ] {
            let e = parse(bad.as_bytes()).unwrap_err();
            assert!(e.0.contains("not allowed in XML"), "{bad:?}: {e}");
        }
        // Line ends and tabs kept as references come back the same.
        let e = parse(b"<a xmlns=\"urn:a\"><b k=\"1&#10;2&#9;3\">x&#13;y</b></a>").unwrap();
        let again = format!("<a xmlns=\"urn:a\">{}</a>", e.inner_xml());
        assert_eq!(
            again,
            "<a xmlns=\"urn:a\"><b xmlns=\"urn:a\" k=\"1&#10;2&#9;3\">x&#13;y</b></a>"
        );
        assert_eq!(parse(again.as_bytes()).unwrap().inner_xml(), e.inner_xml());
        // xml:lang on a value's element comes back as xml:lang; an element
        // in the xml namespace is refused.
        let e = parse(b"<a xmlns=\"urn:a\"><b xml:lang=\"de\">v</b></a>").unwrap();
        assert_eq!(e.inner_xml(), "<b xmlns=\"urn:a\" xml:lang=\"de\">v</b>");
        assert!(parse(b"<a xmlns=\"urn:a\"><xml:b/></a>").is_err());
        // A namespace name is read with its references resolved.
        let e = parse(b"<x:a xmlns:x=\"urn:&#65;&amp;b\"/>").unwrap();
        assert_eq!((e.ns.as_str(), e.name.as_str()), ("urn:A&b", "a"));
    }

    #[test]
    fn resolves_namespaces_and_refuses_dtds() {
        let e = parse(br#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><x xmlns="urn:a"/></d:prop></d:propfind>"#).unwrap();
        assert!(e.is("DAV:", "propfind"));
        let prop = e.child("DAV:", "prop").unwrap();
        assert!(prop.child("urn:a", "x").is_some());
        let dtd = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#;
        assert!(parse(dtd).is_err());
        assert!(parse(b"<x>&a;</x>").is_err());
        assert!(parse(b"<x><y></x>").is_err());
        assert!(parse(b"<p:x/>").is_err());
        assert!(parse(b"<x>a&#1;b</x>").is_err());
        assert!(parse(b"<x>a\x01b</x>").is_err());
        assert!(parse(b"<x>&#xFFFE;</x>").is_err());
        assert!(parse(b"<x a=\"&#0;\"/>").is_err());
    }

    #[test]
    fn keeps_values_self_contained() {
        let e = parse(br#"<a xmlns:z="urn:z"><z:b k="v">t &amp; &#x10000;</z:b></a>"#).unwrap();
        assert_eq!(e.inner_xml(), "<b xmlns=\"urn:z\" k=\"v\">t &amp; \u{10000}</b>");
    }

    #[test]
    fn caps_nesting() {
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
