//! The faults of the domain. One place in each protocol layer maps them to the
//! status codes and bodies its clients expect.

use strongroom_store::DbError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    /// The target already exists where it must not (MKCOL on an existing name).
    #[error("{0}")]
    AlreadyExists(String),
    /// The method does not apply to this kind of resource (PUT on a folder).
    #[error("{0}")]
    NotAllowed(String),
    /// A parent folder is missing or the operation contradicts the tree's state.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    /// A WebDAV lock protects the resource; carries the lock root path.
    #[error("the resource is locked")]
    Locked(String),
    #[error("{0}")]
    InsufficientStorage(String),
    /// The resource is busy with another operation (an upload being assembled).
    #[error("{0}")]
    Busy(String),
    /// A request body of a kind the operation does not accept.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A request body larger than the operation accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The client stopped sending the request body.
    #[error("{0}")]
    TimedOut(String),
    #[error("{0}")]
    Unavailable(String),
    /// A concurrent transaction won; the operation may simply be retried.
    #[error("transaction conflict")]
    Retry,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The status and message of a failure of the service rather than of the
    /// request (its database or storage unreachable, busy, or full), the same
    /// on every API and without the details (those are logged); `None` for
    /// every other error.
    pub fn outage(&self) -> Option<(u16, String)> {
        match self {
            Error::Unavailable(m) => {
                tracing::warn!(error = %m, "service unavailable");
                Some((503, "The service is temporarily unavailable".into()))
            }
            Error::Retry => Some((503, "The service is temporarily unavailable".into())),
            Error::InsufficientStorage(m) => Some((507, m.clone())),
            _ => None,
        }
    }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(m) => Error::Unavailable(m),
            DbError::Full(m) => {
                // As for content: the details are for the operator only.
                tracing::warn!(error = %m, "no room left in the database");
                Error::InsufficientStorage(
                    "insufficient storage: no room left in the database".into(),
                )
            }
            DbError::Retry => Error::Retry,
            DbError::Conflict => Error::Retry,
            DbError::Other(m) => Error::Internal(m),
        }
    }
}

impl From<strongroom_store::BlobError> for Error {
    fn from(e: strongroom_store::BlobError) -> Self {
        if !out_of_space(&e) {
            return Error::Internal(format!("blob storage: {e}"));
        }
        // The details (paths, sizes, the OS error) are for the operator only.
        tracing::warn!(error = %e, "no room left to store content");
        Error::InsufficientStorage("insufficient storage: no room left to store the content".into())
    }
}

/// Whether an I/O error behind `e` says the disk, the quota or the file-size
/// limit has no room left: the client may try again once there is room, so
/// 507, not a server fault.
fn out_of_space(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
    let mut cause = Some(e);
    while let Some(c) = cause {
        let kind = c.downcast_ref::<std::io::Error>().map(std::io::Error::kind);
        if matches!(kind, Some(StorageFull | FileTooLarge | QuotaExceeded)) {
            return true;
        }
        cause = c.source();
    }
    false
}
