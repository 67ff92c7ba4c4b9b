//! Idempotency keys in memory: for the memory backend, and for a server whose store
//! keeps none (the remote store), which then remembers keys for its own lifetime.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::{
    ClaimTimes, Error, IdempotencyClaim, IdempotencyStore, IdempotentRequest, IdempotentResponse,
    Result,
};
use uuid::Uuid;

/// (project, principal, key).
type Scope = (Uuid, Uuid, String);

#[derive(Debug, Clone)]
struct Entry {
    request: String,
    body_sha256: String,
    claim: Uuid,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    response: Option<IdempotentResponse>,
}

/// Idempotency keys held in a map behind one lock (every method is atomic).
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    keys: Mutex<HashMap<Scope, Entry>>,
}

impl MemoryIdempotency {
    fn lock(&self) -> Result<MutexGuard<'_, HashMap<Scope, Entry>>> {
        self.keys
            .lock()
            .map_err(|_| Error::internal("idempotency key lock poisoned by an earlier panic"))
    }
}

fn scope_of(r: &IdempotentRequest) -> Scope {
    (r.project, r.principal, r.key.clone())
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotency {
    async fn claim_key(
        &self,
        request: &IdempotentRequest,
        times: ClaimTimes,
    ) -> Result<IdempotencyClaim> {
        let mut keys = self.lock()?;
        let scope = scope_of(request);
        if let Some(e) = keys.get(&scope) {
            let gone = e.expires_at <= times.now
                || (e.response.is_none() && e.created_at < times.abandoned_before);
            if !gone {
                if e.request != request.request || e.body_sha256 != request.body_sha256 {
                    return Ok(IdempotencyClaim::Mismatch);
                }
                return Ok(match &e.response {
                    Some(r) => IdempotencyClaim::Completed(r.clone()),
                    None => IdempotencyClaim::InFlight,
                });
            }
        }
        keys.insert(
            scope,
            Entry {
                request: request.request.clone(),
                body_sha256: request.body_sha256.clone(),
                claim: request.claim,
                created_at: times.now,
                expires_at: times.expires_at,
                response: None,
            },
        );
        Ok(IdempotencyClaim::Claimed)
    }

    async fn complete_key(
        &self,
        request: &IdempotentRequest,
        response: &IdempotentResponse,
    ) -> Result<()> {
        let mut keys = self.lock()?;
        if let Some(e) = keys.get_mut(&scope_of(request))
            && e.claim == request.claim
        {
            e.response = Some(response.clone());
        }
        Ok(())
    }

    async fn release_key(&self, request: &IdempotentRequest) -> Result<()> {
        let mut keys = self.lock()?;
        let scope = scope_of(request);
        if keys
            .get(&scope)
            .is_some_and(|e| e.claim == request.claim && e.response.is_none())
        {
            keys.remove(&scope);
        }
        Ok(())
    }

    async fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut keys = self.lock()?;
        let before = keys.len();
        keys.retain(|_, e| e.expires_at > now);
        Ok(u64::try_from(before - keys.len()).unwrap_or(u64::MAX))
    }
}
