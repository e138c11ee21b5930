//! The WebDAV conformance suite litmus (Debian package `litmus`), run against
//! the real server on every backend: all 104 cases of its five suites must pass.

use std::process::Command;

use crate::harness::{ADMIN_PASSWORD, Server, backends, temp_dir};

#[tokio::test]
async fn litmus_passes_every_suite() {
    let found = Command::new("litmus").arg("--version").output();
    assert!(found.is_ok(), "litmus is not installed: `apt-get install litmus` (.ci/run does this)");
    for b in backends() {
        let s = Server::start(b).await;
        let url = s.url("/remote.php/dav/files/admin/");
        let work = temp_dir("litmus");
        let out = tokio::task::spawn_blocking(move || {
            Command::new("litmus")
                .args(["-k", &url, "admin", ADMIN_PASSWORD])
                .current_dir(&work)
                .output()
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
        eprintln!("litmus on {b:?}: {passed} of {run} passed");
        assert_eq!((passed, run), (104, 104), "{b:?}:\n{text}");
        s.stop().await;
    }
}
