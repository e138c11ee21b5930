//! WebDAV for visitors of a public link: `/public.php/dav/files/TOKEN/…`
//! (password, if any, as the Basic password with any user name) and the
//! legacy `/public.php/webdav/…` (the token as the Basic user name).

use axum::{extract::Request, response::Response};
use http::{StatusCode, header};
use strongroom_core::sharing::PublicLink;

use super::{Attempt, admit, audit, has_pass, try_password, unknown_token};
use crate::{
    app::App,
    http::{
        auth::{basic_credentials, throttled, unauthorized, unavailable},
        client::Client,
    },
};

const NEW: &str = "/public.php/dav/files/";
const LEGACY: &str = "/public.php/webdav";

/// Serves `/public.php/…`; `None` when the path is not a public DAV path.
pub async fn dispatch(app: &App, req: Request) -> Option<Response> {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix(NEW) {
        let (token, below) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let prefix = format!("{NEW}{token}");
        return Some(serve(app, req, token.to_owned(), &prefix, below).await);
    }
    if path == LEGACY || path.starts_with("/public.php/webdav/") {
        let below = path[LEGACY.len()..].to_owned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(basic_credentials)
            .map(|(login, _)| login);
        let Some(token) = token else {
            let r = unauthorized(&req, "the link's token is the user name");
            return Some(strongroom_dav::refuse_request(req, r).await);
        };
        return Some(serve(app, req, token, LEGACY, &below).await);
    }
    None
}

fn gone() -> Response {
    strongroom_dav::error_body(
        StatusCode::NOT_FOUND,
        "NotFound",
        "The requested share does not exist",
        "",
    )
}

async fn serve(app: &App, req: Request, token: String, prefix: &str, below: &str) -> Response {
    let client = req.extensions().get::<Client>().cloned().unwrap_or_else(|| Client::of(app, &req));
    match admit(app, &client).await {
        Ok(true) => {}
        Ok(false) => return throttled(req).await,
        Err(e) => return unavailable(&e),
    }
    let link = match app.shares.link(&token).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            if let Err(e) = unknown_token(app, &client).await {
                return unavailable(&e);
            }
            return strongroom_dav::refuse_request(req, gone()).await;
        }
        Err(e) => return unavailable(&e),
    };
    match unlock(app, &client, req.headers(), &link).await {
        Ok(true) => {}
        Ok(false) => {
            let r = unauthorized(&req, "this link needs its password");
            return strongroom_dav::refuse_request(req, r).await;
        }
        Err(Some(r)) => return strongroom_dav::refuse_request(req, r).await,
        Err(None) => return throttled(req).await,
    }
    let detail = serde_json::json!({ "method": req.method().as_str(), "path": below });
    audit(app, &client.origin(), &link, "share.public_access", detail);
    strongroom_dav::handle_link(&app.dav, &link, prefix, below, req).await
}

/// Whether the visitor may use a protected link: the password in this
/// request, or a pass from the page. `Err(None)` means throttled.
async fn unlock(
    app: &App,
    client: &Client,
    headers: &http::HeaderMap,
    link: &PublicLink,
) -> Result<bool, Option<Response>> {
    if has_pass(app, headers, link).await.map_err(|e| Some(unavailable(&e)))? {
        return Ok(true);
    }
    let Some((_, password)) = headers.get(header::AUTHORIZATION).and_then(basic_credentials) else {
        return Ok(false);
    };
    match try_password(app, client, link, &password).await.map_err(|e| Some(unavailable(&e)))? {
        Attempt::Right => Ok(true),
        Attempt::Wrong => Ok(false),
        Attempt::Throttled => Err(None),
    }
}
