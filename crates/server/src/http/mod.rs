//! The HTTP surface: routing and the middleware every request passes.
//!
//! Order, outermost first: request id, span, access log line and the task the
//! request runs in (panics become 500s); authentication (exactly one
//! principal, or anonymous, per request); then the route.

mod auth;
mod dav_routes;
mod login_flow;
mod pages;
mod requests;
mod wipe;

use axum::{
    Router, middleware,
    routing::{get, post},
};
use tokio::net::TcpListener;

use crate::app::App;


pub fn router(app: App) -> Router {
    Router::new()
        .route("/status.php", get(status))
        .route("/index.php/login/v2", post(login_flow::start))
        .route("/index.php/login/v2/poll", post(login_flow::poll))
        .route("/index.php/login/v2/flow/{token}", get(login_flow::flow_page))
        .route("/index.php/login/v2/grant", post(login_flow::grant))
        .route("/index.php/core/wipe/check", post(wipe::check))
        .route("/index.php/core/wipe/success", post(wipe::success))
        .fallback(dav_routes::dispatch)
        .layer(middleware::from_fn_with_state(app.clone(), auth::resolve))
        .layer(middleware::from_fn(requests::trace))
        .with_state(app)
}

/// Serves until SIGINT or SIGTERM, then finishes the requests in flight.
pub async fn serve(app: App, listener: TcpListener) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown_signal()).await
}

async fn shutdown_signal() {
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
    tracing::info!("shutting down");
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
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}
