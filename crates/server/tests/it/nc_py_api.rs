//! Runs the provisioning and sharing tests written with nc_py_api (tests/py) against the
//! real server. The virtual environment with nc-py-api and pytest comes from
//! `STRONGROOM_TEST_VENV` (scripts/test makes it).

use std::process::Command;

use crate::harness::{ADMIN_PASSWORD, Server, backends};

pub fn venv() -> std::path::PathBuf {
    let v = std::env::var("STRONGROOM_TEST_VENV").unwrap_or_else(|_| {
        panic!("STRONGROOM_TEST_VENV is not set: create a venv with `pip install nc-py-api pytest` (scripts/test does this)")
    });
    std::path::PathBuf::from(v)
}

#[tokio::test]
async fn nc_py_api_provisioning_suite_passes() {
    suite_passes(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/test_provisioning.py")).await;
}

#[tokio::test]
async fn nc_py_api_sharing_suite_passes() {
    suite_passes(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/test_sharing.py")).await;
}

#[tokio::test]
async fn nc_py_api_trash_versions_and_favourites_suite_passes() {
    suite_passes(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/test_files.py")).await;
}

/// Runs one pytest file against a fresh server on every backend.
async fn suite_passes(tests: &'static str) {
    let python = venv().join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: pip install nc-py-api pytest into the venv",
        python.display()
    );
    for b in backends() {
        let s = Server::start(b).await;
        let (url, py) = (s.base.clone(), python.clone());
        let out = tokio::task::spawn_blocking(move || {
            Command::new(py)
                .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", tests])
                .env("SR_URL", url)
                .env("SR_ADMIN", "admin")
                .env("SR_ADMIN_PASSWORD", ADMIN_PASSWORD)
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let summary =
            text.lines().rev().find(|l| l.contains("passed") || l.contains("failed")).unwrap_or("");
        eprintln!("nc_py_api on {b:?}: {summary}");
        assert!(out.status.success(), "{b:?}:\n{text}\n--- server log ---\n{}", s.log());
        s.stop().await;
    }
}
