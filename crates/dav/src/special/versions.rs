//! `/remote.php/dav/versions/USER/versions/FILEID/VERSION` and `…/restore/target` (any one name there).

use axum::{body::Body, response::Response};
use http::StatusCode;
use strongroom_core::{Error, Node, files::Version};

use super::{container, destination_below, entry, href, listing, not_allowed};
use crate::{
    Call,
    methods::{identity_headers, read, with_status},
};

pub async fn dispatch(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let segs: Vec<&str> = call.path.segments().iter().map(String::as_str).collect();
    let method = call.parts.method.as_str();
    match (segs.as_slice(), method) {
        ([], "PROPFIND") => {
            let entries = vec![
                container(call, &[]),
                container(call, &["versions"]),
                container(call, &["restore"]),
            ];
            listing(call, body, entries).await
        }
        (["versions", id], "PROPFIND") => list(call, id, body).await,
        (["versions", id, name], "PROPFIND") => one(call, id, name, body).await,
        (["versions", id, name], "GET" | "HEAD") => {
            let (file, v) = find(call, id, name).await?;
            read::serve_node(call, &v.as_node(&file), method == "GET").await
        }
        (["versions", id, name], "MOVE") => restore(call, id, name).await,
        (_, "OPTIONS") => Ok(crate::methods::options()),
        ([] | ["versions" | "restore", ..], _) => Err(not_allowed(call)),
        _ => Err(Error::NotFound),
    }
}

/// The mount through which `user` reaches file `id`, when the file is not
/// its own but lies in a share it received.
pub(super) async fn mount_of(
    dav: &crate::Dav,
    user: &strongroom_core::User,
    id: &str,
) -> Result<Option<strongroom_core::sharing::Mount>, Error> {
    let Ok(id) = id.parse::<i64>() else { return Ok(None) };
    let mut m = dav.shares.mount_of_node(user, id).await?;
    m.take_if(|m| m.owner.id == user.id);
    Ok(m)
}

fn file_id(id: &str) -> Result<i64, Error> {
    id.parse().map_err(|_| Error::NotFound)
}

async fn list(call: &Call<'_>, id: &str, body: Body) -> Result<Response, Error> {
    let (file, versions) = call.dav.files.versions(&call.cx(), file_id(id)?).await?;
    let mut entries = vec![container(call, &["versions", id])];
    for v in &versions {
        let name = v.name(&versions);
        entries.push(entry(href(call, &["versions", id, &name], false), v.as_node(&file)));
    }
    listing(call, body, entries).await
}

async fn find(call: &Call<'_>, id: &str, name: &str) -> Result<(Node, Version), Error> {
    let (file, versions) = call.dav.files.versions(&call.cx(), file_id(id)?).await?;
    let v = versions.iter().find(|v| v.name(&versions) == name).cloned().ok_or(Error::NotFound)?;
    Ok((file, v))
}

async fn one(call: &Call<'_>, id: &str, name: &str, body: Body) -> Result<Response, Error> {
    let (file, v) = find(call, id, name).await?;
    listing(call, body, vec![entry(href(call, &["versions", id, name], false), v.as_node(&file))])
        .await
}

async fn restore(call: &Call<'_>, id: &str, name: &str) -> Result<Response, Error> {
    let target = destination_below(call, &[call.prefix.to_owned()])?;
    // Nextcloud's clients name the target `target`, nc_py_api the version;
    // like Nextcloud, any one name below `restore` restores.
    if !matches!(target.segments(), [folder, _] if folder == "restore") {
        return Err(Error::BadRequest(
            "a version is restored by a MOVE to …/restore/NAME (NAME: target, say)".into(),
        ));
    }
    let (file, v) = find(call, id, name).await?;
    let node = call.dav.files.restore_version(&call.cx(), file.id, v.id).await?;
    let mut r = with_status(StatusCode::NO_CONTENT);
    identity_headers(&mut r, call.dav, &node);
    Ok(r)
}
