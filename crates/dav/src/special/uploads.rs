//! `/remote.php/dav/uploads/USER/ID/CHUNK`: chunked uploads.

use axum::{body::Body, response::Response};
use http::{HeaderValue, StatusCode, header};
use strongroom_core::{Error, Node, NodeKind};

use super::{destination_below, entry, href, listing, not_allowed, virtual_folder};
use crate::{
    Call,
    methods::{identity_headers, with_status, write::upload_options},
};

pub async fn dispatch(call: &Call<'_>, files_prefix: &str, body: Body) -> Result<Response, Error> {
    let segs: Vec<&str> = call.path.segments().iter().map(String::as_str).collect();
    let method = call.parts.method.as_str();
    match (segs.as_slice(), method) {
        ([], "PROPFIND") => list_uploads(call, body).await,
        ([id], "MKCOL") => create(call, id, files_prefix).await,
        ([id], "PROPFIND") => list_chunks(call, id, body).await,
        ([id], "DELETE") => {
            call.dav.files.upload_delete(&call.cx(), id).await?;
            Ok(with_status(StatusCode::NO_CONTENT))
        }
        ([id, ".file"], "MOVE") => assemble(call, id, files_prefix).await,
        ([id, chunk], "PUT") => put_chunk(call, id, chunk, body).await,
        ([_, _], "GET" | "HEAD") => Err(Error::Forbidden("chunks cannot be downloaded".into())),
        ([..], "OPTIONS") => Ok(crate::methods::options()),
        ([] | [_] | [_, _], _) => Err(not_allowed(call)),
        _ => Err(Error::NotFound),
    }
}

fn total_length(call: &Call<'_>) -> Result<Option<i64>, Error> {
    let too_large = || Error::BadRequest("OC-Total-Length is too large".into());
    crate::methods::write::announced_total(call)?
        .map(|n| i64::try_from(n).map_err(|_| too_large()))
        .transpose()
}

async fn create(call: &Call<'_>, id: &str, files_prefix: &str) -> Result<Response, Error> {
    let destination = call.header_text("destination")?;
    // A Destination given now binds the upload's end: one the assembly
    // would refuse (another server or tree, a reserved name) is refused
    // before any chunk is sent, rather than leave chunks that can only be
    // thrown away.
    if destination.is_some() {
        let dest = destination_below(call, &super::files_prefixes(call, files_prefix))?;
        strongroom_core::path::check_new_name(&dest)?;
        check_share_takes_uploads(call, &dest).await?;
    }
    call.dav.files.upload_create(&call.cx(), id, destination, total_length(call)?).await?;
    Ok(with_status(StatusCode::CREATED))
}

/// A Destination inside a received share that cannot take this upload is
/// refused at MKCOL as the assembly would refuse it: a file drop, a new
/// file where the share does not allow creating, or an existing one where
/// it does not allow updating.
async fn check_share_takes_uploads(
    call: &Call<'_>,
    dest: &strongroom_core::TreePath,
) -> Result<(), Error> {
    use strongroom_core::access::perm;
    let mounts = call.dav.shares.mounts(call.owner).await?;
    let Some(m) = mounts.iter().find(|m| dest.starts_with(&m.at)) else { return Ok(()) };
    if m.grant.is_drop_only() {
        return Err(Error::Forbidden("chunked uploads into a file drop are not supported".into()));
    }
    let cx = strongroom_core::files::Ctx {
        who: call.who,
        owner: &m.owner,
        tokens: &[],
        grant: Some(&m.grant),
    };
    let exists = call.dav.files.stat(&cx, &dest.rebase(&m.at, &m.base)).await?.is_some();
    let (needed, what) = match exists {
        true => (perm::UPDATE, "the share does not allow changing this file"),
        false => (perm::CREATE, "the share does not allow adding files"),
    };
    match m.grant.has(needed) {
        true => Ok(()),
        false => Err(Error::Forbidden(what.into())),
    }
}

/// Requests of a chunking-v2 upload must name the Destination given at MKCOL.
fn check_destination(call: &Call<'_>, expected: Option<&str>) -> Result<(), Error> {
    match (expected, call.header_text("destination")?) {
        (Some(want), Some(got)) if want != got => Err(Error::BadRequest(
            "the Destination differs from the one given when the upload began".into(),
        )),
        _ => Ok(()),
    }
}

async fn put_chunk(call: &Call<'_>, id: &str, chunk: &str, body: Body) -> Result<Response, Error> {
    let upload = call.dav.files.upload_get(&call.cx(), id).await?;
    check_destination(call, upload.destination.as_deref())?;
    let len = match call.parts.headers.get(header::CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| Error::BadRequest("invalid Content-Length".into()))?,
        ),
        None if call.parts.headers.contains_key(header::TRANSFER_ENCODING) => None,
        None => Some(0),
    };
    let stream = crate::methods::body_stream(body);
    let created = call.dav.files.upload_put_chunk(&call.cx(), id, chunk, stream, len).await?;
    Ok(with_status(if created { StatusCode::CREATED } else { StatusCode::NO_CONTENT }))
}

async fn assemble(call: &Call<'_>, id: &str, files_prefix: &str) -> Result<Response, Error> {
    let upload = call.dav.files.upload_get(&call.cx(), id).await?;
    check_destination(call, upload.destination.as_deref())?;
    let prefixes = super::files_prefixes(call, files_prefix);
    let dest = destination_below(call, &prefixes)?;
    let mounts = call.dav.shares.mounts(call.owner).await?;
    let Some(m) = mounts.iter().find(|m| dest.starts_with(&m.at)) else {
        return finish(call, call, id, &dest, &prefixes).await;
    };
    // Into a received share: the owner's tree through the grant, as a
    // request to the mount's URL would see it.
    let prefix = crate::paths::href(files_prefix, &m.at, false);
    let target = Call {
        dav: call.dav,
        who: call.who,
        owner: &m.owner,
        prefix: &prefix,
        path: dest.rebase(&m.at, &m.base),
        base: m.base.clone(),
        grant: Some(m.grant.clone()),
        mounts: Vec::new(),
        parts: call.parts.clone(),
        tokens: Vec::new(),
    };
    if target.grant.as_ref().is_some_and(|g| g.is_drop_only()) {
        return Err(Error::Forbidden("chunked uploads into a file drop are not supported".into()));
    }
    finish(call, &target, id, &target.path, std::slice::from_ref(&prefix)).await
}

/// Assembles the upload into `target`'s tree at `dest` (an owner path).
async fn finish(
    call: &Call<'_>,
    target: &Call<'_>,
    id: &str,
    dest: &strongroom_core::TreePath,
    prefixes: &[String],
) -> Result<Response, Error> {
    // The desktop client conditions the replacement on the old ETag with an
    // `If` header tagged with the destination: a change made meanwhile is a 412.
    let tokens = crate::methods::conditions::evaluate(target, dest, prefixes).await?;
    let mut opts = upload_options(call)?;
    // A MOVE like any other: with `Overwrite: F` an existing file stays.
    opts.if_none_match_any |= !crate::methods::copymove::overwrite(call)?;
    if opts.if_match.is_none() {
        opts.if_match =
            crate::methods::conditions::required_etag(target, dest, prefixes).map(|e| vec![e]);
    }
    let mtime_set = opts.mtime.is_some();
    let into = strongroom_core::files::Ctx { tokens: &tokens, ..target.cx() };
    let total = total_length(call)?;
    let out = call.dav.files.upload_assemble(&call.cx(), &into, id, dest, total, opts).await?;
    let mut r = with_status(if out.created { StatusCode::CREATED } else { StatusCode::NO_CONTENT });
    identity_headers(&mut r, call.dav, &out.node);
    if mtime_set {
        r.headers_mut().insert(crate::methods::X_OC_MTIME, HeaderValue::from_static("accepted"));
    }
    Ok(r)
}

async fn list_uploads(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let mut entries = vec![entry(href(call, &[], true), virtual_folder(call.owner, "uploads"))];
    for u in call.dav.files.uploads(&call.cx()).await? {
        let mut node = virtual_folder(call.owner, &u.name);
        node.mtime = u.touched_at;
        node.etag = format!("u{}-{}", u.id, u.touched_at);
        entries.push(entry(href(call, &[&u.name], true), node));
    }
    listing(call, body, entries).await
}

async fn list_chunks(call: &Call<'_>, id: &str, body: Body) -> Result<Response, Error> {
    let upload = call.dav.files.upload_get(&call.cx(), id).await?;
    let mut folder = virtual_folder(call.owner, id);
    folder.mtime = upload.touched_at;
    folder.etag = format!("u{}-{}", upload.id, upload.touched_at);
    let mut entries = vec![entry(href(call, &[id], true), folder)];
    for c in call.dav.files.upload_chunks(&call.cx(), &upload).await? {
        let node = Node {
            kind: NodeKind::File,
            size: c.size,
            etag: format!("c{}-{}-{}", upload.id, c.name, c.size),
            ..virtual_folder(call.owner, &c.name)
        };
        entries.push(entry(href(call, &[id, &c.name], false), node));
    }
    listing(call, body, entries).await
}
