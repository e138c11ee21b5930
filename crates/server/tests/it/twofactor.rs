//! Second factors over real HTTP: TOTP with codes from `oathtool` (an
//! implementation nobody here wrote), replay and malformed codes, backup
//! codes, the pending session refused on every other route, the password
//! refused over Basic, enforcement per group with setup at login, the
//! command line and the capabilities.

use std::process::Command;

use serde_json::{Value, json};

use crate::{
    harness::{Backend, Server},
    security::Browser,
};

/// The TOTP code `oathtool` computes for `secret`, `offset` seconds from now.
fn oathtool(secret: &str, offset: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-N", &format!("@{}", now + offset), secret])
        .output()
        .expect("oathtool is installed (.ci/run installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Turns TOTP on for `user` through Nextcloud's settings API; returns the secret.
async fn enrol_totp(s: &Server, user: &str, password: &str) -> String {
    enrol_totp_with_code(s, user, password).await.0
}

/// Turns TOTP on; returns the secret and the code spent on activating it.
async fn enrol_totp_with_code(s: &Server, user: &str, password: &str) -> (String, String) {
    let r = s
        .client
        .post(s.url("/index.php/apps/twofactor_totp/settings/enable"))
        .basic_auth(user, Some(password))
        .json(&json!({ "state": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let secret = v["secret"].as_str().unwrap().to_owned();
    assert!(v["qrUrl"].as_str().unwrap().starts_with("otpauth://totp/"));
    assert!(v["qrSvg"].as_str().unwrap().contains("<svg"));
    let wrong = s
        .client
        .post(s.url("/index.php/apps/twofactor_totp/settings/enable"))
        .basic_auth(user, Some(password))
        .json(&json!({ "state": 2, "code": "123456x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["state"],
        1,
        "a malformed code does not activate"
    );
    let code = oathtool(&secret, 0);
    let r = s
        .client
        .post(s.url("/index.php/apps/twofactor_totp/settings/enable"))
        .basic_auth(user, Some(password))
        .json(&json!({ "state": 2, "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["state"], 2);
    (secret, code)
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// Logs in with the password; asserts the session is pending; returns the
/// pending cookie value.
async fn password_step(b: &mut Browser, user: &str, password: &str) -> String {
    let r = b.login(user, password, false).await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/index.php/login/selectchallenge"), "{}", location(&r));
    b.cookies["sr_session"].clone()
}

async fn answer(b: &mut Browser, provider: &str, code: &str) -> reqwest::Response {
    answer_to(b, provider, code, "/done").await
}

async fn answer_to(b: &mut Browser, provider: &str, code: &str, to: &str) -> reqwest::Response {
    let page = b
        .send("GET", &format!("/index.php/login/challenge/{provider}"), &[], None)
        .await
        .text()
        .await
        .unwrap();
    let action =
        page.split("action=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    b.send("POST", &action, &[], Some(&[("challenge", code), ("redirect_url", to)])).await
}

/// Every route but the challenge refuses a pending session, however its
/// cookie is presented (C007).
async fn pending_refused_everywhere(s: &Server, b: &mut Browser, user: &str, cookie: &str) {
    let r = b
        .send("PROPFIND", &format!("/remote.php/dav/files/{user}/"), &[("Depth", "0")], None)
        .await;
    assert_eq!(r.status(), 401, "DAV with a pending session");
    let r = b
        .send("GET", "/ocs/v2.php/cloud/user?format=json", &[("OCS-APIRequest", "true")], None)
        .await;
    assert_eq!(r.status(), 401, "OCS with a pending session");
    let r = b.send("GET", "/index.php/settings/user/security", &[], None).await;
    assert_eq!(r.status(), 303, "pages send a pending session back to the login");
    for auth in [format!("Bearer {cookie}")] {
        let r = s
            .client
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                s.url(&format!("/remote.php/dav/files/{user}/")),
            )
            .header("Authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = s.dav("PROPFIND", user, cookie, "/").header("Depth", "0").send().await.unwrap();
    assert_eq!(r.status(), 401, "the pending cookie as a Basic password");
}

#[tokio::test]
async fn totp_login_replay_backup_codes_and_basic_refusal() {
    for backend in crate::harness::backends() {
        totp_flow_on(backend).await;
    }
}

async fn totp_flow_on(backend: Backend) {
    // Wrong codes are delayed like wrong passwords; a short base delay keeps this quick.
    let s = Server::start_with(backend, &[("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1")]).await;
    s.add_user("alice", "alice-password-1");
    s.add_user("bob", "bob-password-1");
    let (secret, spent) = enrol_totp_with_code(&s, "alice", "alice-password-1").await;
    let bob_secret = enrol_totp(&s, "bob", "bob-password-1").await;

    // The password alone no longer opens the account over Basic, on any route.
    let r = s
        .dav("PROPFIND", "alice", "alice-password-1", "/")
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .get(s.url("/ocs/v2.php/core/getapppassword"))
        .basic_auth("alice", Some("alice-password-1"))
        .header("OCS-APIRequest", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let mut b = Browser::new(&s);
    let pending = password_step(&mut b, "alice", "alice-password-1").await;
    pending_refused_everywhere(&s, &mut b, "alice", &pending).await;
    let r = b.send("GET", "/index.php/login/selectchallenge", &[], None).await;
    assert_eq!(
        location(&r),
        "/index.php/login/challenge/totp?redirect_url=%2Findex%2Ephp%2Fsettings%2Fuser%2Fsecurity"
    );

    // Malformed, wrong, another user's, and the code spent at enrolment: refused.
    for bad in ["abc", "", "1234567", "000000", &oathtool(&bob_secret, 30), &spent] {
        let r = answer(&mut b, "totp", bad).await;
        assert!(location(&r).contains("error=1"), "{bad:?} -> {}", location(&r));
        assert_eq!(b.cookies["sr_session"], pending);
    }
    // The next step's code is inside the window and not spent yet.
    let code = oathtool(&secret, 30);
    let r = answer(&mut b, "totp", &code).await;
    assert_eq!(location(&r), "/done");
    let full = b.cookies["sr_session"].clone();
    assert_ne!(full, pending, "passing the second factor starts a new session");
    let r = b.send("PROPFIND", "/remote.php/dav/files/alice/", &[("Depth", "0")], None).await;
    assert_eq!(r.status(), 207);
    let r = s.dav("PROPFIND", "alice", &pending, "/").header("Depth", "0").send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Replay: the same code in a second login is refused.
    let mut b2 = Browser::new(&s);
    password_step(&mut b2, "alice", "alice-password-1").await;
    let r = answer(&mut b2, "totp", &code).await;
    assert!(location(&r).contains("error=1"), "replayed code accepted");

    // Backup codes: made from the full session, each good once.
    let token = b.csrf().await;
    let r = b
        .send(
            "POST",
            "/index.php/apps/twofactor_backupcodes/settings/create",
            &[("requesttoken", token.as_str())],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let codes: Vec<String> =
        v["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 10);
    let r = b2.send("GET", "/index.php/login/selectchallenge", &[], None).await;
    let page = r.text().await.unwrap();
    assert!(page.contains("/index.php/login/challenge/backup_codes"), "{page}");
    let r = answer(&mut b2, "backup_codes", &codes[0].to_lowercase()).await;
    assert_eq!(location(&r), "/done");
    let mut b3 = Browser::new(&s);
    password_step(&mut b3, "alice", "alice-password-1").await;
    let r = answer(&mut b3, "backup_codes", &codes[0]).await;
    assert!(location(&r).contains("error=1"), "a used backup code works again");
    let v: Value = b
        .send("GET", "/index.php/settings/user/twofactor/state", &[], None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["factors"]["backup_remaining"], 9);
    assert_eq!(v["factors"]["backup_total"], 10);

    // App passwords made after a full login work without asking again.
    let r = b
        .send(
            "POST",
            "/index.php/settings/personal/authtokens",
            &[("requesttoken", token.as_str())],
            Some(&[("name", "laptop")]),
        )
        .await;
    assert_eq!(r.status(), 200);
    let app_password = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let r =
        s.dav("PROPFIND", "alice", &app_password, "/").header("Depth", "0").send().await.unwrap();
    assert_eq!(r.status(), 207);

    let (out, _) = s.cli_ok(&["twofactor", "status", "alice"]);
    assert!(out.contains("totp: on") && out.contains("backup codes: 9 of 10 left"), "{out}");
    let log = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap_or_default();
    for ev in [
        "twofactor.enabled",
        "twofactor.failure",
        "twofactor.success",
        "twofactor.backup_code_used",
        "twofactor.backup_codes_generated",
    ] {
        assert!(log.contains(ev), "audit log lacks {ev}");
    }
    s.stop().await;
}

#[tokio::test]
async fn wrong_codes_are_throttled() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("STRONGROOM_BRUTEFORCE_MAX_ATTEMPTS", "4"),
            ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
        ],
    )
    .await;
    s.add_user("erin", "erin-password-1");
    let secret = enrol_totp(&s, "erin", "erin-password-1").await;
    let mut b = Browser::new(&s);
    password_step(&mut b, "erin", "erin-password-1").await;
    let mut throttled = false;
    for _ in 0..8 {
        let r = answer(&mut b, "totp", "000000").await;
        throttled |= location(&r).contains("error=throttled");
    }
    assert!(throttled, "wrong codes never throttled");
    // Throttled means refused, even for the right code.
    let r = answer(&mut b, "totp", &oathtool(&secret, 30)).await;
    assert!(location(&r).contains("error=throttled"));
    s.stop().await;
}

#[tokio::test]
async fn enforcement_per_group_setup_at_login_and_admin_reset() {
    for backend in crate::harness::backends() {
        let s = Server::start(backend).await;
        s.add_user("carol", "carol-password-1");
        s.add_user("dave", "dave-password-1");
        s.cli_ok(&["group", "add", "staff"]);
        s.cli_ok(&["group", "add", "service"]);
        s.cli_ok(&["group", "adduser", "staff", "carol"]);
        let out =
            s.command().args(["twofactor", "enforce", "--group", "nosuchgroup"]).output().unwrap();
        assert!(!out.status.success(), "an unknown group is refused");
        let (out, _) = s.cli_ok(&["twofactor", "enforce", "--group", "staff"]);
        assert!(out.contains("enforced: yes"), "{out}");

        let caps: Value = s
            .client
            .get(s.url("/ocs/v2.php/cloud/capabilities?format=json"))
            .basic_auth("dave", Some("dave-password-1"))
            .header("OCS-APIRequest", "true")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let tf = &caps["ocs"]["data"]["capabilities"]["strongroom"]["twofactor"];
        assert_eq!(tf["enforced"], false, "dave is not in staff");
        assert!(tf["providers"].as_array().unwrap().iter().any(|p| p == "totp"));

        // carol has no factor yet: her password opens nothing but the setup.
        let r = s
            .dav("PROPFIND", "carol", "carol-password-1", "/")
            .header("Depth", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let mut b = Browser::new(&s);
        let pending = password_step(&mut b, "carol", "carol-password-1").await;
        pending_refused_everywhere(&s, &mut b, "carol", &pending).await;
        let r = b.send("GET", "/index.php/login/selectchallenge", &[], None).await;
        assert!(location(&r).starts_with("/index.php/login/setupchallenge"));
        let page =
            b.send("GET", "/index.php/login/setupchallenge", &[], None).await.text().await.unwrap();
        let action = page
            .split("action=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        let page = b
            .send("POST", &action, &[], Some(&[("redirect_url", "/done")]))
            .await
            .text()
            .await
            .unwrap();
        let secret =
            page.split("id=\"totp-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        assert!(page.contains("<svg"), "the QR code is drawn by the server");
        let action = page
            .split("action=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        let r = b
            .send(
                "POST",
                &action,
                &[],
                Some(&[("code", oathtool(&secret, 0).as_str()), ("redirect_url", "/done")]),
            )
            .await;
        assert!(
            page.contains("name=\"redirect_url\" value=\"/done\""),
            "the setup keeps where the login goes"
        );
        assert_eq!(location(&r), "/done");
        assert_ne!(b.cookies["sr_session"], pending);
        let r = b.send("PROPFIND", "/remote.php/dav/files/carol/", &[("Depth", "0")], None).await;
        assert_eq!(r.status(), 207, "{backend:?}");

        // dave is not in staff: no challenge.
        let mut d = Browser::new(&s);
        let r = d.login("dave", "dave-password-1", false).await;
        assert!(!location(&r).contains("challenge"), "{}", location(&r));

        // Excluded groups win.
        s.cli_ok(&["group", "adduser", "service", "dave"]);
        // The admin below uses the password over Basic: exempt, like a service account.
        s.cli_ok(&["group", "adduser", "service", "admin"]);
        s.cli_ok(&["twofactor", "enforce", "--exclude", "service"]);
        let mut d = Browser::new(&s);
        let r = d.login("dave", "dave-password-1", false).await;
        assert!(!location(&r).contains("challenge"), "excluded group");

        // The admin API: admins only, groups must exist.
        let r = s
            .client
            .put(s.url("/index.php/settings/api/admin/twofactorauth"))
            .basic_auth("dave", Some("dave-password-1"))
            .json(&json!({ "enforced": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = s
            .client
            .put(s.url("/index.php/settings/api/admin/twofactorauth"))
            .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
            .json(&json!({ "enforced": true, "enforcedGroups": ["nope"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = s
            .client
            .get(s.url("/index.php/settings/api/admin/twofactorauth"))
            .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["excludedGroups"][0], "service");

        // Admins see a user's factors (never a secret).
        let v: Value = s
            .client
            .get(s.url("/index.php/settings/api/admin/twofactorauth/state/carol"))
            .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["providers"], json!(["totp"]), "{v}");
        assert!(!v.to_string().contains(&secret));
        let r = s
            .client
            .get(s.url("/index.php/settings/api/admin/twofactorauth/state/carol"))
            .basic_auth("dave", Some("dave-password-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);

        // An admin's reset: carol's factors are gone, she is told, it is audited.
        let r = s
            .client
            .post(s.url("/index.php/settings/api/admin/twofactorauth/reset/carol"))
            .basic_auth("dave", Some("dave-password-1"))
            .header("OCS-APIRequest", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "not by a non-admin");
        s.cli_ok(&["twofactor", "disable-for", "carol"]);
        let (out, _) = s.cli_ok(&["twofactor", "status", "carol"]);
        assert!(out.contains("totp: off"), "{out}");
        let log = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap_or_default();
        assert!(log.contains("twofactor.reset") && log.contains("twofactor.policy"));
        s.stop().await;
    }
}

/// WebAuthn in a real browser: tests/py/test_webauthn.py drives headless
/// Chromium with its virtual authenticator against this server.
#[tokio::test]
async fn webauthn_ceremonies_in_chromium() {
    let python = crate::nc_py_api::venv().join("bin/python");
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("walt", "walt-password-1");
    // localhost, not 127.0.0.1: a relying party id must be a host name.
    let url = format!("http://localhost:{}", s.port);
    let audit = s.data_dir.join("audit.log");
    let db = s.data_dir.join("strongroom.db");
    let tests = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/test_webauthn.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", tests])
            .env("SR_URL", url)
            .env("SR_USER", "walt")
            .env("SR_PASSWORD", "walt-password-1")
            .env("SR_AUDIT", audit)
            .env("SR_DB", db)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n--- server log ---\n{}", s.log());
    s.stop().await;
}

/// An SMS gateway: answers every POST with 200 and keeps the bodies.
async fn sms_gateway() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then as much body as Content-Length says.
            loop {
                let n = c.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        keep.lock().unwrap().push(serde_json::from_str(body).unwrap());
                        break;
                    }
                }
            }
            let _ = c
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    (port, got)
}

/// The six digits of the newest message in a maildir the SMTP sink fills.
fn code_from_maildir(dir: &std::path::Path, to: &str) -> String {
    for _ in 0..50 {
        let mut newest: Option<(std::time::SystemTime, String)> = None;
        for sub in ["new", "cur"] {
            for e in std::fs::read_dir(dir.join(sub)).into_iter().flatten().flatten() {
                let t = e.metadata().unwrap().modified().unwrap();
                let text = std::fs::read_to_string(e.path()).unwrap();
                if text.contains(to) && newest.as_ref().is_none_or(|(n, _)| t > *n) {
                    newest = Some((t, text));
                }
            }
        }
        if let Some((_, text)) = newest {
            return digits_after(&text, "code is ");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no mail for {to} arrived at the SMTP sink");
}

fn digits_after(text: &str, marker: &str) -> String {
    text.split(marker).last().unwrap().chars().take_while(char::is_ascii_digit).collect()
}

#[tokio::test]
async fn codes_by_email_and_sms() {
    let venv = crate::nc_py_api::venv();
    let smtp_port = crate::harness::free_port();
    let maildir = crate::harness::temp_dir("maildir");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let _sink = Reaped(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{smtp_port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .spawn()
            .expect("aiosmtpd is installed in the venv (scripts/test)"),
    );
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", smtp_port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (sms_port, texts) = sms_gateway().await;
    let sms_url = format!("http://127.0.0.1:{sms_port}/send");
    let smtp_port_s = smtp_port.to_string();
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("STRONGROOM_TWOFACTOR_SMTP_HOST", "127.0.0.1"),
            ("STRONGROOM_TWOFACTOR_SMTP_PORT", &smtp_port_s),
            ("STRONGROOM_TWOFACTOR_SMTP_FROM", "cloud@example.org"),
            ("STRONGROOM_TWOFACTOR_SMS_URL", &sms_url),
        ],
    )
    .await;
    s.add_user("frank", "frank-password-1");
    let mut b = Browser::new(&s);
    let r = b.login("frank", "frank-password-1", false).await;
    assert!(!location(&r).contains("challenge"));
    let page =
        b.send("GET", "/index.php/settings/user/twofactor", &[], None).await.text().await.unwrap();
    let token = page.split("requesttoken=").nth(1).unwrap().split('"').next().unwrap().to_owned();

    // Bad addresses are refused and nothing is sent.
    let contact = |kind: &str| {
        format!("/index.php/settings/user/twofactor/contact/{kind}?requesttoken={token}")
    };
    for (kind, bad) in
        [("email", "not-an-address"), ("email", "a@b.c>\r\nBcc: x@y.z"), ("sms", "12ab")]
    {
        let r = b
            .send(
                "POST",
                &contact(kind),
                &[],
                Some(&[("address", bad), ("password", "frank-password-1")]),
            )
            .await;
        assert_eq!(r.status(), 400, "{bad:?}");
    }
    // Confirming each contact with the code sent there turns the factor on.
    let r = b
        .send(
            "POST",
            &contact("email"),
            &[],
            Some(&[("address", "frank@example.org"), ("password", "frank-password-1")]),
        )
        .await;
    let page = r.text().await.unwrap();
    assert!(page.contains("handle"), "{page}\n{}", s.log());
    let handle = page
        .split("name=\"handle\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let code = code_from_maildir(&maildir, "frank@example.org");
    assert_eq!(code.len(), 6);
    let r = b
        .send(
            "POST",
            &contact("email"),
            &[],
            Some(&[("handle", handle.as_str()), ("code", code.as_str())]),
        )
        .await;
    assert_eq!(location(&r), "/index.php/settings/user/twofactor?done=contact");
    let r = b
        .send(
            "POST",
            &contact("sms"),
            &[],
            Some(&[("address", "+15551234567"), ("password", "frank-password-1")]),
        )
        .await;
    let page = r.text().await.unwrap();
    let handle = page
        .split("name=\"handle\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let sms = texts.lock().unwrap().last().cloned().expect("the gateway got the SMS");
    assert_eq!(sms["to"], "+15551234567");
    let code = digits_after(sms["message"].as_str().unwrap(), "code is ");
    let r = b
        .send(
            "POST",
            &contact("sms"),
            &[],
            Some(&[("handle", handle.as_str()), ("code", code.as_str())]),
        )
        .await;
    assert_eq!(location(&r), "/index.php/settings/user/twofactor?done=contact");

    // Logging in: choose email, have a code sent, a wrong one fails, the right one passes once.
    let mut l = Browser::new(&s);
    password_step(&mut l, "frank", "frank-password-1").await;
    let page =
        l.send("GET", "/index.php/login/selectchallenge", &[], None).await.text().await.unwrap();
    assert!(page.contains("challenge/email") && page.contains("challenge/sms"), "{page}");
    let page =
        l.send("GET", "/index.php/login/challenge/email", &[], None).await.text().await.unwrap();
    let send =
        page.split("action=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let r = l.send("POST", &send, &[], Some(&[("redirect_url", "/done")])).await;
    let to = location(&r);
    assert!(to.contains("handle="), "{to}");
    let code = code_from_maildir(&maildir, "frank@example.org");
    let page = l.send("GET", &to, &[], None).await.text().await.unwrap();
    let action =
        page.split("action=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let handle = page
        .split("name=\"handle\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = l
        .send(
            "POST",
            &action,
            &[],
            Some(&[("challenge", wrong), ("handle", handle.as_str()), ("redirect_url", "/done")]),
        )
        .await;
    assert!(location(&r).contains("error=1"));
    let r = l
        .send(
            "POST",
            &action,
            &[],
            Some(&[
                ("challenge", code.as_str()),
                ("handle", handle.as_str()),
                ("redirect_url", "/done"),
            ]),
        )
        .await;
    assert_eq!(location(&r), "/done");
    let mut again = Browser::new(&s);
    password_step(&mut again, "frank", "frank-password-1").await;
    let page = again.send("GET", &to, &[], None).await.text().await.unwrap();
    let action =
        page.split("action=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let r = again
        .send(
            "POST",
            &action,
            &[],
            Some(&[("challenge", code.as_str()), ("handle", handle.as_str())]),
        )
        .await;
    assert!(location(&r).contains("error=1"), "a code is good once");

    let caps: Value = s
        .client
        .get(s.url("/ocs/v2.php/cloud/capabilities?format=json"))
        .header("OCS-APIRequest", "true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let providers = &caps["ocs"]["data"]["capabilities"]["strongroom"]["twofactor"]["providers"];
    assert!(providers.as_array().unwrap().iter().any(|p| p == "sms"), "{providers}");
    let log = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
    assert!(log.contains("twofactor.code_sent"));
    s.stop().await;
}

/// A child process killed when the test ends, passed or not.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn login_flow_v2_goes_through_the_challenge() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("gina", "gina-password-1");
    let secret = enrol_totp(&s, "gina", "gina-password-1").await;
    let flow: Value =
        s.client.post(s.url("/index.php/login/v2")).send().await.unwrap().json().await.unwrap();
    let token = flow["login"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let poll_token = flow["poll"]["token"].as_str().unwrap().to_owned();
    let poll = || {
        s.client
            .post(s.url("/index.php/login/v2/poll"))
            .form(&[("token", poll_token.as_str())])
            .send()
    };

    // The password alone grants nothing: it leads to the challenge.
    let mut b = Browser::new(&s);
    let form = [("token", token.as_str()), ("user", "gina"), ("password", "gina-password-1")];
    let r = b.send("POST", "/index.php/login/v2/grant", &[], Some(&form)).await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/index.php/login/selectchallenge"), "{}", location(&r));
    assert_eq!(poll().await.unwrap().status(), 404, "granted before the second factor");
    // A pending session cannot grant either.
    let r =
        b.send("POST", "/index.php/login/v2/grant", &[], Some(&[("token", token.as_str())])).await;
    assert_ne!(r.status(), 200);
    assert_eq!(poll().await.unwrap().status(), 404);

    let back = format!("/index.php/login/v2/flow/{token}");
    let r = answer_to(&mut b, "totp", &oathtool(&secret, 30), &back).await;
    assert_eq!(location(&r), back);
    let page = b.send("GET", &back, &[], None).await.text().await.unwrap();
    assert!(page.contains("Grant access as gina"), "{page}");
    let action =
        page.split("action=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let r = b.send("POST", &action, &[], Some(&[("token", token.as_str())])).await;
    assert_eq!(r.status(), 200);
    let grant: Value = poll().await.unwrap().json().await.unwrap();
    let app_password = grant["appPassword"].as_str().unwrap();
    let r = s.dav("PROPFIND", "gina", app_password, "/").header("Depth", "0").send().await.unwrap();
    assert_eq!(r.status(), 207, "the app password works without a second factor");
    s.stop().await;
}

/// The request token of a pending session, from its setup page.
async fn pending_token(b: &mut Browser) -> String {
    let page =
        b.send("GET", "/index.php/login/setupchallenge", &[], None).await.text().await.unwrap();
    page.split("requesttoken=").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

/// Rows left of a user's second factors, read straight from the SQLite file.
async fn factor_rows(s: &Server, user_id: i64) -> i64 {
    let c = rusqlite::Connection::open(s.data_dir.join("strongroom.db")).unwrap();
    let mut n = 0;
    for table in [
        "twofactor_totp",
        "twofactor_backup",
        "webauthn_keys",
        "twofactor_contacts",
        "mfa_challenges",
    ] {
        let q = format!("SELECT COUNT(*) FROM {table} WHERE user_id = {user_id}");
        n += c.query_row(&q, [], |r| r.get::<_, i64>(0)).unwrap();
    }
    n
}

#[tokio::test]
async fn guesses_are_limited_per_account_and_stale_challenges_resolve() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("STRONGROOM_BRUTEFORCE_MAX_ATTEMPTS", "4"),
            ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
            ("STRONGROOM_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    s.add_user("ivan", "ivan-password-1");
    let secret = enrol_totp(&s, "ivan", "ivan-password-1").await;
    let mut b = Browser::new(&s);
    password_step(&mut b, "ivan", "ivan-password-1").await;
    let page =
        b.send("GET", "/index.php/login/challenge/totp", &[], None).await.text().await.unwrap();
    let action =
        page.split("action=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    // Each guess from an address of its own (through the trusted proxy).
    let mut throttled_at = None;
    for i in 0..8 {
        let from = format!("198.51.100.{}", i + 1);
        let r = b
            .send("POST", &action, &[("X-Forwarded-For", &from)], Some(&[("challenge", "000000")]))
            .await;
        if location(&r).contains("throttled") {
            throttled_at = Some(i);
            break;
        }
    }
    assert!(throttled_at.is_some(), "guesses from ever new addresses were never throttled");
    let r = b
        .send(
            "POST",
            &action,
            &[("X-Forwarded-For", "203.0.113.9")],
            Some(&[("challenge", oathtool(&secret, 30).as_str())]),
        )
        .await;
    assert!(location(&r).contains("throttled"), "the account's budget is spent, from any address");

    // An admin's reset gives the account a fresh budget with its fresh start.
    s.cli_ok(&["twofactor", "disable-for", "ivan"]);
    let secret = enrol_totp(&s, "ivan", "ivan-password-1").await;
    let mut again = Browser::new(&s);
    password_step(&mut again, "ivan", "ivan-password-1").await;
    let r = answer(&mut again, "totp", &oathtool(&secret, 30)).await;
    assert_eq!(location(&r), "/done", "the reset did not clear the spent budget");

    // Another account is not affected.
    s.add_user("judy", "judy-password-1");
    let mut j = Browser::new(&s);
    let r = j.login("judy", "judy-password-1", false).await;
    assert!(!location(&r).contains("challenge"));

    // A pending login whose factors go away meanwhile finishes instead of looping.
    s.add_user("kim", "kim-password-1");
    s.cli_ok(&["group", "add", "staff"]);
    s.cli_ok(&["group", "adduser", "staff", "kim"]);
    s.cli_ok(&["twofactor", "enforce", "--group", "staff"]);
    let mut k = Browser::new(&s);
    password_step(&mut k, "kim", "kim-password-1").await;
    // The pending session may start over on a login form opened earlier
    // (the form has its own guard, the login cookie).
    let login_token = k.cookies["sr_login"].clone();
    let form =
        [("user", "kim"), ("password", "kim-password-1"), ("login_token", login_token.as_str())];
    let r = k.send("POST", "/index.php/login", &[], Some(&form)).await;
    assert_eq!(r.status(), 303, "a pending session blocks a new login");
    let token = pending_token(&mut k).await;
    s.cli_ok(&["twofactor", "enforce", "--off"]);
    // A setup form still open keeps where the login goes.
    let setup = format!("/index.php/login/setupchallenge/totp?requesttoken={token}");
    let r = k.send("POST", &setup, &[], Some(&[("redirect_url", "/done")])).await;
    assert_eq!(location(&r), "/index.php/login/selectchallenge?redirect_url=%2Fdone");
    let r = k.send("GET", "/index.php/login/selectchallenge?redirect_url=%2Fdone", &[], None).await;
    assert_eq!(location(&r), "/done");
    let r = k.send("PROPFIND", "/remote.php/dav/files/kim/", &[("Depth", "0")], None).await;
    assert_eq!(r.status(), 207);
    s.stop().await;
}

#[tokio::test]
async fn factors_are_turned_off_from_the_page_and_go_with_the_account() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("lena", "lena-password-1");
    let secret = enrol_totp(&s, "lena", "lena-password-1").await;
    let mut b = Browser::new(&s);
    password_step(&mut b, "lena", "lena-password-1").await;
    let r = answer(&mut b, "totp", &oathtool(&secret, 30)).await;
    assert_eq!(location(&r), "/done");
    let token = b.csrf().await;
    // Without a program's header, Basic credentials cannot reset anything.
    let r = s
        .client
        .post(s.url("/index.php/settings/api/admin/twofactorauth/reset/lena"))
        .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = b
        .send(
            "POST",
            "/index.php/apps/twofactor_backupcodes/settings/create",
            &[("requesttoken", token.as_str())],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let off = format!("/index.php/settings/user/twofactor/totp/off?requesttoken={token}");
    let r = b.send("POST", &off, &[], Some(&[("password", "wrong-password")])).await;
    assert!(location(&r).contains("wrongpassword"));
    let r = b.send("POST", &off, &[], Some(&[("password", "lena-password-1")])).await;
    assert!(location(&r).contains("done=off"));
    let (out, _) = s.cli_ok(&["twofactor", "status", "lena"]);
    assert!(out.contains("totp: off") && out.contains("backup codes: 10 of 10"), "{out}");
    let id = user_id_in_db(&s, "lena").await;
    assert!(factor_rows(&s, id).await > 0);
    s.cli_ok(&["user", "delete", "lena", "--yes"]);
    assert_eq!(factor_rows(&s, id).await, 0, "second-factor rows outlive the account");
    s.stop().await;
}

async fn user_id_in_db(s: &Server, uid: &str) -> i64 {
    let c = rusqlite::Connection::open(s.data_dir.join("strongroom.db")).unwrap();
    c.query_row("SELECT id FROM users WHERE uid = ?", [uid], |r| r.get(0)).unwrap()
}
