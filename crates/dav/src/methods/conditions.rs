//! Evaluating the `If` header against the current state of the tree.

use strongroom_core::{Error, TreePath, locks::Lock};

use crate::{
    Call,
    if_header::{self, Check, List},
    paths::{self, Destination},
};

/// Checks the `If` header; on success records the submitted lock tokens.
/// A header that evaluates to false is a 412.
pub async fn evaluate_if(call: &mut Call<'_>) -> Result<(), Error> {
    // Most requests carry none: spare them the path and prefixes below.
    if !call.parts.headers.contains_key("if") {
        return Ok(());
    }
    let path = call.path.clone();
    let prefixes = call.tree_prefixes();
    call.tokens = evaluate(call, &path, &prefixes).await?;
    Ok(())
}

/// Evaluates the `If` header: untagged lists are about `untagged`, tagged
/// ones about their URL below one of `prefixes`. Returns the lock tokens it names.
pub async fn evaluate(
    call: &Call<'_>,
    untagged: &TreePath,
    prefixes: &[String],
) -> Result<Vec<String>, Error> {
    let Some(value) = call.header_text("if")?.map(str::to_owned) else { return Ok(Vec::new()) };
    let lists = if_header::parse(&value)?;
    let locks = call.dav.files.locks().all(call.owner.id).await?;
    let mut any = false;
    for list in &lists {
        if list_holds(call, list, &locks, untagged, prefixes).await? {
            any = true;
            break;
        }
    }
    if !any {
        return Err(Error::PreconditionFailed("the If header conditions are not met".into()));
    }
    Ok(if_header::tokens(&lists))
}

async fn list_holds(
    call: &Call<'_>,
    list: &List,
    locks: &[Lock],
    untagged: &TreePath,
    prefixes: &[String],
) -> Result<bool, Error> {
    let path = match &list.tag {
        None => Some(untagged.clone()),
        Some(url) => match paths::destination(url, call.header("host"), prefixes) {
            Ok(Destination::Here(p)) => Some(call.in_tree(&p)),
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

/// The entity tag an `If` header requires of `target` when it has a single
/// list about it, so the check can be repeated inside the committing
/// transaction (nothing may change between the check and the write).
pub fn required_etag(call: &Call<'_>, target: &TreePath, prefixes: &[String]) -> Option<String> {
    let value = call.header_text("if").ok()??;
    let lists = if_header::parse(value).ok()?;
    let [list] = lists.as_slice() else { return None };
    let about = match &list.tag {
        None => Some(target.clone()),
        Some(url) => match paths::destination(url, call.header("host"), prefixes) {
            Ok(Destination::Here(p)) => Some(call.in_tree(&p)),
            _ => None,
        },
    };
    if about.as_ref() != Some(target) {
        return None;
    }
    list.conditions.iter().find_map(|c| match &c.check {
        Check::Etag(e) if !c.not => Some(e.clone()),
        _ => None,
    })
}
