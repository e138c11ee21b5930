//! Maps URL prefixes to WebDAV mounts: `/remote.php/dav/files/USER/…`, the
//! legacy `/remote.php/webdav/…` (the authenticated user's own files), and the
//! user's `uploads`, `trashbin` and `versions` collections; and `/ocs/…`.

use axum::{
    extract::{Request, State},
    response::Response,
};
use futures_util::FutureExt;
use http::StatusCode;
use percent_encoding::percent_decode_str;

use strongroom_dav::Special;
use strongroom_ocs::{Caller, Version};

use super::auth::{Auth, unauthorized};
use crate::app::App;

const DAV: &str = "/remote.php/dav/";
const WEBDAV: &str = "/remote.php/webdav";

/// Each branch is boxed, so this future stays small (see `strongroom_dav::dispatch`).
pub async fn dispatch(State(app): State<App>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix(DAV) {
        let (kind, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let (user_raw, below) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let special = match kind {
            "files" => None,
            "uploads" => Some(Special::Uploads),
            "trashbin" => Some(Special::Trash),
            "versions" => Some(Special::Versions),
            _ => return not_found(),
        };
        if user_raw.is_empty() {
            return not_found();
        }
        return files(&app, req, special, kind, user_raw, below).boxed().await;
    }
    if path == WEBDAV || path.starts_with("/remote.php/webdav/") {
        let below = path[WEBDAV.len()..].to_owned();
        return legacy(&app, req, &below).boxed().await;
    }
    if path.starts_with("/public.php/") {
        return match super::public::dav::dispatch(&app, req).boxed().await {
            Some(r) => r,
            None => not_found(),
        };
    }
    for (prefix, version) in [("/ocs/v1.php", Version::V1), ("/ocs/v2.php", Version::V2)] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return ocs(&app, req, version, rest).boxed().await;
        }
    }
    not_found()
}

async fn files(
    app: &App,
    req: Request,
    special: Option<Special>,
    kind: &str,
    user_raw: &str,
    below: &str,
) -> Response {
    let auth = req.extensions().get::<Auth>().cloned().unwrap_or(Auth::Anonymous);
    let Some((who, me)) = auth.principal() else { return anonymous(req).await };
    let Ok(uid) = percent_decode_str(user_raw).decode_utf8() else { return not_found() };
    // The tree named in the URL; the file service's door decides whether `who` may use it.
    let owner = if uid.eq_ignore_ascii_case(&me.uid) {
        Some(me.clone())
    } else {
        match app.users.get(&uid).await {
            Ok(u) => u,
            Err(e) => {
                return strongroom_dav::error_body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    &e.to_string(),
                    "",
                );
            }
        }
    };
    let Some(owner) = owner else { return not_found() };
    let files_prefix = format!("{DAV}files/{user_raw}");
    match special {
        None => {
            strongroom_dav::handle(&app.dav, &who, &owner, &files_prefix, below, req).boxed().await
        }
        Some(s) => {
            let prefix = format!("{DAV}{kind}/{user_raw}");
            strongroom_dav::handle_special(
                &app.dav,
                s,
                &who,
                &owner,
                &prefix,
                &files_prefix,
                below,
                req,
            )
            .boxed()
            .await
        }
    }
}

async fn legacy(app: &App, req: Request, below: &str) -> Response {
    let auth = req.extensions().get::<Auth>().cloned().unwrap_or(Auth::Anonymous);
    let Some((who, me)) = auth.principal() else { return anonymous(req).await };
    let me = me.clone();
    strongroom_dav::handle(&app.dav, &who, &me, WEBDAV, below, req).await
}

async fn ocs(app: &App, req: Request, version: Version, rest: &str) -> Response {
    let auth = req.extensions().get::<Auth>().cloned().unwrap_or(Auth::Anonymous);
    let caller = match &auth {
        Auth::Anonymous | Auth::Pending(..) => Caller::Anonymous,
        Auth::Password(u) => Caller::Password(u),
        Auth::Token(u, t) => Caller::AppToken(u, t),
        Auth::Session(u, t) => Caller::Session(u, t),
    };
    let origin = req
        .extensions()
        .get::<super::client::Client>()
        .map(super::client::Client::origin)
        .unwrap_or_default();
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, strongroom_dav::MAX_XML_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let e = body_refusal(&e);
            return strongroom_ocs::render(version, strongroom_ocs::Format::of(&parts), Err(e));
        }
    };
    strongroom_ocs::handle(&app.ocs, version, rest, &parts, &body, caller, &origin).await
}

/// Why an OCS request's body could not be read: too large (413), not sent
/// on time (408, `client_stall_secs`), or cut short (400).
fn body_refusal(e: &axum::Error) -> strongroom_ocs::OcsError {
    use std::error::Error as _;
    let mut cause = e.source();
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return strongroom_ocs::OcsError::new(413, "the request body is too large");
        }
        cause = c.source();
    }
    match strongroom_dav::stalled(e) {
        true => strongroom_ocs::OcsError::new(408, format!("the request body did not arrive: {e}")),
        false => {
            strongroom_ocs::OcsError::new(400, format!("the request body could not be read: {e}"))
        }
    }
}

async fn anonymous(req: Request) -> Response {
    let r = unauthorized(&req, "authentication required");
    strongroom_dav::refuse_request(req, r).await
}

fn not_found() -> Response {
    // The same words as any other missing resource: whether an account exists is not told.
    strongroom_dav::error_body(StatusCode::NOT_FOUND, "NotFound", "The resource does not exist", "")
}
