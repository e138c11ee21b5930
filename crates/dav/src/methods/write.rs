//! PUT, DELETE and MKCOL.

use axum::{body::Body, response::Response};
use http::{HeaderValue, StatusCode, header};
use strongroom_core::{Error, files::PutOptions};

use crate::{
    Call,
    if_header::strip_etag,
    methods::{identity_headers, read, with_status},
};

pub async fn put(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    Ok(put_to(call, &call.path, body, false).await?.0)
}

/// PUT at `path`; with `only_new`, never over an existing file: a taken
/// name becomes "name (2)"… (a file drop).
pub async fn put_to(
    call: &Call<'_>,
    path: &strongroom_core::TreePath,
    body: Body,
    only_new: bool,
) -> Result<(Response, strongroom_core::Node), Error> {
    if call.header("content-range").is_some() {
        return Err(Error::BadRequest("partial PUT with Content-Range is not supported".into()));
    }
    let mut opts = put_options(call)?;
    if only_new {
        // The client's conditions would tell which names exist: ignored.
        opts = PutOptions {
            free_name: true,
            if_none_match_any: false,
            if_none_match: Vec::new(),
            if_match: None,
            if_unmodified_since: None,
            require_existing: false,
            ..opts
        };
    }
    let mtime_set = opts.mtime.is_some();
    let stream = super::body_stream(body);
    let out = call.dav.files.put(&call.cx(), path, stream, opts).await?;
    let mut r = with_status(if out.created { StatusCode::CREATED } else { StatusCode::NO_CONTENT });
    identity_headers(&mut r, call.dav, &out.node);
    if mtime_set {
        r.headers_mut().insert(super::X_OC_MTIME, HeaderValue::from_static("accepted"));
    }
    Ok((r, out.node))
}

fn put_options(call: &Call<'_>) -> Result<PutOptions, Error> {
    let expected_len = match call.parts.headers.get(header::CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| Error::BadRequest("invalid Content-Length".into()))?,
        ),
        None if call.parts.headers.contains_key(header::TRANSFER_ENCODING) => None,
        None => Some(0),
    };
    // A client that announces the total separately must agree with the
    // body's framing; without a Content-Length (a chunked body) the total is
    // the length the body must have, checked as it arrives.
    let announced = announced_total(call)?;
    let expected_len = match (expected_len, announced) {
        (Some(len), Some(total)) if len != total => {
            return Err(Error::BadRequest("OC-Total-Length does not match Content-Length".into()));
        }
        (None, total) => total,
        (len, _) => len,
    };
    Ok(PutOptions { expected_len, ..upload_options(call)? })
}

/// `OC-Total-Length`: exactly one plain number of bytes, or absent. Two
/// lines (read as "5, 6"), a sign or anything but digits is a 400.
pub fn announced_total(call: &Call<'_>) -> Result<Option<u64>, Error> {
    let Some(v) = call.header_list("oc-total-length")? else { return Ok(None) };
    let v = v.trim();
    let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    match v.parse::<u64>() {
        Ok(n) if digits => Ok(Some(n)),
        _ => Err(Error::BadRequest("OC-Total-Length must be one number of bytes".into())),
    }
}

/// The headers that condition and describe an upload, for PUT and for the
/// final MOVE of a chunked upload alike.
pub fn upload_options(call: &Call<'_>) -> Result<PutOptions, Error> {
    let mtime = match call.header("x-oc-mtime") {
        Some(v) => Some(parse_mtime(v)?),
        None => None,
    };
    let if_match = call.header_list("if-match")?.map(|v| etag_list(&v, Compare::Strong));
    let if_none_match = call.header_list("if-none-match")?.map(|v| etag_list(&v, Compare::Weak));
    let checksum = match call.header("oc-checksum") {
        Some(v) => Some(strongroom_core::checksum::parse_header(v)?),
        None => None,
    };
    let has_if_match = if_match.is_some();
    Ok(PutOptions {
        mtime,
        expected_len: None,
        require_existing: if_match.as_ref().is_some_and(|l| l.any),
        if_match: if_match.filter(|l| !l.any).map(|l| l.tags),
        if_none_match_any: if_none_match.as_ref().is_some_and(|l| l.any),
        if_none_match: if_none_match.map(|l| l.tags).unwrap_or_default(),
        // With If-Match, If-Unmodified-Since is not evaluated (RFC 9110, 13.2.2).
        if_unmodified_since: read::unmodified_since(call)?.filter(|_| !has_if_match),
        checksum,
        free_name: false,
        awaits_continue: crate::awaits_continue(&call.parts.headers),
    })
}

/// An `If-Match` or `If-None-Match` value: `*`, or the entity tags it lists.
struct EtagList {
    any: bool,
    tags: Vec<String>,
}

impl EtagList {
    /// Whether the list holds for a file tagged `etag` (`*` holds for any).
    fn names(&self, etag: &str) -> bool {
        self.any || self.tags.iter().any(|t| t == etag)
    }
}

/// How the tags of a list compare with the file's (RFC 9110, 8.8.3.2).
#[derive(Clone, Copy, PartialEq)]
enum Compare {
    /// `If-Match`: a weak tag (`W/"…"`) matches nothing.
    Strong,
    /// `If-None-Match`: a weak tag matches its strong twin.
    Weak,
}

fn etag_list(v: &str, compare: Compare) -> EtagList {
    let items: Vec<&str> = v.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
    // Only a bare `*` is the wildcard; `"*"` is a tag like any other.
    let any = items.contains(&"*");
    let tags = items
        .into_iter()
        .filter(|t| *t != "*" && !(compare == Compare::Strong && t.starts_with("W/")))
        .map(|t| strip_etag(t).to_owned())
        .collect();
    EtagList { any, tags }
}

/// `X-OC-Mtime`: Unix seconds, possibly with a fraction.
fn parse_mtime(v: &str) -> Result<i64, Error> {
    let bad = || Error::BadRequest("X-OC-Mtime must be a Unix time in seconds".into());
    let secs: f64 = v.trim().parse().map_err(|_| bad())?;
    if !secs.is_finite() || secs < 0.0 || secs > strongroom_core::MAX_TIME as f64 {
        return Err(bad());
    }
    Ok(secs as i64)
}

pub async fn delete(call: &Call<'_>) -> Result<Response, Error> {
    if call.header("depth").is_some_and(|d| !d.trim().eq_ignore_ascii_case("infinity")) {
        return Err(Error::BadRequest("DELETE only supports Depth: infinity".into()));
    }
    // Present at all, readable or not: an unreadable condition is a 400 below.
    let conditional = ["if-match", "if-none-match", "if-unmodified-since"]
        .iter()
        .any(|h| call.parts.headers.contains_key(*h));
    if conditional {
        let node = call.dav.files.stat(&call.cx(), &call.path).await?.ok_or(Error::NotFound)?;
        let changed = || {
            Err(Error::PreconditionFailed(
                "the resource does not meet the request's conditions".into(),
            ))
        };
        let if_match = call.header_list("if-match")?;
        if if_match.as_deref().is_some_and(|v| !etag_list(v, Compare::Strong).names(&node.etag)) {
            return changed();
        }
        let if_none_match = call.header_list("if-none-match")?;
        if if_none_match.as_deref().is_some_and(|v| etag_list(v, Compare::Weak).names(&node.etag)) {
            return changed();
        }
        let since = read::unmodified_since(call)?;
        if if_match.is_none() && since.is_some_and(|since| node.mtime > since) {
            return changed();
        }
    }
    call.dav.files.delete(&call.cx(), &call.path).await?;
    Ok(with_status(StatusCode::NO_CONTENT))
}

pub async fn mkcol(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let has_body =
        call.parts.headers.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0")
            || call.parts.headers.contains_key(header::TRANSFER_ENCODING);
    if has_body {
        let bytes = crate::methods::read_small_body(body).await?;
        if !bytes.is_empty() {
            return Err(Error::UnsupportedMediaType(
                "MKCOL with a request body is not supported".into(),
            ));
        }
    }
    let node = call.dav.files.mkdir(&call.cx(), &call.path).await?;
    let mut r = with_status(StatusCode::CREATED);
    identity_headers(&mut r, call.dav, &node);
    r.headers_mut().remove(header::ETAG);
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    Ok(r)
}

/// `PATCH` with `X-Recalculate-Hash: sha1|md5|adler32`: the server computes and
/// stores that checksum and returns it in `OC-Checksum` (Nextcloud's extension,
/// used by rclone after it changed only a modification time).
pub async fn patch(call: &Call<'_>) -> Result<Response, Error> {
    let algo = call.header("x-recalculate-hash").ok_or_else(|| {
        Error::NotAllowed("PATCH is only supported with X-Recalculate-Hash".into())
    })?;
    let algo = strongroom_core::checksum::Algo::parse(algo.trim()).ok_or_else(|| {
        Error::BadRequest("X-Recalculate-Hash must be sha1, md5, adler32 or sha256".into())
    })?;
    let sum = call.dav.files.recalculate_checksum(&call.cx(), &call.path, algo).await?;
    let mut r = with_status(StatusCode::NO_CONTENT);
    if let Ok(v) = HeaderValue::from_str(&sum) {
        r.headers_mut().insert(super::OC_CHECKSUM, v);
    }
    Ok(r)
}
