//! What changes when a tree is reached through a share: the share's root
//! cannot be moved away, deleting it leaves the share (for a recipient), a
//! hidden download refuses GET, and a file drop answers nothing but the
//! upload of a new file (under a free name) and the folder itself, with the
//! same 404 for every other request whether or not something exists there.

use axum::{body::Body, response::Response};
use futures_util::FutureExt;
use strongroom_core::{Error, TreePath, audit::Event, sharing::Share};

use crate::{Call, methods::with_status, methods::write};

/// A refusal decided by the method and path alone, before the `If` header
/// or the body are looked at.
pub(crate) fn refuse_early(call: &Call<'_>) -> Option<Error> {
    let g = call.grant.as_ref()?;
    if !g.is_drop_only() {
        return None;
    }
    let direct_child = call.path.parent().as_ref() == Some(&call.base);
    let allowed = match call.parts.method.as_str() {
        "OPTIONS" => true,
        // Below the root only an uploader's own files, checked in `serve`.
        "PROPFIND" => call.path == call.base || direct_child,
        "PUT" => direct_child,
        _ => false,
    };
    (!allowed).then_some(Error::NotFound)
}

/// The error response, with a lock's path said relative to the share root.
pub(crate) fn error(call: &Call<'_>, e: &Error) -> Response {
    match e {
        Error::Locked(root) if call.grant.is_some() => {
            let p = TreePath::from_key(root).unwrap_or_default();
            let below = if p.starts_with(&call.base) {
                p.rebase(&call.base, &TreePath::root())
            } else {
                TreePath::root()
            };
            crate::error::response(&Error::Locked(below.to_key()), call.prefix)
        }
        e => crate::error::response(e, call.prefix),
    }
}

pub(crate) async fn serve(
    call: &Call<'_>,
    share: Option<&Share>,
    body: Body,
) -> Result<Response, Error> {
    let method = call.parts.method.as_str();
    let Some(g) = &call.grant else { return crate::dispatch(call, body).await };
    if call.path == call.base {
        match method {
            "DELETE" => return leave(call, share).boxed().await,
            "MOVE" => {
                return Err(Error::Forbidden(
                    "the root of a share cannot be moved or renamed".into(),
                ));
            }
            _ => {}
        }
    }
    if g.hide_download && method == "GET" {
        return Err(Error::Forbidden("downloading is disabled for this share".into()));
    }
    if g.is_drop_only() && method == "PUT" {
        return drop_upload(call, body).boxed().await;
    }
    if g.is_drop_only() && method == "PROPFIND" && call.path != call.base {
        return own_upload(call, body).boxed().await;
    }
    crate::dispatch(call, body).await
}

/// DELETE of a received share's root removes the share from the
/// recipient's tree only; the owner's node is untouched.
async fn leave(call: &Call<'_>, share: Option<&Share>) -> Result<Response, Error> {
    let Some(share) = share.filter(|_| call.who.is_account()) else {
        return Err(Error::Forbidden("the root of a shared link cannot be deleted".into()));
    };
    call.dav.shares.unshare_from_self(share, call.who.user_id).await?;
    call.dav.audit.record(
        &call.dav.origin(&call.parts),
        Event::new("share.left")
            .actor(&call.who.uid)
            .target(&share.id.to_string())
            .detail(serde_json::json!({ "share_type": share.share_type })),
    );
    Ok(with_status(http::StatusCode::NO_CONTENT))
}

/// PROPFIND below a file drop: only what this address uploaded through
/// this link lately, under the name it used; every other name is 404.
async fn own_upload(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let name = call.path.name().ok_or(Error::NotFound)?;
    let address = call.dav.origin(&call.parts).address;
    let share = call.grant.as_ref().map_or(0, |g| g.share_id);
    let Some(id) = call.dav.shares.dropped(share, &address, name).await? else {
        return Err(Error::NotFound);
    };
    match call.dav.shares.node(id).await? {
        Some(node) if node.parent_id == call.grant.as_ref().map(|g| g.root_id) => {
            crate::methods::propfind::about(call, body, node).await
        }
        _ => Err(Error::NotFound),
    }
}

/// A file drop upload: stored under the name asked for, or the first free
/// "name (n)" (chosen when committing, so simultaneous uploads of one name
/// all arrive); nothing existing is replaced or revealed.
async fn drop_upload(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let name = call.path.name().ok_or(Error::NotFound)?.to_owned();
    let (response, node) = write::put_to(call, &call.path, body, true).await?;
    let address = call.dav.origin(&call.parts).address;
    let share = call.grant.as_ref().map_or(0, |g| g.share_id);
    call.dav.shares.record_drop(share, &address, &name, node.id).await?;
    Ok(response)
}
