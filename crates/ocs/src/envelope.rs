//! The OCS envelope: `{"ocs":{"meta":{…},"data":…}}` or the same as XML, with
//! the status code rules of API versions 1 and 2.

use axum::{body::Body, response::Response};
use http::{HeaderValue, StatusCode, header, request::Parts};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// `format=` in the query wins; then an `Accept` naming JSON; else XML.
    pub fn of(parts: &Parts) -> Format {
        Format::from_request(
            parts.uri.query(),
            parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
        )
    }

    pub fn from_request(query: Option<&str>, accept: Option<&str>) -> Format {
        for pair in query.unwrap_or("").split('&') {
            match pair {
                "format=json" => return Format::Json,
                "format=xml" => return Format::Xml,
                _ => {}
            }
        }
        if accept.unwrap_or("").contains("application/json") { Format::Json } else { Format::Xml }
    }
}

/// A failed OCS call: the application status code and a message.
#[derive(Debug, Clone)]
pub struct OcsError {
    pub code: u16,
    pub message: String,
}

impl OcsError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        OcsError { code, message: message.into() }
    }
    pub fn unauthorised() -> Self {
        Self::new(997, "Current user is not logged in")
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(998, m)
    }
}

/// HTTP status for an application code in API version 2.
fn v2_status(code: u16) -> StatusCode {
    match code {
        100 | 200 => StatusCode::OK,
        997 => StatusCode::UNAUTHORIZED,
        998 => StatusCode::NOT_FOUND,
        996 | 999 => StatusCode::INTERNAL_SERVER_ERROR,
        c if (200..600).contains(&c) => StatusCode::from_u16(c).unwrap_or(StatusCode::BAD_REQUEST),
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Renders a result in the requested version and format.
pub fn render(version: Version, format: Format, result: Result<Value, OcsError>) -> Response {
    let (code, message, data) = match result {
        Ok(d) => (if version == Version::V1 { 100 } else { 200 }, "OK".to_owned(), d),
        Err(e) => (e.code, e.message, Value::Array(Vec::new())),
    };
    let status = match version {
        Version::V1 if code == 997 => StatusCode::UNAUTHORIZED,
        Version::V1 => StatusCode::OK,
        Version::V2 => v2_status(code),
    };
    let ok = match version {
        Version::V1 => code == 100,
        Version::V2 => status.is_success(),
    };
    let (body, ctype) = match format {
        Format::Json => {
            (json_body(version, ok, code, &message, &data), "application/json; charset=utf-8")
        }
        Format::Xml => {
            (xml_body(version, ok, code, &message, &data), "application/xml; charset=utf-8")
        }
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

/// Compact JSON with `statuscode` right before `message`, as the desktop
/// client extracts it with a pattern over the raw text.
fn json_body(version: Version, ok: bool, code: u16, message: &str, data: &Value) -> String {
    let status = if ok { "ok" } else { "failure" };
    let paging = if version == Version::V1 { r#","totalitems":"","itemsperpage":"""# } else { "" };
    format!(
        r#"{{"ocs":{{"meta":{{"status":"{status}","statuscode":{code},"message":{}{paging}}},"data":{}}}}}"#,
        Value::String(message.to_owned()),
        data
    )
}

fn xml_body(version: Version, ok: bool, code: u16, message: &str, data: &Value) -> String {
    let status = if ok { "ok" } else { "failure" };
    let mut out = String::from("<?xml version=\"1.0\"?>\n<ocs>\n <meta>\n");
    out.push_str(&format!(
        "  <status>{status}</status>\n  <statuscode>{code}</statuscode>\n  <message>{}</message>\n",
        escape(message)
    ));
    if version == Version::V1 {
        out.push_str("  <totalitems></totalitems>\n  <itemsperpage></itemsperpage>\n");
    }
    out.push_str(" </meta>\n");
    match data {
        Value::Array(a) if a.is_empty() => out.push_str(" <data/>\n"),
        _ => {
            out.push_str(" <data>");
            xml_value(&mut out, data);
            out.push_str("</data>\n");
        }
    }
    out.push_str("</ocs>\n");
    out
}

/// Objects become elements, arrays repeated `<element>`s, `true` "1" and `false` "".
fn xml_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "1" } else { "" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&escape(s)),
        Value::Array(a) => {
            for item in a {
                out.push_str("<element>");
                xml_value(out, item);
                out.push_str("</element>");
            }
        }
        Value::Object(o) => {
            for (k, item) in o {
                let tag = if k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    k.as_str()
                } else {
                    "element"
                };
                out.push_str(&format!("<{tag}>"));
                xml_value(out, item);
                out.push_str(&format!("</{tag}>"));
            }
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> (u16, String) {
        let s = r.status().as_u16();
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (s, String::from_utf8(b.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn v1_hides_failures_in_the_body_v2_in_the_status() {
        let (s, b) =
            body(render(Version::V1, Format::Json, Err(OcsError::not_found("gone")))).await;
        assert_eq!(s, 200);
        assert!(b.contains(r#""status":"failure","statuscode":998,"message":"gone""#), "{b}");
        let (s, _) =
            body(render(Version::V2, Format::Json, Err(OcsError::not_found("gone")))).await;
        assert_eq!(s, 404);
        let (s, _) = body(render(Version::V1, Format::Xml, Err(OcsError::unauthorised()))).await;
        assert_eq!(s, 401);
        let (s, b) = body(render(Version::V2, Format::Xml, Err(OcsError::new(102, "x")))).await;
        assert_eq!(s, 400);
        assert!(b.contains("<statuscode>102</statuscode>") && b.contains("<data/>"));
        let (s, b) =
            body(render(Version::V2, Format::Json, Ok(serde_json::json!({"id": "a"})))).await;
        assert_eq!(s, 200);
        assert!(b.contains(r#""statuscode":200,"#) && b.contains(r#""data":{"id":"a"}"#), "{b}");
    }

    #[test]
    fn xml_renders_lists_and_booleans() {
        let mut out = String::new();
        xml_value(&mut out, &serde_json::json!({"a": [1, 2], "b": true, "c": false, "d": "<x>"}));
        assert_eq!(
            out,
            "<a><element>1</element><element>2</element></a><b>1</b><c></c><d>&lt;x&gt;</d>"
        );
    }
}
