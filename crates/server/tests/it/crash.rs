//! A server killed with SIGKILL in the middle of 50 concurrent uploads restarts
//! cleanly, and every file is then absent or holds its complete old or new
//! content, with the size and checksum its metadata claims.

use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::harness::ADMIN_PASSWORD;
use crate::{
    harness::{Backend, Server, backends},
    webdav::{propfind, xml_value},
};

const FILES: usize = 50;
const SIZE: usize = 2 << 20;

fn content(i: usize, version: u8) -> Vec<u8> {
    let mut v = vec![version; SIZE];
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    v
}

/// A body that trickles in, so that the kill lands while uploads are running.
fn slow_body(data: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Vec<u8>> = data.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let stream =
        futures_util::StreamExt::then(futures_util::stream::iter(chunks), |c| async move {
            tokio::time::sleep(Duration::from_millis(rand::random_range(5..40))).await;
            Ok::<_, std::io::Error>(c)
        });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn sigkill_during_uploads_leaves_old_or_new_content() {
    for b in backends() {
        let mut s = Server::start(b).await;
        assert_eq!(s.admin("MKCOL", "/crash").send().await.unwrap().status(), 201);
        // Half of the files exist beforehand, so their uploads are overwrites.
        for i in (0..FILES).step_by(2) {
            let r =
                s.admin("PUT", &format!("/crash/f{i}")).body(content(i, 1)).send().await.unwrap();
            assert_eq!(r.status(), 201);
        }
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut uploads = Vec::new();
        for i in 0..FILES {
            let req = s.admin("PUT", &format!("/crash/f{i}")).body(slow_body(content(i, 2)));
            let done = done.clone();
            uploads.push(tokio::spawn(async move {
                let r = req.send().await.map(|r| r.status().as_u16());
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                r
            }));
        }
        // Kill once a few uploads are through and the rest are still arriving.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while done.load(std::sync::atomic::Ordering::SeqCst) < 5
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        s.kill();
        let mut acknowledged = Vec::new();
        for (i, u) in uploads.into_iter().enumerate() {
            if let Ok(Ok(code)) = u.await {
                if code == 201 || code == 204 {
                    acknowledged.push(i);
                }
            }
        }
        s.restart().await;

        let (code, listing) = propfind(&s, "admin", ADMIN_PASSWORD, "/crash", "1").await;
        assert_eq!(code, 207, "{b:?}: {listing}");
        let mut completed = 0;
        for i in 0..FILES {
            let path = format!("/crash/f{i}");
            let r = s.admin("GET", &path).send().await.unwrap();
            if r.status() == 404 {
                assert!(i % 2 == 1, "{b:?}: f{i} existed before and vanished");
                assert!(!acknowledged.contains(&i), "{b:?}: acknowledged upload f{i} was lost");
                continue;
            }
            assert_eq!(r.status(), 200);
            let body = r.bytes().await.unwrap();
            let old = content(i, 1);
            let new = content(i, 2);
            assert!(body[..] == old[..] || body[..] == new[..], "{b:?}: f{i} holds mixed content");
            if acknowledged.contains(&i) {
                assert_eq!(body[..], new[..], "{b:?}: acknowledged upload f{i} was lost");
            }
            completed += usize::from(body[..] == new[..]);
            let (_, meta) = propfind(&s, "admin", ADMIN_PASSWORD, &path, "0").await;
            assert_eq!(xml_value(&meta, "d:getcontentlength").unwrap(), SIZE.to_string());
            let sha = hex::encode(Sha1::digest(&body));
            assert!(
                meta.contains(&format!("SHA1:{sha}")),
                "{b:?}: f{i} checksum does not match its content"
            );
        }
        // The folder's recorded size is the sum of what is there.
        let (_, folder) = propfind(&s, "admin", ADMIN_PASSWORD, "/crash", "0").await;
        let present = listing.matches("<d:response>").count() - 1;
        assert_eq!(xml_value(&folder, "oc:size").unwrap(), (present * SIZE).to_string());
        eprintln!(
            "{b:?}: {completed} of {FILES} uploads had completed, {} acknowledged",
            acknowledged.len()
        );
        // No partial blob is left behind after the restart.
        let tmp = s.data_dir.join("blobs/.tmp");
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "partial writes left in {}",
            tmp.display()
        );
        s.stop().await;
    }
}

/// A crash between a large blob's rename into place and the commit that
/// records it leaves a file no row names. `db sweep-blobs` removes such files
/// once they are older than the cut-off, never a file a row still names,
/// and `--dry-run` only counts them.
#[tokio::test]
async fn orphaned_blob_files_are_swept_and_referenced_ones_kept() {
    let s = Server::start(Backend::Sqlite).await;
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let r = s.admin("PUT", "/kept.bin").body(content.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    // Two files that look like blobs but that no row names: one written two
    // days ago (as if by an upload a crash cut short), one an hour ago.
    let blobs = s.data_dir.join("blobs");
    let orphan = |key: &str, age_secs: u64| {
        let dir = blobs.join(&key[..2]);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(key);
        std::fs::write(&path, vec![1u8; 70_000]).unwrap();
        let when = std::time::SystemTime::now() - Duration::from_secs(age_secs);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
        path
    };
    let old = orphan("0123456789abcdef0123456789abcdef", 2 * 86_400);
    let young = orphan("fedcba9876543210fedcba9876543210", 3600);
    // A replaced blob waiting out its grace in blob_garbage is not an orphan.
    let waiting = orphan("00000000000000000000000000000000", 2 * 86_400);
    s.sql(
        "INSERT INTO blob_garbage (blob_key, delete_after) \
         VALUES ('00000000000000000000000000000000', 4102444800)",
    )
    .await;
    let (out, _) = s.cli_ok(&["db", "sweep-blobs", "--dry-run"]);
    assert!(out.contains("1 orphaned blob files (70000 bytes) would be deleted"), "{out}");
    assert!(old.exists());
    let (out, _) = s.cli_ok(&["db", "sweep-blobs"]);
    assert!(out.contains("1 orphaned blob files (70000 bytes) deleted"), "{out}");
    assert!(!old.exists() && young.exists());
    // With no cut-off the young one goes too; the uploaded file's blob never.
    let (out, _) = s.cli_ok(&["db", "sweep-blobs", "--older-than-hours", "0"]);
    assert!(out.contains("1 orphaned blob files"), "{out}");
    assert!(!young.exists() && waiting.exists());
    let r = s.admin("GET", "/kept.bin").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), content);
    s.stop().await;
}
