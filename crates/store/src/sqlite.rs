//! SQLite through its C library directly (rusqlite), without a thread per
//! connection.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands each
//! statement and each result row to it through a channel; under load those
//! hand-offs (context switches and futex wake-ups) were about 40 % of the
//! server's CPU for a small GET. Here a read runs on the calling thread: with
//! the database in WAL mode a reader never waits for a writer, and a lookup
//! that hits SQLite's page cache takes microseconds. So does a `COMMIT`, which
//! only appends to the WAL (checkpoints run in the background). What can wait
//! on the disk or on another process runs on tokio's blocking pool instead:
//! the flush of the WAL, a checkpoint, a statement that writes outside a
//! transaction, and a `BEGIN IMMEDIATE` that finds the write lock held by
//! another process (the CLI).
//!
//! Commits are made durable in groups. SQLite runs with `synchronous =
//! NORMAL`: a `COMMIT` appends the transaction to the WAL file without
//! flushing it (still crash-safe: a crash loses only unflushed transactions,
//! never consistency). The committing writer then passes the write lock on
//! and waits until an fsync of the WAL file that began after its commit has
//! finished (`durable.rs`); one fsync thereby covers every transaction
//! committed while the previous one ran. Nothing is acknowledged
//! before its fsync, as with `synchronous = FULL`; the difference is that
//! other requests may read a transaction a few milliseconds before it is on
//! disk, and that writers no longer queue behind each other's fsync.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, types::Value};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use crate::db::{DbError, Val};

mod durable;
mod snapshot;
use durable::Flushes;
use snapshot::InSnapshot;
pub use snapshot::{end_read_snapshot, with_read_snapshot};

/// How long a writer waits for SQLite's write lock held by another process,
/// and for its turn among this process's writers.
pub(crate) const WRITE_WAIT: Duration = Duration::from_secs(10);

/// How long a caller waits for a free connection.
const ACQUIRE_WAIT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: the server runs about a hundred
/// distinct statements, the hot ones a dozen.
const STATEMENT_CACHE: usize = 128;

/// A pool of SQLite connections to one database file.
#[derive(Clone)]
pub struct SqlitePool(Arc<Shared>);

struct Shared {
    path: PathBuf,
    flags: OpenFlags,
    idle: Mutex<Vec<Connection>>,
    /// The connection write transactions run on, kept apart from `idle`.
    /// SQLite drops a connection's whole page cache when it finds that
    /// another connection has written since its last transaction; a writer
    /// drawing from `idle` found that on nearly every transaction under
    /// steady writes and read its pages again from the OS (a `pread` each),
    /// all while holding the write lock. One connection taking every write
    /// in turn keeps its cache, since its own commits do not count.
    writer_idle: Mutex<Option<Connection>>,
    permits: Arc<Semaphore>,
    /// Queues this process's write transactions in memory. SQLite lets one
    /// writer in at a time; without the queue the others poll in SQLite's
    /// busy handler, which sleeps 1, 2, 5, … 100 ms between tries. Other
    /// processes (the CLI) still meet the busy handler, which stays the
    /// fallback.
    writers: Arc<tokio::sync::Mutex<()>>,
    /// Commits counted, and which of them are on stable storage.
    flushes: Arc<Flushes>,
    /// The commit count when the last checkpoint began (see [`Shared::checkpoint_due`]).
    checkpointed_at: std::sync::atomic::AtomicU64,
    /// Set while a checkpoint runs.
    checkpointing: std::sync::atomic::AtomicBool,
    /// Frames in the WAL after the last commit of any of the pool's
    /// connections (SQLite's WAL hook sets it): how far the WAL reaches now,
    /// which its file's size stops telling once it has started over.
    wal_frames: Arc<std::sync::atomic::AtomicU64>,
}

/// Commits between two checkpoints of the WAL into the database file. SQLite's
/// own automatic checkpoint (every 1,000 WAL pages) is turned off: it runs in
/// whichever `COMMIT` crosses the threshold, and its flush of the database
/// file would then stall the request thread that commits (see `commit`).
const CHECKPOINT_EVERY: u64 = 256;

/// A WAL larger than this is checkpointed with the writers held back, and
/// made to start over (see [`restart_wal`]). The WAL only starts over from
/// its beginning when all of it has been copied and no reader still reads
/// from it; under a steady stream of commits, or of reads that overlap, a
/// PASSIVE checkpoint never gets there, and the WAL would grow as long as the
/// stream lasts. Also the size SQLite cuts the WAL file back to when it
/// starts over (`journal_size_limit`).
const WAL_RESET_SIZE: u64 = 8 * 1024 * 1024;

/// Bytes a WAL frame holds: SQLite's default page of 4 KiB (the server
/// never sets another) and the frame's own header.
const WAL_FRAME_BYTES: u64 = 4096 + 24;

/// Commits between two checkpoints started because the WAL is large: a
/// single commit may write megabytes (deleting a batch of versions frees
/// every page of their content), so size alone starts one early; the
/// spacing keeps a WAL that readers hold from making every commit try.
const CHECKPOINT_MIN_SPACING: u64 = 16;

/// How long [`restart_wal`] may hold the writers back waiting for the
/// readers of older snapshots to finish; past it the writers go on and the
/// next due checkpoint tries again.
const RESTART_WAIT: Duration = Duration::from_millis(200);

/// A result row, copied out of SQLite.
pub struct SqliteRow(Vec<Value>);

impl SqliteRow {
    pub(crate) fn opt_i64(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.0.get(i) {
            Some(Value::Integer(v)) => Ok(Some(*v)),
            Some(Value::Null) => Ok(None),
            Some(other) => Err(DbError::Other(format!("column {i} is not an integer: {other:?}"))),
            None => Err(DbError::Other(format!("no column {i}"))),
        }
    }

    pub(crate) fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, DbError> {
        match self.0.get(i) {
            Some(Value::Blob(b)) => Ok(Some(b.clone())),
            Some(Value::Null) => Ok(None),
            Some(other) => Err(DbError::Other(format!("column {i} is not binary: {other:?}"))),
            None => Err(DbError::Other(format!("no column {i}"))),
        }
    }

    /// [`SqliteRow::opt_str`] or [`SqliteRow::opt_bytes`] that moves the value
    /// out, leaving NULL behind: for a row read once, no copy.
    pub(crate) fn take(&mut self, i: usize) -> Value {
        self.0.get_mut(i).map_or(Value::Null, |v| std::mem::replace(v, Value::Null))
    }

    /// Undoes [`SqliteRow::take`] for a value of another type than wanted,
    /// so the usual reading reports it.
    pub(crate) fn put_back(&mut self, i: usize, v: Value) {
        if let Some(slot) = self.0.get_mut(i) {
            *slot = v;
        }
    }

    pub(crate) fn opt_str(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.0.get(i) {
            Some(Value::Text(v)) => Ok(Some(v.clone())),
            Some(Value::Null) => Ok(None),
            Some(Value::Blob(b)) => String::from_utf8(b.clone())
                .map(Some)
                .map_err(|_| DbError::Other("non UTF-8 text".into())),
            Some(other) => Err(DbError::Other(format!("column {i} is not text: {other:?}"))),
            None => Err(DbError::Other(format!("no column {i}"))),
        }
    }
}

/// A connection taken from the pool; back to the pool when dropped.
pub(crate) struct Pooled {
    conn: Option<Connection>,
    shared: Arc<Shared>,
    /// Whether the connection goes back to [`Shared::writer_idle`].
    writer: bool,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.release();
    }
}

impl Pooled {
    /// Hands the connection back now; `conn` is left empty. A connection
    /// left inside a transaction (a failed ROLLBACK) is closed, never handed
    /// to the next caller.
    fn release(&mut self) {
        let Some(c) = self.conn.take().filter(Connection::is_autocommit) else { return };
        if self.writer {
            let mut slot = self.shared.writer_idle.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(c);
                return;
            }
        }
        self.shared.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
    }

    fn conn(&self) -> Result<&Connection, DbError> {
        self.conn.as_ref().ok_or_else(|| DbError::Unavailable("connection lost".into()))
    }

    /// Runs `work` with the connection on tokio's blocking pool and takes it back.
    async fn blocking<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let conn =
            self.conn.take().ok_or_else(|| DbError::Unavailable("connection lost".into()))?;
        let (conn, out) = tokio::task::spawn_blocking(move || {
            let out = work(&conn);
            (conn, out)
        })
        .await
        .map_err(|e| DbError::Other(format!("database task failed: {e}")))?;
        self.conn = Some(conn);
        out
    }
}

impl SqlitePool {
    /// Opens (and with `create`, creates) the database named by a `sqlite:` URL:
    /// `sqlite:///absolute/path`, `sqlite://relative/path` or `sqlite:path`,
    /// optionally followed by `?mode=rwc` (the default), `?mode=rw` or `?mode=ro`.
    pub async fn open(url: &str, max_connections: u32) -> Result<SqlitePool, DbError> {
        let (path, flags) = parse_url(url)?;
        if flags.contains(OpenFlags::SQLITE_OPEN_CREATE) {
            create_private(&path);
        }
        let wal = wal_path(&path);
        let pool = SqlitePool(Arc::new(Shared {
            path,
            flags,
            idle: Mutex::new(Vec::new()),
            writer_idle: Mutex::new(None),
            permits: Arc::new(Semaphore::new(max_connections.max(1) as usize)),
            writers: Arc::default(),
            flushes: Arc::new(Flushes::new(wal)),
            checkpointed_at: 0.into(),
            checkpointing: false.into(),
            wal_frames: Arc::default(),
        }));
        // Open one connection now so a wrong path fails at start, not at the first request.
        let first = pool.acquire().await?;
        drop(first);
        Ok(pool)
    }

    pub(crate) async fn acquire(&self) -> Result<Pooled, DbError> {
        self.acquire_for(false).await
    }

    /// [`SqlitePool::acquire`] for the holder of the writers' turn: the
    /// writers' own connection when it is free (see [`Shared::writer_idle`]).
    async fn acquire_writer(&self) -> Result<Pooled, DbError> {
        self.acquire_for(true).await
    }

    async fn acquire_for(&self, writer: bool) -> Result<Pooled, DbError> {
        let permit = tokio::time::timeout(ACQUIRE_WAIT, self.0.permits.clone().acquire_owned())
            .await
            .map_err(|_| DbError::Unavailable("no free database connection".into()))?
            .map_err(|_| DbError::Unavailable("database closed".into()))?;
        let own = match writer {
            true => self.0.writer_idle.lock().unwrap_or_else(|p| p.into_inner()).take(),
            false => None,
        };
        let idle = own.or_else(|| self.0.idle.lock().unwrap_or_else(|p| p.into_inner()).pop());
        let conn = match idle {
            Some(c) => c,
            None => {
                let (path, flags) = (self.0.path.clone(), self.0.flags);
                let frames = self.0.wal_frames.clone();
                tokio::task::spawn_blocking(move || {
                    let mut conn = open_connection(&path, flags)?;
                    count_wal_frames(&mut conn, frames)?;
                    Ok::<_, DbError>(conn)
                })
                .await
                .map_err(|e| DbError::Other(format!("database task failed: {e}")))??
            }
        };
        Ok(Pooled { conn: Some(conn), shared: self.0.clone(), writer, _permit: permit })
    }

    /// Runs one statement outside a transaction. A statement that only reads
    /// runs here; one that writes takes its turn among the writers and runs
    /// (with its implicit commit and flush) on the blocking pool.
    pub(crate) async fn run(
        &self,
        sql: &str,
        args: &[Val],
        limit: Option<usize>,
    ) -> Result<(Vec<SqliteRow>, u64), DbError> {
        match self.read_in_snapshot(sql, args, limit) {
            InSnapshot::Ran(out) => return out,
            // The request's snapshot ends before the write waits for a
            // connection or the writers' turn, holding none (see below).
            InSnapshot::Writes => end_read_snapshot(),
            InSnapshot::NotHeld => {
                let c = self.acquire().await?;
                let starts_snapshot = snapshot::scope_is_free();
                let read = {
                    let conn = c.conn()?;
                    let mut st = conn.prepare_cached(sql).map_err(map_err)?;
                    match st.readonly() {
                        false => None,
                        true if !starts_snapshot => {
                            return run_prepared(conn, &mut st, sql, args, limit);
                        }
                        true => {
                            snapshot::begin_read(conn)?;
                            Some(run_prepared(conn, &mut st, sql, args, limit))
                        }
                    }
                };
                if let Some(out) = read {
                    snapshot::keep(c);
                    return out;
                }
            }
        }
        // The writers' turn first, then a connection, as in `begin`: waiting
        // for the turn while holding a connection could starve the turn's
        // holder of connections.
        let turn = self.writer_turn().await?;
        let mut c = self.acquire_writer().await?;
        let (sql, args) = (sql.to_owned(), args.to_vec());
        let out = c.blocking(move |conn| run_on(conn, &sql, &args, limit)).await?;
        let done = self.0.committed();
        // The connection home before the turn passes on, for the next writer.
        drop(c);
        drop(turn);
        self.checkpoint_if_due(done);
        self.0.make_durable(done).await?;
        Ok(out)
    }

    /// Starts a checkpoint in the background once [`CHECKPOINT_EVERY`]
    /// commits have gone by since the last one began, or (at least
    /// [`CHECKPOINT_MIN_SPACING`] commits after it) once the WAL reaches past
    /// [`WAL_RESET_SIZE`]. PASSIVE: it copies what no reader still needs and
    /// waits for nobody; a later one finishes the job. When the WAL has grown
    /// past [`WAL_RESET_SIZE`] it then takes the writers' turn and makes the
    /// WAL start over ([`restart_wal`]), which has little left to copy by then.
    fn checkpoint_if_due(&self, done: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        let shared = &self.0;
        let last = shared.checkpointed_at.load(SeqCst);
        let large = shared.wal_frames.load(SeqCst) * WAL_FRAME_BYTES > WAL_RESET_SIZE;
        let due =
            done >= last + CHECKPOINT_EVERY || (large && done >= last + CHECKPOINT_MIN_SPACING);
        if !due || shared.checkpointing.swap(true, SeqCst) {
            return;
        }
        shared.checkpointed_at.store(done, SeqCst);
        let pool = self.clone();
        tokio::spawn(async move {
            let run = async {
                // First what can be copied while the writers go on: most of
                // the WAL, so that a restart below holds them back only for
                // the commits made meanwhile (and the database file's fsync).
                let mut c = pool.acquire().await?;
                c.blocking(passive_checkpoint).await?;
                drop(c);
                if pool.0.wal_frames.load(SeqCst) * WAL_FRAME_BYTES <= WAL_RESET_SIZE {
                    return Ok(());
                }
                // The turn before the connection, as in `begin`.
                let _turn = pool.writer_turn().await?;
                let mut c = pool.acquire().await?;
                c.blocking(restart_wal).await
            };
            if let Err(e) = run.await {
                tracing::warn!(error = %e, "SQLite checkpoint failed; the next one retries");
            }
            pool.0.checkpointing.store(false, SeqCst);
        });
    }

    /// See [`crate::ChangeMark`]: the commits this process has made.
    pub(crate) fn change_mark(&self) -> crate::db::ChangeMark {
        crate::db::ChangeMark::new(self.0.flushes.committed())
    }

    async fn writer_turn(&self) -> Result<OwnedMutexGuard<()>, DbError> {
        // A timeout rather than an endless wait: a caller that began a second
        // transaction while holding one would otherwise hang.
        tokio::time::timeout(WRITE_WAIT, self.0.writers.clone().lock_owned())
            .await
            .map_err(|_| DbError::Retry)
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`: the write lock is taken at once).
    pub(crate) async fn begin(&self) -> Result<SqliteTx, DbError> {
        end_read_snapshot();
        let turn = self.writer_turn().await?;
        let mut c = self.acquire_writer().await?;
        // Without a busy wait first: the lock is normally free, since this
        // process's writers queue above. If another process holds it, wait for
        // it on the blocking pool rather than sleep on this thread.
        let conn = c.conn()?;
        conn.busy_timeout(Duration::ZERO).map_err(map_err)?;
        let first = exec_cached(conn, "BEGIN IMMEDIATE");
        conn.busy_timeout(WRITE_WAIT).map_err(map_err)?;
        match first {
            Ok(()) => {}
            Err(e) if is_busy(&e) => {
                c.blocking(|conn| conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err)).await?
            }
            Err(e) => return Err(map_err(e)),
        }
        Ok(SqliteTx { conn: c, open: true, pool: self.0.clone(), turn: Some(turn) })
    }

    /// Runs a script of statements (the migrations) on the blocking pool.
    pub(crate) async fn exec_batch(&self, sql: String) -> Result<(), DbError> {
        end_read_snapshot();
        let turn = self.writer_turn().await?;
        let mut c = self.acquire_writer().await?;
        c.blocking(move |conn| conn.execute_batch(&sql).map_err(map_err)).await?;
        let done = self.0.committed();
        drop(c);
        drop(turn);
        self.0.make_durable(done).await
    }

    /// Closes the idle connections and refuses new ones.
    pub async fn close(&self) {
        self.0.permits.close();
        self.0.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.0.writer_idle.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl Shared {
    /// Counts a commit that has just returned; its number for [`Shared::make_durable`].
    fn committed(&self) -> u64 {
        self.flushes.count_commit()
    }

    /// Returns once commit number `done` is on stable storage (see `durable.rs`).
    async fn make_durable(&self, done: u64) -> Result<(), DbError> {
        self.flushes.wait(done).await
    }
}

/// Copies into the database file what of the WAL no reader still needs,
/// waiting for nobody.
fn passive_checkpoint(conn: &Connection) -> Result<(), DbError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).map_err(map_err)
}

/// Copies all of the WAL into the database file and has the next writer
/// start it over from its beginning (a RESTART checkpoint), on a connection
/// whose caller holds the writers' turn, so no commit can add to the WAL
/// meanwhile. A reader of an older snapshot still keeps its part of the WAL;
/// readers that start once all of it is copied read the database file only.
/// So this polls with no busy wait of SQLite's own (whose growing sleeps
/// would keep the writers waiting far longer than the readers take), for at
/// most [`RESTART_WAIT`]. Not getting there is not an error: the WAL stays as
/// it is and the next due checkpoint tries again.
fn restart_wal(conn: &Connection) -> Result<(), DbError> {
    conn.busy_timeout(Duration::ZERO).map_err(map_err)?;
    let deadline = std::time::Instant::now() + RESTART_WAIT;
    let outcome = loop {
        // One row: 1 when readers or another process kept it from finishing.
        match conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0)) {
            Ok(0) => break Ok(true),
            Ok(_) => {}
            Err(e) if is_busy(&e) => {}
            Err(e) => break Err(map_err(e)),
        }
        if std::time::Instant::now() >= deadline {
            break Ok(false);
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    conn.busy_timeout(WRITE_WAIT).map_err(map_err)?;
    if !outcome? {
        tracing::debug!("readers kept the WAL from starting over; the next checkpoint retries");
    }
    Ok(())
}

/// Has `conn` report, after each of its commits, how many frames the WAL
/// holds (SQLite's WAL hook, which `wal_autocheckpoint` would otherwise own;
/// it is off, see `open_connection`).
fn count_wal_frames(
    conn: &mut Connection,
    frames: Arc<std::sync::atomic::AtomicU64>,
) -> Result<(), DbError> {
    let hook = move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
        frames.store(pages.max(0) as u64, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    };
    conn.wal_hook(Some(hook)).map_err(map_err)
}

/// Runs one statement without parameters or rows, prepared once per
/// connection: `execute_batch` compiles it again on every call (about 2 %
/// of a small upload's instructions for its `BEGIN` and `COMMIT`).
pub(super) fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// The WAL file SQLite keeps beside the database file.
fn wal_path(db: &std::path::Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// An open write transaction; dropped without [`SqliteTx::commit`] it rolls back.
pub struct SqliteTx {
    conn: Pooled,
    open: bool,
    pool: Arc<Shared>,
    // Declared last so the turn passes on only after the rollback in `drop`.
    turn: Option<OwnedMutexGuard<()>>,
}

impl SqliteTx {
    pub(crate) fn run(
        &mut self,
        sql: &str,
        args: &[Val],
        limit: Option<usize>,
    ) -> Result<(Vec<SqliteRow>, u64), DbError> {
        run_on(self.conn.conn()?, sql, args, limit)
    }

    pub(crate) fn last_insert_rowid(&self) -> Result<i64, DbError> {
        Ok(self.conn.conn()?.last_insert_rowid())
    }

    /// Commits, passes the write lock on, and returns once the commit is on
    /// stable storage (see the module's note on group commit).
    ///
    /// The `COMMIT` runs on the calling thread: it only appends the
    /// transaction's pages to the WAL (no flush, no checkpoint, no lock to
    /// wait for, since the transaction holds the write lock), which takes
    /// less than a hand-off to the blocking pool and back, and the writers'
    /// turn is held meanwhile.
    pub(crate) async fn commit(mut self) -> Result<(), DbError> {
        let out = exec_cached(self.conn.conn()?, "COMMIT").map_err(map_err);
        // On failure `drop` rolls back whatever is still open.
        self.open = out.is_err();
        out?;
        // A snapshot the request began while this transaction was open (a
        // read through the pool meanwhile) predates the commit; the
        // request's next reads must see what it committed.
        end_read_snapshot();
        let done = self.pool.committed();
        // The connection home before the turn passes on, for the next writer.
        self.conn.release();
        self.turn = None;
        SqlitePool(self.pool.clone()).checkpoint_if_due(done);
        self.pool.make_durable(done).await
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open
            && let Some(c) = self.conn.conn.as_ref()
            && !c.is_autocommit()
        {
            // A rollback in WAL mode discards pages in memory: nothing to wait for.
            if let Err(e) = c.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "SQLite rollback failed; the connection is closed");
            }
        }
    }
}

/// Prepares (from the connection's cache), binds and runs one statement,
/// copying out at most `limit` rows; also returns how many rows it changed.
fn run_on(
    conn: &Connection,
    sql: &str,
    args: &[Val],
    limit: Option<usize>,
) -> Result<(Vec<SqliteRow>, u64), DbError> {
    let mut st = conn.prepare_cached(sql).map_err(map_err)?;
    run_prepared(conn, &mut st, sql, args, limit)
}

/// [`run_on`] for a statement already prepared on `conn`.
fn run_prepared(
    conn: &Connection,
    st: &mut rusqlite::Statement<'_>,
    sql: &str,
    args: &[Val],
    limit: Option<usize>,
) -> Result<(Vec<SqliteRow>, u64), DbError> {
    for (i, a) in args.iter().enumerate() {
        let r = match a {
            Val::I64(v) => st.raw_bind_parameter(i + 1, v),
            Val::OptI64(v) => st.raw_bind_parameter(i + 1, v),
            Val::Str(v) => st.raw_bind_parameter(i + 1, v.as_str()),
            Val::OptStr(v) => st.raw_bind_parameter(i + 1, v.as_deref()),
            Val::OptBytes(v) => st.raw_bind_parameter(i + 1, v.as_deref()),
        };
        r.map_err(map_err)?;
    }
    let columns = st.column_count();
    // A statement that writes runs to its end whatever it returns; a read
    // stops at the rows asked for.
    let to_the_end = !st.readonly();
    let mut out = Vec::new();
    let mut rows = st.raw_query();
    while let Some(row) = rows.next().map_err(map_err)? {
        if limit.is_some_and(|n| out.len() >= n) {
            if to_the_end {
                continue;
            }
            break;
        }
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            let v = row.get_ref(i).map_err(map_err)?;
            values.push(Value::try_from(v).map_err(|e| DbError::Other(e.to_string()))?);
        }
        out.push(SqliteRow(values));
    }
    drop(rows);
    // A statement that steps through a whole table costs more with every
    // file on the server; in one that runs per request it is a defect, so
    // say so where an operator (or a test) turning on debug logs can see it.
    if let Some(rows) = full_scan(st) {
        tracing::debug!(rows, sql, "a statement scanned a table");
    }
    Ok((out, conn.changes()))
}

/// Rows stepped through in full scans from which a statement is logged (see
/// `run_prepared`); small tables (settings, groups) stay below it.
const FULL_SCAN_NOTICE: i32 = 1000;

/// The rows `st` stepped through in full table scans since the last call,
/// when they reach [`FULL_SCAN_NOTICE`]. Cached statements keep counting
/// across runs, so this resets the count.
fn full_scan(st: &rusqlite::Statement<'_>) -> Option<i32> {
    let rows = st.reset_status(rusqlite::StatementStatus::FullscanStep);
    (rows >= FULL_SCAN_NOTICE).then_some(rows)
}

fn open_connection(path: &std::path::Path, flags: OpenFlags) -> Result<Connection, DbError> {
    let conn = Connection::open_with_flags(path, flags).map_err(|e| match e {
        rusqlite::Error::SqliteFailure(..) => {
            DbError::Unavailable(format!("cannot open {}: {e}", path.display()))
        }
        e => map_err(e),
    })?;
    conn.busy_timeout(WRITE_WAIT).map_err(map_err)?;
    // NORMAL: commits are flushed by the pool, in groups (`make_durable`).
    let read_only = flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY);
    let journal = match read_only {
        true => "",
        // Checkpoints run in the background (`checkpoint_if_due`).
        false => "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;",
    };
    conn.execute_batch(&format!(
        "{journal} PRAGMA journal_size_limit = {WAL_RESET_SIZE}; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
    ))
    .map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Creates a database file that is not there yet readable by the server's
/// account only: SQLite would create it with the umask's mode (0644 under the
/// usual 022), and gives its `-wal` and `-shm` files the database file's
/// mode. An existing file keeps its mode; any other failure is left for
/// SQLite to report when it opens the file.
fn create_private(path: &std::path::Path) {
    let name = path.as_os_str().as_encoded_bytes();
    if name == b":memory:" || name.starts_with(b"file:") {
        return;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    if let Err(e) = options.open(path)
        && e.kind() == std::io::ErrorKind::NotFound
    {
        // SQLite takes `..` by the text (`a/missing/../db` is `a/db`), the
        // system only through folders that exist.
        let _ = options.open(lexically_normal(path));
    }
}

/// `path` with `.` left out and each `..` taking away the name before it.
fn lexically_normal(path: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn parse_url(url: &str) -> Result<(PathBuf, OpenFlags), DbError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| DbError::Other("not a sqlite: URL".into()))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(DbError::Other("the sqlite: URL names no file".into()));
    }
    let base = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let mut flags = base | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
    for param in query.split('&').filter(|p| !p.is_empty()) {
        flags = match param {
            "mode=rwc" => base | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            "mode=rw" => base | OpenFlags::SQLITE_OPEN_READ_WRITE,
            "mode=ro" => base | OpenFlags::SQLITE_OPEN_READ_ONLY,
            other => {
                return Err(DbError::Other(format!(
                    "unsupported sqlite: URL parameter {other:?} (only mode=rwc, rw or ro)"
                )));
            }
        };
    }
    Ok((PathBuf::from(path), flags))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Classifies a SQLite error the way [`DbError`] does for the other backends.
fn map_err(e: rusqlite::Error) -> DbError {
    use rusqlite::ErrorCode as C;
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        // 2067 / 1555: SQLITE_CONSTRAINT_UNIQUE / SQLITE_CONSTRAINT_PRIMARYKEY.
        if f.extended_code == 2067 || f.extended_code == 1555 {
            return DbError::Conflict;
        }
        return match f.code {
            C::DatabaseBusy | C::DatabaseLocked => DbError::Retry,
            C::DiskFull => DbError::Full(e.to_string()),
            C::CannotOpen | C::SystemIoFailure | C::NotADatabase => {
                DbError::Unavailable(e.to_string())
            }
            _ => DbError::Other(e.to_string()),
        };
    }
    DbError::Other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_file_and_a_mode() {
        let (p, f) = parse_url("sqlite:///var/db/x.db").unwrap();
        assert_eq!(p, PathBuf::from("/var/db/x.db"));
        assert!(f.contains(OpenFlags::SQLITE_OPEN_CREATE));
        let (p, f) = parse_url("sqlite:rel.db?mode=ro").unwrap();
        assert_eq!(p, PathBuf::from("rel.db"));
        assert!(f.contains(OpenFlags::SQLITE_OPEN_READ_ONLY));
        assert!(parse_url("sqlite://").is_err());
        assert!(parse_url("sqlite:x.db?cache=shared").is_err());
    }

    pub(super) fn temp_url(name: &str) -> (PathBuf, String) {
        let dir = std::env::temp_dir().join(format!("sr-sqlite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("t.db").display());
        (dir, url)
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_database_and_its_wal_are_readable_by_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, url) = temp_url("private");
        let pool = SqlitePool::open(&url, 2).await.unwrap();
        pool.exec_batch("CREATE TABLE t (v TEXT)".into()).await.unwrap();
        pool.run("INSERT INTO t VALUES ('x')", &[], None).await.unwrap();
        for name in ["t.db", "t.db-wal", "t.db-shm"] {
            let mode = std::fs::metadata(dir.join(name)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
        }
        pool.close().await;
        // Through a folder that does not exist, as SQLite reads `..`.
        let through = format!("sqlite://{}", dir.join("missing/../u.db").display());
        let other = SqlitePool::open(&through, 1).await.unwrap();
        other.close().await;
        let mode = std::fs::metadata(dir.join("u.db")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        // An existing file keeps the mode its owner gave it.
        let shared = std::fs::Permissions::from_mode(0o640);
        std::fs::set_permissions(dir.join("t.db"), shared).unwrap();
        let pool = SqlitePool::open(&url, 2).await.unwrap();
        let mode = std::fs::metadata(dir.join("t.db")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_dropped_transaction_rolls_back_and_the_next_writer_gets_in() {
        let (dir, url) = temp_url("rollback");
        let pool = SqlitePool::open(&url, 4).await.unwrap();
        pool.exec_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)".into())
            .await
            .unwrap();
        let mut tx = pool.begin().await.unwrap();
        tx.run("INSERT INTO t (v) VALUES (?)", &[Val::from("a")], None).unwrap();
        drop(tx);
        let (rows, _) = pool.run("SELECT count(*) FROM t", &[], None).await.unwrap();
        assert_eq!(rows[0].opt_i64(0).unwrap(), Some(0));

        let mut tx = pool.begin().await.unwrap();
        tx.run("INSERT INTO t (v) VALUES (?)", &[Val::from("b")], None).unwrap();
        assert!(matches!(
            tx.run("INSERT INTO t (v) VALUES (?)", &[Val::from("b")], None),
            Err(DbError::Conflict)
        ));
        tx.commit().await.unwrap();
        let (_, changed) = pool
            .run("UPDATE t SET v = ? WHERE v = ?", &["c".into(), "b".into()], None)
            .await
            .unwrap();
        assert_eq!(changed, 1);
        let (rows, _) = pool.run("SELECT v, NULL FROM t", &[], None).await.unwrap();
        assert_eq!(rows[0].opt_str(0).unwrap().as_deref(), Some("c"));
        assert_eq!(rows[0].opt_str(1).unwrap(), None);
        assert!(rows[0].opt_i64(0).is_err());
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_are_all_flushed_before_they_return() {
        let (dir, url) = temp_url("group");
        let pool = SqlitePool::open(&url, 8).await.unwrap();
        pool.exec_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)".into()).await.unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut tx = pool.begin().await.unwrap();
                    tx.run("INSERT INTO t (v) VALUES (?)", &[Val::I64(i)], None).unwrap();
                    tx.commit().await.unwrap();
                    // Returned: so the flush that covers this commit has finished.
                    let on_disk = pool.0.flushes.durable();
                    let counted = pool.0.flushes.committed();
                    assert!(on_disk >= 1 && on_disk <= counted);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let (rows, _) = pool.run("SELECT count(*), sum(v) FROM t", &[], None).await.unwrap();
        assert_eq!(rows[0].opt_i64(0).unwrap(), Some(64));
        assert_eq!(rows[0].opt_i64(1).unwrap(), Some((0..64).sum()));
        let counted = pool.0.flushes.committed();
        assert_eq!(pool.0.flushes.durable(), counted, "every commit is on disk");
        // A new connection (another process) sees them all.
        let (path, flags) = parse_url(&url).unwrap();
        let other = open_connection(&path, flags).unwrap();
        let n: i64 = other.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 64);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Makes `commits` commits of `pages` rows of 4 KiB each into `t`, then
    /// waits for a checkpoint still running.
    async fn write_pages(pool: &SqlitePool, commits: usize, pages: usize) {
        let page = bytes::Bytes::from(vec![7u8; 4096]);
        for _ in 0..commits {
            let mut tx = pool.begin().await.unwrap();
            for _ in 0..pages {
                tx.run("INSERT INTO t (v) VALUES (?)", &[Val::OptBytes(Some(page.clone()))], None)
                    .unwrap();
            }
            tx.commit().await.unwrap();
            // Time for a background checkpoint to catch up now and then, as
            // the gaps between a server's requests give it.
            tokio::task::yield_now().await;
        }
        while pool.0.checkpointing.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_checkpointed_in_the_background_and_stays_small() {
        let (dir, url) = temp_url("checkpoint");
        let pool = SqlitePool::open(&url, 4).await.unwrap();
        pool.exec_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)".into()).await.unwrap();
        // Readers that overlap all the time, as a busy server's requests do:
        // each holds a snapshot while the next one starts.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (path, flags) = parse_url(&url).unwrap();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (stop, conn) = (stop.clone(), open_connection(&path, flags).unwrap());
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let _: i64 =
                            conn.query_row("SELECT count(v) FROM t", [], |r| r.get(0)).unwrap();
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        // About four times WAL_RESET_SIZE in all (a commit writes two pages).
        let commits = 16 * CHECKPOINT_EVERY as usize;
        write_pages(&pool, commits, 1).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in readers {
            assert!(r.join().unwrap() > 0, "the readers ran alongside the writers");
        }
        // Without checkpoints the WAL would hold every commit; with them it
        // is reused from its start once it has all been copied.
        let wal = std::fs::metadata(wal_path(&path)).unwrap().len();
        let all = (commits * 2 * 4096) as u64;
        assert!(wal <= WAL_RESET_SIZE * 2 && wal < all / 2, "WAL of {wal} bytes");
        let (rows, _) = pool.run("SELECT count(*) FROM t", &[], None).await.unwrap();
        assert_eq!(rows[0].opt_i64(0).unwrap(), Some(commits as i64));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_commits_start_a_checkpoint_before_their_count_would() {
        let (dir, url) = temp_url("large-commits");
        let pool = SqlitePool::open(&url, 4).await.unwrap();
        pool.exec_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)".into()).await.unwrap();
        // 128 commits of 1 MiB each: half the commits of one CHECKPOINT_EVERY,
        // 16 times WAL_RESET_SIZE.
        let commits = CHECKPOINT_EVERY as usize / 2;
        write_pages(&pool, commits, 256).await;
        let (path, _) = parse_url(&url).unwrap();
        let wal = std::fs::metadata(wal_path(&path)).unwrap().len();
        let all = (commits * 256 * 4096) as u64;
        assert!(wal <= 4 * WAL_RESET_SIZE && wal < all / 4, "WAL of {wal} bytes");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_full_table_scan_is_noticed_and_an_indexed_lookup_is_not() {
        let (dir, url) = temp_url("scan");
        let pool = SqlitePool::open(&url, 2).await.unwrap();
        pool.exec_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER); \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) \
             INSERT INTO t (v) SELECT x FROM c;"
                .into(),
        )
        .await
        .unwrap();
        let c = pool.acquire().await.unwrap();
        let conn = c.conn().unwrap();
        // Steps `sql` to its end and returns what `full_scan` then reports.
        let noticed = |sql: &str| {
            let mut st = conn.prepare_cached(sql).unwrap();
            st.raw_bind_parameter(1, 7).unwrap();
            let mut rows = st.raw_query();
            while rows.next().unwrap().is_some() {}
            drop(rows);
            (full_scan(&st), full_scan(&st))
        };
        assert!(matches!(noticed("SELECT id FROM t WHERE v = ?"), (Some(n), None) if n >= 1999));
        assert_eq!(noticed("SELECT v FROM t WHERE id = ?"), (None, None));
        // run_prepared takes (and logs) the count itself.
        let mut st = conn.prepare_cached("SELECT id FROM t WHERE v = ?").unwrap();
        let (rows, _) = run_prepared(conn, &mut st, "", &[Val::I64(7)], None).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(full_scan(&st), None);
        drop(st);
        drop(c);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_writer_waiting_for_its_turn_holds_no_connection() {
        let (dir, url) = temp_url("order");
        let pool = SqlitePool::open(&url, 1).await.unwrap();
        pool.exec_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)".into()).await.unwrap();
        // Someone has the writers' turn and is about to take a connection (as
        // `begin` does) while another statement that writes waits for the turn.
        let turn = pool.writer_turn().await.unwrap();
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run("INSERT INTO t DEFAULT VALUES", &[], None).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let conn = tokio::time::timeout(Duration::from_secs(1), pool.acquire())
            .await
            .expect("the waiting writer must not hold the only connection")
            .unwrap();
        drop(conn);
        drop(turn);
        assert_eq!(waiting.await.unwrap().unwrap().1, 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn write_transactions_run_on_one_connection_whatever_the_readers_took() {
        let (dir, url) = temp_url("writer-conn");
        let pool = SqlitePool::open(&url, 4).await.unwrap();
        pool.exec_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)".into()).await.unwrap();
        // A temporary table lives on the connection that made it: it marks it.
        let mut tx = pool.begin().await.unwrap();
        tx.run("CREATE TEMP TABLE mark (x)", &[], None).unwrap();
        tx.run("INSERT INTO t DEFAULT VALUES", &[], None).unwrap();
        tx.commit().await.unwrap();
        // Readers take whatever is idle (the last connection given back first).
        let readers = [pool.acquire().await.unwrap(), pool.acquire().await.unwrap()];
        for r in &readers {
            let marked = r.conn().unwrap().prepare("SELECT 1 FROM temp.mark").is_ok();
            assert!(!marked, "a reader got the writers' connection");
        }
        for _ in 0..3 {
            let mut tx = pool.begin().await.unwrap();
            tx.run("SELECT count(*) FROM temp.mark", &[], None).expect("the marked connection");
            tx.run("INSERT INTO t DEFAULT VALUES", &[], None).unwrap();
            tx.commit().await.unwrap();
            pool.run("INSERT INTO t DEFAULT VALUES", &[], None).await.unwrap();
        }
        drop(readers);
        let (rows, _) = pool.run("SELECT count(*) FROM t", &[], None).await.unwrap();
        assert_eq!(rows[0].opt_i64(0).unwrap(), Some(7));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_writer_waits_for_another_process_holding_the_lock() {
        let (dir, url) = temp_url("busy");
        let pool = SqlitePool::open(&url, 4).await.unwrap();
        pool.exec_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)".into()).await.unwrap();
        // A second, independent connection stands for another process.
        let (path, flags) = parse_url(&url).unwrap();
        let other = open_connection(&path, flags).unwrap();
        other.execute_batch("BEGIN IMMEDIATE; INSERT INTO t DEFAULT VALUES;").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        let mut tx = pool.begin().await.unwrap();
        tx.run("INSERT INTO t DEFAULT VALUES", &[], None).unwrap();
        tx.commit().await.unwrap();
        release.join().unwrap();
        let (rows, _) = pool.run("SELECT count(*) FROM t", &[], None).await.unwrap();
        assert_eq!(rows[0].opt_i64(0).unwrap(), Some(2));
        let _ = std::fs::remove_dir_all(dir);
    }
}
