//! Favourites (`oc:favorite`): each user's own marks on files and folders,
//! their own or shared with them. A mark is the user's, not the file's: a
//! recipient who marks a shared file changes nothing for its owner, and
//! needs no more than to see the file.

use std::collections::HashSet;

use strongroom_store::{DbError, Val, placeholders};

use super::{Ctx, Files, Node, find};
use crate::{
    access::Op,
    error::{Error, Result},
    path::TreePath,
};

impl Files {
    /// Marks `path` as a favourite of the caller, or unmarks it.
    pub async fn set_favorite(&self, cx: &Ctx<'_>, path: &TreePath, on: bool) -> Result<()> {
        cx.allow(Op::Stat)?;
        let user = cx.who.user_id;
        if user <= 0 {
            return Err(Error::Forbidden("only an account has favourites".into()));
        }
        let mut db = self.db.clone();
        let node = find(&mut db, cx.owner, path).await?.ok_or(Error::NotFound)?;
        let args = [Val::I64(user), Val::I64(node.id)];
        if !on {
            self.db.exec("DELETE FROM favorites WHERE user_id = ? AND node_id = ?", &args).await?;
            return Ok(());
        }
        match self.db.exec("INSERT INTO favorites (user_id, node_id) VALUES (?, ?)", &args).await {
            // Marked already (or by a request that ran alongside): marked.
            Ok(_) | Err(DbError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Which of `nodes` the caller has marked.
    pub async fn favorite_ids(&self, cx: &Ctx<'_>, nodes: &[&Node]) -> Result<HashSet<i64>> {
        cx.allow(Op::Stat)?;
        let mut out = HashSet::new();
        if cx.who.user_id <= 0 {
            return Ok(out);
        }
        let ids: Vec<i64> = nodes.iter().map(|n| n.id).collect();
        for part in ids.chunks(500) {
            let sql = format!(
                "SELECT node_id FROM favorites WHERE user_id = ? AND node_id IN ({})",
                placeholders(part.len())
            );
            let mut args = vec![Val::I64(cx.who.user_id)];
            args.extend(part.iter().map(|i| Val::I64(*i)));
            for r in self.db.rows(&sql, &args).await? {
                out.insert(r.i64(0)?);
            }
        }
        Ok(out)
    }

    /// The caller's favourites in their own tree at or below `under`, with
    /// their paths, for `REPORT oc:filter-files` (the clients' favourites
    /// view); favourites in the trash are left out.
    pub async fn favorites(&self, cx: &Ctx<'_>, under: &TreePath) -> Result<Vec<(TreePath, Node)>> {
        cx.allow(Op::Stat)?;
        let rows = self
            .db
            .rows(
                "SELECT f.node_id FROM favorites f JOIN nodes n ON n.id = f.node_id \
                 WHERE f.user_id = ? AND n.owner_id = ? ORDER BY f.node_id",
                &[cx.who.user_id.into(), cx.owner.id.into()],
            )
            .await?;
        let mut db = self.db.clone();
        let mut out = Vec::new();
        for r in rows {
            if let Some((node, path)) = super::live_node(&mut db, cx.owner, r.i64(0)?).await?
                && path.starts_with(under)
            {
                out.push((path, node));
            }
        }
        Ok(out)
    }
}
