//! Sharing over raw HTTP: the OCS sharing API's answers (every refusal with
//! its status), shares in the recipient's WebDAV tree, group membership,
//! resharing within what was received, the command line and the audit log.
//! Protections on every route to content are in `sharing_routes.rs`.

use reqwest::Method;
use serde_json::Value;

use crate::harness::{Server, backends, text};

pub const PW: &str = "-long-password";

/// A server for these tests. Requests to dead links count against the
/// address like wrong passwords; the tests make many on purpose, so the
/// budget is wide and the delays short (the throttle has tests of its own).
pub async fn start(b: crate::harness::Backend) -> Server {
    let env = [
        ("STRONGROOM_BRUTEFORCE_MAX_ATTEMPTS", "1000"),
        ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
        ("STRONGROOM_BRUTEFORCE_MAX_DELAY_MS", "2"),
    ];
    Server::start_with(b, &env).await
}

/// A user's password in these tests.
pub fn pw(user: &str) -> String {
    format!("{user}{PW}")
}

/// An OCS v2 sharing call as `user`; returns the HTTP status and the JSON.
pub async fn ocs(
    s: &Server,
    user: &str,
    method: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let url = s.url(&format!("/ocs/v2.php/apps/files_sharing/api/v1{path}?format=json"));
    let r = s
        .client
        .request(Method::from_bytes(method.as_bytes()).unwrap(), url)
        .basic_auth(user, Some(pw(user)))
        .header("OCS-APIRequest", "true")
        .form(form)
        .send()
        .await
        .unwrap();
    let (code, body) = text(r).await;
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON ({code}): {body}"));
    (code, v)
}

/// Creates a share and returns its JSON; panics on refusal.
pub async fn share(s: &Server, user: &str, form: &[(&str, &str)]) -> Value {
    let (code, v) = ocs(s, user, "POST", "/shares", form).await;
    assert_eq!(code, 200, "share {form:?}: {v}");
    v["ocs"]["data"].clone()
}

/// The users, a folder `/Project` of bob's with `readme.txt`, and a group `team` with carol.
pub async fn setup(s: &Server) {
    for u in ["alice", "bob", "carol", "dave"] {
        s.add_user(u, &pw(u));
    }
    s.cli_ok(&["group", "add", "team"]);
    s.cli_ok(&["group", "adduser", "team", "carol"]);
    put(s, "bob", "/Project/", None).await;
    put(s, "bob", "/Project/readme.txt", Some("hello from bob")).await;
}

/// MKCOL (a path ending in `/`) or PUT as `user` in its own tree.
pub async fn put(s: &Server, user: &str, path: &str, body: Option<&str>) -> u16 {
    let r = match body {
        None => s.dav("MKCOL", user, &pw(user), path.trim_end_matches('/')),
        Some(b) => s.dav("PUT", user, &pw(user), path).body(b.to_owned()),
    };
    r.send().await.unwrap().status().as_u16()
}

pub async fn propfind(s: &Server, user: &str, path: &str, depth: &str) -> (u16, String) {
    let body = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns"><d:prop><d:getetag/><oc:fileid/><oc:permissions/><oc:owner-id/><oc:share-types/><nc:mount-type/></d:prop></d:propfind>"#;
    let r = s
        .dav("PROPFIND", user, &pw(user), path)
        .header("Depth", depth)
        .body(body)
        .send()
        .await
        .unwrap();
    text(r).await
}

/// The ETag of the first response of a Depth 0 PROPFIND.
async fn etag(s: &Server, user: &str, path: &str) -> String {
    let (_, body) = propfind(s, user, path, "0").await;
    body.split("<d:getetag>").nth(1).unwrap().split("</d:getetag>").next().unwrap().to_owned()
}

#[tokio::test]
async fn ocs_refusals_have_nextclouds_status_and_change_nothing() {
    for b in backends() {
        let s = start(b).await;
        setup(&s).await;
        put(&s, "bob", "/file.txt", Some("x")).await;
        let cases: &[(&[(&str, &str)], u16, &str)] = &[
            (
                &[("shareType", "0"), ("shareWith", "alice")],
                404,
                "Please specify a file or folder path",
            ),
            (&[("path", "/nope"), ("shareType", "0"), ("shareWith", "alice")], 404, "Wrong path"),
            (
                &[("path", "/Project"), ("shareType", "7"), ("shareWith", "alice")],
                400,
                "Unknown share type",
            ),
            (&[("path", "/Project"), ("shareType", "x")], 400, "shareType must be a number"),
            (
                &[("path", "/Project"), ("shareType", "0"), ("shareWith", "nobody")],
                404,
                "valid account",
            ),
            (
                &[("path", "/Project"), ("shareType", "0"), ("shareWith", "bob")],
                403,
                "Cannot share with yourself",
            ),
            (&[("path", "/"), ("shareType", "3")], 403, "root folder"),
            (
                &[("path", "/Project"), ("shareType", "1"), ("shareWith", "nogroup")],
                404,
                "valid group",
            ),
            (
                &[
                    ("path", "/Project"),
                    ("shareType", "0"),
                    ("shareWith", "alice"),
                    ("permissions", "64"),
                ],
                400,
                "Invalid permissions",
            ),
            (
                &[("path", "/Project"), ("shareType", "3"), ("permissions", "2")],
                400,
                "READ or CREATE",
            ),
            (
                &[("path", "/file.txt"), ("shareType", "3"), ("publicUpload", "true")],
                400,
                "Public upload is only possible",
            ),
            (
                &[("path", "/Project"), ("shareType", "3"), ("expireDate", "2001-01-01")],
                404,
                "in the past",
            ),
            (
                &[("path", "/Project"), ("shareType", "3"), ("expireDate", "someday")],
                404,
                "Invalid date",
            ),
            (
                &[("path", "/Project"), ("shareType", "3"), ("password", "short")],
                400,
                "at least 10",
            ),
            (
                &[("path", "/Project"), ("shareType", "3"), ("label", &"l".repeat(256))],
                400,
                "Maximum label length",
            ),
            (&[("path", "/Project/../file.txt"), ("shareType", "3")], 404, "Wrong path"),
            (&[("path", "/Project%2Freadme.txt"), ("shareType", "3")], 404, "Wrong path"),
        ];
        for (form, code, words) in cases {
            let (http, v) = ocs(&s, "bob", "POST", "/shares", form).await;
            let msg = v["ocs"]["meta"]["message"].as_str().unwrap_or("");
            assert_eq!(
                (http, v["ocs"]["meta"]["statuscode"].as_u64()),
                (*code, Some(*code as u64)),
                "{form:?}: {v}"
            );
            assert!(msg.contains(words), "{form:?}: {msg:?} should say {words:?}");
        }
        let (_, v) = ocs(&s, "bob", "GET", "/shares", &[]).await;
        assert_eq!(
            v["ocs"]["data"],
            serde_json::json!([]),
            "a refused request left a share behind"
        );

        let link = share(&s, "bob", &[("path", "/Project"), ("shareType", "3")]).await;
        let id = link["id"].as_str().unwrap().to_owned();
        let path = format!("/shares/{id}");
        for (who, method, form, code) in [
            ("bob", "PUT", vec![], 400),
            ("bob", "PUT", vec![("expireDate", "2001-01-01")], 400),
            ("bob", "PUT", vec![("permissions", "99")], 400),
            ("bob", "PUT", vec![("label", "ok"), ("expireDate", "bad")], 400),
            ("alice", "PUT", vec![("permissions", "1")], 404),
            ("alice", "DELETE", vec![], 404),
            ("alice", "GET", vec![], 404),
        ] {
            let (http, v) = ocs(&s, who, method, &path, &form).await;
            assert_eq!(http, code, "{who} {method} {form:?}: {v}");
        }
        for bad in ["/shares/999999", "/shares/abc"] {
            assert_eq!(ocs(&s, "bob", "GET", bad, &[]).await.0, 404, "{bad}");
        }
        let (_, v) = ocs(&s, "bob", "GET", &path, &[]).await;
        assert_eq!(v["ocs"]["data"][0]["label"], "", "a refused update changed the share");
        assert_eq!(v["ocs"]["data"][0]["expiration"], Value::Null);
        // Unauthenticated and without the OCS header.
        let r = s
            .client
            .get(s.url("/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json"))
            .header("OCS-APIRequest", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_user_share_appears_in_the_recipients_tree_with_its_permissions() {
    for b in backends() {
        let s = start(b).await;
        setup(&s).await;
        let sh = share(
            &s,
            "bob",
            &[
                ("path", "/Project"),
                ("shareType", "0"),
                ("shareWith", "alice"),
                ("permissions", "1"),
            ],
        )
        .await;
        assert_eq!(
            (sh["share_type"].as_i64(), sh["permissions"].as_i64()),
            (Some(0), Some(1)),
            "{sh}"
        );
        assert_eq!(
            (sh["uid_owner"].as_str(), sh["share_with"].as_str(), sh["path"].as_str()),
            (Some("bob"), Some("alice"), Some("/Project"))
        );
        assert_eq!(sh["item_type"], "folder");

        let (code, listing) = propfind(&s, "alice", "/", "1").await;
        assert_eq!(code, 207);
        let entry =
            listing.split("<d:response>").find(|r| r.contains("/alice/Project/")).expect(&listing);
        assert!(
            entry.contains("<oc:owner-id>bob</oc:owner-id>")
                && entry.contains("<nc:mount-type>shared</nc:mount-type>"),
            "{entry}"
        );
        assert!(entry.contains("<oc:permissions>SGD</oc:permissions>"), "read-only share: {entry}");
        let r = s.dav("GET", "alice", &pw("alice"), "/Project/readme.txt").send().await.unwrap();
        assert_eq!(text(r).await, (200, "hello from bob".to_owned()));
        // Read-only: no upload, no delete, no rename, no new folder.
        assert_eq!(put(&s, "alice", "/Project/new.txt", Some("x")).await, 403);
        assert_eq!(put(&s, "alice", "/Project/readme.txt", Some("x")).await, 403);
        assert_eq!(put(&s, "alice", "/Project/sub/", None).await, 403);
        let r = s.dav("DELETE", "alice", &pw("alice"), "/Project/readme.txt").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        // Reading allows a copy out, not a move out; nothing comes in.
        let copy_or_move = |m: &str, from: &str, to: &str| {
            let dest = s.url(&format!("/remote.php/dav/files/alice{to}"));
            s.dav(m, "alice", &pw("alice"), from).header("Destination", dest)
        };
        let r = copy_or_move("MOVE", "/Project/readme.txt", "/taken.txt").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        let r = copy_or_move("COPY", "/Project/readme.txt", "/copied.txt").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let r = s.dav("GET", "alice", &pw("alice"), "/copied.txt").send().await.unwrap();
        assert_eq!(text(r).await, (200, "hello from bob".to_owned()));
        let r = copy_or_move("COPY", "/copied.txt", "/Project/pushed.txt").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        let r = s.dav("GET", "bob", &pw("bob"), "/Project/readme.txt").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "a refused move took the file");
        // The owner's side: the share type on the node.
        let (_, own) = propfind(&s, "bob", "/", "1").await;
        let entry = own.split("<d:response>").find(|r| r.contains("/bob/Project/")).unwrap();
        assert!(entry.contains("<oc:share-type>0</oc:share-type>"), "{entry}");

        // The recipient's root ETag follows the owner's changes inside the share.
        let before = etag(&s, "alice", "/").await;
        put(&s, "bob", "/Project/readme.txt", Some("changed by bob")).await;
        assert_ne!(
            etag(&s, "alice", "/").await,
            before,
            "the owner's change is invisible to a sync client"
        );

        // More permissions: alice can now write, and her changes land in bob's tree.
        let id = sh["id"].as_str().unwrap();
        let (code, v) =
            ocs(&s, "bob", "PUT", &format!("/shares/{id}"), &[("permissions", "15")]).await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(put(&s, "alice", "/Project/from-alice.txt", Some("hi bob")).await, 201);
        let r = s.dav("GET", "bob", &pw("bob"), "/Project/from-alice.txt").send().await.unwrap();
        assert_eq!(text(r).await, (200, "hi bob".to_owned()));
        // The share's root cannot be moved away.
        let dest = s.url("/remote.php/dav/files/alice/Elsewhere");
        let r = s
            .dav("MOVE", "alice", &pw("alice"), "/Project")
            .header("Destination", &dest)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        // With the right to delete, a file moves out into alice's own files
        // (bob's goes to his trash), and copies go both ways.
        let dest = s.url("/remote.php/dav/files/alice/mine.txt");
        let r = s
            .dav("MOVE", "alice", &pw("alice"), "/Project/from-alice.txt")
            .header("Destination", &dest)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let r = s.dav("GET", "alice", &pw("alice"), "/mine.txt").send().await.unwrap();
        assert_eq!(text(r).await, (200, "hi bob".to_owned()));
        let r = s.dav("GET", "bob", &pw("bob"), "/Project/from-alice.txt").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
        let dest = s.url("/remote.php/dav/files/alice/Project/back.txt");
        let r = s
            .dav("COPY", "alice", &pw("alice"), "/mine.txt")
            .header("Destination", &dest)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let r = s.dav("GET", "bob", &pw("bob"), "/Project/back.txt").send().await.unwrap();
        assert_eq!(text(r).await, (200, "hi bob".to_owned()));
        // Paths cannot climb out of the share.
        for sneaky in ["/Project/../../bob/secret", "/Project/%2e%2e/x", "/Project/..%2Fx"] {
            let r = s.dav("GET", "alice", &pw("alice"), sneaky).send().await.unwrap();
            assert!(matches!(r.status().as_u16(), 400 | 404), "{sneaky}: {}", r.status());
        }
        // Shared with me, as the recipient sees it.
        let (_, v) = ocs(&s, "alice", "GET", "/shares", &[("shared_with_me", "true")]).await;
        let got = &v["ocs"]["data"][0];
        assert_eq!(
            (got["path"].as_str(), got["permissions"].as_i64(), got["mount-type"].as_str()),
            (Some("/Project"), Some(15), Some("shared")),
            "{got}"
        );
        // Deleting the mount removes the share for alice only; bob keeps his folder.
        let r = s.dav("DELETE", "alice", &pw("alice"), "/Project").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 204);
        let (_, listing) = propfind(&s, "alice", "/", "1").await;
        assert!(!listing.contains("/alice/Project/"), "{listing}");
        let r = s.dav("GET", "bob", &pw("bob"), "/Project/readme.txt").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        s.stop().await;
    }
}

/// A request with an app password learns in its account lookup whether the
/// account receives any share, and skips looking for mounts when not: a
/// share given, by user or through a group, shows at the next request, and
/// one taken away is gone at the next.
#[tokio::test]
async fn app_passwords_see_shares_as_soon_as_they_are_given() {
    for b in backends() {
        let s = start(b).await;
        setup(&s).await;
        let carol = s.app_password("carol", &pw("carol")).await;
        let dave = s.app_password("dave", &pw("dave")).await;
        let get = |user: &'static str, token: &String| {
            s.dav("GET", user, token, "/Project/readme.txt").send()
        };
        // Bob shares /Project read-only with a user (kind "0") or a group ("1").
        let project_to = |kind: &'static str, with: &'static str| {
            let form = [("path", "/Project"), ("shareType", kind), ("shareWith", with)];
            let form: Vec<_> = form.into_iter().chain([("permissions", "1")]).collect();
            let s = &s;
            async move { share(s, "bob", &form).await }
        };
        assert_eq!(get("dave", &dave).await.unwrap().status().as_u16(), 404);
        let given = project_to("0", "dave").await;
        let r = get("dave", &dave).await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{b:?}");
        assert_eq!(r.text().await.unwrap(), "hello from bob");
        let id = given["id"].as_str().map(str::to_owned).unwrap_or_else(|| given["id"].to_string());
        assert_eq!(ocs(&s, "bob", "DELETE", &format!("/shares/{id}"), &[]).await.0, 200);
        assert_eq!(get("dave", &dave).await.unwrap().status().as_u16(), 404);
        // Through a group: carol is in the team, dave joins it later.
        assert_eq!(get("carol", &carol).await.unwrap().status().as_u16(), 404);
        project_to("1", "team").await;
        assert_eq!(get("carol", &carol).await.unwrap().status().as_u16(), 200);
        assert_eq!(get("dave", &dave).await.unwrap().status().as_u16(), 404);
        // The command line is another process: a connection that verified
        // the app password a moment ago takes it again for up to a quarter
        // of a second (`http/recall.rs`), with what it knew of the account.
        s.cli_ok(&["group", "adduser", "team", "dave"]);
        let added = std::time::Instant::now();
        while get("dave", &dave).await.unwrap().status().as_u16() == 404 {
            assert!(added.elapsed() < std::time::Duration::from_millis(250), "{b:?}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(get("dave", &dave).await.unwrap().status().as_u16(), 200);
        let (code, listing) =
            text(s.dav("PROPFIND", "dave", &dave, "/").header("Depth", "1").send().await.unwrap())
                .await;
        assert_eq!(code, 207);
        assert!(listing.contains("/dave/Project/"), "{listing}");
        s.stop().await;
    }
}

#[tokio::test]
async fn group_shares_follow_membership_and_reshares_stay_within_what_was_received() {
    for b in backends() {
        let s = start(b).await;
        setup(&s).await;
        share(
            &s,
            "bob",
            &[
                ("path", "/Project"),
                ("shareType", "1"),
                ("shareWith", "team"),
                ("permissions", "17"),
            ],
        )
        .await;
        assert_eq!(
            s.dav("GET", "carol", &pw("carol"), "/Project/readme.txt")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
        assert_eq!(
            s.dav("GET", "dave", &pw("dave"), "/Project/readme.txt")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            404
        );
        s.cli_ok(&["group", "adduser", "team", "dave"]);
        assert_eq!(
            s.dav("GET", "dave", &pw("dave"), "/Project/readme.txt")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
        s.cli_ok(&["group", "removeuser", "team", "dave"]);
        assert_eq!(
            s.dav("GET", "dave", &pw("dave"), "/Project/readme.txt")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            404
        );

        // carol holds read+share (17): she may reshare read-only, nothing more (C011).
        for (form, code) in [
            (
                vec![
                    ("path", "/Project"),
                    ("shareType", "0"),
                    ("shareWith", "alice"),
                    ("permissions", "31"),
                ],
                404,
            ),
            (vec![("path", "/Project"), ("shareType", "3"), ("publicUpload", "true")], 404),
            (vec![("path", "/Project"), ("shareType", "3"), ("permissions", "4")], 404),
        ] {
            let (http, v) = ocs(&s, "carol", "POST", "/shares", &form).await;
            assert_eq!(http, code, "{form:?}: {v}");
        }
        let re = share(
            &s,
            "carol",
            &[
                ("path", "/Project"),
                ("shareType", "0"),
                ("shareWith", "alice"),
                ("permissions", "1"),
            ],
        )
        .await;
        assert_eq!(
            (re["uid_owner"].as_str(), re["uid_file_owner"].as_str()),
            (Some("carol"), Some("bob"))
        );
        let link = share(&s, "carol", &[("path", "/Project/readme.txt"), ("shareType", "3")]).await;
        for (id, form) in [
            (re["id"].as_str().unwrap(), vec![("permissions", "15")]),
            (link["id"].as_str().unwrap(), vec![("permissions", "15")]),
            (link["id"].as_str().unwrap(), vec![("publicUpload", "true")]),
        ] {
            let (http, v) = ocs(&s, "carol", "PUT", &format!("/shares/{id}"), &form).await;
            assert!(matches!(http, 400 | 403 | 404), "reshare raised with {form:?}: {v}");
        }
        let (_, v) =
            ocs(&s, "carol", "GET", &format!("/shares/{}", re["id"].as_str().unwrap()), &[]).await;
        assert_eq!(v["ocs"]["data"][0]["permissions"], 1);
        // alice, the reshare's recipient, cannot change it.
        let (http, _) = ocs(
            &s,
            "alice",
            "PUT",
            &format!("/shares/{}", re["id"].as_str().unwrap()),
            &[("permissions", "1")],
        )
        .await;
        assert_eq!(http, 403);
        assert_eq!(
            s.dav("GET", "alice", &pw("alice"), "/Project/readme.txt")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
        // When carol leaves the group, what she reshared stops working too.
        s.cli_ok(&["group", "removeuser", "team", "carol"]);
        assert_eq!(
            s.dav("GET", "alice", &pw("alice"), "/Project/readme.txt")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            404
        );
        let token = link["token"].as_str().unwrap();
        assert_eq!(
            s.client.get(s.url(&format!("/s/{token}"))).send().await.unwrap().status().as_u16(),
            404
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn the_command_line_lists_deletes_and_sets_policy_and_the_audit_log_records_shares() {
    let s = start(backends()[0]).await;
    setup(&s).await;
    let sh =
        share(&s, "bob", &[("path", "/Project"), ("shareType", "0"), ("shareWith", "alice")]).await;
    let link = share(
        &s,
        "bob",
        &[("path", "/Project"), ("shareType", "3"), ("password", "Link-Pass-9876")],
    )
    .await;
    let (out, _) = s.cli_ok(&["share", "list"]);
    let token = link["token"].as_str().unwrap();
    let shown = format!("\t{}…\t", &token[..5]);
    assert!(out.contains("\tuser\tbob\tbob\t") && out.contains(&shown), "{out}");
    assert!(!out.contains(token), "the command line prints whole link tokens: {out}");
    let (out, _) = s.cli_ok(&["share", "list", "--user", "alice"]);
    assert_eq!(out.lines().count(), 1, "alice made and owns no share: {out}");
    s.cli_ok(&["share", "delete", sh["id"].as_str().unwrap()]);
    assert_eq!(
        s.dav("GET", "alice", &pw("alice"), "/Project/readme.txt")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let out = s.command().args(["share", "delete", "424242"]).output().unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no such share")
    );

    let (out, _) = s.cli_ok(&[
        "sharing",
        "policy",
        "--set",
        "allow_links=false",
        "--set",
        "link_expire_days=3",
    ]);
    assert!(
        out.contains("\"allow_links\": false") && out.contains("\"link_expire_days\": 3"),
        "{out}"
    );
    for bad in ["allow_links=perhaps", "no_such_key=1", "default_permissions=4"] {
        let out = s.command().args(["sharing", "policy", "--set", bad]).output().unwrap();
        assert!(!out.status.success(), "{bad} was accepted");
    }
    let r = s
        .client
        .get(s.url("/ocs/v2.php/cloud/capabilities?format=json"))
        .basic_auth("bob", Some(pw("bob")))
        .header("OCS-APIRequest", "true")
        .send()
        .await
        .unwrap();
    let caps: Value = r.json().await.unwrap();
    let fs = &caps["ocs"]["data"]["capabilities"]["files_sharing"];
    assert_eq!(
        (fs["api_enabled"].as_bool(), fs["public"]["enabled"].as_bool()),
        (Some(true), Some(false)),
        "{fs}"
    );
    let (code, _) =
        ocs(&s, "bob", "POST", "/shares", &[("path", "/Project"), ("shareType", "3")]).await;
    assert_eq!(code, 404);

    // A wrong link password and a public access, then the log.
    s.cli_ok(&["sharing", "policy", "--set", "allow_links=true"]);
    let token = link["token"].as_str().unwrap();
    let r = s
        .client
        .request(
            Method::from_bytes(b"PROPFIND").unwrap(),
            s.url(&format!("/public.php/dav/files/{token}/")),
        )
        .basic_auth("x", Some("wrong-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = s
        .client
        .request(
            Method::from_bytes(b"PROPFIND").unwrap(),
            s.url(&format!("/public.php/dav/files/{token}/")),
        )
        .basic_auth("x", Some("Link-Pass-9876"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 207);
    let log = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
    for action in [
        "share.created",
        "share.deleted",
        "sharing.policy",
        "share.password_failed",
        "share.public_access",
    ] {
        assert!(
            log.contains(&format!("\"action\":\"{action}\"")),
            "{action} missing from the audit log:\n{log}"
        );
    }
    assert!(
        !log.contains("Link-Pass-9876") && !log.contains("wrong-password"),
        "a password reached the audit log"
    );
    s.stop().await;
}

#[tokio::test]
async fn sharees_offer_whom_the_policy_lets_one_share_with() {
    let s = start(backends()[0]).await;
    setup(&s).await;
    let (code, v) =
        ocs(&s, "bob", "GET", "/sharees", &[("search", "a"), ("itemType", "folder")]).await;
    assert_eq!(code, 200, "{v}");
    let d = &v["ocs"]["data"];
    let uids: Vec<&str> = d["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["value"]["shareWith"].as_str().unwrap())
        .collect();
    assert!(
        uids.contains(&"alice")
            && uids.contains(&"dave")
            && uids.contains(&"carol")
            && !uids.contains(&"bob"),
        "{d}"
    );
    let gids: Vec<&str> = d["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"]["shareWith"].as_str().unwrap())
        .collect();
    assert!(gids.contains(&"team"), "{d}");
    let (_, v) = ocs(&s, "bob", "GET", "/sharees", &[("search", "alice")]).await;
    assert_eq!(v["ocs"]["data"]["exact"]["users"][0]["value"]["shareWith"], "alice");
    // Within one's groups only: bob shares no group with anybody yet.
    s.cli_ok(&["sharing", "policy", "--set", "only_share_with_group_members=true"]);
    let (_, v) = ocs(&s, "bob", "GET", "/sharees", &[("search", "")]).await;
    assert_eq!(v["ocs"]["data"]["users"], serde_json::json!([]), "{v}");
    assert_eq!(v["ocs"]["data"]["groups"], serde_json::json!([]), "{v}");
    s.cli_ok(&["group", "adduser", "team", "bob"]);
    let (_, v) = ocs(&s, "bob", "GET", "/sharees", &[("search", "")]).await;
    let d = &v["ocs"]["data"];
    assert_eq!(d["users"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["users"][0]["value"]["shareWith"], "carol");
    assert_eq!(ocs(&s, "bob", "GET", "/sharees", &[("perPage", "0")]).await.0, 400);
    s.stop().await;
}

/// A chunked upload of `alice` (upload id `id`) moved to `dest` under her files.
async fn chunked(s: &Server, id: &str, dest: &str, if_etag: Option<&str>) -> u16 {
    let req = |m: &str, p: &str| {
        s.client
            .request(
                Method::from_bytes(m.as_bytes()).unwrap(),
                s.url(&format!("/remote.php/dav/uploads/alice/{id}{p}")),
            )
            .basic_auth("alice", Some(pw("alice")))
    };
    assert_eq!(req("MKCOL", "").send().await.unwrap().status().as_u16(), 201);
    for (n, part) in
        ["0000000000000001", "0000000000000002"].iter().zip(["first half ", "second half"])
    {
        assert_eq!(
            req("PUT", &format!("/{n}")).body(part).send().await.unwrap().status().as_u16(),
            201
        );
    }
    let dest = s.url(&format!("/remote.php/dav/files/alice{dest}"));
    let mut r = req("MOVE", "/.file").header("Destination", &dest).header("OC-Total-Length", "22");
    if let Some(e) = if_etag {
        r = r.header("If", format!("<{dest}> ([\"{e}\"])"));
    }
    r.send().await.unwrap().status().as_u16()
}

/// The MKCOL that begins a chunking-v2 upload of `alice` bound for `dest`.
async fn begin_v2(s: &Server, id: &str, dest: &str) -> u16 {
    let r = s
        .client
        .request(
            Method::from_bytes(b"MKCOL").unwrap(),
            s.url(&format!("/remote.php/dav/uploads/alice/{id}")),
        )
        .basic_auth("alice", Some(pw("alice")))
        .header("Destination", s.url(&format!("/remote.php/dav/files/alice{dest}")))
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn chunked_uploads_land_in_a_received_share_within_its_permissions() {
    for b in backends() {
        let s = start(b).await;
        setup(&s).await;
        let sh = share(
            &s,
            "bob",
            &[
                ("path", "/Project"),
                ("shareType", "0"),
                ("shareWith", "alice"),
                ("permissions", "1"),
            ],
        )
        .await;
        assert_eq!(
            chunked(&s, "ro", "/Project/big.bin", None).await,
            403,
            "read-only share took a chunked upload"
        );
        // Chunking v2 names the Destination when it begins: refused there.
        assert_eq!(begin_v2(&s, "ro-v2", "/Project/big.bin").await, 403);
        let id = sh["id"].as_str().unwrap();
        // Update without create: an existing file may be replaced, no new one added.
        assert_eq!(
            ocs(&s, "bob", "PUT", &format!("/shares/{id}"), &[("permissions", "3")]).await.0,
            200
        );
        assert_eq!(begin_v2(&s, "update-v2", "/Project/readme.txt").await, 201);
        assert_eq!(begin_v2(&s, "create-v2", "/Project/big.bin").await, 403);
        assert_eq!(
            ocs(&s, "bob", "PUT", &format!("/shares/{id}"), &[("permissions", "7")]).await.0,
            200
        );
        assert_eq!(begin_v2(&s, "rw-v2", "/Project/big.bin").await, 201);
        assert_eq!(chunked(&s, "rw", "/Project/big.bin", None).await, 201);
        let r = s.dav("GET", "bob", &pw("bob"), "/Project/big.bin").send().await.unwrap();
        assert_eq!(text(r).await, (200, "first half second half".to_owned()));
        // Replacing with the wrong ETag in the If header is a 412; with the right one it works.
        assert_eq!(chunked(&s, "stale", "/Project/big.bin", Some("not-the-etag")).await, 412);
        let (_, body) = propfind(&s, "bob", "/Project/big.bin", "0").await;
        let etag = body
            .split("<d:getetag>&quot;")
            .nth(1)
            .unwrap()
            .split("&quot;")
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(chunked(&s, "fresh", "/Project/big.bin", Some(&etag)).await, 204);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_share_sleeps_while_its_file_is_in_the_trash_and_goes_with_the_purge() {
    let mut s = start(backends()[0]).await;
    setup(&s).await;
    share(
        &s,
        "bob",
        &[("path", "/Project/readme.txt"), ("shareType", "0"), ("shareWith", "alice")],
    )
    .await;
    let alice_reads = |s: &Server| {
        let r = s.dav("GET", "alice", &pw("alice"), "/readme.txt");
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(alice_reads(&s).await, 200);
    assert_eq!(
        s.dav("DELETE", "bob", &pw("bob"), "/Project/readme.txt")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    assert_eq!(alice_reads(&s).await, 404, "a file in the owner's trash is still shared");
    let (out, _) = s.cli_ok(&["share", "list"]);
    assert!(out.lines().nth(1).is_some_and(|l| l.ends_with("\tno")), "{out}");
    let trash = s.url("/remote.php/dav/trashbin/bob/trash");
    let r = s.client.delete(trash).basic_auth("bob", Some(pw("bob"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    // The clean-up runs at start and then periodically.
    s.restart().await;
    let (out, _) = s.cli_ok(&["share", "list"]);
    assert_eq!(out.lines().count(), 1, "the share of a purged file is left behind: {out}");
    s.stop().await;
}

#[tokio::test]
async fn a_folder_never_copies_into_itself_through_two_shares_of_its_owner() {
    let s = start(backends()[0]).await;
    setup(&s).await;
    put(&s, "bob", "/Project/sub/", None).await;
    for path in ["/Project", "/Project/sub"] {
        share(
            &s,
            "bob",
            &[("path", path), ("shareType", "0"), ("shareWith", "alice"), ("permissions", "31")],
        )
        .await;
    }
    // alice sees both: /Project and /sub (the same folder as /Project/sub).
    let dest = s.url("/remote.php/dav/files/alice/sub/copy-of-project");
    let r = s
        .dav("COPY", "alice", &pw("alice"), "/Project")
        .header("Destination", &dest)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = s
        .dav("MOVE", "alice", &pw("alice"), "/Project/readme.txt")
        .header("Destination", s.url("/remote.php/dav/files/alice/sub/readme.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "a move between two shares of one owner");
    let r = s.dav("GET", "bob", &pw("bob"), "/Project/sub/readme.txt").send().await.unwrap();
    assert_eq!(text(r).await, (200, "hello from bob".to_owned()));
    s.stop().await;
}

/// A favourite is its user's own: a recipient who marks a shared file, even
/// in a read-only share, changes nothing for its owner, and the owner's
/// marks are not the recipient's (they were one dead property of the file,
/// which every user who saw it shared and could change).
#[tokio::test]
async fn favourites_are_each_users_own() {
    let s = Server::start(crate::harness::Backend::Sqlite).await;
    setup(&s).await;
    let read_only =
        [("path", "/Project"), ("shareType", "0"), ("shareWith", "alice"), ("permissions", "1")];
    share(&s, "bob", &read_only).await;
    let mark = |user: &'static str, path: &'static str, value: &'static str| {
        let body = format!(
            r#"<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:set><d:prop><oc:favorite>{value}</oc:favorite></d:prop></d:set></d:propertyupdate>"#
        );
        let rq = s.dav("PROPPATCH", user, &pw(user), path).body(body);
        async move {
            let (code, xml) = text(rq.send().await.unwrap()).await;
            assert_eq!(code, 207, "{user} {path}: {xml}");
            assert!(xml.contains("HTTP/1.1 200"), "{user} {path}: {xml}");
        }
    };
    let favorite = |user: &'static str, path: &'static str| {
        let body = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:favorite/></d:prop></d:propfind>"#;
        let rq = s.dav("PROPFIND", user, &pw(user), path).header("Depth", "0").body(body);
        async move {
            let (code, xml) = text(rq.send().await.unwrap()).await;
            assert_eq!(code, 207, "{user} {path}: {xml}");
            let value = xml.split("<oc:favorite>").nth(1).and_then(|r| r.split('<').next());
            value.unwrap_or_else(|| panic!("no oc:favorite: {xml}")).to_owned()
        }
    };
    mark("alice", "/Project/readme.txt", "1").await;
    assert_eq!(favorite("alice", "/Project/readme.txt").await, "1");
    assert_eq!(favorite("bob", "/Project/readme.txt").await, "0", "alice's mark is not bob's");
    mark("bob", "/Project", "1").await;
    assert_eq!(favorite("bob", "/Project").await, "1");
    assert_eq!(favorite("alice", "/Project").await, "0", "bob's mark is not alice's");
    mark("alice", "/Project/readme.txt", "0").await;
    assert_eq!(favorite("alice", "/Project/readme.txt").await, "0");
    assert_eq!(favorite("bob", "/Project").await, "1", "alice cannot unmark bob's");
    let report = r#"<?xml version="1.0"?><oc:filter-files xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><oc:filter-rules><oc:favorite>1</oc:favorite></oc:filter-rules></oc:filter-files>"#;
    let r = s.dav("REPORT", "bob", &pw("bob"), "/").body(report).send().await.unwrap();
    let (code, xml) = text(r).await;
    assert_eq!(code, 207, "{xml}");
    assert_eq!(xml.matches("<d:href>").count(), 1, "{xml}");
    assert!(xml.contains("/remote.php/dav/files/bob/Project/"), "{xml}");

    // The received share itself, marked, shows its mark in the listing of
    // the folder it is mounted in.
    mark("alice", "/Project", "1").await;
    let listing = s.dav("PROPFIND", "alice", &pw("alice"), "/").header("Depth", "1").body(
        r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:favorite/></d:prop></d:propfind>"#,
    );
    let (_, xml) = text(listing.send().await.unwrap()).await;
    let entry = xml.split("<d:response>").find(|r| r.contains("/alice/Project/")).expect(&xml);
    assert!(entry.contains("<oc:favorite>1</oc:favorite>"), "{entry}");

    // Through a writable link nobody has favourites, and a request that
    // asks for one changes nothing else either.
    let link =
        share(&s, "bob", &[("path", "/Project"), ("shareType", "3"), ("permissions", "15")]).await;
    let token = link["token"].as_str().unwrap();
    let body = r#"<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:x="urn:x"><d:set><d:prop><x:note>from the link</x:note><oc:favorite>1</oc:favorite></d:prop></d:set></d:propertyupdate>"#;
    let r = s
        .client
        .request(
            Method::from_bytes(b"PROPPATCH").unwrap(),
            s.url(&format!("/public.php/dav/files/{token}/readme.txt")),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let ask = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:x="urn:x"><d:prop><x:note/></d:prop></d:propfind>"#;
    let r =
        s.dav("PROPFIND", "bob", &pw("bob"), "/Project/readme.txt").header("Depth", "0").body(ask);
    let (_, xml) = text(r.send().await.unwrap()).await;
    assert!(!xml.contains("from the link"), "the refused request changed a property: {xml}");
    s.stop().await;
}

/// A file shared on its own is a file at its recipient's URL too: its href
/// has no trailing slash, in its folder's listing and in its own PROPFIND
/// (clients match the two), while a shared folder keeps its slash. The same
/// for a public link to a single file.
#[tokio::test]
async fn a_file_shared_on_its_own_has_a_files_href() {
    let s = start(crate::harness::Backend::Sqlite).await;
    setup(&s).await;
    put(&s, "bob", "/file.txt", Some("x")).await;
    share(&s, "bob", &[("path", "/file.txt"), ("shareType", "0"), ("shareWith", "alice")]).await;
    share(&s, "bob", &[("path", "/Project"), ("shareType", "0"), ("shareWith", "alice")]).await;
    let hrefs = |body: &str| -> Vec<String> {
        body.split("<d:href>")
            .skip(1)
            .map(|h| h.split("</d:href>").next().unwrap().to_owned())
            .collect()
    };
    let own = "/remote.php/dav/files/alice";
    let (code, listing) = propfind(&s, "alice", "/", "1").await;
    assert_eq!(code, 207);
    let listed = hrefs(&listing);
    assert!(listed.contains(&format!("{own}/file.txt")), "{listed:?}");
    assert!(listed.contains(&format!("{own}/Project/")), "{listed:?}");
    for (path, want) in [("/file.txt", "/file.txt"), ("/Project", "/Project/")] {
        let (code, body) = propfind(&s, "alice", path, "0").await;
        assert_eq!(code, 207);
        assert_eq!(hrefs(&body), vec![format!("{own}{want}")], "{path}");
    }
    let link = share(&s, "bob", &[("path", "/file.txt"), ("shareType", "3")]).await;
    let public = format!("/public.php/dav/files/{}", link["token"].as_str().unwrap());
    let r = s.client.request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), s.url(&public));
    let (code, body) = text(r.header("Depth", "0").send().await.unwrap()).await;
    assert_eq!(code, 207);
    assert_eq!(hrefs(&body), vec![public]);
    s.stop().await;
}
