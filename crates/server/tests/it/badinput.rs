//! Bad input gets a precise 4xx and changes nothing.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use base64::Engine;

use crate::{
    harness::{ADMIN_PASSWORD, Backend, Server, backends, text},
    webdav::propfind,
};

/// Sends raw bytes and returns the first response's status code and the whole text.
pub fn raw(port: u16, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

pub fn auth_header() -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    format!("Authorization: Basic {b}\r\n")
}

fn raw_req(method: &str, path: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{}Content-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        auth_header(),
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Everything the admin's tree holds, as a listing to compare before and after.
async fn snapshot(s: &Server) -> String {
    let (code, body) = propfind(s, "admin", ADMIN_PASSWORD, "/", "1").await;
    assert_eq!(code, 207);
    body
}

#[tokio::test]
async fn bad_paths_are_refused_with_400() {
    let s = Server::start(Backend::Sqlite).await;
    assert_eq!(s.admin("PUT", "/keep.txt").body("keep").send().await.unwrap().status(), 201);
    let before = snapshot(&s).await;
    let long_name = "n".repeat(256);
    let long_path = format!("/{}", vec!["d".repeat(200); 21].join("/"));
    let bad = [
        "/a%00b",
        "/a%0Ab",
        "/a%7F",
        "/%FF.txt",
        "/%C3%28bad.txt",
        "/a%2Fb",
        "/a%5Cb",
        &format!("/{long_name}"),
        &long_path,
    ];
    for p in bad {
        for m in ["PUT", "MKCOL", "PROPFIND", "GET", "DELETE"] {
            let r = s.admin(m, p).body("x").send().await.unwrap();
            assert_eq!(r.status(), 400, "{m} {p}");
        }
    }
    // Dot segments, literal or encoded, which HTTP libraries would normalise away: raw socket.
    let dots =
        ["/../admin/keep.txt", "/a/./b", "/%2e%2e/x", "/a/%2E%2E/keep.txt", "/.%2e/x", "/%2e/x"];
    for p in dots.map(|d| format!("/remote.php/dav/files/admin{d}")) {
        let (code, _) = raw(s.port, &raw_req("PUT", &p, "", b"x"));
        assert_eq!(code, 400, "{p}");
    }
    let r = s
        .admin("MOVE", "/keep.txt")
        .header("Destination", "/remote.php/dav/files/admin/%2e%2e/x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        snapshot(&s).await.matches("<d:response>").count(),
        before.matches("<d:response>").count()
    );
    s.stop().await;
}

#[tokio::test]
async fn malformed_or_hostile_xml_is_refused_and_changes_nothing() {
    let s = Server::start(Backend::Sqlite).await;
    assert_eq!(s.admin("PUT", "/f.txt").body("x").send().await.unwrap().status(), 201);
    let bodies = [
        "<d:propfind xmlns:d=\"DAV:\"><d:prop>",
        "not xml at all",
        "<?xml version=\"1.0\"?><!DOCTYPE d:propfind [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><d:propfind xmlns:d=\"DAV:\"><d:prop><d:getetag/></d:prop></d:propfind>",
        "<d:propfind xmlns:d=\"DAV:\"><d:prop><x:y/></d:prop></d:propfind>",
        "<d:propfind xmlns:d=\"DAV:\">&lol;</d:propfind>",
        // Characters XML does not allow: in a name, in text, as a reference.
        "<d:propfind xmlns:d=\"DAV:\"><d:prop><z\u{1b}[31m xmlns=\"urn:z\"/></d:prop></d:propfind>",
        "<d:propfind xmlns:d=\"DAV:\"><d:prop><d:getetag/></d:prop>\u{0}</d:propfind>",
        "<d:propfind xmlns:d=\"DAV:\"><d:prop><d:getetag/></d:prop>&#27;</d:propfind>",
    ];
    for b in bodies {
        let r = s.admin("PROPFIND", "/").header("Depth", "0").body(b).send().await.unwrap();
        assert_eq!(r.status(), 400, "{b}");
    }
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>\
        <d:propertyupdate xmlns:d=\"DAV:\"><d:set><d:prop><z xmlns=\"urn:z\">&b;</z></d:prop></d:set></d:propertyupdate>";
    let r = s.admin("PROPPATCH", "/f.txt").body(bomb).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let control = "<d:propertyupdate xmlns:d=\"DAV:\"><d:set><d:prop><z xmlns=\"urn:z\">a&#x1B;b</z></d:prop></d:set></d:propertyupdate>";
    let r = s.admin("PROPPATCH", "/f.txt").body(control).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let ask = "<d:propfind xmlns:d=\"DAV:\"><d:prop><z xmlns=\"urn:z\"/></d:prop></d:propfind>";
    let (_, body) =
        text(s.admin("PROPFIND", "/f.txt").header("Depth", "0").body(ask).send().await.unwrap())
            .await;
    assert!(body.contains("404 Not Found"), "the property must not have been set: {body}");
    // Over 1 MiB of PROPFIND body.
    let huge = format!(
        "<d:propfind xmlns:d=\"DAV:\"><d:prop>{}</d:prop></d:propfind>",
        "<d:getetag/>".repeat(100_000)
    );
    let r = s.admin("PROPFIND", "/").header("Depth", "0").body(huge).send().await.unwrap();
    assert_eq!(r.status(), 413);
    // A protected property makes the whole PROPPATCH fail.
    let mixed = "<d:propertyupdate xmlns:d=\"DAV:\"><d:set><d:prop><z xmlns=\"urn:z\">v</z><d:getetag>x</d:getetag></d:prop></d:set></d:propertyupdate>";
    let (code, body) = text(s.admin("PROPPATCH", "/f.txt").body(mixed).send().await.unwrap()).await;
    assert_eq!(code, 207);
    assert!(body.contains("403 Forbidden") && body.contains("424 Failed Dependency"), "{body}");
    let (_, body) =
        text(s.admin("PROPFIND", "/f.txt").header("Depth", "0").body(ask).send().await.unwrap())
            .await;
    assert!(body.contains("404 Not Found"));
    s.stop().await;
}

#[tokio::test]
async fn uploads_with_wrong_lengths_or_cut_short_change_nothing() {
    for b in backends() {
        let s = Server::start(b).await;
        assert_eq!(
            s.admin("PUT", "/old.txt").body("old content").send().await.unwrap().status(),
            201
        );
        // The client promises 1 MiB, sends 100 KiB and hangs up.
        let mut req = raw_req("PUT", "/remote.php/dav/files/admin/old.txt", "", b"");
        let head_len = req.len();
        req.truncate(head_len);
        let head =
            String::from_utf8(req).unwrap().replace("Content-Length: 0", "Content-Length: 1048576");
        let mut sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        sock.write_all(head.as_bytes()).unwrap();
        sock.write_all(&vec![b'z'; 100 * 1024]).unwrap();
        drop(sock);
        let mut sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        sock.write_all(head.replace("old.txt", "new.txt").as_bytes()).unwrap();
        sock.write_all(&vec![b'z'; 100 * 1024]).unwrap();
        drop(sock);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            s.admin("GET", "/old.txt").send().await.unwrap().text().await.unwrap(),
            "old content",
            "{b:?}"
        );
        assert_eq!(s.admin("GET", "/new.txt").send().await.unwrap().status(), 404);
        // A declared total that disagrees with the body is refused.
        let r = s
            .admin("PUT", "/old.txt")
            .header("OC-Total-Length", "99")
            .body("short")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            s.admin("GET", "/old.txt").send().await.unwrap().text().await.unwrap(),
            "old content"
        );
        // Bytes beyond Content-Length are not part of the upload: they are an
        // invalid next request on the connection, answered 400.
        let head = raw_req("PUT", "/remote.php/dav/files/admin/exact.txt", "", b"12345");
        let mut req =
            String::from_utf8(head).unwrap().replace("Connection: close\r\n", "").into_bytes();
        req.extend_from_slice(b"67890 trailing junk\r\n\r\n");
        let (_, answer) = raw(s.port, &req);
        assert!(answer.contains("201 Created"), "{answer}");
        assert!(answer.contains("400 Bad Request"), "{answer}");
        assert_eq!(
            s.admin("GET", "/exact.txt").send().await.unwrap().text().await.unwrap(),
            "12345"
        );
        s.stop().await;
    }
}

/// A header WebDAV reads whose value is not visible ASCII is refused, not
/// taken as absent: an unreadable `Overwrite` used to mean "T" and replaced
/// the target, an unreadable `Depth` on a COPY meant "infinity".
#[tokio::test]
async fn unreadable_headers_are_refused_not_read_as_absent() {
    let s = Server::start(Backend::Sqlite).await;
    assert_eq!(s.admin("MKCOL", "/a").send().await.unwrap().status(), 201);
    for (p, body) in [("/a/f.txt", "from f"), ("/a/g.txt", "from g")] {
        assert_eq!(s.admin("PUT", p).body(body).send().await.unwrap().status(), 201);
    }
    let before = snapshot(&s).await;
    let dest = "/remote.php/dav/files/admin/a/g.txt";
    let bytes = |b: &[u8]| reqwest::header::HeaderValue::from_bytes(b).unwrap();
    for m in ["COPY", "MOVE"] {
        for (name, value) in [("Overwrite", &b"F\xc3\xa9"[..]), ("Depth", b"\xff")] {
            let r = s.admin(m, "/a/f.txt").header("Destination", dest).header(name, bytes(value));
            let (code, body) = text(r.send().await.unwrap()).await;
            assert_eq!(code, 400, "{m} with {name}: {body}");
            assert!(body.contains(&name.to_ascii_lowercase()), "{body}");
        }
    }
    let r = s.admin("PROPFIND", "/a").header("Depth", bytes(b"1\xa0"));
    assert_eq!(r.send().await.unwrap().status(), 400);
    let r = s.admin("GET", "/a/f.txt").header("Range", bytes(b"bytes=0-1\xe9"));
    assert_eq!(r.send().await.unwrap().status(), 400);
    assert_eq!(snapshot(&s).await, before);
    let (code, body) = text(s.admin("GET", "/a/g.txt").send().await.unwrap()).await;
    assert_eq!((code, body.as_str()), (200, "from g"));
    // Destination may carry UTF-8, and still does.
    let utf8 = "/remote.php/dav/files/admin/a/\u{e9}t\u{e9}.txt";
    let r = s.admin("COPY", "/a/f.txt").header("Destination", bytes(utf8.as_bytes()));
    assert_eq!(r.send().await.unwrap().status(), 201);
    let (code, body) = text(s.admin("GET", "/a/%C3%A9t%C3%A9.txt").send().await.unwrap()).await;
    assert_eq!((code, body.as_str()), (200, "from f"));
    s.stop().await;
}

#[tokio::test]
async fn impossible_moves_and_missing_parents_are_refused() {
    let s = Server::start(Backend::Sqlite).await;
    for p in ["/a", "/a/b"] {
        assert_eq!(s.admin("MKCOL", p).send().await.unwrap().status(), 201);
    }
    let before = snapshot(&s).await;
    let dest = |p: &str| format!("/remote.php/dav/files/admin{p}");
    for m in ["MOVE", "COPY"] {
        assert_eq!(
            s.admin(m, "/a").header("Destination", dest("/a/b/a")).send().await.unwrap().status(),
            403,
            "{m} into itself"
        );
        assert_eq!(
            s.admin(m, "/a").header("Destination", dest("/a")).send().await.unwrap().status(),
            403,
            "{m} onto itself"
        );
        assert_eq!(
            s.admin(m, "/a/b").header("Destination", dest("/a")).send().await.unwrap().status(),
            403,
            "{m} onto its parent"
        );
        assert_eq!(
            s.admin(m, "/a")
                .header("Destination", dest("/missing/a"))
                .send()
                .await
                .unwrap()
                .status(),
            409
        );
        assert_eq!(s.admin(m, "/a").send().await.unwrap().status(), 400, "{m} without Destination");
        assert_eq!(
            s.admin(m, "/a")
                .header("Destination", dest("/c"))
                .header("Overwrite", "maybe")
                .send()
                .await
                .unwrap()
                .status(),
            400
        );
    }
    assert_eq!(s.admin("PUT", "/missing/f.txt").body("x").send().await.unwrap().status(), 409);
    assert_eq!(s.admin("MKCOL", "/missing/d").send().await.unwrap().status(), 409);
    assert_eq!(s.admin("MKCOL", "/a").send().await.unwrap().status(), 405);
    assert_eq!(s.admin("MKCOL", "/x").body("<x/>").send().await.unwrap().status(), 415);
    assert_eq!(s.admin("PUT", "/a").body("x").send().await.unwrap().status(), 405);
    assert_eq!(s.admin("DELETE", "/").send().await.unwrap().status(), 403);
    assert_eq!(s.admin("PROPFIND", "/").header("Depth", "2").send().await.unwrap().status(), 400);
    assert_eq!(s.admin("LOCK", "/a").header("Depth", "1").body("<d:lockinfo xmlns:d=\"DAV:\"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockinfo>").send().await.unwrap().status(), 400);
    assert_eq!(
        s.admin("PUT", "/f").header("If", "garbage").body("x").send().await.unwrap().status(),
        400
    );
    assert_eq!(
        s.admin("PUT", "/f")
            .header("X-OC-Mtime", "yesterday")
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        snapshot(&s).await.matches("<d:response>").count(),
        before.matches("<d:response>").count()
    );
    assert_eq!(s.admin("GET", "/f").send().await.unwrap().status(), 404);
    s.stop().await;
}

/// A connection may not be held for ever without a request: one whose
/// headers stall, one kept alive and then left idle, and one that never
/// sends a byte are all closed by the server within its 30 s header
/// deadline, while other clients are served as usual.
#[tokio::test]
async fn stalled_idle_and_silent_connections_are_closed() {
    let s = Server::start(Backend::Sqlite).await;
    let port = s.port;
    let started = std::time::Instant::now();
    let waits: Vec<_> = [
        &b"GET /status.php HTTP/1.1\r\nHost: x\r\n"[..],
        b"GET /status.php HTTP/1.1\r\nHost: x\r\n\r\n",
        b"",
    ]
    .into_iter()
    .map(|first| {
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            c.write_all(first).unwrap();
            // Read until the server closes; an answered request's
            // response comes first and the connection stays open after it.
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            String::from_utf8_lossy(&got).into_owned()
        })
    })
    .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = s.client.get(s.url("/status.php")).send().await.unwrap();
    assert_eq!(r.status(), 200, "others are served meanwhile");
    let answers: Vec<String> = waits.into_iter().map(|t| t.join().unwrap()).collect();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(50), "closed after {took:?}");
    assert!(answers[1].starts_with("HTTP/1.1 200"), "{}", answers[1]);
    assert!(!answers[0].contains(" 200 "), "{}", answers[0]);
    s.stop().await;
}

/// Reads answered in one database snapshot give its connection back while
/// they wait for a body the client announced but does not send: with a
/// single database connection, such requests (an unknown session cookie, a
/// look into another user's tree, a PROPFIND whose XML never comes) must
/// not keep everyone else waiting.
#[tokio::test]
async fn announced_bodies_that_never_come_hold_no_database_connection() {
    for b in backends() {
        let s = Server::start_with(b, &[("STRONGROOM_DATABASE_MAX_CONNECTIONS", "1")]).await;
        let cookie = format!("Cookie: sr_session={}\r\n", "A".repeat(64));
        let stalled = [
            format!("PROPFIND /remote.php/dav/files/admin/ HTTP/1.1\r\nHost: x\r\n{cookie}"),
            format!("GET /remote.php/dav/files/admin/ HTTP/1.1\r\nHost: x\r\n{cookie}"),
            format!("HEAD /remote.php/dav/files/nobody/ HTTP/1.1\r\nHost: x\r\n{}", auth_header()),
            format!(
                "PROPFIND /remote.php/dav/files/admin/ HTTP/1.1\r\nHost: x\r\n{}",
                auth_header()
            ),
        ];
        let mut held = Vec::new();
        for head in stalled {
            let mut sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
            sock.write_all(format!("{head}Depth: 0\r\nContent-Length: 90\r\n\r\n").as_bytes())
                .unwrap();
            held.push(sock);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        let (code, body) = propfind(&s, "admin", ADMIN_PASSWORD, "/", "0").await;
        assert_eq!(code, 207, "{b:?}: {body}");
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "{b:?}: the PROPFIND took {took:?}");
        drop(held);
        s.stop().await;
    }
}

/// A client that shuts its sending side once its request is out still gets
/// the answer (a PUT's too, so it knows the upload was stored), also for
/// the last of several pipelined requests.
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let s = Server::start(Backend::Sqlite).await;
    let port = s.port;
    let exchange = move |request: Vec<u8>| {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        sock.write_all(&request).unwrap();
        sock.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = Vec::new();
        let _ = sock.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let keep_alive = |method: &str, path: &str, body: &[u8]| {
        let mut r = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{}Content-Length: {}\r\n\r\n",
            auth_header(),
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    let dav = "/remote.php/dav/files/admin";
    for i in 0..5 {
        let put = keep_alive("PUT", &format!("{dav}/half{i}.txt"), b"half closed");
        let answer = tokio::task::spawn_blocking(move || exchange(put)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "PUT {i}: {answer:?}");
    }
    let mut pipelined = keep_alive("GET", &format!("{dav}/half0.txt"), b"");
    pipelined.extend(keep_alive("GET", &format!("{dav}/half4.txt"), b""));
    let answer = tokio::task::spawn_blocking(move || exchange(pipelined)).await.unwrap();
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer:?}");
    assert_eq!(answer.matches("half closed").count(), 2, "{answer:?}");
    s.stop().await;
}

/// A client that announces a body and then stops sending it is given up
/// after `client_stall_secs`: 408, the connection closed, nothing of the
/// upload kept (hyper bounds only the wait for headers; such a client held
/// its connection and request for as long as it liked). One that keeps
/// sending, however slowly, is not cut off.
#[tokio::test]
async fn a_body_that_stops_arriving_is_given_up_with_408() {
    let s = Server::start_with(Backend::Sqlite, &[("STRONGROOM_CLIENT_STALL_SECS", "2")]).await;
    let port = s.port;
    let mkcol = reqwest::Method::from_bytes(b"MKCOL").unwrap();
    let r = s
        .client
        .request(mkcol, s.url("/remote.php/dav/uploads/admin/stalled"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Sends the head and a part of the body, then nothing; waits for the end.
    // (A form's type for the login form, whose extractor checks it first.)
    let stall = move |method: &str, path: &str| {
        let form = match path {
            "/index.php/login" => "Content-Type: application/x-www-form-urlencoded\r\n",
            _ => "",
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{}{form}OCS-APIRequest: true\r\nContent-Length: 100000\r\n\r\n",
            auth_header()
        );
        move || {
            let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            sock.write_all(head.as_bytes()).unwrap();
            sock.write_all(&[b'x'; 1000]).unwrap();
            let started = std::time::Instant::now();
            let mut out = Vec::new();
            let closed = sock.read_to_end(&mut out).is_ok();
            (String::from_utf8_lossy(&out).into_owned(), started.elapsed(), closed)
        }
    };
    let cases = [
        ("PUT", "/remote.php/dav/files/admin/stalled.bin"),
        ("PUT", "/remote.php/dav/uploads/admin/stalled/1"),
        ("PROPFIND", "/remote.php/dav/files/admin/"),
        ("POST", "/ocs/v2.php/apps/files_sharing/api/v1/shares"),
        // A form of the browser login: its extractor's 400 becomes the 408.
        ("POST", "/index.php/login"),
    ];
    for (method, path) in cases {
        let (answer, took, closed) =
            tokio::task::spawn_blocking(stall(method, path)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{method} {path}: {answer:?}");
        assert!(answer.contains("nothing for 2 s"), "{method} {path}: {answer:?}");
        let head = answer.to_ascii_lowercase();
        assert!(head.contains("content-security-policy:"), "{method} {path}: {answer:?}");
        assert!(closed, "{method} {path}: the connection stays open");
        let secs = took.as_secs_f64();
        assert!((1.5..15.0).contains(&secs), "{method} {path}: answered after {secs} s");
    }
    let r = s.admin("GET", "/stalled.bin").send().await.unwrap();
    assert_eq!(r.status(), 404, "nothing of the stalled upload is kept");
    let r = s
        .client
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            s.url("/remote.php/dav/uploads/admin/stalled"),
        )
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Depth", "1")
        .send()
        .await
        .unwrap();
    let (code, listing) = text(r).await;
    assert_eq!(code, 207);
    assert!(!listing.contains("stalled/1<"), "the stalled chunk is not kept: {listing}");

    // One byte a second for five seconds: slower than the limit in all,
    // never silent for as long as it.
    let slow = move || {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "PUT /remote.php/dav/files/admin/slow.txt HTTP/1.1\r\nHost: x\r\n{}Content-Length: 5\r\nConnection: close\r\n\r\n",
            auth_header()
        );
        sock.write_all(head.as_bytes()).unwrap();
        for b in b"slow!" {
            std::thread::sleep(Duration::from_secs(1));
            sock.write_all(&[*b]).unwrap();
        }
        let mut out = Vec::new();
        let _ = sock.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let answer = tokio::task::spawn_blocking(slow).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer:?}");
    let r = s.admin("GET", "/slow.txt").send().await.unwrap();
    assert_eq!(text(r).await, (200, "slow!".to_owned()));
    s.stop().await;
}

/// A client that waits for `100 Continue` before sending its body, and whose
/// request is refused before the body is read (a wrong password, a failed
/// `If-Match`), gets the refusal alone: reading the body first made the
/// server say 100, and the client sent its whole upload to be thrown away.
/// An accepted request still gets its 100.
#[tokio::test]
async fn a_refused_request_that_awaits_continue_is_not_told_to_send_its_body() {
    let s = Server::start(Backend::Sqlite).await;
    let r = s.admin("PUT", "/there.txt").body("already here").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let port = s.port;
    let wrong = base64::engine::general_purpose::STANDARD.encode("admin:not-the-password");
    // Large and small bodies: a small one's checks are otherwise left to
    // the transaction, after the body (fewer queries for a small upload).
    let cases = [
        (format!("Authorization: Basic {wrong}\r\n"), "new.bin", 5_000_000, "401"),
        (format!("{}If-Match: \"nope\"\r\n", auth_header()), "there.txt", 5_000_000, "412"),
        (format!("{}If-Match: \"nope\"\r\n", auth_header()), "there.txt", 100, "412"),
        (format!("{}If-None-Match: *\r\n", auth_header()), "there.txt", 100, "412"),
        (auth_header(), "new.bin", 5_000_000, "100"),
        (auth_header(), "small.bin", 100, "100"),
    ];
    for (headers, name, length, expected) in cases {
        let first = tokio::task::spawn_blocking(move || {
            let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let head = format!(
                "PUT /remote.php/dav/files/admin/{name} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
            );
            sock.write_all(head.as_bytes()).unwrap();
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .await
        .unwrap();
        assert!(first.starts_with(&format!("HTTP/1.1 {expected}")), "{name}: {first:?}");
    }
    let r = s.admin("GET", "/there.txt").send().await.unwrap();
    assert_eq!(text(r).await, (200, "already here".to_owned()));
    s.stop().await;
}

/// `.htaccess`, which the capabilities tell clients never to upload, cannot
/// be created by any route that makes a file or gives one a new name: 403
/// and nothing changes, in any case of its letters. A file merely called
/// like it (`.htaccess.txt`) is an ordinary file.
#[tokio::test]
async fn a_reserved_name_is_refused_on_every_route_that_creates_one() {
    use crate::sharing::{put, setup, share, start};
    let s = start(Backend::Sqlite).await;
    setup(&s).await;
    let (code, caps) = text(
        s.client
            .get(s.url("/ocs/v2.php/cloud/capabilities?format=json"))
            .header("OCS-APIRequest", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200);
    assert!(caps.contains(r#""blacklisted_files":[".htaccess"]"#), "{caps}");
    assert_eq!(s.admin("PUT", "/keep.txt").body("keep").send().await.unwrap().status(), 201);
    assert_eq!(s.admin("MKCOL", "/dir").send().await.unwrap().status(), 201);
    let before = snapshot(&s).await;
    let dest = |p: &str| format!("/remote.php/dav/files/admin{p}");
    for name in ["/.htaccess", "/dir/.HTACCESS"] {
        let r = s.admin("PUT", name).body("Deny from all").send().await.unwrap();
        assert_eq!(r.status(), 403, "PUT {name}");
        assert!(text(r).await.1.contains("reserved name"), "PUT {name}");
        assert_eq!(s.admin("MKCOL", name).send().await.unwrap().status(), 403, "MKCOL {name}");
        for m in ["MOVE", "COPY"] {
            let r = s.admin(m, "/keep.txt").header("Destination", dest(name)).send().await.unwrap();
            assert_eq!(r.status(), 403, "{m} to {name}");
        }
    }
    // Chunked: the chunks arrive, the assembly at the reserved name is refused.
    let up = s.url("/remote.php/dav/uploads/admin/u1");
    let auth = |r: reqwest::RequestBuilder| r.basic_auth("admin", Some(ADMIN_PASSWORD));
    let mkcol = reqwest::Method::from_bytes(b"MKCOL").unwrap();
    assert_eq!(auth(s.client.request(mkcol, &up)).send().await.unwrap().status(), 201);
    let chunk = auth(s.client.put(format!("{up}/1")).body("x")).send().await.unwrap();
    assert_eq!(chunk.status(), 201);
    let assemble = auth(
        s.client.request(reqwest::Method::from_bytes(b"MOVE").unwrap(), format!("{up}/.file")),
    )
    .header("Destination", s.url(&dest("/.htaccess")))
    .send()
    .await
    .unwrap();
    assert_eq!(assemble.status(), 403);
    // Chunking v2 names its end at MKCOL: a reserved one is refused there.
    let v2 = s.url("/remote.php/dav/uploads/admin/v2");
    let mkcol = reqwest::Method::from_bytes(b"MKCOL").unwrap();
    let r = auth(s.client.request(mkcol, &v2))
        .header("Destination", s.url(&dest("/dir/.htaccess")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = auth(s.client.put(format!("{v2}/1")).body("x")).send().await.unwrap();
    assert_eq!(r.status(), 404, "no upload folder was made");
    assert_eq!(snapshot(&s).await, before, "something changed");
    // A public file drop refuses it too.
    put(&s, "bob", "/Inbox/", None).await;
    let link =
        share(&s, "bob", &[("path", "/Inbox"), ("shareType", "3"), ("permissions", "4")]).await;
    let token = link["token"].as_str().unwrap();
    let drop = |name: &str| s.client.put(s.url(&format!("/public.php/dav/files/{token}/{name}")));
    assert_eq!(drop(".htaccess").body("x").send().await.unwrap().status(), 403);
    assert_eq!(drop(".htaccess.txt").body("x").send().await.unwrap().status(), 201);
    assert_eq!(s.admin("PUT", "/dir/.htaccess.txt").body("x").send().await.unwrap().status(), 201);
    s.stop().await;
}

/// A client that stops taking a download is cut off once nothing of it has
/// been taken for `client_stall_secs` (TCP_USER_TIMEOUT): its connection,
/// request and open file are not held for ever. One that pauses for less,
/// or reads slowly but on, gets every byte.
#[tokio::test]
async fn a_download_that_stops_being_taken_is_cut_off() {
    let s = Server::start_with(Backend::Sqlite, &[("STRONGROOM_CLIENT_STALL_SECS", "2")]).await;
    // Far more than the send and receive buffers of a loopback connection hold.
    let size = 48 * 1024 * 1024;
    let r = s.admin("PUT", "/big.bin").body(vec![7u8; size]).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let port = s.port;
    // A connection that has asked for the file.
    let download = move || {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "GET /remote.php/dav/files/admin/big.bin HTTP/1.1\r\nHost: x\r\n{}Connection: close\r\n\r\n",
            auth_header()
        );
        sock.write_all(head.as_bytes()).unwrap();
        sock
    };
    // Reads the first 64 KiB, pauses, then reads what comes until the end.
    let fetch = move |pause: Duration| {
        move || {
            let mut sock = download();
            let mut first = vec![0u8; 64 * 1024];
            sock.read_exact(&mut first).unwrap();
            std::thread::sleep(pause);
            let mut rest = Vec::new();
            let ended = sock.read_to_end(&mut rest);
            (first.len() + rest.len(), ended.is_ok())
        }
    };
    let (got, _) = tokio::task::spawn_blocking(fetch(Duration::from_secs(8))).await.unwrap();
    assert!(got < size, "a client that took nothing for 8 s still got {got} bytes");
    let (got, clean) =
        tokio::task::spawn_blocking(fetch(Duration::from_millis(700))).await.unwrap();
    assert!(clean && got > size, "a short pause: {got} bytes of {size} (and the head)");
    // A slow reader, 8 KiB every 50 ms, for twice the limit: never cut.
    let slow = move || {
        let mut sock = download();
        let mut piece = vec![0u8; 8 * 1024];
        for _ in 0..80 {
            sock.read_exact(&mut piece).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut rest = Vec::new();
        sock.read_to_end(&mut rest).is_ok() && 80 * piece.len() + rest.len() > size
    };
    assert!(tokio::task::spawn_blocking(slow).await.unwrap(), "a slow reader was cut off");
    let r = s.admin("GET", "/big.bin").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), size);
    s.stop().await;
}
