//! Access tokens (JWT, HS256, pinned), their signing keys, and opaque tokens.
//!
//! - **Algorithm pinned**: tokens are signed and verified with HS256 only. A token
//!   whose header names another algorithm (`none`, `RS256` with our secret as a
//!   "public key", …) is refused before any signature check, and the key is picked by
//!   `kid` among our own keys only.
//! - **Keys need no set-up and are shared**: they live in the database (table
//!   `signing_keys`), so every instance on one database signs and verifies with the
//!   same keys; the first start makes one.
//! - **Rotation without signing anyone out**: when the newest key is older than the
//!   rotation period a new one is made and signs from then on; older keys keep
//!   verifying until every token they signed has expired, then they are retired.
//!   An instance that meets an unknown `kid` reloads the keys once.
//! - **Opaque tokens** (refresh, invitation, email links) are 256 random bits,
//!   base64url; only their SHA-256 is stored.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use prompt_core::domain::{SigningKey, now};
use prompt_core::{Error, PeopleStore, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How often a running service reloads the signing keys (and rotates them when due).
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(3600);

/// Issuer and audience of our access tokens.
pub const TOKEN_ISSUER: &str = "prompt-registry";

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: Uuid,
    /// The session (refresh-token family) it was issued in.
    pub sid: Uuid,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

/// A new opaque token (256 random bits, base64url).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of an opaque token: hex SHA-256.
pub fn hash_token(token: &str) -> String {
    crate::auth::hash_key(token)
}

/// Whether a bearer credential is shaped like a JWT (API keys start with `pr_`).
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The signing keys of this database, cached in memory.
#[derive(Clone)]
pub struct Keys {
    people: Arc<dyn PeopleStore>,
    keys: Arc<RwLock<Vec<SigningKey>>>,
    last_reload: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    access_ttl: Duration,
    rotate_after: Duration,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("access_ttl", &self.access_ttl)
            .field("rotate_after", &self.rotate_after)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Load the keys, making (and rotating) one as needed.
    pub async fn load(
        people: Arc<dyn PeopleStore>,
        access_ttl: Duration,
        rotate_after: Duration,
    ) -> Result<Self> {
        let keys = Keys {
            people,
            keys: Arc::new(RwLock::new(Vec::new())),
            last_reload: Arc::new(std::sync::Mutex::new(None)),
            access_ttl,
            rotate_after,
        };
        keys.rotate_if_due().await?;
        Ok(keys)
    }

    /// How long access tokens live.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    async fn reload(&self) -> Result<()> {
        let loaded: Vec<SigningKey> = self
            .people
            .signing_keys()
            .await?
            .into_iter()
            .filter(|k| k.retired_at.is_none())
            .collect();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    /// Make a new signing key when the newest is older than the rotation period, and
    /// retire keys that can no longer have signed a live token. Run at start-up and
    /// then periodically; safe on several instances at once (two new keys both
    /// verify; the newest signs).
    pub async fn rotate_if_due(&self) -> Result<()> {
        self.reload().await?;
        let at = now();
        let rotate_after = chrono::Duration::from_std(self.rotate_after)
            .map_err(|e| Error::internal(format!("rotation period: {e}")))?;
        let newest = self.newest().map(|k| k.created_at);
        if newest.is_none_or(|t| at - t >= rotate_after) {
            let mut secret = vec![0u8; 32];
            rand::fill(secret.as_mut_slice());
            let key = SigningKey {
                id: format!("k{}", Uuid::now_v7().simple()),
                secret,
                created_at: at,
                retired_at: None,
            };
            self.people.add_signing_key(key).await?;
            self.reload().await?;
        }
        // A key stops signing when a newer one is made; every token it signed has
        // expired one access lifetime (plus the clock-skew leeway) later. So every key
        // older than the newest key made before that horizon can go.
        // Another instance may go on signing with the older key until its next reload
        // (every KEY_RELOAD_INTERVAL), and its tokens live one access lifetime more.
        let grace = chrono::Duration::from_std(
            self.access_ttl + KEY_RELOAD_INTERVAL + Duration::from_secs(60),
        )
        .map_err(|e| Error::internal(format!("access token lifetime: {e}")))?;
        let horizon = at - grace;
        let cutoff = {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            keys.iter()
                .map(|k| k.created_at)
                .filter(|t| *t <= horizon)
                .max()
        };
        if let Some(cutoff) = cutoff
            && self.people.retire_signing_keys(cutoff, at).await? > 0
        {
            self.reload().await?;
        }
        Ok(())
    }

    fn newest(&self) -> Option<SigningKey> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .max_by_key(|k| k.created_at)
            .cloned()
    }

    /// Sign an access token for `user` in session `sid`; returns it with its expiry.
    pub fn issue(&self, user: Uuid, sid: Uuid) -> Result<(String, DateTime<Utc>)> {
        let key = self
            .newest()
            .ok_or_else(|| Error::unavailable("no signing key is loaded"))?;
        let iat = now();
        let exp = iat
            + chrono::Duration::from_std(self.access_ttl)
                .map_err(|e| Error::internal(format!("access token lifetime: {e}")))?;
        let claims = AccessClaims {
            sub: user,
            sid,
            iat: iat.timestamp(),
            exp: exp.timestamp(),
            iss: TOKEN_ISSUER.to_owned(),
            aud: TOKEN_ISSUER.to_owned(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.id.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key.secret))
            .map_err(|e| Error::internal(format!("signing an access token: {e}")))?;
        Ok((token, exp))
    }

    /// Verify an access token: HS256 only, a known `kid`, signature, `iss`, `aud`,
    /// `exp` (no leeway beyond 30 s of clock skew). `Unauthorized` otherwise, saying
    /// why in general terms.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims> {
        self.verify_for(
            token,
            TOKEN_ISSUER,
            &["exp", "iss", "aud", "sub"],
            "access token",
        )
        .await
    }

    /// Sign short-lived claims of our own that are not an access token (the state of a
    /// social sign-in kept in a cookie), with the current key and HS256. The claims
    /// must carry `iss` = [`TOKEN_ISSUER`], an `aud` of their own (never
    /// [`TOKEN_ISSUER`], so that they can never pass for an access token) and `exp`.
    pub fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String> {
        let key = self
            .newest()
            .ok_or_else(|| Error::unavailable("no signing key is loaded"))?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.id.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&key.secret))
            .map_err(|e| Error::internal(format!("signing a token: {e}")))
    }

    /// Verify claims signed by [`Keys::sign_claims`] for `audience`, with the same
    /// rules as access tokens. `Unauthorized` naming `what` otherwise.
    pub async fn verify_claims<T: DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
        what: &str,
    ) -> Result<T> {
        self.verify_for(token, audience, &["exp", "iss", "aud"], what)
            .await
    }

    async fn verify_for<T: DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
        required: &[&str],
        what: &str,
    ) -> Result<T> {
        let bad = |why: &str| Error::Unauthorized {
            message: format!("invalid {what}: {why}"),
        };
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed"))?;
        if header.alg != Algorithm::HS256 {
            return Err(bad("unexpected signing algorithm"));
        }
        let kid = header.kid.ok_or_else(|| bad("no key id"))?;
        let secret = match self.secret(&kid) {
            Some(s) => s,
            None => {
                // Maybe another instance rotated: look once more (at most once a
                // second, so tokens with made-up key ids cannot make every request
                // read the database).
                if !self.may_reload() {
                    return Err(bad("unknown or retired key"));
                }
                self.reload().await?;
                self.secret(&kid)
                    .ok_or_else(|| bad("unknown or retired key"))?
            }
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[TOKEN_ISSUER]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(required);
        validation.leeway = 30;
        jsonwebtoken::decode::<T>(token, &DecodingKey::from_secret(&secret), &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => bad("expired"),
                _ => bad("signature or claims do not verify"),
            })
    }

    fn may_reload(&self) -> bool {
        let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn secret(&self, kid: &str) -> Option<Vec<u8>> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|k| k.id == kid)
            .map(|k| k.secret.clone())
    }
}
