//! COPY and MOVE within one tree.

use axum::response::Response;
use http::StatusCode;
use strongroom_core::Error;

use crate::{
    Call,
    methods::{identity_headers, with_status},
    paths::{self, Destination},
};

pub async fn copy_or_move(call: &Call<'_>, is_move: bool) -> Result<Response, Error> {
    let dest = call
        .header_text("destination")?
        .ok_or_else(|| Error::BadRequest("the Destination header is missing".into()))?;
    let to = match paths::destination(dest, call.header("host"), &call.tree_prefixes())? {
        Destination::Here(p) => {
            call.check_not_in_mount(&p)?;
            call.in_tree(&p)
        }
        Destination::OtherServer => {
            return Ok(crate::error::error_body(
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                "the Destination is on another server",
                "",
            ));
        }
        Destination::OtherTree if call.grant.is_some() => {
            return Err(Error::Forbidden(
                "the Destination is outside this share; copying or moving between a share and other files is not supported".into(),
            ));
        }
        Destination::OtherTree => {
            return Err(Error::Forbidden("the Destination is outside this user's files".into()));
        }
    };
    let overwrite = match call.header("overwrite").map(str::trim) {
        None | Some("T") | Some("t") => true,
        Some("F") | Some("f") => false,
        Some(_) => return Err(Error::BadRequest("Overwrite must be T or F".into())),
    };
    let deep = match call.header("depth").map(str::trim) {
        None => true,
        Some(d) if d.eq_ignore_ascii_case("infinity") => true,
        Some("0") if !is_move => false,
        Some(_) => return Err(Error::BadRequest("invalid Depth for COPY or MOVE".into())),
    };
    if to == call.path {
        return Err(Error::Forbidden("the source and the destination are the same".into()));
    }
    let cx = call.cx();
    let placed = if is_move {
        call.dav.files.rename(&cx, &call.path, &to, overwrite).await?
    } else {
        call.dav.files.copy(&cx, &call.path, &to, overwrite, deep).await?
    };
    let mut r =
        with_status(if placed.created { StatusCode::CREATED } else { StatusCode::NO_CONTENT });
    identity_headers(&mut r, call.dav, &placed.node);
    Ok(r)
}
