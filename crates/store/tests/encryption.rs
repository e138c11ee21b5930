//! The encrypted blob format and the encrypting store: known answers,
//! round trips of random sizes, and detection of every kind of tampering.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use strongroom_store::{
    BlobStore,
    crypt::{
        DataKey, Encryption, FileKeys, KeyProvider, Seal,
        format::{self, BlobCipher, HEADER_LEN, SEALED_SEGMENT, SEGMENT, open_all, seal_all},
    },
};

const BLOB: &str = "00112233445566778899aabbccddeeff";

fn kat_key() -> DataKey {
    DataKey::from_bytes(&(0u8..32).collect::<Vec<_>>()).unwrap()
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Expected bytes computed independently with Python's `cryptography`
/// AESGCM from the layout documented in `format.rs` (length, first 40
/// bytes, SHA-256 of the whole blob).
#[test]
fn known_answers() {
    let cases: [(usize, usize, &str, &str); 3] = [
        (
            0,
            40,
            "5352424c4f420110b71c8861f49765b51ba9c33ec7171516579b86961358a2c2d7a22dde1f2fcd0a",
            "2e2f3a032d5fb05b538f4709fa9d0e090aae2e4b4dfe0dbcbca05be27ff2c4cd",
        ),
        (
            5,
            45,
            "5352424c4f420110b71c8861f49765b51ba9c33ec717151607b3e3351110b81b220917cceb07c278",
            "6797ff6b641ebd57980fbbda2fcafd8ad09adff2cf9f4b9b466445c1f4782403",
        ),
        (
            70_000,
            70_056,
            "5352424c4f420110b71c8861f49765b51ba9c33ec71715160ebdb7ddb12985ba00a1a33e14219f96",
            "8551dfb5fd66982cbd1b8867076551c64c3f3b1a6076c61c94fecde36bb4c8e1",
        ),
    ];
    let cipher = BlobCipher::new(&kat_key(), BLOB);
    for (n, len, head, digest) in cases {
        let plain = if n == 5 { b"hello".to_vec() } else { pattern(n) };
        let sealed = seal_all(&cipher, &plain);
        assert_eq!(sealed.len(), len, "length for {n} bytes");
        assert_eq!(format::sealed_len(n as u64), len as u64);
        assert_eq!(hex::encode(&sealed[..40]), head, "first bytes for {n} bytes");
        assert_eq!(hex::encode(Sha256::digest(&sealed)), digest, "digest for {n} bytes");
        assert_eq!(open_all(&cipher, &sealed).unwrap(), plain);
    }
}

fn three_segments() -> (BlobCipher, Vec<u8>, Vec<u8>) {
    let cipher = BlobCipher::new(&DataKey::random(), BLOB);
    let plain = pattern(2 * SEGMENT + 1000);
    let sealed = seal_all(&cipher, &plain);
    (cipher, plain, sealed)
}

fn seg(i: usize) -> std::ops::Range<usize> {
    HEADER_LEN + i * SEALED_SEGMENT..HEADER_LEN + (i + 1) * SEALED_SEGMENT
}

#[test]
fn swapped_segments_are_refused() {
    let (cipher, _, sealed) = three_segments();
    let mut t = sealed.clone();
    let (a, b) = (sealed[seg(0)].to_vec(), sealed[seg(1)].to_vec());
    t[seg(0)].copy_from_slice(&b);
    t[seg(1)].copy_from_slice(&a);
    assert!(open_all(&cipher, &t).is_err());
}

#[test]
fn truncation_and_appending_are_refused() {
    let (cipher, _, sealed) = three_segments();
    // Cut after two whole segments: the new last one was not sealed as final.
    assert!(open_all(&cipher, &sealed[..HEADER_LEN + 2 * SEALED_SEGMENT]).is_err());
    // Cut inside the last segment.
    assert!(open_all(&cipher, &sealed[..sealed.len() - 1]).is_err());
    // A copy of the final segment appended.
    let mut longer = sealed.clone();
    longer.extend_from_slice(&sealed[HEADER_LEN + 2 * SEALED_SEGMENT..]);
    assert!(open_all(&cipher, &longer).is_err());
}

#[test]
fn segments_and_headers_of_other_blobs_are_refused() {
    let key = DataKey::random();
    let a = BlobCipher::new(&key, BLOB);
    // Same data key (never happens, but the blob identity alone must separate them).
    let b = BlobCipher::new(&key, "ffeeddccbbaa99887766554433221100");
    let plain = pattern(2 * SEGMENT + 10);
    let (sa, sb) = (seal_all(&a, &plain), seal_all(&b, &plain));
    let mut t = sa.clone();
    t[seg(1)].copy_from_slice(&sb[seg(1)]);
    assert!(open_all(&a, &t).is_err(), "segment transplanted from another blob");
    assert!(open_all(&a, &sb).is_err(), "whole blob under another name");
    // A header from a blob with another data key.
    let other = seal_all(&BlobCipher::new(&DataKey::random(), BLOB), &plain);
    let mut t = sa.clone();
    t[..HEADER_LEN].copy_from_slice(&other[..HEADER_LEN]);
    assert!(matches!(open_all(&a, &t), Err(format::Integrity::WrongKey)));
    // A downgraded version byte.
    let mut t = sa.clone();
    t[6] = 0;
    assert!(matches!(open_all(&a, &t), Err(format::Integrity::Header)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_plaintexts_round_trip(len in 0usize..(3 * SEGMENT + 7), seed in any::<u8>()) {
        let cipher = BlobCipher::new(&DataKey::random(), BLOB);
        let plain: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let sealed = seal_all(&cipher, &plain);
        prop_assert_eq!(sealed.len() as u64, format::sealed_len(len as u64));
        prop_assert_eq!(open_all(&cipher, &sealed).unwrap(), plain);
    }

    #[test]
    fn any_single_bit_flip_is_detected(len in 0usize..(2 * SEGMENT + 100), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let cipher = BlobCipher::new(&DataKey::random(), BLOB);
        let mut sealed = seal_all(&cipher, &pattern(len));
        let i = pos.index(sealed.len());
        sealed[i] ^= 1 << bit;
        prop_assert!(open_all(&cipher, &sealed).is_err());
    }
}

fn key_dir() -> tempdir::Dir {
    tempdir::Dir::new()
}

/// A minimal private temporary folder (no extra crate).
mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir()
                .join(format!("sr-enc-{}", hex::encode(rand::random::<[u8; 8]>())));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn key_file_wraps_binds_and_rotates() {
    let dir = key_dir();
    let path = dir.0.join("master.keys");
    let keys = FileKeys::open(&path).unwrap();
    let m1 = keys.create_master().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let dek = DataKey::random();
    let w = keys.wrap(&m1, &dek, b"blob-a").unwrap();
    assert_eq!(keys.unwrap(&m1, &w, b"blob-a").unwrap().bytes(), dek.bytes());
    assert!(keys.unwrap(&m1, &w, b"blob-b").is_err(), "a wrapped key moved to another blob");
    let mut bad = w.clone();
    bad[20] ^= 1;
    assert!(keys.unwrap(&m1, &bad, b"blob-a").is_err());
    // A second process (another FileKeys) sees keys created by the first.
    let m2 = keys.create_master().unwrap();
    let again = FileKeys::open(&path).unwrap();
    assert_eq!(again.masters().unwrap().len(), 2);
    let enc = Encryption::new(Arc::new(again));
    let seal = Seal { master: m1.clone(), wrapped: w };
    let moved = enc.rewrap(&seal, "blob-a", &m2).unwrap();
    assert_eq!(enc.open_data_key(&moved, "blob-a").unwrap().bytes(), dek.bytes());
    keys.retire(&m1).unwrap();
    let fresh = Encryption::new(Arc::new(FileKeys::open(&path).unwrap()));
    assert!(fresh.open_data_key(&seal, "blob-a").is_err(), "a retired key is gone from the file");
    assert!(!fresh.provider().masters().unwrap().contains(&m1));
    assert!(keys.wrap("pkcs11:kabc", &dek, b"x").is_err(), "another provider's id");
}

async fn collect(s: strongroom_store::ByteStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut s = s;
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

#[tokio::test]
async fn encrypted_store_streams_ranges_and_hides_plaintext() {
    let dir = key_dir();
    let keys = FileKeys::open(&dir.0.join("keys")).unwrap();
    let master = keys.create_master().unwrap();
    let enc = Arc::new(Encryption::new(Arc::new(keys)));
    enc.set_switch(true, Some(master));
    let store = BlobStore::local(&dir.0.join("blobs")).unwrap().with_encryption(enc);
    let marker = b"KNOWN-PLAINTEXT-MARKER-0123456789";
    let mut plain = Vec::new();
    while plain.len() < 3 * SEGMENT + 5000 {
        plain.extend_from_slice(marker);
    }
    let mut w = store.create().await.unwrap();
    // Odd piece sizes so segments straddle writes.
    for piece in plain.chunks(7_777) {
        w.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    let stored = w.finish().await.unwrap();
    let seal = stored.seal.clone().expect("sealed");
    let raw = store.read_raw(&stored.key).await.unwrap();
    assert_eq!(raw.len() as u64, BlobStore::stored_len(plain.len() as u64, Some(&seal)));
    assert!(!raw.windows(marker.len()).any(|w| w == marker), "plaintext on disk");
    let n = plain.len() as u64;
    for (a, b) in
        [(0, n), (0, 1), (5, 4101), (65_530, 65_545), (n - 3, n), (2 * 65_536, 2 * 65_536 + 4096)]
    {
        let s = store.read(&stored.key, Some(&seal), n, a..b).await.unwrap();
        assert_eq!(collect(s).await.unwrap(), plain[a as usize..b as usize], "range {a}..{b}");
    }
}

#[test]
fn a_symlinked_key_file_is_written_through_the_link() {
    let dir = key_dir();
    let target = dir.0.join("vault").join("master.keys");
    let link = dir.0.join("link.keys");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // The target's folder does not exist yet: the link still leads there.
    let keys = FileKeys::open(&link).unwrap();
    let m = keys.create_master().unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "link kept");
    assert!(std::fs::read_to_string(&target).unwrap().contains(&m), "written to the target");
    // A rewrite (rotation) keeps the link too, and leaves no stray files.
    keys.create_master().unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let names: Vec<_> = std::fs::read_dir(target.parent().unwrap()).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "only the key file in the vault");
}
