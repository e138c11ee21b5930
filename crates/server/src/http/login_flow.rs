//! Login Flow v2 over HTTP: the client's start and poll endpoints, and the
//! browser pages where the user logs in and grants access.

use axum::{
    Extension, Form, Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use strongroom_core::{Error, audit::Event, secret::Secret, tokens::AppToken};

use super::{
    auth::{Auth, guarded_password},
    client::Client,
    pages::{escape, page},
    session_pages::start_pending_session,
};
use crate::app::App;

/// The URL the client used to reach us, to build the URLs we hand back
/// (https when it came over HTTPS, or the desktop client refuses the result).
fn base_url(headers: &HeaderMap, client: &Client) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let scheme = if client.secure { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// `POST /index.php/login/v2`: starts a flow named after the client.
pub async fn start(
    State(app): State<App>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
) -> Response {
    let agent =
        headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("unknown client");
    match app.flows.start(agent).await {
        Ok((poll, login)) => {
            let base = base_url(&headers, &client);
            Json(json!({
                "poll": { "token": poll.expose(), "endpoint": format!("{base}/index.php/login/v2/poll") },
                "login": format!("{base}/index.php/login/v2/flow/{}", login.expose()),
            }))
            .into_response()
        }
        Err(e) => failure(&e),
    }
}

#[derive(Deserialize)]
pub struct PollForm {
    token: String,
}

/// `POST /index.php/login/v2/poll`: 404 `[]` until granted, then the
/// credentials, exactly once.
pub async fn poll(
    State(app): State<App>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Form(form): Form<PollForm>,
) -> Response {
    match app.flows.poll(&form.token).await {
        Ok(Some(grant)) => Json(json!({
            "server": base_url(&headers, &client),
            "loginName": grant.login_name,
            "appPassword": grant.app_password.expose(),
        }))
        .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, Json(json!([]))).into_response(),
        Err(e) => failure(&e),
    }
}

/// `GET /index.php/login/v2/flow/TOKEN`: the login and grant page. A
/// browser already logged in (every factor passed) grants with one click.
pub async fn flow_page(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Path(token): Path<String>,
) -> Response {
    match app.flows.by_login_token(&token).await {
        Ok(flow) if !flow.granted => match &auth {
            Auth::Session(user, s) => grant_form(&flow.client_name, &token, &user.uid, s),
            // Half logged in: finish the challenge first, then come back here.
            Auth::Pending(..) => super::twofactor::challenge::back_to_select(Some(&format!(
                "/index.php/login/v2/flow/{token}"
            ))),
            _ => login_form(&flow.client_name, &token, None).into_response(),
        },
        Ok(_) => gone(),
        Err(Error::NotFound) => gone(),
        Err(e) => failure(&e),
    }
}

fn login_form(client: &str, token: &str, error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Connect to your account",
        &format!(
            "<h1>Connect to your account</h1>\
             <p><strong>{}</strong> asks for access to your files. Log in to grant it.</p>{error}\
             <form method=\"post\" action=\"/index.php/login/v2/grant\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <p><label>User <input name=\"user\" autocomplete=\"username\" required></label></p>\
             <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
             <p><button type=\"submit\">Grant access</button></p></form>",
            escape(client),
            escape(token)
        ),
    )
}

fn grant_form(client: &str, token: &str, uid: &str, session: &AppToken) -> Response {
    let csrf = session.csrf.as_ref().map(|c| c.expose().to_owned()).unwrap_or_default();
    page(
        "Connect to your account",
        &format!(
            "<h1>Connect to your account</h1>\
             <p><strong>{}</strong> asks for access to your files.</p>\
             <form method=\"post\" action=\"/index.php/login/v2/grant?requesttoken={}\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <p><button type=\"submit\">Grant access as {}</button></p></form>",
            escape(client),
            escape(&csrf),
            escape(token),
            escape(uid)
        ),
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct GrantForm {
    token: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

/// `POST /index.php/login/v2/grant`: grants the flow to the logged-in
/// browser session, or checks the credentials given (throttled like every
/// login). An account with a second factor is sent through the challenge
/// first and comes back to the flow page logged in.
pub async fn grant(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Form(form): Form<GrantForm>,
) -> Response {
    let flow = match app.flows.by_login_token(&form.token).await {
        Ok(f) if !f.granted => f,
        Ok(_) | Err(Error::NotFound) => return gone(),
        Err(e) => return failure(&e),
    };
    if let (Auth::Session(user, _), true) = (&auth, form.password.is_empty()) {
        return granted(&app, &client, &flow, user, &user.uid.clone(), "session").await;
    }
    let password = Secret::new(form.password);
    match guarded_password(&app, &client, &form.user, &password).await {
        Ok(Some(user)) => match app.twofactor.required(user.id).await {
            Ok(false) => granted(&app, &client, &flow, &user, &form.user, "password").await,
            Ok(true) => {
                let back = format!("/index.php/login/v2/flow/{}", form.token);
                start_pending_session(&app, &client, &user, false, &back).await
            }
            Err(e) => failure(&e),
        },
        Ok(None) => {
            let mut r = login_form(&flow.client_name, &form.token, Some("Wrong user or password."))
                .into_response();
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
        Err(Error::Busy(_)) => {
            let body = page(
                "Too many attempts",
                "<h1>Too many failed attempts</h1><p>Try again later.</p>",
            );
            (StatusCode::TOO_MANY_REQUESTS, body).into_response()
        }
        Err(e) => failure(&e),
    }
}

async fn granted(
    app: &App,
    client: &Client,
    flow: &strongroom_core::loginflow::Flow,
    user: &strongroom_core::User,
    login_name: &str,
    via: &str,
) -> Response {
    match app.flows.grant(flow, user, login_name).await {
        Ok(()) => {
            app.audit.record(
                &client.origin(),
                Event::new("login.success").actor(&user.uid).detail(json!({
                    "via": "login flow", "client": flow.client_name, "factor": via
                })),
            );
            page(
                "Access granted",
                &format!(
                    "<h1>Access granted</h1><p>{} is now connected. You can close this window.</p>",
                    escape(&flow.client_name)
                ),
            )
            .into_response()
        }
        Err(e) => failure(&e),
    }
}

fn gone() -> Response {
    let body = page(
        "Link expired",
        "<h1>This link has expired</h1><p>Start the connection again from your client.</p>",
    );
    (StatusCode::NOT_FOUND, body).into_response()
}

fn failure(e: &Error) -> Response {
    let outage = e.outage().and_then(|(code, _)| StatusCode::from_u16(code).ok());
    let status = match (outage, e) {
        (Some(status), _) => status,
        (None, Error::Conflict(_)) => StatusCode::CONFLICT,
        _ => {
            tracing::error!(error = %e, "login flow failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, page("Something went wrong", "<h1>Something went wrong</h1><p>Please try again.</p>"))
        .into_response()
}
