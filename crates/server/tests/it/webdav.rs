//! WebDAV behaviour over real HTTP on every backend.

use crate::harness::{ADMIN_PASSWORD, Server, backends, text};

/// Extracts the text of the first `<tag>…</tag>` in an XML document.
pub fn xml_value(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))?;
    Some(body[start..start + end].to_owned())
}

pub async fn propfind(s: &Server, user: &str, pw: &str, path: &str, depth: &str) -> (u16, String) {
    let body = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:getetag/><d:getcontentlength/><oc:fileid/><oc:size/><oc:checksums/><oc:permissions/><oc:id/></d:prop></d:propfind>"#;
    text(s.dav("PROPFIND", user, pw, path).header("Depth", depth).body(body).send().await.unwrap())
        .await
}

async fn root_etag(s: &Server) -> String {
    let (code, body) = propfind(s, "admin", ADMIN_PASSWORD, "/", "0").await;
    assert_eq!(code, 207, "{body}");
    xml_value(&body, "d:getetag").unwrap()
}

#[tokio::test]
async fn files_round_trip_and_keep_their_ids() {
    for b in backends() {
        let s = Server::start(b).await;
        let r = s.admin("MKCOL", "/Docs").send().await.unwrap();
        assert_eq!(r.status(), 201, "{b:?}");
        assert!(r.headers().contains_key("oc-fileid"));
        let r = s
            .admin("PUT", "/Docs/a.txt")
            .header("X-OC-Mtime", "1700000000")
            .body("hello world")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-oc-mtime"], "accepted");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(r.headers()["oc-etag"].to_str().unwrap(), etag);

        let r = s.admin("GET", "/Docs/a.txt").send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(r.headers()["last-modified"], "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(r.headers()["oc-checksum"], "SHA1:2aae6c35c94fcfb415dbe95f408b9ce91ee846ed");
        assert_eq!(r.text().await.unwrap(), "hello world");

        let r = s.admin("GET", "/Docs/a.txt").header("Range", "bytes=6-").send().await.unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.headers()["content-range"], "bytes 6-10/11");
        assert_eq!(r.text().await.unwrap(), "world");
        let r = s.admin("GET", "/Docs/a.txt").header("Range", "bytes=50-").send().await.unwrap();
        assert_eq!(r.status(), 416);
        let r = s.admin("HEAD", "/Docs/a.txt").send().await.unwrap();
        assert_eq!(r.headers()["content-length"], "11");
        let r = s.admin("GET", "/Docs/a.txt").header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(r.status(), 304);

        // Overwrite: 204 and a new ETag; a stale If-Match is refused.
        let r = s.admin("PUT", "/Docs/a.txt").body("v2").send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
        let r = s
            .admin("PUT", "/Docs/a.txt")
            .header("If-Match", &etag)
            .body("v3")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 412);
        let r = s
            .admin("PUT", "/Docs/a.txt")
            .header("If-None-Match", "*")
            .body("v3")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 412);

        // MOVE keeps the file id, COPY makes a new one.
        let (_, body) = propfind(&s, "admin", ADMIN_PASSWORD, "/Docs/a.txt", "0").await;
        let id = xml_value(&body, "oc:fileid").unwrap();
        let r = s
            .admin("MOVE", "/Docs/a.txt")
            .header("Destination", "/remote.php/dav/files/admin/Docs/b.txt")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let (_, body) = propfind(&s, "admin", ADMIN_PASSWORD, "/Docs/b.txt", "0").await;
        assert_eq!(xml_value(&body, "oc:fileid").unwrap(), id);
        let dest = s.url("/remote.php/dav/files/admin/Docs/c.txt");
        let r = s.admin("COPY", "/Docs/b.txt").header("Destination", dest).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let (_, body) = propfind(&s, "admin", ADMIN_PASSWORD, "/Docs/c.txt", "0").await;
        assert_ne!(xml_value(&body, "oc:fileid").unwrap(), id);
        assert_eq!(s.admin("GET", "/Docs/c.txt").send().await.unwrap().text().await.unwrap(), "v2");

        // Listing: the folder first, then its children; folder size is the total.
        let (code, body) = propfind(&s, "admin", ADMIN_PASSWORD, "/Docs", "1").await;
        assert_eq!(code, 207);
        assert_eq!(body.matches("<d:response>").count(), 3);
        assert_eq!(xml_value(&body, "d:href").unwrap(), "/remote.php/dav/files/admin/Docs/");
        assert_eq!(xml_value(&body, "oc:size").unwrap(), "4");
        assert_eq!(xml_value(&body, "oc:permissions").unwrap(), "RGDNVCK");

        let r = s.admin("DELETE", "/Docs").send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(s.admin("GET", "/Docs/b.txt").send().await.unwrap().status(), 404);
        s.stop().await;
    }
}

/// Content of `len` bytes that differs with `seed`.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// Small files are served from their blob's row, found by the same lookup as
/// the file; larger ones from the blob store. Around the limit, and when an
/// overwrite moves a file from one to the other, every download must bring
/// exactly the current bytes.
#[tokio::test]
async fn downloads_around_the_inline_limit_bring_the_current_bytes() {
    const LIMIT: usize = 64 * 1024;
    for b in backends() {
        let s = Server::start(b).await;
        assert_eq!(s.admin("MKCOL", "/Sizes").send().await.unwrap().status(), 201);
        let sizes = [0, 1, 4096, LIMIT - 1, LIMIT, LIMIT + 1, 3 * LIMIT];
        for (seed, size) in sizes.into_iter().enumerate() {
            let body = pattern(size, seed as u8);
            let path = format!("/Sizes/f{size}");
            let r = s.admin("PUT", &path).body(body.clone()).send().await.unwrap();
            assert_eq!(r.status(), 201, "{b:?} {size}");
            let r = s.admin("GET", &path).send().await.unwrap();
            assert_eq!(r.status(), 200, "{b:?} {size}");
            assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice(), "{b:?} {size}");
            let r = s.admin("HEAD", &path).send().await.unwrap();
            assert_eq!(r.headers()["content-length"], size.to_string().as_str(), "{b:?}");
            if size > 2 {
                let r = s.admin("GET", &path).header("Range", "bytes=1-1").send().await.unwrap();
                assert_eq!(r.status(), 206, "{b:?} {size}");
                assert_eq!(r.bytes().await.unwrap().as_ref(), &body[1..2], "{b:?} {size}");
            }
        }
        // One file moved across the limit and back by overwrites.
        for (round, size) in [10, LIMIT + 10, 20, 0, 2 * LIMIT, 30].into_iter().enumerate() {
            let body = pattern(size, 100 + round as u8);
            let r = s.admin("PUT", "/Sizes/moving").body(body.clone()).send().await.unwrap();
            assert!(r.status() == 201 || r.status() == 204, "{b:?} {size}");
            let etag = r.headers()["etag"].to_str().unwrap().to_owned();
            let r = s.admin("GET", "/Sizes/moving").send().await.unwrap();
            assert_eq!(r.headers()["etag"].to_str().unwrap(), etag, "{b:?} {size}");
            assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice(), "{b:?} {size}");
        }
        // A folder is still no download, and a name that is gone is a 404.
        assert_eq!(s.admin("GET", "/Sizes").send().await.unwrap().status(), 405, "{b:?}");
        assert_eq!(s.admin("DELETE", "/Sizes/f1").send().await.unwrap().status(), 204);
        assert_eq!(s.admin("GET", "/Sizes/f1").send().await.unwrap().status(), 404, "{b:?}");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_change_deep_in_the_tree_changes_every_ancestor_etag() {
    for b in backends() {
        let s = Server::start(b).await;
        for p in ["/a", "/a/b", "/a/b/c"] {
            assert_eq!(s.admin("MKCOL", p).send().await.unwrap().status(), 201);
        }
        let before_root = root_etag(&s).await;
        let (_, a_before) = propfind(&s, "admin", ADMIN_PASSWORD, "/a", "0").await;
        assert_eq!(s.admin("PUT", "/a/b/c/f.txt").body("x").send().await.unwrap().status(), 201);
        let after_root = root_etag(&s).await;
        assert_ne!(before_root, after_root, "{b:?}");
        let (_, a_after) = propfind(&s, "admin", ADMIN_PASSWORD, "/a", "0").await;
        assert_ne!(xml_value(&a_before, "d:getetag"), xml_value(&a_after, "d:getetag"));
        assert_eq!(xml_value(&a_after, "oc:size").unwrap(), "1");
        // A move changes both ancestor chains.
        assert_eq!(s.admin("MKCOL", "/z").send().await.unwrap().status(), 201);
        let (_, z_before) = propfind(&s, "admin", ADMIN_PASSWORD, "/z", "0").await;
        let r = s
            .admin("MOVE", "/a/b/c/f.txt")
            .header("Destination", "/remote.php/dav/files/admin/z/f.txt")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let (_, z_after) = propfind(&s, "admin", ADMIN_PASSWORD, "/z", "0").await;
        assert_ne!(xml_value(&z_before, "d:getetag"), xml_value(&z_after, "d:getetag"));
        let (_, a_moved) = propfind(&s, "admin", ADMIN_PASSWORD, "/a", "0").await;
        assert_ne!(xml_value(&a_after, "d:getetag"), xml_value(&a_moved, "d:getetag"));
        assert_eq!(xml_value(&a_moved, "oc:size").unwrap(), "0");
        s.stop().await;
    }
}

#[tokio::test]
async fn users_reach_only_their_own_tree() {
    for b in backends() {
        let s = Server::start(b).await;
        s.add_user("alice", "alice-password-1");
        s.add_user("bob", "bob-password-12");
        assert_eq!(
            s.dav("PUT", "alice", "alice-password-1", "/secret.txt")
                .body("mine")
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        for (m, p) in [
            ("GET", "/secret.txt"),
            ("PROPFIND", "/"),
            ("PUT", "/x.txt"),
            ("DELETE", "/secret.txt"),
            ("MKCOL", "/d"),
        ] {
            let url = s.url(&format!("/remote.php/dav/files/alice{p}"));
            let r = s
                .client
                .request(reqwest::Method::from_bytes(m.as_bytes()).unwrap(), url)
                .basic_auth("bob", Some("bob-password-12"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404, "{b:?} bob {m} {p}");
        }
        // A Destination in another user's tree is refused, and nothing is written there.
        assert_eq!(
            s.dav("PUT", "bob", "bob-password-12", "/b.txt")
                .body("b")
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        let r = s
            .dav("COPY", "bob", "bob-password-12", "/b.txt")
            .header("Destination", "/remote.php/dav/files/alice/b.txt")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = s
            .dav("MOVE", "bob", "bob-password-12", "/b.txt")
            .header("Destination", "http://elsewhere.example/remote.php/dav/files/bob/c.txt")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
        assert_eq!(
            s.dav("GET", "alice", "alice-password-1", "/b.txt").send().await.unwrap().status(),
            404
        );
        // Wrong password and unknown user get the same answer.
        let wrong = s.dav("GET", "alice", "wrong-password", "/secret.txt").send().await.unwrap();
        let unknown = s.dav("GET", "nobody", "wrong-password", "/secret.txt").send().await.unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(unknown.status(), 401);
        assert_eq!(text(wrong).await.1, text(unknown).await.1);
        // The legacy alias serves the logged-in user's own tree.
        let r = s
            .client
            .get(s.url("/remote.php/webdav/secret.txt"))
            .basic_auth("alice", Some("alice-password-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "mine");
        s.stop().await;
    }
}

#[tokio::test]
async fn quota_is_answered_with_507_and_nothing_is_stored() {
    for b in backends() {
        let s = Server::start(b).await;
        s.add_user("carol", "carol-password-1");
        let out = s.command().args(["user", "quota", "carol", "1 KB"]).output().unwrap();
        assert!(out.status.success());
        let pw = "carol-password-1";
        assert_eq!(
            s.dav("PUT", "carol", pw, "/small")
                .body(vec![b'a'; 600])
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        let r = s.dav("PUT", "carol", pw, "/big").body(vec![b'b'; 600]).send().await.unwrap();
        assert_eq!(r.status(), 507, "{b:?}");
        assert!(r.text().await.unwrap().contains("InsufficientStorage"));
        assert_eq!(s.dav("GET", "carol", pw, "/big").send().await.unwrap().status(), 404);
        // A streamed body of unknown length is checked before commit.
        let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(vec![b'c'; 600])]);
        let r = s
            .dav("PUT", "carol", pw, "/streamed")
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 507);
        assert_eq!(s.dav("GET", "carol", pw, "/streamed").send().await.unwrap().status(), 404);
        // Copies count too; replacing a file only counts the difference.
        let r = s
            .dav("COPY", "carol", pw, "/small")
            .header("Destination", "/remote.php/dav/files/carol/copy")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 507);
        assert_eq!(
            s.dav("PUT", "carol", pw, "/small")
                .body(vec![b'a'; 1000])
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn depth_infinity_is_refused_with_the_standard_precondition() {
    let s = Server::start(crate::harness::Backend::Sqlite).await;
    let r = s.admin("PROPFIND", "/").header("Depth", "infinity").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("<d:propfind-finite-depth/>"));
    s.stop().await;
}

#[tokio::test]
async fn large_uploads_are_streamed_not_buffered() {
    let s = Server::start(crate::harness::Backend::Sqlite).await;
    let pid = s.pid();
    let chunk = vec![7u8; 1 << 20];
    let n = 300;
    let stream =
        futures_util::stream::iter((0..n).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let upload = s.admin("PUT", "/big.bin").body(reqwest::Body::wrap_stream(stream)).send();
    let watcher = async {
        let mut peak = 0;
        for _ in 0..400 {
            peak = peak.max(rss_kib(pid));
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        peak
    };
    let (r, peak) = tokio::join!(upload, watcher);
    assert_eq!(r.unwrap().status(), 201);
    assert!(peak < 150 * 1024, "server resident memory reached {peak} KiB during a {n} MiB upload");
    let r = s.admin("HEAD", "/big.bin").send().await.unwrap();
    assert_eq!(r.headers()["content-length"], (n << 20).to_string().as_str());
    s.stop().await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A favourite set with PROPPATCH is what PROPFIND answers when asked for
/// `oc:favorite` by name (as clients ask); a file never marked answers 0.
#[tokio::test]
async fn favorites_set_by_proppatch_are_read_back_by_name() {
    let s = Server::start(crate::harness::Backend::Sqlite).await;
    for f in ["/starred.txt", "/plain.txt"] {
        assert_eq!(s.admin("PUT", f).body("x").send().await.unwrap().status(), 201);
    }
    let mark = |value: &str| {
        format!(
            r#"<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:set><d:prop><oc:favorite>{value}</oc:favorite></d:prop></d:set></d:propertyupdate>"#
        )
    };
    let favorite = |path: &'static str| {
        let body = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:favorite/><d:getetag/></d:prop></d:propfind>"#;
        let rq = s.admin("PROPFIND", path).header("Depth", "0").body(body);
        async move {
            let (code, xml) = text(rq.send().await.unwrap()).await;
            assert_eq!(code, 207, "{xml}");
            let value = xml.split("<oc:favorite>").nth(1).and_then(|r| r.split('<').next());
            value.unwrap_or_else(|| panic!("no oc:favorite value: {xml}")).to_owned()
        }
    };
    let r = s.admin("PROPPATCH", "/starred.txt").body(mark("1")).send().await.unwrap();
    assert_eq!(r.status(), 207);
    assert_eq!(favorite("/starred.txt").await, "1");
    assert_eq!(favorite("/plain.txt").await, "0");
    // Read as Nextcloud reads it: 1 for 1 or true, 0 for anything else.
    for (set, read) in [("true", "1"), ("2", "0"), ("", "0"), ("1", "1"), ("0", "0")] {
        let r = s.admin("PROPPATCH", "/starred.txt").body(mark(set)).send().await.unwrap();
        assert_eq!(r.status(), 207);
        assert_eq!(favorite("/starred.txt").await, read, "set {set:?}");
        // allprop lists a favourite (as 1), and nothing for a file unmarked.
        let all = s.admin("PROPFIND", "/starred.txt").header("Depth", "0").send();
        let (_, xml) = text(all.await.unwrap()).await;
        let listed = xml.contains("<oc:favorite>1</oc:favorite>");
        assert_eq!(listed, read == "1", "set {set:?}: {xml}");
    }
    s.stop().await;
}

/// `REPORT oc:filter-files` with the favourite rule (the clients'
/// favourites view) lists the favourites at any depth below the folder
/// asked, with the properties asked for; not those in the trash nor those
/// unmarked again; other reports are refused with `d:supported-report`.
#[tokio::test]
async fn favorites_are_listed_by_the_filter_files_report() {
    let s = Server::start(crate::harness::Backend::Sqlite).await;
    assert_eq!(s.admin("MKCOL", "/deep").send().await.unwrap().status(), 201);
    assert_eq!(s.admin("MKCOL", "/deep/er").send().await.unwrap().status(), 201);
    for f in ["/top.txt", "/deep/er/inner.txt", "/gone.txt", "/plain.txt", "/undone.txt"] {
        assert_eq!(s.admin("PUT", f).body("x").send().await.unwrap().status(), 201);
    }
    let mark = |value: &str| {
        format!(
            r#"<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:set><d:prop><oc:favorite>{value}</oc:favorite></d:prop></d:set></d:propertyupdate>"#
        )
    };
    for (f, value) in [
        ("/top.txt", "1"),
        ("/deep/er/inner.txt", "true"),
        ("/deep", "1"),
        ("/gone.txt", "1"),
        ("/undone.txt", "1"),
        ("/undone.txt", "0"),
    ] {
        let r = s.admin("PROPPATCH", f).body(mark(value)).send().await.unwrap();
        assert_eq!(r.status(), 207, "{f}");
    }
    assert_eq!(s.admin("DELETE", "/gone.txt").send().await.unwrap().status(), 204);
    let report = |path: &'static str, body: String| {
        let rq = s.admin("REPORT", path).body(body);
        async move { text(rq.send().await.unwrap()).await }
    };
    let filter = |rules: &str| {
        format!(
            r#"<?xml version="1.0"?><oc:filter-files xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:fileid/><d:getcontentlength/><oc:favorite/></d:prop><oc:filter-rules>{rules}</oc:filter-rules></oc:filter-files>"#
        )
    };
    let hrefs = |xml: &str| {
        let mut h: Vec<String> = xml
            .split("<d:href>")
            .skip(1)
            .map(|r| r.split('<').next().unwrap().to_owned())
            .collect();
        h.sort();
        h
    };
    let base = "/remote.php/dav/files/admin";
    let (code, xml) = report("/", filter("<oc:favorite>1</oc:favorite>")).await;
    assert_eq!(code, 207, "{xml}");
    assert_eq!(
        hrefs(&xml),
        [format!("{base}/deep/"), format!("{base}/deep/er/inner.txt"), format!("{base}/top.txt")],
        "{xml}"
    );
    assert!(xml.contains("<oc:favorite>1</oc:favorite>") && xml.contains("<oc:fileid>"), "{xml}");
    let (_, xml) = report("/deep/er", filter("<oc:favorite>1</oc:favorite>")).await;
    assert_eq!(hrefs(&xml), [format!("{base}/deep/er/inner.txt")], "{xml}");
    // No rule, a favourite rule of 0, or a tag rule besides (no tags here):
    // nothing.
    for rules in [
        "",
        "<oc:favorite>0</oc:favorite>",
        "<oc:favorite>1</oc:favorite><oc:systemtag>4</oc:systemtag>",
    ] {
        let (code, xml) = report("/", filter(rules)).await;
        assert_eq!(code, 207, "{rules}: {xml}");
        assert!(hrefs(&xml).is_empty(), "{rules}: {xml}");
    }
    let sync = r#"<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"><d:sync-token/><d:prop><d:getetag/></d:prop></d:sync-collection>"#;
    let (code, xml) = report("/", sync.to_owned()).await;
    assert_eq!(code, 403, "{xml}");
    assert!(xml.contains("supported-report"), "{xml}");
    let (code, _) = report("/", "<not xml".to_owned()).await;
    assert_eq!(code, 400);
    s.stop().await;
}
