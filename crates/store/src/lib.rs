//! Persistence for Strongroom: the SQL database (SQLite, PostgreSQL, MySQL/MariaDB)
//! and the blob store for file content.
//!
//! Nothing in this crate knows about users, files or HTTP; it offers a small,
//! dialect-neutral way to run SQL ([`Db`], [`Tx`]) and an immutable blob store
//! ([`BlobStore`]). The domain crates above write their own queries on top.

mod blobs;
pub mod crypt;
mod db;
mod migrations;
mod sqlite;

pub use blobs::{BlobError, BlobKey, BlobStore, BlobWriter, ByteStream, INLINE_LIMIT, StoredBlob};
pub use db::{ChangeMark, Conn, Db, DbError, Dialect, Row, Tx, Val, placeholders};
pub use sqlite::{end_read_snapshot, with_read_snapshot};
