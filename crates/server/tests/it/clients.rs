//! What Nextcloud's clients rely on beyond plain WebDAV: OCS discovery, app
//! passwords, Login Flow v2, checksums, chunked upload, trash and versions.

use std::time::Duration;

use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::{
    harness::{ADMIN_PASSWORD, Backend, Server, backends, text},
    webdav::{propfind, xml_value},
};

async fn ocs(s: &Server, version: u8, path: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    let mut rq =
        s.client.get(s.url(&format!("/ocs/v{version}.php{path}"))).header("OCS-APIRequest", "true");
    if let Some((u, p)) = auth {
        rq = rq.basic_auth(u, Some(p));
    }
    text(rq.send().await.unwrap()).await
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn discovery_endpoints_answer_as_clients_expect() {
    let s = Server::start(Backend::Sqlite).await;
    let (code, body) = text(s.client.get(s.url("/status.php")).send().await.unwrap()).await;
    assert_eq!(code, 200);
    assert_eq!(json(&body)["installed"], true);

    let admin = Some(("admin", ADMIN_PASSWORD));
    let (code, body) = ocs(&s, 1, "/cloud/capabilities?format=json", admin).await;
    assert_eq!(code, 200);
    let v = json(&body);
    assert_eq!(v["ocs"]["meta"]["statuscode"], 100);
    assert_eq!(v["ocs"]["data"]["capabilities"]["dav"]["chunking"], "1.0");
    assert!(
        body.contains(r#""statuscode":100,"#),
        "the desktop client reads the status code by pattern: {body}"
    );
    let (code, body) = ocs(&s, 2, "/cloud/capabilities", None).await;
    assert_eq!(code, 200);
    assert!(body.starts_with("<?xml") && body.contains("<statuscode>200</statuscode>"), "{body}");

    let (code, body) = ocs(&s, 2, "/cloud/user?format=json", admin).await;
    assert_eq!(code, 200);
    let v = json(&body);
    assert_eq!(v["ocs"]["data"]["id"], "admin");
    assert_eq!(v["ocs"]["data"]["quota"]["quota"], -3);
    assert_eq!(v["ocs"]["data"]["groups"][0], "admin");

    // Envelope rules: v1 reports failures in the body, v2 in the status.
    assert_eq!(ocs(&s, 1, "/cloud/user?format=json", None).await.0, 401);
    let (code, body) = ocs(&s, 1, "/no/such/endpoint?format=json", admin).await;
    assert_eq!(code, 200);
    assert_eq!(json(&body)["ocs"]["meta"]["statuscode"], 998);
    assert_eq!(ocs(&s, 2, "/no/such/endpoint?format=json", admin).await.0, 404);
    let (code, body) = text(
        s.client
            .get(s.url("/ocs/v2.php/cloud/user"))
            .header("Accept", "application/json")
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200);
    assert!(body.starts_with("{\"ocs\""), "Accept chooses JSON: {body}");
    s.stop().await;
}

#[tokio::test]
async fn app_passwords_work_everywhere_and_die_when_deleted() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = Some(("admin", ADMIN_PASSWORD));
        let (code, body) = ocs(&s, 2, "/core/getapppassword?format=json", admin).await;
        assert_eq!(code, 200, "{b:?}");
        let token = json(&body)["ocs"]["data"]["apppassword"].as_str().unwrap().to_owned();
        assert_eq!(token.len(), 72);
        // Usable for DAV and OCS, with the login name; not with another login.
        assert_eq!(
            s.dav("PUT", "admin", &token, "/t.txt").body("x").send().await.unwrap().status(),
            201
        );
        assert_eq!(ocs(&s, 2, "/cloud/user", Some(("admin", &token))).await.0, 200);
        s.add_user("bob", "bob-password-12");
        assert_eq!(s.dav("PROPFIND", "bob", &token, "/").send().await.unwrap().status(), 401);
        // An app password cannot mint another one.
        assert_eq!(ocs(&s, 2, "/core/getapppassword", Some(("admin", &token))).await.0, 403);
        let r = s
            .client
            .delete(s.url("/ocs/v2.php/core/apppassword"))
            .header("OCS-APIRequest", "true")
            .basic_auth("admin", Some(&token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(s.dav("PROPFIND", "admin", &token, "/").send().await.unwrap().status(), 401);
        s.stop().await;
    }
}

#[tokio::test]
async fn login_flow_v2_yields_an_app_password_once() {
    let s = Server::start(Backend::Sqlite).await;
    let start: Value = s
        .client
        .post(s.url("/index.php/login/v2"))
        .header("User-Agent", "Scripted/1.0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poll_token = start["poll"]["token"].as_str().unwrap().to_owned();
    let endpoint = start["poll"]["endpoint"].as_str().unwrap().to_owned();
    let login = start["login"].as_str().unwrap().to_owned();
    assert!(poll_token.len() >= 64 && endpoint.ends_with("/index.php/login/v2/poll"));
    let poll = || s.client.post(&endpoint).form(&[("token", poll_token.as_str())]).send();
    let r = poll().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "[]");

    let page = s.client.get(&login).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Scripted/1.0") && page.contains("<form"), "{page}");
    let login_token = login.rsplit('/').next().unwrap().to_owned();
    let grant = |pw: &'static str| {
        s.client
            .post(s.url("/index.php/login/v2/grant"))
            .form(&[("token", login_token.as_str()), ("user", "admin"), ("password", pw)])
            .send()
    };
    assert_eq!(grant("wrong-password").await.unwrap().status(), 401);
    assert_eq!(poll().await.unwrap().status(), 404);
    assert_eq!(grant(ADMIN_PASSWORD).await.unwrap().status(), 200);

    let r = poll().await.unwrap();
    assert_eq!(r.status(), 200);
    let creds: Value = r.json().await.unwrap();
    assert_eq!(creds["loginName"], "admin");
    assert_eq!(creds["server"], s.base);
    let app = creds["appPassword"].as_str().unwrap().to_owned();
    assert_eq!(poll().await.unwrap().status(), 404, "handed out only once");
    assert_eq!(s.client.get(&login).send().await.unwrap().status(), 404, "the flow is over");

    assert_eq!(
        s.dav("PROPFIND", "admin", &app, "/").header("Depth", "0").send().await.unwrap().status(),
        207
    );
    let r = s
        .client
        .delete(s.url("/ocs/v2.php/core/apppassword"))
        .header("OCS-APIRequest", "true")
        .basic_auth("admin", Some(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.dav("PROPFIND", "admin", &app, "/").send().await.unwrap().status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn upload_checksums_are_verified() {
    let s = Server::start(Backend::Sqlite).await;
    let r = s
        .admin("PUT", "/c.txt")
        .header("OC-Checksum", "MD5:900150983cd24fb0d6963f7d28e17f72")
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, body) = propfind(&s, "admin", ADMIN_PASSWORD, "/c.txt", "0").await;
    assert!(
        body.contains(
            "SHA1:a9993e364706816aba3e25717850c26c9cd0d89d MD5:900150983cd24fb0d6963f7d28e17f72"
        ),
        "{body}"
    );
    let r = s
        .admin("PUT", "/c.txt")
        .header("OC-Checksum", "SHA1:0000000000000000000000000000000000000000")
        .body("abd")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(s.admin("GET", "/c.txt").send().await.unwrap().text().await.unwrap(), "abc");
    assert_eq!(
        s.admin("PUT", "/d.txt")
            .header("OC-Checksum", "CRC99:1234")
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(s.admin("GET", "/d.txt").send().await.unwrap().status(), 404);
    s.stop().await;
}

fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

#[tokio::test]
async fn chunked_uploads_assemble_in_order_and_refuse_bad_input() {
    for b in backends() {
        let s = Server::start(b).await;
        let up = |p: &str| format!("/remote.php/dav/uploads/admin{p}");
        let req = |m: &str, p: &str| {
            s.client
                .request(reqwest::Method::from_bytes(m.as_bytes()).unwrap(), s.url(&up(p)))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
        };
        let dest = "/remote.php/dav/files/admin/big.bin";
        // Desktop 3.7 style: chunks uploaded out of order, assembled by number.
        assert_eq!(
            req("MKCOL", "/u1").header("OC-Total-Length", "30").send().await.unwrap().status(),
            201,
            "{b:?}"
        );
        for (name, byte) in
            [("0000000000000002", b'c'), ("0000000000000000", b'a'), ("0000000000000001", b'b')]
        {
            assert_eq!(
                req("PUT", &format!("/u1/{name}"))
                    .body(vec![byte; 10])
                    .send()
                    .await
                    .unwrap()
                    .status(),
                201
            );
        }
        let (code, listing) =
            text(req("PROPFIND", "/u1").header("Depth", "1").send().await.unwrap()).await;
        assert_eq!(code, 207);
        assert_eq!(
            listing.matches("<d:getcontentlength>10</d:getcontentlength>").count(),
            3,
            "{listing}"
        );
        let mut whole = vec![b'a'; 10];
        whole.extend(vec![b'b'; 10]);
        whole.extend(vec![b'c'; 10]);
        let r = req("MOVE", "/u1/.file")
            .header("Destination", dest)
            .header("OC-Total-Length", "30")
            .header("OC-Checksum", format!("SHA1:{}", sha1_hex(&whole)))
            .header("X-OC-Mtime", "1700000000")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert!(r.headers().contains_key("oc-fileid") && r.headers().contains_key("oc-etag"));
        assert_eq!(r.headers()["x-oc-mtime"], "accepted");
        assert_eq!(
            s.admin("GET", "/big.bin").send().await.unwrap().bytes().await.unwrap().to_vec(),
            whole
        );
        assert_eq!(
            req("PROPFIND", "/u1").send().await.unwrap().status(),
            404,
            "the upload folder is gone"
        );

        // A missing chunk: refused, nothing created, the chunks kept for a resume.
        assert_eq!(req("MKCOL", "/u2").send().await.unwrap().status(), 201);
        for name in ["1", "3"] {
            assert_eq!(
                req("PUT", &format!("/u2/{name}"))
                    .body(vec![b'x'; 10])
                    .send()
                    .await
                    .unwrap()
                    .status(),
                201
            );
        }
        let to = |name: &str| format!("/remote.php/dav/files/admin/{name}");
        let r = req("MOVE", "/u2/.file").header("Destination", to("gap.bin")).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(s.admin("GET", "/gap.bin").send().await.unwrap().status(), 404);
        assert_eq!(req("PROPFIND", "/u2").header("Depth", "1").send().await.unwrap().status(), 207);
        // Supplying it completes the upload.
        assert_eq!(req("PUT", "/u2/2").body(vec![b'y'; 10]).send().await.unwrap().status(), 201);
        assert_eq!(
            req("MOVE", "/u2/.file")
                .header("Destination", to("gap.bin"))
                .send()
                .await
                .unwrap()
                .status(),
            201
        );

        // A total that disagrees; a wrong checksum; a Destination other than the one announced.
        assert_eq!(
            req("MKCOL", "/u3")
                .header("Destination", s.url(&to("v2.bin")))
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        assert_eq!(
            req("PUT", "/u3/1")
                .header("Destination", s.url(&to("v2.bin")))
                .body(vec![b'z'; 10])
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        // A chunk's name is its number or byte range, nothing that merely
        // starts with one (`1x` would stand beside `1`).
        for name in ["1x", "1e1", "abc", "1-2-3"] {
            let r = req("PUT", &format!("/u3/{name}")).body(vec![b'w'; 10]).send().await.unwrap();
            assert_eq!(r.status(), 400, "{name}");
        }
        let r = req("MOVE", "/u3/.file")
            .header("Destination", s.url(&to("v2.bin")))
            .header("OC-Total-Length", "29")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        // The right total and a second, different one: no single total.
        let r = req("MOVE", "/u3/.file")
            .header("Destination", s.url(&to("v2.bin")))
            .header("OC-Total-Length", "10")
            .header("OC-Total-Length", "5")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = req("MOVE", "/u3/.file")
            .header("Destination", s.url(&to("v2.bin")))
            .header("OC-Checksum", "MD5:00000000000000000000000000000000")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = req("MOVE", "/u3/.file")
            .header("Destination", s.url(&to("other.bin")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(s.admin("GET", "/v2.bin").send().await.unwrap().status(), 404);
        assert_eq!(
            req("MOVE", "/u3/.file")
                .header("Destination", s.url(&to("v2.bin")))
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        // Overwrite: F keeps an existing file, as for any MOVE.
        assert_eq!(req("MKCOL", "/u5").send().await.unwrap().status(), 201);
        assert_eq!(req("PUT", "/u5/1").body("new").send().await.unwrap().status(), 201);
        let keep = req("MOVE", "/u5/.file").header("Destination", s.url(&to("v2.bin")));
        assert_eq!(keep.header("Overwrite", "F").send().await.unwrap().status(), 412);
        let r = s.admin("GET", "/v2.bin").send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap().len(), 10, "the existing file is kept");
        let replace = req("MOVE", "/u5/.file").header("Destination", s.url(&to("v2.bin")));
        assert_eq!(replace.header("Overwrite", "T").send().await.unwrap().status(), 204);
        let r = s.admin("GET", "/v2.bin").send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"new");

        // rclone's byte-range names, and the last PUT of a chunk wins.
        assert_eq!(req("MKCOL", "/u4").send().await.unwrap().status(), 201);
        assert_eq!(
            req("PUT", "/u4/000000000000000-000000000000004")
                .body("12345")
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        assert_eq!(
            req("PUT", "/u4/000000000000005-000000000000009")
                .body("xxxxx")
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        assert_eq!(
            req("PUT", "/u4/000000000000005-000000000000009")
                .body("67890")
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        assert_eq!(
            req("MOVE", "/u4/.file")
                .header("Destination", to("r.bin"))
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        assert_eq!(
            s.admin("GET", "/r.bin").send().await.unwrap().text().await.unwrap(),
            "1234567890"
        );

        // Someone else's upload folder is out of reach.
        s.add_user("mallory", "mallory-password-1");
        assert_eq!(req("MKCOL", "/mine").send().await.unwrap().status(), 201);
        let theirs = |m: &str| {
            s.client
                .request(
                    reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                    s.url("/remote.php/dav/uploads/admin/mine/1"),
                )
                .basic_auth("mallory", Some("mallory-password-1"))
        };
        assert_eq!(theirs("PUT").body("evil").send().await.unwrap().status(), 404);
        assert_eq!(
            theirs("MOVE")
                .header("Destination", "/remote.php/dav/files/mallory/x")
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        assert_eq!(req("DELETE", "/mine").send().await.unwrap().status(), 204);

        // Assembly over quota: 507, no file.
        s.add_user("quota", "quota-password-1");
        assert!(
            s.command().args(["user", "quota", "quota", "25"]).output().unwrap().status.success()
        );
        let q = |m: &str, p: &str| {
            s.client
                .request(
                    reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                    s.url(&format!("/remote.php/dav/uploads/quota{p}")),
                )
                .basic_auth("quota", Some("quota-password-1"))
        };
        assert_eq!(q("MKCOL", "/big").send().await.unwrap().status(), 201);
        assert_eq!(q("PUT", "/big/1").body(vec![b'q'; 15]).send().await.unwrap().status(), 201);
        // Sent again (a client retrying it), it replaces itself: no room for
        // two, under the same name or another spelling of its number.
        let r = q("PUT", "/big/1").body(vec![b'r'; 15]).send().await.unwrap();
        assert_eq!(r.status(), 204, "{b:?}: a resent chunk counted twice against the quota");
        let r = q("PUT", "/big/01").body(vec![b's'; 15]).send().await.unwrap();
        assert_eq!(r.status(), 201, "{b:?}: chunk 01 replaces chunk 1");
        let r = q("PUT", "/big/001").body(vec![b't'; 15]).send().await.unwrap();
        assert_eq!(r.status(), 201, "{b:?}: chunk 001 replaces chunk 01");
        // The chunks it replaced are gone, not kept beside it uncounted.
        assert_eq!(q("MKCOL", "/other").send().await.unwrap().status(), 201);
        let r = q("PUT", "/other/1").body(vec![b'o'; 5]).send().await.unwrap();
        assert_eq!(r.status(), 201, "{b:?}: replaced spellings of a chunk were kept");
        let r = q("PUT", "/big/2").body(vec![b'q'; 15]).send().await.unwrap();
        assert_eq!(r.status(), 507, "{b:?}: staged chunks count against the quota");
        // Without a Content-Length the stored chunks count all the same.
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(vec![b'q'; 15])]);
        let r = q("PUT", "/big/3").body(reqwest::Body::wrap_stream(body)).send().await.unwrap();
        assert_eq!(r.status(), 507, "{b:?}: a chunk of unknown length passed the quota");
        let r = q("MKCOL", "/huge").header("OC-Total-Length", "1000").send().await.unwrap();
        assert_eq!(r.status(), 507);
        // Chunks sent at once, each of which fits alone: only one fits.
        assert_eq!(q("DELETE", "/big").send().await.unwrap().status(), 204);
        for i in 0..6 {
            assert_eq!(q("MKCOL", &format!("/at-once-{i}")).send().await.unwrap().status(), 201);
        }
        let sends =
            (0..6).map(|i| q("PUT", &format!("/at-once-{i}/1")).body(vec![b'p'; 15]).send());
        let stored = futures_util::future::join_all(sends)
            .await
            .into_iter()
            .filter(|r| r.as_ref().unwrap().status() == 201)
            .count();
        assert_eq!(stored, 1, "{b:?}: chunks sent at once overran the quota together");
        s.stop().await;
    }
}

#[tokio::test]
async fn abandoned_uploads_are_cleaned_up() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("STRONGROOM_UPLOADS_EXPIRE_AFTER_SECS", "1"),
            ("STRONGROOM_MAINTENANCE_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    let up = s.url("/remote.php/dav/uploads/admin/old");
    let mk = s
        .client
        .request(reqwest::Method::from_bytes(b"MKCOL").unwrap(), &up)
        .basic_auth("admin", Some(ADMIN_PASSWORD));
    assert_eq!(mk.send().await.unwrap().status(), 201);
    assert_eq!(
        s.client
            .put(format!("{up}/1"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let mut gone = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = s
            .client
            .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), &up)
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        if r.status() == 404 {
            gone = true;
            break;
        }
    }
    assert!(gone, "the abandoned upload was not removed");
    s.stop().await;
}

#[tokio::test]
async fn deleted_items_go_to_the_trash_and_come_back_with_their_ids() {
    for b in backends() {
        let s = Server::start(b).await;
        let tr = |m: &str, p: &str| {
            s.client
                .request(
                    reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                    s.url(&format!("/remote.php/dav/trashbin/admin{p}")),
                )
                .basic_auth("admin", Some(ADMIN_PASSWORD))
        };
        assert_eq!(s.admin("MKCOL", "/Docs").send().await.unwrap().status(), 201);
        assert_eq!(
            s.admin("PUT", "/Docs/report.odt").body("report").send().await.unwrap().status(),
            201
        );
        let (_, meta) = propfind(&s, "admin", ADMIN_PASSWORD, "/Docs/report.odt", "0").await;
        let id = xml_value(&meta, "oc:fileid").unwrap();
        assert_eq!(s.admin("DELETE", "/Docs/report.odt").send().await.unwrap().status(), 204);
        let ask = "<d:propfind xmlns:d=\"DAV:\" xmlns:oc=\"http://owncloud.org/ns\" xmlns:nc=\"http://nextcloud.org/ns\"><d:prop><nc:trashbin-filename/><nc:trashbin-original-location/><nc:trashbin-deletion-time/><oc:fileid/><oc:id/><d:getcontentlength/></d:prop></d:propfind>";
        let (code, list) =
            text(tr("PROPFIND", "/trash").header("Depth", "1").body(ask).send().await.unwrap())
                .await;
        assert_eq!(code, 207, "{b:?}");
        assert!(list.contains("<nc:trashbin-filename>report.odt</nc:trashbin-filename>"), "{list}");
        assert!(list.contains(
            "<nc:trashbin-original-location>Docs/report.odt</nc:trashbin-original-location>"
        ));
        assert!(list.contains(&format!("<oc:fileid>{id}</oc:fileid>")));
        let href = list.split("<d:href>").nth(2).unwrap().split('<').next().unwrap().to_owned();
        assert!(href.contains("/trash/report.odt.d"), "{href}");
        let r = s
            .client
            .get(s.url(&href))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "report");

        // The name is taken meanwhile: the restore gets a new name, the same id.
        assert_eq!(
            s.admin("PUT", "/Docs/report.odt").body("new").send().await.unwrap().status(),
            201
        );
        let item = href.rsplit('/').next().unwrap();
        let r = tr("MOVE", &format!("/trash/{item}"))
            .header("Destination", format!("/remote.php/dav/trashbin/admin/restore/{item}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let (_, meta) =
            propfind(&s, "admin", ADMIN_PASSWORD, "/Docs/report%20(restored).odt", "0").await;
        assert_eq!(xml_value(&meta, "oc:fileid").unwrap(), id);

        // A whole folder, restored to the root when its parent is gone.
        assert_eq!(s.admin("MKCOL", "/Docs/Sub").send().await.unwrap().status(), 201);
        assert_eq!(s.admin("PUT", "/Docs/Sub/f").body("f").send().await.unwrap().status(), 201);
        assert_eq!(s.admin("DELETE", "/Docs/Sub").send().await.unwrap().status(), 204);
        assert_eq!(s.admin("DELETE", "/Docs").send().await.unwrap().status(), 204);
        let (_, list) =
            text(tr("PROPFIND", "/trash").header("Depth", "1").send().await.unwrap()).await;
        let sub = list
            .split("<d:href>")
            .filter_map(|h| h.split('<').next())
            .find(|h| h.contains("/trash/Sub.d"))
            .unwrap()
            .to_owned();
        let (code, inside) = text(
            s.client
                .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), s.url(&sub))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .header("Depth", "1")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 207);
        assert!(inside.contains("/f</d:href>"), "{inside}");
        let item = sub.trim_end_matches('/').rsplit('/').next().unwrap();
        let r = tr("MOVE", &format!("/trash/{item}"))
            .header("Destination", format!("/remote.php/dav/trashbin/admin/restore/{item}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(s.admin("GET", "/Sub/f").send().await.unwrap().text().await.unwrap(), "f");

        // Purge one item; empty the rest.
        let (_, list) =
            text(tr("PROPFIND", "/trash").header("Depth", "1").send().await.unwrap()).await;
        let remaining = list.matches("<d:response>").count() - 1;
        assert!(remaining >= 1);
        let first = list.split("<d:href>").nth(2).unwrap().split('<').next().unwrap().to_owned();
        assert_eq!(
            s.client
                .delete(s.url(&first))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        assert_eq!(tr("DELETE", "/trash").send().await.unwrap().status(), 204);
        let (_, list) =
            text(tr("PROPFIND", "/trash").header("Depth", "1").send().await.unwrap()).await;
        assert_eq!(list.matches("<d:response>").count(), 1, "{list}");
        s.stop().await;
    }
}

#[tokio::test]
async fn overwritten_content_is_kept_as_versions() {
    for b in backends() {
        let s = Server::start(b).await;
        assert_eq!(
            s.admin("PUT", "/v.txt")
                .header("X-OC-Mtime", "1600000000")
                .body("one")
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
        assert_eq!(
            s.admin("PUT", "/v.txt")
                .header("X-OC-Mtime", "1600000100")
                .body("two")
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        assert_eq!(s.admin("PUT", "/v.txt").body("three").send().await.unwrap().status(), 204);
        let (_, meta) = propfind(&s, "admin", ADMIN_PASSWORD, "/v.txt", "0").await;
        let id = xml_value(&meta, "oc:fileid").unwrap();
        let vurl = s.url(&format!("/remote.php/dav/versions/admin/versions/{id}"));
        let (code, list) = text(
            s.client
                .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), &vurl)
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .header("Depth", "1")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 207, "{b:?}");
        assert!(
            list.contains(&format!("/versions/{id}/1600000000</d:href>"))
                && list.contains(&format!("/versions/{id}/1600000100</d:href>")),
            "{list}"
        );
        let r = s
            .client
            .get(format!("{vurl}/1600000000"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "one");
        let r = s
            .client
            .request(reqwest::Method::from_bytes(b"MOVE").unwrap(), format!("{vurl}/1600000000"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .header("Destination", "/remote.php/dav/versions/admin/restore/target")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(s.admin("GET", "/v.txt").send().await.unwrap().text().await.unwrap(), "one");
        let (_, list) = text(
            s.client
                .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), &vurl)
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .header("Depth", "1")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(list.matches("<d:response>").count(), 3, "two versions: 'two' and 'three'");
        // Another user cannot reach them.
        s.add_user("eve", "eve-password-12");
        let r = s
            .client
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                s.url(&format!("/remote.php/dav/versions/eve/versions/{id}")),
            )
            .basic_auth("eve", Some("eve-password-12"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn history_gives_way_to_new_files_under_quota() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("hana", "hana-password-1");
    assert!(s.command().args(["user", "quota", "hana", "100"]).output().unwrap().status.success());
    let pw = "hana-password-1";
    assert_eq!(
        s.dav("PUT", "hana", pw, "/a").body(vec![b'a'; 60]).send().await.unwrap().status(),
        201
    );
    assert_eq!(
        s.dav("PUT", "hana", pw, "/a").body(vec![b'b'; 60]).send().await.unwrap().status(),
        204
    );
    assert_eq!(s.dav("DELETE", "hana", pw, "/a").send().await.unwrap().status(), 204);
    // 120 bytes of history, none of files: a new 90-byte file still fits.
    assert_eq!(
        s.dav("PUT", "hana", pw, "/b").body(vec![b'c'; 90]).send().await.unwrap().status(),
        201
    );
    assert_eq!(
        s.dav("PUT", "hana", pw, "/c").body(vec![b'd'; 20]).send().await.unwrap().status(),
        507
    );
    s.stop().await;
}

/// A chunk sent while its upload is being assembled is refused with 423, as
/// a second assembly is, rather than acknowledged and then dropped with the
/// upload; the mark of an assembly that died with its server soon stops
/// counting. (The test marks the assembly in the database as the MOVE of
/// `.file` does, to hold it open.)
#[tokio::test]
async fn a_chunk_sent_during_the_assembly_is_refused() {
    let s = Server::start(Backend::Sqlite).await;
    let base = format!("{}/remote.php/dav/uploads/admin/during", s.base);
    let req = |method: &str, path: &str| {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        s.client.request(m, format!("{base}{path}")).basic_auth("admin", Some(ADMIN_PASSWORD))
    };
    assert_eq!(req("MKCOL", "").send().await.unwrap().status(), 201);
    assert_eq!(req("PUT", "/1").body("one").send().await.unwrap().status(), 201);
    s.sql("UPDATE uploads SET assembling_since = CAST(strftime('%s', 'now') AS INTEGER)").await;
    for chunk in ["/2", "/1"] {
        assert_eq!(req("PUT", chunk).body("late").send().await.unwrap().status(), 423, "{chunk}");
    }
    // Nor may the upload go while its chunks are read.
    assert_eq!(req("DELETE", "").send().await.unwrap().status(), 423);
    // A mark two minutes old is one a server killed while assembling left:
    // the upload goes on (it used to stay refused for an hour).
    s.sql("UPDATE uploads SET assembling_since = CAST(strftime('%s', 'now') AS INTEGER) - 120")
        .await;
    assert_eq!(req("PUT", "/2").body("two").send().await.unwrap().status(), 201);
    let dest = format!("{}/remote.php/dav/files/admin/during.txt", s.base);
    let r = req("MOVE", "/.file").header("Destination", dest).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let (code, body) = text(s.admin("GET", "/during.txt").send().await.unwrap()).await;
    assert_eq!((code, body.as_str()), (200, "onetwo"));
    s.stop().await;
}

/// A chunk sent again under another spelling of its number ("1", then
/// "01") replaces the first, as one sent again under the same name does:
/// the assembly takes the later one instead of reporting a missing chunk.
#[tokio::test]
async fn a_chunk_resent_under_another_spelling_of_its_number_replaces_it() {
    let s = Server::start(Backend::Sqlite).await;
    let req = |m: &str, p: &str| {
        s.client
            .request(
                reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                s.url(&format!("/remote.php/dav/uploads/admin{p}")),
            )
            .basic_auth("admin", Some(ADMIN_PASSWORD))
    };
    assert_eq!(req("MKCOL", "/u").send().await.unwrap().status(), 201);
    for (name, body) in [("1", "old-"), ("2", "two"), ("01", "one-")] {
        let r = req("PUT", &format!("/u/{name}")).body(body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{name}");
    }
    let r = req("MOVE", "/u/.file")
        .header("Destination", s.url("/remote.php/dav/files/admin/joined.txt"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (code, body) = text(s.admin("GET", "/joined.txt").send().await.unwrap()).await;
    assert_eq!((code, body.as_str()), (200, "one-two"));
    s.stop().await;
}
