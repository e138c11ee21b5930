//! The browser login: the login form, login, logout, password confirmation
//! and the CSRF token endpoint.
//!
//! The login form is protected against cross-site posts by a double-submit
//! cookie (`SameSite=Strict`): a form posted from elsewhere has no cookie to
//! match. A login always starts a new session, so an identifier planted
//! before login is never promoted (session fixation).

use axum::{
    Extension, Form, Json,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::json;
use strongroom_core::{audit::Event, secret::Secret, tokens::random_secret};
use subtle::ConstantTimeEq;

use super::{
    auth::{Auth, guarded, guarded_password},
    client::{Client, LAX, LOGIN_CSRF, SESSION, STRICT, cookie, cookie_name, set_cookie},
    pages::{escape, page},
    twofactor::challenge::back_to_select,
};
use crate::app::App;

/// Where a browser lands after login: the devices and security page.
pub const HOME: &str = "/index.php/settings/user/security";

#[derive(Deserialize)]
pub struct LoginQuery {
    redirect_url: Option<String>,
    error: Option<String>,
}

/// A redirect target is accepted only as a path on this site.
pub fn safe_redirect(url: Option<&str>) -> String {
    match url {
        Some(u)
            if u.starts_with('/')
                && !u.starts_with("//")
                && !u.contains('\\')
                && !u.chars().any(char::is_control) =>
        {
            u.to_owned()
        }
        _ => HOME.to_owned(),
    }
}

pub async fn form(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(nonce): Extension<super::headers::CspNonce>,
    Extension(client): Extension<Client>,
    Query(q): Query<LoginQuery>,
) -> Response {
    if auth.user().is_some() {
        return Redirect::to(&safe_redirect(q.redirect_url.as_deref())).into_response();
    }
    if let Auth::Pending(..) = auth {
        return back_to_select(q.redirect_url.as_deref());
    }
    let token = random_secret(43);
    let error = match q.error.as_deref() {
        Some("throttled") => "<p role=\"alert\">Too many failed attempts. Try again later.</p>",
        Some(_) => "<p role=\"alert\">Wrong user or password.</p>",
        None => "",
    };
    let remember = if app.security.remember_secs > 0 {
        "<p><label><input type=\"checkbox\" name=\"remember_login\" value=\"1\"> Stay logged in</label></p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Log in</h1>{error}<form id=\"login-form\" method=\"post\" action=\"/index.php/login\">\
         <input type=\"hidden\" name=\"login_token\" value=\"{}\">\
         <input type=\"hidden\" name=\"redirect_url\" value=\"{}\">\
         <p><label>User <input name=\"user\" autocomplete=\"username\" required autofocus></label></p>\
         <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
         {remember}<p><button type=\"submit\">Log in</button></p></form>\
         <p><button type=\"button\" id=\"passkey-login\">Log in with a passkey</button></p>\
         <p id=\"webauthn-status\" role=\"status\"></p>",
        escape(token.expose()),
        escape(&safe_redirect(q.redirect_url.as_deref()))
    );
    let mut r = super::twofactor::script_page(&nonce, "Log in", &body);
    let c = set_cookie(
        &cookie_name(LOGIN_CSRF, client.secure),
        token.expose(),
        "Strict",
        Some(3600),
        client.secure,
    );
    add_cookie(&mut r, &c);
    r
}

#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    login_token: Option<String>,
    redirect_url: Option<String>,
    remember_login: Option<String>,
}

pub async fn login(
    State(app): State<App>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let tls = client.secure;
    if !login_token_matches(&headers, tls, f.login_token.as_deref()) {
        return (StatusCode::PRECONDITION_FAILED, Json(json!({ "message": "CSRF check failed" })))
            .into_response();
    }
    let again =
        |reason: &str| Redirect::to(&format!("/index.php/login?error={reason}")).into_response();
    let password = Secret::new(f.password);
    let user = match guarded_password(&app, &client, &f.user, &password).await {
        Ok(Some(u)) => u,
        Ok(None) => return again("1"),
        Err(strongroom_core::Error::Busy(_)) => return again("throttled"),
        Err(e) => return unavailable(&e),
    };
    // A session cookie the browser already had is ended: a new id at every login.
    if let Some(old) = cookie(&headers, &cookie_name(SESSION, tls)) {
        let _ = app.tokens.end_session(old).await;
    }
    let remember = f.remember_login.is_some() && app.security.remember_secs > 0;
    let pending = match app.twofactor.required(user.id).await {
        Ok(p) => p,
        Err(e) => return unavailable(&e),
    };
    let redirect = safe_redirect(f.redirect_url.as_deref());
    if !pending {
        return start_session(&app, &client, &user, remember, "password", &redirect).await;
    }
    start_pending_session(&app, &client, &user, remember, &redirect).await
}

/// The password was right but a second factor is due: starts a session
/// good for the challenge only and sends the browser there; `redirect` is
/// where it goes once the challenge is passed.
pub async fn start_pending_session(
    app: &App,
    client: &Client,
    user: &strongroom_core::User,
    remember: bool,
    redirect: &str,
) -> Response {
    let (session, secret) = match app
        .tokens
        .start_session(user, remember, &client.address.to_string(), &client.user_agent, true)
        .await
    {
        Ok(s) => s,
        Err(e) => return unavailable(&e),
    };
    app.audit.record(
        &client.origin(),
        Event::new("twofactor.challenge")
            .actor(&user.uid)
            .target(&session.id.to_string())
            .detail(json!({ "via": "web" })),
    );
    let mut r = back_to_select(Some(redirect));
    set_session_cookies(&mut r, secret.expose(), None, client.secure);
    r
}

/// The login forms' guard against cross-site posts: the token in the form
/// must equal the `Strict` cookie the login page set (another site's form
/// has no such cookie to match).
pub fn login_token_matches(headers: &HeaderMap, tls: bool, token: Option<&str>) -> bool {
    match (cookie(headers, &cookie_name(LOGIN_CSRF, tls)), token) {
        (Some(a), Some(b)) => bool::from(a.as_bytes().ct_eq(b.as_bytes())),
        _ => false,
    }
}

/// Starts a full session for a user who passed every factor (`via` names the
/// last one), sets its cookies and redirects to `redirect`.
pub async fn start_session(
    app: &App,
    client: &Client,
    user: &strongroom_core::User,
    remember: bool,
    via: &str,
    redirect: &str,
) -> Response {
    let tls = client.secure;
    let (session, secret) = match app
        .tokens
        .start_session(user, remember, &client.address.to_string(), &client.user_agent, false)
        .await
    {
        Ok(s) => s,
        Err(e) => return unavailable(&e),
    };
    let id = session.id.to_string();
    app.audit.record(
        &client.origin(),
        Event::new("login.success")
            .actor(&user.uid)
            .target(&id)
            .detail(json!({ "via": "web", "factor": via, "remember": remember })),
    );
    let mut r = Redirect::to(redirect).into_response();
    let age = remember.then_some(app.security.remember_secs);
    set_session_cookies(&mut r, secret.expose(), age, tls);
    add_cookie(&mut r, &set_cookie(&cookie_name(LOGIN_CSRF, tls), "", "Strict", Some(0), tls));
    r
}

fn set_session_cookies(r: &mut Response, secret: &str, age: Option<i64>, tls: bool) {
    add_cookie(r, &set_cookie(&cookie_name(SESSION, tls), secret, "Lax", age, tls));
    add_cookie(r, &set_cookie(&cookie_name(LAX, tls), "true", "Lax", age, tls));
    add_cookie(r, &set_cookie(&cookie_name(STRICT, tls), "true", "Strict", age, tls));
}

/// Ends the session (POST, or GET with the request token as Nextcloud does;
/// a GET without it, as a link on another site would send, ends nothing).
pub async fn logout(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    method: http::Method,
    uri: http::Uri,
    headers: HeaderMap,
) -> Response {
    let tls = client.secure;
    if let Auth::Session(user, s) | Auth::Pending(user, s) = &auth {
        if method == http::Method::GET {
            let given = super::auth::query_param(uri.query(), "requesttoken").unwrap_or_default();
            let want = s.csrf.as_ref().map(|c| c.expose().to_owned()).unwrap_or_default();
            if want.is_empty() || !bool::from(given.as_bytes().ct_eq(want.as_bytes())) {
                return (
                    StatusCode::PRECONDITION_FAILED,
                    Json(json!({ "message": "CSRF check failed" })),
                )
                    .into_response();
            }
        }
        if let Some(c) = cookie(&headers, &cookie_name(SESSION, tls)) {
            let _ = app.tokens.end_session(c).await;
        }
        let id = s.id.to_string();
        app.audit.record(&client.origin(), Event::new("logout").actor(&user.uid).target(&id));
    }
    let mut r = Redirect::to("/index.php/login").into_response();
    for name in [SESSION, LAX, STRICT] {
        add_cookie(&mut r, &set_cookie(&cookie_name(name, tls), "", "Lax", Some(0), tls));
    }
    r
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    password: String,
}

/// `POST /index.php/login/confirm`: re-enter the password to allow sensitive
/// actions for a while. Wrong passwords are throttled like logins.
pub async fn confirm(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let Auth::Session(user, session) = &auth else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let password = Secret::new(f.password);
    match guarded(&app, &client, "sudo", &user.uid, || {
        app.users.verify_password(&user.uid, &password)
    })
    .await
    {
        Ok(Some(_)) => {
            if let Err(e) = app.tokens.confirm(session.id).await {
                return unavailable(&e);
            }
            Json(json!({ "lastLogin": strongroom_core::now_secs() })).into_response()
        }
        Ok(None) => {
            (StatusCode::FORBIDDEN, Json(json!({ "message": "Wrong password" }))).into_response()
        }
        Err(strongroom_core::Error::Busy(_)) => StatusCode::TOO_MANY_REQUESTS.into_response(),
        Err(e) => unavailable(&e),
    }
}

/// Page actions that need the password take it in the same form: checked
/// like a password confirmation (throttled as "sudo"), which it also
/// records for the session. `wrong` is the answer to a wrong password.
pub async fn confirm_inline<'a>(
    app: &App,
    auth: &'a Auth,
    client: &Client,
    password: &str,
    wrong: impl FnOnce() -> Response,
) -> Result<&'a strongroom_core::User, Response> {
    let Auth::Session(user, session) = auth else {
        return Err(StatusCode::UNAUTHORIZED.into_response());
    };
    let password = Secret::new(password);
    match guarded(app, client, "sudo", &user.uid, || {
        app.users.verify_password(&user.uid, &password)
    })
    .await
    {
        Ok(Some(_)) => {
            app.tokens.confirm(session.id).await.map_err(|e| unavailable(&e))?;
            Ok(user)
        }
        Ok(None) => Err(wrong()),
        Err(strongroom_core::Error::Busy(_)) => Err(StatusCode::TOO_MANY_REQUESTS.into_response()),
        Err(e) => Err(unavailable(&e)),
    }
}

/// `GET /index.php/csrftoken`: the session's request token, for scripts of our pages.
pub async fn csrf_token(Extension(auth): Extension<Auth>) -> Response {
    match &auth {
        Auth::Session(_, s) => {
            Json(json!({ "token": s.csrf.as_ref().map(|c| c.expose().to_owned()) })).into_response()
        }
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

pub fn add_cookie(r: &mut Response, c: &str) {
    if let Ok(v) = HeaderValue::from_str(c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn unavailable(e: &strongroom_core::Error) -> Response {
    tracing::warn!(error = %e, "request failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        page("Unavailable", "<h1>The service is temporarily unavailable</h1>"),
    )
        .into_response()
}
