//! Master keys: they wrap each blob's data key and never touch content.
//!
//! A wrapped data key is AES-256-GCM under the master key, with a random
//! 96-bit nonce and the blob's storage key as associated data, so a wrapped
//! key copied onto another blob's row does not unwrap. Stored form:
//! nonce (12) | ciphertext (32) | tag (16).
//!
//! Master key ids name their provider (`file:…`, `pkcs11:…`) so that a
//! database moved to a server with another provider fails with a clear message
//! instead of a decryption error.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::RwLock,
};

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::format::DataKey;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key {0} is not known to the key provider")]
    Unknown(String),
    #[error("a wrapped data key failed authentication (wrong master key or altered row)")]
    Unwrap,
    #[error("key provider: {0}")]
    Provider(String),
}

/// Where master keys live. Calls may block briefly (a file read, an HSM call).
pub trait KeyProvider: Send + Sync {
    /// A short description for status output and logs, without secrets.
    fn describe(&self) -> String;
    /// Creates a new master key and returns its id.
    fn create_master(&self) -> Result<String, KeyError>;
    /// The ids of all master keys the provider holds.
    fn masters(&self) -> Result<Vec<String>, KeyError>;
    fn wrap(&self, master: &str, dek: &DataKey, context: &[u8]) -> Result<Vec<u8>, KeyError>;
    fn unwrap(&self, master: &str, wrapped: &[u8], context: &[u8]) -> Result<DataKey, KeyError>;
    /// Destroys a master key. Callers make sure nothing refers to it any more.
    fn retire(&self, master: &str) -> Result<(), KeyError>;
    /// Forgets what was loaded and reads the keys again (after a failed check).
    fn refresh(&self) -> Result<(), KeyError> {
        Ok(())
    }
}

pub(crate) const WRAPPED_LEN: usize = 12 + 32 + 16;

pub(crate) fn wrap_aad(context: &[u8]) -> Vec<u8> {
    let mut aad = b"strongroom data key v1|".to_vec();
    aad.extend_from_slice(context);
    aad
}

/// Where a path really leads: symbolic links followed, also a link whose
/// target does not exist yet (so that writing the key file writes the
/// target, not a plain file in place of the link).
pub fn follow_links(path: &Path) -> PathBuf {
    let mut p = path.to_owned();
    for _ in 0..16 {
        match std::fs::read_link(&p) {
            Ok(target) => {
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                }
            }
            Err(_) => break,
        }
    }
    std::fs::canonicalize(&p).unwrap_or(p)
}

pub(crate) fn random_id(prefix: &str) -> String {
    format!("{prefix}:k{}", hex::encode(rand::random::<[u8; 6]>()))
}

/// Master keys in a file outside the data folder, one `id base64` per line.
/// The file is created with mode 0600 and rewritten atomically.
pub struct FileKeys {
    path: PathBuf,
    keys: RwLock<HashMap<String, Zeroizing<[u8; 32]>>>,
}

impl FileKeys {
    /// Opens the key file at `path`, which may not exist yet (the first
    /// master key creates it). A symbolic link is followed, also when the file
    /// is rewritten, so the keys can live on another volume.
    pub fn open(path: &Path) -> Result<FileKeys, KeyError> {
        let path = follow_links(path);
        let fk = FileKeys { path, keys: RwLock::new(HashMap::new()) };
        if fk.path.exists() {
            fk.reload()?;
        }
        Ok(fk)
    }

    fn reload(&self) -> Result<(), KeyError> {
        if !self.path.exists() {
            return Err(KeyError::Provider(format!(
                "the key file {} does not exist; restore it from your key backup",
                self.path.display()
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(&self.path).map_err(|e| {
                KeyError::Provider(format!("reading key file {}: {e}", self.path.display()))
            })?;
            if meta.mode() & 0o077 != 0 {
                return Err(KeyError::Provider(format!(
                    "the key file {} may be read by other users (mode {:o}); make it private with chmod 600",
                    self.path.display(),
                    meta.mode() & 0o777
                )));
            }
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| {
            KeyError::Provider(format!("reading key file {}: {e}", self.path.display()))
        })?;
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || {
                KeyError::Provider(format!(
                    "key file {} line {}: expected `file:ID BASE64-OF-32-BYTES`",
                    self.path.display(),
                    n + 1
                ))
            };
            let (id, b64) = line.split_once(' ').ok_or_else(bad)?;
            let bytes = Zeroizing::new(B64.decode(b64.trim()).map_err(|_| bad())?);
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| bad())?;
            if !id.starts_with("file:") {
                return Err(bad());
            }
            if map.insert(id.to_owned(), Zeroizing::new(key)).is_some() {
                return Err(KeyError::Provider(format!(
                    "key file {} line {}: the id {id} appears twice",
                    self.path.display(),
                    n + 1
                )));
            }
        }
        *self.keys.write().expect("key map lock") = map;
        Ok(())
    }

    fn key(&self, id: &str) -> Result<LessSafeKey, KeyError> {
        if !id.starts_with("file:") {
            return Err(KeyError::Provider(format!(
                "master key {id} belongs to another key provider than the configured key file"
            )));
        }
        let lookup = |this: &Self| {
            this.keys.read().expect("key map lock").get(id).map(|k| {
                LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k.as_ref()).expect("32 bytes"))
            })
        };
        if let Some(k) = lookup(self) {
            return Ok(k);
        }
        // Another process (the command line) may have added it since.
        self.reload()?;
        lookup(self).ok_or_else(|| KeyError::Unknown(id.to_owned()))
    }

    /// Writes the whole key set: temporary file, flush, rename, flush folder.
    fn store(&self, map: &HashMap<String, Zeroizing<[u8; 32]>>) -> Result<(), KeyError> {
        let err = |e: std::io::Error| {
            KeyError::Provider(format!("writing key file {}: {e}", self.path.display()))
        };
        let dir =
            self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        // A fresh name, created here with mode 0600: never a file someone
        // else prepared.
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(format!(".{}.new", hex::encode(rand::random::<[u8; 6]>())));
        let tmp = self.path.with_file_name(tmp_name);
        let mut text = Zeroizing::new(String::from(
            "# Strongroom master keys. Keep a copy outside the server: without it the\n\
             # encrypted content cannot be read. Never store it in the data folder.\n",
        ));
        let mut ids: Vec<_> = map.keys().collect();
        ids.sort();
        for id in ids {
            text.push_str(&format!("{id} {}\n", B64.encode(map[id].as_ref())));
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        Ok(())
    }
}

impl KeyProvider for FileKeys {
    fn describe(&self) -> String {
        let missing = if self.path.exists() { "" } else { " (missing)" };
        format!("key file {}{missing}", self.path.display())
    }

    fn create_master(&self) -> Result<String, KeyError> {
        if self.path.exists() {
            self.reload()?;
        }
        let id = random_id("file");
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(DataKey::random().bytes());
        let mut map = self.keys.read().expect("key map lock").clone();
        map.insert(id.clone(), key);
        self.store(&map)?;
        *self.keys.write().expect("key map lock") = map;
        Ok(id)
    }

    fn masters(&self) -> Result<Vec<String>, KeyError> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        self.reload()?;
        let mut ids: Vec<String> =
            self.keys.read().expect("key map lock").keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    fn wrap(&self, master: &str, dek: &DataKey, context: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self.key(master)?;
        let nonce: [u8; 12] = rand::random();
        let mut out = nonce.to_vec();
        let mut body = dek.bytes().to_vec();
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(wrap_aad(context)),
                &mut body,
            )
            .map_err(|_| KeyError::Provider("wrapping failed".into()))?;
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn unwrap(&self, master: &str, wrapped: &[u8], context: &[u8]) -> Result<DataKey, KeyError> {
        let key = self.key(master)?;
        if wrapped.len() != WRAPPED_LEN {
            return Err(KeyError::Unwrap);
        }
        let nonce: [u8; 12] = wrapped[..12].try_into().expect("12 bytes");
        let mut body = Zeroizing::new(wrapped[12..].to_vec());
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(wrap_aad(context)),
                body.as_mut_slice(),
            )
            .map_err(|_| KeyError::Unwrap)?;
        DataKey::from_bytes(plain).ok_or(KeyError::Unwrap)
    }

    fn refresh(&self) -> Result<(), KeyError> {
        self.reload()
    }

    fn retire(&self, master: &str) -> Result<(), KeyError> {
        self.reload()?;
        let mut map = self.keys.read().expect("key map lock").clone();
        if map.remove(master).is_none() {
            return Err(KeyError::Unknown(master.to_owned()));
        }
        self.store(&map)?;
        *self.keys.write().expect("key map lock") = map;
        Ok(())
    }
}
