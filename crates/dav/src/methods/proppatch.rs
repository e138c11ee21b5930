//! PROPPATCH: dead properties are set and removed in document order, all or
//! nothing; protected live properties make the whole request fail.
//! `oc:favorite` is not a dead property: it marks the file for the caller
//! alone (`Files::set_favorite`), and needs only that the caller sees it.

use axum::{body::Body, response::Response};
use strongroom_core::{
    Error,
    files::{DeadProp, PropChange},
};

use super::propfind::{multistatus, propstat};
use crate::{
    Call,
    props::is_protected,
    xml_in,
    xml_out::{self, DAV, OC},
};

pub async fn proppatch(call: &Call<'_>, body: Body) -> Result<Response, Error> {
    let bytes = super::read_small_body(body).await?;
    let root = xml_in::parse(&bytes).map_err(|e| Error::BadRequest(e.0))?;
    if !root.is(DAV, "propertyupdate") {
        return Err(Error::BadRequest("the body must be a DAV:propertyupdate element".into()));
    }
    let node = call.dav.files.stat(&call.cx(), &call.path).await?.ok_or(Error::NotFound)?;
    let mut changes = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    let mut mtime = None;
    let mut favorite = None;
    for op in root.elems() {
        let set = op.is(DAV, "set");
        if !set && !op.is(DAV, "remove") {
            return Err(Error::BadRequest(
                "DAV:propertyupdate may only contain set and remove".into(),
            ));
        }
        let prop = op
            .child(DAV, "prop")
            .ok_or_else(|| Error::BadRequest("set/remove without DAV:prop".into()))?;
        for p in prop.elems() {
            names.push((p.ns.clone(), p.name.clone()));
            if set && p.is(DAV, "lastmodified") {
                mtime = Some(parse_time(&p.text())?);
                continue;
            }
            if p.is(OC, "favorite") {
                // Nextcloud's reading: 1 or true marks, anything else unmarks.
                favorite = Some(set && matches!(p.text().trim(), "1" | "true"));
                continue;
            }
            changes.push(if set {
                PropChange::Set(DeadProp {
                    ns: p.ns.clone(),
                    name: p.name.clone(),
                    value: p.inner_xml(),
                })
            } else {
                PropChange::Remove { ns: p.ns.clone(), name: p.name.clone() }
            });
        }
    }
    let refused: Vec<&(String, String)> =
        names.iter().filter(|(ns, n)| is_protected(ns, n)).collect();
    let mut out = xml_out::multistatus_start();
    out.push_str("<d:response><d:href>");
    out.push_str(&xml_out::escape(&call.href(&call.path, node.is_folder())));
    out.push_str("</d:href>");
    // Checked before anything changes: the request succeeds or fails whole.
    if favorite.is_some() && call.who.user_id <= 0 {
        return Err(Error::Forbidden("only an account has favourites".into()));
    }
    if refused.is_empty() {
        if !changes.is_empty() || favorite.is_none() {
            call.dav.files.patch_props(&call.cx(), &call.path, &changes).await?;
        }
        if let Some(on) = favorite {
            call.dav.files.set_favorite(&call.cx(), &call.path, on).await?;
        }
        if let Some(t) = mtime {
            call.dav.files.set_mtime(&call.cx(), &call.path, t).await?;
        }
        propstat(&mut out, &empty_props(names.iter()), 200);
    } else {
        let (bad, rest): (Vec<_>, Vec<_>) = names.iter().partition(|(ns, n)| is_protected(ns, n));
        propstat(&mut out, &empty_props(bad.into_iter()), 403);
        if !rest.is_empty() {
            propstat(&mut out, &empty_props(rest.into_iter()), 424);
        }
    }
    out.push_str("</d:response>");
    xml_out::multistatus_end(&mut out);
    Ok(multistatus(out))
}

fn empty_props<'a>(names: impl Iterator<Item = &'a (String, String)>) -> String {
    let mut s = String::new();
    for (ns, n) in names {
        xml_out::prop(&mut s, ns, n, "");
    }
    s
}

/// A modification time given as Unix seconds or an HTTP date.
fn parse_time(v: &str) -> Result<i64, Error> {
    let v = v.trim();
    let t = match v.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => httpdate::parse_http_date(v)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64),
    };
    t.filter(|t| (0..=strongroom_core::MAX_TIME).contains(t)).ok_or_else(|| {
        Error::BadRequest(
            "lastmodified must be a Unix time or an HTTP date between 1970 and 9999".into(),
        )
    })
}
