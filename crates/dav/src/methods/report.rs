//! REPORT `oc:filter-files`: the files that match filter rules, at any
//! depth below the request's folder. Nextcloud's clients list favourites
//! with it:
//!
//! ```xml
//! <oc:filter-files xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
//!   <d:prop><d:getetag/><oc:fileid/></d:prop>
//!   <oc:filter-rules><oc:favorite>1</oc:favorite></oc:filter-rules>
//! </oc:filter-files>
//! ```
//!
//! The rules must all hold. There are no system tags here, so a rule on
//! tags (`oc:systemtag`) matches nothing; without a rule the answer is
//! empty, as Nextcloud's is (every file would match). Other reports are
//! refused as WebDAV says: 403 with `d:supported-report`.

use axum::{body::Body, response::Response};
use http::StatusCode;
use strongroom_core::Error;

use super::propfind::{Request, prop_names, respond};
use crate::{
    Call,
    xml_in::{self, Elem},
    xml_out::{DAV, OC},
};

pub async fn report(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let root =
        xml_in::parse(&super::read_small_body(body).await?).map_err(|e| Error::BadRequest(e.0))?;
    if !root.is(OC, "filter-files") {
        return Ok(crate::error::error_body(
            StatusCode::FORBIDDEN,
            "ReportNotSupported",
            &format!("the {{{}}}{} report is not supported", root.ns, root.name),
            "<d:supported-report/>",
        ));
    }
    // Through a share or a link the rules would reach the owner's other
    // files' properties: only one's own files are searched.
    if call.grant.is_some() {
        return Err(Error::Forbidden("filter-files searches only your own files".into()));
    }
    let request = match root.child(DAV, "prop") {
        Some(p) => Request::Prop(prop_names(p)),
        None => Request::AllProp(Vec::new()),
    };
    let found = match favorites_only(root.child(OC, "filter-rules")) {
        true => call.dav.files.favorites(&call.cx(), &call.path).await?,
        false => Vec::new(),
    };
    respond(call, &request, found, Vec::new()).await
}

/// Whether the rules ask for favourites and nothing else that could match:
/// `oc:favorite` of `1` and no other rule.
fn favorites_only(rules: Option<&Elem>) -> bool {
    let Some(rules) = rules else { return false };
    let mut favorite = false;
    for rule in rules.elems() {
        match rule.is(OC, "favorite") {
            true => favorite |= rule.text().trim() == "1",
            false => return false,
        }
    }
    favorite
}
