//! Content checksums: SHA-1 of every blob, plus the algorithm a client names in
//! `OC-Checksum` when it is another one, so the upload can be verified.

use md5::Md5;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Sha1,
    Md5,
    Adler32,
    Sha256,
}

impl Algo {
    pub fn parse(s: &str) -> Option<Algo> {
        match s.to_ascii_uppercase().as_str() {
            "SHA1" => Some(Algo::Sha1),
            "MD5" => Some(Algo::Md5),
            "ADLER32" => Some(Algo::Adler32),
            "SHA256" => Some(Algo::Sha256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algo::Sha1 => "SHA1",
            Algo::Md5 => "MD5",
            Algo::Adler32 => "ADLER32",
            Algo::Sha256 => "SHA256",
        }
    }
}

/// A checksum a client announced for its upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub algo: Algo,
    pub hex: String,
}

/// Parses `OC-Checksum: TYPE:hex`. Unknown types and malformed values are refused.
pub fn parse_header(v: &str) -> Result<Expected> {
    let bad = || {
        Error::BadRequest(format!(
            "unsupported or malformed OC-Checksum {v:?} (use SHA1, MD5, ADLER32 or SHA256)"
        ))
    };
    let (t, hex) = v.trim().split_once(':').ok_or_else(bad)?;
    let algo = Algo::parse(t).ok_or_else(bad)?;
    let hex = hex.trim().to_ascii_lowercase();
    let want = match algo {
        Algo::Sha1 => 40,
        Algo::Md5 => 32,
        Algo::Adler32 => 8,
        Algo::Sha256 => 64,
    };
    if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(Expected { algo, hex })
}

/// Hashes a stream of bytes with SHA-1 and, if asked, one more algorithm.
pub struct Hasher {
    sha1: Sha1,
    extra: Option<Extra>,
}

enum Extra {
    Md5(Md5),
    Sha256(Sha256),
    Adler32(Adler32),
}

impl Hasher {
    pub fn new(also: Option<Algo>) -> Hasher {
        let extra = match also {
            None | Some(Algo::Sha1) => None,
            Some(Algo::Md5) => Some(Extra::Md5(Md5::new())),
            Some(Algo::Sha256) => Some(Extra::Sha256(Sha256::new())),
            Some(Algo::Adler32) => Some(Extra::Adler32(Adler32::default())),
        };
        Hasher { sha1: Sha1::new(), extra }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.sha1.update(data);
        match &mut self.extra {
            None => {}
            Some(Extra::Md5(h)) => h.update(data),
            Some(Extra::Sha256(h)) => h.update(data),
            Some(Extra::Adler32(h)) => h.update(data),
        }
    }

    /// The checksum string to store (`SHA1:… [TYPE:…]`), after checking `expected`.
    pub fn finish(self, expected: Option<&Expected>) -> Result<String> {
        let sha1 = hex::encode(self.sha1.finalize());
        let extra = self.extra.map(|e| match e {
            Extra::Md5(h) => (Algo::Md5, hex::encode(h.finalize())),
            Extra::Sha256(h) => (Algo::Sha256, hex::encode(h.finalize())),
            Extra::Adler32(h) => (Algo::Adler32, format!("{:08x}", h.value())),
        });
        if let Some(exp) = expected {
            let got = match (&extra, exp.algo) {
                (_, Algo::Sha1) => &sha1,
                (Some((a, v)), algo) if *a == algo => v,
                _ => return Err(Error::Internal("checksum algorithm was not computed".into())),
            };
            if *got != exp.hex {
                return Err(Error::BadRequest(format!(
                    "checksum mismatch: the content's {} is {got}, the client announced {}",
                    exp.algo.name(),
                    exp.hex
                )));
            }
        }
        Ok(match extra {
            Some((a, v)) => format!("SHA1:{sha1} {}:{v}", a.name()),
            None => format!("SHA1:{sha1}"),
        })
    }
}

/// Adler-32 (RFC 1950), the checksum some Nextcloud clients send.
#[derive(Debug)]
struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    const MOD: u32 = 65_521;
    /// Bytes that can be summed before the 32-bit sums must be reduced.
    const BLOCK: usize = 5552;

    fn update(&mut self, data: &[u8]) {
        for block in data.chunks(Self::BLOCK) {
            for &byte in block {
                self.a += u32::from(byte);
                self.b += self.a;
            }
            self.a %= Self::MOD;
            self.b %= Self::MOD;
        }
    }

    fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(algo: Algo, data: &[u8]) -> String {
        let mut h = Hasher::new(Some(algo));
        h.update(data);
        h.finish(None).unwrap()
    }

    #[test]
    fn known_answers() {
        assert_eq!(sum(Algo::Sha1, b"abc"), "SHA1:a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sum(Algo::Md5, b"abc"),
            "SHA1:a9993e364706816aba3e25717850c26c9cd0d89d MD5:900150983cd24fb0d6963f7d28e17f72"
        );
        assert!(sum(Algo::Adler32, b"Wikipedia").ends_with("ADLER32:11e60398"));
        let mut a = Adler32::default();
        a.update(&vec![0xff; 100_000]);
        let mut b = Adler32::default();
        for c in vec![0xffu8; 100_000].chunks(7) {
            b.update(c);
        }
        assert_eq!(a.value(), b.value());
    }

    #[test]
    fn verification_and_parsing() {
        let exp = parse_header("md5:900150983CD24FB0D6963F7D28E17F72").unwrap();
        let mut h = Hasher::new(Some(exp.algo));
        h.update(b"abc");
        assert!(h.finish(Some(&exp)).is_ok());
        let mut h = Hasher::new(Some(exp.algo));
        h.update(b"abd");
        assert!(matches!(h.finish(Some(&exp)), Err(Error::BadRequest(_))));
        assert!(parse_header("CRC32:00000000").is_err());
        assert!(parse_header("SHA1:xyz").is_err());
        assert!(parse_header("nonsense").is_err());
    }
}
