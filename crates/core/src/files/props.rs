//! WebDAV dead properties: arbitrary XML values clients store on nodes.

use std::collections::HashMap;

use strongroom_store::{Val, placeholders};

use super::{
    Ctx, Files, Node, find, resolve,
    tree::{chain_ids, propagate},
};
use crate::{
    access::Op,
    error::{Error, Result},
    locks::Guard,
    path::TreePath,
    util::new_etag,
};

/// A stored property: namespace, local name and its value as self-contained XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadProp {
    pub ns: String,
    pub name: String,
    pub value: String,
}

/// One instruction of a PROPPATCH.
#[derive(Debug, Clone)]
pub enum PropChange {
    Set(DeadProp),
    Remove { ns: String, name: String },
}

/// Longest namespace or local name stored.
const MAX_NAME: usize = 255;
/// Largest value stored, in bytes.
const MAX_VALUE: usize = 64 * 1024;

impl Files {
    /// The dead properties of the given nodes, by node id.
    pub async fn dead_props(
        &self,
        cx: &Ctx<'_>,
        nodes: &[&Node],
    ) -> Result<HashMap<i64, Vec<DeadProp>>> {
        cx.allow(Op::Stat)?;
        let mut out: HashMap<i64, Vec<DeadProp>> = HashMap::new();
        let ids: Vec<i64> =
            nodes.iter().filter(|n| n.owner_id == cx.owner.id).map(|n| n.id).collect();
        for part in ids.chunks(500) {
            let sql = format!(
                "SELECT node_id, ns, name, value FROM props WHERE node_id IN ({}) ORDER BY ns, name",
                placeholders(part.len())
            );
            let args: Vec<Val> = part.iter().map(|i| Val::I64(*i)).collect();
            for r in self.db.rows(&sql, &args).await? {
                let prop = DeadProp { ns: r.str(1)?, name: r.str(2)?, value: r.str(3)? };
                out.entry(r.i64(0)?).or_default().push(prop);
            }
        }
        Ok(out)
    }

    /// Applies all changes in order, or none of them.
    pub async fn patch_props(
        &self,
        cx: &Ctx<'_>,
        path: &TreePath,
        changes: &[PropChange],
    ) -> Result<()> {
        cx.allow(Op::Write)?;
        for c in changes {
            let (ns, name) = match c {
                PropChange::Set(p) => {
                    if p.value.len() > MAX_VALUE {
                        return Err(Error::BadRequest("property value too large".into()));
                    }
                    (&p.ns, &p.name)
                }
                PropChange::Remove { ns, name } => (ns, name),
            };
            if ns.len() > MAX_NAME || name.len() > MAX_NAME {
                return Err(Error::BadRequest("property name too long".into()));
            }
        }
        self.retry(|| async {
            let mut tx = self.begin_for(cx.owner.id).await?;
            let node = find(&mut tx, cx.owner, path).await?.ok_or(Error::NotFound)?;
            self.locks.check(&mut tx, cx, path, Guard::Write).await?;
            for c in changes {
                let (ns, name) = match c {
                    PropChange::Set(p) => (&p.ns, &p.name),
                    PropChange::Remove { ns, name } => (ns, name),
                };
                tx.exec(
                    "DELETE FROM props WHERE node_id = ? AND ns = ? AND name = ?",
                    &[node.id.into(), ns.as_str().into(), name.as_str().into()],
                )
                .await?;
                if let PropChange::Set(p) = c {
                    tx.exec(
                        "INSERT INTO props (node_id, ns, name, value) VALUES (?, ?, ?, ?)",
                        &[
                            node.id.into(),
                            p.ns.as_str().into(),
                            p.name.as_str().into(),
                            p.value.as_str().into(),
                        ],
                    )
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Computes a checksum of a file's content, stores it beside the others and
    /// returns it (`TYPE:hex`). Clients ask for this after changing only the
    /// modification time, to make sure the server holds a checksum.
    pub async fn recalculate_checksum(
        &self,
        cx: &Ctx<'_>,
        path: &TreePath,
        algo: crate::checksum::Algo,
    ) -> Result<String> {
        use futures_util::StreamExt;
        cx.allow(Op::Read)?;
        let node = self.stat(cx, path).await?.ok_or(Error::NotFound)?;
        if node.is_folder() {
            return Err(Error::BadRequest("folders have no checksum".into()));
        }
        let mut hasher = crate::checksum::Hasher::new(Some(algo));
        let mut stream = std::pin::pin!(self.read(cx, &node, 0..node.size.max(0) as u64).await?);
        while let Some(part) = stream.next().await {
            hasher.update(&part.map_err(|e| Error::Internal(format!("reading content: {e}")))?);
        }
        let all = hasher.finish(None)?;
        let wanted = all.split(' ').find(|c| c.starts_with(algo.name())).unwrap_or(&all).to_owned();
        self.retry(|| async {
            let mut tx = self.begin_for(cx.owner.id).await?;
            // Only if the content is still the one hashed.
            tx.exec(
                "UPDATE nodes SET checksum = ? WHERE id = ? AND etag = ?",
                &[all.as_str().into(), node.id.into(), node.etag.as_str().into()],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        Ok(wanted)
    }

    /// Sets the modification time of a node (PROPPATCH of `lastmodified`). The
    /// node and its ancestors get new ETags, so sync clients notice.
    pub async fn set_mtime(&self, cx: &Ctx<'_>, path: &TreePath, mtime: i64) -> Result<()> {
        cx.allow(Op::Write)?;
        if !(0..=crate::util::MAX_TIME).contains(&mtime) {
            return Err(Error::BadRequest("the modification time is out of range".into()));
        }
        self.retry(|| async {
            let mut tx = self.begin_for(cx.owner.id).await?;
            let mut chain = resolve(&mut tx, cx.owner, path).await?.ok_or(Error::NotFound)?;
            let node = chain.pop().expect("chain");
            self.locks.check(&mut tx, cx, path, Guard::Write).await?;
            tx.exec(
                "UPDATE nodes SET mtime = ?, etag = ? WHERE id = ?",
                &[mtime.into(), new_etag().into(), node.id.into()],
            )
            .await?;
            propagate(&mut tx, &chain_ids(&chain), 0).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}
