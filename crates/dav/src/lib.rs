//! WebDAV (RFC 4918) with Nextcloud's extensions, over the file service.
//!
//! The server crate authenticates the request and picks the mount (whose tree,
//! under which URL prefix); [`handle`] then decodes the path, evaluates the
//! `If` header and dispatches on the method. Every operation goes through
//! [`strongroom_core::Files`], which performs the authorization check.

mod error;
mod if_header;
mod methods;
mod paths;
mod props;
mod special;
mod view;
mod xml_in;
mod xml_out;

use axum::{body::Body, response::Response};
use futures_util::FutureExt;
use http::{Method, request::Parts};
use strongroom_core::{
    Error, Files, Grant, Principal, TreePath, User,
    files::Ctx,
    sharing::{Mount, PublicLink, Shares},
};

pub use error::error_body;
pub use methods::read::{RangeSpec, byte_range, unsatisfiable};
pub use methods::stalled;
pub use special::{Special, handle_special};

/// Largest XML request body accepted (PROPFIND, PROPPATCH, LOCK).
pub const MAX_XML_BODY: usize = 1024 * 1024;

/// The WebDAV service.
#[derive(Clone)]
pub struct Dav {
    pub files: Files,
    /// The installation's id, the suffix of every `oc:id`.
    pub instance_id: String,
    pub shares: Shares,
    pub audit: strongroom_core::audit::Audit,
}

impl Dav {
    /// Where a request came from, for the audit log (the server places it
    /// in the request's extensions).
    pub(crate) fn origin(&self, parts: &Parts) -> strongroom_core::audit::Origin {
        parts.extensions.get::<strongroom_core::audit::Origin>().cloned().unwrap_or_default()
    }
}

/// One request being served.
pub(crate) struct Call<'a> {
    pub dav: &'a Dav,
    pub who: &'a Principal,
    pub owner: &'a User,
    /// URL path of the mount's root, without trailing slash.
    pub prefix: &'a str,
    /// The path in the owner's tree: `base` followed by the URL's path below `prefix`.
    pub path: TreePath,
    /// The path in the owner's tree that `prefix` names: the root for one's
    /// own tree, the shared node when the tree is reached through a share.
    pub base: TreePath,
    /// Set when the tree is reached through a share.
    pub grant: Option<Grant>,
    /// In one's own tree: the shares received, mounted in the share folder.
    pub mounts: Vec<Mount>,
    pub parts: Parts,
    /// Lock tokens submitted in the `If` header.
    pub tokens: Vec<String>,
}

impl Call<'_> {
    pub fn cx(&self) -> Ctx<'_> {
        Ctx { who: self.who, owner: self.owner, tokens: &self.tokens, grant: self.grant.as_ref() }
    }

    /// A path below `prefix` (as a Destination or `If` URL names it) in the owner's tree.
    pub fn in_tree(&self, below: &TreePath) -> TreePath {
        below.rebase(&TreePath::root(), &self.base)
    }

    /// A header of visible ASCII. An unreadable value reads as `None`, which
    /// is safe only because `request_path` has refused the request before
    /// for every name in [`READ_HEADERS`]: a name read here must be listed
    /// there (checked in debug builds). Headers that may carry UTF-8 are
    /// read with [`Call::header_text`].
    pub fn header(&self, name: &str) -> Option<&str> {
        debug_assert!(READ_HEADERS.contains(&name), "{name} is not in READ_HEADERS");
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every line of a list-valued header (`If-Match`, `If-None-Match`) as
    /// one comma-separated list. A value that is not visible ASCII is a bad
    /// request: ignoring it would drop the client's condition.
    pub fn header_list(&self, name: &str) -> Result<Option<String>, Error> {
        let mut lines = self.parts.headers.get_all(name).iter().peekable();
        if lines.peek().is_none() {
            return Ok(None);
        }
        let mut parts = Vec::new();
        for v in lines {
            let text = v
                .to_str()
                .map_err(|_| Error::BadRequest(format!("the {name} header is not ASCII")))?;
            parts.push(text);
        }
        Ok(Some(parts.join(", ")))
    }

    /// A header that may carry UTF-8 (Destination, If); one that is not valid
    /// UTF-8 is a bad request rather than absent.
    pub fn header_text(&self, name: &str) -> Result<Option<&str>, Error> {
        match self.parts.headers.get(name) {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v.as_bytes())
                .map(Some)
                .map_err(|_| Error::BadRequest(format!("the {name} header is not valid UTF-8"))),
        }
    }

    /// The URL prefixes that name this request's tree, for Destination and If
    /// headers: the mount itself, the owner's files URL, and the legacy alias
    /// when the tree is the caller's own.
    pub fn tree_prefixes(&self) -> Vec<String> {
        if self.grant.is_some() {
            return vec![self.prefix.to_owned()];
        }
        let files = paths::href(
            "/remote.php/dav/files",
            &TreePath::from_segments([self.owner.uid.as_str()]).unwrap_or_default(),
            false,
        );
        let mut v = vec![self.prefix.to_owned(), files];
        if self.who.user_id == self.owner.id {
            v.push("/remote.php/webdav".to_owned());
        }
        v
    }

    pub fn href(&self, path: &TreePath, folder: bool) -> String {
        paths::href_in(self.prefix, &self.base, path, folder)
    }
}

/// Serves one WebDAV request on the tree of `owner`, mounted at `prefix`;
/// `rel` is the raw (still percent-encoded) URL path below the prefix.
pub async fn handle(
    dav: &Dav,
    who: &Principal,
    owner: &User,
    prefix: &str,
    rel: &str,
    req: http::Request<Body>,
) -> Response {
    let (parts, body) = req.into_parts();
    let path = match request_path(rel, &parts) {
        Ok(p) => p,
        Err(e) => return refuse_unread(&parts.headers, body, error::response(&e, prefix)).await,
    };
    // Someone else's tree does not exist for the caller, whatever the method.
    if let Err(e) =
        strongroom_core::access::authorize(who, strongroom_core::Op::Stat, owner.id, None)
    {
        return refuse_unread(&parts.headers, body, error::response(&e, prefix)).await;
    }
    let mounts = match dav.shares.mounts(owner).boxed().await {
        Ok(m) => m,
        Err(e) => return refuse_unread(&parts.headers, body, error::response(&e, prefix)).await,
    };
    if let Some(m) = mounts.iter().find(|m| path.starts_with(&m.at)) {
        // Below a received share: the owner's tree, seen through the grant.
        let mount_prefix = paths::href(prefix, &m.at, false);
        let owner_path = path.rebase(&m.at, &m.base);
        let call = Call {
            dav,
            who,
            owner: &m.owner,
            prefix: &mount_prefix,
            path: owner_path,
            base: m.base.clone(),
            grant: Some(m.grant.clone()),
            mounts: Vec::new(),
            parts,
            tokens: Vec::new(),
        };
        return run(call, body, Some(&m.share)).await;
    }
    let call = Call {
        dav,
        who,
        owner,
        prefix,
        path,
        base: TreePath::root(),
        grant: None,
        mounts,
        parts,
        tokens: Vec::new(),
    };
    run(call, body, None).await
}

/// Serves one WebDAV request of a visitor of a public link, at `prefix`
/// (the link's DAV root); the link was checked and its password passed.
pub async fn handle_link(
    dav: &Dav,
    link: &PublicLink,
    prefix: &str,
    rel: &str,
    req: http::Request<Body>,
) -> Response {
    let (parts, body) = req.into_parts();
    let below = match request_path(rel, &parts) {
        Ok(p) => p,
        Err(e) => return refuse_unread(&parts.headers, body, error::response(&e, prefix)).await,
    };
    let who = Principal::public_link(link.share.id);
    let call = Call {
        dav,
        who: &who,
        owner: &link.owner,
        prefix,
        path: below.rebase(&TreePath::root(), &link.base),
        base: link.base.clone(),
        grant: Some(link.grant.clone()),
        mounts: Vec::new(),
        parts,
        tokens: Vec::new(),
    };
    run(call, body, Some(&link.share)).await
}

/// Request headers that WebDAV's methods read ([`Call::header`]). A value
/// that is not visible ASCII would read as no header at all, which for
/// some means a default that acts (`Overwrite: T`, `Depth: infinity`), so
/// such a request is refused instead. Destination and If may carry UTF-8
/// and are read with [`Call::header_text`], which refuses what is not.
const READ_HEADERS: &[&str] = &[
    "content-range",
    "depth",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-unmodified-since",
    "lock-token",
    "oc-checksum",
    "oc-total-length",
    "overwrite",
    "range",
    "timeout",
    "x-oc-mtime",
    "x-recalculate-hash",
];

/// The path of a request below its mount (still percent-encoded in
/// `rel`), once every header in [`READ_HEADERS`] has been found readable.
pub(crate) fn request_path(rel: &str, parts: &Parts) -> Result<TreePath, Error> {
    // One pass over the request's few headers, not a lookup per name.
    for (name, value) in &parts.headers {
        if value.to_str().is_err() && READ_HEADERS.contains(&name.as_str()) {
            return Err(Error::BadRequest(format!("the {name} header must be visible ASCII")));
        }
    }
    paths::decode(rel)
}

async fn run(
    mut call: Call<'_>,
    body: Body,
    share: Option<&strongroom_core::sharing::Share>,
) -> Response {
    if let Some(refusal) = view::refuse_early(&call) {
        return refuse_unread(&call.parts.headers, body, view::error(&call, &refusal)).await;
    }
    if let Err(e) = methods::conditions::evaluate_if(&mut call).boxed().await {
        return refuse_unread(&call.parts.headers, body, view::error(&call, &e)).await;
    }
    view::serve(&call, share, body).await.unwrap_or_else(|e| view::error(&call, &e))
}

/// Answers a request refused before its body was read. A small body is read
/// and dropped first: closing a connection with unread data makes the kernel
/// reset it, and the client could lose the answer. Not so when the client
/// waits for `100 Continue` before it sends the body: reading it would tell
/// the client to send what is refused (hyper answers 100 at the first
/// read), a wrong password's upload among them. Such a client gets the
/// refusal alone, and hyper closes the connection after it.
pub async fn refuse_unread(headers: &http::HeaderMap, body: Body, response: Response) -> Response {
    if awaits_continue(headers) {
        return response;
    }
    let drain = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_XML_BODY));
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
    response
}

/// [`refuse_unread`] for a whole request.
pub async fn refuse_request(req: http::Request<Body>, response: Response) -> Response {
    let (parts, body) = req.into_parts();
    refuse_unread(&parts.headers, body, response).await
}

/// Whether the client waits for `100 Continue` before it sends its body.
pub(crate) fn awaits_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

/// Each method's handler is boxed: an `async fn` is as large as its largest
/// state, and a `match` over every method inline would make each request's
/// future the size of the biggest handler's (PUT, PROPFIND), copied whole
/// every time a layer of the router boxes it.
pub(crate) async fn dispatch(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let handler = match call.parts.method.as_str() {
        "OPTIONS" => return Ok(methods::options()),
        "GET" => methods::read::get(call, true).boxed(),
        "HEAD" => methods::read::get(call, false).boxed(),
        "PUT" => methods::write::put(call, body).boxed(),
        "DELETE" => methods::write::delete(call).boxed(),
        "MKCOL" => methods::write::mkcol(call, body).boxed(),
        "PROPFIND" => methods::propfind::propfind(call, body).boxed(),
        "PROPPATCH" => methods::proppatch::proppatch(call, body).boxed(),
        "REPORT" => methods::report::report(call, body).boxed(),
        "COPY" => methods::copymove::copy_or_move(call, false).boxed(),
        "MOVE" => methods::copymove::copy_or_move(call, true).boxed(),
        "LOCK" => methods::lock::lock(call, body).boxed(),
        "UNLOCK" => methods::lock::unlock(call).boxed(),
        "PATCH" => methods::write::patch(call).boxed(),
        _ => {
            return Err(Error::NotAllowed(format!(
                "method {} is not supported here",
                call.parts.method
            )));
        }
    };
    handler.await
}

/// True for methods this handler knows, so the router can refuse others early.
pub fn is_dav_method(m: &Method) -> bool {
    matches!(
        m.as_str(),
        "OPTIONS"
            | "GET"
            | "HEAD"
            | "PUT"
            | "DELETE"
            | "MKCOL"
            | "PROPFIND"
            | "PROPPATCH"
            | "REPORT"
            | "COPY"
            | "MOVE"
            | "LOCK"
            | "UNLOCK"
            | "PATCH"
    )
}
