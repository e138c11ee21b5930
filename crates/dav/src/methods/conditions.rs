//! Evaluating the `If` header against the current state of the tree.

use strongroom_core::{Error, locks::Lock};

use crate::{
    Call,
    if_header::{self, Check, List},
    paths::{self, Destination},
};

/// Checks the `If` header; on success records the submitted lock tokens.
/// A header that evaluates to false is a 412.
pub async fn evaluate_if(call: &mut Call<'_>) -> Result<(), Error> {
    let Some(value) = call.header_text("if")?.map(str::to_owned) else { return Ok(()) };
    let lists = if_header::parse(&value)?;
    let locks = call.dav.files.locks().all(call.owner.id).await?;
    let mut any = false;
    for list in &lists {
        if list_holds(call, list, &locks).await? {
            any = true;
            break;
        }
    }
    if !any {
        return Err(Error::PreconditionFailed("the If header conditions are not met".into()));
    }
    call.tokens = if_header::tokens(&lists);
    Ok(())
}

async fn list_holds(call: &Call<'_>, list: &List, locks: &[Lock]) -> Result<bool, Error> {
    let path = match &list.tag {
        None => Some(call.path.clone()),
        Some(url) => match paths::destination(url, call.header("host"), &call.tree_prefixes()) {
            Ok(Destination::Here(p)) => Some(p),
            _ => None,
        },
    };
    let node = match &path {
        Some(p) => call.dav.files.stat(&call.cx(), p).await?,
        None => None,
    };
    for c in &list.conditions {
        let holds = match (&c.check, &path) {
            (Check::Token(t), Some(p)) => locks.iter().any(|l| l.token == *t && l.covers(p)),
            (Check::Etag(e), _) => node.as_ref().is_some_and(|n| n.etag == *e),
            (Check::Token(_), None) => false,
        };
        if holds == c.not {
            return Ok(false);
        }
    }
    Ok(true)
}
