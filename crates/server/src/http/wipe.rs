//! Remote wipe as the desktop client drives it: after a 401 it asks
//! `/index.php/core/wipe/check` with its app password, wipes itself when told
//! to, and confirms at `/index.php/core/wipe/success`, which deletes the token.

use axum::{
    Extension, Form, Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use strongroom_core::{audit::Event, secret::Secret};

use super::client::Client;
use crate::app::App;

#[derive(Deserialize)]
pub struct TokenForm {
    token: String,
}

fn nothing() -> Response {
    (StatusCode::NOT_FOUND, Json(json!([]))).into_response()
}

pub async fn check(
    State(app): State<App>,
    Extension(client): Extension<Client>,
    Form(f): Form<TokenForm>,
) -> Response {
    match app.tokens.wipe_pending(&Secret::new(f.token)).await {
        Ok(Some((uid, token))) => {
            let id = token.to_string();
            app.audit.record(&client.origin(), Event::new("wipe.started").actor(&uid).target(&id));
            Json(json!({ "wipe": true })).into_response()
        }
        Ok(None) => nothing(),
        Err(e) => {
            tracing::warn!(error = %e, "wipe check failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

pub async fn success(
    State(app): State<App>,
    Extension(client): Extension<Client>,
    Form(f): Form<TokenForm>,
) -> Response {
    match app.tokens.wipe_done(&Secret::new(f.token)).await {
        Ok(Some((uid, token))) => {
            let id = token.to_string();
            app.audit
                .record(&client.origin(), Event::new("wipe.confirmed").actor(&uid).target(&id));
            Json(json!([])).into_response()
        }
        Ok(None) => nothing(),
        Err(e) => {
            tracing::warn!(error = %e, "wipe confirmation failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
