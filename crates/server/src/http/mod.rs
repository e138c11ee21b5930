//! The HTTP surface: routing and the middleware every request passes.
//!
//! Order, outermost first: request id, span, access log line and the task the
//! request runs in (panics become 500s); authentication (exactly one
//! principal, or anonymous, per request); then the route.

mod auth;
mod client;
mod dav_routes;
mod devices;
mod headers;
mod listen;
mod login_flow;
mod pages;
mod public;
mod recall;
mod requests;
mod session_pages;
mod stall;
mod tls;
mod twofactor;
mod wipe;

use axum::{
    Router, middleware,
    routing::{get, post, put},
};
use tokio::net::TcpListener;

use crate::app::App;

pub fn router(app: App) -> Router {
    Router::new()
        // A browser pointed at the server lands on the login page; every
        // other method on `/` stays WebDAV's.
        .route("/", get(to_login).fallback(dav_routes::dispatch))
        .route("/index.php", get(to_login).fallback(dav_routes::dispatch))
        .route("/status.php", get(status))
        .route("/index.php/login/v2", post(login_flow::start))
        .route("/index.php/login/v2/poll", post(login_flow::poll))
        .route("/index.php/login/v2/flow/{token}", get(login_flow::flow_page))
        .route("/index.php/login/v2/grant", post(login_flow::grant))
        .route("/index.php/core/wipe/check", post(wipe::check))
        .route("/index.php/core/wipe/success", post(wipe::success))
        .route("/index.php/login", get(session_pages::form).post(session_pages::login))
        .route("/index.php/logout", get(session_pages::logout).post(session_pages::logout))
        .route("/index.php/login/confirm", post(session_pages::confirm))
        .route("/index.php/csrftoken", get(session_pages::csrf_token))
        .route("/index.php/js/twofactor.js", get(twofactor::script))
        .route("/index.php/login/selectchallenge", get(twofactor::challenge::select))
        .route(
            "/index.php/login/challenge/webauthn/options",
            post(twofactor::challenge::webauthn_options),
        )
        .route(
            "/index.php/login/challenge/{provider}",
            get(twofactor::challenge::show).post(twofactor::challenge::answer),
        )
        .route("/index.php/login/challenge/{provider}/send", post(twofactor::challenge::send))
        .route("/index.php/login/setupchallenge", get(twofactor::challenge::setup))
        .route("/index.php/login/setupchallenge/totp", post(twofactor::challenge::setup_totp))
        .route("/index.php/login/passkey/options", post(twofactor::passkey::options))
        .route("/index.php/login/passkey", post(twofactor::passkey::finish))
        .route(
            "/index.php/apps/twofactor_totp/settings/enable",
            post(twofactor::settings::totp_enable),
        )
        .route(
            "/index.php/apps/twofactor_totp/settings/state",
            get(twofactor::settings::totp_state),
        )
        .route(
            "/index.php/apps/twofactor_backupcodes/settings/create",
            post(twofactor::settings::backup_create),
        )
        .route("/index.php/settings/user/twofactor", get(twofactor::settings::settings_page))
        .route("/index.php/settings/user/twofactor/state", get(twofactor::settings::state))
        .route("/index.php/settings/user/twofactor/totp", post(twofactor::settings::page_totp))
        .route(
            "/index.php/settings/user/twofactor/totp/confirm",
            post(twofactor::settings::page_totp_confirm),
        )
        .route("/index.php/settings/user/twofactor/backup", post(twofactor::settings::page_backup))
        .route("/index.php/settings/user/twofactor/{kind}/off", post(twofactor::settings::page_off))
        .route(
            "/index.php/settings/user/twofactor/contact/{kind}",
            post(twofactor::settings::contact),
        )
        .route(
            "/index.php/settings/user/webauthn/options",
            post(twofactor::settings::webauthn_options),
        )
        .route(
            "/index.php/settings/user/webauthn/register",
            post(twofactor::settings::webauthn_register),
        )
        .route(
            "/index.php/settings/user/webauthn/remove/{id}",
            post(twofactor::settings::webauthn_remove),
        )
        .route(
            "/index.php/settings/api/admin/twofactorauth",
            get(twofactor::admin::get_policy).put(twofactor::admin::put_policy),
        )
        .route(
            "/index.php/settings/api/admin/twofactorauth/state/{uid}",
            get(twofactor::admin::user_state),
        )
        .route(
            "/index.php/settings/api/admin/twofactorauth/reset/{uid}",
            post(twofactor::admin::reset),
        )
        .route("/index.php/settings/personal/authtokens", get(devices::list).post(devices::create))
        .route(
            "/index.php/settings/personal/authtokens/{id}",
            put(devices::rename).delete(devices::revoke),
        )
        .route("/index.php/settings/personal/authtokens/wipe/{id}", post(devices::wipe))
        .route("/index.php/settings/personal/changepassword", post(devices::change_password))
        .route("/index.php/settings/user/security", get(devices::security_page))
        .route("/index.php/settings/user/security/revoke/{id}", post(devices::page_revoke))
        .route("/index.php/settings/user/security/rename/{id}", post(devices::page_rename))
        .route("/index.php/settings/user/security/wipe/{id}", post(devices::page_wipe))
        .route("/index.php/settings/user/security/apppassword", post(devices::page_create))
        .route("/index.php/settings/user/security/password", post(devices::page_password))
        .route("/s/{token}", get(public::page::show))
        .route("/index.php/s/{token}", get(public::page::show))
        .route("/s/{token}/authenticate", post(public::page::authenticate))
        .route("/index.php/s/{token}/authenticate", post(public::page::authenticate))
        .route("/s/{token}/download", get(public::page::download))
        .route("/index.php/s/{token}/download", get(public::page::download))
        .route("/s/{token}/view", get(public::page::view))
        .fallback(dav_routes::dispatch)
        .layer(middleware::from_fn_with_state(app.clone(), auth::resolve))
        .layer(middleware::from_fn_with_state(app.clone(), headers::apply))
        .layer(middleware::from_fn_with_state(app.clone(), requests::trace))
        .with_state(app)
}

/// Serves until SIGINT or SIGTERM, then finishes the requests in flight;
/// over TLS when a certificate is configured.
pub async fn serve(
    app: App,
    listener: TcpListener,
    tls: Option<tls::Acceptor>,
) -> std::io::Result<()> {
    survive_file_size_limit();
    let stall = app.security.client_stall;
    listen::serve(listener, tls, router(app), stall, shutdown_signal(), drain_limit()).await
}

/// How long a shutdown waits for the requests in flight: a client that
/// stalls in the middle of an upload would otherwise hold the server up
/// until its service manager kills it (systemd after 90 s).
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A write past the process's file-size limit (`ulimit -f`) raises SIGXFSZ,
/// which ends the process by default; with a handler installed the write
/// fails with EFBIG instead, and the upload that made it gets 507. tokio
/// keeps the handler installed when the stream is dropped.
fn survive_file_size_limit() {
    let xfsz = tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ);
    if let Err(e) = tokio::signal::unix::signal(xfsz) {
        tracing::warn!(error = %e, "cannot handle SIGXFSZ; a write past the file-size limit ends the process");
    }
}

pub use listen::bind;
pub use tls::acceptor as tls_acceptor;
pub use twofactor::admin::reset_user;

async fn shutdown_signal() {
    stop_signal().await;
    tracing::info!("shutting down");
}

/// Ends the wait for the requests in flight once a shutdown has begun: after
/// [`DRAIN_LIMIT`], or at once on a second SIGINT or SIGTERM (its listeners
/// are set up when the wait begins, so the first signal does not count).
async fn drain_limit() {
    tokio::select! {
        () = tokio::time::sleep(DRAIN_LIMIT) => {
            tracing::warn!(seconds = DRAIN_LIMIT.as_secs(), "requests still in flight after the drain limit: stopping");
        }
        () = stop_signal() => tracing::warn!("a second signal: stopping without waiting for the requests in flight"),
    }
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn to_login() -> axum::response::Redirect {
    axum::response::Redirect::to("/index.php/login")
}

/// Nextcloud's `status.php`, which every client reads first.
async fn status() -> axum::response::Response {
    let body = serde_json::json!({
        "installed": true,
        "maintenance": false,
        "needsDbUpgrade": false,
        "version": "30.0.0.0",
        "versionstring": "30.0.0",
        "edition": "",
        "productname": "Strongroom",
        "extendedSupport": false,
    });
    let mut r = axum::response::Response::new(axum::body::Body::from(body.to_string()));
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}
