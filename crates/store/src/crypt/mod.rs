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
    /// A row naming a master key is encrypted even when its wrapped key is
    /// damaged: that must fail to unwrap (500, audited), never read as plaintext.
    pub fn from_columns(master: Option<String>, wrapped_hex: Option<String>) -> Option<Seal> {
        let master = master?;
        let wrapped = wrapped_hex.and_then(|h| hex::decode(h).ok()).unwrap_or_default();
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
    /// The database's key check: (master key, a data key wrapped with it).
    check: RwLock<Option<(String, Vec<u8>)>>,
    /// Master keys this process has checked against it.
    checked: RwLock<std::collections::HashSet<String>>,
    on_failure: RwLock<Option<FailureHook>>,
}

/// Associated data of the key check, so it cannot pass for a blob's key.
const CHECK_CONTEXT: &[u8] = b"strongroom master key check";

/// Confirms that `provider`'s `master` opens a key check made by
/// [`Encryption::make_check`].
pub fn verify_key_check(
    provider: &dyn KeyProvider,
    master: &str,
    check: &[u8],
) -> Result<(), KeyError> {
    provider.unwrap(master, check, CHECK_CONTEXT).map(|_| ()).map_err(|e| match e {
        KeyError::Unwrap => KeyError::Provider(format!(
            "master key {master} does not match the key check in the database: the key \
             file or token holds another key under that id"
        )),
        e => e,
    })
}

impl Encryption {
    pub fn new(provider: Arc<dyn KeyProvider>) -> Encryption {
        Encryption {
            provider,
            switch: RwLock::new((false, None)),
            check: RwLock::new(None),
            checked: RwLock::new(Default::default()),
            on_failure: RwLock::new(None),
        }
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

    /// A key check for `master`: a random data key wrapped with it. Stored in
    /// the database, it lets every process confirm that the key file or token
    /// it reads holds the same key under that id before sealing anything.
    pub fn make_check(&self, master: &str) -> Result<Vec<u8>, KeyError> {
        self.provider.wrap(master, &DataKey::random(), CHECK_CONTEXT)
    }

    /// Confirms that the provider's `master` opens the stored `check`.
    pub fn verify_check(&self, master: &str, check: &[u8]) -> Result<(), KeyError> {
        verify_key_check(self.provider.as_ref(), master, check)
    }

    pub fn set_check(&self, check: Option<(String, Vec<u8>)>) {
        *self.check.write().expect("check lock") = check;
    }

    /// Checks `master` once per process against the database's key check,
    /// so a replaced key file cannot make new content unreadable.
    fn ensure_checked(&self, master: &str) -> Result<(), KeyError> {
        if self.checked.read().expect("checked lock").contains(master) {
            return Ok(());
        }
        let check = self.check.read().expect("check lock").clone();
        if let Some((m, wrapped)) = check.filter(|(m, _)| m == master) {
            if self.verify_check(&m, &wrapped).is_err() {
                // The keys may have been put right since they were loaded.
                self.provider.refresh()?;
                self.verify_check(&m, &wrapped)?;
            }
            self.checked.write().expect("checked lock").insert(m);
        }
        Ok(())
    }

    /// A fresh data key for blob `blob`, wrapped with `master`.
    pub fn new_data_key(&self, master: &str, blob: &str) -> Result<(DataKey, Seal), KeyError> {
        self.ensure_checked(master)?;
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
