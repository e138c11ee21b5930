//! Live properties: values computed from the tree rather than stored.

use std::collections::HashMap;

use strongroom_core::{Grant, Node, TreePath, User, access::perm, locks::Lock};

use crate::xml_out::{DAV, NC, OC, escape};

/// What live properties of a listing need besides the node itself.
pub struct LiveCtx<'a> {
    pub prefix: &'a str,
    /// The owner's path that `prefix` names (see `Call::base`).
    pub base: &'a TreePath,
    /// Set when the tree is reached through a share.
    pub grant: Option<&'a Grant>,
    /// Types of the shares made on listed nodes, by node id.
    pub share_types: &'a HashMap<i64, Vec<i64>>,
    pub owner: &'a User,
    pub instance_id: &'a str,
    pub locks: &'a [Lock],
    /// (used, quota) of the owner; quota negative means unlimited.
    pub usage: (i64, i64),
}

/// The live properties returned for `allprop` and `propname`.
pub const ALLPROP: &[(&str, &str)] = &[
    (DAV, "resourcetype"),
    (DAV, "creationdate"),
    (DAV, "getlastmodified"),
    (DAV, "getcontentlength"),
    (DAV, "getcontenttype"),
    (DAV, "getetag"),
    (DAV, "lockdiscovery"),
    (DAV, "supportedlock"),
];

/// Live properties a client may not set or remove.
pub fn is_protected(ns: &str, name: &str) -> bool {
    match ns {
        DAV => matches!(
            name,
            "resourcetype"
                | "creationdate"
                | "getlastmodified"
                | "getcontentlength"
                | "getcontenttype"
                | "getetag"
                | "lockdiscovery"
                | "supportedlock"
                | "quota-used-bytes"
                | "quota-available-bytes"
        ),
        OC => matches!(
            name,
            "id" | "fileid"
                | "permissions"
                | "size"
                | "checksums"
                | "share-types"
                | "owner-id"
                | "owner-display-name"
                | "data-fingerprint"
        ),
        NC => matches!(
            name,
            "has-preview" | "mount-type" | "is-encrypted" | "creation_time" | "upload_time"
        ),
        _ => false,
    }
}

/// The value (inner XML) of a live property, or `None` when it is not a live
/// property of this node.
pub fn live(
    cx: &LiveCtx<'_>,
    node: &Node,
    path: &TreePath,
    ns: &str,
    name: &str,
) -> Option<String> {
    let file = !node.is_folder();
    let v = match (ns, name) {
        (DAV, "resourcetype") => {
            if file {
                String::new()
            } else {
                "<d:collection/>".into()
            }
        }
        (DAV, "creationdate") => rfc3339(node.ctime),
        (DAV, "getlastmodified") => http_date(node.mtime),
        (DAV, "getcontentlength") if file => node.size.to_string(),
        (DAV, "getcontenttype") if file => {
            escape(node.content_type.as_deref().unwrap_or("application/octet-stream")).into_owned()
        }
        (DAV, "getetag") => format!("&quot;{}&quot;", escape(&node.etag)),
        (DAV, "lockdiscovery") => lockdiscovery(cx, path),
        (DAV, "supportedlock") => SUPPORTED_LOCK.to_owned(),
        (DAV, "quota-used-bytes") if !file => cx.usage.0.to_string(),
        (DAV, "quota-available-bytes") if !file => {
            if cx.usage.1 < 0 {
                "-3".into()
            } else {
                (cx.usage.1 - cx.usage.0).max(0).to_string()
            }
        }
        (OC, "id") => oc_id(node.id, cx.instance_id),
        (OC, "fileid") => node.id.to_string(),
        (OC, "permissions") => permissions(cx.grant, file, path == cx.base),
        (OC, "size") => node.size.to_string(),
        (OC, "checksums") if file => match &node.checksum {
            Some(c) => format!("<oc:checksum>{}</oc:checksum>", escape(c)),
            None => String::new(),
        },
        (OC, "share-types") => cx
            .share_types
            .get(&node.id)
            .map(|l| l.iter().map(|t| format!("<oc:share-type>{t}</oc:share-type>")).collect())
            .unwrap_or_default(),
        (OC, "owner-id") => escape(&cx.owner.uid).into_owned(),
        (OC, "owner-display-name") => escape(cx.owner.display()).into_owned(),
        (OC, "data-fingerprint") if path.is_root() => String::new(),
        (NC, "has-preview") => "false".into(),
        (NC, "mount-type")
            if cx.grant.is_some() && cx.grant.is_some_and(|g| g.root_id == node.id) =>
        {
            "shared".into()
        }
        (NC, "mount-type") => String::new(),
        (NC, "is-encrypted") if !file => "0".into(),
        (NC, "creation_time") => node.ctime.to_string(),
        (NC, "upload_time") if file => node.ctime.to_string(),
        _ => return None,
    };
    Some(v)
}

/// `oc:permissions`: what the caller may do with a node, as Nextcloud's
/// letters: S shared with the caller, R may reshare, G read, D delete,
/// N rename, V move, W write (files), C and K create files and folders.
pub fn permissions(grant: Option<&Grant>, file: bool, share_root: bool) -> String {
    let Some(g) = grant else {
        return if file { "RGDNVW".into() } else { "RGDNVCK".into() };
    };
    let mut p = String::from("S");
    if g.has(perm::SHARE) {
        p.push('R');
    }
    if g.has(perm::READ) {
        p.push('G');
    }
    // A recipient may always remove a share from its own tree.
    if g.has(perm::DELETE) || share_root {
        p.push('D');
    }
    if g.has(perm::UPDATE) && !share_root {
        p.push_str("NV");
    }
    if file && g.has(perm::UPDATE) {
        p.push('W');
    }
    if !file && g.has(perm::CREATE) {
        p.push_str("CK");
    }
    p
}

/// `oc:id`: the file id zero-padded to 8 digits, then the instance id.
pub fn oc_id(id: i64, instance: &str) -> String {
    format!("{id:08}{instance}")
}

const SUPPORTED_LOCK: &str = "<d:lockentry><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>\
<d:lockentry><d:lockscope><d:shared/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>";

fn lockdiscovery(cx: &LiveCtx<'_>, path: &TreePath) -> String {
    cx.locks.iter().filter(|l| l.covers(path)).map(|l| activelock(cx.prefix, cx.base, l)).collect()
}

/// The `d:activelock` element describing a lock.
pub fn activelock(prefix: &str, base: &TreePath, l: &Lock) -> String {
    let scope = if l.shared { "<d:shared/>" } else { "<d:exclusive/>" };
    let depth = if l.deep { "infinity" } else { "0" };
    let owner =
        l.owner_xml.as_deref().map(|o| format!("<d:owner>{o}</d:owner>")).unwrap_or_default();
    let remaining = (l.expires_at - strongroom_core::now_secs()).max(0);
    let root = crate::paths::href_in(prefix, base, &l.path, false);
    format!(
        "<d:activelock><d:locktype><d:write/></d:locktype><d:lockscope>{scope}</d:lockscope>\
         <d:depth>{depth}</d:depth>{owner}<d:timeout>Second-{remaining}</d:timeout>\
         <d:locktoken><d:href>{}</d:href></d:locktoken><d:lockroot><d:href>{}</d:href></d:lockroot></d:activelock>",
        escape(&l.token),
        escape(&root)
    )
}

pub fn http_date(secs: i64) -> String {
    // Times are validated when set; the clamp keeps a bad row from failing a listing.
    let secs = secs.clamp(0, strongroom_core::MAX_TIME);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    httpdate::fmt_http_date(t)
}

/// `YYYY-MM-DDThh:mm:ssZ` for `creationdate`.
fn rfc3339(secs: i64) -> String {
    format!("{}Z", strongroom_core::utc_to_the_second(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_and_ids() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_630_042), "2024-03-05T09:14:02Z");
        assert_eq!(http_date(1_709_630_042), "Tue, 05 Mar 2024 09:14:02 GMT");
        assert_eq!(oc_id(412, "oc7x2kq9m1ab"), "00000412oc7x2kq9m1ab");
    }
}
