//! Encryption at rest: segmented AES-256-GCM per blob ([`format`]), data keys
//! wrapped by a master key from a [`KeyProvider`] (a key file or a PKCS#11
//! token).
//!
//! What is protected: blob contents (files, versions, trash, chunks). What is
//! not: names, sizes, times and the tree, which stay in the database.

pub mod format;
pub mod keys;
pub mod pkcs11;

use std::sync::{Arc, RwLock};

pub use format::{DataKey, Integrity};
pub use keys::{FileKeys, KeyError, KeyProvider};
pub use pkcs11::Pkcs11Keys;

/// How a blob's data key is kept: the id of the master key that wraps it and
/// the wrapped key. Stored in the blob's row (`blobs.kek_id`, `blobs.wrapped_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub master: String,
    pub wrapped: Vec<u8>,
}

impl Seal {
    /// From the two columns of a row; `None` for plaintext blobs.
    pub fn from_columns(master: Option<String>, wrapped_hex: Option<String>) -> Option<Seal> {
        let master = master?;
        let wrapped = hex::decode(wrapped_hex?).ok()?;
        Some(Seal { master, wrapped })
    }

    pub fn wrapped_hex(&self) -> String {
        hex::encode(&self.wrapped)
    }
}

/// Called with (blob key, what failed) whenever stored content fails
/// authentication or a key cannot be unwrapped; the server sends it to the
/// audit log.
pub type FailureHook = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The encryption state of a running store: the provider, whether new blobs
/// are encrypted, and the current master key (existing encrypted blobs stay
/// readable when encryption is off).
pub struct Encryption {
    provider: Arc<dyn KeyProvider>,
    /// (encrypt new blobs, current master key)
    switch: RwLock<(bool, Option<String>)>,
    on_failure: RwLock<Option<FailureHook>>,
}

impl Encryption {
    pub fn new(provider: Arc<dyn KeyProvider>) -> Encryption {
        Encryption { provider, switch: RwLock::new((false, None)), on_failure: RwLock::new(None) }
    }

    pub fn provider(&self) -> &Arc<dyn KeyProvider> {
        &self.provider
    }

    /// Follows the switch: whether new blobs are encrypted, and the current
    /// master key (kept when encryption is off, for [`Encryption::reseal`]).
    pub fn set_switch(&self, enabled: bool, master: Option<String>) {
        *self.switch.write().expect("switch lock") = (enabled, master);
    }

    /// The master key new blobs are sealed with; `None` while encryption is off.
    pub fn write_key(&self) -> Option<String> {
        let s = self.switch.read().expect("switch lock");
        if s.0 { s.1.clone() } else { None }
    }

    /// The seal a finished blob should be committed with: re-wrapped under the
    /// current master key when a rotation switched keys while the blob was
    /// being written, so that no row committed after the switch refers to a
    /// master key the rotation is about to destroy.
    /// `dek` is the data key when the caller still holds it (a blob just
    /// written): then the old master key is not needed, and may already be gone.
    pub fn reseal(&self, seal: &Seal, dek: Option<&DataKey>, blob: &str) -> Result<Seal, KeyError> {
        let current = self.switch.read().expect("switch lock").1.clone();
        match (current, dek) {
            (Some(m), Some(dek)) if m != seal.master => {
                let wrapped = self.provider.wrap(&m, dek, blob.as_bytes())?;
                Ok(Seal { master: m, wrapped })
            }
            (Some(m), None) if m != seal.master => self.rewrap(seal, blob, &m),
            _ => Ok(seal.clone()),
        }
    }

    pub fn set_failure_hook(&self, hook: FailureHook) {
        *self.on_failure.write().expect("hook lock") = Some(hook);
    }

    pub(crate) fn report(&self, blob: &str, what: &str) {
        tracing::error!(blob, error = what, "encrypted content refused");
        if let Some(h) = self.on_failure.read().expect("hook lock").as_ref() {
            h(blob, what);
        }
    }

    /// A fresh data key for blob `blob`, wrapped with `master`.
    pub fn new_data_key(&self, master: &str, blob: &str) -> Result<(DataKey, Seal), KeyError> {
        let dek = DataKey::random();
        let wrapped = self.provider.wrap(master, &dek, blob.as_bytes())?;
        Ok((dek, Seal { master: master.to_owned(), wrapped }))
    }

    pub fn open_data_key(&self, seal: &Seal, blob: &str) -> Result<DataKey, KeyError> {
        self.provider.unwrap(&seal.master, &seal.wrapped, blob.as_bytes())
    }

    /// Re-wraps a data key under another master key (rotation); the content
    /// is not touched.
    pub fn rewrap(&self, seal: &Seal, blob: &str, master: &str) -> Result<Seal, KeyError> {
        let dek = self.open_data_key(seal, blob)?;
        let wrapped = self.provider.wrap(master, &dek, blob.as_bytes())?;
        Ok(Seal { master: master.to_owned(), wrapped })
    }
}
