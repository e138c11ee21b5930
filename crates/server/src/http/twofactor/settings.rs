//! Setting up factors, for the signed-in user: Nextcloud's JSON endpoints
//! (`apps/twofactor_totp/settings/…`, `apps/twofactor_backupcodes/…`), ours
//! for WebAuthn keys and email/SMS contacts, and the page that drives them.
//! Changing factors needs the password: confirmed recently in the session,
//! or given with the request (pages), or HTTP Basic itself.

use axum::{
    Extension, Form, Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use strongroom_core::{Error, User, audit::Event, secret::Secret, twofactor::contacts};

use super::{enc, refuse, relying_party, script_page};
use crate::{
    app::App,
    http::{
        auth::{Auth, guarded},
        client::Client,
        headers::CspNonce,
        pages::{escape, page, time},
        session_pages::{confirm_inline, safe_redirect, unavailable},
    },
};

const PAGE: &str = "/index.php/settings/user/twofactor";

/// A browser that remembers Basic credentials sends them with a form posted
/// from another site too, and the CSRF token guards sessions only: a
/// Basic-authenticated change without a body must prove it comes from a
/// program (a header that a cross-site form cannot set).
pub fn api_caller(auth: &Auth, headers: &HeaderMap) -> bool {
    let header = |n: &str, v: &str| {
        headers.get(n).and_then(|h| h.to_str().ok()).is_some_and(|h| h.starts_with(v))
    };
    !matches!(auth, Auth::Password(_))
        || header("ocs-apirequest", "true")
        || header("content-type", "application/json")
}

/// The user of a JSON call, with their password confirmed recently.
fn confirmed_user<'a>(app: &App, auth: &'a Auth) -> Result<&'a User, Response> {
    let Some(user) = auth.user() else {
        return Err(refuse(StatusCode::UNAUTHORIZED, "not logged in"));
    };
    if matches!(auth, Auth::Token(..)) {
        return Err(refuse(StatusCode::FORBIDDEN, "not possible with an app password"));
    }
    if !auth.confirmed(app.security.confirm_secs) {
        return Err(refuse(StatusCode::FORBIDDEN, "Password confirmation is required"));
    }
    Ok(user)
}

fn audit(app: &App, client: &Client, user: &User, name: &str, detail: Value) {
    app.audit.record(&client.origin(), Event::new(name).actor(&user.uid).detail(detail));
}

#[derive(Deserialize)]
pub struct TotpState {
    state: i64,
    code: Option<String>,
}

/// `POST /index.php/apps/twofactor_totp/settings/enable` with `{"state": 1}`
/// (new secret), `{"state": 2, "code": …}` (activate) or `{"state": 0}` (off).
pub async fn totp_enable(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Json(body): Json<TotpState>,
) -> Response {
    let user = match confirmed_user(&app, &auth) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let tf = &app.twofactor;
    match body.state {
        1 => match tf.totp_begin(user.id, &user.uid).await {
            Ok(e) => Json(json!({
                "state": 1, "secret": e.secret.expose(), "qrUrl": e.uri, "qrSvg": e.qr_svg
            }))
            .into_response(),
            Err(Error::Conflict(m)) => refuse(StatusCode::CONFLICT, &m),
            Err(e) => unavailable(&e),
        },
        2 => {
            let code = body.code.unwrap_or_default();
            let r = guarded(&app, &client, "2fa", &user.uid, || async {
                Ok(tf.totp_confirm(user.id, &code).await?.then_some(()))
            })
            .await;
            match r {
                Ok(Some(())) => {
                    audit(&app, &client, user, "twofactor.enabled", json!({ "provider": "totp" }));
                    Json(json!({ "state": 2 })).into_response()
                }
                Ok(None) => Json(json!({ "state": 1 })).into_response(),
                Err(Error::Busy(_)) => refuse(StatusCode::TOO_MANY_REQUESTS, "too many attempts"),
                Err(e) => unavailable(&e),
            }
        }
        0 => match tf.totp_disable(user.id).await {
            Ok(_) => {
                audit(&app, &client, user, "twofactor.disabled", json!({ "provider": "totp" }));
                Json(json!({ "state": 0 })).into_response()
            }
            Err(e) => unavailable(&e),
        },
        _ => refuse(StatusCode::BAD_REQUEST, "state must be 0, 1 or 2"),
    }
}

/// `GET /index.php/apps/twofactor_totp/settings/state`.
pub async fn totp_state(State(app): State<App>, Extension(auth): Extension<Auth>) -> Response {
    let Some(user) = auth.user() else { return refuse(StatusCode::UNAUTHORIZED, "not logged in") };
    match app.twofactor.factors(user.id).await {
        Ok(f) => Json(json!({ "state": if f.totp { 2 } else if f.totp_pending { 1 } else { 0 } }))
            .into_response(),
        Err(e) => unavailable(&e),
    }
}

/// `POST /index.php/apps/twofactor_backupcodes/settings/create`: a new set,
/// shown once; the old set stops working.
pub async fn backup_create(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
) -> Response {
    if !api_caller(&auth, &headers) {
        return refuse(StatusCode::PRECONDITION_FAILED, "send OCS-APIRequest: true");
    }
    let user = match confirmed_user(&app, &auth) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.twofactor.backup_generate(user.id).await {
        Ok(codes) => {
            audit(
                &app,
                &client,
                user,
                "twofactor.backup_codes_generated",
                json!({ "count": codes.len() }),
            );
            let codes: Vec<&str> = codes.iter().map(Secret::expose).collect();
            Json(json!({
                "codes": codes,
                "state": { "enabled": true, "total": codes.len(), "used": 0 }
            }))
            .into_response()
        }
        Err(e) => unavailable(&e),
    }
}

/// `GET /index.php/settings/user/twofactor/state`: the user's factors.
pub async fn state(State(app): State<App>, Extension(auth): Extension<Auth>) -> Response {
    let Some(user) = auth.user() else { return refuse(StatusCode::UNAUTHORIZED, "not logged in") };
    let tf = &app.twofactor;
    let (f, keys, enforced) = match tokio::try_join!(
        tf.factors(user.id),
        tf.webauthn_keys(user.id),
        tf.enforced_for(user.id)
    ) {
        Ok(x) => x,
        Err(e) => return unavailable(&e),
    };
    Json(json!({
        "factors": f, "providers": f.providers(), "keys": keys, "enforced": enforced,
        "email": send_available(&app, "email"), "sms": send_available(&app, "sms"),
    }))
    .into_response()
}

fn send_available(app: &App, kind: &str) -> bool {
    super::send::available(app, kind)
}

#[derive(Deserialize)]
pub struct KeyOptions {
    #[serde(default)]
    passwordless: bool,
}

/// `POST /index.php/settings/user/webauthn/options`: options for
/// `navigator.credentials.create`, with the ceremony's handle.
pub async fn webauthn_options(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Json(body): Json<KeyOptions>,
) -> Response {
    let (user, session, w) = match key_owner(&app, &auth, &client, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match app.twofactor.webauthn_register_start(&w, user, session, body.passwordless).await {
        Ok((options, handle)) => {
            Json(json!({ "options": options, "handle": handle.expose() })).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

/// Who registers a key, in which session (0 over Basic), for which relying
/// party: a user whose password is fresh, or, at login, a user under
/// enforcement with no factor yet, from the pending session.
async fn key_owner<'a>(
    app: &App,
    auth: &'a Auth,
    client: &Client,
    headers: &HeaderMap,
) -> Result<(&'a User, i64, webauthn_rs::prelude::Webauthn), Response> {
    let (user, session) = match auth {
        Auth::Pending(u, s) => {
            if !setup_allowed(app, u).await {
                return Err(refuse(StatusCode::FORBIDDEN, "a second factor is already set up"));
            }
            (&**u, s.id)
        }
        Auth::Session(_, s) => (confirmed_user(app, auth)?, s.id),
        _ => (confirmed_user(app, auth)?, 0),
    };
    let Some(w) = relying_party(app, client, headers) else {
        return Err(refuse(StatusCode::BAD_REQUEST, super::NO_RELYING_PARTY));
    };
    Ok((user, session, w))
}

/// Setting a factor up from a pending session is allowed only to a user
/// under enforcement who has none yet (otherwise it would skip the challenge).
pub async fn setup_allowed(app: &App, user: &User) -> bool {
    match app.twofactor.factors(user.id).await {
        Ok(f) => !f.any() && app.twofactor.enforced_for(user.id).await.unwrap_or(false),
        Err(_) => false,
    }
}

#[derive(Deserialize)]
pub struct KeyRegistration {
    handle: String,
    #[serde(default)]
    name: String,
    credential: Value,
    /// Where a login that sets the key up goes next.
    redirect_url: Option<String>,
}

/// `POST /index.php/settings/user/webauthn/register`: stores the new key.
pub async fn webauthn_register(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Json(body): Json<KeyRegistration>,
) -> Response {
    let (user, session, w) = match key_owner(&app, &auth, &client, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let tf = &app.twofactor;
    match tf
        .webauthn_register_finish(&w, user, session, &body.handle, &body.name, &body.credential)
        .await
    {
        Ok(key) => {
            audit(
                &app,
                &client,
                user,
                "twofactor.enabled",
                json!({
                    "provider": "webauthn", "key": key.id, "name": key.name, "passwordless": key.passwordless
                }),
            );
            if let Auth::Pending(_, s) = &auth {
                // Enrolment at login: the key just made is the second factor.
                let to = safe_redirect(body.redirect_url.as_deref());
                return super::challenge::finish(&app, &client, &headers, user, s, "webauthn", &to)
                    .await;
            }
            Json(json!({ "key": key })).into_response()
        }
        Err(Error::BadRequest(m)) => {
            audit(
                &app,
                &client,
                user,
                "twofactor.failure",
                json!({ "provider": "webauthn", "reason": m }),
            );
            refuse(StatusCode::BAD_REQUEST, &m)
        }
        Err(e) => unavailable(&e),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: Option<String>,
}

/// `POST /index.php/settings/user/webauthn/remove/{id}`: needs the password.
pub async fn webauthn_remove(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Path(id): Path<i64>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let user =
        match confirm_inline(&app, &auth, &client, f.password.as_deref().unwrap_or(""), || {
            refuse(StatusCode::FORBIDDEN, "Wrong password")
        })
        .await
        {
            Ok(u) => u,
            Err(r) => return r,
        };
    match app.twofactor.webauthn_remove(user.id, id).await {
        Ok(true) => {
            audit(
                &app,
                &client,
                user,
                "twofactor.disabled",
                json!({ "provider": "webauthn", "key": id }),
            );
            Redirect::to(&format!("{PAGE}?done=removed")).into_response()
        }
        Ok(false) => refuse(StatusCode::NOT_FOUND, "no such key"),
        Err(e) => unavailable(&e),
    }
}

#[derive(Deserialize)]
pub struct ContactForm {
    address: Option<String>,
    handle: Option<String>,
    code: Option<String>,
    password: Option<String>,
}

/// `POST /index.php/settings/user/twofactor/contact/{email|sms}`: with
/// `address` (and the password) sends a code there; with `handle` and
/// `code` confirms it, which enables the factor.
pub async fn contact(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Path(kind): Path<String>,
    Form(f): Form<ContactForm>,
) -> Response {
    let Some(user) = auth.user() else { return refuse(StatusCode::UNAUTHORIZED, "not logged in") };
    if matches!(auth, Auth::Token(..)) {
        return refuse(StatusCode::FORBIDDEN, "not possible with an app password");
    }
    if !matches!(kind.as_str(), "email" | "sms") || !send_available(&app, &kind) {
        return refuse(StatusCode::NOT_FOUND, "this channel is not configured");
    }
    if let (Some(handle), Some(code)) = (f.handle.as_deref(), f.code.as_deref()) {
        let tf = &app.twofactor;
        let r = super::budget::answer(&app, &client, &user.uid, || async {
            Ok(tf.code_check(user.id, &kind, handle, code).await?.then_some(()))
        })
        .await;
        return match r {
            Ok(Some(())) => {
                audit(&app, &client, user, "twofactor.enabled", json!({ "provider": kind }));
                Redirect::to(&format!("{PAGE}?done=contact")).into_response()
            }
            Ok(None) => refuse(StatusCode::FORBIDDEN, "wrong or expired code"),
            Err(Error::Busy(_)) => refuse(StatusCode::TOO_MANY_REQUESTS, "too many attempts"),
            Err(e) => unavailable(&e),
        };
    }
    if let Err(r) =
        confirm_inline(&app, &auth, &client, f.password.as_deref().unwrap_or(""), || {
            refuse(StatusCode::FORBIDDEN, "Wrong password")
        })
        .await
    {
        return r;
    }
    let address = f.address.unwrap_or_default().trim().to_owned();
    if let Err(Error::BadRequest(m)) = contacts::check_address(&kind, &address) {
        return refuse(StatusCode::BAD_REQUEST, &m);
    }
    match super::send::issue_and_send(&app, &client, user, &kind, &address).await {
        Ok(handle) => {
            let csrf = csrf_of(&auth);
            let body = format!(
                "<h1>Confirm</h1><p>Enter the code sent to {}.</p>\
                 <form method=\"post\" action=\"{PAGE}/contact/{kind}?requesttoken={csrf}\">\
                 <input type=\"hidden\" name=\"handle\" value=\"{}\">\
                 <p><label>Code <input name=\"code\" autocomplete=\"one-time-code\" required></label></p>\
                 <p><button>Confirm</button></p></form>",
                escape(&address),
                escape(handle.expose())
            );
            page("Confirm", &body).into_response()
        }
        Err(Error::Busy(_)) => refuse(StatusCode::TOO_MANY_REQUESTS, "too many codes sent"),
        Err(_) => refuse(StatusCode::BAD_GATEWAY, "the code could not be sent"),
    }
}

fn csrf_of(auth: &Auth) -> String {
    match auth {
        Auth::Session(_, s) | Auth::Pending(_, s) => {
            s.csrf.as_ref().map(|c| enc(c.expose())).unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// The signed-in browser user of a settings form, who gave the right
/// password with it; otherwise where the browser goes instead.
async fn page_user<'a>(
    app: &App,
    auth: &'a Auth,
    client: &Client,
    password: Option<String>,
) -> Result<&'a User, Response> {
    if !matches!(auth, Auth::Session(..)) {
        return Err(Redirect::to("/index.php/login").into_response());
    }
    confirm_inline(app, auth, client, password.as_deref().unwrap_or(""), || {
        Redirect::to(&format!("{PAGE}?done=wrongpassword")).into_response()
    })
    .await
}

/// `POST /index.php/settings/user/twofactor/totp`: the page's way to start
/// TOTP (with the password): shows the secret and QR code.
pub async fn page_totp(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let user = match page_user(&app, &auth, &client, f.password).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let e = match app.twofactor.totp_begin(user.id, &user.uid).await {
        Ok(e) => e,
        Err(Error::Conflict(_)) => return Redirect::to(PAGE).into_response(),
        Err(e) => return unavailable(&e),
    };
    let body = format!(
        "<h1>Set up TOTP</h1><p>Scan this code with an authenticator app, or enter the secret by hand.</p>\
         <figure>{}</figure><p>Secret: <code id=\"totp-secret\">{}</code></p>\
         <form method=\"post\" action=\"{PAGE}/totp/confirm?requesttoken={}\">\
         <p><label>Code from the app <input name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required autofocus></label></p>\
         <p><button>Activate</button></p></form>",
        e.qr_svg,
        escape(e.secret.expose()),
        csrf_of(&auth)
    );
    page("Set up TOTP", &body).into_response()
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: Option<String>,
    /// Where a login that sets TOTP up goes next.
    redirect_url: Option<String>,
}

/// `POST /index.php/settings/user/twofactor/totp/confirm`.
pub async fn page_totp_confirm(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let (user, pending) = match &auth {
        Auth::Session(u, _) => (&**u, None),
        Auth::Pending(u, s) => (&**u, Some(s)),
        _ => return Redirect::to("/index.php/login").into_response(),
    };
    if pending.is_some() && !setup_allowed(&app, user).await {
        return super::challenge::back_to_select(f.redirect_url.as_deref());
    }
    let code = f.code.unwrap_or_default();
    let tf = &app.twofactor;
    let r = super::budget::answer(&app, &client, &user.uid, || async {
        Ok(tf.totp_confirm(user.id, &code).await?.then_some(()))
    })
    .await;
    match r {
        Ok(Some(())) => {
            audit(&app, &client, user, "twofactor.enabled", json!({ "provider": "totp" }));
            match pending {
                Some(s) => {
                    let to = safe_redirect(f.redirect_url.as_deref());
                    super::challenge::finish(&app, &client, &headers, user, s, "totp", &to).await
                }
                None => Redirect::to(&format!("{PAGE}?done=totp")).into_response(),
            }
        }
        Ok(None) => {
            audit(
                &app,
                &client,
                user,
                "twofactor.failure",
                json!({ "provider": "totp", "reason": "wrong code at enrolment" }),
            );
            (StatusCode::FORBIDDEN, page("Wrong code", &format!(
                "<h1>Wrong code</h1><p>The code did not match. <a href=\"{PAGE}\">Start again</a>.</p>"
            )))
                .into_response()
        }
        Err(Error::Busy(_)) => (
            StatusCode::TOO_MANY_REQUESTS,
            page("Too many attempts", "<h1>Too many failed attempts</h1><p>Try again later.</p>"),
        )
            .into_response(),
        Err(e) => unavailable(&e),
    }
}

/// `POST /index.php/settings/user/twofactor/backup`: new codes, shown once.
pub async fn page_backup(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let user = match page_user(&app, &auth, &client, f.password).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.twofactor.backup_generate(user.id).await {
        Ok(codes) => {
            audit(
                &app,
                &client,
                user,
                "twofactor.backup_codes_generated",
                json!({ "count": codes.len() }),
            );
            let items: String = codes
                .iter()
                .map(|c| format!("<li><code>{}</code></li>", escape(c.expose())))
                .collect();
            let body = format!(
                "<h1>Backup codes</h1><p>Keep these somewhere safe. Each works once; they are not shown again.</p>\
                 <ol id=\"backup-codes\">{items}</ol><p><a href=\"{PAGE}\">Done</a></p>"
            );
            page("Backup codes", &body).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

/// `POST /index.php/settings/user/twofactor/{totp|email|sms}/off`: turns
/// one factor off (with the password).
pub async fn page_off(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Path(kind): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Response {
    if !matches!(kind.as_str(), "totp" | "email" | "sms") {
        return refuse(StatusCode::NOT_FOUND, "no such factor");
    }
    let user = match page_user(&app, &auth, &client, f.password).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let tf = &app.twofactor;
    let removed = match kind.as_str() {
        "totp" => tf.totp_disable(user.id).await,
        _ => tf.contact_remove(user.id, &kind).await,
    };
    match removed {
        Ok(_) => {
            audit(&app, &client, user, "twofactor.disabled", json!({ "provider": kind }));
            Redirect::to(&format!("{PAGE}?done=off")).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

/// `GET /index.php/settings/user/twofactor`: the user's factors.
pub async fn settings_page(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(nonce): Extension<CspNonce>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Response {
    let Auth::Session(user, _) = &auth else {
        return Redirect::to(&format!("/index.php/login?redirect_url={}", enc(PAGE)))
            .into_response();
    };
    let tf = &app.twofactor;
    let (f, keys, enforced) = match tokio::try_join!(
        tf.factors(user.id),
        tf.webauthn_keys(user.id),
        tf.enforced_for(user.id)
    ) {
        Ok(x) => x,
        Err(e) => return unavailable(&e),
    };
    let t = csrf_of(&auth);
    let pw = "<input name=\"password\" type=\"password\" aria-label=\"Your password\" placeholder=\"Your password\" required>";
    let notice = match q.done.as_deref() {
        Some("wrongpassword") => "<p role=\"alert\">Wrong password.</p>",
        Some("totp") => "<p role=\"status\">TOTP is on.</p>",
        Some("removed") => "<p role=\"status\">The key was removed.</p>",
        Some("contact") => "<p role=\"status\">Codes will be sent there at login.</p>",
        Some("off") => "<p role=\"status\">The factor is off.</p>",
        _ => "",
    };
    let off = |kind: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"{PAGE}/{kind}/off?requesttoken={t}\">{pw}<button>{label}</button></form>"
        )
    };
    let totp = if f.totp {
        format!("<p id=\"totp-state\">TOTP is on.</p>{}", off("totp", "Turn TOTP off"))
    } else {
        format!(
            "<form method=\"post\" action=\"{PAGE}/totp?requesttoken={t}\">{pw}<button>Set up TOTP</button></form>"
        )
    };
    let keys_rows: String = keys
        .iter()
        .map(|k| {
            format!(
                "<li>{} ({}, added {}) <form method=\"post\" action=\"/index.php/settings/user/webauthn/remove/{}?requesttoken={t}\">{pw}<button>Remove</button></form></li>",
                escape(&k.name),
                if k.passwordless { "passkey" } else { "second factor" },
                time(k.created_at),
                k.id
            )
        })
        .collect();
    let mut contacts = String::new();
    for kind in ["email", "sms"] {
        if !send_available(&app, kind) {
            continue;
        }
        let on = if kind == "email" { f.email } else { f.sms };
        contacts.push_str(&format!(
            "<h3>{}</h3><p>{}</p><form method=\"post\" action=\"{PAGE}/contact/{kind}?requesttoken={t}\">\
             <input name=\"address\" aria-label=\"{}\" required>{pw}<button>Send a code to confirm</button></form>",
            super::label(kind),
            if on { format!("On.</p>{}<p>Change:", off(kind, "Turn off")) } else { "Off.".to_owned() },
            if kind == "email" { "Email address" } else { "Phone number" }
        ));
    }
    let body = format!(
        "<h1>Two-factor authentication</h1>{notice}{}\
         <h2>Authenticator app</h2>{totp}\
         <h2>Security keys and passkeys</h2><ul id=\"webauthn-keys\">{keys_rows}</ul>\
         <form id=\"webauthn-register\" data-requesttoken=\"{t}\"><p><label>Name <input name=\"name\" value=\"Security key\"></label>\
         <label><input type=\"checkbox\" name=\"passwordless\" value=\"1\"> Also for login without password (passkey)</label>\
         <button type=\"button\" id=\"webauthn-add\">Add a key</button></p></form><p id=\"webauthn-status\" role=\"status\"></p>\
         <p>Adding a key needs a recent password confirmation.</p>\
         <form id=\"confirm-password\" data-requesttoken=\"{t}\">{pw}<button type=\"button\" id=\"confirm-button\">Confirm password</button></form>\
         <h2>Backup codes</h2><p id=\"backup-state\">{} of {} left.</p>\
         <form method=\"post\" action=\"{PAGE}/backup?requesttoken={t}\">{pw}<button>Make new backup codes</button></form>\
         {contacts}<p><a href=\"/index.php/settings/user/security\">Devices and sessions</a></p>",
        if enforced { "<p>Your administrator requires a second factor.</p>" } else { "" },
        f.backup_remaining,
        f.backup_total
    );
    script_page(&nonce, "Two-factor authentication", &body)
}
