//! App passwords (device tokens): 72 random characters shown once, stored only
//! as a SHA-256 digest. With that much entropy a fast hash is safe, and
//! verifying one is an indexed lookup instead of an Argon2 computation.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use strongroom_store::{Db, Row, Val};

use crate::{
    error::{Error, Result},
    secret::Secret,
    users::{USER_COLUMNS, User, Users},
    util::{column_count, now_secs, prefixed},
};

pub const TOKEN_LEN: usize = 72;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Last-use times are written at most this often per token (seconds).
const TOUCH_INTERVAL: i64 = 60;

/// How long a server connection may let a read in with a password (an app
/// password or the account's) it verified a moment ago, without looking it
/// up again (the server's `http/recall.rs`): a change that another process
/// (the command line) makes to the token or its account is seen by every
/// connection within this time; one made through the server, at once.
pub const VERIFIED_HOLD: std::time::Duration = std::time::Duration::from_millis(250);

/// What a token is: a browser session (found by cookie only) or an app
/// password (found by Basic authentication only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    AppPassword,
}

impl TokenKind {
    fn code(self) -> i64 {
        match self {
            TokenKind::Session => 0,
            TokenKind::AppPassword => 1,
        }
    }
}

/// A device: an app password or a browser session, without its secret.
#[derive(Debug, Clone)]
pub struct AppToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used: i64,
    /// The device was told to wipe itself; the token no longer authenticates.
    pub wipe: bool,
    pub kind: TokenKind,
    /// A session marked "remember me" lives longer when idle.
    pub remember: bool,
    /// When the password was last confirmed in this session (Unix seconds).
    pub confirmed_at: i64,
    pub last_address: Option<String>,
    pub user_agent: Option<String>,
    /// The session's CSRF secret (sessions only).
    pub csrf: Option<Secret>,
    /// A session whose password was accepted but whose second factor was not
    /// yet passed: good for the challenge pages only.
    pub mfa_pending: bool,
}

const TOKEN_COLUMNS: &str = "id, user_id, name, created_at, last_used, wipe, kind, remember, confirmed_at, last_address, user_agent, csrf_secret, mfa_pending";
const TOKEN_COLUMN_COUNT: usize = column_count(TOKEN_COLUMNS);

impl AppToken {
    fn from_row(r: &Row) -> Result<AppToken> {
        Ok(AppToken {
            id: r.i64(0)?,
            user_id: r.i64(1)?,
            name: r.str(2)?,
            created_at: r.i64(3)?,
            last_used: r.i64(4)?,
            wipe: r.i64(5)? != 0,
            kind: if r.i64(6)? == 0 { TokenKind::Session } else { TokenKind::AppPassword },
            remember: r.i64(7)? != 0,
            confirmed_at: r.i64(8)?,
            last_address: r.opt_str(9)?,
            user_agent: r.opt_str(10)?,
            csrf: r.opt_str(11)?.map(Secret::new),
            mfa_pending: r.i64(12)? != 0,
        })
    }
}

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: i64,
    pub absolute: i64,
    pub remember: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes { idle: 86_400, absolute: 7 * 86_400, remember: 15 * 86_400 }
    }
}

/// A readable device name from a browser's user agent.
fn browser_name(agent: &str) -> String {
    let browser = ["Firefox", "Edg", "Chrome", "Safari"]
        .into_iter()
        .find(|b| agent.contains(b))
        .unwrap_or("Browser");
    let browser = if browser == "Edg" { "Edge" } else { browser };
    let os =
        ["Windows", "Mac OS", "Android", "iPhone", "Linux"].into_iter().find(|o| agent.contains(o));
    match os {
        Some(o) => format!("{browser} on {o}"),
        None => browser.to_owned(),
    }
}

/// True when a Basic password has the shape of an app password.
pub fn looks_like_token(s: &str) -> bool {
    s.len() == TOKEN_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh random secret of `len` characters from the token alphabet.
pub fn random_secret(len: usize) -> Secret {
    Secret::new(
        (0..len)
            .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
            .collect::<String>(),
    )
}

/// How long a session may wait for its second factor.
pub const PENDING_SECS: i64 = 600;

#[derive(Clone)]
pub struct Tokens {
    db: Db,
    users: Users,
    lifetimes: Lifetimes,
}

fn clean_name(name: &str, fallback: &str) -> String {
    let n: String = name.chars().filter(|c| !c.is_control()).take(120).collect();
    if n.trim().is_empty() { fallback.to_owned() } else { n }
}

impl Tokens {
    pub fn new(db: Db, users: Users, lifetimes: Lifetimes) -> Tokens {
        Tokens { db, users, lifetimes }
    }

    /// Creates an app password named after the client; returns it once.
    pub async fn create(&self, user: &User, name: &str) -> Result<(AppToken, Secret)> {
        let secret = random_secret(TOKEN_LEN);
        let token = self
            .insert(
                user,
                TokenKind::AppPassword,
                &clean_name(name, "unnamed client"),
                &secret,
                false,
                None,
                None,
                false,
            )
            .await?;
        tracing::info!(target: "strongroom::tokens", user = %user.uid, token = token.id, "app password created");
        Ok((token, secret))
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        user: &User,
        kind: TokenKind,
        name: &str,
        secret: &Secret,
        remember: bool,
        address: Option<&str>,
        agent: Option<&str>,
        mfa_pending: bool,
    ) -> Result<AppToken> {
        let now = now_secs();
        let csrf = (kind == TokenKind::Session).then(|| random_secret(43));
        let agent: Option<String> =
            agent.map(|a| a.chars().filter(|c| !c.is_control()).take(250).collect());
        let mut tx = self.db.begin().await?;
        let id = tx
            .insert(
                "INSERT INTO app_tokens (user_id, name, token_hash, created_at, last_used, kind, remember, csrf_secret, \
                 confirmed_at, last_address, user_agent, mfa_pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    user.id.into(), name.into(), digest(secret.expose()).into(), now.into(), now.into(), kind.code().into(),
                    i64::from(remember).into(), csrf.as_ref().map(|c| c.expose().to_owned()).into(),
                    // A session starts with the password just confirmed by the login.
                    (if kind == TokenKind::Session { now } else { 0 }).into(), address.into(), agent.clone().into(),
                    i64::from(mfa_pending).into(),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(AppToken {
            id,
            user_id: user.id,
            name: name.to_owned(),
            created_at: now,
            last_used: now,
            wipe: false,
            kind,
            remember,
            confirmed_at: if kind == TokenKind::Session { now } else { 0 },
            last_address: address.map(str::to_owned),
            user_agent: agent,
            csrf,
            mfa_pending,
        })
    }

    /// Starts a browser session for `user`; returns the cookie value once.
    /// A `pending` session waits for the second factor and is good for the
    /// challenge pages only; passing it starts a new session (a new id).
    pub async fn start_session(
        &self,
        user: &User,
        remember: bool,
        address: &str,
        agent: &str,
        pending: bool,
    ) -> Result<(AppToken, Secret)> {
        let secret = random_secret(64);
        let name = clean_name(&browser_name(agent), "browser");
        let token = self
            .insert(
                user,
                TokenKind::Session,
                &name,
                &secret,
                remember,
                Some(address),
                Some(agent),
                pending,
            )
            .await?;
        Ok((token, secret))
    }

    /// The live session a cookie names, with its account. Expired sessions
    /// (idle, or past their absolute lifetime) are deleted and give `None`.
    /// Its use is the caller's to record ([`Tokens::touch_due`], [`Tokens::touch`]).
    pub async fn session(&self, cookie: &str) -> Result<Option<(User, AppToken)>> {
        let secret = Secret::new(cookie);
        let Some(t) = self.by_secret(&secret).await?.filter(|t| t.kind == TokenKind::Session)
        else {
            return Ok(None);
        };
        let now = now_secs();
        let idle = if t.remember {
            self.lifetimes.remember.max(self.lifetimes.idle)
        } else {
            self.lifetimes.idle
        };
        let absolute = if t.remember {
            self.lifetimes.remember.max(self.lifetimes.absolute)
        } else {
            self.lifetimes.absolute
        };
        // A session waiting for its second factor lives a few minutes only.
        let absolute = if t.mfa_pending { absolute.min(PENDING_SECS) } else { absolute };
        if t.wipe || now - t.last_used > idle || now - t.created_at > absolute {
            self.db.exec("DELETE FROM app_tokens WHERE id = ?", &[t.id.into()]).await?;
            return Ok(None);
        }
        let Some(user) = self.users.get_by_id(t.user_id).await?.filter(|u| u.enabled) else {
            return Ok(None);
        };
        Ok(Some((user, t)))
    }

    /// Whether [`Tokens::touch`] would write: the last recorded use is old
    /// enough, or the address is new. Takes the address unformatted: every
    /// request with an app password asks, and formatting it cost more than
    /// parsing the recorded one.
    pub fn touch_due(&self, t: &AppToken, address: IpAddr) -> bool {
        now_secs() - t.last_used >= self.touch_interval()
            || !recorded_is(t.last_address.as_deref(), address)
    }

    /// How often a token's last use is recorded: often enough that a short
    /// idle lifetime is measured from the last use.
    fn touch_interval(&self) -> i64 {
        TOUCH_INTERVAL.min(self.lifetimes.idle / 2)
    }

    /// Records use (at most once a minute, or when the address changes).
    /// Returns true when the token is used from an address it was not used
    /// from before, for exactly one of the requests that bring it: the one
    /// whose write changes the recorded address. Requests that overlap it
    /// read the old address too, and each used to report the move.
    /// With no room left in the database nothing is recorded (and a move
    /// goes unreported); the request goes on.
    pub async fn touch(&self, t: &AppToken, address: &str) -> Result<bool> {
        crate::util::unless_full(self.record_use(t, address).await)
    }

    async fn record_use(&self, t: &AppToken, address: &str) -> Result<bool> {
        let now = now_secs();
        let known = address.parse().is_ok_and(|a| recorded_is(t.last_address.as_deref(), a));
        if !known {
            let changed = self
                .db
                .exec(
                    "UPDATE app_tokens SET last_used = ?, last_address = ? \
                     WHERE id = ? AND (last_address IS NULL OR last_address <> ?)",
                    &[now.into(), address.into(), t.id.into(), address.into()],
                )
                .await?;
            return Ok(changed > 0 && t.last_address.is_some());
        }
        if now - t.last_used >= self.touch_interval() {
            self.db
                .exec(
                    "UPDATE app_tokens SET last_used = ? WHERE id = ?",
                    &[now.into(), t.id.into()],
                )
                .await?;
        }
        Ok(false)
    }

    /// Ends the session a cookie names.
    pub async fn end_session(&self, cookie: &str) -> Result<()> {
        self.db
            .exec(
                "DELETE FROM app_tokens WHERE token_hash = ? AND kind = 0",
                &[digest(cookie).into()],
            )
            .await?;
        Ok(())
    }

    /// Records a password confirmation in a session.
    pub async fn confirm(&self, token_id: i64) -> Result<()> {
        self.db
            .exec(
                "UPDATE app_tokens SET confirmed_at = ? WHERE id = ?",
                &[now_secs().into(), token_id.into()],
            )
            .await?;
        Ok(())
    }

    /// Renames one of the user's devices.
    pub async fn rename(&self, user_id: i64, token_id: i64, name: &str) -> Result<()> {
        let name = clean_name(name, "");
        if name.is_empty() {
            return Err(Error::BadRequest("a device needs a name".into()));
        }
        let n = self
            .db
            .exec(
                "UPDATE app_tokens SET name = ? WHERE id = ? AND user_id = ?",
                &[name.into(), token_id.into(), user_id.into()],
            )
            .await?;
        if n == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    /// Marks one of the user's devices for remote wipe.
    pub async fn request_wipe(&self, user_id: i64, token_id: i64) -> Result<()> {
        let n = self
            .db
            .exec(
                "UPDATE app_tokens SET wipe = 1 WHERE id = ? AND user_id = ? AND kind = 1",
                &[token_id.into(), user_id.into()],
            )
            .await?;
        if n == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    /// Checks an app password given with `login`; the token must belong to that
    /// account, and the account must be enabled.
    pub async fn verify(&self, login: &str, secret: &Secret) -> Result<Option<(User, AppToken)>> {
        if !looks_like_token(secret.expose()) {
            return Ok(None);
        }
        // Every request of a sync client comes here: token and account in
        // one query, and whether the account receives shares (a query of its
        // own for every request otherwise).
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {}, {}, {} FROM app_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = ?",
                prefixed("t", TOKEN_COLUMNS),
                prefixed("u", USER_COLUMNS),
                crate::sharing::receives_shares_sql("u.id"),
            )
        });
        let Some(row) = self.db.row(&SQL, &[digest(secret.expose()).into()]).await? else {
            return Ok(None);
        };
        let token = AppToken::from_row(&row)?;
        // A session cookie is never a Basic password, and a wiped device is refused.
        if token.wipe || token.kind != TokenKind::AppPassword {
            return Ok(None);
        }
        let mut user = User::from_row_at(&row, TOKEN_COLUMN_COUNT)?;
        let receives = row.opt_i64(TOKEN_COLUMN_COUNT + column_count(USER_COLUMNS))?;
        user.receives_shares = Some(receives.is_some());
        if !user.enabled || !user.uid.eq_ignore_ascii_case(login) {
            return Ok(None);
        }
        Ok(Some((user, token)))
    }

    async fn by_secret(&self, secret: &Secret) -> Result<Option<AppToken>> {
        let sql = const_sql!("SELECT {TOKEN_COLUMNS} FROM app_tokens WHERE token_hash = ?");
        let row = self.db.row(sql, &[digest(secret.expose()).into()]).await?;
        row.map(|r| AppToken::from_row(&r)).transpose()
    }

    pub async fn list(&self, user_id: i64) -> Result<Vec<AppToken>> {
        let sql =
            const_sql!("SELECT {TOKEN_COLUMNS} FROM app_tokens WHERE user_id = ? ORDER BY id");
        let rows = self.db.rows(sql, &[Val::I64(user_id)]).await?;
        rows.iter().map(AppToken::from_row).collect()
    }

    /// Marks every device of a user for remote wipe: each is refused at its
    /// next request and, asking why, is told to wipe itself.
    pub async fn request_wipe_all(&self, user_id: i64) -> Result<usize> {
        let n = self
            .db
            .exec(
                "UPDATE app_tokens SET wipe = 1 WHERE user_id = ? AND kind = 1",
                &[user_id.into()],
            )
            .await?;
        self.users
            .notify(user_id, "An administrator asked all your devices to wipe their data.")
            .await?;
        // Browser sessions cannot wipe anything; they simply end.
        self.db
            .exec("DELETE FROM app_tokens WHERE user_id = ? AND kind = 0", &[user_id.into()])
            .await?;
        tracing::info!(target: "strongroom::tokens", user = user_id, devices = n, "remote wipe requested");
        Ok(n as usize)
    }

    /// Whether the device holding `secret` must wipe itself: its account and
    /// token id when it must, `None` otherwise.
    pub async fn wipe_pending(&self, secret: &Secret) -> Result<Option<(String, i64)>> {
        let Some(t) = self.by_secret(secret).await?.filter(|t| t.wipe) else { return Ok(None) };
        let uid = self.users.get_by_id(t.user_id).await?.map(|u| u.uid).unwrap_or_default();
        Ok(Some((uid, t.id)))
    }

    /// The device confirmed its wipe: its token is deleted. Gives the account
    /// and token id, or `None` when no wipe was pending.
    pub async fn wipe_done(&self, secret: &Secret) -> Result<Option<(String, i64)>> {
        let Some(t) = self.by_secret(secret).await?.filter(|t| t.wipe) else { return Ok(None) };
        self.db.exec("DELETE FROM app_tokens WHERE id = ?", &[t.id.into()]).await?;
        tracing::info!(target: "strongroom::tokens", user = t.user_id, token = t.id, "remote wipe confirmed");
        let subject = format!("Your device \"{}\" has wiped its data and been signed out.", t.name);
        self.users.notify(t.user_id, &subject).await?;
        let uid = self.users.get_by_id(t.user_id).await?.map(|u| u.uid).unwrap_or_default();
        Ok(Some((uid, t.id)))
    }

    /// Revokes one of the user's app passwords; it fails on the very next request.
    pub async fn delete(&self, user_id: i64, token_id: i64) -> Result<()> {
        let n = self
            .db
            .exec(
                "DELETE FROM app_tokens WHERE id = ? AND user_id = ?",
                &[token_id.into(), user_id.into()],
            )
            .await?;
        if n == 0 {
            return Err(Error::NotFound);
        }
        tracing::info!(target: "strongroom::tokens", token = token_id, "app password revoked");
        Ok(())
    }

    /// Revokes every app password of a user (account deleted or disabled by an admin).
    pub async fn delete_all(&self, user_id: i64) -> Result<()> {
        self.db.exec("DELETE FROM app_tokens WHERE user_id = ?", &[user_id.into()]).await?;
        Ok(())
    }
}

/// Whether an address recorded as text (`IpAddr`'s own formatting) is `address`.
fn recorded_is(recorded: Option<&str>, address: IpAddr) -> bool {
    recorded.and_then(|a| a.parse::<IpAddr>().ok()) == Some(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_address_is_compared_as_an_address() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(recorded_is(Some(&v4.to_string()), v4));
        assert!(recorded_is(Some(&v6.to_string()), v6));
        assert!(!recorded_is(Some("192.0.2.70"), v4));
        assert!(!recorded_is(Some(&v4.to_string()), v6));
        assert!(!recorded_is(None, v4));
        assert!(!recorded_is(Some(""), v4));
        assert!(!recorded_is(Some("not an address"), v4));
    }

    #[test]
    fn the_token_column_count_matches_the_column_list() {
        assert_eq!(TOKEN_COLUMNS.split(',').count(), TOKEN_COLUMN_COUNT);
    }

    #[test]
    fn tokens_have_the_expected_shape() {
        let s = random_secret(TOKEN_LEN);
        assert!(looks_like_token(s.expose()));
        assert!(!looks_like_token("short"));
        assert!(!looks_like_token(&"a-".repeat(36)));
        assert_ne!(random_secret(TOKEN_LEN), s);
    }
}
