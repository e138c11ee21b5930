//! COPY and MOVE: within one tree, or between one's own files and a share
//! one received (or two such shares), where the content is copied into the
//! other owner's tree and, for MOVE, the source goes to its owner's trash.

use axum::response::Response;
use http::StatusCode;
use strongroom_core::{Error, Grant, TreePath, User, files::Ctx};

use crate::{
    Call,
    methods::{identity_headers, with_status},
    paths::{self, Destination},
};

/// Where a COPY or MOVE goes.
enum Target {
    /// The request's own tree (an owner path).
    Same(TreePath),
    /// Another tree: its owner, the path there, the grant it is reached by.
    Other(User, TreePath, Option<Grant>),
}

pub async fn copy_or_move(call: &Call<'_>, is_move: bool) -> Result<Response, Error> {
    let dest = call
        .header_text("destination")?
        .ok_or_else(|| Error::BadRequest("the Destination header is missing".into()))?;
    let target = match paths::destination(dest, call.header("host"), &call.tree_prefixes())? {
        Destination::Here(p) => match call.mounts.iter().find(|m| p.starts_with(&m.at)) {
            // From one's own files into a share one received.
            Some(m) => {
                Target::Other(m.owner.clone(), p.rebase(&m.at, &m.base), Some(m.grant.clone()))
            }
            None => Target::Same(call.in_tree(&p)),
        },
        Destination::OtherServer => {
            return Ok(crate::error::error_body(
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                "the Destination is on another server",
                "",
            ));
        }
        Destination::OtherTree => out_of_share(call, dest).await?.ok_or_else(|| {
            Error::Forbidden(if call.grant.is_some() {
                "the Destination is outside this share".into()
            } else {
                "the Destination is outside this user's files".into()
            })
        })?,
    };
    let overwrite = overwrite(call)?;
    let deep = match call.header("depth").map(str::trim) {
        None => true,
        Some(d) if d.eq_ignore_ascii_case("infinity") => true,
        Some("0") if !is_move => false,
        Some(_) => return Err(Error::BadRequest("invalid Depth for COPY or MOVE".into())),
    };
    let cx = call.cx();
    let placed = match target {
        Target::Same(to) => {
            if to == call.path {
                return Err(Error::Forbidden("the source and the destination are the same".into()));
            }
            if is_move {
                call.dav.files.rename(&cx, &call.path, &to, overwrite).await?
            } else {
                call.dav.files.copy(&cx, &call.path, &to, overwrite, deep).await?
            }
        }
        Target::Other(owner, to, grant) => {
            let to_cx =
                Ctx { who: call.who, owner: &owner, tokens: &call.tokens, grant: grant.as_ref() };
            if is_move {
                call.dav.files.move_across(&cx, &call.path, &to_cx, &to, overwrite).await?
            } else {
                call.dav.files.copy_across(&cx, &call.path, &to_cx, &to, overwrite, deep).await?
            }
        }
    };
    let mut r =
        with_status(if placed.created { StatusCode::CREATED } else { StatusCode::NO_CONTENT });
    identity_headers(&mut r, call.dav, &placed.node);
    Ok(r)
}

/// From inside a received share, a Destination among the caller's own
/// files or in another share it received; `None` when it is neither (or
/// the caller is a link's visitor, who has no files of its own).
async fn out_of_share(call: &Call<'_>, dest: &str) -> Result<Option<Target>, Error> {
    if call.grant.is_none() || !call.who.is_account() {
        return Ok(None);
    }
    let Some(me) = call.dav.shares.account(call.who.user_id).await? else { return Ok(None) };
    let own = TreePath::from_segments([me.uid.as_str()])?;
    let prefixes =
        [paths::href("/remote.php/dav/files", &own, false), "/remote.php/webdav".to_owned()];
    let Destination::Here(p) = paths::destination(dest, call.header("host"), &prefixes)? else {
        return Ok(None);
    };
    let at = call.dav.shares.locate(&me, &p).await?;
    Ok(Some(match at.mount {
        Some(m) if call.grant.as_ref().is_some_and(|g| g.root_id == m.grant.root_id) => {
            Target::Same(at.path)
        }
        Some(m) => Target::Other(m.owner, at.path, Some(m.grant)),
        None => Target::Other(me, p, None),
    }))
}

/// The `Overwrite` header of a COPY or MOVE (also the MOVE that assembles a
/// chunked upload): true unless it is `F`.
pub(crate) fn overwrite(call: &Call<'_>) -> Result<bool, Error> {
    match call.header("overwrite").map(str::trim) {
        None | Some("T") | Some("t") => Ok(true),
        Some("F") | Some("f") => Ok(false),
        Some(_) => Err(Error::BadRequest("Overwrite must be T or F".into())),
    }
}
