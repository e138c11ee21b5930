//! Encryption at rest through the real server: content on disk is never
//! plaintext, every kind of tampering is refused (500, audited, no
//! unauthenticated byte served), existing content converts both ways and
//! resumes after a kill, the master key rotates without re-encrypting, and
//! the PKCS#11 provider works against a real SoftHSM2 token.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::{
    harness::{Backend, Server, TestDb, backends, temp_dir},
    sync_fixtures::sha1_hex,
};

const MARKER: &[u8] = b"STRONGROOM-KNOWN-PLAINTEXT-0123456789";
const SEGMENT: usize = 64 * 1024;
const SEALED: usize = SEGMENT + 16;
const HEADER: usize = 24;

/// Content made of the marker, so plaintext on disk is easy to spot.
fn marked(len: usize, salt: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + MARKER.len());
    let mut i = 0u32;
    while v.len() < len {
        v.extend_from_slice(MARKER);
        v.extend_from_slice(format!("{salt}-{i};").as_bytes());
        i += 1;
    }
    v.truncate(len);
    v
}

/// Blob rows holding their content (plaintext, up to 64 KiB).
const INLINE_ROWS: &str = "SELECT COUNT(*) FROM blobs WHERE content IS NOT NULL";

fn key_file_env(tag: &str) -> (PathBuf, Vec<(String, String)>) {
    let keys = temp_dir(tag).join("master.keys");
    let env = vec![
        ("STRONGROOM_ENCRYPTION_KEY_FILE".to_string(), keys.display().to_string()),
        ("STRONGROOM_ENCRYPTION_REPLACED_GRACE_SECS".to_string(), "0".to_string()),
    ];
    (keys, env)
}

async fn start(b: Backend, env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    Server::start_on(TestDb::create(b).await, &env).await
}

/// Every stored blob file (not partial writes).
fn blob_files(s: &Server) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(s.data_dir.join("blobs")).unwrap().flatten() {
        if shard.file_name() == ".tmp" {
            continue;
        }
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

fn plaintext_on_disk(s: &Server) -> Vec<PathBuf> {
    blob_files(s)
        .into_iter()
        .filter(|p| std::fs::read(p).unwrap().windows(MARKER.len()).any(|w| w == MARKER))
        .collect()
}

async fn put(s: &Server, path: &str, body: Vec<u8>) {
    let r = s.admin("PUT", path).body(body).send().await.unwrap();
    assert!(r.status().is_success(), "PUT {path}: {}", r.status());
}

async fn get(s: &Server, path: &str) -> (u16, Vec<u8>) {
    let r = s.admin("GET", path).send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
}

/// Waits until the running server has followed the switch in the database.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
}

#[tokio::test]
async fn encrypted_content_is_never_plaintext_on_disk_and_reads_back_exactly() {
    for b in backends() {
        let (_keys, env) = key_file_env("enc-keys");
        let s = start(b, &env).await;
        s.cli_ok(&["encryption", "enable"]);
        settle().await;
        let small = marked(5_000, 1);
        let big = marked(3 * SEGMENT + 777, 2);
        put(&s, "/small.txt", small.clone()).await;
        put(&s, "/big.bin", big.clone()).await;
        put(&s, "/empty.txt", Vec::new()).await;
        assert_eq!(get(&s, "/small.txt").await, (200, small.clone()), "{b:?}");
        assert_eq!(get(&s, "/big.bin").await, (200, big.clone()), "{b:?}");
        assert_eq!(get(&s, "/empty.txt").await, (200, Vec::new()), "{b:?}");
        // Ranges decrypt only what they touch, across segment borders too.
        for (a, z) in [(0usize, 4095usize), (65_530, 65_545), (2 * SEGMENT, 2 * SEGMENT + 4095)] {
            let r = s
                .admin("GET", "/big.bin")
                .header("Range", format!("bytes={a}-{z}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 206, "{b:?}");
            assert_eq!(r.bytes().await.unwrap().to_vec(), big[a..=z].to_vec(), "{b:?} {a}-{z}");
        }
        // The checksum clients see is the plaintext's.
        let ask = r#"<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:checksums/><d:getcontentlength/></d:prop></d:propfind>"#;
        let r =
            s.admin("PROPFIND", "/big.bin").header("Depth", "0").body(ask).send().await.unwrap();
        let listing = r.text().await.unwrap();
        assert!(listing.contains(&sha1_hex(&big)), "{b:?}: {listing}");
        assert!(listing.contains(&format!(">{}<", big.len())), "{b:?}: {listing}");
        // An overwrite keeps the old content as a (still encrypted) version.
        put(&s, "/small.txt", marked(6_000, 3)).await;
        assert_eq!(plaintext_on_disk(&s), Vec::<PathBuf>::new(), "{b:?}: plaintext on disk");
        let (out, _) = s.cli_ok(&["encryption", "status"]);
        assert!(out.contains("encryption: on") && out.contains("plaintext: 0 blobs"), "{out}");
        s.stop().await;
    }
}

/// Writes a damaged copy of the blob and asks for the file.
async fn tampered_get(s: &Server, blob: &Path, original: &[u8], damaged: Vec<u8>) -> u16 {
    std::fs::write(blob, &damaged).unwrap();
    let (code, body) = get(s, "/victim.bin").await;
    std::fs::write(blob, original).unwrap();
    assert!(body.windows(MARKER.len()).all(|w| w != MARKER) || code != 200, "plaintext served");
    code
}

#[tokio::test]
async fn tampered_blobs_are_refused_audited_and_never_served() {
    let (_keys, env) = key_file_env("enc-tamper");
    let s = start(Backend::Sqlite, &env).await;
    s.cli_ok(&["encryption", "enable"]);
    settle().await;
    put(&s, "/other.bin", marked(3 * SEGMENT, 9)).await;
    let other_blob = blob_files(&s).pop().unwrap();
    let content = marked(2 * SEGMENT + 1000, 4);
    put(&s, "/victim.bin", content.clone()).await;
    let blob = blob_files(&s).into_iter().find(|p| *p != other_blob).unwrap();
    let sealed = std::fs::read(&blob).unwrap();
    let other = std::fs::read(&other_blob).unwrap();
    let seg = |i: usize| HEADER + i * SEALED..HEADER + (i + 1) * SEALED;
    let mut variants: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut swapped = sealed.clone();
    swapped[seg(0)].copy_from_slice(&sealed[seg(1)]);
    swapped[seg(1)].copy_from_slice(&sealed[seg(0)]);
    variants.push(("segments 1 and 2 swapped", swapped));
    let mut transplant = sealed.clone();
    transplant[seg(1)].copy_from_slice(&other[seg(1)]);
    variants.push(("segment 2 from another file", transplant));
    let mut header = sealed.clone();
    header[..HEADER].copy_from_slice(&other[..HEADER]);
    variants.push(("header from another file", header));
    let mut version = sealed.clone();
    version[6] = 0;
    variants.push(("format version downgraded", version));
    let mut flipped = sealed.clone();
    let last = flipped.len() - 20;
    flipped[last] ^= 0x01;
    variants.push(("one bit of the last segment", flipped));
    // Same length, last segment cut short and padded: the size check cannot
    // catch it, the authentication must.
    let mut cut = sealed[..HEADER + 2 * SEALED].to_vec();
    cut.resize(sealed.len(), 0);
    variants.push(("last segment replaced by zeros", cut));
    for (what, damaged) in variants {
        let code = tampered_get(&s, &blob, &sealed, damaged).await;
        assert_eq!(code, 500, "{what}");
    }
    // Truncation changes the length: refused before anything is read.
    let code = tampered_get(&s, &blob, &sealed, sealed[..HEADER + 2 * SEALED].to_vec()).await;
    assert_eq!(code, 500, "truncated after two segments");
    assert_eq!(get(&s, "/victim.bin").await, (200, content), "intact again");
    let audit = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
    let failures = audit.lines().filter(|l| l.contains("\"encryption.failure\"")).count();
    assert!(failures >= 7, "each refusal is audited (truncation too), found {failures}:\n{audit}");
    s.stop().await;
}

#[tokio::test]
async fn damage_beyond_the_verified_start_cuts_the_download_without_serving_it() {
    let (_keys, env) = key_file_env("enc-late");
    let s = start(Backend::Sqlite, &env).await;
    s.cli_ok(&["encryption", "enable"]);
    settle().await;
    let content = marked(3 * 1024 * 1024, 5);
    put(&s, "/late.bin", content.clone()).await;
    let blob = blob_files(&s).pop().unwrap();
    let mut sealed = std::fs::read(&blob).unwrap();
    // Segment 40 starts at 2.5 MiB of plaintext, past the first MiB checked up front.
    let at = HEADER + 40 * SEALED + 100;
    sealed[at] ^= 0x80;
    std::fs::write(&blob, &sealed).unwrap();
    let r = s.admin("GET", "/late.bin").send().await.unwrap();
    let mut got = Vec::new();
    let mut stream = r;
    let mut failed = false;
    loop {
        match stream.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed || got.len() < content.len(), "the transfer must not complete");
    assert!(got.len() <= 40 * SEGMENT, "nothing of the damaged segment or after it was sent");
    assert_eq!(got[..], content[..got.len()], "what was sent is authentic");
    s.stop().await;
}

/// Runs `encrypt-all` one blob at a time and kills it after `after` progress lines.
fn interrupted_encrypt_all(s: &Server, after: usize) {
    let mut child = s
        .command()
        .args(["encryption", "encrypt-all", "--batch", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = 0;
    for l in lines.map_while(Result::ok) {
        if l.starts_with("encrypted ") {
            seen += 1;
            if seen == after {
                break;
            }
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(seen, after, "encrypt-all ended before it could be interrupted");
}

#[tokio::test]
async fn existing_content_converts_both_ways_resumes_after_a_kill_and_rotates() {
    for b in backends() {
        let (keys, env) = key_file_env("enc-convert");
        let s = start(b, &env).await;
        let mut files = Vec::new();
        for i in 0..40u8 {
            let body = marked(1_000 + i as usize * 3_000, i);
            put(&s, &format!("/f{i}.bin"), body.clone()).await;
            files.push((format!("/f{i}.bin"), body));
        }
        put(&s, "/f0.bin", marked(999, 200)).await; // a version too
        assert!(!plaintext_on_disk(&s).is_empty());
        // Files up to 64 KiB keep their content in the database.
        assert_eq!(s.sql_count(INLINE_ROWS).await, 23, "{b:?}");
        s.cli_ok(&["encryption", "enable"]);
        interrupted_encrypt_all(&s, 5);
        let (out, _) = s.cli_ok(&["encryption", "status"]);
        assert!(!out.contains("plaintext: 0 blobs"), "{b:?}: the kill left work: {out}");
        let (out, _) = s.cli_ok(&["encryption", "encrypt-all"]);
        assert!(out.contains("nothing is left to encrypt"), "{out}");
        assert_eq!(plaintext_on_disk(&s), Vec::<PathBuf>::new(), "{b:?}");
        assert_eq!(s.sql_count(INLINE_ROWS).await, 0, "{b:?}: plaintext left in the database");
        files[0].1 = marked(999, 200);
        for (p, body) in &files {
            assert_eq!(get(&s, p).await, (200, body.clone()), "{b:?} {p}");
        }
        // Rotation: data keys re-wrapped, content files untouched, old key destroyed.
        let before: Vec<(PathBuf, Vec<u8>)> =
            blob_files(&s).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
        let (out, _) = s.cli_ok(&["encryption", "rotate-master-key", "--settle-secs", "5"]);
        assert!(out.contains("retired master key file:"), "{b:?}: {out}");
        let after: Vec<(PathBuf, Vec<u8>)> =
            blob_files(&s).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
        assert_eq!(before, after, "{b:?}: rotation must not rewrite content");
        let key_lines = std::fs::read_to_string(&keys).unwrap();
        assert_eq!(key_lines.lines().filter(|l| l.starts_with("file:")).count(), 1, "{key_lines}");
        for (p, body) in &files {
            assert_eq!(get(&s, p).await, (200, body.clone()), "{b:?} {p} after rotation");
        }
        // New uploads after the rotation use the new key (the server followed the switch).
        put(&s, "/after.bin", marked(70_000, 77)).await;
        assert_eq!(get(&s, "/after.bin").await.1, marked(70_000, 77));
        // And back to plaintext.
        let refused = s.command().args(["encryption", "decrypt-all"]).output().unwrap();
        assert!(!refused.status.success(), "decrypt-all while encryption is on");
        s.cli_ok(&["encryption", "disable"]);
        let (out, _) = s.cli_ok(&["encryption", "decrypt-all"]);
        assert!(out.contains("nothing is left to decrypt"), "{out}");
        let (out, _) = s.cli_ok(&["encryption", "status"]);
        assert!(out.contains("encryption: off") && !out.contains("encrypted with"), "{out}");
        // Small ones went back into the database (after.bin is larger).
        assert_eq!(s.sql_count(INLINE_ROWS).await, 23, "{b:?}");
        for (p, body) in &files {
            assert_eq!(get(&s, p).await, (200, body.clone()), "{b:?} {p} decrypted");
        }
        let audit = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
        for ev in [
            "encryption.enabled",
            "encryption.master_key.created",
            "encryption.rotation.finished",
            "encryption.master_key.retired",
            "encryption.decrypt_all.finished",
        ] {
            assert!(audit.contains(&format!("\"{ev}\"")), "{b:?}: {ev} not audited");
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn encrypted_content_without_its_keys_stops_the_server_with_a_clear_message() {
    let (keys, env) = key_file_env("enc-missing");
    let s = start(Backend::Sqlite, &env).await;
    s.cli_ok(&["encryption", "enable"]);
    settle().await;
    put(&s, "/x.bin", marked(1000, 1)).await;
    // No provider configured at all.
    let out = Command::new(crate::harness::bin())
        .arg("--data-dir")
        .arg(&s.data_dir)
        .args(["encryption", "status"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no key provider is configured"), "{err}");
    // The key file lost: the current master key is missing.
    std::fs::rename(&keys, keys.with_extension("away")).unwrap();
    let out = s.command().args(["encryption", "status"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("restore it from your key backup"), "{err}");
    std::fs::rename(keys.with_extension("away"), &keys).unwrap();
    // A key file inside the data folder is refused.
    let out = s
        .command()
        .env("STRONGROOM_ENCRYPTION_KEY_FILE", s.data_dir.join("keys"))
        .args(["encryption", "status"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("encryption.key_file") && err.contains("inside"), "{err}");
    s.stop().await;
}

/// A private SoftHSM2 token: its configuration file and the environment
/// that points the server at it.
fn softhsm_token(pin: &str) -> Vec<(String, String)> {
    let module = "/usr/lib/softhsm/libsofthsm2.so";
    assert!(
        Path::new(module).exists(),
        "SoftHSM2 is not installed: `apt-get install softhsm2 opensc` (.ci/run does this)"
    );
    let dir = temp_dir("softhsm");
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "strongroom",
            "--so-pin",
            "12345678",
            "--pin",
            pin,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    vec![
        ("SOFTHSM2_CONF".into(), conf.display().to_string()),
        ("STRONGROOM_ENCRYPTION_PROVIDER".into(), "pkcs11".into()),
        ("STRONGROOM_ENCRYPTION_PKCS11_MODULE".into(), module.into()),
        ("STRONGROOM_ENCRYPTION_PKCS11_TOKEN".into(), "strongroom".into()),
        ("STRONGROOM_ENCRYPTION_PKCS11_PIN".into(), pin.into()),
    ]
}

fn token_objects(env: &[(String, String)]) -> String {
    let conf = &env.iter().find(|(k, _)| k == "SOFTHSM2_CONF").unwrap().1;
    let out = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", conf)
        .args(["--module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label", "strongroom"])
        .args(["--login", "--pin", "4321", "--list-objects"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn softhsm2_holds_the_master_key_and_rotation_destroys_the_old_one() {
    let env = softhsm_token("4321");
    let s = start(Backend::Sqlite, &env).await;
    s.cli_ok(&["encryption", "enable"]);
    settle().await;
    let (out, _) = s.cli_ok(&["encryption", "status"]);
    assert!(out.contains("PKCS#11 token \"strongroom\""), "{out}");
    let first = out.lines().find(|l| l.starts_with("current master key")).unwrap().to_owned();
    let body = marked(200_000, 8);
    put(&s, "/hsm.bin", body.clone()).await;
    assert_eq!(plaintext_on_disk(&s), Vec::<PathBuf>::new());
    assert_eq!(get(&s, "/hsm.bin").await, (200, body.clone()));
    let old_id = first.rsplit(' ').next().unwrap().to_owned();
    assert!(token_objects(&env).contains(&old_id), "the key lives in the token");
    let (out, _) = s.cli_ok(&["encryption", "rotate-master-key", "--settle-secs", "5"]);
    assert!(out.contains(&format!("retired master key {old_id}")), "{out}");
    assert!(!token_objects(&env).contains(&old_id), "the old key is destroyed in the token");
    assert_eq!(get(&s, "/hsm.bin").await, (200, body));
    // A wrong PIN: the provider fails, the server says so and it is audited.
    let out = s
        .command()
        .env("STRONGROOM_ENCRYPTION_PKCS11_PIN", "0000")
        .args(["encryption", "status"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("PIN"), "{err}");
    let audit = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
    assert!(audit.contains("\"encryption.provider_failure\""), "{audit}");
    s.stop().await;
}

/// A body sent in 64 KiB pieces, one every `gap_ms`.
fn trickle(data: Vec<u8>, gap_ms: u64) -> reqwest::Body {
    let chunks: Vec<Vec<u8>> = data.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let stream =
        futures_util::StreamExt::then(futures_util::stream::iter(chunks), move |c| async move {
            tokio::time::sleep(std::time::Duration::from_millis(gap_ms)).await;
            Ok::<_, std::io::Error>(c)
        });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn an_upload_running_through_a_rotation_is_committed_under_the_new_key() {
    let (_keys, env) = key_file_env("enc-race");
    let mut s = start(Backend::Sqlite, &env).await;
    s.cli_ok(&["encryption", "enable"]);
    settle().await;
    // 60 pieces, one every 160 ms: about 10 s, started before the rotation
    // switches keys and committed after it destroyed the old one.
    let body = marked(60 * 64 * 1024, 42);
    let upload = s.admin("PUT", "/slow.bin").body(trickle(body.clone(), 160)).send();
    let upload = tokio::spawn(upload);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // An admin command meanwhile must not touch the upload's partial file.
    s.cli_ok(&["user", "list"]);
    let (out, _) = s.cli_ok(&["encryption", "rotate-master-key", "--settle-secs", "5"]);
    assert!(out.contains("retired master key"), "{out}");
    // A write now makes the server reload the key file, forgetting the old key
    // while the slow upload still runs: its commit must not need it.
    put(&s, "/after.bin", marked(1000, 43)).await;
    let r = upload.await.unwrap().unwrap();
    assert_eq!(r.status(), 201);
    // A restart forgets every key the server had loaded: only the file counts.
    s.restart().await;
    assert_eq!(get(&s, "/slow.bin").await, (200, body));
    let (out, _) = s.cli_ok(&["encryption", "status"]);
    assert_eq!(out.matches("encrypted with").count(), 1, "one master key in use: {out}");
    s.stop().await;
}

#[tokio::test]
async fn encryption_commands_take_turns() {
    let (_keys, env) = key_file_env("enc-lease");
    let s = start(Backend::Sqlite, &env).await;
    s.cli_ok(&["encryption", "enable"]);
    let first = s
        .command()
        .args(["encryption", "rotate-master-key", "--settle-secs", "6"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let second = s.command().args(["encryption", "rotate-master-key"]).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success() && err.contains("another encryption command is running"),
        "{err}"
    );
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    // Released at the end: the next one runs.
    let too_short = s
        .command()
        .args(["encryption", "rotate-master-key", "--settle-secs", "1"])
        .output()
        .unwrap();
    assert!(
        !too_short.status.success(),
        "a settle time shorter than the servers' re-read is refused"
    );
    s.cli_ok(&["encryption", "rotate-master-key", "--settle-secs", "5"]);
    let audit = std::fs::read_to_string(s.data_dir.join("audit.log")).unwrap();
    assert!(audit.contains("\"encryption.rotation.failed\""), "the refusal is audited");
    s.stop().await;
}

#[tokio::test]
async fn unsafe_key_files_are_refused() {
    let (keys, env) = key_file_env("enc-keyfile");
    let s = start(Backend::Sqlite, &env).await;
    s.cli_ok(&["encryption", "enable"]);
    settle().await;
    let good = std::fs::read_to_string(&keys).unwrap();
    let id = good.lines().find(|l| l.starts_with("file:")).unwrap().split(' ').next().unwrap();
    // The server started before `enable` and has not read the key file yet. If
    // the file is replaced by another key under the same id before its first
    // upload, the key check in the database stops it from sealing anything.
    let wrong = format!("{id} AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    std::fs::write(&keys, &wrong).unwrap();
    let r = s.admin("PUT", "/first.bin").body(marked(100, 2)).send().await.unwrap();
    assert_eq!(r.status(), 500, "nothing is sealed with an unchecked key");
    std::fs::write(&keys, &good).unwrap();
    put(&s, "/first.bin", marked(100, 2)).await;
    assert_eq!(get(&s, "/first.bin").await, (200, marked(100, 2)));
    let refused = |what: &str, needle: &str| {
        let out = s.command().args(["encryption", "status"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let so = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!out.status.success() && err.contains(needle), "{what}: {err} / {so}");
    };
    // The same id twice (the second with other bytes) is refused, not "last one wins".
    std::fs::write(&keys, format!("{good}{id} AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
        .unwrap();
    refused("duplicate id", "appears twice");
    std::fs::write(&keys, &good).unwrap();
    // Readable by others.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused("mode 644", "chmod 600");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Right id, wrong bytes: refused, since the key does not open what it sealed.
    put(&s, "/one.bin", marked(100, 1)).await;
    std::fs::write(&keys, format!("{id} AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")).unwrap();
    refused("wrong key bytes", "does not match the key check");
    std::fs::write(&keys, &good).unwrap();
    // A path that reaches into the data folder through `..` of a folder that does not exist.
    let inside = s
        .data_dir
        .parent()
        .unwrap()
        .join("nonexistent")
        .join("..")
        .join(s.data_dir.file_name().unwrap())
        .join("master.keys");
    let out = s
        .command()
        .env("STRONGROOM_ENCRYPTION_KEY_FILE", &inside)
        .args(["encryption", "status"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inside"), "{err}");
    s.stop().await;
}
