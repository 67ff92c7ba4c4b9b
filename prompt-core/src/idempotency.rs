//! Idempotent writes: what a request sent with an `Idempotency-Key` is remembered by,
//! and the store of those keys ([`IdempotencyStore`]).
//!
//! The HTTP service claims a key before it runs a creating `POST`, stores the answer
//! after it, and answers a retry of the same request with that answer instead of
//! running it again (see `prompt-http`'s `idempotency` module for the protocol).

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The longest `Idempotency-Key` accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// Check an `Idempotency-Key`: 1 to [`MAX_KEY_LEN`] printable ASCII characters (space
/// included, other controls not). The error names the header.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} characters, got {}", key.len()),
        ));
    }
    if !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::invalid(
            "Idempotency-Key",
            "must be printable ASCII (e.g. a UUID)",
        ));
    }
    Ok(())
}

/// One request made with an `Idempotency-Key`: who made it, the key, and what the
/// request was (so that a key re-used for another request is recognized).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// The project the request was made in.
    pub project: Uuid,
    /// The API key or user that made it: keys are scoped by caller within a project,
    /// so two callers cannot collide or read each other's answers.
    pub principal: Uuid,
    /// The key, as sent (see [`validate_key`]).
    pub key: String,
    /// `METHOD path?query` of the request.
    pub request: String,
    /// The SHA-256 of the request body, in lowercase hex.
    pub body_sha256: String,
    /// This attempt's claim: completing or releasing the key only touches the row this
    /// claim wrote (a claim taken over as abandoned is not overwritten by its old
    /// owner).
    pub claim: Uuid,
}

/// The stored answer of a completed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// The HTTP status (below 500: server errors are never stored).
    pub status: u16,
    /// Its `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Its `Location`, if any.
    pub location: Option<String>,
    /// The body; `None` when it was not kept (larger than the server keeps, or a
    /// stream): a replay then says the request completed without repeating its body.
    pub body: Option<Vec<u8>>,
}

/// Where a key stands when a request claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key was free (never used, expired, or abandoned in flight): the caller runs
    /// the request, then completes or releases the key.
    Claimed,
    /// The same request is running under this key now.
    InFlight,
    /// The key was used for another request (method, path or body differ).
    Mismatch,
    /// The same request completed under this key: its answer.
    Completed(IdempotentResponse),
}

/// When a claim is made: now, when the key expires, and since when a claim still in
/// flight counts as abandoned (its process died before completing it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimTimes {
    /// Now.
    pub now: DateTime<Utc>,
    /// When the key (and its answer) is forgotten.
    pub expires_at: DateTime<Utc>,
    /// A claim made before this and never completed is taken over.
    pub abandoned_before: DateTime<Utc>,
}

/// The keys of idempotent requests and their answers. Every method is atomic:
/// concurrent claims of one key see exactly one [`IdempotencyClaim::Claimed`].
#[async_trait]
pub trait IdempotencyStore: Send + Sync + Debug {
    /// Claim `request.key` for `request` (scoped by project and principal). An
    /// expired key, or one claimed before `times.abandoned_before` and never
    /// completed, is replaced. Otherwise the stored request is compared with this one:
    /// another request is [`IdempotencyClaim::Mismatch`], the same one is
    /// [`IdempotencyClaim::InFlight`] or [`IdempotencyClaim::Completed`].
    async fn claim_key(
        &self,
        request: &IdempotentRequest,
        times: ClaimTimes,
    ) -> Result<IdempotencyClaim>;

    /// Store the answer of a claimed request. Does nothing if the claim is no longer
    /// the key's (taken over as abandoned).
    async fn complete_key(
        &self,
        request: &IdempotentRequest,
        response: &IdempotentResponse,
    ) -> Result<()>;

    /// Forget a claimed key without an answer (the request failed on the server's
    /// side), so that a retry runs again. Does nothing if the claim is no longer the
    /// key's.
    async fn release_key(&self, request: &IdempotentRequest) -> Result<()>;

    /// Delete the keys that expired at `now` or before; returns how many.
    async fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert!(validate_key("0b6c6f0e-5f7e-4c7e-9d3f-2b9c1f7e8a11").is_ok());
        assert!(validate_key("a b").is_ok());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        for bad in [
            String::new(),
            "k".repeat(MAX_KEY_LEN + 1),
            "a\tb".into(),
            "é".into(),
        ] {
            let e = validate_key(&bad).unwrap_err();
            assert!(e.to_string().contains("Idempotency-Key"), "{e}");
        }
    }
}
