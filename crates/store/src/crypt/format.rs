//! The at-rest format of an encrypted blob, version 1.
//!
//! ```text
//! header   24 bytes: "SRBLOB" | version (1) | segment shift (16) | key commitment (16)
//! segments          AES-256-GCM ciphertext of up to 64 KiB of plaintext, then its 16-byte tag
//! nonce    12 bytes: segment index (u64, big-endian) | final flag (0 or 1) | 0 0 0
//! aad               header | blob key (32 ASCII hex) | segment index (u64 BE) | final flag
//! ```
//!
//! Every blob has its own random data key, so the nonce only has to be unique
//! within one blob; the index makes it so. Binding the index, the final flag,
//! the header and the blob's storage key into each segment's authentication
//! means that reordering, truncating, appending, or moving segments or whole
//! blobs between files fails to decrypt instead of yielding other plaintext.
//! A plaintext whose length is a multiple of the segment size ends with a full
//! final segment; an empty plaintext is one empty final segment (just a tag), so
//! even an empty blob authenticates its header.
//!
//! The header's key commitment (a hash of the data key) lets a reader tell a
//! wrong key from damaged data before decrypting anything.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const MAGIC: &[u8; 6] = b"SRBLOB";
pub const VERSION: u8 = 1;
pub const SEGMENT_SHIFT: u8 = 16;
/// Plaintext bytes per segment.
pub const SEGMENT: usize = 1 << SEGMENT_SHIFT;
pub const TAG: usize = 16;
pub const HEADER_LEN: usize = 24;
/// Stored bytes of a full segment.
pub const SEALED_SEGMENT: usize = SEGMENT + TAG;

/// A blob's random 256-bit data key. Wiped from memory when dropped.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn random() -> DataKey {
        let mut k = Zeroizing::new([0u8; 32]);
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), k.as_mut())
            .expect("the operating system's random generator failed");
        DataKey(k)
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<DataKey> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(DataKey(Zeroizing::new(arr)))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public fingerprint of the key, stored in the header.
    fn commitment(&self) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(b"strongroom blob key commitment v1");
        h.update(self.0.as_ref());
        h.finalize()[..16].try_into().expect("16 of 32 bytes")
    }
}

/// Why a blob could not be decrypted. Never recovered from: the blob is refused.
#[derive(Debug, thiserror::Error)]
pub enum Integrity {
    #[error("the header is not a version 1 Strongroom blob header")]
    Header,
    #[error("the header belongs to another data key (wrong or swapped key)")]
    WrongKey,
    #[error(
        "segment {0} failed authentication (tampered, reordered, truncated or from another blob)"
    )]
    Segment(u64),
    #[error("the blob is shorter than its size says (truncated)")]
    Short,
}

/// Number of segments of a plaintext of `plain` bytes (at least one).
pub fn segments(plain: u64) -> u64 {
    plain.div_ceil(SEGMENT as u64).max(1)
}

/// Stored size of a plaintext of `plain` bytes.
pub fn sealed_len(plain: u64) -> u64 {
    HEADER_LEN as u64 + plain + TAG as u64 * segments(plain)
}

/// Encrypts and decrypts the segments of one blob.
pub struct BlobCipher {
    key: LessSafeKey,
    header: [u8; HEADER_LEN],
    blob: [u8; 32],
}

impl BlobCipher {
    /// `blob` is the blob's storage key (32 hex characters).
    pub fn new(dek: &DataKey, blob: &str) -> BlobCipher {
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, dek.bytes()).expect("a 32-byte key is valid"),
        );
        let mut header = [0u8; HEADER_LEN];
        header[..6].copy_from_slice(MAGIC);
        header[6] = VERSION;
        header[7] = SEGMENT_SHIFT;
        header[8..].copy_from_slice(&dek.commitment());
        let mut id = [0u8; 32];
        let b = blob.as_bytes();
        id[..b.len().min(32)].copy_from_slice(&b[..b.len().min(32)]);
        BlobCipher { key, header, blob: id }
    }

    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// Checks a stored header against the one this key produces.
    pub fn check_header(&self, stored: &[u8]) -> Result<(), Integrity> {
        if stored.len() != HEADER_LEN || &stored[..6] != MAGIC || stored[6] != VERSION {
            return Err(Integrity::Header);
        }
        if stored[7] != SEGMENT_SHIFT {
            return Err(Integrity::Header);
        }
        if stored[8..] != self.header[8..] {
            return Err(Integrity::WrongKey);
        }
        Ok(())
    }

    fn nonce_aad(&self, index: u64, last: bool) -> (Nonce, [u8; HEADER_LEN + 32 + 9]) {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&index.to_be_bytes());
        n[8] = last as u8;
        let mut aad = [0u8; HEADER_LEN + 32 + 9];
        aad[..HEADER_LEN].copy_from_slice(&self.header);
        aad[HEADER_LEN..HEADER_LEN + 32].copy_from_slice(&self.blob);
        aad[HEADER_LEN + 32..HEADER_LEN + 40].copy_from_slice(&index.to_be_bytes());
        aad[HEADER_LEN + 40] = last as u8;
        (Nonce::assume_unique_for_key(n), aad)
    }

    /// Encrypts the plaintext `buf[from..]` in place and appends the tag.
    pub fn seal(&self, index: u64, last: bool, buf: &mut Vec<u8>, from: usize) {
        let (nonce, aad) = self.nonce_aad(index, last);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(&aad[..]), &mut buf[from..])
            .expect("a segment is far below GCM's length limit");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Decrypts a stored segment (ciphertext and tag) in place; returns the
    /// length of the plaintext at the start of `buf`.
    pub fn open(&self, index: u64, last: bool, buf: &mut [u8]) -> Result<usize, Integrity> {
        let (nonce, aad) = self.nonce_aad(index, last);
        self.key
            .open_in_place(nonce, Aad::from(&aad[..]), buf)
            .map(|p| p.len())
            .map_err(|_| Integrity::Segment(index))
    }
}

/// Encrypts a whole plaintext at once (tests, small blobs).
pub fn seal_all(cipher: &BlobCipher, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sealed_len(plain.len() as u64) as usize);
    out.extend_from_slice(cipher.header());
    let n = segments(plain.len() as u64);
    for i in 0..n {
        let start = (i as usize) * SEGMENT;
        let end = (start + SEGMENT).min(plain.len());
        let from = out.len();
        out.extend_from_slice(&plain[start..end]);
        cipher.seal(i, i + 1 == n, &mut out, from);
    }
    out
}

/// Decrypts a whole stored blob at once (tests, conversion checks).
pub fn open_all(cipher: &BlobCipher, sealed: &[u8]) -> Result<Vec<u8>, Integrity> {
    if sealed.len() < HEADER_LEN + TAG {
        return Err(Integrity::Short);
    }
    cipher.check_header(&sealed[..HEADER_LEN])?;
    let body = &sealed[HEADER_LEN..];
    let n = body.len().div_ceil(SEALED_SEGMENT).max(1) as u64;
    let mut out = Vec::with_capacity(body.len());
    for (i, chunk) in body.chunks(SEALED_SEGMENT).enumerate() {
        let i = i as u64;
        let mut seg = chunk.to_vec();
        let len = cipher.open(i, i + 1 == n, &mut seg)?;
        out.extend_from_slice(&seg[..len]);
    }
    Ok(out)
}
