//! Regression tests for defects found by adversarial testing, one per kind.

use std::time::Duration;

use crate::{
    badinput::{auth_header, raw},
    harness::{ADMIN_PASSWORD, Backend, Server, backends, text},
    webdav::{propfind, xml_value},
};

const LOCK_EXCLUSIVE: &str = "<d:lockinfo xmlns:d=\"DAV:\"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockinfo>";

/// Sizes of every folder under `/conc` must equal the sum of what it holds.
async fn check_sizes(s: &Server, folder: &str) -> i64 {
    let (code, body) = propfind(s, "admin", ADMIN_PASSWORD, folder, "1").await;
    assert_eq!(code, 207, "{body}");
    let mut total = 0;
    let responses: Vec<&str> = body.split("<d:response>").skip(1).collect();
    let own: i64 = xml_value(responses[0], "oc:size").unwrap().parse().unwrap();
    for r in &responses[1..] {
        let href = xml_value(r, "d:href").unwrap();
        let size: i64 = xml_value(r, "oc:size").unwrap().parse().unwrap();
        if href.ends_with('/') {
            let rel = href
                .trim_start_matches("/remote.php/dav/files/admin")
                .trim_end_matches('/')
                .to_owned();
            assert_eq!(Box::pin(check_sizes(s, &rel)).await, size, "folder {href}");
        }
        total += size;
    }
    assert_eq!(own, total, "size of {folder}");
    own
}

#[tokio::test]
async fn concurrent_writes_keep_sizes_locks_and_copies_consistent() {
    for b in backends() {
        let s = Server::start(b).await;
        for p in ["/conc", "/conc/a", "/conc/b"] {
            assert_eq!(s.admin("MKCOL", p).send().await.unwrap().status(), 201);
        }
        let mut tasks = Vec::new();
        for t in 0..12 {
            let client = s.client.clone();
            let base = s.url("/remote.php/dav/files/admin");
            tasks.push(tokio::spawn(async move {
                let mut codes = Vec::new();
                for i in 0..15usize {
                    let f = ["a", "b"][(t + i) % 2];
                    let name = format!("{base}/conc/{f}/f{}", i % 3);
                    let body = vec![b'x'; (t * 7 + i * 13) % 97 + 1];
                    let (m, dest) = match i % 5 {
                        0 => {
                            ("COPY", Some(format!("{base}/conc/{}/c{t}", ["b", "a"][(t + i) % 2])))
                        }
                        1 => {
                            ("MOVE", Some(format!("{base}/conc/{}/m{t}", ["b", "a"][(t + i) % 2])))
                        }
                        _ => ("PUT", None),
                    };
                    let mut rq = client
                        .request(reqwest::Method::from_bytes(m.as_bytes()).unwrap(), &name)
                        .basic_auth("admin", Some(ADMIN_PASSWORD));
                    if let Some(d) = dest {
                        rq = rq.header("Destination", d);
                    } else {
                        rq = rq.body(body);
                    }
                    codes.push(rq.send().await.unwrap().status().as_u16());
                }
                codes
            }));
        }
        for t in tasks {
            for code in t.await.unwrap() {
                assert!(matches!(code, 201 | 204 | 404), "{b:?}: unexpected status {code}");
            }
        }
        check_sizes(&s, "/conc").await;
        // Every copy is readable (no copy points at content that was freed).
        let (_, body) = propfind(&s, "admin", ADMIN_PASSWORD, "/conc/a", "1").await;
        for href in body.split("<d:href>").skip(2).map(|h| h.split('<').next().unwrap()) {
            let r = s
                .client
                .get(s.url(href))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{b:?}: {href}");
        }
        // Parallel exclusive locks on one file: exactly one wins.
        assert_eq!(s.admin("PUT", "/conc/locked").body("x").send().await.unwrap().status(), 201);
        for round in 0..5 {
            let mut locks = Vec::new();
            for _ in 0..4 {
                let rq = s
                    .admin("LOCK", "/conc/locked")
                    .header("Timeout", "Second-60")
                    .body(LOCK_EXCLUSIVE);
                locks.push(tokio::spawn(async move { rq.send().await.unwrap() }));
            }
            let mut tokens = Vec::new();
            for l in locks {
                let r = l.await.unwrap();
                if r.status() == 200 {
                    tokens.push(r.headers()["lock-token"].to_str().unwrap().to_owned());
                } else {
                    assert_eq!(r.status(), 423, "{b:?}");
                }
            }
            assert_eq!(
                tokens.len(),
                1,
                "{b:?} round {round}: {} exclusive locks granted",
                tokens.len()
            );
            let r = s
                .admin("UNLOCK", "/conc/locked")
                .header("Lock-Token", &tokens[0])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn names_differing_by_trailing_spaces_are_different_files() {
    for b in backends() {
        let s = Server::start(b).await;
        assert_eq!(s.admin("PUT", "/a").body("plain").send().await.unwrap().status(), 201);
        assert_eq!(
            s.admin("PUT", "/a%20").body("space").send().await.unwrap().status(),
            201,
            "{b:?}"
        );
        assert_eq!(s.admin("GET", "/a").send().await.unwrap().text().await.unwrap(), "plain");
        assert_eq!(s.admin("GET", "/a%20").send().await.unwrap().text().await.unwrap(), "space");
        assert_eq!(s.admin("DELETE", "/a%20%20").send().await.unwrap().status(), 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_depth_zero_folder_lock_guards_new_members() {
    let s = Server::start(Backend::Sqlite).await;
    assert_eq!(s.admin("MKCOL", "/lk").send().await.unwrap().status(), 201);
    let r = s.admin("LOCK", "/lk").header("Depth", "0").body(LOCK_EXCLUSIVE).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["lock-token"].to_str().unwrap().to_owned();
    assert_eq!(s.admin("PUT", "/lk/new.txt").body("x").send().await.unwrap().status(), 423);
    assert_eq!(
        s.admin("LOCK", "/lk/other.txt").body(LOCK_EXCLUSIVE).send().await.unwrap().status(),
        423
    );
    // The token is submitted for the folder it locks (a tagged list).
    let r = s
        .admin("PUT", "/lk/new.txt")
        .header("If", format!("({token})"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        412,
        "an untagged list is about the new file, which that lock does not cover"
    );
    let tagged = format!("</remote.php/dav/files/admin/lk> ({token})");
    let r = s.admin("PUT", "/lk/new.txt").header("If", tagged).body("x").send().await.unwrap();
    assert_eq!(r.status(), 201);
    s.stop().await;
}

#[tokio::test]
async fn odd_times_ranges_and_characters_never_break_the_server() {
    let s = Server::start(Backend::Sqlite).await;
    assert_eq!(s.admin("PUT", "/t.txt").body("0123456789").send().await.unwrap().status(), 201);
    for t in ["253402300800", "9223372036854775807", "-5"] {
        let body = format!(
            "<d:propertyupdate xmlns:d=\"DAV:\"><d:set><d:prop><d:lastmodified>{t}</d:lastmodified></d:prop></d:set></d:propertyupdate>"
        );
        assert_eq!(
            s.admin("PROPPATCH", "/t.txt").body(body).send().await.unwrap().status(),
            400,
            "{t}"
        );
    }
    let (code, _) = propfind(&s, "admin", ADMIN_PASSWORD, "/", "1").await;
    assert_eq!(code, 207);
    // A modification time changes the ETag, so clients notice.
    let (_, before) = propfind(&s, "admin", ADMIN_PASSWORD, "/t.txt", "0").await;
    let body = "<d:propertyupdate xmlns:d=\"DAV:\"><d:set><d:prop><d:lastmodified>1600000000</d:lastmodified></d:prop></d:set></d:propertyupdate>";
    assert_eq!(s.admin("PROPPATCH", "/t.txt").body(body).send().await.unwrap().status(), 207);
    let (_, after) = propfind(&s, "admin", ADMIN_PASSWORD, "/t.txt", "0").await;
    assert_ne!(xml_value(&before, "d:getetag"), xml_value(&after, "d:getetag"));

    let r = s
        .admin("GET", "/t.txt")
        .header("Range", "bytes=0-18446744073709551615")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.unwrap(), "0123456789");
    let r = s.admin("GET", "/t.txt").header("Range", "bytes=3-2").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .admin("GET", "/t.txt")
        .header("If-Unmodified-Since", "Mon, 01 Feb 1971 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(
        s.admin("DELETE", "/t.txt").header("If-None-Match", "*").send().await.unwrap().status(),
        412
    );

    for v in ["a&#1;b", "a\u{1}b", "&#xFFFE;"] {
        let body = format!(
            "<d:propertyupdate xmlns:d=\"DAV:\"><d:set><d:prop><z xmlns=\"urn:z\">{v}</z></d:prop></d:set></d:propertyupdate>"
        );
        assert_eq!(
            s.admin("PROPPATCH", "/t.txt").body(body).send().await.unwrap().status(),
            400,
            "{v:?}"
        );
    }
    // An If header that is not UTF-8 is refused, not ignored.
    let req = format!(
        "PUT /remote.php/dav/files/admin/i.txt HTTP/1.1\r\nHost: x\r\n{}If: (<opaquelocktoken:\u{e9}>)\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
        auth_header()
    );
    let mut bytes = req.into_bytes();
    let pos = bytes.windows(2).position(|w| w == "é".as_bytes()).unwrap();
    bytes.splice(pos..pos + 2, [0xe9]);
    let (code, _) = raw(s.port, &bytes);
    assert_eq!(code, 400);
    assert_eq!(s.admin("GET", "/i.txt").send().await.unwrap().status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn destinations_in_every_spelling_of_the_same_tree() {
    let s = Server::start(Backend::Sqlite).await;
    assert_eq!(s.admin("PUT", "/src").body("x").send().await.unwrap().status(), 201);
    let cases = [
        ("/remote.php/dav/files/admin/q?x=1", "/q"),
        ("/remote.php/webdav/w", "/w"),
        ("/remote.php/dav/files/ADMIN/u", "/u"),
    ];
    for (dest, made) in cases {
        let r = s.admin("COPY", "/src").header("Destination", dest).send().await.unwrap();
        assert_eq!(r.status(), 201, "{dest}");
        assert_eq!(s.admin("GET", made).send().await.unwrap().status(), 200, "{dest}");
    }
    let r = s
        .admin("COPY", "/src")
        .header("Destination", "HTTP://elsewhere/remote.php/dav/files/admin/e")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let req = format!(
        "COPY /remote.php/dav/files/admin/src HTTP/1.0\r\n{}Destination: http://evil.example/remote.php/dav/files/admin/x\r\n\r\n",
        auth_header()
    );
    let (code, _) = raw(s.port, req.as_bytes());
    assert_eq!(code, 502, "no Host header: another server is assumed");
    s.stop().await;
}

#[tokio::test]
async fn damaged_content_is_an_error_not_a_short_download() {
    let s = Server::start(Backend::Sqlite).await;
    // Larger than what is kept in the database: its content is a blob file.
    let big = vec![b'x'; 100_000];
    assert_eq!(s.admin("PUT", "/d.txt").body(big).send().await.unwrap().status(), 201);
    // Small: kept in its database row, damaged there.
    assert_eq!(s.admin("PUT", "/s.txt").body("some content").send().await.unwrap().status(), 201);
    s.sql("UPDATE blobs SET content = x'00' WHERE size = 12").await;
    let blobs = s.data_dir.join("blobs");
    for shard in std::fs::read_dir(&blobs).unwrap().flatten() {
        if shard.file_name() != ".tmp" {
            for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
    }
    for path in ["/d.txt", "/s.txt"] {
        let r = s.admin("GET", path).send().await.unwrap();
        assert_eq!(r.status(), 500, "{path}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = s.log();
    assert!(log.contains("holds None bytes, 100000 expected"), "the missing file is logged");
    assert!(log.contains("holds Some(1) bytes, 12 expected"), "the short row is logged");
    s.stop().await;
}

#[tokio::test]
async fn a_streamed_upload_over_quota_is_cut_short() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("quinn", "quinn-password-1");
    assert!(
        s.command().args(["user", "quota", "quinn", "1000"]).output().unwrap().status.success()
    );
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let stream = futures_util::stream::iter(0..5000).then(move |_| {
        let c = counter.clone();
        async move {
            c.fetch_add(1024, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<_, std::io::Error>(vec![b'q'; 1024])
        }
    });
    let r = s
        .dav("PUT", "quinn", "quinn-password-1", "/big")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 507),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    assert!(
        sent.load(std::sync::atomic::Ordering::SeqCst) < 5000 * 1024,
        "the whole body was read before refusing it"
    );
    let (code, _) =
        text(s.dav("GET", "quinn", "quinn-password-1", "/big").send().await.unwrap()).await;
    assert_eq!(code, 404);
    s.stop().await;
}

use futures_util::StreamExt as _;

/// Deleting an account removes its files, then its rows. A deletion cut short
/// between the two (a crash, a killed command) once left an account that could
/// still log in, answered 500 to everything ("user has no home folder") and
/// could not be deleted again ("transaction conflict").
#[tokio::test]
async fn an_account_whose_deletion_was_cut_short_is_off_and_deleting_it_again_finishes() {
    for b in backends() {
        let s = Server::start(b).await;
        s.add_user("dora", "dora-password-1");
        let put = s.dav("PUT", "dora", "dora-password-1", "/f").body("x").send().await.unwrap();
        assert_eq!(put.status(), 201);
        // What the first deletion's first steps leave behind: the account off,
        // its files gone, its row still there.
        s.cli_ok(&["user", "disable", "dora"]);
        s.sql("DELETE FROM nodes WHERE owner_id = (SELECT id FROM users WHERE uid = 'dora')").await;
        let listing = s.dav("PROPFIND", "dora", "dora-password-1", "/").send().await.unwrap();
        assert_eq!(listing.status(), 401, "{b:?}");
        s.cli_ok(&["user", "delete", "dora", "--yes"]);
        let (users, _) = s.cli_ok(&["user", "list"]);
        assert!(!users.contains("dora"), "{b:?}: {users}");
        s.stop().await;
    }
}

/// A client that hangs up while its correct password is being checked must
/// not leave a failed attempt behind. WebDAV reads run in the connection's
/// task and stop when it goes; the check used to stop with them, between
/// counting the attempt and clearing it, and ten such requests locked every
/// password login from the address out with 429.
#[tokio::test]
async fn logins_cut_short_by_their_client_are_not_counted_as_failures() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("yan", "Yan-pass-123456789");
    for _ in 0..12 {
        // Far shorter than an Argon2 check: the client gives up during it.
        let r = s
            .dav("PROPFIND", "yan", "Yan-pass-123456789", "/")
            .header("Depth", "0")
            .timeout(Duration::from_millis(5))
            .send()
            .await;
        // One that does finish may meet the others' checks still counted
        // (parallel guesses count each other): 429 then, never anything else.
        if let Ok(r) = r {
            assert!(matches!(r.status().as_u16(), 207 | 429), "{}", r.status());
        }
    }
    // The checks finish on their own; then nothing may be left counted.
    let mut status = String::new();
    for _ in 0..60 {
        status = s.cli_ok(&["security", "bruteforce", "status", "127.0.0.1"]).0;
        if status.contains("no failed attempts") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(status.contains("no failed attempts"), "{status}");
    let r = s.dav("PROPFIND", "yan", "Yan-pass-123456789", "/").header("Depth", "0");
    assert_eq!(r.send().await.unwrap().status().as_u16(), 207);
    s.stop().await;
}

/// No request of a share's recipient or owner may step through a whole
/// table: such a statement costs more with every file on the server. Once a
/// user had received a share, every one of their requests walked to their
/// root with a statement SQLite ran as a scan of all nodes (6 ms a request at
/// 60,000 files, and the overlapping reads kept the WAL from starting over).
/// The SQLite pool logs such statements at debug level; the test turns that
/// on, puts 3,000 other files, 1,500 file drop records and 1,500 login
/// attempts of others on the server, and looks for the notice.
#[tokio::test]
async fn requests_around_a_share_scan_no_table() {
    use crate::sharing::{ocs, put, pw, setup, share};
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("RUST_LOG", "info,strongroom_store=debug"),
            ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
        ],
    )
    .await;
    setup(&s).await;
    s.sql(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) \
         INSERT INTO nodes (owner_id, parent_id, name, kind, size, mtime, ctime, etag) \
         SELECT u.id, u.root_id, 'other' || x, 2, 1, 0, 0, 'e' || x FROM c, users u WHERE u.uid = 'dave'",
    )
    .await;
    // Login attempts of others, which every password check prunes by age.
    s.sql(&format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500) \
         INSERT INTO bruteforce_attempts (action, subnet, who, occurred) \
         SELECT 'login', '198.51.100.0/24', 'guess' || x, {} FROM c",
        strongroom_core::now_secs()
    ))
    .await;
    share(&s, "bob", &[("path", "/Project"), ("shareType", "0"), ("shareWith", "alice")]).await;
    let alice = pw("alice");
    assert_eq!(put(&s, "alice", "/own.txt", Some("mine")).await, 201);
    for (path, depth) in [("/", "0"), ("/", "1"), ("/Project", "1"), ("/Project/readme.txt", "0")] {
        assert_eq!(propfind(&s, "alice", &alice, path, depth).await.0, 207, "{path}");
    }
    for path in ["/own.txt", "/Project/readme.txt"] {
        assert_eq!(text(s.dav("GET", "alice", &alice, path).send().await.unwrap()).await.0, 200);
    }
    assert_eq!(put(&s, "alice", "/Project/new.txt", Some("into the share")).await, 201);
    let moved = s.url("/remote.php/dav/files/alice/Project/moved.txt");
    let r = s.dav("MOVE", "alice", &alice, "/Project/new.txt").header("Destination", moved);
    assert_eq!(r.send().await.unwrap().status().as_u16(), 201);
    assert_eq!(s.dav("DELETE", "alice", &alice, "/own.txt").send().await.unwrap().status(), 204);
    let with_me = [("shared_with_me", "true")];
    assert_eq!(ocs(&s, "alice", "GET", "/shares", &with_me).await.0, 200);
    assert_eq!(ocs(&s, "bob", "GET", "/shares", &[]).await.0, 200);
    assert_eq!(propfind(&s, "bob", &pw("bob"), "/", "1").await.0, 207);
    // An upload to a file drop, with many records of earlier drops (any
    // holder of an upload link can add them): its clean-up of old records
    // must not read them all.
    put(&s, "bob", "/Inbox/", None).await;
    let drop = share(&s, "bob", &[("path", "/Inbox"), ("shareType", "3"), ("permissions", "4")]);
    let token = drop.await["token"].as_str().unwrap().to_owned();
    s.sql(&format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500) \
         INSERT INTO share_drops (share_id, address, name, node_id, created_at) \
         SELECT 1, '192.0.2.' || (x % 200), 'd' || x, 1, {} FROM c",
        strongroom_core::now_secs()
    ))
    .await;
    let url = s.url(&format!("/public.php/dav/files/{token}/dropped.txt"));
    let r = s.client.put(url).body("dropped").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let log = s.log();
    assert!(log.contains("strongroom::access"), "the log is captured");
    let scans: Vec<&str> =
        log.lines().filter(|l| l.contains("a statement scanned a table")).collect();
    assert!(scans.is_empty(), "{scans:#?}");
    s.stop().await;
}

/// Every precondition of a PUT is honoured the same way whether the upload
/// is small (its content kept in the database), large (a blob file) or sent
/// without a Content-Length: `If-Match` with a list in which one tag is
/// current passes, `If-None-Match` naming the current tag refuses, so does
/// an `If-Unmodified-Since` older than the file, and a chunked body that
/// disagrees with its announced `OC-Total-Length` is refused. A refusal
/// changes nothing.
#[tokio::test]
async fn put_preconditions_hold_for_every_size_and_framing() {
    let s = Server::start(Backend::Sqlite).await;
    let streamed = |data: Vec<u8>| {
        let parts: Vec<Vec<u8>> = data.chunks(16 * 1024).map(<[u8]>::to_vec).collect();
        let parts = parts.into_iter().map(Ok::<_, std::io::Error>);
        reqwest::Body::wrap_stream(futures_util::stream::iter(parts))
    };
    for (label, size, chunked) in
        [("small", 100, false), ("large", 70_000, false), ("chunked", 70_000, true)]
    {
        let path = format!("/cond-{label}.bin");
        let content = |n: u8| vec![n; size];
        let body = |n: u8| match chunked {
            true => streamed(content(n)),
            false => reqwest::Body::from(content(n)),
        };
        let r = s.admin("PUT", &path).body(body(1)).send().await.unwrap();
        assert_eq!(r.status(), 201, "{label}");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        let put = |header: &str, value: &str, n: u8| {
            s.admin("PUT", &path).header(header, value).body(body(n)).send()
        };
        let refusals = [
            ("If-None-Match", etag.clone()),
            ("If-None-Match", format!("\"zz\", {etag}")),
            ("If-Match", "\"zz\"".to_owned()),
            ("If-Unmodified-Since", "Mon, 01 Feb 1971 00:00:00 GMT".to_owned()),
        ];
        for (header, value) in refusals {
            let r = put(header, &value, 9).await.unwrap();
            assert_eq!(r.status(), 412, "{label}: {header}: {value}");
        }
        // Refused as a whole, never ignored: a weak or quoted-star tag under
        // If-Match (strong comparison), a value that is not ASCII, a length
        // that is not one plain number.
        let weak = format!("W/{etag}");
        let odd = [
            ("If-Match", weak.as_bytes(), 412),
            ("If-Match", &b"\"*\""[..], 412),
            ("If-Match", &b"\"dead\xe9\""[..], 400),
            ("If-None-Match", &b"\"\xe9\", *"[..], 400),
            ("OC-Total-Length", &b"+5"[..], 400),
            ("OC-Total-Length", &b"5"[..], 400),
        ];
        for (header, value, status) in odd {
            let shown = String::from_utf8_lossy(value).into_owned();
            let value = reqwest::header::HeaderValue::from_bytes(value).unwrap();
            let r = s.admin("PUT", &path).header(header, value).body(body(9)).send().await;
            assert_eq!(r.unwrap().status(), status, "{label}: {header}: {shown}");
        }
        let total = size.to_string();
        let r = s.admin("PUT", &path).header("OC-Total-Length", &total);
        let r = r.header("OC-Total-Length", "5").body(body(9)).send().await;
        assert_eq!(r.unwrap().status(), 400, "{label}: two lengths");
        let now = s.admin("GET", &path).send().await.unwrap();
        assert_eq!(now.headers()["etag"].to_str().unwrap(), etag, "{label}");
        assert_eq!(now.bytes().await.unwrap().to_vec(), content(1), "{label}: unchanged");

        let r = put("If-Match", &format!("\"zz\", {etag}"), 2).await.unwrap();
        assert_eq!(r.status(), 204, "{label}: one listed tag is current");
        let r = put("If-None-Match", "\"zz\"", 3).await.unwrap();
        assert_eq!(r.status(), 204, "{label}: the tag named is not current");
        let r = put("If-Unmodified-Since", "Fri, 01 Jan 2100 00:00:00 GMT", 4).await.unwrap();
        assert_eq!(r.status(), 204, "{label}: not modified since");
        // One list over two lines; and If-Match makes If-Unmodified-Since moot.
        let now = s.admin("HEAD", &path).send().await.unwrap();
        let etag = now.headers()["etag"].to_str().unwrap().to_owned();
        let r = s.admin("PUT", &path).header("If-Match", "\"zz\"").header("If-Match", &etag);
        let r = r.header("If-Unmodified-Since", "Mon, 01 Feb 1971 00:00:00 GMT");
        assert_eq!(r.body(body(4)).send().await.unwrap().status(), 204, "{label}: two lines");
        let r = s.admin("PUT", &path).header("OC-Total-Length", &total).body(body(5)).send().await;
        assert_eq!(r.unwrap().status(), 204, "{label}: OC-Total-Length");
        let now = s.admin("GET", &path).send().await.unwrap();
        assert_eq!(now.bytes().await.unwrap().to_vec(), content(5), "{label}");
    }
    // DELETE reads the same headers the same way.
    let path = "/cond-small.bin";
    let head = s.admin("HEAD", path).send().await.unwrap();
    let etag = head.headers()["etag"].to_str().unwrap().to_owned();
    let weak = reqwest::header::HeaderValue::from_str(&format!("W/{etag}")).unwrap();
    let odd = reqwest::header::HeaderValue::from_bytes(b"\"\xe9\"").unwrap();
    let r = s.admin("DELETE", path).header("If-Match", weak).send().await.unwrap();
    assert_eq!(r.status(), 412, "DELETE with a weak If-Match");
    let r = s.admin("DELETE", path).header("If-None-Match", odd.clone()).send().await.unwrap();
    assert_eq!(r.status(), 400, "DELETE with a non-ASCII If-None-Match");
    let r = s.admin("DELETE", path).header("If-Unmodified-Since", odd.clone()).send().await;
    assert_eq!(r.unwrap().status(), 400, "DELETE with a non-ASCII If-Unmodified-Since");
    let r = s.admin("PUT", path).header("If-Unmodified-Since", odd).body("x").send().await;
    assert_eq!(r.unwrap().status(), 400, "PUT with a non-ASCII If-Unmodified-Since");
    let r = s.admin("DELETE", path).header("If-Match", "\"zz\"").header("If-Match", &etag);
    assert_eq!(r.send().await.unwrap().status(), 204, "DELETE with a list over two lines");
    s.stop().await;
}
