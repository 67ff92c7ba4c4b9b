//! Sealing stored provider keys: AES-256-GCM under the master key.
//!
//! # The master key
//!
//! `PROMPT_REGISTRY_MASTER_KEY` holds 32 random bytes, written as 64 hex characters
//! or as standard base64 (44 characters with padding, or 43 without). Make one with
//! `openssl rand -hex 32` (or `head -c32 /dev/urandom | base64`). It is validated at
//! start-up: a value of another length or alphabet stops the server with an error
//! naming the variable. Without the variable the server runs, but refuses to store
//! provider credentials (and cannot use stored ones) with `master_key_not_configured`.
//!
//! # The sealed format
//!
//! `v1.<key id>.<base64 of nonce ‖ ciphertext ‖ tag>`: a fresh random 96-bit nonce per
//! value, the project id and provider name as associated data (a sealed key copied to
//! another row does not open), and a key id (the first 8 hex digits of SHA-256 of the
//! master key) so that a value sealed under another master key is reported as such
//! rather than as corrupt. `prompt-registry rotate-master-key` reseals every value
//! under a new key in one transaction; during a rolling restart the servers may be
//! given the old key as `PROMPT_REGISTRY_PREVIOUS_MASTER_KEY` too, so that they open
//! values sealed under either.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use prompt_core::{Error, ProviderCredential};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The environment variable of the master key.
pub const MASTER_KEY_ENV: &str = "PROMPT_REGISTRY_MASTER_KEY";
/// The environment variable of the previous master key (read-only, during rotation).
pub const PREVIOUS_MASTER_KEY_ENV: &str = "PROMPT_REGISTRY_PREVIOUS_MASTER_KEY";

const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;

/// A 256-bit master key. `Debug` shows only its id.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

fn decode_key(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (0..32)
            .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok())
            .collect();
    }
    STANDARD
        .decode(t)
        .or_else(|_| STANDARD_NO_PAD.decode(t))
        .ok()
}

impl MasterKey {
    /// Parse a key written as 64 hex characters or base64 of 32 bytes. The error says
    /// what is expected (and never repeats the value).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = decode_key(text).ok_or_else(|| {
            "must be 32 random bytes written as 64 hex characters or as base64 \
             (make one with `openssl rand -hex 32`)"
                .to_owned()
        })?;
        if bytes.len() != 32 {
            return Err(format!(
                "decodes to {} bytes; it must be exactly 32 (make one with `openssl rand -hex 32`)",
                bytes.len()
            ));
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|e| e.to_string())?;
        let digest = Sha256::digest(&bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Ok(MasterKey { cipher, id })
    }

    /// The key's id (first 8 hex digits of its SHA-256): what sealed values name.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn aad(project: Uuid, name: &str) -> Vec<u8> {
        format!("prompt-registry/provider/{project}/{name}").into_bytes()
    }

    /// Seal `secret` for the credential `(project, name)`, with a fresh nonce.
    pub fn seal(&self, project: Uuid, name: &str, secret: &str) -> Result<String, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let aad = Self::aad(project, name);
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::internal("sealing a provider key failed"))?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        Ok(format!("{VERSION}.{}.{}", self.id, STANDARD.encode(blob)))
    }

    /// Open a sealed value of `(project, name)` under this key.
    fn open(&self, project: Uuid, name: &str, blob: &[u8]) -> Result<String, Error> {
        if blob.len() < NONCE_LEN + 16 {
            return Err(corrupt(name));
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| corrupt(name))?;
        let aad = Self::aad(project, name);
        let clear = self
            .cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| corrupt(name))?;
        String::from_utf8(clear).map_err(|_| corrupt(name))
    }
}

fn corrupt(name: &str) -> Error {
    Error::internal(format!(
        "the stored key of provider '{name}' does not decrypt under the master key (corrupt or tampered)"
    ))
}

/// The master key, and optionally the previous one (to open values not yet resealed).
#[derive(Debug, Clone)]
pub struct Keyring {
    /// Seals new values and opens values sealed under it.
    pub current: MasterKey,
    /// Opens values sealed under it (during a rotation).
    pub previous: Option<MasterKey>,
}

impl Keyring {
    /// From the environment: `None` without [`MASTER_KEY_ENV`]; an error naming the
    /// variable when a value is malformed.
    pub fn from_env() -> Result<Option<Keyring>, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Keyring::from_env`] with a custom lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Keyring>, String> {
        let read = |var: &str| -> Result<Option<MasterKey>, String> {
            match get(var).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => MasterKey::parse(&v)
                    .map(Some)
                    .map_err(|e| format!("invalid {var}: {e}")),
            }
        };
        let current = read(MASTER_KEY_ENV)?;
        let previous = read(PREVIOUS_MASTER_KEY_ENV)?;
        match (current, previous) {
            (Some(current), previous) => Ok(Some(Keyring { current, previous })),
            (None, Some(_)) => Err(format!(
                "{PREVIOUS_MASTER_KEY_ENV} is set but {MASTER_KEY_ENV} is not"
            )),
            (None, None) => Ok(None),
        }
    }

    /// Open the sealed key of `credential`.
    pub fn open(&self, credential: &ProviderCredential) -> Result<String, Error> {
        open_with(
            std::iter::once(&self.current).chain(self.previous.as_ref()),
            credential,
        )
    }
}

/// Open the sealed key of `credential` with whichever of `keys` sealed it.
pub fn open_with<'a>(
    keys: impl IntoIterator<Item = &'a MasterKey>,
    credential: &ProviderCredential,
) -> Result<String, Error> {
    let name = credential.name.as_str();
    let mut parts = credential.sealed_api_key.splitn(3, '.');
    let (Some(VERSION), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt(name));
    };
    let blob = STANDARD.decode(b64).map_err(|_| corrupt(name))?;
    let key = keys.into_iter().find(|k| k.id == id).ok_or_else(|| {
        Error::internal(format!(
            "the stored key of provider '{name}' was sealed under another master key (id {id}); \
             rotate the master key (`prompt-registry rotate-master-key`) or set {PREVIOUS_MASTER_KEY_ENV}"
        ))
    })?;
    key.open(credential.project_id, name, &blob)
}

/// Reseal every stored credential from `old` to `new` in one transaction; values
/// already under the new key are resealed too, so an interrupted rotation can be run
/// again. Returns how many were resealed.
pub async fn rotate(
    store: &std::sync::Arc<dyn prompt_core::PromptStore>,
    old: MasterKey,
    new: MasterKey,
) -> Result<u64, Error> {
    let reseal = move |c: &ProviderCredential| -> Result<String, Error> {
        let clear = open_with([&old, &new], c)?;
        new.seal(c.project_id, &c.name, &clear)
    };
    store.reseal_provider_credentials(&reseal).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn cred(project: Uuid, name: &str, sealed: String) -> ProviderCredential {
        ProviderCredential {
            project_id: project,
            name: name.into(),
            kind: prompt_core::ProviderKind::Openai,
            base_url: None,
            sealed_api_key: sealed,
            key_hint: String::new(),
            default_params: serde_json::json!({}),
            created_at: prompt_core::domain::now(),
            updated_at: prompt_core::domain::now(),
        }
    }

    #[test]
    fn key_formats() {
        let a = MasterKey::parse(HEX).unwrap();
        let bytes: Vec<u8> = (0u8..32).collect();
        let b = MasterKey::parse(&STANDARD.encode(&bytes)).unwrap();
        assert_eq!(a.id(), b.id());
        assert!(MasterKey::parse(&STANDARD_NO_PAD.encode(&bytes)).is_ok());
        assert!(MasterKey::parse("abc").is_err());
        let e = MasterKey::parse(&STANDARD.encode([0u8; 16])).unwrap_err();
        assert!(e.contains("16 bytes"), "{e}");
        assert!(!format!("{a:?}").contains("0001"));
        let e = Keyring::from_lookup(|k| (k == MASTER_KEY_ENV).then(|| "nope".into())).unwrap_err();
        assert!(e.contains(MASTER_KEY_ENV) && !e.contains("nope"), "{e}");
        assert!(Keyring::from_lookup(|_| None).unwrap().is_none());
    }

    #[test]
    fn seal_and_open() {
        let k = MasterKey::parse(HEX).unwrap();
        let p = Uuid::now_v7();
        let s1 = k.seal(p, "openai", "sk-secret-value").unwrap();
        let s2 = k.seal(p, "openai", "sk-secret-value").unwrap();
        assert_ne!(s1, s2, "fresh nonce per value");
        assert!(!s1.contains("secret"));
        let ring = Keyring {
            current: k.clone(),
            previous: None,
        };
        assert_eq!(
            ring.open(&cred(p, "openai", s1.clone())).unwrap(),
            "sk-secret-value"
        );
        // Bound to its row.
        assert!(ring.open(&cred(p, "other", s1.clone())).is_err());
        assert!(
            ring.open(&cred(Uuid::now_v7(), "openai", s1.clone()))
                .is_err()
        );
        // Another key: reported as such; with it as previous, it opens.
        let k2 = MasterKey::parse(&HEX.replace("00", "ff")).unwrap();
        let ring2 = Keyring {
            current: k2.clone(),
            previous: None,
        };
        let e = ring2.open(&cred(p, "openai", s1.clone())).unwrap_err();
        assert!(e.to_string().contains("another master key"), "{e}");
        let ring3 = Keyring {
            current: k2,
            previous: Some(k),
        };
        assert_eq!(
            ring3.open(&cred(p, "openai", s1)).unwrap(),
            "sk-secret-value"
        );
    }
}
