//! GET and HEAD: file downloads with conditional requests and single ranges.

use axum::{body::Body, response::Response};
use http::{HeaderValue, StatusCode, header};
use strongroom_core::{Error, Node, files::Content};

use crate::{Call, if_header::strip_etag, methods::identity_headers, props::http_date};

pub async fn get(call: &Call<'_>, with_body: bool) -> Result<Response, Error> {
    let found = call.dav.files.stat_for_read(&call.cx(), &call.path).await?;
    let (node, content) = found.ok_or(Error::NotFound)?;
    serve_located(call, &node, content, with_body).await
}

/// Serves a file's content (or only its headers), honouring conditions and ranges.
pub async fn serve_node(call: &Call<'_>, node: &Node, with_body: bool) -> Result<Response, Error> {
    serve_located(call, node, None, with_body).await
}

/// [`serve_node`] for a node whose content was located along with it.
async fn serve_located(
    call: &Call<'_>,
    node: &Node,
    content: Option<Content>,
    with_body: bool,
) -> Result<Response, Error> {
    let node = node.clone();
    if node.is_folder() {
        return Err(Error::NotAllowed("this is a folder; list it with PROPFIND".into()));
    }
    if let Some(r) = preconditions(call, &node) {
        return Ok(r);
    }
    let size = node.size.max(0) as u64;
    let if_range = call.parts.headers.get("if-range").map(|v| v.to_str().unwrap_or(""));
    let range = match byte_range(call.header("range"), if_range, &node.etag, size) {
        RangeSpec::Whole => None,
        RangeSpec::Part(a, b) => Some((a, b)),
        RangeSpec::Unsatisfiable => return Ok(unsatisfiable(size)),
    };
    let (start, end) = range.unwrap_or((0, size));
    let mut r = if with_body && end > start {
        let stream = call.dav.files.read_located(&call.cx(), &node, content, start..end).await?;
        Response::new(Body::from_stream(stream))
    } else {
        Response::new(Body::empty())
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if range.is_some() {
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
        let cr = format!("bytes {start}-{}/{size}", end.saturating_sub(1));
        r.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&cr).map_err(|e| Error::Internal(e.to_string()))?,
        );
    }
    download_headers(&mut r, call, &node);
    Ok(r)
}

fn download_headers(r: &mut Response, call: &Call<'_>, node: &Node) {
    // About twenty headers by the time the security layer is done: room for
    // them at once, not three regrowths of the map.
    r.headers_mut().reserve(24);
    identity_headers(r, call.dav, node);
    let ctype = node.content_type.as_deref().unwrap_or("application/octet-stream");
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(ctype) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(node.mtime)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(c) = node.checksum.as_deref().and_then(|c| c.split(' ').next()) {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.insert(super::OC_CHECKSUM, v);
        }
    }
    // Uploaded content is never interpreted by a browser as part of this site.
    let name: String =
        percent_encoding::utf8_percent_encode(&node.name, percent_encoding::NON_ALPHANUMERIC)
            .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{name}")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
}

/// Answers conditional GETs: `None` means serve the content.
fn preconditions(call: &Call<'_>, node: &Node) -> Option<Response> {
    let failed = || {
        Some(crate::error::response(
            &Error::PreconditionFailed("the file has changed".into()),
            call.prefix,
        ))
    };
    if let Some(v) = call.header("if-match") {
        if !etag_list_matches(v, &node.etag) {
            return failed();
        }
    } else if unmodified_since_fails(call, node.mtime) {
        return failed();
    }
    if let Some(v) = call.header("if-none-match") {
        if etag_list_matches(v, &node.etag) {
            let mut r = crate::error::status(StatusCode::NOT_MODIFIED);
            identity_headers(&mut r, call.dav, node);
            return Some(r);
        }
    } else if let Some(since) =
        call.header("if-modified-since").and_then(|v| httpdate::parse_http_date(v).ok())
    {
        let since =
            since.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        if node.mtime <= since {
            let mut r = crate::error::status(StatusCode::NOT_MODIFIED);
            identity_headers(&mut r, call.dav, node);
            return Some(r);
        }
    }
    None
}

/// True when an `If-Unmodified-Since` header names a time before `mtime`.
pub fn unmodified_since_fails(call: &Call<'_>, mtime: i64) -> bool {
    unmodified_since(call).ok().flatten().is_some_and(|since| mtime > since)
}

/// The time of `If-Unmodified-Since` in Unix seconds; `None` without the
/// header or when it is not an HTTP date (then it is ignored, as RFC 9110
/// says). A value that is not ASCII at all is a bad request, so that a
/// state-changing request never goes on without the condition it carried.
pub fn unmodified_since(call: &Call<'_>) -> Result<Option<i64>, Error> {
    let Some(v) = call.header_list("if-unmodified-since")? else { return Ok(None) };
    let Ok(since) = httpdate::parse_http_date(&v) else { return Ok(None) };
    Ok(Some(since.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)))
}

/// True when a comma-separated entity-tag list (or `*`) names `etag`.
fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| t == "*" || strip_etag(t) == etag)
}

/// What a request's `Range` asks of a file.
pub enum RangeSpec {
    Whole,
    /// The half-open interval of bytes `[start, end)`.
    Part(u64, u64),
    Unsatisfiable,
}

/// The part of a file of `size` bytes, currently tagged `etag`, that a request
/// with these `Range` and `If-Range` headers is to get. A Range is ignored
/// when If-Range names another version (or a date: ours are not exact enough
/// to stand for a version).
///
/// If-Range compares strongly: a weak tag never matches, and neither does a
/// value that is not ASCII (pass it as `Some("")`).
pub fn byte_range(range: Option<&str>, if_range: Option<&str>, etag: &str, size: u64) -> RangeSpec {
    let holds = |t: &str| !t.trim().starts_with("W/") && strip_etag(t) == etag;
    match range {
        Some(v) if if_range.is_none_or(holds) => parse_range(v, size),
        _ => RangeSpec::Whole,
    }
}

/// Parses a single `bytes=` range into a half-open interval. Several ranges, or
/// a syntax we do not understand, serve the whole file (which RFC 9110 allows).
fn parse_range(v: &str, size: u64) -> RangeSpec {
    let Some(spec) = v.trim().strip_prefix("bytes=") else { return RangeSpec::Whole };
    if spec.contains(',') {
        return RangeSpec::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeSpec::Whole };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => b.parse::<u64>().ok().map(|n| (size.saturating_sub(n), size)),
        (false, _) => a.parse::<u64>().ok().map(|s| {
            let e = if b.is_empty() {
                size
            } else {
                b.parse::<u64>().map_or(size, |e| e.saturating_add(1).min(size))
            };
            (s, e)
        }),
        (true, true) => None,
    };
    // A last position before the first makes the range invalid, so it is ignored.
    let backwards = !a.is_empty()
        && !b.is_empty()
        && matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(x), Ok(y)) if y < x);
    match parsed {
        None => RangeSpec::Whole,
        _ if backwards => RangeSpec::Whole,
        Some((s, e)) if s >= size || s >= e => {
            if size == 0 {
                RangeSpec::Whole
            } else {
                RangeSpec::Unsatisfiable
            }
        }
        Some((s, e)) => RangeSpec::Part(s, e),
    }
}

/// 416, naming the file's length.
pub fn unsatisfiable(size: u64) -> Response {
    let mut r = crate::error::status(StatusCode::RANGE_NOT_SATISFIABLE);
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(v: &str, size: u64) -> Option<(u64, u64)> {
        match parse_range(v, size) {
            RangeSpec::Part(a, b) => Some((a, b)),
            _ => None,
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(part("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(part("bytes=90-", 100), Some((90, 100)));
        assert_eq!(part("bytes=-5", 100), Some((95, 100)));
        assert_eq!(part("bytes=95-200", 100), Some((95, 100)));
        assert!(matches!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable));
        assert!(matches!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Whole));
        assert!(matches!(parse_range("items=0-1", 100), RangeSpec::Whole));
        assert_eq!(part("bytes=0-18446744073709551615", 100), Some((0, 100)));
        assert!(matches!(parse_range("bytes=3-2", 100), RangeSpec::Whole));
    }
}
