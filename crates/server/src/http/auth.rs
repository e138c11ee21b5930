//! Resolves every request to exactly one principal (or anonymous) before any
//! handler runs: HTTP Basic with an app password or the account password, or
//! a browser session cookie. Bad credentials end the request here with 401;
//! too many failures from one subnet with 429; a cookie-authenticated request
//! that changes state without its CSRF token with 412.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use base64::Engine;
use http::{HeaderValue, Method, StatusCode, header};
use strongroom_core::{
    Error, Principal, User, audit::Event, bruteforce::Verdict, secret::Secret, tokens::AppToken,
    users::PasswordCheck,
};
use strongroom_store::ChangeMark;
use subtle::ConstantTimeEq;

use super::{
    client::{Client, LAX, SESSION, STRICT, cookie, cookie_name},
    recall::Recalled,
};
use crate::app::App;

/// What a connection remembers of the last password (an app password or the
/// account's) a read verified there (`recall.rs`): an [`Auth::Token`] or an
/// [`Auth::Password`].
pub type ConnectionRecall = Recalled<Auth, ChangeMark>;

/// Who the request acts as, placed in the request's extensions.
#[derive(Clone)]
pub enum Auth {
    Anonymous,
    /// Authenticated with the account password (HTTP Basic).
    Password(Box<User>),
    /// Authenticated with an app password (HTTP Basic).
    Token(Box<User>, Box<AppToken>),
    /// A browser session, found by its cookie.
    Session(Box<User>, Box<AppToken>),
    /// A browser session whose second factor is still due: it acts as
    /// nobody, except on the challenge pages, which read it explicitly.
    Pending(Box<User>, Box<AppToken>),
}

impl Auth {
    pub fn user(&self) -> Option<&User> {
        match self {
            Auth::Anonymous | Auth::Pending(..) => None,
            Auth::Password(u) | Auth::Token(u, _) | Auth::Session(u, _) => Some(u),
        }
    }

    pub fn principal(&self) -> Option<(Principal, &User)> {
        self.user().map(|u| (Principal { user_id: u.id, uid: u.uid.clone() }, u))
    }

    /// Whether the password was entered recently enough for sensitive actions.
    /// A request carrying the password itself (Basic) counts as confirmed.
    pub fn confirmed(&self, within_secs: i64) -> bool {
        match self {
            Auth::Password(_) => true,
            Auth::Session(_, s) => strongroom_core::now_secs() - s.confirmed_at <= within_secs,
            Auth::Token(..) | Auth::Anonymous | Auth::Pending(..) => false,
        }
    }
}

pub async fn resolve(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let client = Client::of(&app, &req);
    req.extensions_mut().insert(client.clone());
    req.extensions_mut().insert(client.origin());
    // Public links check their own passwords (`public.rs`); a visitor's
    // Basic credentials there are a link password, never an account's.
    let public = is_public_link_path(req.uri().path());
    let auth = if public {
        Auth::Anonymous
    } else if let Some(v) = req.headers().get(header::AUTHORIZATION).cloned() {
        // Only reads remember, and only reads are let in by what was
        // remembered: a request that may write would mostly make it stale by
        // its own commit, and is always checked against the database as it
        // is (an account disabled by the command line a moment ago).
        let recalled = match safe_method(req.method()) {
            true => req.extensions().get::<Arc<ConnectionRecall>>().cloned(),
            false => None,
        };
        match basic(&app, &client, &v, recalled.as_deref()).await {
            Ok(a) => a,
            Err(Refusal::Unauthorized(why)) => return refuse(req, why).await,
            Err(Refusal::Throttled) => return throttled(req).await,
            Err(Refusal::Unavailable(e)) => return unavailable(&e),
        }
    } else {
        let value = cookie(req.headers(), &cookie_name(SESSION, client.secure)).map(str::to_owned);
        match session(&app, &client, value).await {
            Ok(a) => a,
            Err(e) => return unavailable(&e),
        }
    };
    if let Auth::Session(_, s) | Auth::Pending(_, s) = &auth {
        // A pending session may start over on the login forms, which carry
        // their own guard (the double-submit login cookie, or the password).
        let exempt =
            matches!(auth, Auth::Pending(..)) && OWN_CSRF_GUARD.contains(&req.uri().path());
        if !exempt && !csrf_ok(&req, s, client.secure) {
            return csrf_failed(req).await;
        }
    }
    // A browser that remembers Basic credentials sends them with a form
    // another site posts too; browsers mark such requests, programs do not.
    if matches!(auth, Auth::Password(_) | Auth::Token(..))
        && !safe_method(req.method())
        && req.headers().get("sec-fetch-site").is_some_and(|v| v == "cross-site")
    {
        return csrf_failed(req).await;
    }
    if let Some(u) = auth.user() {
        tracing::Span::current().record("user", u.uid.as_str());
    }
    req.extensions_mut().insert(auth);
    next.run(req).await
}

/// Paths of public links: they act as nobody's account (their form is a
/// link password, which a cross-site post cannot know).
fn is_public_link_path(path: &str) -> bool {
    path.starts_with("/public.php/") || path.starts_with("/s/") || path.starts_with("/index.php/s/")
}

/// Forms that protect themselves against cross-site posts.
const OWN_CSRF_GUARD: &[&str] = &[
    "/index.php/login",
    "/index.php/login/passkey",
    "/index.php/login/passkey/options",
    "/index.php/login/v2/grant",
];

enum Refusal {
    Unauthorized(&'static str),
    Throttled,
    Unavailable(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Unavailable(e)
    }
}

/// HTTP Basic: an app password (an indexed lookup; 72 random characters
/// cannot be guessed), or the account password remembered from a moment ago
/// (unless the address is locked out), pass at once. Anything else is a
/// guess until proven otherwise: it is counted before Argon2 checks it (so
/// parallel guesses see each other), delayed or refused past the budget, and
/// the count is cleared only on success.
/// Unknown logins cost the same as wrong passwords.
/// `recalled`: what the request's connection remembers of a password
/// verified there a moment ago (see `recall.rs`), for a read.
async fn basic(
    app: &App,
    client: &Client,
    v: &HeaderValue,
    recalled: Option<&ConnectionRecall>,
) -> Result<Auth, Refusal> {
    // Taken before the lookup: a commit after it may or may not be seen by
    // the lookup, and changes the mark either way.
    let mark = recalled.and_then(|_| app.db.change_mark());
    let started = std::time::Instant::now();
    let remember = |auth: &Auth| {
        if let (Some(r), Some(m)) = (recalled, mark) {
            r.put(v, m, started, auth.clone());
        }
    };
    match mark.and_then(|m| recalled?.get(v, &m)) {
        Some(Auth::Token(user, token)) => {
            record_use(app, client, &user, &token, "token.new_address").await?;
            return Ok(Auth::Token(user, token));
        }
        Some(auth @ Auth::Password(_)) => return Ok(auth),
        // Nothing else is ever remembered.
        Some(_) | None => {}
    }
    let Some((login, password)) = basic_credentials(v) else {
        return Err(Refusal::Unauthorized("malformed Authorization header"));
    };
    if let Some((user, token)) = app.tokens.verify(&login, &password).await? {
        record_use(app, client, &user, &token, "token.new_address").await?;
        let auth = Auth::Token(Box::new(user), Box::new(token));
        remember(&auth);
        return Ok(auth);
    }
    if let Some(user) = cached_password(app, client, &login, &password).await? {
        // The second factor's demand is part of what is remembered: turning
        // it on commits, which makes the connection look again.
        let auth = password_login(app, client, user).await?;
        remember(&auth);
        return Ok(auth);
    }
    // Requests sent at once with the same password wait for one check and
    // find its result in the cache, rather than each running Argon2 and
    // counting as an attempt (see core's `check_turn`). The wait may be
    // long (the throttle): no database connection is held meanwhile.
    strongroom_store::end_read_snapshot();
    let mut turn = app.users.check_turn(&login, &password).await;
    if let Some(user) = cached_password(app, client, &login, &password).await? {
        return password_login(app, client, user).await;
    }
    if turn.earlier_failed() {
        turn.release();
    }
    // A password check runs in a task of its own: the attempt is counted
    // before Argon2 runs and forgotten only on success, so a check dropped
    // half way (a read whose client hung up) would leave a correct password
    // counted as a failure, and a few such would lock the address out.
    let (app, client) = (app.clone(), client.clone());
    // It may wait seconds (the throttle) and needs database connections:
    // this request must hold none meanwhile.
    strongroom_store::end_read_snapshot();
    let checked = tokio::spawn(async move { check_password(&app, &client, login, password).await });
    let checked = checked.await.map_err(|e| {
        Refusal::Unavailable(Error::Internal(format!("a password check failed: {e}")))
    })?;
    if checked.is_err() {
        turn.failed();
    }
    checked
}

/// An account password found in the cache of those verified a moment ago
/// (no Argon2 again), unless the client's address is locked out. Asked
/// first, so that a locked-out address learns nothing: every guess from it
/// is refused alike, the right one included, as it would be were it not
/// in the cache (a guess answered 429 when wrong and 207 when right would
/// let the lockout go on testing passwords at full speed). "Locked out"
/// as a checked password would find it: the attempt it would count is the
/// one past the budget.
async fn cached_password(
    app: &App,
    client: &Client,
    login: &str,
    password: &Secret,
) -> Result<Option<User>, Refusal> {
    if app.throttle.next_is_blocked(client.address, LOGIN).await? {
        // Counted as a checked password is: the attempt past the budget
        // once, none after it (what `security bruteforce status` shows).
        app.throttle.begin_attempt(client.address, LOGIN, login).await?;
        audit_blocked(app, client, LOGIN, login);
        return Err(Refusal::Throttled);
    }
    Ok(app.users.verify_cached(login, password).await?)
}

/// Writes to the audit log that an attempt of `action` for `who` was
/// refused as past the throttle's budget.
fn audit_blocked(app: &App, client: &Client, action: &str, who: &str) {
    let ev =
        Event::new("throttle.blocked").target(who).detail(serde_json::json!({ "action": action }));
    app.audit.record(&client.origin(), ev);
}

/// The brute-force throttle's action for an account password.
const LOGIN: &str = "login";

/// The account password, under brute-force protection ([`guarded`]).
async fn check_password(
    app: &App,
    client: &Client,
    login: String,
    password: Secret,
) -> Result<Auth, Refusal> {
    match guarded_password(app, client, &login, &password).await {
        Ok(Some(user)) => {
            let auth = password_login(app, client, user).await?;
            if let Some(u) = auth.user() {
                app.audit.record(
                    &client.origin(),
                    Event::new("login.success")
                        .actor(&u.uid)
                        .detail(serde_json::json!({ "via": "basic" })),
                );
            }
            Ok(auth)
        }
        Ok(None) => Err(Refusal::Unauthorized("invalid credentials")),
        Err(Error::Busy(_)) => Err(Refusal::Throttled),
        Err(e) => Err(Refusal::Unavailable(e)),
    }
}

/// The account password alone does not open an account that has (or must
/// have) a second factor: such users' clients use app passwords, obtained
/// through Login Flow v2, whose browser step includes the challenge.
async fn password_login(app: &App, client: &Client, user: User) -> Result<Auth, Refusal> {
    if app.twofactor.required(user.id).await? {
        app.audit.record(
            &client.origin(),
            Event::new("login.failure").actor(&user.uid).detail(serde_json::json!({
                "via": "basic", "reason": "second factor required; use an app password"
            })),
        );
        return Err(Refusal::Unauthorized("a second factor is required: use an app password"));
    }
    Ok(Auth::Password(Box::new(user)))
}

/// Checks a secret under brute-force protection: the attempt is counted
/// first, waits its delay (or is refused with `Error::Busy`), and is
/// forgotten only if `verify` succeeds. A failure is written to the audit log.
pub async fn guarded<T, F, Fut>(
    app: &App,
    client: &Client,
    action: &str,
    who: &str,
    verify: F,
) -> Result<Option<T>, Error>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, Error>>,
{
    let verify = || async { Ok(verify().await?.ok_or("wrong credentials")) };
    guarded_why(app, client, action, who, verify).await
}

/// An account password under [`guarded`]. The client learns only whether
/// it passed; the audit log also tells a disabled account's right password
/// (a former employee's, say) from a wrong one.
pub async fn guarded_password(
    app: &App,
    client: &Client,
    login: &str,
    password: &Secret,
) -> Result<Option<User>, Error> {
    let verify = || async {
        Ok(match app.users.check_password(login, password).await? {
            PasswordCheck::Passed(user) => Ok(user),
            PasswordCheck::Wrong => Err("wrong credentials"),
            PasswordCheck::Disabled => Err("account disabled"),
        })
    };
    guarded_why(app, client, LOGIN, login, verify).await
}

/// [`guarded`] with `verify` saying why it failed (for the audit log).
async fn guarded_why<T, F, Fut>(
    app: &App,
    client: &Client,
    action: &str,
    who: &str,
    verify: F,
) -> Result<Option<T>, Error>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Result<T, &'static str>, Error>>,
{
    match app.throttle.begin_attempt(client.address, action, who).await? {
        Verdict::Blocked => {
            audit_blocked(app, client, action, who);
            return Err(Error::Busy("too many failed attempts; try again later".into()));
        }
        Verdict::Wait(d) if !d.is_zero() => tokio::time::sleep(d).await,
        Verdict::Wait(_) => {}
    }
    match verify().await? {
        Ok(passed) => {
            app.throttle.succeeded(client.address, action, who).await?;
            Ok(Some(passed))
        }
        Err(reason) => {
            let ev = Event::new("login.failure")
                .target(who)
                .detail(serde_json::json!({ "action": action, "reason": reason }));
            app.audit.record(&client.origin(), ev);
            tracing::info!(login = %who, action, "authentication failed");
            Ok(None)
        }
    }
}

/// A browser session named by its cookie; an unknown or expired one is anonymous.
async fn session(app: &App, client: &Client, value: Option<String>) -> Result<Auth, Error> {
    let Some(value) = value else { return Ok(Auth::Anonymous) };
    let Some((user, token)) = app.tokens.session(&value).await? else {
        return Ok(Auth::Anonymous);
    };
    record_use(app, client, &user, &token, "session.new_address").await?;
    Ok(match token.mfa_pending {
        true => Auth::Pending(Box::new(user), Box::new(token)),
        false => Auth::Session(Box::new(user), Box::new(token)),
    })
}

/// Records the use of an app password or session when due (see
/// [`strongroom_core::tokens::Tokens::touch`]), and `event` in the audit log
/// when it comes from an address it was not used from before.
async fn record_use(
    app: &App,
    client: &Client,
    user: &User,
    token: &AppToken,
    event: &'static str,
) -> Result<(), Error> {
    if !app.tokens.touch_due(token, client.address) {
        return Ok(());
    }
    let address = client.address.to_string();
    // Its own task: the new address and its audit event go together even
    // when the client hangs up meanwhile (reads run in place and are
    // dropped then, see `requests::trace`).
    let (app, origin, uid, id) =
        (app.clone(), client.origin(), user.uid.clone(), token.id.to_string());
    let (token, user) = (token.clone(), user.clone());
    // The task needs a database connection: this request must not hold one meanwhile.
    strongroom_store::end_read_snapshot();
    let moved = tokio::spawn(async move {
        let moved = app.tokens.touch(&token, &address).await?;
        if moved {
            app.audit.record(&origin, Event::new(event).actor(&uid).target(&id));
        }
        // A device's or a browser session's use is a login too (as in
        // Nextcloud): an account only synced would otherwise show no last
        // login to the administrator looking for unused accounts.
        app.users.record_login(&user).await
    });
    moved.await.map_err(|e| Error::Internal(format!("recording a token's use: {e}")))?
}

fn safe_method(m: &Method) -> bool {
    matches!(m.as_str(), "GET" | "HEAD" | "OPTIONS" | "PROPFIND")
}

/// The CSRF rule for cookie-authenticated requests: a request that may change
/// state must carry the strict same-site cookie (a cross-site request does
/// not) and either the session's request token or, on OCS, the
/// `OCS-APIRequest: true` header (which a cross-site form cannot send).
fn csrf_ok(req: &Request, session: &AppToken, secure: bool) -> bool {
    if safe_method(req.method()) {
        return true;
    }
    let strict = cookie(req.headers(), &cookie_name(STRICT, secure)) == Some("true");
    let lax = cookie(req.headers(), &cookie_name(LAX, secure)) == Some("true");
    if !strict || !lax {
        return false;
    }
    let path = req.uri().path();
    let ocs_header = req.headers().get("ocs-apirequest").is_some_and(|v| v == "true");
    if ocs_header && (path.starts_with("/ocs/v1.php/") || path.starts_with("/ocs/v2.php/")) {
        return true;
    }
    let given = req
        .headers()
        .get("requesttoken")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_param(req.uri().query(), "requesttoken"));
    match (given, &session.csrf) {
        (Some(g), Some(want)) => g.as_bytes().ct_eq(want.expose().as_bytes()).into(),
        _ => false,
    }
}

pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
}

async fn csrf_failed(req: Request) -> Response {
    let mut r = Response::new(Body::from(r#"{"message":"CSRF check failed"}"#));
    *r.status_mut() = StatusCode::PRECONDITION_FAILED;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    strongroom_dav::refuse_request(req, r).await
}

async fn refuse(req: Request, why: &str) -> Response {
    let r = unauthorized(&req, why);
    strongroom_dav::refuse_request(req, r).await
}

/// 429, in the OCS envelope for OCS requests.
pub(super) async fn throttled(req: Request) -> Response {
    let path = req.uri().path();
    // OCS v1 reports failures in the envelope with HTTP 200; v2 and DAV say 429.
    let mut r = if let Some(version) = ocs_version(path) {
        let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let format = strongroom_ocs::Format::from_request(req.uri().query(), accept);
        strongroom_ocs::render(
            version,
            format,
            Err(strongroom_ocs::OcsError::new(429, "Too many failed attempts")),
        )
    } else {
        strongroom_dav::error_body(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "too many failed attempts; try again later",
            "",
        )
    };
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1800"));
    strongroom_dav::refuse_request(req, r).await
}

fn ocs_version(path: &str) -> Option<strongroom_ocs::Version> {
    if path.starts_with("/ocs/v1.php/") {
        Some(strongroom_ocs::Version::V1)
    } else if path.starts_with("/ocs/v2.php/") {
        Some(strongroom_ocs::Version::V2)
    } else {
        None
    }
}

/// Splits `Basic base64(login:password)`.
pub(super) fn basic_credentials(v: &HeaderValue) -> Option<(String, Secret)> {
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
/// pop up a dialog for XMLHttpRequest callers), in the OCS envelope for OCS.
pub fn unauthorized(req: &Request, why: &str) -> Response {
    let xhr = req.headers().get("x-requested-with").is_some_and(|v| v == "XMLHttpRequest");
    let mut r = match ocs_version(req.uri().path()) {
        Some(version) => {
            let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
            let format = strongroom_ocs::Format::from_request(req.uri().query(), accept);
            strongroom_ocs::render(version, format, Err(strongroom_ocs::OcsError::unauthorised()))
        }
        None => strongroom_dav::error_body(StatusCode::UNAUTHORIZED, "NotAuthenticated", why, ""),
    };
    let challenge = if xhr {
        "DummyBasic realm=\"Strongroom\""
    } else {
        "Basic realm=\"Strongroom\", charset=\"UTF-8\""
    };
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    r
}

pub(super) fn unavailable(e: &Error) -> Response {
    if let Error::InsufficientStorage(m) = e {
        // A check that must write (a password attempt is counted before it
        // runs) and cannot: waiting a few seconds will not make room.
        let mut r = Response::new(Body::from(m.clone()));
        *r.status_mut() = StatusCode::INSUFFICIENT_STORAGE;
        return r;
    }
    tracing::warn!(error = %e, "authentication backend unavailable");
    let mut r = Response::new(Body::from("service temporarily unavailable"));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}
