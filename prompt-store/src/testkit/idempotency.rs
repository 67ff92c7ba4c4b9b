//! Behaviour tests of idempotency keys: one claim per key under concurrency, replays
//! of the stored answer, mismatches, release, expiry, abandoned claims and the purge.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use prompt_core::domain::now;
use prompt_core::{
    ClaimTimes, IdempotencyClaim, IdempotencyStore, IdempotentRequest, IdempotentResponse,
};
use uuid::Uuid;

use super::TestBackend;

/// The backend's key store, or `None` (a skip, said) where it keeps none.
fn keys_of(b: &TestBackend) -> Option<Arc<dyn IdempotencyStore>> {
    let keys = b.store.idempotency();
    if keys.is_none() {
        eprintln!("SKIPPED: this backend keeps no idempotency keys");
    }
    keys
}

fn request(project: Uuid, key: &str, body: &str) -> IdempotentRequest {
    IdempotentRequest {
        project,
        principal: Uuid::new_v4(),
        key: key.to_owned(),
        request: "POST /api/v1/runs/batch?include=run".to_owned(),
        body_sha256: body.to_owned(),
        claim: Uuid::new_v4(),
    }
}

fn times(at: DateTime<Utc>) -> ClaimTimes {
    ClaimTimes {
        now: at,
        expires_at: at + Duration::hours(24),
        abandoned_before: at - Duration::minutes(4),
    }
}

fn answer(body: &[u8]) -> IdempotentResponse {
    IdempotentResponse {
        status: 201,
        content_type: Some("application/json".into()),
        location: Some("/api/v1/runs/1".into()),
        body: Some(body.to_vec()),
    }
}

/// A key is claimed once, then in flight; its stored answer is replayed byte for byte
/// (an empty body and a missing one too); another request with it is a mismatch; keys
/// are scoped by project and principal; a released key is claimed again.
pub async fn idempotency_claims_replays_and_mismatches(b: &TestBackend) {
    let Some(keys) = keys_of(b) else { return };
    let project = Uuid::new_v4();
    let at = now();
    let first = request(project, "k-1", "aaa");
    assert_eq!(
        keys.claim_key(&first, times(at)).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    let again = IdempotentRequest {
        claim: Uuid::new_v4(),
        ..first.clone()
    };
    assert_eq!(
        keys.claim_key(&again, times(at)).await.unwrap(),
        IdempotencyClaim::InFlight
    );
    let other_body = IdempotentRequest {
        body_sha256: "bbb".into(),
        ..again.clone()
    };
    assert_eq!(
        keys.claim_key(&other_body, times(at)).await.unwrap(),
        IdempotencyClaim::Mismatch
    );
    let other_path = IdempotentRequest {
        request: "POST /api/v1/runs".into(),
        ..again.clone()
    };
    assert_eq!(
        keys.claim_key(&other_path, times(at)).await.unwrap(),
        IdempotencyClaim::Mismatch
    );
    // Completing with another claim changes nothing; with the claim, stores.
    keys.complete_key(&again, &answer(b"nope")).await.unwrap();
    assert_eq!(
        keys.claim_key(&again, times(at)).await.unwrap(),
        IdempotencyClaim::InFlight
    );
    let body = b"{\"id\":1,\"bytes\":\"\x00\xff\"}";
    keys.complete_key(&first, &answer(body)).await.unwrap();
    assert_eq!(
        keys.claim_key(&again, times(at)).await.unwrap(),
        IdempotencyClaim::Completed(answer(body))
    );
    // Releasing a completed key does nothing.
    keys.release_key(&first).await.unwrap();
    assert_eq!(
        keys.claim_key(&again, times(at)).await.unwrap(),
        IdempotencyClaim::Completed(answer(body))
    );
    // Another principal, or another project, has keys of its own.
    let other_principal = request(project, "k-1", "zzz");
    assert_eq!(
        keys.claim_key(&other_principal, times(at)).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    let other_project = IdempotentRequest {
        project: Uuid::new_v4(),
        ..first.clone()
    };
    assert_eq!(
        keys.claim_key(&other_project, times(at)).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    // A released claim frees the key; an answer without a body is kept as such.
    keys.release_key(&other_principal).await.unwrap();
    let retry = IdempotentRequest {
        claim: Uuid::new_v4(),
        ..other_principal.clone()
    };
    assert_eq!(
        keys.claim_key(&retry, times(at)).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    let bodiless = IdempotentResponse {
        status: 200,
        content_type: None,
        location: None,
        body: None,
    };
    keys.complete_key(&retry, &bodiless).await.unwrap();
    assert_eq!(
        keys.claim_key(&other_principal, times(at)).await.unwrap(),
        IdempotencyClaim::Completed(bodiless)
    );
    let empty = request(project, "k-empty", "e");
    keys.claim_key(&empty, times(at)).await.unwrap();
    keys.complete_key(&empty, &answer(b"")).await.unwrap();
    assert_eq!(
        keys.claim_key(&empty, times(at)).await.unwrap(),
        IdempotencyClaim::Completed(answer(b""))
    );
}

/// Concurrent claims of one key: exactly one is `Claimed`, the others in flight.
pub async fn idempotency_claims_once_under_concurrency(b: &TestBackend) {
    let Some(keys) = keys_of(b) else { return };
    let base = request(Uuid::new_v4(), "race", "same");
    let at = now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let keys = keys.clone();
            let r = IdempotentRequest {
                claim: Uuid::new_v4(),
                ..base.clone()
            };
            tokio::spawn(async move { keys.claim_key(&r, times(at)).await.unwrap() })
        })
        .collect();
    let mut claimed = 0;
    for t in tasks {
        match t.await.unwrap() {
            IdempotencyClaim::Claimed => claimed += 1,
            IdempotencyClaim::InFlight => {}
            other => panic!("unexpected claim {other:?}"),
        }
    }
    assert_eq!(claimed, 1);
}

/// An expired key, and a claim abandoned in flight, are claimed again (and the old
/// claim can no longer complete it); the purge deletes expired keys only.
pub async fn idempotency_expiry_abandon_and_purge(b: &TestBackend) {
    let Some(keys) = keys_of(b) else { return };
    let project = Uuid::new_v4();
    let t0 = now();
    let done = request(project, "expiring", "x");
    keys.claim_key(&done, times(t0)).await.unwrap();
    keys.complete_key(&done, &answer(b"1")).await.unwrap();
    let later = t0 + Duration::hours(24) + Duration::seconds(1);
    let retry = IdempotentRequest {
        claim: Uuid::new_v4(),
        body_sha256: "other body: fine once expired".into(),
        ..done.clone()
    };
    assert_eq!(
        keys.claim_key(&retry, times(later)).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    // Abandoned: in flight since before `abandoned_before`.
    let stuck = request(project, "stuck", "s");
    keys.claim_key(&stuck, times(t0)).await.unwrap();
    let soon = t0 + Duration::minutes(1);
    assert_eq!(
        keys.claim_key(&stuck, times(soon)).await.unwrap(),
        IdempotencyClaim::InFlight
    );
    let taker = IdempotentRequest {
        claim: Uuid::new_v4(),
        ..stuck.clone()
    };
    let much_later = t0 + Duration::minutes(5);
    assert_eq!(
        keys.claim_key(&taker, times(much_later)).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    // The old owner cannot complete or release the key any more.
    keys.complete_key(&stuck, &answer(b"old")).await.unwrap();
    keys.release_key(&stuck).await.unwrap();
    assert_eq!(
        keys.claim_key(&stuck, times(much_later)).await.unwrap(),
        IdempotencyClaim::InFlight
    );
    // Purge: `retry` and `taker` expire a day after `later`/`much_later`.
    let short = request(project, "short", "p");
    keys.claim_key(
        &short,
        ClaimTimes {
            expires_at: t0 + Duration::seconds(1),
            ..times(t0)
        },
    )
    .await
    .unwrap();
    let purged = keys
        .purge_expired_keys(t0 + Duration::seconds(2))
        .await
        .unwrap();
    assert!(purged >= 1, "purged {purged}");
    assert_eq!(
        keys.claim_key(&retry, times(later)).await.unwrap(),
        IdempotencyClaim::InFlight,
        "unexpired keys stay"
    );
    let fresh = IdempotentRequest {
        body_sha256: "another".into(),
        claim: Uuid::new_v4(),
        ..short.clone()
    };
    assert_eq!(
        keys.claim_key(&fresh, times(t0)).await.unwrap(),
        IdempotencyClaim::Claimed,
        "the purged key is free"
    );
}
