//! The provisioning API at the HTTP level: every refusal's status code in
//! both API versions and both formats, and bad input that changes nothing.

use reqwest::Method;

use crate::harness::{ADMIN_PASSWORD, Server, backends, text};

/// One call in v1 and v2, JSON and XML; checks the status code in the body
/// and the HTTP status each version gives it.
async fn expect(
    s: &Server,
    who: (&str, &str),
    method: &str,
    path: &str,
    form: &[(&str, &str)],
    code: u16,
) {
    for v in [1, 2] {
        for format in ["json", "xml"] {
            let url = s.url(&format!("/ocs/v{v}.php{path}?format={format}"));
            let r = s
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), url)
                .basic_auth(who.0, Some(who.1))
                .header("OCS-APIRequest", "true")
                .form(form)
                .send()
                .await
                .unwrap();
            let (http, body) = text(r).await;
            let ok = if v == 1 { 100 } else { 200 };
            let want_code = if code == 200 { ok } else { code };
            let want_http = match (v, code) {
                (_, 200) => 200,
                (1, 997) => 401,
                (1, _) => 200,
                (_, 997) => 401,
                (_, 998) => 404,
                (_, c) if (200..600).contains(&c) => c,
                _ => 400,
            };
            let found = if format == "json" {
                body.contains(&format!("\"statuscode\":{want_code},"))
            } else {
                body.contains(&format!("<statuscode>{want_code}</statuscode>"))
            };
            assert!(
                found && http == want_http,
                "{method} v{v} {path} {form:?} ({format}): want {want_code}/HTTP {want_http}, got HTTP {http}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn every_refusal_has_nextclouds_code_in_both_versions() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = ("admin", ADMIN_PASSWORD);
        s.add_user("sam", "sams-long-passphrase");
        s.add_user("tess", "tess-long-passphrase");
        s.add_user("uma", "umas-long-passphrase");
        for g in ["g1", "g2"] {
            assert!(s.command().args(["group", "add", g]).output().unwrap().status.success());
        }
        for (g, u) in [("g1", "tess"), ("g1", "sam"), ("g2", "uma")] {
            assert!(
                s.command().args(["group", "adduser", g, u]).output().unwrap().status.success()
            );
        }
        assert!(
            s.command().args(["group", "addadmin", "g1", "sam"]).output().unwrap().status.success()
        );
        let sam = ("sam", "sams-long-passphrase");
        let uma = ("uma", "umas-long-passphrase");

        expect(
            &s,
            admin,
            "POST",
            "/cloud/users",
            &[("userid", "tess"), ("password", "x-long-passphrase")],
            102,
        )
        .await;
        expect(
            &s,
            admin,
            "POST",
            "/cloud/users",
            &[("userid", "TESS"), ("password", "x-long-passphrase")],
            102,
        )
        .await;
        expect(
            &s,
            admin,
            "POST",
            "/cloud/users",
            &[("userid", "new1"), ("password", "x-long-passphrase"), ("groups[]", "nope")],
            104,
        )
        .await;
        expect(
            &s,
            sam,
            "POST",
            "/cloud/users",
            &[("userid", "new1"), ("password", "x-long-passphrase"), ("groups[]", "g2")],
            105,
        )
        .await;
        expect(
            &s,
            sam,
            "POST",
            "/cloud/users",
            &[("userid", "new1"), ("password", "x-long-passphrase")],
            106,
        )
        .await;
        expect(
            &s,
            admin,
            "POST",
            "/cloud/users",
            &[("userid", "new1"), ("password", "x-long-passphrase"), ("subadmin[]", "admin")],
            103,
        )
        .await;
        expect(&s, admin, "POST", "/cloud/users", &[("userid", "new1")], 108).await;
        expect(
            &s,
            admin,
            "POST",
            "/cloud/users",
            &[("userid", "new1"), ("password", "short")],
            107,
        )
        .await;
        expect(
            &s,
            admin,
            "POST",
            "/cloud/users",
            &[("userid", "a/b"), ("password", "x-long-passphrase")],
            101,
        )
        .await;
        expect(
            &s,
            admin,
            "POST",
            "/cloud/users",
            &[("userid", "new1"), ("password", "x-long-passphrase"), ("email", "no")],
            101,
        )
        .await;
        expect(
            &s,
            admin,
            "POST",
            "/cloud/users",
            &[("userid", "new1"), ("password", "x-long-passphrase"), ("quota", "lots")],
            102,
        )
        .await;
        expect(
            &s,
            admin,
            "POST",
            "/cloud/users",
            &[("userid", "new1"), ("password", "x-long-passphrase"), ("colour", "red")],
            101,
        )
        .await;
        expect(
            &s,
            uma,
            "POST",
            "/cloud/users",
            &[("userid", "new1"), ("password", "x-long-passphrase")],
            403,
        )
        .await;

        expect(&s, sam, "GET", "/cloud/users/uma", &[], 998).await;
        expect(&s, sam, "GET", "/cloud/users/admin", &[], 998).await;
        expect(&s, uma, "GET", "/cloud/users", &[], 403).await;
        expect(&s, admin, "GET", "/cloud/users/ghost", &[], 998).await;
        expect(&s, sam, "PUT", "/cloud/users/uma", &[("key", "displayname"), ("value", "x")], 998)
            .await;
        expect(&s, admin, "PUT", "/cloud/users/tess", &[("key", "colour"), ("value", "x")], 113)
            .await;
        expect(&s, uma, "PUT", "/cloud/users/uma", &[("key", "quota"), ("value", "1 GB")], 113)
            .await;
        expect(&s, sam, "PUT", "/cloud/users/sam", &[("key", "quota"), ("value", "none")], 113)
            .await;
        expect(
            &s,
            admin,
            "POST",
            "/cloud/users",
            &[("userid", " padded"), ("password", "x-long-passphrase")],
            101,
        )
        .await;
        expect(&s, admin, "PUT", "/cloud/users/tess", &[("key", "quota"), ("value", "x")], 102)
            .await;
        expect(
            &s,
            admin,
            "PUT",
            "/cloud/users/tess",
            &[("key", "password"), ("value", "tess")],
            107,
        )
        .await;
        expect(&s, admin, "PUT", "/cloud/users/tess", &[("key", "email"), ("value", "x@")], 101)
            .await;
        expect(
            &s,
            admin,
            "PUT",
            "/cloud/users/tess",
            &[("key", "language"), ("value", "klingon!")],
            102,
        )
        .await;
        expect(&s, admin, "PUT", "/cloud/users/admin/disable", &[], 101).await;
        expect(&s, sam, "PUT", "/cloud/users/uma/disable", &[], 998).await;
        expect(&s, admin, "DELETE", "/cloud/users/admin", &[], 101).await;
        expect(&s, sam, "DELETE", "/cloud/users/uma", &[], 998).await;
        expect(&s, admin, "POST", "/cloud/users/admin/wipe", &[], 101).await;
        expect(&s, admin, "POST", "/cloud/users/tess/groups", &[("groupid", "")], 101).await;
        expect(&s, admin, "POST", "/cloud/users/tess/groups", &[("groupid", "nope")], 102).await;
        expect(&s, admin, "POST", "/cloud/users/ghost/groups", &[("groupid", "g1")], 103).await;
        expect(&s, sam, "POST", "/cloud/users/tess/groups", &[("groupid", "g2")], 104).await;
        expect(&s, sam, "DELETE", "/cloud/users/tess/groups", &[("groupid", "g1")], 105).await;
        expect(&s, sam, "DELETE", "/cloud/users/sam/groups", &[("groupid", "g1")], 105).await;
        expect(&s, admin, "POST", "/cloud/users/ghost/subadmins", &[("groupid", "g1")], 101).await;
        expect(&s, admin, "POST", "/cloud/users/tess/subadmins", &[("groupid", "nope")], 102).await;
        expect(&s, admin, "POST", "/cloud/users/tess/subadmins", &[("groupid", "admin")], 103)
            .await;
        expect(&s, admin, "DELETE", "/cloud/users/tess/subadmins", &[("groupid", "g1")], 102).await;
        expect(&s, sam, "POST", "/cloud/users/tess/subadmins", &[("groupid", "g1")], 403).await;
        expect(&s, admin, "POST", "/cloud/groups", &[("groupid", "")], 101).await;
        expect(&s, admin, "POST", "/cloud/groups", &[("groupid", "g1")], 102).await;
        expect(&s, sam, "POST", "/cloud/groups", &[("groupid", "g9")], 403).await;
        expect(&s, admin, "DELETE", "/cloud/groups/nope", &[], 101).await;
        expect(&s, admin, "DELETE", "/cloud/groups/admin", &[], 102).await;
        expect(&s, admin, "GET", "/cloud/groups/nope/users", &[], 404).await;
        expect(&s, sam, "GET", "/cloud/groups/g2/users", &[], 403).await;
        expect(&s, ("nobody", "wrong"), "GET", "/cloud/users", &[], 997).await;

        // Successes, checked the same way.
        expect(&s, sam, "GET", "/cloud/groups/g1/users", &[], 200).await;
        expect(&s, admin, "PUT", "/cloud/users/tess", &[("key", "quota"), ("value", "2 GB")], 200)
            .await;

        // Nothing the refusals touched changed.
        let (_, body) = text(
            s.client
                .get(s.url("/ocs/v2.php/cloud/users?format=json"))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .header("OCS-APIRequest", "true")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(body.contains(r#""users":["admin","sam","tess","uma"]"#), "{b:?}: {body}");
        let out = String::from_utf8(s.command().args(["group", "list"]).output().unwrap().stdout)
            .unwrap();
        assert!(out.contains("g1\tsam,tess") && out.contains("g2\tuma"), "{out}");
        s.stop().await;
    }
}

/// An account used only through a device's app password (a sync client)
/// shows its last login to the administrator, as one that logs in with its
/// password does; it stayed 0 before.
#[tokio::test]
async fn a_login_with_an_app_password_is_the_accounts_last_login() {
    let s = Server::start(crate::harness::Backend::Sqlite).await;
    s.add_user("dev", "Dev-password-123456");
    let token = s.app_password("dev", "Dev-password-123456").await;
    let last_login = |s: &Server| {
        let r = s
            .client
            .get(s.url("/ocs/v2.php/cloud/users/dev?format=json"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .header("OCS-APIRequest", "true")
            .send();
        async move {
            let (code, body) = text(r.await.unwrap()).await;
            assert_eq!(code, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v["ocs"]["data"]["lastLogin"].as_i64().unwrap()
        }
    };
    // Creating the app password logged in with the password once; forget it.
    s.sql("UPDATE users SET last_login = 0 WHERE uid = 'dev'").await;
    s.sql("UPDATE app_tokens SET last_used = 0").await;
    assert_eq!(last_login(&s).await, 0);
    let before =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    let r = s.dav("PROPFIND", "dev", &token, "/").header("Depth", "0").send().await.unwrap();
    assert_eq!(r.status(), 207);
    let at = last_login(&s).await;
    assert!(at >= before - 1000 && at <= before + 60_000, "lastLogin {at}, request at {before}");
    // The account's own view says the same (it said 0 whatever happened).
    let r = s
        .client
        .get(s.url("/ocs/v2.php/cloud/user?format=json"))
        .basic_auth("dev", Some(&token))
        .header("OCS-APIRequest", "true")
        .send()
        .await
        .unwrap();
    let (code, body) = text(r).await;
    assert_eq!(code, 200, "{body}");
    let own: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(own["ocs"]["data"]["lastLogin"].as_i64(), Some(at), "{body}");
    s.stop().await;
}
