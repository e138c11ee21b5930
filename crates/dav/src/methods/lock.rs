//! LOCK and UNLOCK (RFC 4918 §9.10–9.11).

use axum::{body::Body, response::Response};
use futures_util::stream;
use http::{HeaderValue, StatusCode, header};
use strongroom_core::{
    Error,
    files::PutOptions,
    locks::{DEFAULT_TIMEOUT, LockRequest, MAX_TIMEOUT},
};

use crate::{
    Call,
    error::XML,
    props::activelock,
    xml_in,
    xml_out::{DAV, ROOT_NS},
};

pub async fn lock(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let bytes = super::read_small_body(body).await?;
    let timeout = parse_timeout(call.header("timeout"));
    let cx = call.cx();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        // No body: a refresh of a lock named in the If header.
        if call.tokens.is_empty() {
            return Err(Error::BadRequest(
                "a LOCK without body must name the lock in an If header".into(),
            ));
        }
        let lock = call.dav.files.locks().refresh(&cx, &call.path, timeout).await?;
        return Ok(lock_response(call, &lock, StatusCode::OK, false));
    }
    let req = parse_lockinfo(&bytes, call.header("depth"), timeout)?;
    let existing = call.dav.files.stat(&cx, &call.path).await?;
    let lock = call.dav.files.locks().lock(&cx, &call.path, &req).await?;
    let mut created = false;
    if existing.is_none() {
        // Locking an unmapped URL creates an empty file (RFC 4918 §7.3).
        let tokens = [lock.token.clone()];
        let with_token = strongroom_core::files::Ctx { tokens: &tokens, ..call.cx() };
        let empty = stream::empty::<std::io::Result<bytes::Bytes>>();
        let opts =
            PutOptions { expected_len: Some(0), if_none_match_any: true, ..Default::default() };
        if let Err(e) = call.dav.files.put(&with_token, &call.path, empty, opts).await {
            let _ = call.dav.files.locks().unlock(&with_token, &call.path, &lock.token).await;
            return Err(e);
        }
        created = true;
    }
    let code = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(lock_response(call, &lock, code, true))
}

fn lock_response(
    call: &Call<'_>,
    lock: &strongroom_core::locks::Lock,
    code: StatusCode,
    new: bool,
) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:prop {ROOT_NS}><d:lockdiscovery>{}</d:lockdiscovery></d:prop>\n",
        activelock(call.prefix, &call.base, lock)
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(XML));
    if new {
        if let Ok(v) = HeaderValue::from_str(&format!("<{}>", lock.token)) {
            r.headers_mut().insert("Lock-Token", v);
        }
    }
    r
}

fn parse_lockinfo(bytes: &[u8], depth: Option<&str>, timeout: i64) -> Result<LockRequest, Error> {
    let root = xml_in::parse(bytes).map_err(|e| Error::BadRequest(e.0))?;
    if !root.is(DAV, "lockinfo") {
        return Err(Error::BadRequest("the body must be a DAV:lockinfo element".into()));
    }
    let scope = root
        .child(DAV, "lockscope")
        .ok_or_else(|| Error::BadRequest("lockscope is missing".into()))?;
    let shared = if scope.child(DAV, "shared").is_some() {
        true
    } else if scope.child(DAV, "exclusive").is_some() {
        false
    } else {
        return Err(Error::BadRequest("lockscope must be exclusive or shared".into()));
    };
    let write = root.child(DAV, "locktype").and_then(|t| t.child(DAV, "write"));
    if write.is_none() {
        return Err(Error::BadRequest("only write locks are supported".into()));
    }
    let deep = match depth.map(str::trim) {
        None => true,
        Some(d) if d.eq_ignore_ascii_case("infinity") => true,
        Some("0") => false,
        Some(_) => return Err(Error::BadRequest("LOCK supports Depth 0 or infinity".into())),
    };
    let owner_xml = root.child(DAV, "owner").map(|o| o.inner_xml());
    Ok(LockRequest { deep, shared, owner_xml, timeout_secs: timeout })
}

/// The first understood value of a `Timeout` header, clamped to our maximum.
fn parse_timeout(v: Option<&str>) -> i64 {
    let Some(v) = v else { return DEFAULT_TIMEOUT };
    for part in v.split(',').map(str::trim) {
        if part.eq_ignore_ascii_case("infinite") {
            return MAX_TIMEOUT;
        }
        if let Some(n) = part.strip_prefix("Second-").and_then(|n| n.parse::<i64>().ok()) {
            return n.clamp(1, MAX_TIMEOUT);
        }
    }
    DEFAULT_TIMEOUT
}

pub async fn unlock(call: &Call<'_>) -> Result<Response, Error> {
    let token = call
        .header("lock-token")
        .map(|t| t.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
        .ok_or_else(|| Error::BadRequest("the Lock-Token header is missing".into()))?;
    match call.dav.files.locks().unlock(&call.cx(), &call.path, &token).await {
        Ok(()) => Ok(super::with_status(StatusCode::NO_CONTENT)),
        Err(Error::Conflict(m)) => Ok(crate::error::error_body(
            StatusCode::CONFLICT,
            "Conflict",
            &m,
            "<d:lock-token-matches-request-uri/>",
        )),
        Err(e) => Err(e),
    }
}
