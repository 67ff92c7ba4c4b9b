//! The one retry loop: jittered exponential backoff that honours the vendor's
//! retry-after, bounded by a number of attempts and a total deadline, retrying only
//! the kinds that may succeed later ([`ProviderErrorKind::is_retryable`]).
//!
//! [`RetryProvider`] applies it to any [`Provider`], so vendor modules never retry
//! themselves and the executor never needs to know.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prompt_core::{
    ChatRequest, ChatResponse, ChatStream, Provider, ProviderError, ProviderErrorKind,
};
use rand::RngExt;
use serde::Deserialize;
use tokio::time::Instant;

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry (before jitter).
    #[serde(rename = "initial_backoff_ms", with = "crate::http::millis")]
    pub initial_backoff: Duration,
    /// Largest backoff (before jitter).
    #[serde(rename = "max_backoff_ms", with = "crate::http::millis")]
    pub max_backoff: Duration,
    /// Growth of the backoff per retry.
    pub multiplier: f64,
    /// All attempts and waits together end by this deadline: an attempt under way is
    /// cut off (a `Timeout`), and no retry starts whose wait would pass it.
    #[serde(rename = "total_deadline_ms", with = "crate::http::millis")]
    pub total_deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            total_deadline: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry (the deadline still applies).
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// The backoff before retry number `retry` (1-based), before jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .multiplier
            .max(1.0)
            .powi(retry.saturating_sub(1).min(64) as i32);
        let secs = (self.initial_backoff.as_secs_f64() * exp).min(self.max_backoff.as_secs_f64());
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_backoff)
    }

    /// The wait before retry number `retry` after `error`: the vendor's retry-after if
    /// it sent one, else the backoff with "equal jitter" (uniform in [b/2, b]), so
    /// clients that failed together do not retry together.
    pub fn delay(&self, retry: u32, error: &ProviderError) -> Duration {
        if let Some(after) = error.retry_after {
            return after;
        }
        let b = self.backoff(retry);
        let half = b / 2;
        let jitter = rand::rng().random_range(0.0..=1.0);
        half + half.mul_f64(jitter)
    }

    /// Check the policy once, at start-up.
    pub fn validate(&self) -> Result<(), prompt_core::Error> {
        if self.max_attempts == 0 {
            return Err(prompt_core::Error::invalid(
                "max_attempts",
                "must be at least 1",
            ));
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(prompt_core::Error::invalid(
                "multiplier",
                "must be at least 1",
            ));
        }
        if self.total_deadline.is_zero() {
            return Err(prompt_core::Error::invalid(
                "total_deadline_ms",
                "must be positive",
            ));
        }
        Ok(())
    }
}

fn with_note(mut e: ProviderError, note: String) -> ProviderError {
    e.message = format!("{} ({note})", e.message);
    e
}

/// Run `attempt` until it succeeds, fails with a kind that is not retryable, runs out
/// of attempts or would pass the deadline. `attempt` gets the 1-based attempt number.
/// The error returned is the last one, its message noting why retrying stopped.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    provider: &str,
    mut attempt: F,
) -> Result<T, ProviderError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let deadline = Instant::now() + policy.total_deadline;
    let mut n = 0u32;
    loop {
        n += 1;
        let result = match tokio::time::timeout_at(deadline, attempt(n)).await {
            Ok(r) => r,
            Err(_) => {
                return Err(ProviderError::new(
                    ProviderErrorKind::Timeout,
                    provider,
                    format!(
                        "no answer within the deadline of {} ms (attempt {n})",
                        policy.total_deadline.as_millis()
                    ),
                ));
            }
        };
        let e = match result {
            Ok(v) => return Ok(v),
            Err(e) if !e.is_retryable() => return Err(e),
            Err(e) => e,
        };
        if n >= policy.max_attempts.max(1) {
            return Err(if n > 1 {
                with_note(e, format!("gave up after {n} attempts"))
            } else {
                e
            });
        }
        let wait = policy.delay(n, &e);
        if Instant::now() + wait >= deadline {
            let note = match e.retry_after {
                Some(after) => format!(
                    "not retried: the provider asked to wait {} ms, past the deadline; {n} attempt(s)",
                    after.as_millis()
                ),
                None => format!("not retried: the backoff would pass the deadline; {n} attempt(s)"),
            };
            return Err(with_note(e, note));
        }
        tracing::debug!(
            provider,
            attempt = n,
            kind = e.kind.as_str(),
            wait_ms = wait.as_millis() as u64,
            "retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

/// A provider that retries another one under a [`RetryPolicy`].
///
/// Streams are retried only until they start: once the first event may have been
/// seen, a failure fails the call.
#[derive(Debug, Clone)]
pub struct RetryProvider {
    inner: Arc<dyn Provider>,
    policy: RetryPolicy,
}

impl RetryProvider {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Provider>, policy: RetryPolicy) -> Self {
        RetryProvider { inner, policy }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

#[async_trait]
impl Provider for RetryProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn default_model(&self) -> Option<&str> {
        self.inner.default_model()
    }

    fn pricing_name(&self) -> &str {
        self.inner.pricing_name()
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        retry(&self.policy, self.inner.name(), |_| {
            self.inner.complete(request)
        })
        .await
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        retry(&self.policy, self.inner.name(), |_| {
            self.inner.stream(request)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn err(kind: ProviderErrorKind, retry_after: Option<Duration>) -> ProviderError {
        let mut e = ProviderError::new(kind, "p", "boom");
        e.retry_after = retry_after;
        e
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            multiplier: 2.0,
            total_deadline: Duration::from_secs(5),
        }
    }

    #[test]
    fn backoff_grows_and_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(500));
        assert_eq!(p.backoff(2), Duration::from_secs(1));
        assert_eq!(p.backoff(3), Duration::from_secs(2));
        assert_eq!(p.backoff(30), Duration::from_secs(30));
        let e = err(ProviderErrorKind::Server, None);
        for _ in 0..100 {
            let d = p.delay(2, &e);
            assert!(
                d >= Duration::from_millis(500) && d <= Duration::from_secs(1),
                "{d:?}"
            );
        }
        let e = err(ProviderErrorKind::RateLimited, Some(Duration::from_secs(7)));
        assert_eq!(p.delay(1, &e), Duration::from_secs(7));
    }

    #[tokio::test]
    async fn retries_retryable_kinds_until_success() {
        let calls = AtomicU32::new(0);
        let r = retry(&fast(), "p", |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Err(err(ProviderErrorKind::Server, None))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn never_retries_other_kinds() {
        for kind in [
            ProviderErrorKind::Auth,
            ProviderErrorKind::QuotaExhausted,
            ProviderErrorKind::InvalidRequest,
            ProviderErrorKind::ContextLength,
        ] {
            let calls = AtomicU32::new(0);
            let r: Result<(), _> = retry(&fast(), "p", |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { Err(err(kind, None)) }
            })
            .await;
            assert_eq!(r.unwrap_err().kind, kind);
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{kind:?}");
        }
    }

    #[tokio::test]
    async fn exhaustion_reports_the_attempts() {
        let r: Result<(), _> = retry(&fast(), "p", |_| async {
            Err(err(ProviderErrorKind::Overloaded, None))
        })
        .await;
        let e = r.unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::Overloaded);
        assert!(
            e.message.ends_with("(gave up after 4 attempts)"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn honours_retry_after_and_the_deadline() {
        let policy = RetryPolicy {
            total_deadline: Duration::from_secs(2),
            ..fast()
        };
        let started = Instant::now();
        let r = retry(&policy, "p", |n| async move {
            if n == 1 {
                Err(err(
                    ProviderErrorKind::RateLimited,
                    Some(Duration::from_millis(300)),
                ))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(r.is_ok());
        assert!(started.elapsed() >= Duration::from_millis(300));

        // A retry-after past the deadline is not waited for.
        let started = Instant::now();
        let r: Result<(), _> = retry(&policy, "p", |_| async {
            Err(err(
                ProviderErrorKind::RateLimited,
                Some(Duration::from_secs(60)),
            ))
        })
        .await;
        let e = r.unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::RateLimited);
        assert!(e.message.contains("past the deadline"), "{}", e.message);
        assert!(started.elapsed() < Duration::from_secs(1));

        // An attempt that hangs is cut off at the deadline.
        let policy = RetryPolicy {
            total_deadline: Duration::from_millis(200),
            ..fast()
        };
        let started = Instant::now();
        let r: Result<(), _> = retry(&policy, "p", |_| std::future::pending()).await;
        assert_eq!(r.unwrap_err().kind, ProviderErrorKind::Timeout);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
