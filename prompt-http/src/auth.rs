//! API keys: generation, hashing, the auth middleware and role checks.
//!
//! A key is `pr_<8 hex id>_<43 chars of base64url>`: 256 random bits after a visible
//! prefix (`pr_<8 hex id>`) that identifies the key in lists and logs. Only the SHA-256
//! of the whole key is stored. Why SHA-256 and not argon2 or a keyed HMAC: the key
//! carries 256 bits of entropy, so no dictionary or brute-force attack on a leaked hash
//! is possible and a slow password hash would only add latency to every request; a
//! keyed hash would need a server secret shared by every instance whose loss would
//! invalidate every key, for no gain at this entropy. Lookup is one indexed equality
//! query on the hash, and there is no key cache, so a revocation takes effect on the
//! next request on every instance.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prompt_core::domain::{new_id, now};
use prompt_core::{ApiKeyRecord, Error, KeyRole, Project, PromptStore};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// A freshly made key: the secret (shown once) and its record (stored).
/// `Debug` hides the key.
#[derive(Clone)]
pub struct IssuedKey {
    /// The whole key, to show the user once.
    pub key: String,
    /// What is stored.
    pub record: ApiKeyRecord,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("key", &"<hidden>")
            .field("record", &self.record)
            .finish()
    }
}

/// Hex SHA-256 of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Make a new key of `role` in `project` (not stored yet).
pub fn generate_key(project: Uuid, name: &str, role: KeyRole) -> IssuedKey {
    // rand's thread RNG is a CSPRNG seeded from the OS.
    let mut id = [0u8; 4];
    rand::fill(&mut id);
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    let prefix = format!(
        "pr_{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let key = format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(secret));
    let record = ApiKeyRecord {
        id: new_id(),
        project_id: project,
        name: name.to_owned(),
        role,
        prefix,
        hash: hash_key(&key),
        created_at: now(),
        revoked_at: None,
    };
    IssuedKey { key, record }
}

/// Generate and store a key.
pub async fn create_key(
    store: &Arc<dyn PromptStore>,
    project: Uuid,
    name: &str,
    role: KeyRole,
) -> prompt_core::Result<IssuedKey> {
    prompt_core::validate::max_len("name", name, 100)?;
    if name.trim().is_empty() {
        return Err(Error::invalid("name", "must not be empty"));
    }
    let issued = generate_key(project, name, role);
    store.create_api_key(issued.record.clone()).await?;
    Ok(issued)
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An API key (a service).
    Key {
        /// The key's id.
        id: Uuid,
        /// The key's visible prefix.
        prefix: String,
        /// The key's name (recorded as the author of versions and label moves).
        name: String,
    },
    /// A signed-in user with an access token.
    User {
        /// The user's id.
        id: Uuid,
        /// The user's email (recorded as the author).
        email: String,
        /// The session the token was issued in.
        session: Uuid,
    },
}

/// Who is calling, in which project, with which role.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key or user.
    pub principal: Principal,
    /// The project every query is scoped to.
    pub project: Project,
    /// What the caller may do there.
    pub role: KeyRole,
}

impl Caller {
    /// `Forbidden` unless the caller's role is at least `role`.
    pub fn require(&self, role: KeyRole) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            let who = match self.principal {
                Principal::Key { .. } => "the key",
                Principal::User { .. } => "your role in this project",
            };
            Err(ApiError::Forbidden(format!(
                "this needs the {} role; {who} has {}",
                role.as_str(),
                self.role.as_str()
            )))
        }
    }

    /// The actor recorded in audit fields: `key:NAME` or `user:EMAIL`.
    pub fn actor(&self) -> String {
        match &self.principal {
            Principal::Key { name, .. } => format!("key:{name}"),
            Principal::User { email, .. } => format!("user:{email}"),
        }
    }

    /// The id the rate limiter counts against: the key's, or the user's.
    pub fn limit_id(&self) -> Uuid {
        match &self.principal {
            Principal::Key { id, .. } | Principal::User { id, .. } => *id,
        }
    }

    /// The signed-in user, if the caller is one.
    pub fn user_id(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::User { id, .. } => Some(*id),
            Principal::Key { .. } => None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("missing API key or access token".into()))
    }
}

/// A caller with at least the editor role; rejects with 403 before the body is read.
#[derive(Debug, Clone)]
pub struct Editor(pub Caller);

/// A caller with the admin role; rejects with 403 before the body is read.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Editor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let c = Caller::from_request_parts(parts, state).await?;
        c.require(KeyRole::Editor)?;
        Ok(Editor(c))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let c = Caller::from_request_parts(parts, state).await?;
        c.require(KeyRole::Admin)?;
        Ok(Admin(c))
    }
}

/// The request's one `Authorization` header, if any. Two or more are a 400: which one
/// the client meant cannot be known, and taking the first would let a header added on
/// the way (by a proxy, or smuggled) decide who the caller is.
pub fn authorization(
    headers: &axum::http::HeaderMap,
) -> Result<Option<&axum::http::HeaderValue>, ApiError> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(ApiError::bad_request(
            "send one Authorization header, not several",
        ));
    }
    Ok(first)
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &axum::http::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(v) = authorization(parts)? else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not valid text".into()))?;
    match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::Unauthorized(
            "the Authorization header must be 'Bearer <api key>'".into(),
        )),
    }
}

/// Authenticate the bearer credential (an API key, or a user access token with its
/// `X-Project` header), check the rate limit, put the [`Caller`] in the request's
/// extensions, and run the rest of the request with the caller as the actor of the
/// events its writes append ([`prompt_core::domain::actor::scope`]).
pub async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match authenticate(&state, req.headers()).await {
        Ok(caller) => {
            if let Err(e) = state.limiter.check(caller.limit_id()).await {
                return e.into_response();
            }
            tracing::Span::current().record("project", tracing::field::display(caller.project.id));
            // The events the request's writes append name the caller as their actor.
            let actor = caller.actor();
            req.extensions_mut().insert(caller);
            prompt_core::domain::actor::scope(actor, next.run(req)).await
        }
        Err(e) => e.into_response(),
    }
}

/// On the people routes (which authenticate in their handlers): run a write made with
/// a valid user access token with the user as the actor of the events it appends
/// (`user:EMAIL`, as [`Caller::actor`]). Reads, and requests without a valid token, run
/// unscoped; the handlers still decide who may do what.
pub async fn scope_user_actor(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let user = match (&state.accounts, req.method().is_safe()) {
        (Some(accounts), false) => match bearer(req.headers()) {
            Ok(Some(token)) if crate::accounts::tokens::looks_like_jwt(token) => {
                match accounts.keys.verify(token).await {
                    Ok(claims) => accounts.people.user_by_id(claims.sub).await.ok(),
                    Err(_) => None,
                }
            }
            _ => None,
        },
        _ => None,
    };
    match user {
        Some(u) => {
            prompt_core::domain::actor::scope(crate::accounts::actor_of(&u), next.run(req)).await
        }
        None => next.run(req).await,
    }
}

/// The [`Caller`] of a bearer key or access token (no rate limit check).
pub async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Caller, ApiError> {
    let key = bearer(headers)?.ok_or_else(|| {
        ApiError::Unauthorized(
            "missing credentials: send 'Authorization: Bearer <api key or access token>'".into(),
        )
    })?;
    if crate::accounts::tokens::looks_like_jwt(key) {
        let accounts = state.accounts.as_ref().ok_or_else(|| {
            ApiError::Unauthorized("user access tokens are not accepted by this server".into())
        })?;
        let project = headers
            .get(crate::accounts::access::PROJECT_HEADER)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::invalid("X-Project", "the header is not valid text"))
            })
            .transpose()?;
        return accounts.caller_for(&state.store, key, project).await;
    }
    if key.len() > 200 {
        return Err(ApiError::Unauthorized("invalid API key".into()));
    }
    let record = match state.store.api_key_by_hash(&hash_key(key)).await {
        Ok(r) => r,
        Err(Error::NotFound { .. }) => {
            return Err(ApiError::Unauthorized("invalid or revoked API key".into()));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Caller {
        principal: Principal::Key {
            id: record.id,
            prefix: record.prefix,
            name: record.name,
        },
        project: Project {
            id: record.project_id,
            // Not loaded on the key path: nothing there reads them.
            org_id: prompt_core::domain::DEFAULT_ORG_ID,
            name: String::new(),
            created_at: record.created_at,
            run_retention_days: None,
        },
        role: record.role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_prefix_and_hash() {
        let k = generate_key(Uuid::nil(), "ci", KeyRole::Admin);
        assert!(k.key.starts_with(&k.record.prefix));
        assert!(k.record.prefix.starts_with("pr_") && k.record.prefix.len() == 11);
        assert_eq!(k.record.hash, hash_key(&k.key));
        assert_eq!(k.record.hash.len(), 64);
        assert!(!k.record.hash.contains(&k.key));
        let k2 = generate_key(Uuid::nil(), "ci", KeyRole::Admin);
        assert_ne!(k.key, k2.key);
    }
}
