//! The WebDAV conformance suite litmus (Debian package `litmus`), run against
//! the real server on every backend: all 104 cases of its five suites must pass,
//! in one's own tree, in a received share and in an editable public link.

use std::process::Command;

use crate::harness::{ADMIN_PASSWORD, Server, backends, temp_dir};

#[tokio::test]
async fn litmus_passes_every_suite() {
    for b in backends() {
        let s = Server::start(b).await;
        let url = s.url("/remote.php/dav/files/admin/");
        run_litmus(&format!("{b:?}"), url, "admin", ADMIN_PASSWORD).await;
        s.stop().await;
    }
}

/// The same suite in a folder shared with a user (all permissions), and in
/// a public link that lets visitors edit: a tree reached through a share
/// must behave as WebDAV as one's own does.
#[tokio::test]
async fn litmus_passes_in_a_received_share_and_an_editable_link() {
    let s = Server::start(backends()[0]).await;
    for (u, p) in [("bob", "bob-litmus-password"), ("alice", "alice-litmus-password")] {
        s.add_user(u, p);
    }
    for folder in ["Shared", "Public"] {
        let r = s
            .dav("MKCOL", "bob", "bob-litmus-password", &format!("/{folder}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let share = |form: Vec<(&'static str, &'static str)>| {
        let s = &s;
        async move {
            let r = s
                .client
                .post(s.url("/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json"))
                .basic_auth("bob", Some("bob-litmus-password"))
                .header("OCS-APIRequest", "true")
                .form(&form)
                .send()
                .await
                .unwrap();
            let v: serde_json::Value = r.json().await.unwrap();
            v["ocs"]["data"].clone()
        }
    };
    share(vec![
        ("path", "/Shared"),
        ("shareType", "0"),
        ("shareWith", "alice"),
        ("permissions", "31"),
    ])
    .await;
    let url = s.url("/remote.php/dav/files/alice/Shared/");
    run_litmus("a received share", url, "alice", "alice-litmus-password").await;
    let link = share(vec![("path", "/Public"), ("shareType", "3"), ("permissions", "15")]).await;
    let url = s.url(&format!("/public.php/dav/files/{}/", link["token"].as_str().unwrap()));
    run_litmus("an editable public link", url, "anonymous", "").await;
    s.stop().await;
}

/// Runs litmus against `url`; all 104 cases of its five suites must pass.
async fn run_litmus(what: &str, url: String, user: &str, password: &str) {
    let found = Command::new("litmus").arg("--version").output();
    assert!(found.is_ok(), "litmus is not installed: `apt-get install litmus` (.ci/run does this)");
    let work = temp_dir("litmus");
    let (user, password) = (user.to_owned(), password.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("litmus").args(["-k", &url, &user, &password]).current_dir(&work).output()
    })
    .await
    .unwrap()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (mut passed, mut run) = (0, 0);
    for line in text.lines().filter(|l| l.starts_with("<- summary")) {
        // "<- summary for `basic': of 16 tests run: 16 passed, 0 failed. 100.0%"
        let nums: Vec<u32> =
            line.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
        run += nums[0];
        passed += nums[1];
    }
    eprintln!("litmus on {what}: {passed} of {run} passed");
    assert_eq!((passed, run), (104, 104), "{what}:\n{text}");
}
