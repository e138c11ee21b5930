//! Login Flow v2: a client asks for a flow, the user logs in and grants
//! access in a browser, and the client's poll then receives a new app password.
//!
//! Only digests of the poll and login tokens are stored, and no app password
//! waits in the database: it is created at the successful poll, which also
//! ends the flow, so it is handed out exactly once.

use sha2::{Digest, Sha256};
use strongroom_store::{Db, Val};

use crate::{
    error::{Error, Result},
    secret::Secret,
    tokens::{Tokens, random_secret},
    users::{User, Users},
    util::now_secs,
};

/// A flow lives this long (seconds), as in Nextcloud.
pub const LIFETIME: i64 = 1200;
const TOKEN_CHARS: usize = 128;

fn digest(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A pending flow, found by its login token.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: i64,
    pub client_name: String,
    pub granted: bool,
}

/// What a successful poll hands to the client.
#[derive(Debug)]
pub struct Grant {
    pub login_name: String,
    pub app_password: Secret,
}

#[derive(Clone)]
pub struct LoginFlows {
    db: Db,
    users: Users,
    tokens: Tokens,
}

impl LoginFlows {
    pub fn new(db: Db, users: Users, tokens: Tokens) -> LoginFlows {
        LoginFlows { db, users, tokens }
    }

    /// Starts a flow for a client; returns (poll token, login token).
    pub async fn start(&self, client_name: &str) -> Result<(Secret, Secret)> {
        let poll = random_secret(TOKEN_CHARS);
        let login = random_secret(TOKEN_CHARS);
        let name: String = client_name.chars().filter(|c| !c.is_control()).take(120).collect();
        let name = if name.trim().is_empty() { "unknown client".to_owned() } else { name };
        let now = now_secs();
        self.db
            .exec("DELETE FROM login_flows WHERE created_at < ?", &[(now - LIFETIME).into()])
            .await?;
        self.db
            .exec(
                "INSERT INTO login_flows (poll_hash, login_hash, client_name, created_at) VALUES (?, ?, ?, ?)",
                &[digest(poll.expose()).into(), digest(login.expose()).into(), name.into(), now.into()],
            )
            .await?;
        Ok((poll, login))
    }

    /// The unexpired flow a login token belongs to.
    pub async fn by_login_token(&self, login: &str) -> Result<Flow> {
        let row = self
            .db
            .row(
                "SELECT id, client_name, user_id FROM login_flows WHERE login_hash = ? AND created_at >= ?",
                &[digest(login).into(), (now_secs() - LIFETIME).into()],
            )
            .await?;
        let r = row.ok_or(Error::NotFound)?;
        Ok(Flow { id: r.i64(0)?, client_name: r.str(1)?, granted: r.opt_i64(2)?.is_some() })
    }

    /// Records that `user`, logged in as `login_name`, grants the flow.
    pub async fn grant(&self, flow: &Flow, user: &User, login_name: &str) -> Result<()> {
        let n = self
            .db
            .exec(
                "UPDATE login_flows SET user_id = ?, login_name = ? WHERE id = ? AND user_id IS NULL",
                &[user.id.into(), login_name.into(), flow.id.into()],
            )
            .await?;
        if n == 0 {
            return Err(Error::Conflict("this login flow was already granted".into()));
        }
        Ok(())
    }

    /// Answers a poll: `None` while the flow is pending (or unknown, or
    /// expired); once granted, a new app password, and the flow ends.
    pub async fn poll(&self, poll: &str) -> Result<Option<Grant>> {
        let mut tx = self.db.begin().await?;
        let row = tx
            .row(
                "SELECT id, client_name, user_id, login_name FROM login_flows WHERE poll_hash = ? AND created_at >= ?",
                &[digest(poll).into(), (now_secs() - LIFETIME).into()],
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        let (id, client, user_id, login_name) =
            (r.i64(0)?, r.str(1)?, r.opt_i64(2)?, r.opt_str(3)?);
        let (Some(user_id), Some(login_name)) = (user_id, login_name) else { return Ok(None) };
        // Deleting first makes a second, concurrent poll find nothing.
        if tx.exec("DELETE FROM login_flows WHERE id = ?", &[Val::I64(id)]).await? == 0 {
            return Ok(None);
        }
        tx.commit().await?;
        let Some(user) = self.users.get_by_id(user_id).await? else { return Ok(None) };
        if !user.enabled {
            return Ok(None);
        }
        let (_, app_password) = self.tokens.create(&user, &client).await?;
        Ok(Some(Grant { login_name, app_password }))
    }
}
