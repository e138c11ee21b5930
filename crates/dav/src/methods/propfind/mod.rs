//! PROPFIND: one indexed query for the folder's children, properties computed
//! from the rows, dead properties fetched only when asked for.

use std::collections::HashMap;

use axum::{body::Body, response::Response};
use http::{HeaderValue, StatusCode, header};
use strongroom_core::{Error, Node, TreePath, files::DeadProp};

mod mounted;

use crate::{
    Call,
    error::XML,
    props::{ALLPROP, LiveCtx, live},
    xml_in::{self, Elem},
    xml_out::{self, DAV, OC},
};

/// What the client asked for.
pub(crate) enum Request {
    AllProp(Vec<(String, String)>),
    PropName,
    Prop(Vec<(String, String)>),
}

pub async fn propfind(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let deep = match call.header("depth").map(str::trim) {
        Some("0") => false,
        Some("1") | None => true,
        Some(d) if d.eq_ignore_ascii_case("infinity") => {
            return Ok(crate::error::error_body(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "PROPFIND with Depth: infinity is not supported",
                "<d:propfind-finite-depth/>",
            ));
        }
        Some(_) => return Err(Error::BadRequest("invalid Depth header".into())),
    };
    let bytes = super::read_small_body(body).await?;
    let request = parse_request(&bytes)?;
    let cx = call.cx();
    let node = call.dav.files.stat(&cx, &call.path).await?.ok_or(Error::NotFound)?;
    answer(call, &request, node, deep).await
}

/// The Depth 0 answer about `node`, shown at the request's own URL (a file
/// drop's uploader reading back what it sent under the name it used).
pub(crate) async fn about(call: &Call<'_>, body: Body, node: Node) -> Result<Response, Error> {
    let request = parse_request(&super::read_small_body(body).await?)?;
    let node = Node { name: call.path.name().unwrap_or_default().to_owned(), ..node };
    answer(call, &request, node, false).await
}

async fn answer(
    call: &Call<'_>,
    request: &Request,
    node: Node,
    deep: bool,
) -> Result<Response, Error> {
    let cx = call.cx();
    let mut entries: Vec<(TreePath, Node)> = Vec::new();
    // A file drop lists nothing, not even whether its folder is empty.
    let listable = call.grant.as_ref().is_none_or(|g| !g.is_drop_only());
    let node = if listable || call.path != call.base { node } else { masked_drop_root(call, node) };
    let children = if deep && node.is_folder() && listable {
        call.dav.files.children(&cx, &node).await?
    } else {
        Vec::new()
    };
    entries.push((call.path.clone(), node));
    for c in children {
        let p = call.path.join(&c.name)?;
        entries.push((p, c));
    }
    let mounted = mounted::entries(call, &mut entries, deep);
    respond(call, request, entries, mounted).await
}

/// The multistatus about `entries` (nodes at their paths) and `mounted`
/// (entries already made), with the properties `request` asks for.
pub(crate) async fn respond(
    call: &Call<'_>,
    request: &Request,
    entries: Vec<(TreePath, Node)>,
    mounted: Vec<Entry>,
) -> Result<Response, Error> {
    let cx = call.cx();
    let wanted = |ns: &str, name: &str| match request {
        Request::Prop(list) => list.iter().any(|(a, b)| a == ns && b == name),
        _ => true,
    };
    let locks = if wanted(DAV, "lockdiscovery") {
        call.dav.files.locks().all(call.owner.id).await?
    } else {
        Vec::new()
    };
    let usage = if !(wanted(DAV, "quota-used-bytes") || wanted(DAV, "quota-available-bytes")) {
        (0, -1)
    } else if call.grant.is_some() {
        // Through a share: the shared folder's own size, the owner's quota
        // untold (-3 is "unknown" to clients).
        (entries.first().map_or(0, |(_, n)| n.size), -3)
    } else {
        call.dav.files.usage(&cx).await?
    };
    let needs_dead = match request {
        Request::Prop(list) => list.iter().any(|(ns, n)| !is_live_name(ns, n)),
        _ => true,
    };
    let refs: Vec<&Node> = entries.iter().map(|(_, n)| n).collect();
    let mut dead = match needs_dead {
        true => call.dav.files.dead_props(&cx, &refs).await?,
        false => HashMap::new(),
    };
    // The caller's favourites, read as the dead property they are to
    // clients (`is_favorite`), the received shares listed in the folder
    // included.
    if wanted(OC, "favorite") {
        let mut all = refs.clone();
        all.extend(mounted.iter().map(|e| &e.node));
        for id in call.dav.files.favorite_ids(&cx, &all).await? {
            let mark = DeadProp { ns: OC.into(), name: "favorite".into(), value: "1".into() };
            dead.entry(id).or_default().push(mark);
        }
    }
    let share_types = if wanted(crate::xml_out::OC, "share-types") {
        let ids: Vec<i64> = entries.iter().map(|(_, n)| n.id).collect();
        call.dav.shares.types_on(call.who.user_id, &ids).await?
    } else {
        Default::default()
    };
    let live_cx = LiveCtx {
        prefix: call.prefix,
        base: &call.base,
        grant: call.grant.as_ref(),
        share_types: &share_types,
        owner: call.owner,
        instance_id: &call.dav.instance_id,
        locks: &locks,
        usage,
    };
    let mut entries: Vec<Entry> = entries
        .into_iter()
        .map(|(path, node)| Entry {
            href: call.href(&path, node.is_folder()),
            path,
            node,
            extra: Vec::new(),
            container: false,
        })
        .collect();
    entries.extend(mounted);
    Ok(multistatus(render(&live_cx, request, &entries, &dead)))
}

/// A file drop's folder as its visitors see it: nothing that changes with
/// its content (size, ETag, modification time).
fn masked_drop_root(call: &Call<'_>, node: Node) -> Node {
    let share = call.grant.as_ref().map_or(0, |g| g.share_id);
    Node { size: 0, etag: format!("drop{share}"), mtime: node.ctime, ..node }
}

/// One `d:response`: a node at an href, with properties beyond the live ones.
pub(crate) struct Entry {
    pub href: String,
    pub path: TreePath,
    pub node: Node,
    /// Extra live properties (namespace, name, inner XML), looked up first.
    pub extra: Vec<(&'static str, &'static str, String)>,
    /// A folder of the trash or versions trees (the trash itself, a file's
    /// versions) rather than a node: it has no file id and no ETag. Clients
    /// take an entry with them for a file (nc_py_api lists every entry with
    /// an id as a trashed item, and every one with an ETag in a versions
    /// listing as a version), and Nextcloud's folders there have neither.
    pub container: bool,
}

/// The properties a [`Entry::container`] does not have.
fn identifies_a_node(ns: &str, name: &str) -> bool {
    matches!((ns, name), (DAV, "getetag") | (OC, "id") | (OC, "fileid"))
}

/// A whole multistatus document for `entries`.
pub(crate) fn render(
    cx: &LiveCtx<'_>,
    request: &Request,
    entries: &[Entry],
    dead: &HashMap<i64, Vec<DeadProp>>,
) -> String {
    let mut out = xml_out::multistatus_start();
    // A response of the desktop client's properties takes 500-700 bytes:
    // room for them at once spares copying the document as it grows.
    out.reserve(entries.len() * 640);
    // One pair of property buffers for every entry, emptied after each,
    // rather than two new strings per entry grown a piece at a time.
    let mut props = PropBuffers::default();
    for e in entries {
        let dead = dead.get(&e.node.id).map(Vec::as_slice).unwrap_or(&[]);
        write_response(&mut out, &mut props, cx, request, e, dead);
    }
    xml_out::multistatus_end(&mut out);
    out
}

/// The properties of one response as they are found: those that exist and
/// those that do not (a 404 propstat).
#[derive(Default)]
struct PropBuffers {
    found: String,
    missing: String,
}

pub fn multistatus(body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::MULTI_STATUS;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(XML));
    r
}

/// The properties a `d:prop` element names.
pub(crate) fn prop_names(prop: &Elem) -> Vec<(String, String)> {
    prop.elems().map(|p| (p.ns.clone(), p.name.clone())).collect()
}

pub(crate) fn parse_request(bytes: &[u8]) -> Result<Request, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Request::AllProp(Vec::new()));
    }
    let root = xml_in::parse(bytes).map_err(|e| Error::BadRequest(e.0))?;
    if !root.is(DAV, "propfind") {
        return Err(Error::BadRequest("the body must be a DAV:propfind element".into()));
    }
    let names = prop_names;
    if let Some(p) = root.child(DAV, "prop") {
        return Ok(Request::Prop(names(p)));
    }
    if root.child(DAV, "propname").is_some() {
        return Ok(Request::PropName);
    }
    if root.child(DAV, "allprop").is_some() {
        let include = root.child(DAV, "include").map(names).unwrap_or_default();
        return Ok(Request::AllProp(include));
    }
    Err(Error::BadRequest("DAV:propfind needs prop, allprop or propname".into()))
}

fn is_live_name(ns: &str, name: &str) -> bool {
    crate::props::is_protected(ns, name)
}

/// A favourite is set by PROPPATCH and kept per user (`Files::set_favorite`);
/// `respond` hands the caller's marks in as dead properties of value 1, and
/// a file not marked answers 0 when asked, as Nextcloud's do.
fn is_favorite(ns: &str, name: &str) -> bool {
    ns == OC && name == "favorite"
}

fn write_response(
    out: &mut String,
    props: &mut PropBuffers,
    cx: &LiveCtx<'_>,
    request: &Request,
    entry: &Entry,
    dead: &[DeadProp],
) {
    let (node, path) = (&entry.node, &entry.path);
    let PropBuffers { found, missing } = props;
    found.clear();
    missing.clear();
    let live = |ns: &str, name: &str| match entry.container && identifies_a_node(ns, name) {
        true => None,
        false => live(cx, node, path, ns, name),
    };
    let extra = |ns: &str, name: &str| {
        entry.extra.iter().find(|(a, b, _)| *a == ns && *b == name).map(|e| e.2.clone())
    };
    let dead_value = |ns: &str, name: &str| {
        dead.iter().find(|d| d.ns == ns && d.name == name).map(|d| d.value.clone())
    };
    let find = |ns: &str, name: &str| -> Option<String> {
        let unmarked = || is_favorite(ns, name).then(|| "0".to_owned());
        extra(ns, name)
            .or_else(|| live(ns, name))
            .or_else(|| dead_value(ns, name))
            .or_else(unmarked)
    };
    match request {
        Request::Prop(list) => {
            for (ns, name) in list {
                match find(ns, name) {
                    Some(v) => xml_out::prop(found, ns, name, &v),
                    None => xml_out::prop(missing, ns, name, ""),
                }
            }
        }
        Request::AllProp(include) => {
            for (ns, name) in ALLPROP {
                if let Some(v) = live(ns, name) {
                    xml_out::prop(found, ns, name, &v);
                }
            }
            for d in dead {
                xml_out::prop(found, &d.ns, &d.name, &d.value);
            }
            for (ns, name) in include {
                let listed = ALLPROP.iter().any(|(a, b)| a == ns && b == name)
                    || dead.iter().any(|d| d.ns == *ns && d.name == *name);
                if !listed {
                    match live(ns, name).or_else(|| is_favorite(ns, name).then(|| "0".to_owned())) {
                        Some(v) => xml_out::prop(found, ns, name, &v),
                        None => xml_out::prop(missing, ns, name, ""),
                    }
                }
            }
        }
        Request::PropName => {
            for (ns, name) in ALLPROP {
                if live(ns, name).is_some() {
                    xml_out::prop(found, ns, name, "");
                }
            }
            for d in dead {
                xml_out::prop(found, &d.ns, &d.name, "");
            }
        }
    }
    for (ns, name, v) in entry.extra.iter().filter(|_| matches!(request, Request::AllProp(_))) {
        xml_out::prop(found, ns, name, v);
    }
    out.push_str("<d:response><d:href>");
    out.push_str(&xml_out::escape(&entry.href));
    out.push_str("</d:href>");
    propstat(out, found, 200);
    if !missing.is_empty() {
        propstat(out, missing, 404);
    }
    out.push_str("</d:response>");
}

pub fn propstat(out: &mut String, props: &str, code: u16) {
    out.push_str("<d:propstat><d:prop>");
    out.push_str(props);
    out.push_str("</d:prop><d:status>");
    out.push_str(&xml_out::status_line(code));
    out.push_str("</d:status></d:propstat>");
}
