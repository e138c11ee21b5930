//! Brute-force protection: failed attempts are counted per action and client
//! subnet (an IPv4 address, an IPv6 /64). Each failure doubles the delay
//! before the next attempt is answered, up to a cap; past the limit within
//! half an hour every attempt is refused at once (429). A success resets the
//! failures of that login from that subnet. Counts live in the database, or in
//! Redis when several nodes must share them.

use std::{net::IpAddr, time::Duration};

use redis::AsyncCommands;
use strongroom_store::{Db, Val};

use crate::{
    error::{Error, Result},
    net::{Cidr, subnet},
    util::now_secs,
};

/// Failures older than this no longer count at all.
const MEMORY_SECS: i64 = 12 * 3600;
/// The window in which more than `max_attempts` failures block.
const BLOCK_SECS: i64 = 1800;

#[derive(Debug, Clone)]
pub struct Settings {
    pub enabled: bool,
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub allow: Vec<Cidr>,
}

/// What to do with an attempt before checking its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer after this delay.
    Wait(Duration),
    /// Refuse now: too many failures.
    Blocked,
}

#[derive(Clone)]
enum Store {
    Db(Db),
    Redis(redis::aio::ConnectionManager),
}

#[derive(Clone)]
pub struct Throttle {
    store: Store,
    settings: Settings,
}

fn redis_err(e: redis::RedisError) -> Error {
    Error::Unavailable(format!("redis: {e}"))
}

impl Throttle {
    pub fn with_db(db: Db, settings: Settings) -> Throttle {
        Throttle { store: Store::Db(db), settings }
    }

    pub async fn with_redis(url: &str, settings: Settings) -> Result<Throttle> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        let conn = redis::aio::ConnectionManager::new(client).await.map_err(redis_err)?;
        Ok(Throttle { store: Store::Redis(conn), settings })
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        !self.settings.enabled || self.settings.allow.iter().any(|c| c.contains(ip))
    }

    /// Failures of `action` from `ip`'s subnet since `since`.
    async fn count(&self, ip: IpAddr, action: &str, since: i64) -> Result<u64> {
        let net = subnet(ip);
        match &self.store {
            Store::Db(db) => {
                let row = db
                    .row(
                        "SELECT COUNT(*) FROM bruteforce_attempts WHERE subnet = ? AND action = ? AND occurred > ?",
                        &[net.into(), action.into(), since.into()],
                    )
                    .await?;
                Ok(row.map(|r| r.i64(0)).transpose()?.unwrap_or(0) as u64)
            }
            Store::Redis(c) => {
                let mut c = c.clone();
                c.zcount(redis_key(action, &net), since + 1, "+inf").await.map_err(redis_err)
            }
        }
    }

    /// The longest delay an attempt is made to wait.
    pub fn max_delay(&self) -> Duration {
        self.settings.max_delay
    }

    /// How to treat the next attempt of `action` from `ip`.
    pub async fn check(&self, ip: IpAddr, action: &str) -> Result<Verdict> {
        if self.exempt(ip) {
            return Ok(Verdict::Wait(Duration::ZERO));
        }
        let now = now_secs();
        let n = self.count(ip, action, now - MEMORY_SECS).await?;
        if n == 0 {
            return Ok(Verdict::Wait(Duration::ZERO));
        }
        if n > u64::from(self.settings.max_attempts)
            && self.count(ip, action, now - BLOCK_SECS).await?
                > u64::from(self.settings.max_attempts)
        {
            return Ok(Verdict::Blocked);
        }
        // The first failure waits the base delay; each further one doubles it.
        let factor = 1u32 << (n - 1).min(30);
        Ok(Verdict::Wait(
            self.settings.base_delay.saturating_mul(factor).min(self.settings.max_delay),
        ))
    }

    /// Whether the next attempt of `action` from `ip` would be refused as
    /// past the budget: what [`Throttle::begin_attempt`] answers once it has
    /// counted that attempt. For a secret checked without counting an
    /// attempt (a password verified a moment ago, found in a cache), which
    /// must be refused exactly where a checked one would be.
    pub async fn next_is_blocked(&self, ip: IpAddr, action: &str) -> Result<bool> {
        if self.exempt(ip) {
            return Ok(false);
        }
        let n = self.count(ip, action, now_secs() - BLOCK_SECS).await?;
        Ok(n >= u64::from(self.settings.max_attempts))
    }

    /// Counts an attempt before its secret is checked, and says whether it
    /// may go on. Recording first means a burst of parallel guesses sees
    /// itself: each one counts the others, so only the budget gets checked.
    /// A success then clears the record ([`Throttle::succeeded`]).
    pub async fn begin_attempt(&self, ip: IpAddr, action: &str, who: &str) -> Result<Verdict> {
        if self.exempt(ip) {
            return Ok(Verdict::Wait(Duration::ZERO));
        }
        let before = self.check(ip, action).await?;
        if before == Verdict::Blocked {
            return Ok(Verdict::Blocked);
        }
        tracing::debug!(address = %ip, action, "attempt counted before its check");
        self.record(ip, action, who).await?;
        let n = self.count(ip, action, now_secs() - BLOCK_SECS).await?;
        if n > u64::from(self.settings.max_attempts) {
            return Ok(Verdict::Blocked);
        }
        Ok(before)
    }

    /// Records a failure of `action` from `ip` for the login `who`.
    pub async fn failed(&self, ip: IpAddr, action: &str, who: &str) -> Result<()> {
        if self.exempt(ip) {
            return Ok(());
        }
        tracing::info!(address = %ip, action, "failed attempt counted for brute-force protection");
        self.record(ip, action, who).await
    }

    /// Stores one attempt (a failure, or one counted before its check).
    async fn record(&self, ip: IpAddr, action: &str, who: &str) -> Result<()> {
        let net = subnet(ip);
        let now = now_secs();
        let who: String = who.chars().take(200).collect();
        match &self.store {
            Store::Db(db) => {
                db.exec(
                    "DELETE FROM bruteforce_attempts WHERE occurred < ?",
                    &[(now - MEMORY_SECS).into()],
                )
                .await?;
                db.exec(
                    "INSERT INTO bruteforce_attempts (action, subnet, who, occurred) VALUES (?, ?, ?, ?)",
                    &[action.into(), net.into(), who.into(), now.into()],
                )
                .await?;
            }
            Store::Redis(c) => {
                let mut c = c.clone();
                let key = redis_key(action, &net);
                // Members must be unique; the score is the time.
                let member = format!("{now}:{}:{who}", rand::random::<u32>());
                let _: () = redis::pipe()
                    .zadd(&key, member, now)
                    .zrembyscore(&key, "-inf", now - MEMORY_SECS)
                    .expire(&key, MEMORY_SECS)
                    .query_async(&mut c)
                    .await
                    .map_err(redis_err)?;
            }
        }
        Ok(())
    }

    /// A success: forgets this login's failures of `action` from `ip`'s subnet.
    pub async fn succeeded(&self, ip: IpAddr, action: &str, who: &str) -> Result<()> {
        if self.exempt(ip) {
            return Ok(());
        }
        let net = subnet(ip);
        let who: String = who.chars().take(200).collect();
        match &self.store {
            Store::Db(db) => {
                db.exec(
                    "DELETE FROM bruteforce_attempts WHERE subnet = ? AND action = ? AND who = ?",
                    &[net.into(), action.into(), who.into()],
                )
                .await?;
            }
            Store::Redis(c) => {
                let mut c = c.clone();
                let key = redis_key(action, &net);
                let members: Vec<String> = c.zrange(&key, 0, -1).await.map_err(redis_err)?;
                let mine: Vec<&String> = members
                    .iter()
                    .filter(|m| m.splitn(3, ':').nth(2) == Some(who.as_str()))
                    .collect();
                if !mine.is_empty() {
                    let _: () = c.zrem(&key, mine).await.map_err(redis_err)?;
                }
            }
        }
        Ok(())
    }

    /// Failures per action recorded for `ip`'s subnet in the last 12 hours.
    pub async fn status(&self, ip: IpAddr) -> Result<Vec<(String, u64)>> {
        let net = subnet(ip);
        let since = now_secs() - MEMORY_SECS;
        match &self.store {
            Store::Db(db) => {
                let rows = db
                    .rows(
                        "SELECT action, COUNT(*) FROM bruteforce_attempts WHERE subnet = ? AND occurred > ? GROUP BY action ORDER BY action",
                        &[net.into(), since.into()],
                    )
                    .await?;
                rows.iter().map(|r| Ok((r.str(0)?, r.i64(1)? as u64))).collect()
            }
            Store::Redis(c) => {
                let mut c = c.clone();
                let keys: Vec<String> =
                    c.keys(format!("strongroom:bf:*:{net}")).await.map_err(redis_err)?;
                let mut out = Vec::new();
                for k in keys {
                    let n: u64 = c.zcount(&k, since + 1, "+inf").await.map_err(redis_err)?;
                    let action = k
                        .trim_start_matches("strongroom:bf:")
                        .trim_end_matches(&format!(":{net}"))
                        .to_owned();
                    out.push((action, n));
                }
                out.sort();
                Ok(out)
            }
        }
    }

    /// Forgets every failure recorded for `ip`'s subnet.
    pub async fn reset(&self, ip: IpAddr) -> Result<()> {
        let net = subnet(ip);
        match &self.store {
            Store::Db(db) => {
                db.exec("DELETE FROM bruteforce_attempts WHERE subnet = ?", &[Val::from(net)])
                    .await?;
            }
            Store::Redis(c) => {
                let mut c = c.clone();
                let keys: Vec<String> =
                    c.keys(format!("strongroom:bf:*:{net}")).await.map_err(redis_err)?;
                if !keys.is_empty() {
                    let _: () = c.del(keys).await.map_err(redis_err)?;
                }
            }
        }
        Ok(())
    }
}

fn redis_key(action: &str, subnet: &str) -> String {
    format!("strongroom:bf:{action}:{subnet}")
}
