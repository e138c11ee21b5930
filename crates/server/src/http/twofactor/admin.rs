//! The enforcement policy for admins, as Nextcloud's settings API has it
//! (`GET`/`PUT /index.php/settings/api/admin/twofactorauth`), and an admin's
//! reset of a user's factors. Both need an admin whose password is fresh.

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use strongroom_core::{User, audit::Event, twofactor::Policy};

use super::refuse;
use crate::{
    app::App,
    http::{auth::Auth, client::Client, session_pages::unavailable},
};

async fn admin<'a>(app: &App, auth: &'a Auth) -> Result<&'a User, Response> {
    let Some(user) = auth.user() else {
        return Err(refuse(StatusCode::UNAUTHORIZED, "not logged in"));
    };
    match app.users.is_admin(user.id).await {
        Ok(true) => {}
        Ok(false) => return Err(refuse(StatusCode::FORBIDDEN, "admins only")),
        Err(e) => return Err(unavailable(&e)),
    }
    if !auth.confirmed(app.security.confirm_secs) {
        return Err(refuse(StatusCode::FORBIDDEN, "Password confirmation is required"));
    }
    Ok(user)
}

pub async fn get_policy(State(app): State<App>, Extension(auth): Extension<Auth>) -> Response {
    if let Err(r) = admin(&app, &auth).await {
        return r;
    }
    match app.twofactor.policy().await {
        Ok(p) => Json(p).into_response(),
        Err(e) => unavailable(&e),
    }
}

pub async fn put_policy(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    Json(p): Json<Policy>,
) -> Response {
    let user = match admin(&app, &auth).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(e) = check_groups(&app, &p).await {
        return e;
    }
    if let Err(e) = app.twofactor.set_policy(&p).await {
        return unavailable(&e);
    }
    app.audit
        .record(&client.origin(), Event::new("twofactor.policy").actor(&user.uid).detail(json!(p)));
    Json(p).into_response()
}

/// Every group a policy names must exist (a typo would silently exempt people).
pub async fn check_groups(app: &App, p: &Policy) -> Result<(), Response> {
    let groups = app.users.groups().await.map_err(|e| unavailable(&e))?;
    for g in p.enforced_groups.iter().chain(&p.excluded_groups) {
        if !groups.iter().any(|x| x.gid.eq_ignore_ascii_case(g)) {
            return Err(refuse(StatusCode::BAD_REQUEST, &format!("no such group: {g}")));
        }
    }
    Ok(())
}

/// `GET /index.php/settings/api/admin/twofactorauth/state/{uid}`: a user's
/// factors (what is set up, never any secret) and whether they are enforced.
pub async fn user_state(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Path(uid): Path<String>,
) -> Response {
    if let Err(r) = admin(&app, &auth).await {
        return r;
    }
    let target = match app.users.get(&uid).await {
        Ok(Some(u)) => u,
        Ok(None) => return refuse(StatusCode::NOT_FOUND, "no such user"),
        Err(e) => return unavailable(&e),
    };
    let tf = &app.twofactor;
    match tokio::try_join!(tf.factors(target.id), tf.enforced_for(target.id)) {
        Ok((f, enforced)) => Json(json!({
            "uid": target.uid, "providers": f.providers(), "factors": f, "enforced": enforced
        }))
        .into_response(),
        Err(e) => unavailable(&e),
    }
}

/// `POST /index.php/settings/api/admin/twofactorauth/reset/{uid}`.
pub async fn reset(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Extension(client): Extension<Client>,
    headers: http::HeaderMap,
    Path(uid): Path<String>,
) -> Response {
    if !super::settings::api_caller(&auth, &headers) {
        return refuse(StatusCode::PRECONDITION_FAILED, "send OCS-APIRequest: true");
    }
    let admin_user = match admin(&app, &auth).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let target = match app.users.get(&uid).await {
        Ok(Some(u)) => u,
        Ok(None) => return refuse(StatusCode::NOT_FOUND, "no such user"),
        Err(e) => return unavailable(&e),
    };
    if let Err(e) = reset_user(&app, &target, &admin_user.uid, &client.origin()).await {
        return unavailable(&e);
    }
    Json(json!({ "reset": target.uid })).into_response()
}

/// Removes every factor of `target`, tells them, and audits it.
pub async fn reset_user(
    app: &App,
    target: &User,
    by: &str,
    origin: &strongroom_core::audit::Origin,
) -> strongroom_core::Result<()> {
    app.twofactor.reset(target.id).await?;
    super::budget::clear_account(app, &target.uid).await?;
    app.users
        .notify(target.id, "An administrator removed your second factors. Set them up again.")
        .await?;
    app.audit.record(origin, Event::new("twofactor.reset").actor(by).target(&target.uid));
    Ok(())
}
