//! One read transaction for all the reads of a request (SQLite only).
//!
//! Outside a transaction every statement is a read transaction of its own,
//! and SQLite takes and drops a lock on the WAL's index for each: two
//! `fcntl` calls and the transaction's set-up per statement. A small GET
//! runs four statements (the app password, the received shares, the path,
//! the content), and those calls were about a tenth of its CPU. Inside
//! [`with_read_snapshot`] the first read begins a transaction on a
//! connection that the request then keeps, and its later reads run in it:
//! one set-up, one lock, and one consistent view of the database.
//!
//! The kept connection is a connection the pool lacks meanwhile, so a scope
//! must not wait for anything that itself needs a connection. Hence:
//! - a write ends the snapshot first ([`end_read_snapshot`] from `run`,
//!   `begin` and `exec_batch`): the write waits for its connection holding
//!   none, and the request's later reads see what it wrote; a transaction's
//!   commit ends it again, in case the request read through the pool while
//!   the transaction was open;
//! - a request that awaits another task that uses the database (a spawned
//!   write, a password check) ends its snapshot before, by calling
//!   [`end_read_snapshot`];
//! - waiting for the client's request body ends it: the server wraps the
//!   body of a request in a scope so that each poll of it ends the
//!   snapshot first (`ReleasingBody` in the server's `http/requests.rs`),
//!   so no client, logged in or not, can hold a connection by announcing a
//!   body and sending it slowly or never. The server runs GET, HEAD and
//!   PROPFIND under `/remote.php/` in a scope.
//!
//! PostgreSQL and MySQL ignore the scope: there a transaction's `BEGIN` and
//! `COMMIT` are round trips that cost more than they save.

use std::{cell::RefCell, future::Future, sync::Arc};

use super::{Pooled, SqlitePool, SqliteRow, exec_cached, map_err, run_prepared};
use crate::db::{DbError, Val};

tokio::task_local! {
    static SNAPSHOT: RefCell<Option<Held>>;
}

/// A pooled connection inside the read transaction of the current scope.
struct Held(Pooled);

impl Drop for Held {
    /// Ends the read transaction, which releases its lock at once (nothing
    /// to write), so the connection goes back to the pool ready for anyone.
    fn drop(&mut self) {
        if let Some(c) = self.0.conn.as_ref()
            && !c.is_autocommit()
            && let Err(e) = exec_cached(c, "COMMIT")
        {
            // `Pooled` closes a connection left in a transaction.
            tracing::warn!(error = %e, "ending a read transaction failed; the connection is closed");
        }
    }
}

/// Runs `f` with its SQLite reads in one read transaction (see the module).
pub async fn with_read_snapshot<F: Future>(f: F) -> F::Output {
    SNAPSHOT.scope(RefCell::new(None), f).await
}

/// Ends the current scope's read transaction and gives its connection back
/// to the pool; later reads in the scope begin a new one. Does nothing
/// outside a scope or before its first read.
pub fn end_read_snapshot() {
    let held = SNAPSHOT.try_with(|s| s.try_borrow_mut().ok().and_then(|mut h| h.take()));
    drop(held);
}

/// Whether the current task runs in a scope that holds no connection yet.
pub(super) fn scope_is_free() -> bool {
    SNAPSHOT.try_with(|s| s.try_borrow().is_ok_and(|h| h.is_none())).unwrap_or(false)
}

/// Begins the scope's read transaction on `conn`. Deferred: its snapshot
/// is taken by its first read.
pub(super) fn begin_read(conn: &rusqlite::Connection) -> Result<(), DbError> {
    exec_cached(conn, "BEGIN").map_err(map_err)
}

/// Keeps `c`, inside the transaction [`begin_read`] began, for the scope's
/// next reads. Should the scope be gone or busy, `c` is dropped, which ends
/// the transaction.
pub(super) fn keep(c: Pooled) {
    let held = Held(c);
    let _ = SNAPSHOT.try_with(|s| s.try_borrow_mut().map(|mut h| *h = Some(held)));
}

/// What [`SqlitePool::read_in_snapshot`] did with a statement.
pub(super) enum InSnapshot {
    /// It read, in the scope's transaction.
    Ran(Result<(Vec<SqliteRow>, u64), DbError>),
    /// The scope holds a connection of this pool, but the statement writes:
    /// the snapshot must end before the write takes a connection.
    Writes,
    /// No scope, or one that holds no connection of this pool.
    NotHeld,
}

impl SqlitePool {
    /// Runs a statement in the scope's read transaction when the scope holds
    /// one on this pool and the statement only reads.
    pub(super) fn read_in_snapshot(
        &self,
        sql: &str,
        args: &[Val],
        limit: Option<usize>,
    ) -> InSnapshot {
        let ran = SNAPSHOT.try_with(|s| {
            let Ok(held) = s.try_borrow() else { return InSnapshot::NotHeld };
            let Some(Held(c)) = held.as_ref().filter(|h| Arc::ptr_eq(&h.0.shared, &self.0)) else {
                return InSnapshot::NotHeld;
            };
            let conn = match c.conn() {
                Ok(conn) => conn,
                Err(e) => return InSnapshot::Ran(Err(e)),
            };
            match conn.prepare_cached(sql) {
                Ok(mut st) if st.readonly() => {
                    InSnapshot::Ran(run_prepared(conn, &mut st, sql, args, limit))
                }
                Ok(_) => InSnapshot::Writes,
                Err(e) => InSnapshot::Ran(Err(map_err(e))),
            }
        });
        ran.unwrap_or(InSnapshot::NotHeld)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::tests::temp_url;

    async fn count(pool: &SqlitePool) -> i64 {
        let (rows, _) = pool.run("SELECT count(*) FROM t", &[], None).await.unwrap();
        rows[0].opt_i64(0).unwrap().unwrap()
    }

    async fn insert(pool: &SqlitePool, v: &str) {
        pool.run("INSERT INTO t (v) VALUES (?)", &[Val::from(v)], None).await.unwrap();
    }

    /// A pool of `connections` on a new database with an empty table `t`.
    async fn pool_with_table(name: &str, connections: u32) -> (std::path::PathBuf, SqlitePool) {
        let (dir, url) = temp_url(name);
        let pool = SqlitePool::open(&url, connections).await.unwrap();
        pool.exec_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)".into()).await.unwrap();
        (dir, pool)
    }

    #[tokio::test]
    async fn a_scope_reads_one_snapshot_until_it_writes() {
        let (dir, pool) = pool_with_table("snapshot", 2).await;
        insert(&pool, "a").await;
        let (other, scoped) = (pool.clone(), pool.clone());
        with_read_snapshot(async move {
            assert_eq!(count(&scoped).await, 1);
            // The scope keeps one of the two connections...
            assert_eq!(scoped.0.permits.available_permits(), 1);
            // ...and another task's commit does not change what it reads.
            tokio::spawn(async move { insert(&other, "b").await }).await.unwrap();
            assert_eq!(count(&scoped).await, 1);
            // Its own write ends the snapshot, so it sees the write and the other.
            insert(&scoped, "c").await;
            assert_eq!(scoped.0.permits.available_permits(), 2);
            assert_eq!(count(&scoped).await, 3);
            end_read_snapshot();
            assert_eq!(scoped.0.permits.available_permits(), 2);
            // A write transaction ends it too, and waits for no connection
            // the scope holds: with one connection left it would time out.
            assert_eq!(count(&scoped).await, 3);
            let mut tx = scoped.begin().await.unwrap();
            tx.run("INSERT INTO t (v) VALUES (?)", &[Val::from("d")], None).unwrap();
            // A read through the pool while the transaction is open begins
            // a snapshot without its row; the commit ends that snapshot.
            assert_eq!(count(&scoped).await, 3);
            tx.commit().await.unwrap();
            assert_eq!(count(&scoped).await, 4);
        })
        .await;
        // Out of the scope, the connection is back in the pool, out of its transaction.
        assert_eq!(pool.0.permits.available_permits(), 2);
        let idle = pool.0.idle.lock().unwrap();
        assert!(idle.iter().all(|c| c.is_autocommit()), "no connection left in a transaction");
        drop(idle);
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_write_in_a_scope_does_not_wait_for_the_connection_the_scope_holds() {
        let (dir, pool) = pool_with_table("snapshot-one", 1).await;
        let scoped = pool.clone();
        let done = with_read_snapshot(async move {
            assert_eq!(count(&scoped).await, 0);
            // The pool's only connection is the scope's: a write that asked
            // for another first would wait out the acquire timeout.
            insert(&scoped, "a").await;
            assert_eq!(count(&scoped).await, 1);
        });
        tokio::time::timeout(std::time::Duration::from_secs(2), done).await.expect("no wait");
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_scope_dropped_half_way_gives_its_connection_back() {
        let (dir, pool) = pool_with_table("snapshot-drop", 1).await;
        let scoped = pool.clone();
        let stuck = with_read_snapshot(async move {
            assert_eq!(count(&scoped).await, 0);
            std::future::pending::<()>().await
        });
        // A client that hangs up drops the request's future where it waits.
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(50), stuck).await;
        assert!(timed_out.is_err());
        // The only connection is free again, and a writer gets the lock.
        insert(&pool, "a").await;
        assert_eq!(count(&pool).await, 1);
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
