//! Devices and sessions: a user lists their browser sessions and app
//! passwords (name, client, last activity, last address), renames, revokes
//! and remotely wipes them, creates app passwords and changes their password.
//! Revocation is a deleted row, so it holds on the very next request, on every node.
//!
//! Two surfaces: Nextcloud's JSON endpoints under
//! `/index.php/settings/personal/authtokens`, and a server-rendered page.

use axum::{
    Extension, Form, Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use strongroom_core::{
    User,
    audit::Event,
    secret::Secret,
    tokens::{AppToken, TokenKind},
};

use super::{
    auth::{Auth, guarded},
    client::Client,
    pages::{escape, page},
    session_pages::{confirm_inline, unavailable},
};
use crate::app::App;

fn device_json(t: &AppToken, current: Option<i64>) -> Value {
    let is_current = current == Some(t.id);
    json!({
        "id": t.id,
        "name": t.name,
        "lastActivity": t.last_used,
        "type": if t.kind == TokenKind::Session { 0 } else { 1 },
        "scope": { "filesystem": true },
        "current": is_current,
        "canDelete": !is_current,
        "canRename": !is_current && t.kind == TokenKind::AppPassword,
        "lastAddress": t.last_address,
        "client": t.user_agent,
        "wipePending": t.wipe,
    })
}

/// The signed-in browser user, or a response refusing the call. App
/// passwords may not manage devices (as in Nextcloud).
fn browser_user(auth: &Auth) -> Result<(&User, Option<i64>), Response> {
    match auth {
        Auth::Session(u, s) => Ok((u, Some(s.id))),
        Auth::Password(u) => Ok((u, None)),
        Auth::Token(..) => Err((
            StatusCode::BAD_REQUEST,
            Json(json!({ "message": "not possible with an app password" })),
        )
            .into_response()),
        Auth::Anonymous | Auth::Pending(..) => Err(StatusCode::UNAUTHORIZED.into_response()),
    }
}

fn needs_confirmation() -> Response {
    (StatusCode::FORBIDDEN, Json(json!({ "message": "Password confirmation is required" })))
        .into_response()
}

pub async fn list(State(app): State<App>, Extension(auth): Extension<Auth>) -> Response {
    let (user, current) = match browser_user(&auth) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match app.tokens.list(user.id).await {
        Ok(tokens) => {
            Json(tokens.iter().map(|t| device_json(t, current)).collect::<Vec<_>>()).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

/// Creates an app password; needs a recent password confirmation.
pub async fn create(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Form(f): Form<NameForm>,
) -> Response {
    let (user, current) = match browser_user(&auth) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !auth.confirmed(app.security.confirm_secs) {
        return needs_confirmation();
    }
    match app.tokens.create(user, &f.name).await {
        Ok((token, secret)) => {
            let id = token.id.to_string();
            app.audit.record(
                &client.origin(),
                Event::new("token.created")
                    .actor(&user.uid)
                    .target(&id)
                    .detail(json!({ "name": token.name })),
            );
            Json(json!({ "token": secret.expose(), "loginName": user.uid, "deviceToken": device_json(&token, current) })).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

pub async fn rename(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
    Form(f): Form<NameForm>,
) -> Response {
    let (user, current) = match browser_user(&auth) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if current == Some(id) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match app.tokens.rename(user.id, id, &f.name).await {
        Ok(()) => Json(json!([])).into_response(),
        Err(strongroom_core::Error::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(strongroom_core::Error::BadRequest(m)) => {
            (StatusCode::BAD_REQUEST, Json(json!({ "message": m }))).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

pub async fn revoke(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Path(id): Path<i64>,
) -> Response {
    let (user, _) = match browser_user(&auth) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match app.tokens.delete(user.id, id).await {
        Ok(()) => {
            let target = id.to_string();
            app.audit.record(
                &client.origin(),
                Event::new("token.revoked").actor(&user.uid).target(&target),
            );
            Json(json!([])).into_response()
        }
        Err(strongroom_core::Error::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => unavailable(&e),
    }
}

pub async fn wipe(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Path(id): Path<i64>,
) -> Response {
    let (user, _) = match browser_user(&auth) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !auth.confirmed(app.security.confirm_secs) {
        return needs_confirmation();
    }
    match app.tokens.request_wipe(user.id, id).await {
        Ok(()) => {
            let target = id.to_string();
            app.audit.record(
                &client.origin(),
                Event::new("wipe.requested").actor(&user.uid).target(&target),
            );
            Json(json!([])).into_response()
        }
        Err(strongroom_core::Error::NotFound) => {
            (StatusCode::BAD_REQUEST, Json(json!({ "message": "this device cannot be wiped" })))
                .into_response()
        }
        Err(e) => unavailable(&e),
    }
}

#[derive(Deserialize)]
pub struct PasswordChange {
    oldpassword: String,
    newpassword: String,
}

/// Changes the password: the old one is checked (and throttled), the new one
/// must pass the policy; the user's other browser sessions end.
pub async fn change_password(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Form(f): Form<PasswordChange>,
) -> Response {
    let (user, current) = match browser_user(&auth) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match password_change(&app, &client, user, current, &f).await {
        Ok(()) => Json(json!({ "status": "success" })).into_response(),
        Err((code, m)) => (code, Json(json!({ "status": "error", "message": m }))).into_response(),
    }
}

async fn password_change(
    app: &App,
    client: &Client,
    user: &User,
    current: Option<i64>,
    f: &PasswordChange,
) -> Result<(), (StatusCode, String)> {
    let busy = |e: strongroom_core::Error| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    let old = Secret::new(f.oldpassword.clone());
    match guarded(app, client, "sudo", &user.uid, || app.users.verify_password(&user.uid, &old))
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return Err((StatusCode::FORBIDDEN, "Wrong password".into())),
        Err(strongroom_core::Error::Busy(m)) => return Err((StatusCode::TOO_MANY_REQUESTS, m)),
        Err(e) => return Err(busy(e)),
    }
    match app.users.set_password(&user.uid, &Secret::new(f.newpassword.clone())).await {
        Ok(()) => {}
        Err(strongroom_core::Error::BadRequest(m)) => return Err((StatusCode::BAD_REQUEST, m)),
        Err(e) => return Err(busy(e)),
    }
    app.users.end_sessions(user.id, current).await.map_err(busy)?;
    app.audit.record(
        &client.origin(),
        Event::new("password.changed").actor(&user.uid).target(&user.uid),
    );
    Ok(())
}

#[derive(Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

/// The outcomes a page action reports back; only these fixed texts are ever
/// shown, whatever a link's query says.
#[derive(Clone, Copy)]
enum Notice {
    Revoked,
    Renamed,
    WrongPassword,
    WipeRequested,
    WipeRefused,
    PasswordChanged,
    PasswordRefused,
}

impl Notice {
    const ALL: [Notice; 7] = [
        Notice::Revoked,
        Notice::Renamed,
        Notice::WrongPassword,
        Notice::WipeRequested,
        Notice::WipeRefused,
        Notice::PasswordChanged,
        Notice::PasswordRefused,
    ];

    fn code(self) -> &'static str {
        match self {
            Notice::Revoked => "revoked",
            Notice::Renamed => "renamed",
            Notice::WrongPassword => "wrong-password",
            Notice::WipeRequested => "wipe-requested",
            Notice::WipeRefused => "wipe-refused",
            Notice::PasswordChanged => "password-changed",
            Notice::PasswordRefused => "password-refused",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Notice::Revoked => "Device revoked.",
            Notice::Renamed => "Device renamed.",
            Notice::WrongPassword => "Wrong password.",
            Notice::WipeRequested => "The device will be wiped at its next connection.",
            Notice::WipeRefused => "This device cannot be wiped.",
            Notice::PasswordChanged => "Password changed. Your other browser sessions were ended.",
            Notice::PasswordRefused => {
                "The password was not changed: check the current password; the new one needs 10 characters or more, must not be your user id nor a common password."
            }
        }
    }
}

/// `GET /index.php/settings/user/security`: the devices page.
pub async fn security_page(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Query(q): Query<PageQuery>,
) -> Response {
    let notice = q.done.as_deref().and_then(|d| Notice::ALL.into_iter().find(|n| n.code() == d));
    let notice = notice.map(|n| format!("<p role=\"status\">{}</p>", n.text())).unwrap_or_default();
    render_page(&app, &auth, &notice).await
}

async fn render_page(app: &App, auth: &Auth, notice: &str) -> Response {
    let Auth::Session(user, session) = auth else {
        return Redirect::to("/index.php/login?redirect_url=/index.php/settings/user/security")
            .into_response();
    };
    let tokens = match app.tokens.list(user.id).await {
        Ok(t) => t,
        Err(e) => return unavailable(&e),
    };
    let csrf = session.csrf.as_ref().map(|c| c.expose().to_owned()).unwrap_or_default();
    let act = |path: String| format!("{path}?requesttoken={}", escape(&csrf));
    let mut rows = String::new();
    for t in &tokens {
        let current = t.id == session.id;
        let kind = if t.kind == TokenKind::Session { "browser session" } else { "app password" };
        let state = if current {
            " (this session)"
        } else if t.wipe {
            " (wipe pending)"
        } else {
            ""
        };
        let mut actions = String::new();
        if !current {
            actions.push_str(&format!(
                "<form method=\"post\" action=\"{}\"><button>Revoke</button></form>",
                act(format!("/index.php/settings/user/security/revoke/{}", t.id))
            ));
            if t.kind == TokenKind::AppPassword {
                actions.push_str(&format!(
                    "<form method=\"post\" action=\"{}\"><input name=\"name\" aria-label=\"New name\" value=\"{}\"><button>Rename</button></form>\
                     <form method=\"post\" action=\"{}\"><input name=\"password\" type=\"password\" aria-label=\"Your password\" required><button>Wipe device</button></form>",
                    act(format!("/index.php/settings/user/security/rename/{}", t.id)),
                    escape(&t.name),
                    act(format!("/index.php/settings/user/security/wipe/{}", t.id))
                ));
            }
        }
        rows.push_str(&format!(
            "<tr><td>{}{state}</td><td>{kind}</td><td>{}</td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
            escape(&t.name),
            escape(t.user_agent.as_deref().unwrap_or("")),
            crate::http::pages::time(t.last_used),
            escape(t.last_address.as_deref().unwrap_or("")),
        ));
    }
    let messages = app.users.notifications(user.id, 10).await.unwrap_or_default();
    let messages: String = if messages.is_empty() {
        String::new()
    } else {
        let items: String = messages
            .iter()
            .map(|(t, m)| format!("<li>{}: {}</li>", crate::http::pages::time(*t), escape(m)))
            .collect();
        format!("<h2>Notifications</h2><ul>{items}</ul>")
    };
    let body = format!(
        "<h1>Security</h1><p>Signed in as <strong>{}</strong>.</p>{notice}{messages}\
         <form method=\"post\" action=\"{}\"><button>Log out</button></form>\
         <h2>Devices and sessions</h2><table><thead><tr><th>Name</th><th>Kind</th><th>Client</th><th>Last activity</th><th>Last address</th><th></th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>New app password</h2><form method=\"post\" action=\"{}\"><p><label>Name <input name=\"name\" required></label></p>\
         <p><label>Your password <input name=\"password\" type=\"password\" required></label></p><p><button>Create</button></p></form>\
         <h2>Change password</h2><form method=\"post\" action=\"{}\"><p><label>Current password <input name=\"oldpassword\" type=\"password\" required></label></p>\
         <p><label>New password <input name=\"newpassword\" type=\"password\" required minlength=\"10\"></label></p><p><button>Change</button></p></form>",
        escape(user.display()),
        act("/index.php/logout".into()),
        act("/index.php/settings/user/security/apppassword".into()),
        act("/index.php/settings/user/security/password".into()),
    );
    page("Security", &body).into_response()
}

fn back(n: Notice) -> Response {
    Redirect::to(&format!("/index.php/settings/user/security?done={}", n.code())).into_response()
}

pub async fn page_revoke(
    app: State<App>,
    auth: Extension<Auth>,
    client: Extension<Client>,
    id: Path<i64>,
) -> Response {
    let r = revoke(app, auth, client, id).await;
    if r.status().is_success() { back(Notice::Revoked) } else { r }
}

pub async fn page_rename(
    app: State<App>,
    auth: Extension<Auth>,
    id: Path<i64>,
    form: Form<NameForm>,
) -> Response {
    let r = rename(app, auth, id, form).await;
    if r.status().is_success() { back(Notice::Renamed) } else { r }
}

#[derive(Deserialize)]
pub struct ConfirmedName {
    name: Option<String>,
    password: String,
}

pub async fn page_create(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Form(f): Form<ConfirmedName>,
) -> Response {
    if let Err(r) =
        confirm_inline(&app, &auth, &client, &f.password, || back(Notice::WrongPassword)).await
    {
        return r;
    }
    let Some(user) = auth.user() else { return StatusCode::UNAUTHORIZED.into_response() };
    match app.tokens.create(user, f.name.as_deref().unwrap_or("")).await {
        Ok((token, secret)) => {
            let id = token.id.to_string();
            app.audit.record(
                &client.origin(),
                Event::new("token.created")
                    .actor(&user.uid)
                    .target(&id)
                    .detail(json!({ "name": token.name })),
            );
            // Shown once, in this response only: never in a URL.
            let notice = format!(
                "<p role=\"status\">New app password (shown once): <code>{}</code></p>",
                escape(secret.expose())
            );
            render_page(&app, &auth, &notice).await
        }
        Err(e) => unavailable(&e),
    }
}

pub async fn page_wipe(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Path(id): Path<i64>,
    Form(f): Form<ConfirmedName>,
) -> Response {
    if let Err(r) =
        confirm_inline(&app, &auth, &client, &f.password, || back(Notice::WrongPassword)).await
    {
        return r;
    }
    let Some(user) = auth.user() else { return StatusCode::UNAUTHORIZED.into_response() };
    match app.tokens.request_wipe(user.id, id).await {
        Ok(()) => {
            let target = id.to_string();
            app.audit.record(
                &client.origin(),
                Event::new("wipe.requested").actor(&user.uid).target(&target),
            );
            back(Notice::WipeRequested)
        }
        Err(_) => back(Notice::WipeRefused),
    }
}

pub async fn page_password(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Form(f): Form<PasswordChange>,
) -> Response {
    let Auth::Session(user, s) = &auth else { return StatusCode::UNAUTHORIZED.into_response() };
    match password_change(&app, &client, user, Some(s.id), &f).await {
        Ok(()) => back(Notice::PasswordChanged),
        Err(_) => back(Notice::PasswordRefused),
    }
}
