//! Master keys inside a PKCS#11 token (an HSM, or SoftHSM2 in tests).
//!
//! Each master key is a non-extractable AES-256 secret key object labelled
//! with its id; wrapping is `CKM_AES_GCM` inside the token, so the master key
//! never enters this process. PKCS#11 sessions must not be used from two
//! threads at once, so the one session sits behind a mutex.

use std::sync::Mutex;

use cryptoki::{
    context::{CInitializeArgs, CInitializeFlags, Pkcs11},
    mechanism::{Mechanism, aead::GcmParams},
    object::{Attribute, KeyType, ObjectClass, ObjectHandle},
    session::{Session, UserType},
    types::AuthPin,
};

use super::{
    format::DataKey,
    keys::{KeyError, KeyProvider, WRAPPED_LEN, random_id, wrap_aad},
};

pub struct Pkcs11Keys {
    module: String,
    token: String,
    session: Mutex<Session>,
    _ctx: Pkcs11,
}

fn perr(what: &str) -> impl Fn(cryptoki::error::Error) -> KeyError + '_ {
    move |e| KeyError::Provider(format!("PKCS#11 {what}: {e}"))
}

impl Pkcs11Keys {
    /// Loads `module`, finds the token labelled `token` and logs in as user.
    pub fn open(module: &str, token: &str, pin: &str) -> Result<Pkcs11Keys, KeyError> {
        let ctx = Pkcs11::new(module).map_err(perr("loading the module"))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(perr("initialising"))?;
        let mut found = None;
        for slot in ctx.get_slots_with_token().map_err(perr("listing slots"))? {
            let info = ctx.get_token_info(slot).map_err(perr("reading token info"))?;
            if info.label().trim_end() == token {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| {
            KeyError::Provider(format!("PKCS#11: no token labelled {token:?} in {module}"))
        })?;
        let session = ctx.open_rw_session(slot).map_err(perr("opening a session"))?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.into())))
            .map_err(perr("logging in (check the PIN)"))?;
        Ok(Pkcs11Keys {
            module: module.to_owned(),
            token: token.to_owned(),
            session: Mutex::new(session),
            _ctx: ctx,
        })
    }

    fn find(session: &Session, id: &str) -> Result<ObjectHandle, KeyError> {
        if !id.starts_with("pkcs11:") {
            return Err(KeyError::Provider(format!(
                "master key {id} belongs to another key provider than the configured PKCS#11 token"
            )));
        }
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(id.as_bytes().to_vec()),
            ])
            .map_err(perr("finding a key"))?;
        found.into_iter().next().ok_or_else(|| KeyError::Unknown(id.to_owned()))
    }
}

impl KeyProvider for Pkcs11Keys {
    fn describe(&self) -> String {
        format!("PKCS#11 token {:?} through {}", self.token, self.module)
    }

    fn create_master(&self) -> Result<String, KeyError> {
        let id = random_id("pkcs11");
        let session = self.session.lock().expect("pkcs11 session lock");
        session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Label(id.as_bytes().to_vec()),
                ],
            )
            .map_err(perr("generating a master key"))?;
        Ok(id)
    }

    fn masters(&self) -> Result<Vec<String>, KeyError> {
        let session = self.session.lock().expect("pkcs11 session lock");
        let handles = session
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
            .map_err(perr("listing keys"))?;
        let mut ids = Vec::new();
        for h in handles {
            let attrs = session
                .get_attributes(h, &[cryptoki::object::AttributeType::Label])
                .map_err(perr("reading a label"))?;
            for a in attrs {
                if let Attribute::Label(l) = a {
                    let l = String::from_utf8_lossy(&l).into_owned();
                    if l.starts_with("pkcs11:") {
                        ids.push(l);
                    }
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn wrap(&self, master: &str, dek: &DataKey, context: &[u8]) -> Result<Vec<u8>, KeyError> {
        let session = self.session.lock().expect("pkcs11 session lock");
        let key = Self::find(&session, master)?;
        let mut nonce: [u8; 12] = rand::random();
        let aad = wrap_aad(context);
        let params =
            GcmParams::new(&mut nonce, &aad, 128.into()).map_err(perr("GCM parameters"))?;
        let sealed = session
            .encrypt(&Mechanism::AesGcm(params), key, dek.bytes())
            .map_err(perr("wrapping a data key"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        if out.len() != WRAPPED_LEN {
            return Err(KeyError::Provider("PKCS#11 returned an unexpected wrap length".into()));
        }
        Ok(out)
    }

    fn unwrap(&self, master: &str, wrapped: &[u8], context: &[u8]) -> Result<DataKey, KeyError> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(KeyError::Unwrap);
        }
        let session = self.session.lock().expect("pkcs11 session lock");
        let key = Self::find(&session, master)?;
        let mut nonce: [u8; 12] = wrapped[..12].try_into().expect("12 bytes");
        let aad = wrap_aad(context);
        let params =
            GcmParams::new(&mut nonce, &aad, 128.into()).map_err(perr("GCM parameters"))?;
        let plain = zeroize::Zeroizing::new(
            session.decrypt(&Mechanism::AesGcm(params), key, &wrapped[12..]).map_err(
                |e| match e {
                    cryptoki::error::Error::Pkcs11(
                        cryptoki::error::RvError::EncryptedDataInvalid,
                        _,
                    ) => KeyError::Unwrap,
                    e => KeyError::Provider(format!("PKCS#11 unwrapping a data key: {e}")),
                },
            )?,
        );
        DataKey::from_bytes(&plain).ok_or(KeyError::Unwrap)
    }

    fn retire(&self, master: &str) -> Result<(), KeyError> {
        let session = self.session.lock().expect("pkcs11 session lock");
        let key = Self::find(&session, master)?;
        session.destroy_object(key).map_err(perr("destroying a retired master key"))
    }
}
