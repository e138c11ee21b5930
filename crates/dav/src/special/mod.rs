//! DAV collections beside the files tree: chunked-upload folders, the trash
//! bin and file versions. Each has a few fixed shapes of path; everything is
//! still done through the file service and its access check.

mod trash;
mod uploads;
mod versions;

use axum::{body::Body, response::Response};
use strongroom_core::{Error, Node, NodeKind, Principal, TreePath, User};

use crate::{
    Call, Dav, error,
    methods::propfind::{Entry, Request, multistatus, parse_request, render},
    paths,
    props::LiveCtx,
};

/// Which special collection a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Uploads,
    Trash,
    Versions,
}

/// Serves a request below `prefix` (for example `/remote.php/dav/uploads/alice`).
/// `files_prefix` is the same user's files mount, where uploads land and
/// restored items appear.
pub async fn handle_special(
    dav: &Dav,
    kind: Special,
    who: &Principal,
    owner: &User,
    prefix: &str,
    files_prefix: &str,
    rel: &str,
    req: http::Request<Body>,
) -> Response {
    let (parts, body) = req.into_parts();
    let path = match crate::request_path(rel, &parts) {
        Ok(p) => p,
        Err(e) => {
            return crate::refuse_unread(&parts.headers, body, error::response(&e, prefix)).await;
        }
    };
    // Someone else's collections do not exist for the caller, whatever the method.
    if let Err(e) =
        strongroom_core::access::authorize(who, strongroom_core::Op::Stat, owner.id, None)
    {
        return crate::refuse_unread(&parts.headers, body, error::response(&e, prefix)).await;
    }
    // Versions of a file received through a share are the owner's, reached
    // through the caller's grant.
    let mount = match (kind, path.segments()) {
        (Special::Versions, [v, id, ..]) if v == "versions" => {
            match versions::mount_of(dav, owner, id).await {
                Ok(m) => m,
                Err(e) => {
                    return crate::refuse_unread(&parts.headers, body, error::response(&e, prefix))
                        .await;
                }
            }
        }
        _ => None,
    };
    let call = Call {
        dav,
        who,
        owner: mount.as_ref().map_or(owner, |m| &m.owner),
        prefix,
        path,
        base: TreePath::root(),
        grant: mount.as_ref().map(|m| m.grant.clone()),
        mounts: Vec::new(),
        parts,
        tokens: Vec::new(),
    };
    let result = match kind {
        Special::Uploads => uploads::dispatch(&call, files_prefix, body).await,
        Special::Trash => trash::dispatch(&call, body).await,
        Special::Versions => versions::dispatch(&call, body).await,
    };
    result.unwrap_or_else(|e| error::response(&e, prefix))
}

/// A folder that exists only in the URL space (`…/trashbin/alice/trash`).
fn virtual_folder(owner: &User, name: &str) -> Node {
    Node {
        id: 0,
        owner_id: owner.id,
        parent_id: None,
        name: name.to_owned(),
        kind: NodeKind::Folder,
        size: 0,
        mtime: owner.created_at,
        ctime: owner.created_at,
        etag: format!("{}-{name}", owner.id),
        blob_id: None,
        content_type: None,
        checksum: None,
        blob_key: None,
        blob_seal: None,
    }
}

/// The href of `segments` below the call's prefix.
fn href(call: &Call<'_>, segments: &[&str], folder: bool) -> String {
    let path = TreePath::from_segments(segments.iter().map(|s| s.to_string())).unwrap_or_default();
    paths::href(call.prefix, &path, folder)
}

fn entry(href: String, node: Node) -> Entry {
    Entry {
        href,
        path: TreePath::from_segments(["x"]).unwrap_or_default(),
        node,
        extra: Vec::new(),
        container: false,
    }
}

/// A folder of the trash or versions trees (see [`Entry::container`]).
fn container(call: &Call<'_>, segments: &[&str]) -> Entry {
    let name = segments.last().copied().unwrap_or("root");
    Entry { container: true, ..entry(href(call, segments, true), virtual_folder(call.owner, name)) }
}

/// A PROPFIND answer over prepared entries: the first is the requested
/// resource, the rest its children (left out for `Depth: 0`).
async fn listing(call: &Call<'_>, body: Body, mut entries: Vec<Entry>) -> Result<Response, Error> {
    let depth = call.header("depth").map(str::trim).unwrap_or("1").to_owned();
    match depth.as_str() {
        "0" => entries.truncate(1),
        "1" => {}
        _ => return Err(Error::Forbidden("only Depth 0 and 1 are supported here".into())),
    }
    let request: Request = parse_request(&crate::methods::read_small_body(body).await?)?;
    let no_shares = Default::default();
    let cx = LiveCtx {
        prefix: call.prefix,
        base: &call.base,
        grant: None,
        share_types: &no_shares,
        owner: call.owner,
        instance_id: &call.dav.instance_id,
        locks: &[],
        usage: (0, -1),
    };
    Ok(multistatus(render(&cx, &request, &entries, &Default::default())))
}

/// The files mount of the owner under its URL spellings.
fn files_prefixes(call: &Call<'_>, files_prefix: &str) -> Vec<String> {
    let mut v = vec![files_prefix.to_owned()];
    v.extend(call.tree_prefixes().into_iter().skip(1));
    v
}

fn not_allowed(call: &Call<'_>) -> Error {
    Error::NotAllowed(format!("{} is not supported on this resource", call.parts.method))
}

/// The target of a `Destination` header as decoded segments below one of `prefixes`.
fn destination_below(call: &Call<'_>, prefixes: &[String]) -> Result<TreePath, Error> {
    let dest = call
        .header_text("destination")?
        .ok_or_else(|| Error::BadRequest("the Destination header is missing".into()))?;
    match paths::destination(dest, call.header("host"), prefixes)? {
        paths::Destination::Here(p) => Ok(p),
        paths::Destination::OtherServer => {
            Err(Error::BadRequest("the Destination is on another server".into()))
        }
        paths::Destination::OtherTree => {
            Err(Error::Forbidden("the Destination is outside this user's space".into()))
        }
    }
}
