//! The domain of Strongroom: accounts and groups, the file tree with its single
//! authorization check, WebDAV locks, and the errors these produce.
//!
//! Handlers in the protocol crates call these services; they never touch SQL or
//! blob storage directly, and they never decide on their own who may do what.

/// SQL text put together from constant pieces (`format!` over `const`
/// column lists), built on first use and kept: hot statements would
/// otherwise be formatted anew, with a dozen allocations, on every request.
/// Only constants can appear in it; a local variable does not compile.
macro_rules! const_sql {
    ($($fmt:tt)*) => {{
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!($($fmt)*));
        SQL.as_str()
    }};
}

pub mod access;
pub mod accounts;
pub mod audit;
pub mod bruteforce;
pub mod check_turn;
pub mod checksum;
pub mod error;
pub mod files;
pub mod locks;
pub mod loginflow;
pub mod net;
pub mod password;
pub mod path;
pub mod secret;
pub mod sharing;
pub mod tokens;
pub mod twofactor;
pub mod users;
mod util;

pub use access::{Grant, Op, Principal};
pub use error::{Error, Result};
pub use files::{Files, Node, NodeKind};
pub use path::TreePath;
pub use users::{User, Users};
pub use util::{MAX_TIME, civil_from_days, new_etag, now_secs, utc_to_the_second};
