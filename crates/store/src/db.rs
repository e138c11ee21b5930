//! One connection pool per backend behind a small, dialect-neutral surface.
//!
//! sqlx's `Any` driver is avoided on purpose (it rejects several column types);
//! instead every query is written once with `?` placeholders, rewritten to `$n`
//! for PostgreSQL, and bound from the handful of value types this project uses.
//! PostgreSQL and MySQL go through sqlx; SQLite through [`crate::sqlite`],
//! which runs statements without sqlx's thread hand-offs.
//!
//! Query text is taken as `&str` so that `IN (…)` lists can be built; callers only
//! ever join literal fragments and [`placeholders`], and bind every value.

use std::{collections::HashMap, str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    AssertSqlSafe, Row as _,
    mysql::{MySql, MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow},
    postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, Postgres},
};

use crate::sqlite::{SqlitePool, SqliteRow, SqliteTx};

/// The SQL dialect of a connection; a few statements differ per dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

/// A database failure, classified by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached or the connection broke; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint was violated.
    #[error("duplicate entry")]
    Conflict,
    /// The database has no room left to grow (a full disk or quota, a file
    /// at its size limit); nothing was written.
    #[error("database full: {0}")]
    Full(String),
    /// A deadlock or serialization failure: the transaction may be retried.
    #[error("transaction conflict, retry")]
    Retry,
    /// Anything else: a bug or a schema mismatch.
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => DbError::Unavailable(e.to_string()),
            sqlx::Error::Database(d) => {
                if d.is_unique_violation() {
                    return DbError::Conflict;
                }
                // MySQL and MariaDB say most of what matters in their error
                // numbers; their SQLSTATE is a generic HY000 for many.
                if let Some(my) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    match my.number() {
                        // ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK.
                        1205 | 1213 => return DbError::Retry,
                        // ER_DISK_FULL, ER_RECORD_FILE_FULL.
                        1021 | 1114 => return DbError::Full(e.to_string()),
                        _ => {}
                    }
                }
                let code = d.code().unwrap_or_default();
                // 40001/40P01: serialization failure and deadlock (PostgreSQL,
                // and MySQL's SQLSTATE of a deadlock); 5/6: SQLITE_BUSY / SQLITE_LOCKED.
                match code.as_ref() {
                    "40001" | "40P01" | "5" | "6" | "517" => DbError::Retry,
                    // PostgreSQL's disk_full; 13: SQLITE_FULL.
                    "53100" | "13" => DbError::Full(e.to_string()),
                    // 57P01..03: PostgreSQL admin shutdown; 08xxx: connection exceptions.
                    c if c.starts_with("57P") || c.starts_with("08") => {
                        DbError::Unavailable(e.to_string())
                    }
                    _ => DbError::Other(e.to_string()),
                }
            }
            _ => DbError::Other(e.to_string()),
        }
    }
}

/// A value bound to a query parameter.
#[derive(Debug, Clone)]
pub enum Val {
    I64(i64),
    OptI64(Option<i64>),
    Str(String),
    OptStr(Option<String>),
    /// Binary content (a small blob kept in the database), or NULL.
    OptBytes(Option<bytes::Bytes>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::I64(v)
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::OptI64(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Str(v.to_owned())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Str(v)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::OptStr(v)
    }
}
impl From<Option<bytes::Bytes>> for Val {
    fn from(v: Option<bytes::Bytes>) -> Self {
        Val::OptBytes(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Val::OptStr(v.map(str::to_owned))
    }
}

/// A result row of any backend, read by column index.
pub enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
    MySql(MySqlRow),
}

impl Row {
    pub fn i64(&self, i: usize) -> Result<i64, DbError> {
        self.opt_i64(i)?.ok_or_else(|| DbError::Other(format!("column {i} is NULL")))
    }

    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, DbError> {
        Ok(match self {
            Row::Sqlite(r) => r.opt_i64(i)?,
            Row::Postgres(r) => r.try_get(i)?,
            Row::MySql(r) => r.try_get(i)?,
        })
    }

    pub fn str(&self, i: usize) -> Result<String, DbError> {
        self.opt_str(i)?.ok_or_else(|| DbError::Other(format!("column {i} is NULL")))
    }

    pub fn opt_str(&self, i: usize) -> Result<Option<String>, DbError> {
        Ok(match self {
            Row::Sqlite(r) => r.opt_str(i)?,
            Row::Postgres(r) => r.try_get(i)?,
            // Columns with a binary collation (names compare byte-wise) are reported
            // as binary by MySQL, so they are read as bytes and checked as UTF-8.
            Row::MySql(r) => match r.try_get_unchecked::<Option<Vec<u8>>, _>(i)? {
                None => None,
                Some(b) => Some(
                    String::from_utf8(b).map_err(|_| DbError::Other("non UTF-8 text".into()))?,
                ),
            },
        })
    }

    /// [`Row::opt_str`] that moves the text out of a SQLite row instead of
    /// copying it. The column reads as NULL afterwards: only for rows whose
    /// columns are each read once (a row turned into a value).
    pub fn take_opt_str(&mut self, i: usize) -> Result<Option<String>, DbError> {
        use rusqlite::types::Value;
        self.take_or_read(
            i,
            |v| if let Value::Text(s) = v { Ok(Some(s)) } else { Err(v) },
            |r| r.opt_str(i),
        )
    }

    /// [`Row::take_opt_str`] for a column that is never NULL.
    pub fn take_str(&mut self, i: usize) -> Result<String, DbError> {
        self.take_opt_str(i)?.ok_or_else(|| DbError::Other(format!("column {i} is NULL")))
    }

    /// [`Row::opt_bytes`] that moves the bytes out of a SQLite row, as
    /// [`Row::take_opt_str`] does.
    pub fn take_bytes(&mut self, i: usize) -> Result<Option<Vec<u8>>, DbError> {
        use rusqlite::types::Value;
        self.take_or_read(
            i,
            |v| if let Value::Blob(b) = v { Ok(Some(b)) } else { Err(v) },
            |r| r.opt_bytes(i),
        )
    }

    /// Column `i` of a SQLite row moved out when `moved` accepts its value;
    /// otherwise (another type, NULL, another backend) `read` as usual.
    fn take_or_read<T>(
        &mut self,
        i: usize,
        moved: impl FnOnce(rusqlite::types::Value) -> Result<T, rusqlite::types::Value>,
        read: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        if let Row::Sqlite(r) = self {
            match moved(r.take(i)) {
                Ok(v) => return Ok(v),
                Err(other) => r.put_back(i, other),
            }
        }
        read(self)
    }

    /// A binary column, or `None` for NULL.
    pub fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, DbError> {
        Ok(match self {
            Row::Sqlite(r) => r.opt_bytes(i)?,
            Row::Postgres(r) => r.try_get(i)?,
            Row::MySql(r) => r.try_get(i)?,
        })
    }
}

/// A database handle: a pool of one backend.
#[derive(Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// An open transaction; dropped without [`Tx::commit`] it rolls back.
pub enum Tx {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
    MySql(sqlx::Transaction<'static, MySql>),
}

/// Rewrites `?` placeholders to PostgreSQL's `$1, $2, …`.
fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Val::I64(v) => q.bind(*v),
                Val::OptI64(v) => q.bind(*v),
                Val::Str(v) => q.bind(v.clone()),
                Val::OptStr(v) => q.bind(v.clone()),
                Val::OptBytes(v) => q.bind(v.as_ref().map(|b| b.to_vec())),
            };
        }
        q
    }};
}

/// SQLite re-prepares a statement on every new binding when its planner has
/// looked at the value of a `= ?` parameter (to guess how selective it is);
/// sqlx clears bindings after each use, so that happened on every execution.
/// A unary plus keeps the planner from looking (`col = +?` still uses the
/// index) and costs nothing at run time.
///
/// The rewritten text is remembered per thread (the server runs a few hundred
/// distinct statements): searching each statement's text again cost more
/// than a hash lookup.
fn sqlite_sql(sql: &str) -> Arc<str> {
    const KEPT: usize = 1024;
    thread_local! {
        static REWRITTEN: std::cell::RefCell<HashMap<Box<str>, Arc<str>, foldhash::fast::RandomState>> =
            std::cell::RefCell::new(HashMap::default());
    }
    REWRITTEN.with_borrow_mut(|kept| {
        if let Some(text) = kept.get(sql) {
            return text.clone();
        }
        let text: Arc<str> = sql.replace("= ?", "= +?").into();
        if kept.len() >= KEPT {
            kept.clear();
        }
        kept.insert(sql.into(), text.clone());
        text
    })
}

/// Runs `$body` with `$q` bound to the prepared query on PostgreSQL or MySQL;
/// `$sqlite` is what SQLite does instead.
macro_rules! on_backend {
    ($self:expr, $sql:expr, $args:expr, |$s:ident| $sqlite:expr, |$q:ident, $c:ident, $wrap:ident| $body:expr) => {
        match $self {
            Self::Sqlite($s) => $sqlite,
            Self::Postgres($c) => {
                let $q =
                    bind_all!(sqlx::query::<Postgres>(AssertSqlSafe(pg_placeholders($sql))), $args);
                let $wrap = Row::Postgres;
                $body
            }
            Self::MySql($c) => {
                let $q = bind_all!(sqlx::query::<MySql>(AssertSqlSafe($sql)), $args);
                let $wrap = Row::MySql;
                $body
            }
        }
    };
}

/// The rows of a SQLite statement, wrapped as [`Row`]s.
fn sqlite_rows(rows: Vec<SqliteRow>) -> Vec<Row> {
    rows.into_iter().map(Row::Sqlite).collect()
}

impl Db {
    /// Connects to the database named by `url` (`sqlite://`, `postgres://`, `mysql://`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        let acquire = Duration::from_secs(5);
        if url.starts_with("sqlite:") {
            Ok(Db::Sqlite(SqlitePool::open(url, max_connections).await?))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts =
                PgConnectOptions::from_str(url).map_err(|e| DbError::Other(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire)
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            let url = url.replacen("mariadb:", "mysql:", 1);
            let opts = MySqlConnectOptions::from_str(&url)
                .map_err(|e| DbError::Other(e.to_string()))?
                .charset("utf8mb4");
            let pool = MySqlPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire)
                .after_connect(|c, _| {
                    Box::pin(async move {
                        // Strict mode refuses over-long values instead of truncating them.
                        sqlx::query(
                            "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
                        )
                        .execute(&mut *c)
                        .await?;
                        sqlx::query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                            .execute(&mut *c)
                            .await?;
                        Ok(())
                    })
                })
                .connect_with(opts)
                .await?;
            Ok(Db::MySql(pool))
        } else {
            Err(DbError::Other(format!(
                "unsupported database URL scheme in {:?} (use sqlite://, postgres:// or mysql://)",
                url.split(':').next().unwrap_or("")
            )))
        }
    }

    /// A mark to compare with a later one (see [`ChangeMark`]). `None` on
    /// PostgreSQL and MySQL, which several nodes share: there the writes of
    /// the others are what matters.
    pub fn change_mark(&self) -> Option<ChangeMark> {
        match self {
            Db::Sqlite(p) => Some(p.change_mark()),
            Db::Postgres(_) | Db::MySql(_) => None,
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(..) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
            Db::MySql(_) => Dialect::MySql,
        }
    }

    /// The backend's name, for logs and diagnostics.
    pub fn dialect_name(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
            Db::MySql(_) => "mysql",
        }
    }

    /// Starts a write transaction. On SQLite it takes the database's write lock
    /// at once (`BEGIN IMMEDIATE`), so a read-then-write transaction never fails
    /// half way. On PostgreSQL and MySQL it is READ COMMITTED; callers that read
    /// then write take a row lock first ([`Tx::lock_row`]) so that such
    /// transactions on the same data run one after the other.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
            Db::MySql(p) => Tx::MySql(p.begin().await?),
        })
    }

    pub async fn exec(&self, sql: &str, args: &[Val]) -> Result<u64, DbError> {
        on_backend!(
            self,
            sql,
            args,
            |p| Ok(p.run(&sqlite_sql(sql), args, Some(0)).await?.1),
            |q, c, _w| Ok(q.execute(c).await?.rows_affected())
        )
    }

    pub async fn rows(&self, sql: &str, args: &[Val]) -> Result<Vec<Row>, DbError> {
        on_backend!(
            self,
            sql,
            args,
            |p| Ok(sqlite_rows(p.run(&sqlite_sql(sql), args, None).await?.0)),
            |q, c, w| Ok(q.fetch_all(c).await?.into_iter().map(w).collect())
        )
    }

    pub async fn row(&self, sql: &str, args: &[Val]) -> Result<Option<Row>, DbError> {
        on_backend!(
            self,
            sql,
            args,
            |p| Ok(sqlite_rows(p.run(&sqlite_sql(sql), args, Some(1)).await?.0).pop()),
            |q, c, w| Ok(q.fetch_optional(c).await?.map(w))
        )
    }

    /// Runs a statement given as text (migrations), without parameters.
    pub(crate) async fn exec_raw(&self, sql: String) -> Result<(), DbError> {
        match self {
            Db::Sqlite(p) => p.exec_batch(sql).await,
            Db::Postgres(p) => {
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(p).await.map(drop).map_err(DbError::from)
            }
            Db::MySql(p) => {
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(p).await.map(drop).map_err(DbError::from)
            }
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.row("SELECT 1", &[]).await.map(drop)
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
            Db::MySql(p) => p.close().await,
        }
    }
}

impl Tx {
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Sqlite(..) => Dialect::Sqlite,
            Tx::Postgres(_) => Dialect::Postgres,
            Tx::MySql(_) => Dialect::MySql,
        }
    }

    pub async fn exec(&mut self, sql: &str, args: &[Val]) -> Result<u64, DbError> {
        on_backend!(
            self,
            sql,
            args,
            |t| Ok(t.run(&sqlite_sql(sql), args, Some(0))?.1),
            |q, c, _w| Ok(q.execute(&mut **c).await?.rows_affected())
        )
    }

    pub async fn rows(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>, DbError> {
        on_backend!(
            self,
            sql,
            args,
            |t| Ok(sqlite_rows(t.run(&sqlite_sql(sql), args, None)?.0)),
            |q, c, w| Ok(q.fetch_all(&mut **c).await?.into_iter().map(w).collect())
        )
    }

    pub async fn row(&mut self, sql: &str, args: &[Val]) -> Result<Option<Row>, DbError> {
        on_backend!(
            self,
            sql,
            args,
            |t| Ok(sqlite_rows(t.run(&sqlite_sql(sql), args, Some(1))?.0).pop()),
            |q, c, w| Ok(q.fetch_optional(&mut **c).await?.map(w))
        )
    }

    /// Locks the row `id` of `table` until the transaction ends (`SELECT … FOR
    /// UPDATE`). Transactions that take the same row lock first run one after
    /// the other, each seeing what the previous one committed. On SQLite the
    /// transaction already holds the database's write lock, so nothing is needed.
    pub async fn lock_row(&mut self, table: &'static str, id: i64) -> Result<(), DbError> {
        if self.dialect() == Dialect::Sqlite {
            return Ok(());
        }
        let sql = format!("SELECT id FROM {table} WHERE id = ? FOR UPDATE");
        self.row(&sql, &[Val::I64(id)]).await.map(drop)
    }

    /// Inserts a row and returns the generated `id` column.
    ///
    /// `sql` is an `INSERT` without a `RETURNING` clause; PostgreSQL gets one added,
    /// the others report the last insert id of the connection.
    pub async fn insert(&mut self, sql: &str, args: &[Val]) -> Result<i64, DbError> {
        match self {
            Tx::Sqlite(t) => {
                t.run(&sqlite_sql(sql), args, Some(0))?;
                t.last_insert_rowid()
            }
            Tx::Postgres(c) => {
                let text = format!("{} RETURNING id", pg_placeholders(sql));
                let q = bind_all!(sqlx::query::<Postgres>(AssertSqlSafe(text)), args);
                Ok(q.fetch_one(&mut **c).await?.try_get(0)?)
            }
            Tx::MySql(c) => {
                let q = bind_all!(sqlx::query::<MySql>(AssertSqlSafe(sql)), args);
                let id = q.execute(&mut **c).await?.last_insert_id();
                i64::try_from(id).map_err(|_| DbError::Other("insert id overflow".into()))
            }
        }
    }

    pub async fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
            Tx::MySql(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// Tells whether this process may have committed anything to the database
/// between two moments: taken before a lookup, an equal mark taken later
/// means that no write of this process changed what the lookup read (the
/// server's connections remember a verified app password on that condition,
/// for a moment only, since other processes commit without a trace here).
/// Only SQLite has one ([`Db::change_mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeMark {
    /// Commits of this process, counted as they return.
    commits: u64,
}

impl ChangeMark {
    pub(crate) fn new(commits: u64) -> ChangeMark {
        ChangeMark { commits }
    }
}

/// Makes the `?, ?, …` placeholders of an `IN (…)` list of `n` values (at least one).
pub fn placeholders(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_equality_parameters_get_a_unary_plus() {
        assert_eq!(&*sqlite_sql("a = ? AND b > ?"), "a = +? AND b > ?");
        assert_eq!(&*sqlite_sql("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn postgres_placeholders_are_numbered() {
        assert_eq!(pg_placeholders("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(pg_placeholders("SELECT 1"), "SELECT 1");
    }
}

/// What both a pool and a transaction can run: lets read helpers serve either.
pub trait Conn: Send {
    fn row<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Val],
    ) -> impl Future<Output = Result<Option<Row>, DbError>> + Send + 'a;
    fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Val],
    ) -> impl Future<Output = Result<Vec<Row>, DbError>> + Send + 'a;
}

impl Conn for Db {
    fn row<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Val],
    ) -> impl Future<Output = Result<Option<Row>, DbError>> + Send + 'a {
        Db::row(self, sql, args)
    }
    fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Val],
    ) -> impl Future<Output = Result<Vec<Row>, DbError>> + Send + 'a {
        Db::rows(self, sql, args)
    }
}

impl Conn for Tx {
    fn row<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Val],
    ) -> impl Future<Output = Result<Option<Row>, DbError>> + Send + 'a {
        Tx::row(self, sql, args)
    }
    fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        args: &'a [Val],
    ) -> impl Future<Output = Result<Vec<Row>, DbError>> + Send + 'a {
        Tx::rows(self, sql, args)
    }
}
