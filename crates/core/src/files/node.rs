//! A row of the file tree.

use strongroom_store::{Row, crypt::Seal};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Folder,
    File,
}

impl NodeKind {
    pub fn code(self) -> i64 {
        match self {
            NodeKind::Folder => 1,
            NodeKind::File => 2,
        }
    }

    fn from_code(c: i64) -> Result<Self> {
        match c {
            1 => Ok(NodeKind::Folder),
            2 => Ok(NodeKind::File),
            _ => Err(Error::Internal(format!("unknown node kind {c}"))),
        }
    }
}

/// A file or folder.
#[derive(Debug, Clone)]
pub struct Node {
    /// Stable for the node's whole life, across renames and moves; never reused.
    pub id: i64,
    pub owner_id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub kind: NodeKind,
    /// Bytes; for folders the total of everything below.
    pub size: i64,
    pub mtime: i64,
    pub ctime: i64,
    pub etag: String,
    pub blob_id: Option<i64>,
    pub content_type: Option<String>,
    /// Checksums of the content, `TYPE:hex` separated by spaces.
    pub checksum: Option<String>,
    pub blob_key: Option<String>,
    /// How the blob's data key is kept when the content is encrypted.
    pub blob_seal: Option<Seal>,
}

impl Node {
    /// The node of a row, whose text columns it takes (`Row::take_str`).
    pub(crate) fn from_row(mut r: Row) -> Result<Node> {
        Self::from_row_at(&mut r, 0)
    }

    /// The node whose columns start at column `at` (a row of several nodes);
    /// its text columns are taken out of the row, not copied.
    pub(crate) fn from_row_at(r: &mut Row, at: usize) -> Result<Node> {
        Ok(Node {
            id: r.i64(at)?,
            owner_id: r.i64(at + 1)?,
            parent_id: r.opt_i64(at + 2)?,
            name: r.take_str(at + 3)?,
            kind: NodeKind::from_code(r.i64(at + 4)?)?,
            size: r.i64(at + 5)?,
            mtime: r.i64(at + 6)?,
            ctime: r.i64(at + 7)?,
            etag: r.take_str(at + 8)?,
            blob_id: r.opt_i64(at + 9)?,
            content_type: r.take_opt_str(at + 10)?,
            checksum: r.take_opt_str(at + 11)?,
            blob_key: r.take_opt_str(at + 12)?,
            blob_seal: Seal::from_columns(r.take_opt_str(at + 13)?, r.take_opt_str(at + 14)?),
        })
    }

    pub fn is_folder(&self) -> bool {
        self.kind == NodeKind::Folder
    }
}
