//! Login without a password: the browser offers a discoverable key
//! (registered as "passwordless") and proves user verification (PIN or
//! biometric), which makes it two factors in one. Guarded like the login
//! form: the double-submit login cookie against cross-site posts, the
//! brute-force budget of the client's address, the audit log.

use axum::{
    Extension, Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use strongroom_core::{Error, audit::Event, twofactor::webauthn::Refused};

use super::refuse;
use super::relying_party;
use crate::{
    app::App,
    http::{
        auth::guarded,
        client::Client,
        session_pages::{login_token_matches, safe_redirect, start_session, unavailable},
    },
};

/// `POST /index.php/login/passkey/options`.
pub async fn options(
    State(app): State<App>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
) -> Response {
    let Some(w) = relying_party(&app, &client, &headers) else {
        return refuse(StatusCode::BAD_REQUEST, super::NO_RELYING_PARTY);
    };
    match app.twofactor.passkey_start(&w).await {
        Ok((options, handle)) => {
            Json(json!({ "options": options, "handle": handle.expose() })).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

#[derive(Deserialize)]
pub struct Finish {
    handle: String,
    credential: Value,
    login_token: Option<String>,
    redirect_url: Option<String>,
}

/// `POST /index.php/login/passkey`: on success, a full session.
pub async fn finish(
    State(app): State<App>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Json(f): Json<Finish>,
) -> Response {
    if !login_token_matches(&headers, client.secure, f.login_token.as_deref()) {
        return refuse(StatusCode::PRECONDITION_FAILED, "CSRF check failed");
    }
    let Some(w) = relying_party(&app, &client, &headers) else {
        return refuse(StatusCode::BAD_REQUEST, super::NO_RELYING_PARTY);
    };
    let mut refusal = None;
    let tf = &app.twofactor;
    // No login name is known before the key answers: the budget is the address's.
    let r = guarded(&app, &client, "passkey", "", || async {
        match tf.passkey_finish(&w, &f.handle, &f.credential).await? {
            Ok(user_id) => Ok(Some(user_id)),
            Err(r) => {
                refusal = Some(r);
                Ok(None)
            }
        }
    })
    .await;
    let user_id = match r {
        Ok(Some(id)) => id,
        Ok(None) => {
            let reason = refusal.map(Refused::reason).unwrap_or("refused");
            app.audit.record(
                &client.origin(),
                Event::new("twofactor.failure")
                    .detail(json!({ "provider": "passkey", "reason": reason })),
            );
            return refuse(StatusCode::FORBIDDEN, "The passkey was not accepted");
        }
        Err(Error::Busy(_)) => {
            return refuse(StatusCode::TOO_MANY_REQUESTS, "Too many failed attempts");
        }
        Err(e) => return unavailable(&e),
    };
    let user = match app.users.get_by_id(user_id).await {
        Ok(Some(u)) if u.enabled => u,
        Ok(_) => return refuse(StatusCode::FORBIDDEN, "The account is disabled"),
        Err(e) => return unavailable(&e),
    };
    let redirect = safe_redirect(f.redirect_url.as_deref());
    let mut r = start_session(&app, &client, &user, false, "passkey", &redirect).await;
    if r.status().is_redirection() {
        // The script navigates itself; it gets the target and the cookies.
        *r.status_mut() = StatusCode::OK;
        r.headers_mut().remove(http::header::LOCATION);
        let cookies: Vec<_> =
            r.headers().get_all(http::header::SET_COOKIE).iter().cloned().collect();
        let mut out = Json(json!({ "redirect": redirect })).into_response();
        for c in cookies {
            out.headers_mut().append(http::header::SET_COOKIE, c);
        }
        return out;
    }
    r
}
