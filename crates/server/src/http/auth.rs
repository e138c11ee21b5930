//! Resolves every request to exactly one principal (or anonymous) before any
//! handler runs. Bad credentials end the request here with 401.

use axum::{
    body::Body,
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use base64::Engine;
use http::{HeaderValue, StatusCode, header};
use strongroom_core::{Error, Principal, User, secret::Secret, tokens::AppToken};

use crate::app::App;

/// Who the request acts as, placed in the request's extensions.
#[derive(Clone)]
pub enum Auth {
    Anonymous,
    /// Authenticated with the account password.
    Password(Box<User>),
    /// Authenticated with an app password.
    Token(Box<User>, Box<AppToken>),
}

impl Auth {
    pub fn user(&self) -> Option<&User> {
        match self {
            Auth::Anonymous => None,
            Auth::Password(u) | Auth::Token(u, _) => Some(u),
        }
    }

    pub fn principal(&self) -> Option<(Principal, &User)> {
        self.user().map(|u| (Principal { user_id: u.id, uid: u.uid.clone() }, u))
    }
}

pub async fn resolve(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let auth = match req.headers().get(header::AUTHORIZATION) {
        None => Auth::Anonymous,
        Some(v) => match basic_credentials(v) {
            None => return refuse(req, "malformed Authorization header").await,
            Some((login, password)) => match verify(&app, &login, &password).await {
                Ok(Some(auth)) => auth,
                Ok(None) => {
                    tracing::info!(login = %login, "login failed");
                    return refuse(req, "invalid credentials").await;
                }
                Err(e) => return unavailable(&e),
            },
        },
    };
    if let Some(u) = auth.user() {
        tracing::Span::current().record("user", u.uid.as_str());
    }
    req.extensions_mut().insert(auth);
    next.run(req).await
}

/// An app password is an indexed lookup; anything else is the account password.
async fn verify(app: &App, login: &str, password: &Secret) -> Result<Option<Auth>, Error> {
    if let Some((user, token)) = app.tokens.verify(login, password).await? {
        return Ok(Some(Auth::Token(Box::new(user), Box::new(token))));
    }
    Ok(app.users.verify_password(login, password).await?.map(|u| Auth::Password(Box::new(u))))
}

async fn refuse(req: Request, why: &str) -> Response {
    let r = unauthorized(&req, why);
    strongroom_dav::refuse_unread(req.into_body(), r).await
}

/// Splits `Basic base64(login:password)`.
fn basic_credentials(v: &HeaderValue) -> Option<(String, Secret)> {
    let v = v.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (login, password) = text.split_once(':')?;
    if login.is_empty() || login.len() > 255 {
        return None;
    }
    Some((login.to_owned(), Secret::new(password)))
}

/// A 401 with the challenge Nextcloud sends (none that would make a browser
/// pop up a dialog for XMLHttpRequest callers).
pub fn unauthorized(req: &Request, why: &str) -> Response {
    let xhr = req.headers().get("x-requested-with").is_some_and(|v| v == "XMLHttpRequest");
    let path = req.uri().path();
    let ocs = [("/ocs/v1.php/", strongroom_ocs::Version::V1), ("/ocs/v2.php/", strongroom_ocs::Version::V2)]
        .into_iter()
        .find(|(p, _)| path.starts_with(p));
    let mut r = match ocs {
        // OCS clients read the envelope: status code 997, in the format they asked for.
        Some((_, version)) => {
            let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
            let format = strongroom_ocs::Format::from_request(req.uri().query(), accept);
            strongroom_ocs::render(version, format, Err(strongroom_ocs::OcsError::unauthorised()))
        }
        None => strongroom_dav::error_body(StatusCode::UNAUTHORIZED, "NotAuthenticated", why, ""),
    };
    let challenge = if xhr { "DummyBasic realm=\"Strongroom\"" } else { "Basic realm=\"Strongroom\", charset=\"UTF-8\"" };
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    r
}

fn unavailable(e: &Error) -> Response {
    tracing::warn!(error = %e, "authentication backend unavailable");
    let mut r = Response::new(Body::from("service temporarily unavailable"));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}
