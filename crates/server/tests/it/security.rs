//! Account security over real HTTP: sessions, CSRF, security headers,
//! brute-force protection on every way in, trusted proxies, devices, remote
//! wipe, TLS, and the audit log.

use std::{
    collections::HashMap,
    process::Command,
    time::{Duration, Instant},
};

use reqwest::{Method, Response, redirect::Policy};
use serde_json::Value;

use crate::harness::{ADMIN_PASSWORD, Backend, Server, temp_dir, text};

/// A cookie-keeping client that does not follow redirects, like a browser tab
/// whose every step the test inspects.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new(s: &Server) -> Browser {
        Browser {
            client: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(),
            base: s.base.clone(),
            cookies: HashMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub fn keep(&mut self, r: &Response) {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> Response {
        let mut rq = self.client.request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.base),
        );
        if !self.cookies.is_empty() {
            rq = rq.header("Cookie", self.cookie_header());
        }
        for (k, v) in headers {
            rq = rq.header(*k, *v);
        }
        if let Some(f) = form {
            rq = rq.form(f);
        }
        let r = rq.send().await.unwrap();
        self.keep(&r);
        r
    }

    /// Logs in through the form; returns the response to the POST.
    pub async fn login(&mut self, user: &str, password: &str, remember: bool) -> Response {
        let page = self.send("GET", "/index.php/login", &[], None).await.text().await.unwrap();
        let token = page
            .split("name=\"login_token\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let mut form =
            vec![("user", user), ("password", password), ("login_token", token.as_str())];
        if remember {
            form.push(("remember_login", "1"));
        }
        self.send("POST", "/index.php/login", &[], Some(&form)).await
    }

    pub async fn csrf(&mut self) -> String {
        let v: Value =
            self.send("GET", "/index.php/csrftoken", &[], None).await.json().await.unwrap();
        v["token"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn sessions_log_in_rotate_expire_and_log_out() {
    let s = Server::start_with(Backend::Sqlite, &[("STRONGROOM_SESSION_IDLE_SECS", "3")]).await;
    let mut b = Browser::new(&s);
    // A cross-site post of the login form has no matching cookie.
    let r = b
        .client
        .post(s.url("/index.php/login"))
        .form(&[("user", "admin"), ("password", ADMIN_PASSWORD), ("login_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);

    b.cookies.insert("sr_session".into(), "planted-by-an-attacker".into());
    let r = b.login("admin", ADMIN_PASSWORD, false).await;
    assert_eq!(r.status(), 303);
    let cookies: Vec<String> =
        r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session = cookies.iter().find(|c| c.starts_with("sr_session=")).expect("session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && !session.contains("Max-Age"),
        "{session}"
    );
    assert!(cookies.iter().any(|c| c.starts_with("nc_sameSiteCookiestrict=true") && c.contains("SameSite=Strict")));
    assert_ne!(b.cookies["sr_session"], "planted-by-an-attacker", "a new session id at login");

    let r = b.send("PROPFIND", "/remote.php/dav/files/admin/", &[("Depth", "0")], None).await;
    assert_eq!(r.status(), 207, "the session authenticates DAV reads");
    let page =
        b.send("GET", "/index.php/settings/user/security", &[], None).await.text().await.unwrap();
    assert!(page.contains("this session"), "{page}");

    // The session value is no password: not as Basic, not as Bearer.
    let value = b.cookies["sr_session"].clone();
    let r = s.dav("PROPFIND", "admin", &value, "/").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .request(Method::from_bytes(b"PROPFIND").unwrap(), s.url("/remote.php/dav/files/admin/"))
        .bearer_auth(&value)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Idle lifetime: unused for longer than 3 s, the session is gone.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = b.send("PROPFIND", "/remote.php/dav/files/admin/", &[("Depth", "0")], None).await;
    assert_eq!(r.status(), 401);

    // Logout ends it at once.
    assert_eq!(b.login("admin", ADMIN_PASSWORD, true).await.status(), 303);
    let kept = b.cookies["sr_session"].clone();
    let token = b.csrf().await;
    let r = b.send("POST", &format!("/index.php/logout?requesttoken={token}"), &[], None).await;
    assert_eq!(r.status(), 303);
    let r = s
        .client
        .request(Method::from_bytes(b"PROPFIND").unwrap(), s.url("/remote.php/dav/files/admin/"))
        .header("Cookie", format!("sr_session={kept}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a logged-out session cookie is worthless");
    s.stop().await;
}

#[tokio::test]
async fn remember_me_sets_a_lasting_cookie() {
    let s = Server::start(Backend::Sqlite).await;
    let mut b = Browser::new(&s);
    let r = b.login("admin", ADMIN_PASSWORD, true).await;
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("sr_session="))
        .unwrap();
    assert!(session.contains("Max-Age=1296000"), "{session}");
    s.stop().await;
}

#[tokio::test]
async fn cross_site_requests_with_the_session_cookie_are_refused() {
    let s = Server::start(Backend::Sqlite).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("admin", ADMIN_PASSWORD, false).await.status(), 303);
    let token = b.csrf().await;
    assert_eq!(
        b.send("PUT", "/remote.php/dav/files/admin/f.txt", &[("requesttoken", &token)], None)
            .await
            .status(),
        201
    );
    // A form another site posts: the browser sends the Lax cookie on top-level
    // navigation but never the Strict one, and the form cannot know the token.
    let mut cross = HashMap::new();
    cross.insert("sr_session".to_owned(), b.cookies["sr_session"].clone());
    cross.insert("nc_sameSiteCookielax".to_owned(), "true".to_owned());
    let cross_cookie = cross.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    for (method, path) in [
        ("POST", "/index.php/settings/personal/authtokens"),
        ("DELETE", "/remote.php/dav/files/admin/f.txt"),
        ("POST", "/ocs/v2.php/cloud/users"),
        ("POST", "/index.php/settings/personal/changepassword"),
    ] {
        let r = s
            .client
            .request(Method::from_bytes(method.as_bytes()).unwrap(), s.url(path))
            .header("Cookie", &cross_cookie)
            .header("Origin", "https://evil.example")
            .form(&[("name", "x"), ("userid", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 412, "{method} {path} cross-site");
        // Same-site but without the request token: refused too.
        let r = b.send(method, path, &[], Some(&[("name", "x"), ("userid", "x")])).await;
        assert_eq!(r.status(), 412, "{method} {path} without token");
    }
    assert_eq!(
        b.send("GET", "/remote.php/dav/files/admin/f.txt", &[], None).await.status(),
        200,
        "nothing was deleted"
    );
    // With the token (or, on OCS, the OCS-APIRequest header) the same calls work.
    assert_eq!(
        b.send("DELETE", "/remote.php/dav/files/admin/f.txt", &[("requesttoken", &token)], None)
            .await
            .status(),
        204
    );
    let r = b
        .send("GET", "/ocs/v2.php/cloud/user?format=json", &[("OCS-APIRequest", "true")], None)
        .await;
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let s = Server::start(Backend::Sqlite).await;
    let responses = vec![
        s.client.get(s.url("/index.php/login")).send().await.unwrap(),
        s.client.get(s.url("/index.php/login")).send().await.unwrap(),
        s.client.get(s.url("/status.php")).send().await.unwrap(),
        s.admin("PROPFIND", "/").send().await.unwrap(),
        s.dav("GET", "admin", "wrong", "/").send().await.unwrap(),
        s.client.get(s.url("/ocs/v2.php/cloud/capabilities")).send().await.unwrap(),
    ];
    let mut nonces = Vec::new();
    for r in responses {
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("base-uri 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        let page = r.url().path() == "/index.php/login";
        match csp.split("'nonce-").nth(1) {
            // The login page loads its script by this response's nonce only.
            Some(rest) => {
                assert!(page, "a nonce on {}: {csp}", r.url());
                nonces.push(rest.split('\'').next().unwrap().to_owned());
            }
            // Everything else admits no script or style at all.
            None => {
                assert!(!page, "no nonce on the login page: {csp}");
                assert!(!csp.contains("script-src") && !csp.contains("style-src"), "{csp}");
            }
        }
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h.contains_key("x-robots-tag") && h.contains_key("x-permitted-cross-domain-policies")
        );
        assert!(!h.contains_key("strict-transport-security"), "no HSTS without TLS");
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 2, "a fresh nonce per page");
    s.stop().await;
}

#[tokio::test]
async fn https_is_served_with_hsts_and_secure_cookies() {
    let dir = temp_dir("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl) makes the test certificate");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("STRONGROOM_TLS_CERT", cert.to_str().unwrap()),
            ("STRONGROOM_TLS_KEY", key.to_str().unwrap()),
        ],
    )
    .await;
    let https = s.base.replace("http://", "https://");
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "-D", "-", "-o", "/dev/null", "--cacert"])
            .arg(&cert)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_lowercase()
    };
    let head = curl(&[&format!("{https}/index.php/login")]);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("strict-transport-security: max-age="), "{head}");
    assert!(head.contains("set-cookie: __host-sr_login=") && head.contains("secure"), "{head}");
    let head = curl(&[
        "-u",
        &format!("admin:{ADMIN_PASSWORD}"),
        "-X",
        "PROPFIND",
        &format!("{https}/remote.php/dav/files/admin/"),
    ]);
    assert!(head.starts_with("http/1.1 207"), "{head}");
    // A client that does not trust the certificate fails the handshake.
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", &format!("{https}/status.php")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    s.stop().await;
}

/// Sends attempts until `n` have been answered or refused; counts answers that were not 429.
async fn hammer<F, Fut>(n: usize, mut attempt: F) -> (usize, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..n {
        if attempt().await == 429 { refused += 1 } else { answered += 1 }
    }
    (answered, refused)
}

#[tokio::test]
async fn a_thousand_wrong_passwords_get_only_the_budget_of_answers_on_every_way_in() {
    let env = [
        ("STRONGROOM_BRUTEFORCE_MAX_ATTEMPTS", "5"),
        ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
        ("STRONGROOM_BRUTEFORCE_MAX_DELAY_MS", "5"),
        ("STRONGROOM_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let s = Server::start_with(Backend::Sqlite, &env).await;
    let budget = 5;
    let started = Instant::now();
    // Each way in from its own client address, as a proxy reports it.
    let ways: Vec<(&str, String)> = vec![
        ("dav", "198.51.100.1".into()),
        ("ocs", "198.51.100.2".into()),
        ("app password", "198.51.100.3".into()),
        ("web login", "198.51.100.4".into()),
        ("login flow", "198.51.100.5".into()),
    ];
    for (way, addr) in &ways {
        let addr = addr.clone();
        let client = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        let base = s.base.clone();
        let (answered, refused) = match *way {
            "dav" => {
                hammer(1000, || {
                    let rq = client
                        .request(
                            Method::from_bytes(b"PROPFIND").unwrap(),
                            format!("{base}/remote.php/dav/files/admin/"),
                        )
                        .basic_auth("admin", Some("guess"))
                        .header("X-Forwarded-For", &addr);
                    async move { rq.send().await.unwrap().status().as_u16() }
                })
                .await
            }
            "ocs" => {
                hammer(1000, || {
                    let rq = client
                        .get(format!("{base}/ocs/v2.php/cloud/user"))
                        .basic_auth("admin", Some("guess"))
                        .header("OCS-APIRequest", "true")
                        .header("X-Forwarded-For", &addr);
                    async move { rq.send().await.unwrap().status().as_u16() }
                })
                .await
            }
            "app password" => {
                hammer(1000, || {
                    let rq = client
                        .get(format!("{base}/ocs/v2.php/cloud/user"))
                        .basic_auth("admin", Some("A".repeat(72)))
                        .header("OCS-APIRequest", "true")
                        .header("X-Forwarded-For", &addr);
                    async move { rq.send().await.unwrap().status().as_u16() }
                })
                .await
            }
            "web login" => {
                hammer(1000, || {
                    let rq = client
                        .post(format!("{base}/index.php/login"))
                        .header("Cookie", "sr_login=t")
                        .header("X-Forwarded-For", &addr)
                        .form(&[("user", "admin"), ("password", "guess"), ("login_token", "t")]);
                    async move {
                        let r = rq.send().await.unwrap();
                        let to = r
                            .headers()
                            .get("location")
                            .map(|l| l.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        if to.contains("throttled") { 429 } else { r.status().as_u16() }
                    }
                })
                .await
            }
            _ => {
                let flow: Value = client
                    .post(format!("{base}/index.php/login/v2"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let login_token =
                    flow["login"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
                hammer(1000, || {
                    let rq = client
                        .post(format!("{base}/index.php/login/v2/grant"))
                        .header("X-Forwarded-For", &addr)
                        .form(&[
                            ("token", login_token.as_str()),
                            ("user", "admin"),
                            ("password", "guess"),
                        ]);
                    async move { rq.send().await.unwrap().status().as_u16() }
                })
                .await
            }
        };
        eprintln!("{way}: {answered} of 1000 wrong passwords answered, {refused} refused with 429");
        assert!(answered <= budget, "{way}: {answered} answers exceed the budget of {budget}");
        assert!(refused >= 1000 - budget);
    }
    eprintln!("5 × 1000 attempts took {:?}", started.elapsed());
    // A legitimate user at another address is not slowed, and spoofing that
    // address from an untrusted peer is impossible (the proxy header is ignored).
    let r = s
        .dav("PROPFIND", "admin", ADMIN_PASSWORD, "/")
        .header("X-Forwarded-For", "192.0.2.50")
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let out =
        s.command().args(["security", "bruteforce", "status", "198.51.100.1"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("login"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        s.command()
            .args(["security", "bruteforce", "reset", "198.51.100.1"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let r = s
        .dav("PROPFIND", "admin", ADMIN_PASSWORD, "/")
        .header("X-Forwarded-For", "198.51.100.1")
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207, "after a reset the address may log in again");
    s.stop().await;
}

#[tokio::test]
async fn spoofed_forwarding_headers_through_an_untrusted_peer_change_nothing() {
    let env = [
        ("STRONGROOM_BRUTEFORCE_MAX_ATTEMPTS", "3"),
        ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
        ("STRONGROOM_BRUTEFORCE_MAX_DELAY_MS", "2"),
    ];
    let s = Server::start_with(Backend::Sqlite, &env).await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        let r = s
            .dav("PROPFIND", "admin", "guess", "/")
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .header("Forwarded", format!("for=198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    // All attempts count against the real peer: after 3 answers the rest are refused.
    assert_eq!(statuses.iter().filter(|c| **c == 401).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|c| **c == 429).count(), 17, "{statuses:?}");
    let out = String::from_utf8(
        s.command()
            .args(["security", "bruteforce", "status", "127.0.0.1"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(out.contains("login\t4"), "{out}");
    for spoofed in ["203.0.113.5", "198.51.100.5"] {
        let out = String::from_utf8(
            s.command()
                .args(["security", "bruteforce", "status", spoofed])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(out.contains("no failed attempts"), "a header moved the counter: {out}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_legitimate_user_elsewhere_is_not_slowed() {
    let env = [
        ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1500"),
        ("STRONGROOM_TRUSTED_PROXIES", "127.0.0.0/8"),
    ];
    let s = Server::start_with(Backend::Sqlite, &env).await;
    for _ in 0..2 {
        let r = s
            .dav("PROPFIND", "admin", "guess", "/")
            .header("X-Forwarded-For", "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let t = Instant::now();
    let r = s
        .dav("PROPFIND", "admin", "guess", "/")
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let attacker = t.elapsed();
    let t = Instant::now();
    let r = s
        .dav("PROPFIND", "admin", ADMIN_PASSWORD, "/")
        .header("X-Forwarded-For", "192.0.2.10")
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let user = t.elapsed();
    assert!(
        attacker >= Duration::from_millis(2900),
        "the third failure waits 2 × 1.5 s: {attacker:?}"
    );
    assert!(user < Duration::from_millis(1400), "another address is not delayed: {user:?}");
    s.stop().await;
}

#[tokio::test]
async fn devices_are_listed_renamed_revoked_and_wiped_as_the_desktop_client_sees_it() {
    let s = Server::start_with(Backend::Sqlite, &[("STRONGROOM_SESSION_CONFIRM_SECS", "1")]).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("admin", ADMIN_PASSWORD, false).await.status(), 303);
    let token = b.csrf().await;
    // Creating an app password needs a fresh password confirmation.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = b
        .send(
            "POST",
            "/index.php/settings/personal/authtokens",
            &[("requesttoken", &token)],
            Some(&[("name", "Laptop")]),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = b
        .send(
            "POST",
            "/index.php/login/confirm",
            &[("requesttoken", &token)],
            Some(&[("password", "wrong")]),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = b
        .send(
            "POST",
            "/index.php/login/confirm",
            &[("requesttoken", &token)],
            Some(&[("password", ADMIN_PASSWORD)]),
        )
        .await;
    assert_eq!(r.status(), 200);
    let made: Value = b
        .send(
            "POST",
            "/index.php/settings/personal/authtokens",
            &[("requesttoken", &token)],
            Some(&[("name", "Laptop")]),
        )
        .await
        .json()
        .await
        .unwrap();
    let laptop = made["token"].as_str().unwrap().to_owned();
    let laptop_id = made["deviceToken"]["id"].as_i64().unwrap();
    let made: Value = b
        .send(
            "POST",
            "/index.php/settings/personal/authtokens",
            &[("requesttoken", &token)],
            Some(&[("name", "Phone")]),
        )
        .await
        .json()
        .await
        .unwrap();
    let phone = made["token"].as_str().unwrap().to_owned();
    let phone_id = made["deviceToken"]["id"].as_i64().unwrap();
    // Use the laptop from a proxy-less address: last activity and address are shown.
    let r = s
        .dav("PROPFIND", "admin", &laptop, "/")
        .header("Depth", "0")
        .header("User-Agent", "Mozilla/5.0 (Linux) mirall/3.7.3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let list: Value = b
        .send("GET", "/index.php/settings/personal/authtokens", &[], None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> =
        list.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"Laptop")
            && names.contains(&"Phone")
            && list.as_array().unwrap().iter().any(|d| d["current"] == true),
        "{list}"
    );
    let l = list.as_array().unwrap().iter().find(|d| d["id"] == laptop_id).unwrap();
    assert_eq!(l["lastAddress"], "127.0.0.1");
    // Rename, then revoke the phone: refused on its very next request.
    let r = b
        .send(
            "PUT",
            &format!("/index.php/settings/personal/authtokens/{phone_id}"),
            &[("requesttoken", &token)],
            Some(&[("name", "Old phone")]),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = b
        .send(
            "DELETE",
            &format!("/index.php/settings/personal/authtokens/{phone_id}"),
            &[("requesttoken", &token)],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.dav("PROPFIND", "admin", &phone, "/").send().await.unwrap().status(), 401);

    // Remote wipe of the laptop, driven as the desktop client does it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = b
        .send(
            "POST",
            &format!("/index.php/settings/personal/authtokens/wipe/{laptop_id}"),
            &[("requesttoken", &token)],
            None,
        )
        .await;
    assert_eq!(r.status(), 403, "wiping needs a fresh confirmation too");
    let _ = b
        .send(
            "POST",
            "/index.php/login/confirm",
            &[("requesttoken", &token)],
            Some(&[("password", ADMIN_PASSWORD)]),
        )
        .await;
    let r = b
        .send(
            "POST",
            &format!("/index.php/settings/personal/authtokens/wipe/{laptop_id}"),
            &[("requesttoken", &token)],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        s.dav("PROPFIND", "admin", &laptop, "/").send().await.unwrap().status(),
        401,
        "the device is refused"
    );
    let r = s
        .client
        .post(s.url("/index.php/core/wipe/check"))
        .form(&[("token", laptop.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["wipe"], true);
    let r = s
        .client
        .post(s.url("/index.php/core/wipe/success"))
        .form(&[("token", laptop.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        s.client
            .post(s.url("/index.php/core/wipe/check"))
            .form(&[("token", laptop.as_str())])
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let list: Value = b
        .send("GET", "/index.php/settings/personal/authtokens", &[], None)
        .await
        .json()
        .await
        .unwrap();
    assert!(!list.to_string().contains("Laptop"), "the wiped device's token is gone");
    let page =
        b.send("GET", "/index.php/settings/user/security", &[], None).await.text().await.unwrap();
    assert!(page.contains("&quot;Laptop&quot; has wiped its data"), "the user is notified: {page}");
    // The admin's wipe of every device of a user (provisioning API).
    s.add_user("vic", "vics-long-passphrase");
    let (_, body) = text(
        s.client
            .get(s.url("/ocs/v2.php/core/getapppassword?format=json"))
            .basic_auth("vic", Some("vics-long-passphrase"))
            .header("OCS-APIRequest", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let vic: Value = serde_json::from_str(&body).unwrap();
    let vic = vic["ocs"]["data"]["apppassword"].as_str().unwrap().to_owned();
    let r = s
        .client
        .post(s.url("/ocs/v2.php/cloud/users/vic/wipe"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("OCS-APIRequest", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.dav("PROPFIND", "vic", &vic, "/").send().await.unwrap().status(), 401);
    assert_eq!(
        s.client
            .post(s.url("/index.php/core/wipe/check"))
            .form(&[("token", vic.as_str())])
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let audit = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
    for action in [
        "login.success",
        "token.created",
        "token.revoked",
        "wipe.requested",
        "wipe.started",
        "wipe.confirmed",
        "login.failure",
    ] {
        assert!(
            audit.contains(&format!("\"action\":\"{action}\"")),
            "{action} missing from the audit log"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn the_audit_chain_names_a_removed_or_edited_line_and_no_secret_is_logged() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("wendy", "wendys-secret-passphrase");
    let mut b = Browser::new(&s);
    assert_eq!(b.login("wendy", "wendys-secret-passphrase", false).await.status(), 303);
    let session = b.cookies["sr_session"].clone();
    let csrf = b.csrf().await;
    let _ = Browser::new(&s).login("wendy", "a-wrong-secret-guess", false).await;
    let (_, body) = text(
        s.client
            .get(s.url("/ocs/v2.php/core/getapppassword?format=json"))
            .basic_auth("wendy", Some("wendys-secret-passphrase"))
            .header("OCS-APIRequest", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let app: Value = serde_json::from_str(&body).unwrap();
    let app = app["ocs"]["data"]["apppassword"].as_str().unwrap().to_owned();
    assert_eq!(s.dav("PUT", "wendy", &app, "/x.txt").body("x").send().await.unwrap().status(), 201);
    let flow: Value =
        s.client.post(s.url("/index.php/login/v2")).send().await.unwrap().json().await.unwrap();
    let poll = flow["poll"]["token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let audit_path = s.data_dir.join("audit.log");
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    let logs = format!("{}{audit}", s.log());
    for secret in [
        "wendys-secret-passphrase",
        "a-wrong-secret-guess",
        ADMIN_PASSWORD,
        &session,
        &csrf,
        &app,
        &poll,
    ] {
        assert!(!logs.contains(secret), "a secret reached a log: {secret}");
    }

    let verify = || {
        let out = s.command().args(["audit", "verify"]).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = verify();
    assert!(ok && out.contains("chain intact"), "{out}");
    let lines: Vec<&str> = audit.lines().collect();
    assert!(lines.len() >= 4, "{audit}");
    let mut removed = lines.clone();
    removed.remove(1);
    std::fs::write(&audit_path, removed.join("\n") + "\n").unwrap();
    let (ok, out) = verify();
    assert!(!ok && out.contains("line 2"), "{out}");
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[2] = edited[2].replace("wendy", "wanda");
    std::fs::write(&audit_path, edited.join("\n") + "\n").unwrap();
    let (ok, out) = verify();
    assert!(!ok && out.contains("line 3"), "{out}");
    s.stop().await;
}

#[tokio::test]
async fn nodes_sharing_redis_share_their_failure_counts() {
    let Ok(redis) = std::env::var("STRONGROOM_TEST_REDIS") else {
        eprintln!(
            "STRONGROOM_TEST_REDIS is not set: the shared-counter test needs a Redis (CI sets it)"
        );
        return;
    };
    // A client address no other test uses, as a trusted proxy reports it.
    let addr = format!("198.18.{}.{}", rand::random::<u8>(), rand::random::<u8>());
    let env = [
        ("STRONGROOM_REDIS_URL", redis.as_str()),
        ("STRONGROOM_TRUSTED_PROXIES", "127.0.0.1"),
        ("STRONGROOM_BRUTEFORCE_MAX_ATTEMPTS", "2"),
        ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
        ("STRONGROOM_BRUTEFORCE_MAX_DELAY_MS", "2"),
    ];
    let a = Server::start_with(Backend::Sqlite, &env).await;
    let b = Server::start_with(Backend::Sqlite, &env).await;
    let attempt = |s: &Server| {
        s.dav("PROPFIND", "admin", "guess", "/").header("X-Forwarded-For", addr.clone()).send()
    };
    for _ in 0..2 {
        assert_eq!(attempt(&a).await.unwrap().status(), 401);
    }
    assert_eq!(attempt(&a).await.unwrap().status(), 429);
    assert_eq!(attempt(&b).await.unwrap().status(), 429, "the other node sees the same failures");
    let out = String::from_utf8(
        b.command().args(["security", "bruteforce", "status", &addr]).output().unwrap().stdout,
    )
    .unwrap();
    assert!(out.contains("login\t3"), "{out}");
    assert!(
        b.command()
            .args(["security", "bruteforce", "reset", &addr])
            .output()
            .unwrap()
            .status
            .success()
    );
    let r = a
        .dav("PROPFIND", "admin", ADMIN_PASSWORD, "/")
        .header("X-Forwarded-For", addr.clone())
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207, "a reset on one node holds on the other");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_disabled_account_loses_its_sessions_and_app_passwords_at_once() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("xena", "xenas-long-passphrase");
    let mut b = Browser::new(&s);
    assert_eq!(b.login("xena", "xenas-long-passphrase", false).await.status(), 303);
    let (_, body) = text(
        s.client
            .get(s.url("/ocs/v2.php/core/getapppassword?format=json"))
            .basic_auth("xena", Some("xenas-long-passphrase"))
            .header("OCS-APIRequest", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let app: Value = serde_json::from_str(&body).unwrap();
    let app = app["ocs"]["data"]["apppassword"].as_str().unwrap().to_owned();
    assert_eq!(
        b.send("PROPFIND", "/remote.php/dav/files/xena/", &[("Depth", "0")], None).await.status(),
        207
    );
    assert!(s.command().args(["user", "disable", "xena"]).output().unwrap().status.success());
    assert_eq!(
        b.send("PROPFIND", "/remote.php/dav/files/xena/", &[("Depth", "0")], None).await.status(),
        401,
        "the session"
    );
    assert_eq!(
        s.dav("PROPFIND", "xena", &app, "/").send().await.unwrap().status(),
        401,
        "the app password"
    );
    assert_eq!(
        s.dav("PROPFIND", "xena", "xenas-long-passphrase", "/").send().await.unwrap().status(),
        401,
        "the password"
    );
    assert_eq!(
        Browser::new(&s).login("xena", "xenas-long-passphrase", false).await.headers()["location"],
        "/index.php/login?error=1"
    );
    s.stop().await;
}

/// A connection remembers an app password it verified a moment ago
/// (`http/recall.rs`): a change made through the server is seen by the very
/// next request on it, one made by the command line (another process)
/// within a quarter of a second.
#[tokio::test]
async fn a_connection_forgets_a_verified_app_password_as_soon_as_anything_changes() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("yara", "yaras-long-passphrase");
    let propfind = |app: &str| s.dav("PROPFIND", "yara", app, "/").header("Depth", "0").send();
    // One keep-alive connection: each request waits for the one before.
    let first = s.app_password("yara", "yaras-long-passphrase").await;
    for _ in 0..3 {
        assert_eq!(propfind(&first).await.unwrap().status(), 207);
    }
    // Revoked by this process: refused on the next request.
    let r = s
        .client
        .delete(s.url("/ocs/v2.php/core/apppassword"))
        .basic_auth("yara", Some(&first))
        .header("OCS-APIRequest", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(propfind(&first).await.unwrap().status(), 401, "a revoked app password");
    // A password other than the remembered one is never taken for it.
    let second = s.app_password("yara", "yaras-long-passphrase").await;
    assert_eq!(propfind(&second).await.unwrap().status(), 207);
    let mut wrong = second.clone();
    wrong.replace_range(70.., "xy");
    assert_eq!(propfind(&wrong).await.unwrap().status(), 401);
    assert_eq!(propfind(&second).await.unwrap().status(), 207);
    // Disabled by the command line, another process: a write is refused at
    // once (writes are always checked), a read within the quarter of a second.
    assert!(s.command().args(["user", "disable", "yara"]).output().unwrap().status.success());
    let put = s.dav("PUT", "yara", &second, "/after.txt").body("x").send().await.unwrap();
    assert_eq!(put.status(), 401, "a write of a disabled account");
    let disabled = Instant::now();
    loop {
        let status = propfind(&second).await.unwrap().status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 207);
        assert!(disabled.elapsed() < Duration::from_millis(250), "a disabled account let in");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}

/// The same for the account password sent over Basic (a script, a WebDAV
/// mount): a changed password, a disabled account or a demanded second
/// factor is refused on the next request of the connection that verified it.
#[tokio::test]
async fn a_connection_forgets_a_verified_account_password_as_soon_as_anything_changes() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("zeno", "zenos-first-passphrase");
    s.add_user("zoe", "zoes-long-passphrase");
    let propfind =
        |user: &str, pw: &str| s.dav("PROPFIND", user, pw, "/").header("Depth", "0").send();
    let ocs_put = |user: &str, pw: &str, path: &str, form: &[(&str, &str)]| {
        s.client
            .put(s.url(&format!("/ocs/v2.php/cloud/{path}")))
            .basic_auth(user, Some(pw))
            .header("OCS-APIRequest", "true")
            .form(form)
            .send()
    };
    // One keep-alive connection: each request waits for the one before.
    for _ in 0..3 {
        assert_eq!(propfind("zeno", "zenos-first-passphrase").await.unwrap().status(), 207);
    }
    // Changed through the server (a write, which the connection does not
    // remember): the old password is refused on the next read.
    let form = [("key", "password"), ("value", "zenos-second-passphrase")];
    let r = ocs_put("zeno", "zenos-first-passphrase", "users/zeno", &form).await.unwrap();
    assert_eq!(r.status(), 200);
    let old = propfind("zeno", "zenos-first-passphrase").await.unwrap();
    assert_eq!(old.status(), 401, "a changed password");
    for _ in 0..3 {
        assert_eq!(propfind("zeno", "zenos-second-passphrase").await.unwrap().status(), 207);
    }
    assert_eq!(propfind("zeno", "zenos-second-passphrase!").await.unwrap().status(), 401);
    assert_eq!(propfind("zeno", "zenos-second-passphrase").await.unwrap().status(), 207);
    // Disabled by an administrator.
    let r = ocs_put("admin", ADMIN_PASSWORD, "users/zeno/disable", &[]).await.unwrap();
    assert_eq!(r.status(), 200);
    let disabled = propfind("zeno", "zenos-second-passphrase").await.unwrap();
    assert_eq!(disabled.status(), 401, "a disabled account");
    // A second factor demanded of every account: the account password no
    // longer signs in over Basic.
    for _ in 0..3 {
        assert_eq!(propfind("zoe", "zoes-long-passphrase").await.unwrap().status(), 207);
    }
    let r = s
        .client
        .put(s.url("/index.php/settings/api/admin/twofactorauth"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({ "enforced": true, "enforcedGroups": [], "excludedGroups": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let demanded = propfind("zoe", "zoes-long-passphrase").await.unwrap();
    assert_eq!(demanded.status(), 401, "a second factor demanded");
    s.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_https_proxy_cookies_are_secure_and_hsts_is_sent() {
    let s =
        Server::start_with(Backend::Sqlite, &[("STRONGROOM_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let r = s
        .client
        .get(s.url("/index.php/login"))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("strict-transport-security"));
    let c = r.headers()["set-cookie"].to_str().unwrap();
    assert!(c.starts_with("__Host-sr_login=") && c.contains("Secure"), "{c}");
    let flow: Value = s
        .client
        .post(s.url("/index.php/login/v2"))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(flow["login"].as_str().unwrap().starts_with("https://"), "{flow}");
    // From an untrusted peer the header means nothing.
    let plain = Server::start(Backend::Sqlite).await;
    let r = plain
        .client
        .get(plain.url("/index.php/login"))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("strict-transport-security"));
    s.stop().await;
    plain.stop().await;
}

#[tokio::test]
async fn parallel_guesses_count_each_other() {
    for b in crate::harness::backends() {
        let env = [
            ("STRONGROOM_BRUTEFORCE_MAX_ATTEMPTS", "10"),
            ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
            ("STRONGROOM_BRUTEFORCE_MAX_DELAY_MS", "5"),
        ];
        let s = Server::start_with(b, &env).await;
        let mut all = Vec::new();
        for i in 0..100 {
            let rq = s.dav("PROPFIND", "admin", &format!("guess{i}"), "/");
            all.push(tokio::spawn(async move { rq.send().await.unwrap().status().as_u16() }));
        }
        let mut answered = 0;
        for t in all {
            if t.await.unwrap() == 401 {
                answered += 1;
            }
        }
        eprintln!("{b:?}: {answered} of 100 parallel guesses were checked");
        assert!(answered <= 10, "{b:?}: {answered} parallel guesses were checked");
        s.stop().await;
    }
}

/// A locked-out address is refused the right account password too, even
/// one the server verified a moment ago (and keeps in its cache of verified
/// passwords): were only wrong guesses refused, the lockout would go on
/// telling right from wrong at full speed. App passwords, which cannot be
/// guessed, still work from there, so sync clients behind the same address
/// go on.
#[tokio::test]
async fn a_locked_out_address_is_refused_even_a_password_verified_a_moment_ago() {
    for b in crate::harness::backends() {
        let env = [
            ("STRONGROOM_BRUTEFORCE_MAX_ATTEMPTS", "3"),
            ("STRONGROOM_BRUTEFORCE_BASE_DELAY_MS", "1"),
            ("STRONGROOM_BRUTEFORCE_MAX_DELAY_MS", "5"),
        ];
        let s = Server::start_with(b, &env).await;
        s.add_user("ada", "adas-long-passphrase");
        let app = s.app_password("ada", "adas-long-passphrase").await;
        let propfind = |pw: &str| s.dav("PROPFIND", "ada", pw, "/").header("Depth", "0").send();
        assert_eq!(propfind("adas-long-passphrase").await.unwrap().status(), 207);
        for _ in 0..3 {
            assert_eq!(propfind("adas-wrong-guess").await.unwrap().status(), 401);
        }
        // At the budget: a checked password would be the attempt past it.
        let right = propfind("adas-long-passphrase").await.unwrap();
        assert_eq!(right.status(), 429, "{b:?}: the right password from a locked-out address");
        assert_eq!(propfind("adas-wrong-guess").await.unwrap().status(), 429);
        let right = propfind("adas-long-passphrase").await.unwrap();
        assert_eq!(right.status(), 429, "{b:?}: the right password past the budget");
        let other = s.dav("PROPFIND", "admin", ADMIN_PASSWORD, "/").header("Depth", "0");
        assert_eq!(other.send().await.unwrap().status(), 429, "{b:?}: another account's");
        assert_eq!(propfind(&app).await.unwrap().status(), 207, "{b:?}: an app password");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_browser_session_changes_accounts_only_after_confirming_the_password() {
    let s = Server::start_with(Backend::Sqlite, &[("STRONGROOM_SESSION_CONFIRM_SECS", "1")]).await;
    s.add_user("yuri", "yuris-long-passphrase");
    let mut b = Browser::new(&s);
    assert_eq!(b.login("yuri", "yuris-long-passphrase", false).await.status(), 303);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let form = [("key", "password"), ("value", "Hijacked-pass-999")];
    let r = b
        .send(
            "PUT",
            "/ocs/v2.php/cloud/users/yuri?format=json",
            &[("OCS-APIRequest", "true")],
            Some(&form),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Password confirmation is required"));
    assert_eq!(
        s.dav("PROPFIND", "yuri", "yuris-long-passphrase", "/")
            .header("Depth", "0")
            .send()
            .await
            .unwrap()
            .status(),
        207
    );
    let token = b.csrf().await;
    assert_eq!(
        b.send(
            "POST",
            "/index.php/login/confirm",
            &[("requesttoken", &token)],
            Some(&[("password", "yuris-long-passphrase")])
        )
        .await
        .status(),
        200
    );
    let r = b
        .send(
            "PUT",
            "/ocs/v2.php/cloud/users/yuri?format=json",
            &[("OCS-APIRequest", "true")],
            Some(&form),
        )
        .await;
    assert_eq!(r.status(), 200);
    // A logout link from another site ends nothing.
    assert_eq!(b.send("GET", "/index.php/logout", &[], None).await.status(), 412);
    assert_eq!(b.send("GET", "/index.php/csrftoken", &[], None).await.status(), 200);
    s.stop().await;
}

/// Basic credentials a browser remembers travel with another site's form
/// too: a state change the browser marks as cross-site is refused, whatever
/// the credentials; programs (which send no such mark) are unaffected.
#[tokio::test]
async fn cross_site_posts_with_basic_credentials_are_refused() {
    let s = Server::start(Backend::Sqlite).await;
    let form = [("userid", "csrfuser"), ("password", "Csrf-Pass-Long-123")];
    let r = s
        .client
        .post(s.url("/ocs/v2.php/cloud/users"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = s
        .admin("PROPFIND", "/")
        .header("Depth", "0")
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207, "reading is not a state change");
    let r = s
        .client
        .get(s.url("/ocs/v2.php/cloud/users/csrfuser"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("OCS-APIRequest", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the cross-site post created the user");
    let r = s
        .client
        .post(s.url("/ocs/v2.php/cloud/users"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("OCS-APIRequest", "true")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

/// A device seen at a new address is recorded once in the audit log
/// (`token.new_address`), however many of its requests arrive together from
/// there, on every database: the request whose write changes the recorded
/// address reports it, not every request that read the old one.
#[tokio::test]
async fn a_new_address_of_an_app_password_is_audited_once_for_many_requests_at_once() {
    for b in crate::harness::backends() {
        let s = Server::start_with(b, &[("STRONGROOM_TRUSTED_PROXIES", "127.0.0.1")]).await;
        let token = s.app_password("admin", ADMIN_PASSWORD).await;
        // The first address a token is used from is recorded without an event.
        let first = s.dav("PROPFIND", "admin", &token, "/").header("Depth", "0");
        let r = first.header("X-Forwarded-For", "198.51.100.1").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 207);
        let addresses = ["192.0.2.40", "2001:db8::41", "192.0.2.42"];
        for addr in addresses {
            let mut together = tokio::task::JoinSet::new();
            for _ in 0..16 {
                let rq = s.dav("PROPFIND", "admin", &token, "/").header("Depth", "0");
                together.spawn(rq.header("X-Forwarded-For", addr).send());
            }
            while let Some(r) = together.join_next().await {
                assert_eq!(r.unwrap().unwrap().status().as_u16(), 207, "{b:?}");
            }
        }
        let audit = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
        for addr in addresses {
            let quoted = format!("\"{addr}\"");
            let events = audit
                .lines()
                .filter(|l| l.contains("\"token.new_address\"") && l.contains(&quoted))
                .count();
            assert_eq!(events, 1, "{b:?} {addr}: {audit}");
        }
        s.stop().await;
    }
}

/// A client that sends several requests at once with the account password
/// (rclone, nc_py_api) gets them all through with one password check: the
/// others wait for it and find it done, rather than each running Argon2 and
/// counting as an attempt for the throttle. Wrong passwords sent at once are
/// all refused.
#[tokio::test]
async fn requests_sent_at_once_with_a_password_share_one_check() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("carol", "Carol-Pass-4471");
    let at_once = |password: &'static str, n: usize| {
        let mut together = tokio::task::JoinSet::new();
        for _ in 0..n {
            let rq = s.dav("PROPFIND", "carol", password, "/").header("Depth", "0");
            together.spawn(rq.send());
        }
        together
    };
    let mut right = at_once("Carol-Pass-4471", 8);
    while let Some(r) = right.join_next().await {
        assert_eq!(r.unwrap().unwrap().status().as_u16(), 207);
    }
    // Each wrong one is checked and counted in turn: few, as the throttle's
    // delays add up.
    let mut wrong = at_once("Carol-Pass-4472", 3);
    while let Some(r) = wrong.join_next().await {
        assert_eq!(r.unwrap().unwrap().status().as_u16(), 401);
    }
    let audit = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
    let checks = audit
        .lines()
        .filter(|l| l.contains("\"login.success\"") && l.contains("\"carol\""))
        .count();
    assert_eq!(checks, 1, "{audit}");
    s.stop().await;
}

/// A browser session used from an address it was not used from before is
/// audited too (`session.new_address`), once however many of its requests
/// arrive together from there.
#[tokio::test]
async fn a_new_address_of_a_browser_session_is_audited_once() {
    let s =
        Server::start_with(Backend::Sqlite, &[("STRONGROOM_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("admin", ADMIN_PASSWORD, false).await.status(), 303);
    let mut together = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let rq = b
            .client
            .request(
                Method::from_bytes(b"PROPFIND").unwrap(),
                s.url("/remote.php/dav/files/admin/"),
            )
            .header("Depth", "0")
            .header("Cookie", b.cookie_header())
            .header("X-Forwarded-For", "192.0.2.77");
        together.spawn(rq.send());
    }
    while let Some(r) = together.join_next().await {
        assert_eq!(r.unwrap().unwrap().status().as_u16(), 207);
    }
    let audit = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
    let moves: Vec<&str> =
        audit.lines().filter(|l| l.contains("\"session.new_address\"")).collect();
    assert_eq!(moves.len(), 1, "{audit}");
    assert!(moves[0].contains("\"192.0.2.77\"") && moves[0].contains("\"admin\""), "{audit}");
    s.stop().await;
}

/// A browser pointed at the server (`/`, `/index.php`) is sent to the login
/// page; other methods there are WebDAV's as before.
#[tokio::test]
async fn the_server_root_leads_a_browser_to_the_login_page() {
    let s = Server::start(Backend::Sqlite).await;
    let b = Browser::new(&s);
    for path in ["/", "/index.php"] {
        let r = b.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/index.php/login", "{path}");
        let propfind = Method::from_bytes(b"PROPFIND").unwrap();
        let r = b.client.request(propfind, s.url(path)).send().await.unwrap();
        assert_ne!(r.status().as_u16(), 405, "{path}");
    }
    let page = b.client.get(s.url("/index.php/login")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    s.stop().await;
}

/// A login to a disabled account with its right password is refused like a
/// wrong password (the client learns nothing more), and the audit log tells
/// the administrator that the disabled account's password was used; a wrong
/// password for it stays "wrong credentials". Both said "wrong credentials".
#[tokio::test]
async fn a_login_to_a_disabled_account_is_audited_as_such() {
    let s = Server::start(Backend::Sqlite).await;
    s.add_user("dora", "doras-secret-passphrase");
    s.add_user("eve", "eves-secret-passphrase");
    s.cli_ok(&["user", "disable", "dora"]);
    let tries = [
        ("dora", "doras-secret-passphrase"),
        ("dora", "a-guess-for-dora"),
        ("eve", "not-eves-passphrase"),
    ];
    for (user, password) in tries {
        let r = s.dav("PROPFIND", user, password, "/").header("Depth", "0").send().await.unwrap();
        assert_eq!(r.status(), 401, "{user}");
    }
    let audit = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
    let reasons_for = |user: &str| {
        audit
            .lines()
            .filter(|l| l.contains("\"action\":\"login.failure\""))
            .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string())
            .filter(|v| v.contains(&format!("\"{user}\"")))
            .map(|v| match v.contains("account disabled") {
                true => "account disabled",
                false if v.contains("wrong credentials") => "wrong credentials",
                false => "other",
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(reasons_for("dora"), ["account disabled", "wrong credentials"], "{audit}");
    assert_eq!(reasons_for("eve"), ["wrong credentials"], "{audit}");
    s.stop().await;
}

/// Nothing the server writes can be read by another account of the machine,
/// whatever umask it was started with: every file and folder below the data
/// folder (database, content files, uploads in progress, audit log) has no
/// bits for group or others.
#[tokio::test]
async fn nothing_in_the_data_folder_is_readable_by_other_accounts() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start(Backend::Sqlite).await;
    let big = vec![7u8; 300 * 1024];
    assert_eq!(s.admin("PUT", "/big.bin").body(big).send().await.unwrap().status(), 201);
    assert_eq!(s.admin("PUT", "/small.txt").body("x").send().await.unwrap().status(), 201);
    let up = s.url("/remote.php/dav/uploads/admin/u1");
    let mkcol = reqwest::Method::from_bytes(b"MKCOL").unwrap();
    let r = s.client.request(mkcol, &up).basic_auth("admin", Some(ADMIN_PASSWORD));
    assert_eq!(r.send().await.unwrap().status(), 201);
    let chunk = s.client.put(format!("{up}/1")).basic_auth("admin", Some(ADMIN_PASSWORD));
    assert_eq!(chunk.body(vec![1u8; 200 * 1024]).send().await.unwrap().status(), 201);
    s.cli_ok(&["group", "add", "team"]);
    let mut seen = 0;
    let mut todo = vec![s.data_dir.clone()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let mode = meta.permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", entry.path().display());
            if meta.is_dir() {
                todo.push(entry.path());
            }
            seen += 1;
        }
    }
    // The database and its WAL, the audit log and the two content files at least.
    assert!(seen >= 5, "only {seen} entries in the data folder");
    s.stop().await;
}
