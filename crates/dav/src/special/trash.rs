//! `/remote.php/dav/trashbin/USER/trash/ITEM/…` and `…/restore`.

use axum::{body::Body, response::Response};
use http::StatusCode;
use strongroom_core::{Error, files::TrashItem};

use super::{container, destination_below, entry, href, listing, not_allowed};
use crate::{
    Call,
    methods::{identity_headers, propfind::Entry, read, with_status},
    props::http_date,
    xml_out::{DAV, NC, escape},
};

pub async fn dispatch(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let segs: Vec<&str> = call.path.segments().iter().map(String::as_str).collect();
    let method = call.parts.method.as_str();
    match (segs.as_slice(), method) {
        ([], "PROPFIND") => {
            let entries = vec![
                container(call, &[]),
                container(call, &["trash"]),
                container(call, &["restore"]),
            ];
            listing(call, body, entries).await
        }
        (["restore"], "PROPFIND") => listing(call, body, vec![container(call, &["restore"])]).await,
        (["trash"], "PROPFIND") => list_trash(call, body).await,
        (["trash"], "DELETE") => {
            call.dav.files.trash_empty(&call.cx()).await?;
            Ok(with_status(StatusCode::NO_CONTENT))
        }
        (["trash", item, rest @ ..], "PROPFIND") => browse(call, item, rest, body).await,
        (["trash", item, rest @ ..], "GET" | "HEAD") => {
            download(call, item, rest, method == "GET").await
        }
        (["trash", item], "DELETE") => {
            let (it, _) = call.dav.files.trash_lookup(&call.cx(), item, &[]).await?;
            call.dav.files.trash_purge(&call.cx(), &it).await?;
            Ok(with_status(StatusCode::NO_CONTENT))
        }
        (["trash", item], "MOVE") => restore(call, item).await,
        (_, "OPTIONS") => Ok(crate::methods::options()),
        ([] | ["trash" | "restore", ..], _) => Err(not_allowed(call)),
        _ => Err(Error::NotFound),
    }
}

/// The trash properties Nextcloud's clients read, plus the deletion time as
/// the modification time.
fn trash_entry(call: &Call<'_>, item: &TrashItem) -> Entry {
    let mut e =
        entry(href(call, &["trash", &item.node.name], item.node.is_folder()), item.node.clone());
    e.extra = vec![
        (NC, "trashbin-filename", escape(item.original_name()).into_owned()),
        (NC, "trashbin-original-location", escape(&item.original_path).into_owned()),
        (NC, "trashbin-deletion-time", item.deleted_at.to_string()),
        (DAV, "getlastmodified", http_date(item.deleted_at)),
    ];
    e
}

async fn list_trash(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let mut entries = vec![container(call, &["trash"])];
    for item in call.dav.files.trash_list(&call.cx()).await? {
        entries.push(trash_entry(call, &item));
    }
    listing(call, body, entries).await
}

async fn browse(call: &Call<'_>, item: &str, rest: &[&str], body: Body) -> Result<Response, Error> {
    let rest_owned: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    let (it, node) = call.dav.files.trash_lookup(&call.cx(), item, &rest_owned).await?;
    let mut base: Vec<&str> = vec!["trash", item];
    base.extend_from_slice(rest);
    let first = if rest.is_empty() {
        trash_entry(call, &it)
    } else {
        entry(href(call, &base, node.is_folder()), node.clone())
    };
    let mut entries = vec![first];
    if node.is_folder() {
        for c in call.dav.files.trash_children(&call.cx(), &node).await? {
            let mut p = base.clone();
            p.push(&c.name);
            entries.push(entry(href(call, &p, c.is_folder()), c.clone()));
        }
    }
    listing(call, body, entries).await
}

async fn download(
    call: &Call<'_>,
    item: &str,
    rest: &[&str],
    with_body: bool,
) -> Result<Response, Error> {
    let rest_owned: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    let (_, node) = call.dav.files.trash_lookup(&call.cx(), item, &rest_owned).await?;
    read::serve_node(call, &node, with_body).await
}

async fn restore(call: &Call<'_>, item: &str) -> Result<Response, Error> {
    let restore_prefix = format!("{}/restore", call.prefix);
    destination_below(call, &[restore_prefix])?;
    let (it, _) = call.dav.files.trash_lookup(&call.cx(), item, &[]).await?;
    let node = call.dav.files.trash_restore(&call.cx(), &it).await?;
    let mut r = with_status(StatusCode::CREATED);
    identity_headers(&mut r, call.dav, &node);
    Ok(r)
}
