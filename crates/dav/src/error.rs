//! The one place where domain errors become WebDAV responses, in the sabre
//! XML format Nextcloud's clients parse (`s:exception`, `s:message`).

use axum::{body::Body, response::Response};
use http::{StatusCode, header};
use strongroom_core::Error;

use crate::xml_out::{ROOT_NS, escape};

pub const XML: &str = "application/xml; charset=utf-8";

/// Maps an error to a response. `prefix` turns lock roots into hrefs.
pub fn response(e: &Error, prefix: &str) -> Response {
    let (status, exception) = match e {
        Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
        Error::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
        Error::AlreadyExists(_) | Error::NotAllowed(_) => {
            (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed")
        }
        Error::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
        Error::PreconditionFailed(_) => (StatusCode::PRECONDITION_FAILED, "PreconditionFailed"),
        Error::Locked(_) | Error::Busy(_) => (StatusCode::LOCKED, "Locked"),
        Error::InsufficientStorage(_) => (StatusCode::INSUFFICIENT_STORAGE, "InsufficientStorage"),
        Error::UnsupportedMediaType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
        }
        Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "BadRequest"),
        Error::TimedOut(_) => (StatusCode::REQUEST_TIMEOUT, "BadRequest"),
        Error::Unavailable(_) | Error::Retry => {
            (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
        }
        Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Exception"),
    };
    let message = match e {
        Error::NotFound => "The resource does not exist".to_owned(),
        Error::Internal(m) => {
            tracing::error!(error = %m, "internal error");
            "An internal error occurred".to_owned()
        }
        Error::Unavailable(m) => {
            tracing::warn!(error = %m, "service unavailable");
            "The service is temporarily unavailable".to_owned()
        }
        other => other.to_string(),
    };
    let extra = match e {
        Error::Locked(root) => {
            let root = strongroom_core::TreePath::from_key(root).unwrap_or_default();
            let href = crate::paths::href(prefix, &root, false);
            format!(
                "<d:lock-token-submitted><d:href>{}</d:href></d:lock-token-submitted>",
                escape(&href)
            )
        }
        _ => String::new(),
    };
    let mut r = error_body(status, exception, &message, &extra);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    r
}

/// A sabre-style error document with an optional precondition element.
pub fn error_body(status: StatusCode, exception: &str, message: &str, extra: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error {ROOT_NS}>{extra}<s:exception>Sabre\\DAV\\Exception\\{exception}</s:exception><s:message>{}</s:message></d:error>\n",
        escape(message)
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(XML));
    r
}

/// A plain status with no body.
pub fn status(code: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}
