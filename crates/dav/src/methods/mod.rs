//! One module per group of WebDAV methods.

pub mod conditions;
pub mod copymove;
pub mod lock;
pub mod propfind;
pub mod proppatch;
pub mod read;
pub mod report;
pub mod write;

use axum::{body::Body, response::Response};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{HeaderName, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use strongroom_core::Error;

use crate::MAX_XML_BODY;

pub fn options() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert("DAV", HeaderValue::from_static("1, 2"));
    h.insert("MS-Author-Via", HeaderValue::from_static("DAV"));
    h.insert(
        header::ALLOW,
        HeaderValue::from_static(
            "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, PROPFIND, PROPPATCH, REPORT, COPY, MOVE, LOCK, UNLOCK, PATCH",
        ),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

/// Reads a whole (XML) request body, refusing one over [`MAX_XML_BODY`].
pub async fn read_small_body(body: Body) -> Result<Vec<u8>, Error> {
    let limited = http_body_util::Limited::new(body, MAX_XML_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(Error::TooLarge(format!("request bodies are limited to {MAX_XML_BODY} bytes")))
        }
        Err(e) => {
            let message = format!("the request body could not be read: {e}");
            match stalled(&*e) {
                true => Err(Error::TimedOut(message)),
                false => Err(Error::BadRequest(message)),
            }
        }
    }
}

/// A request body as the stream of bytes an upload reads. An I/O error the
/// body carries keeps its kind (a client that stopped sending is
/// `TimedOut`, which the upload answers with 408).
pub fn body_stream(body: Body) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    TryStreamExt::map_err(body.into_data_stream(), |e| {
        let kind = io_cause(&e).map_or(std::io::ErrorKind::Other, std::io::Error::kind);
        std::io::Error::new(kind, e)
    })
}

/// Whether reading a request body failed because the client stopped
/// sending it (see the server's `client_stall_secs`).
pub fn stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    io_cause(e).is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
}

/// The first I/O error among `e` and its causes.
fn io_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        next = e.source();
    }
    None
}

/// Nextcloud's own response headers, named once: a name given as text is
/// parsed again on every insert.
pub const OC_ETAG: HeaderName = HeaderName::from_static("oc-etag");
pub const OC_FILEID: HeaderName = HeaderName::from_static("oc-fileid");
pub const OC_CHECKSUM: HeaderName = HeaderName::from_static("oc-checksum");
pub const X_OC_MTIME: HeaderName = HeaderName::from_static("x-oc-mtime");

/// Adds the identity headers Nextcloud clients read after a change.
pub fn identity_headers(r: &mut Response, dav: &crate::Dav, node: &strongroom_core::Node) {
    let mut etag = String::with_capacity(node.etag.len() + 2);
    etag.push('"');
    etag.push_str(&node.etag);
    etag.push('"');
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v.clone());
        h.insert(OC_ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&crate::props::oc_id(node.id, &dav.instance_id)) {
        h.insert(OC_FILEID, v);
    }
}

pub fn with_status(code: StatusCode) -> Response {
    crate::error::status(code)
}
