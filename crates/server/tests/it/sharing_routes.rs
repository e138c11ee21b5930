//! Each protection of a share, checked on every route to the shared content:
//! the link page, its download and view endpoints, public WebDAV (new and
//! legacy), and for user shares the recipient's WebDAV tree, versions and
//! trash. A protection that holds on one route and not another is the
//! fault these tests exist to catch, so every route must answer alike.

use std::process::Command;

use reqwest::Method;

use crate::{
    harness::{Server, backends, temp_dir, text},
    sharing::{ocs, propfind, put, pw, setup, share, start},
    sync_fixtures::rclone_debian,
};

/// The answers of every public route of a link, by route name. `file` is the
/// path of a file below the link's root ("" when the link is a file).
async fn public_routes(
    s: &Server,
    token: &str,
    file: &str,
    password: Option<&str>,
) -> Vec<(&'static str, u16)> {
    let mut out = Vec::new();
    let q = format!("?path={}", file.replace('/', "%2F"));
    for (name, path) in [
        ("page", format!("/s/{token}")),
        ("download", format!("/s/{token}/download{q}")),
        ("view", format!("/s/{token}/view{q}")),
    ] {
        out.push((name, s.client.get(s.url(&path)).send().await.unwrap().status().as_u16()));
    }
    let dav = |method: &str, path: String, user: &str| {
        let r = s
            .client
            .request(Method::from_bytes(method.as_bytes()).unwrap(), s.url(&path))
            .header("Depth", "1");
        match password {
            Some(p) => r.basic_auth(user, Some(p)),
            None if user == token => r.basic_auth(user, Some("")),
            None => r,
        }
    };
    let base = format!("/public.php/dav/files/{token}");
    out.push((
        "dav-list",
        dav("PROPFIND", format!("{base}/"), "anonymous").send().await.unwrap().status().as_u16(),
    ));
    out.push((
        "dav-get",
        dav("GET", format!("{base}{file}"), "anonymous").send().await.unwrap().status().as_u16(),
    ));
    out.push((
        "legacy-list",
        dav("PROPFIND", "/public.php/webdav/".into(), token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    ));
    out
}

fn all(routes: &[(&'static str, u16)], want: u16, what: &str) {
    assert!(
        routes.iter().all(|(_, c)| *c == want),
        "{what}: every route must answer {want}: {routes:?}"
    );
}

/// alice's routes to bob's shared `/Project/readme.txt`: her tree, the
/// listing of her root (200 when the mount is listed), versions, trash.
async fn recipient_routes(s: &Server, file_id: &str) -> Vec<(&'static str, u16)> {
    let get = s
        .dav("GET", "alice", &pw("alice"), "/Project/readme.txt")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let (_, root) = propfind(s, "alice", "/", "1").await;
    let listed = if root.contains("/alice/Project/") { 200 } else { 404 };
    let versions = s
        .client
        .request(
            Method::from_bytes(b"PROPFIND").unwrap(),
            s.url(&format!("/remote.php/dav/versions/alice/versions/{file_id}")),
        )
        .basic_auth("alice", Some(pw("alice")))
        .header("Depth", "1")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let versions = if versions == 207 { 200 } else { versions };
    vec![("dav-get", get), ("listed", listed), ("versions", versions)]
}

async fn file_id(s: &Server, user: &str, path: &str) -> String {
    let (_, body) = propfind(s, user, path, "0").await;
    body.split("<oc:fileid>").nth(1).unwrap().split('<').next().unwrap().to_owned()
}

/// A day boundary well in the past, as stored (seconds).
const LONG_AGO: i64 = 1_600_000_000;

#[tokio::test]
async fn expired_shares_are_gone_on_every_route_whatever_the_cleanup() {
    for b in backends() {
        let s = start(b).await;
        setup(&s).await;
        put(&s, "bob", "/Project/readme.txt", Some("second version")).await;
        let id = file_id(&s, "bob", "/Project/readme.txt").await;
        let tomorrow = tomorrow();
        let user = share(
            &s,
            "bob",
            &[
                ("path", "/Project"),
                ("shareType", "0"),
                ("shareWith", "alice"),
                ("expireDate", &tomorrow),
            ],
        )
        .await;
        assert_eq!(user["expiration"].as_str(), Some(format!("{tomorrow} 00:00:00").as_str()));
        let link = share(
            &s,
            "bob",
            &[("path", "/Project"), ("shareType", "3"), ("expireDate", &tomorrow)],
        )
        .await;
        let token = link["token"].as_str().unwrap();
        let open = public_routes(&s, token, "/readme.txt", None).await;
        assert_eq!(
            open,
            vec![
                ("page", 200),
                ("download", 200),
                ("view", 200),
                ("dav-list", 207),
                ("dav-get", 200),
                ("legacy-list", 207)
            ]
        );
        all(&recipient_routes(&s, &id).await, 200, "before expiry");
        // The recipient cannot push the date out (C012).
        let (code, _) = ocs(
            &s,
            "alice",
            "PUT",
            &format!("/shares/{}", user["id"].as_str().unwrap()),
            &[("expireDate", "2099-01-01")],
        )
        .await;
        assert_eq!(code, 403);

        s.sql(&format!("UPDATE shares SET expires_at = {LONG_AGO}")).await;
        all(&public_routes(&s, token, "/readme.txt", None).await, 404, "expired link");
        all(&recipient_routes(&s, &id).await, 404, "expired user share");
        // Not listed for the recipient either, and not reachable by a reshare.
        let (_, v) = ocs(&s, "alice", "GET", "/shares", &[("shared_with_me", "true")]).await;
        assert_eq!(v["ocs"]["data"], serde_json::json!([]));
        s.stop().await;
    }
}

fn tomorrow() -> String {
    let today = strongroom_core::sharing::day_start(strongroom_core::now_secs());
    strongroom_core::sharing::format_date(today + 86_400)[..10].to_owned()
}

#[tokio::test]
async fn a_link_password_is_asked_on_every_route_and_guessing_is_throttled() {
    let env = [
        ("STRONGROOM_BRUTEFORCE_MAX_ATTEMPTS", "6"),
        ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
        ("STRONGROOM_BRUTEFORCE_MAX_DELAY_MS", "5"),
    ];
    for b in backends() {
        let s = Server::start_with(b, &env).await;
        setup(&s).await;
        let link = share(
            &s,
            "bob",
            &[("path", "/Project"), ("shareType", "3"), ("password", "Link-Pass-9876")],
        )
        .await;
        let token = link["token"].as_str().unwrap();
        assert_eq!(link["password"], serde_json::Value::Null, "the password hash is sent: {link}");
        let none = public_routes(&s, token, "/readme.txt", None).await;
        assert_eq!(
            none,
            vec![
                ("page", 401),
                ("download", 401),
                ("view", 401),
                ("dav-list", 401),
                ("dav-get", 401),
                ("legacy-list", 401)
            ]
        );
        let wrong = public_routes(&s, token, "/readme.txt", Some("not-the-password")).await;
        assert!(
            wrong
                .iter()
                .filter(|(n, _)| n.starts_with("dav") || n.starts_with("legacy"))
                .all(|(_, c)| *c == 401),
            "{wrong:?}"
        );
        let right = public_routes(&s, token, "/readme.txt", Some("Link-Pass-9876")).await;
        assert!(
            right
                .iter()
                .filter(|(n, _)| n.starts_with("dav") || n.starts_with("legacy"))
                .all(|(_, c)| *c == 207 || *c == 200),
            "{right:?}"
        );

        // The page: a wrong password is refused; the right one lets the browser in.
        let browser =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let auth = s.url(&format!("/s/{token}/authenticate"));
        let r = browser.post(&auth).form(&[("password", "nope-nope-nope")]).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        let r = browser.post(&auth).form(&[("password", "Link-Pass-9876")]).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303);
        let cookie =
            r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let download = s.url(&format!("/s/{token}/download?path=%2Freadme.txt"));
        let r = browser.get(&download).header("Cookie", &cookie).send().await.unwrap();
        assert_eq!(r.headers()["accept-ranges"], "bytes");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(text(r).await, (200, "hello from bob".to_owned()));
        // A download can resume: one range, also under an If-Range that
        // still holds; a stale If-Range gets the whole file.
        let get = |range: &'static str, if_range: &str| {
            let r = browser.get(&download).header("Cookie", &cookie).header("Range", range);
            if if_range.is_empty() { r } else { r.header("If-Range", if_range) }
        };
        let r = get("bytes=6-", "").send().await.unwrap();
        assert_eq!(r.headers()["content-range"], "bytes 6-13/14");
        assert_eq!(text(r).await, (206, "from bob".to_owned()));
        let r = get("bytes=-3", &etag).send().await.unwrap();
        assert_eq!(text(r).await, (206, "bob".to_owned()));
        let r = get("bytes=0-4", "\"stale\"").send().await.unwrap();
        assert_eq!(text(r).await, (200, "hello from bob".to_owned()));
        // If-Range compares strongly: the current tag made weak is stale.
        let weak = format!("W/{etag}");
        let r = get("bytes=0-4", &weak).send().await.unwrap();
        assert_eq!(text(r).await, (200, "hello from bob".to_owned()));
        let r = get("bytes=99-", "").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 416);
        assert_eq!(r.headers()["content-range"], "bytes */14");
        // The same pass opens public DAV (the page's uploads go there).
        let r = browser
            .request(
                Method::from_bytes(b"PROPFIND").unwrap(),
                s.url(&format!("/public.php/dav/files/{token}/")),
            )
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 207);
        // The pass is bound to the password: changing it shuts the browser out.
        let (code, _) = ocs(
            &s,
            "bob",
            "PUT",
            &format!("/shares/{}", link["id"].as_str().unwrap()),
            &[("password", "Other-Pass-5432")],
        )
        .await;
        assert_eq!(code, 200);
        let r = browser.get(&download).header("Cookie", &cookie).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);

        // Guessing: after the budget every attempt is refused, even the right password.
        let mut last = 0;
        for _ in 0..8 {
            last = browser
                .post(&auth)
                .form(&[("password", "guess-guess-guess")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
        }
        assert_eq!(last, 429);
        let r = s
            .client
            .request(
                Method::from_bytes(b"PROPFIND").unwrap(),
                s.url(&format!("/public.php/dav/files/{token}/")),
            )
            .basic_auth("x", Some("Other-Pass-5432"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 429, "the throttle must cover public DAV too");
        // Another address with the right password is slowed, not locked out:
        // guesses from one place must not close the link for everyone.
        let elsewhere = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .build()
            .unwrap();
        let r = elsewhere
            .request(
                Method::from_bytes(b"PROPFIND").unwrap(),
                s.url(&format!("/public.php/dav/files/{token}/")),
            )
            .basic_auth("x", Some("Other-Pass-5432"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 207);
        let r = elsewhere
            .request(
                Method::from_bytes(b"PROPFIND").unwrap(),
                s.url(&format!("/public.php/dav/files/{token}/")),
            )
            .basic_auth("x", Some("still-a-guess"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_hidden_download_is_refused_by_every_download_route() {
    let s = start(backends()[0]).await;
    setup(&s).await;
    let link =
        share(&s, "bob", &[("path", "/Project"), ("shareType", "3"), ("hideDownload", "true")])
            .await;
    assert_eq!(link["hide_download"], 1);
    let token = link["token"].as_str().unwrap();
    let routes = public_routes(&s, token, "/readme.txt", None).await;
    assert_eq!(
        routes,
        vec![
            ("page", 200),
            ("download", 403),
            ("view", 200),
            ("dav-list", 207),
            ("dav-get", 403),
            ("legacy-list", 207)
        ]
    );
    let page =
        s.client.get(s.url(&format!("/s/{token}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/view?path=") && !page.contains("/download?path="), "{page}");
    let r =
        s.client.get(s.url(&format!("/s/{token}/view?path=%2Freadme.txt"))).send().await.unwrap();
    assert_eq!(
        r.headers()["content-disposition"].to_str().unwrap().split(';').next(),
        Some("inline")
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    // A type the browser would only save is not viewable either.
    put(&s, "bob", "/Project/data.bin", Some("\u{0}\u{1}binary")).await;
    let r = s.client.get(s.url(&format!("/s/{token}/view?path=%2Fdata.bin"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    s.stop().await;
}

/// `/s/TOKEN/view` renders only what the browser shows with a viewer of its
/// own (images, PDF, plain text). An uploaded HTML page comes as a download
/// under a policy that admits nothing, never as a page of this server's
/// origin (a styled phishing page under the server's name).
#[tokio::test]
async fn a_links_view_never_renders_html() {
    let s = start(crate::harness::Backend::Sqlite).await;
    setup(&s).await;
    let page = "<html><body style='color:red'><form>Password: <input></form></body></html>";
    put(&s, "bob", "/Project/login.html", Some(page)).await;
    let link = share(&s, "bob", &[("path", "/Project"), ("shareType", "3")]).await;
    let token = link["token"].as_str().unwrap();
    let get = |p: &str| s.client.get(s.url(&format!("/s/{token}/{p}"))).send();
    let r = get("view?path=%2Flogin.html").await.unwrap();
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert_eq!(r.headers()["content-security-policy"], "sandbox; default-src 'none'");
    let r = get("view?path=%2Freadme.txt").await.unwrap();
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("inline"), "{disposition}");
    let r = get("download?path=%2Freadme.txt").await.unwrap();
    assert_eq!(r.headers()["content-security-policy"], "sandbox; default-src 'none'");
    // With the download hidden, the page offers no link that would be refused.
    let hidden =
        share(&s, "bob", &[("path", "/Project"), ("shareType", "3"), ("hideDownload", "true")])
            .await;
    let page = s.client.get(s.url(&format!("/s/{}", hidden["token"].as_str().unwrap())));
    let page = page.send().await.unwrap().text().await.unwrap();
    assert!(page.contains("login.html (download disabled)"), "{page}");
    assert!(!page.contains("path=%2Flogin%2Ehtml") && page.contains("View readme.txt"), "{page}");
    s.stop().await;
}

#[tokio::test]
async fn a_file_drop_shows_nothing_and_overwrites_nothing() {
    for b in backends() {
        let s = start(b).await;
        setup(&s).await;
        put(&s, "bob", "/Inbox/", None).await;
        put(&s, "bob", "/Inbox/secret-report.pdf", Some("confidential")).await;
        let link =
            share(&s, "bob", &[("path", "/Inbox"), ("shareType", "3"), ("permissions", "4")]).await;
        assert_eq!(link["permissions"], 4);
        let token = link["token"].as_str().unwrap();
        let base = format!("/public.php/dav/files/{token}");
        let req = |m: &str, p: &str| {
            s.client
                .request(Method::from_bytes(m.as_bytes()).unwrap(), s.url(&format!("{base}{p}")))
        };
        let (code, listing) =
            text(req("PROPFIND", "/").header("Depth", "1").send().await.unwrap()).await;
        assert_eq!(code, 207);
        assert_eq!(
            listing.matches("<d:response>").count(),
            1,
            "a file drop lists its content: {listing}"
        );
        assert!(!listing.contains("secret"), "{listing}");
        // Existing and missing names answer alike, on every method.
        for m in ["GET", "HEAD", "PROPFIND", "DELETE", "MOVE", "LOCK", "PROPPATCH"] {
            let a = text(req(m, "/secret-report.pdf").send().await.unwrap()).await;
            let b = text(req(m, "/no-such-file.pdf").send().await.unwrap()).await;
            assert_eq!(a, b, "{m} tells an existing name from a missing one");
            assert_eq!(a.0, 404, "{m}");
        }
        assert_eq!(req("MKCOL", "/newdir").send().await.unwrap().status().as_u16(), 404);
        // Uploads: the taken name gets a new one; nothing is replaced.
        let a = req("PUT", "/secret-report.pdf")
            .body("from a stranger")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        let b = req("PUT", "/fresh.pdf").body("new").send().await.unwrap().status().as_u16();
        assert_eq!((a, b), (201, 201));
        let r = s.dav("GET", "bob", &pw("bob"), "/Inbox/secret-report.pdf").send().await.unwrap();
        assert_eq!(text(r).await, (200, "confidential".to_owned()));
        let r =
            s.dav("GET", "bob", &pw("bob"), "/Inbox/secret-report (2).pdf").send().await.unwrap();
        assert_eq!(text(r).await, (200, "from a stranger".to_owned()));
        // The page offers the upload and names nothing; downloads are refused.
        let page =
            s.client.get(s.url(&format!("/s/{token}"))).send().await.unwrap().text().await.unwrap();
        assert!(
            page.contains("type=\"file\"") && !page.contains("secret") && !page.contains("fresh"),
            "{page}"
        );
        let routes = public_routes(&s, token, "/secret-report.pdf", None).await;
        assert_eq!(
            routes,
            vec![
                ("page", 200),
                ("download", 404),
                ("view", 404),
                ("dav-list", 207),
                ("dav-get", 404),
                ("legacy-list", 207)
            ]
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn a_read_only_link_refuses_every_change() {
    let s = start(backends()[0]).await;
    setup(&s).await;
    let link = share(&s, "bob", &[("path", "/Project"), ("shareType", "3")]).await;
    let token = link["token"].as_str().unwrap();
    let req = |m: &str, p: &str| {
        s.client.request(
            Method::from_bytes(m.as_bytes()).unwrap(),
            s.url(&format!("/public.php/dav/files/{token}{p}")),
        )
    };
    let patch = r#"<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><x:k xmlns:x="urn:x">v</x:k></d:prop></d:set></d:propertyupdate>"#;
    for (m, p, body) in [
        ("PUT", "/new.txt", "x"),
        ("PUT", "/readme.txt", "x"),
        ("MKCOL", "/dir", ""),
        ("DELETE", "/readme.txt", ""),
        ("DELETE", "/", ""),
        ("PROPPATCH", "/readme.txt", patch),
    ] {
        let code = req(m, p).body(body).send().await.unwrap().status().as_u16();
        assert_eq!(code, 403, "{m} {p}");
    }
    let dest = s.url(&format!("/public.php/dav/files/{token}/moved.txt"));
    assert_eq!(
        req("MOVE", "/readme.txt")
            .header("Destination", dest)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    let page =
        s.client.get(s.url(&format!("/s/{token}"))).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("type=\"file\""), "a read-only link offers an upload: {page}");
    let r = s.dav("GET", "bob", &pw("bob"), "/Project/readme.txt").send().await.unwrap();
    assert_eq!(text(r).await, (200, "hello from bob".to_owned()));
    s.stop().await;
}

#[tokio::test]
async fn a_stricter_policy_holds_for_shares_that_already_exist() {
    for b in backends() {
        let s = start(b).await;
        setup(&s).await;
        let id = file_id(&s, "bob", "/Project/readme.txt").await;
        share(
            &s,
            "bob",
            &[
                ("path", "/Project"),
                ("shareType", "0"),
                ("shareWith", "alice"),
                ("permissions", "31"),
            ],
        )
        .await;
        let link = share(&s, "bob", &[("path", "/Project"), ("shareType", "3")]).await;
        let token = link["token"].as_str().unwrap().to_owned();
        let upload =
            share(&s, "bob", &[("path", "/Project"), ("shareType", "3"), ("publicUpload", "true")])
                .await;
        let up_token = upload["token"].as_str().unwrap().to_owned();
        let reshare = share(
            &s,
            "alice",
            &[
                ("path", "/Project"),
                ("shareType", "0"),
                ("shareWith", "dave"),
                ("permissions", "1"),
            ],
        )
        .await;
        assert_eq!(reshare["uid_file_owner"], "bob");
        let policy = |set: &str| s.cli_ok(&["sharing", "policy", "--set", set]);
        let dave_reads = || async {
            s.dav("GET", "dave", &pw("dave"), "/Project/readme.txt")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };

        policy("allow_links=false");
        all(&public_routes(&s, &token, "/readme.txt", None).await, 404, "links switched off");
        policy("allow_links=true");
        assert_eq!(public_routes(&s, &token, "/readme.txt", None).await[0], ("page", 200));

        policy("enforce_links_password=true");
        all(
            &public_routes(&s, &token, "/readme.txt", None).await,
            404,
            "password enforced, link has none",
        );
        let (code, _) =
            ocs(&s, "bob", "POST", "/shares", &[("path", "/Project"), ("shareType", "3")]).await;
        assert_eq!(code, 403);
        policy("enforce_links_password=false");

        policy("allow_public_upload=false");
        let put_up = s
            .client
            .put(s.url(&format!("/public.php/dav/files/{up_token}/x.txt")))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            put_up.status().as_u16(),
            403,
            "upload through a link after public upload was switched off"
        );
        assert_eq!(public_routes(&s, &up_token, "/readme.txt", None).await[4], ("dav-get", 200));
        policy("allow_public_upload=true");
        let put_up = s
            .client
            .put(s.url(&format!("/public.php/dav/files/{up_token}/x.txt")))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(put_up.status().as_u16(), 201);

        assert_eq!(dave_reads().await, 200);
        policy("allow_resharing=false");
        assert_eq!(dave_reads().await, 404, "a reshare outlives resharing being switched off");
        let (_, root) = propfind(&s, "alice", "/", "1").await;
        let entry = root.split("<d:response>").find(|r| r.contains("/alice/Project/")).unwrap();
        assert!(
            !entry.contains("<oc:permissions>SR"),
            "the share permission is still offered: {entry}"
        );
        policy("allow_resharing=true");

        // Sharing only within one's groups: bob and alice share none.
        policy("only_share_with_group_members=true");
        all(&recipient_routes(&s, &id).await, 404, "user share across groups");
        let (code, _) = ocs(
            &s,
            "bob",
            "POST",
            "/shares",
            &[("path", "/Project/readme.txt"), ("shareType", "0"), ("shareWith", "dave")],
        )
        .await;
        // The same answer as for an account that does not exist.
        assert_eq!(code, 404);
        policy("only_share_with_group_members=false");
        all(&recipient_routes(&s, &id).await, 200, "policy relaxed again");

        // bob's group is excluded from sharing: all his shares stop.
        s.cli_ok(&["group", "add", "contractors"]);
        s.cli_ok(&["group", "adduser", "contractors", "bob"]);
        s.cli_ok(&[
            "sharing",
            "policy",
            "--set",
            "exclude_mode=yes",
            "--set",
            "exclude_groups=contractors",
        ]);
        all(&recipient_routes(&s, &id).await, 404, "sharer in an excluded group");
        all(
            &public_routes(&s, &token, "/readme.txt", None).await,
            404,
            "sharer in an excluded group",
        );
        let (code, _) =
            ocs(&s, "bob", "POST", "/shares", &[("path", "/Project"), ("shareType", "3")]).await;
        assert_eq!(code, 403);
        policy("exclude_mode=no");

        // An enforced maximum lifetime also ends shares made long before it.
        s.sql(&format!("UPDATE shares SET created_at = {LONG_AGO}")).await;
        all(&recipient_routes(&s, &id).await, 200, "no maximum yet");
        s.cli_ok(&[
            "sharing",
            "policy",
            "--set",
            "enforce_internal_expire=true",
            "--set",
            "enforce_link_expire=true",
        ]);
        all(&recipient_routes(&s, &id).await, 404, "older than the enforced maximum");
        all(
            &public_routes(&s, &token, "/readme.txt", None).await,
            404,
            "older than the enforced maximum",
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn rclone_reads_a_read_only_link_and_fills_a_file_drop() {
    let rclone = rclone_debian();
    let s = start(backends()[0]).await;
    setup(&s).await;
    put(&s, "bob", "/Project/sub/", None).await;
    put(&s, "bob", "/Project/sub/deep.txt", Some("deep content")).await;
    put(&s, "bob", "/Inbox/", None).await;
    put(&s, "bob", "/Inbox/already-there.txt", Some("private")).await;
    let read = share(
        &s,
        "bob",
        &[("path", "/Project"), ("shareType", "3"), ("password", "Link-Pass-9876")],
    )
    .await;
    let drop =
        share(&s, "bob", &[("path", "/Inbox"), ("shareType", "3"), ("permissions", "4")]).await;
    let work = temp_dir("rclone-public");
    let run = |token: &str, password: &str, args: &[&str]| {
        let mut c = Command::new(&rclone);
        c.env("HOME", &work)
            .arg("--config")
            .arg(work.join("rclone.conf"))
            .args(["--webdav-url", &s.url(&format!("/public.php/dav/files/{token}"))])
            .args(["--webdav-vendor", "other"])
            .args(["--retries", "1", "--low-level-retries", "1"]);
        if !password.is_empty() {
            let obscured = Command::new(&rclone).args(["obscure", password]).output().unwrap();
            let obscured = String::from_utf8(obscured.stdout).unwrap().trim().to_owned();
            c.args(["--webdav-user", "anonymous", "--webdav-pass", &obscured]);
        }
        let out = c.args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let token = read["token"].as_str().unwrap();
    let (ok, out) = run(token, "Link-Pass-9876", &["lsf", "-R", ":webdav:"]);
    assert!(ok && out.contains("readme.txt") && out.contains("sub/deep.txt"), "{out}");
    let down = work.join("down");
    let (ok, out) = run(token, "Link-Pass-9876", &["copy", ":webdav:", down.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(down.join("sub/deep.txt")).unwrap(), "deep content");
    let local = work.join("upload.txt");
    std::fs::write(&local, "from rclone").unwrap();
    let (ok, out) =
        run(token, "Link-Pass-9876", &["copyto", local.to_str().unwrap(), ":webdav:upload.txt"]);
    assert!(!ok, "uploaded through a read-only link: {out}");
    let (ok, _) = run(token, "wrong-password-here", &["lsf", ":webdav:"]);
    assert!(!ok, "listed with a wrong password");

    let token = drop["token"].as_str().unwrap();
    let (ok, out) = run(token, "", &["copyto", local.to_str().unwrap(), ":webdav:upload.txt"]);
    assert!(ok, "{out}");
    let (ok, out) = run(token, "", &["lsf", ":webdav:"]);
    assert!(ok && !out.contains(".txt"), "a file drop listed its content: {out}");
    let r = s.dav("GET", "bob", &pw("bob"), "/Inbox/upload.txt").send().await.unwrap();
    assert_eq!(text(r).await, (200, "from rclone".to_owned()));
    let r = s.dav("GET", "bob", &pw("bob"), "/Inbox/already-there.txt").send().await.unwrap();
    assert_eq!(text(r).await, (200, "private".to_owned()));
    s.stop().await;
}

const LOCKINFO: &str = r#"<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockinfo>"#;

fn lock_token(r: &reqwest::Response) -> String {
    r.headers()["lock-token"].to_str().unwrap().trim_matches(|c| c == '<' || c == '>').to_owned()
}

#[tokio::test]
async fn locks_need_write_permission_and_never_shut_the_owner_out() {
    let s = start(backends()[0]).await;
    setup(&s).await;
    let link = share(&s, "bob", &[("path", "/Project"), ("shareType", "3")]).await;
    let token = link["token"].as_str().unwrap();
    let lock =
        |url: String| s.client.request(Method::from_bytes(b"LOCK").unwrap(), url).body(LOCKINFO);
    let r = lock(s.url(&format!("/public.php/dav/files/{token}/")))
        .header("Depth", "infinity")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "a read-only link took a lock");
    let sh = share(
        &s,
        "bob",
        &[("path", "/Project"), ("shareType", "0"), ("shareWith", "alice"), ("permissions", "1")],
    )
    .await;
    let alice_lock = || s.dav("LOCK", "alice", &pw("alice"), "/Project/readme.txt").body(LOCKINFO);
    assert_eq!(
        alice_lock().send().await.unwrap().status().as_u16(),
        403,
        "a read-only share took a lock"
    );

    // With write permission the recipient may lock; the owner can still unlock.
    let id = sh["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ocs(&s, "bob", "PUT", &format!("/shares/{id}"), &[("permissions", "15")]).await.0,
        200
    );
    let r = alice_lock().send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let held = lock_token(&r);
    assert_eq!(put(&s, "bob", "/Project/readme.txt", Some("bob writes")).await, 423);
    let r = s
        .dav("UNLOCK", "bob", &pw("bob"), "/Project/readme.txt")
        .header("Lock-Token", format!("<{held}>"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204, "the owner could not break a lock in its own tree");
    assert_eq!(put(&s, "bob", "/Project/readme.txt", Some("bob writes")).await, 204);

    // A lock taken through a share ends with the share.
    assert_eq!(alice_lock().send().await.unwrap().status().as_u16(), 200);
    assert_eq!(put(&s, "bob", "/Project/readme.txt", Some("again")).await, 423);
    assert_eq!(ocs(&s, "bob", "DELETE", &format!("/shares/{id}"), &[]).await.0, 200);
    assert_eq!(put(&s, "bob", "/Project/readme.txt", Some("again")).await, 204);
    s.stop().await;
}

#[tokio::test]
async fn simultaneous_drops_of_one_name_all_arrive_and_the_drop_tells_nothing() {
    let s = start(backends()[0]).await;
    setup(&s).await;
    put(&s, "bob", "/Inbox/", None).await;
    let link =
        share(&s, "bob", &[("path", "/Inbox"), ("shareType", "3"), ("permissions", "4")]).await;
    let token = link["token"].as_str().unwrap();
    let url = s.url(&format!("/public.php/dav/files/{token}/same.txt"));
    let uploads = (0..6).map(|i| {
        let r = s.client.put(&url).body(format!("upload {i}"));
        async move { r.send().await.unwrap().status().as_u16() }
    });
    let codes = futures_util::future::join_all(uploads).await;
    assert!(codes.iter().all(|c| *c == 201), "{codes:?}");
    let (_, listing) = propfind(&s, "bob", "/Inbox", "1").await;
    assert_eq!(listing.matches("same").count(), 6, "{listing}");

    // The drop's own folder says nothing that changes with its content.
    let ask = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:getetag/><oc:size/><d:getlastmodified/><d:quota-used-bytes/></d:prop></d:propfind>"#;
    let root = || {
        s.client
            .request(
                Method::from_bytes(b"PROPFIND").unwrap(),
                s.url(&format!("/public.php/dav/files/{token}/")),
            )
            .header("Depth", "0")
            .body(ask)
    };
    let before = root().send().await.unwrap().text().await.unwrap();
    assert!(
        before.contains("<oc:size>0</oc:size>")
            && before.contains("<d:quota-used-bytes>0</d:quota-used-bytes>"),
        "{before}"
    );
    put(&s, "bob", "/Inbox/more.txt", Some("owner adds")).await;
    assert_eq!(root().send().await.unwrap().text().await.unwrap(), before);
    s.stop().await;
}

#[tokio::test]
async fn an_upload_that_outlives_its_link_is_not_kept() {
    let s = start(backends()[0]).await;
    setup(&s).await;
    let link =
        share(&s, "bob", &[("path", "/Project"), ("shareType", "3"), ("publicUpload", "true")])
            .await;
    let token = link["token"].as_str().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let url = s.url(&format!("/public.php/dav/files/{token}/slow.bin"));
    let upload = tokio::spawn(s.client.put(url).body(body).send());
    tx.send(Ok(vec![b'a'; 64 * 1024])).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        ocs(&s, "bob", "DELETE", &format!("/shares/{}", link["id"].as_str().unwrap()), &[]).await.0,
        200
    );
    tx.send(Ok(vec![b'b'; 64 * 1024])).await.unwrap();
    drop(tx);
    let r = upload.await.unwrap().unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        s.dav("GET", "bob", &pw("bob"), "/Project/slow.bin")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    s.stop().await;
}

/// A stream of the channel's items, for a request body sent piece by piece.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn parameters_are_read_strictly_and_a_closed_kind_cannot_be_edited() {
    let s = start(backends()[0]).await;
    setup(&s).await;
    for (key, value) in [("hideDownload", "yes"), ("publicUpload", "on"), ("hideDownload", "maybe")]
    {
        let (code, v) = ocs(
            &s,
            "bob",
            "POST",
            "/shares",
            &[("path", "/Project"), ("shareType", "3"), (key, value)],
        )
        .await;
        assert_eq!(code, 400, "{key}={value}: {v}");
    }
    let link =
        share(&s, "bob", &[("path", "/Project"), ("shareType", "3"), ("hideDownload", "TRUE")])
            .await;
    assert_eq!(link["hide_download"], 1);
    let id = link["id"].as_str().unwrap().to_owned();
    s.cli_ok(&["sharing", "policy", "--set", "allow_links=false"]);
    let (code, _) = ocs(&s, "bob", "PUT", &format!("/shares/{id}"), &[("label", "x")]).await;
    assert_eq!(code, 404, "a link was edited while links are off");
    s.cli_ok(&[
        "sharing",
        "policy",
        "--set",
        "allow_links=true",
        "--set",
        "enforce_link_expire=true",
        "--set",
        "link_expire_days=5",
    ]);
    // The enforced end of an older link shows in its expiration.
    let (_, v) = ocs(&s, "bob", "GET", &format!("/shares/{id}"), &[]).await;
    let shown = v["ocs"]["data"][0]["expiration"].as_str().unwrap_or("").to_owned();
    assert!(shown.ends_with(" 00:00:00"), "the enforced expiry is not shown: {v}");
    s.stop().await;
}

#[tokio::test]
async fn copy_over_an_existing_node_needs_the_right_to_delete_it() {
    for b in backends() {
        let s = start(b).await;
        setup(&s).await;
        put(&s, "bob", "/Project/sub/", None).await;
        put(&s, "bob", "/Project/sub/inner.txt", Some("inner")).await;
        put(&s, "bob", "/Project/other.txt", Some("other")).await;
        // read, update, create: no delete.
        share(
            &s,
            "bob",
            &[
                ("path", "/Project"),
                ("shareType", "0"),
                ("shareWith", "alice"),
                ("permissions", "7"),
            ],
        )
        .await;
        let link =
            share(&s, "bob", &[("path", "/Project"), ("shareType", "3"), ("permissions", "5")])
                .await;
        let token = link["token"].as_str().unwrap();
        let alice_copy = |from: &str, to: &str| {
            let dest = s.url(&format!("/remote.php/dav/files/alice{to}"));
            s.dav("COPY", "alice", &pw("alice"), from)
                .header("Destination", dest)
                .header("Overwrite", "T")
        };
        assert_eq!(
            alice_copy("/Project/other.txt", "/Project/sub")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            403
        );
        assert_eq!(
            alice_copy("/Project/other.txt", "/Project/readme.txt")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            403
        );
        let base = format!("/public.php/dav/files/{token}");
        let r = s
            .client
            .request(Method::from_bytes(b"COPY").unwrap(), s.url(&format!("{base}/other.txt")))
            .header("Destination", s.url(&format!("{base}/readme.txt")))
            .header("Overwrite", "T")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "a read+create link overwrote a file by COPY");
        let r = s.dav("GET", "bob", &pw("bob"), "/Project/readme.txt").send().await.unwrap();
        assert_eq!(text(r).await, (200, "hello from bob".to_owned()));
        let r = s.dav("GET", "bob", &pw("bob"), "/Project/sub/inner.txt").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        // A copy to a free name is what create allows.
        assert_eq!(
            alice_copy("/Project/other.txt", "/Project/copy.txt")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            201
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn guessing_link_tokens_is_throttled_per_address() {
    let env = [
        ("STRONGROOM_BRUTEFORCE_MAX_ATTEMPTS", "5"),
        ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
        ("STRONGROOM_BRUTEFORCE_MAX_DELAY_MS", "5"),
    ];
    let s = Server::start_with(backends()[0], &env).await;
    setup(&s).await;
    let link = share(&s, "bob", &[("path", "/Project"), ("shareType", "3")]).await;
    let mut codes = Vec::new();
    for i in 0..8 {
        let r = s.client.get(s.url(&format!("/s/NoSuchToken{i:04}"))).send().await.unwrap();
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes[..5], [404; 5], "{codes:?}");
    assert_eq!(codes[7], 429, "{codes:?}");
    let url = s.url(&format!("/public.php/dav/files/{}/", link["token"].as_str().unwrap()));
    let r = s.client.request(Method::from_bytes(b"PROPFIND").unwrap(), &url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429, "the guessing address still reaches links");
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
        .build()
        .unwrap();
    let r = elsewhere.request(Method::from_bytes(b"PROPFIND").unwrap(), &url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 207);
    s.stop().await;
}
