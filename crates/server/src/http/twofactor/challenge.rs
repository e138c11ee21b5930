//! The second step of a browser login. After the password, the session is
//! pending (`Auth::Pending`): it reaches these pages and logout, nothing
//! else. Passing a factor ends the pending session and starts a new one
//! (a new id), so nothing seen before the second factor stays valid.
//! Every answer is throttled like a password (action "2fa") and audited.

use axum::{
    Extension, Form, Json,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::json;
use strongroom_core::{Error, User, audit::Event, tokens::AppToken, twofactor::webauthn::Refused};

use super::{enc, label, relying_party, script_page};
use crate::{
    app::App,
    http::{
        auth::Auth,
        client::{Client, SESSION, cookie, cookie_name},
        headers::CspNonce,
        pages::{escape, page},
        session_pages::{safe_redirect, start_session, unavailable},
    },
};

#[derive(Deserialize)]
pub struct ChallengeQuery {
    redirect_url: Option<String>,
    error: Option<String>,
    handle: Option<String>,
}

/// The pending login, or where to go instead.
pub fn pending<'a>(
    auth: &'a Auth,
    redirect: Option<&str>,
) -> Result<(&'a User, &'a AppToken), Response> {
    match auth {
        Auth::Pending(u, t) => Ok((u, t)),
        Auth::Session(..) => Err(Redirect::to(&safe_redirect(redirect)).into_response()),
        _ => Err(Redirect::to("/index.php/login").into_response()),
    }
}

fn token_of(t: &AppToken) -> String {
    t.csrf.as_ref().map(|c| enc(c.expose())).unwrap_or_default()
}

fn logout_form(t: &AppToken) -> String {
    format!(
        "<form method=\"post\" action=\"/index.php/logout?requesttoken={}\"><button>Cancel login</button></form>",
        token_of(t)
    )
}

/// `GET /index.php/login/selectchallenge`: the factors to choose from.
pub async fn select(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Query(q): Query<ChallengeQuery>,
) -> Response {
    let (user, session) = match pending(&auth, q.redirect_url.as_deref()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let redirect = safe_redirect(q.redirect_url.as_deref());
    let factors = match app.twofactor.factors(user.id).await {
        Ok(f) => f,
        Err(e) => return unavailable(&e),
    };
    let providers = factors.providers();
    if providers.is_empty() {
        return match app.twofactor.enforced_for(user.id).await {
            // Enforced, nothing set up: set one up now, nothing else first.
            Ok(true) => Redirect::to(&format!(
                "/index.php/login/setupchallenge?redirect_url={}",
                enc(&redirect)
            ))
            .into_response(),
            // No factor is due any more (enforcement ended, the factors were
            // reset while the user was here): the password was enough.
            Ok(false) => {
                finish(&app, &client, &headers, user, session, "password", &redirect).await
            }
            Err(e) => unavailable(&e),
        };
    }
    let real: Vec<_> = providers.iter().filter(|p| **p != "backup_codes").collect();
    if real.len() == 1 && providers.len() == 1 {
        return Redirect::to(&format!(
            "/index.php/login/challenge/{}?redirect_url={}",
            real[0],
            enc(&redirect)
        ))
        .into_response();
    }
    let items: String = providers
        .iter()
        .map(|p| {
            format!(
                "<li><a href=\"/index.php/login/challenge/{p}?redirect_url={}\">{}</a></li>",
                enc(&redirect),
                label(p)
            )
        })
        .collect();
    let body = format!(
        "<h1>Second factor</h1><p>Choose how to confirm it is you, {}.</p><ul>{items}</ul>{}",
        escape(user.display()),
        logout_form(session)
    );
    page("Second factor", &body).into_response()
}

/// `GET /index.php/login/challenge/{provider}`: the form for one factor.
pub async fn show(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(nonce): Extension<CspNonce>,
    Path(provider): Path<String>,
    Query(q): Query<ChallengeQuery>,
) -> Response {
    let (user, session) = match pending(&auth, q.redirect_url.as_deref()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let factors = match app.twofactor.factors(user.id).await {
        Ok(f) => f,
        Err(e) => return unavailable(&e),
    };
    if !factors.providers().contains(&provider.as_str()) {
        return (
            StatusCode::NOT_FOUND,
            page("Not found", "<h1>No such factor for this account</h1>"),
        )
            .into_response();
    }
    let redirect = safe_redirect(q.redirect_url.as_deref());
    let error = match q.error.as_deref() {
        Some("throttled") => "<p role=\"alert\">Too many failed attempts. Try again later.</p>",
        Some("sent") => "<p role=\"alert\">The code could not be sent. Try again later.</p>",
        Some(_) => "<p role=\"alert\">That did not work. Try again.</p>",
        None => "",
    };
    let action =
        format!("/index.php/login/challenge/{provider}?requesttoken={}", token_of(session));
    let hidden =
        format!("<input type=\"hidden\" name=\"redirect_url\" value=\"{}\">", escape(&redirect));
    let form = match provider.as_str() {
        "webauthn" => {
            let body = format!(
                "<h1>Security key</h1>{error}<p>Use one of your security keys or passkeys.</p>\
                 <form id=\"webauthn-login\" method=\"post\" action=\"{}\" data-options=\"/index.php/login/challenge/webauthn/options?requesttoken={}\">\
                 {hidden}<input type=\"hidden\" name=\"handle\"><input type=\"hidden\" name=\"challenge\">\
                 <button type=\"button\" id=\"webauthn-start\">Use security key</button></form>\
                 <p id=\"webauthn-status\" role=\"status\"></p>{}",
                escape(&action),
                token_of(session),
                logout_form(session)
            );
            return script_page(&nonce, "Security key", &body);
        }
        "email" | "sms" => {
            let Some(handle) = q.handle.as_deref() else {
                let body = format!(
                    "<h1>{}</h1>{error}<form method=\"post\" action=\"/index.php/login/challenge/{provider}/send?requesttoken={}\">{hidden}\
                     <button>Send me a code</button></form>{}",
                    label(&provider),
                    token_of(session),
                    logout_form(session)
                );
                return page("Second factor", &body).into_response();
            };
            format!(
                "<h1>{}</h1>{error}<p>Enter the code we sent you.</p><form method=\"post\" action=\"{}\">{hidden}\
                 <input type=\"hidden\" name=\"handle\" value=\"{}\">\
                 <p><label>Code <input name=\"challenge\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required autofocus></label></p>\
                 <p><button>Verify</button></p></form>",
                label(&provider),
                escape(&action),
                escape(handle)
            )
        }
        _ => format!(
            "<h1>{}</h1>{error}<form method=\"post\" action=\"{}\">{hidden}\
             <p><label>Code <input name=\"challenge\" autocomplete=\"one-time-code\" required autofocus></label></p>\
             <p><button>Verify</button></p></form>",
            label(&provider),
            escape(&action)
        ),
    };
    let other = format!(
        "<p><a href=\"/index.php/login/selectchallenge?redirect_url={}\">Use another factor</a></p>",
        enc(&redirect)
    );
    page("Second factor", &format!("{form}{other}{}", logout_form(session))).into_response()
}

#[derive(Deserialize)]
pub struct Answer {
    challenge: Option<String>,
    redirect_url: Option<String>,
    handle: Option<String>,
}

/// `POST /index.php/login/challenge/{provider}`: checks the answer.
pub async fn answer(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    Form(f): Form<Answer>,
) -> Response {
    let (user, session) = match pending(&auth, f.redirect_url.as_deref()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let redirect = safe_redirect(f.redirect_url.as_deref());
    let input = f.challenge.unwrap_or_default();
    let handle = f.handle.unwrap_or_default();
    let mut refusal: Option<Refused> = None;
    let tf = &app.twofactor;
    match tf.factors(user.id).await {
        Ok(f) if f.providers().contains(&provider.as_str()) => {}
        Ok(_) => return back_to_select(Some(&redirect)),
        Err(e) => return unavailable(&e),
    }
    let outcome = super::budget::answer(&app, &client, &user.uid, || async {
        let ok = match provider.as_str() {
            "totp" => tf.totp_verify(user.id, &input).await?,
            "backup_codes" => tf.backup_use(user.id, &input).await?,
            "email" | "sms" => tf.code_check(user.id, &provider, &handle, &input).await?,
            "webauthn" => {
                let Some(w) = relying_party(&app, &client, &headers) else { return Ok(None) };
                let Ok(cred) = serde_json::from_str(&input) else { return Ok(None) };
                match tf.webauthn_auth_finish(&w, user.id, session.id, &handle, &cred).await? {
                    Ok(_) => true,
                    Err(r) => {
                        refusal = Some(r);
                        false
                    }
                }
            }
            _ => false,
        };
        Ok(ok.then_some(()))
    })
    .await;
    match outcome {
        Ok(Some(())) => {}
        Ok(None) => {
            let reason = refusal.map(Refused::reason).unwrap_or("wrong or reused code");
            app.audit.record(
                &client.origin(),
                Event::new("twofactor.failure")
                    .actor(&user.uid)
                    .detail(json!({ "provider": provider, "reason": reason })),
            );
            return again(&provider, &redirect, "1");
        }
        Err(Error::Busy(_)) => return again(&provider, &redirect, "throttled"),
        Err(e) => return unavailable(&e),
    }
    if provider == "backup_codes" {
        let (_, left) = tf.backup_state(user.id).await.unwrap_or((0, 0));
        app.audit.record(
            &client.origin(),
            Event::new("twofactor.backup_code_used")
                .actor(&user.uid)
                .detail(json!({ "remaining": left })),
        );
        let _ = app
            .users
            .notify(user.id, &format!("A backup code was used to log in; {left} remain."))
            .await;
    }
    app.audit.record(
        &client.origin(),
        Event::new("twofactor.success").actor(&user.uid).detail(json!({ "provider": provider })),
    );
    finish(&app, &client, &headers, user, session, &provider, &redirect).await
}

/// Back to the choice of factors, keeping where the login goes.
pub fn back_to_select(redirect: Option<&str>) -> Response {
    Redirect::to(&format!(
        "/index.php/login/selectchallenge?redirect_url={}",
        enc(&safe_redirect(redirect))
    ))
    .into_response()
}

/// Ends the pending session and starts the real one.
pub async fn finish(
    app: &App,
    client: &Client,
    headers: &HeaderMap,
    user: &User,
    session: &AppToken,
    via: &str,
    redirect: &str,
) -> Response {
    if let Some(old) = cookie(headers, &cookie_name(SESSION, client.secure)) {
        if let Err(e) = app.tokens.end_session(old).await {
            return unavailable(&e);
        }
    }
    start_session(app, client, user, session.remember, via, redirect).await
}

fn again(provider: &str, redirect: &str, error: &str) -> Response {
    Redirect::to(&format!(
        "/index.php/login/challenge/{}?redirect_url={}&error={error}",
        enc(provider),
        enc(redirect)
    ))
    .into_response()
}

/// `POST /index.php/login/challenge/webauthn/options`: a fresh assertion
/// request over the user's keys, bound to this pending session.
pub async fn webauthn_options(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
) -> Response {
    let Auth::Pending(user, session) = &auth else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Some(w) = relying_party(&app, &client, &headers) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "message": super::NO_RELYING_PARTY })))
            .into_response();
    };
    match app.twofactor.webauthn_auth_start(&w, user.id, session.id).await {
        Ok((options, handle)) => {
            Json(json!({ "options": options, "handle": handle.expose() })).into_response()
        }
        Err(Error::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => unavailable(&e),
    }
}

#[derive(Deserialize)]
pub struct SendForm {
    redirect_url: Option<String>,
}

/// `POST /index.php/login/challenge/{email|sms}/send`: sends a code to the
/// user's confirmed contact. Each send counts against the user's budget.
pub async fn send(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Path(provider): Path<String>,
    Form(f): Form<SendForm>,
) -> Response {
    let (user, _) = match pending(&auth, f.redirect_url.as_deref()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let redirect = safe_redirect(f.redirect_url.as_deref());
    let contact = match app.twofactor.contact(user.id, &provider).await {
        Ok(Some((address, true))) => address,
        Ok(_) => return again(&provider, &redirect, "1"),
        Err(e) => return unavailable(&e),
    };
    match super::send::issue_and_send(&app, &client, user, &provider, &contact).await {
        Ok(handle) => Redirect::to(&format!(
            "/index.php/login/challenge/{}?redirect_url={}&handle={}",
            enc(&provider),
            enc(&redirect),
            enc(handle.expose())
        ))
        .into_response(),
        Err(Error::Busy(_)) => again(&provider, &redirect, "throttled"),
        Err(_) => again(&provider, &redirect, "sent"),
    }
}

/// `GET /index.php/login/setupchallenge`: a user under enforcement without
/// a factor sets one up before anything else: TOTP or a WebAuthn key.
pub async fn setup(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(nonce): Extension<CspNonce>,
    Query(q): Query<ChallengeQuery>,
) -> Response {
    let (user, session) = match pending(&auth, q.redirect_url.as_deref()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !super::settings::setup_allowed(&app, user).await {
        return back_to_select(q.redirect_url.as_deref());
    }
    let t = token_of(session);
    let redirect = escape(&safe_redirect(q.redirect_url.as_deref()));
    let body = format!(
        "<h1>Set up a second factor</h1><p>Your administrator requires a second factor. Set one up to continue.</p>\
         <h2>Authenticator app</h2><form method=\"post\" action=\"/index.php/login/setupchallenge/totp?requesttoken={t}\">\
         <input type=\"hidden\" name=\"redirect_url\" value=\"{redirect}\"><button>Set up TOTP</button></form>\
         <h2>Security key or passkey</h2><form id=\"webauthn-register\" data-requesttoken=\"{t}\" data-redirect=\"{redirect}\">\
         <p><label>Name <input name=\"name\" value=\"Security key\"></label>\
         <label><input type=\"checkbox\" name=\"passwordless\" value=\"1\"> Also for login without password (passkey)</label>\
         <button type=\"button\" id=\"webauthn-add\">Add a key</button></p></form><p id=\"webauthn-status\" role=\"status\"></p>{}",
        logout_form(session)
    );
    script_page(&nonce, "Set up a second factor", &body)
}

/// `POST /index.php/login/setupchallenge/totp`: the secret to scan; the
/// code is confirmed at `/index.php/settings/user/twofactor/totp/confirm`,
/// which completes the login.
pub async fn setup_totp(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Form(f): Form<SendForm>,
) -> Response {
    let (user, session) = match pending(&auth, None) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !super::settings::setup_allowed(&app, user).await {
        return back_to_select(f.redirect_url.as_deref());
    }
    let e = match app.twofactor.totp_begin(user.id, &user.uid).await {
        Ok(e) => e,
        Err(e) => return unavailable(&e),
    };
    let body = format!(
        "<h1>Set up TOTP</h1><p>Scan this code with an authenticator app, or enter the secret by hand.</p>\
         <figure>{}</figure><p>Secret: <code id=\"totp-secret\">{}</code></p>\
         <form method=\"post\" action=\"/index.php/settings/user/twofactor/totp/confirm?requesttoken={}\">\
         <input type=\"hidden\" name=\"redirect_url\" value=\"{}\">\
         <p><label>Code from the app <input name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required autofocus></label></p>\
         <p><button>Activate</button></p></form>{}",
        e.qr_svg,
        escape(e.secret.expose()),
        token_of(session),
        escape(&safe_redirect(f.redirect_url.as_deref())),
        logout_form(session)
    );
    page("Set up TOTP", &body).into_response()
}
