//! Received shares in a listing of one's own tree: each mount appears as a
//! child of the share folder, with the owner's node under the mount's name.
//! The share folder and its ancestors get an ETag that also covers the
//! mounts' ETags, so a sync client walking down from the root notices when
//! an owner changes shared content.

use sha1::{Digest, Sha1};
use strongroom_core::{Node, TreePath};

use super::Entry;
use crate::{
    Call,
    props::permissions,
    xml_out::{NC, OC, escape},
};

/// The mount entries below the listed folder (for Depth 1), after giving the
/// listed share folder and its ancestors their combined ETags.
pub(super) fn entries(call: &Call<'_>, listed: &mut [(TreePath, Node)], deep: bool) -> Vec<Entry> {
    let Some(folder) = call.mounts.first().and_then(|m| m.at.parent()) else { return Vec::new() };
    for (path, node) in listed.iter_mut() {
        if folder.starts_with(path) && node.is_folder() {
            node.etag = combined_etag(call, &node.etag);
        }
    }
    if !deep || listed.first().is_none_or(|(p, _)| *p != folder) {
        return Vec::new();
    }
    call.mounts
        .iter()
        .map(|m| {
            let file = !m.node.is_folder();
            let node = Node { name: m.at.name().unwrap_or_default().to_owned(), ..m.node.clone() };
            Entry {
                href: call.href(&m.at, !file),
                path: m.at.clone(),
                node,
                container: false,
                extra: vec![
                    (OC, "permissions", permissions(Some(&m.grant), file, true)),
                    (OC, "owner-id", escape(&m.owner.uid).into_owned()),
                    (OC, "owner-display-name", escape(m.owner.display()).into_owned()),
                    (NC, "mount-type", "shared".to_owned()),
                ],
            }
        })
        .collect()
}

fn combined_etag(call: &Call<'_>, own: &str) -> String {
    let mut h = Sha1::new();
    h.update(own.as_bytes());
    for m in &call.mounts {
        h.update([0]);
        h.update(m.at.to_key().as_bytes());
        h.update([0]);
        h.update(m.node.etag.as_bytes());
        h.update(m.grant.perms.to_le_bytes());
    }
    hex::encode(&h.finalize()[..10])
}
