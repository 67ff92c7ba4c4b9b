//! Rate limiting (governor's keyed GCRA limiter): per API key or user on the API, per
//! client address on the anonymous prompt tools (`--public-tools`). With
//! `--redis-url` the same quotas are counted once for every instance ([`SharedLimits`]).

mod shared;

pub use shared::SharedLimits;

use std::fmt::Display;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::error::ApiError;

type Keyed<K> = RateLimiter<K, governor::state::keyed::DefaultKeyedStateStore<K>, DefaultClock>;

/// A quota per key `K`; `None` inside turns limiting off.
#[derive(Debug, Clone)]
pub struct Limiter<K: Hash + Eq + Clone> {
    inner: Option<Arc<Keyed<K>>>,
    /// What one key is, for the 429's message ("this API key", "this client address").
    what: &'static str,
    /// The quota, as Redis counts it.
    quota: Option<shared::Gcra>,
    /// Redis, counting the quota for every instance (the in-process limiter is the
    /// fallback while Redis is unreachable).
    shared: Option<Arc<SharedLimits>>,
    /// The key space of this limiter in Redis (`key`, `addr`).
    scope: &'static str,
}

/// Requests per second and burst allowed to each API key (or signed-in user).
pub type KeyLimiter = Limiter<Uuid>;

/// Requests per minute and burst allowed to each client address (anonymous callers).
pub type AddrLimiter = Limiter<IpAddr>;

impl KeyLimiter {
    /// A limiter allowing `per_second` sustained and `burst` at once per key; 0 disables.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Limiter::with_quota(
            NonZeroU32::new(per_second).map(Quota::per_second),
            burst,
            "this API key",
            "key",
        )
    }

    /// A limiter that allows everything.
    pub fn disabled() -> Self {
        Limiter {
            inner: None,
            what: "this API key",
            quota: None,
            shared: None,
            scope: "key",
        }
    }
}

impl AddrLimiter {
    /// A limiter allowing `per_minute` sustained and `burst` at once per client
    /// address; 0 disables.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        Limiter::with_quota(
            NonZeroU32::new(per_minute).map(Quota::per_minute),
            burst,
            "this client address",
            "addr",
        )
    }
}

impl<K: Hash + Eq + Clone + Display> Limiter<K> {
    fn with_quota(
        quota: Option<Quota>,
        burst: u32,
        what: &'static str,
        scope: &'static str,
    ) -> Self {
        let quota = quota.map(|q| q.allow_burst(NonZeroU32::new(burst).unwrap_or(q.burst_size())));
        Limiter {
            inner: quota.map(|q| Arc::new(RateLimiter::keyed(q))),
            what,
            quota: quota.map(|q| shared::Gcra {
                interval: q.replenish_interval(),
                burst: q.burst_size().get(),
            }),
            shared: None,
            scope,
        }
    }

    /// Count this limiter's quota in Redis, once for every instance; a disabled
    /// limiter stays disabled.
    pub fn shared_through(mut self, redis: Arc<SharedLimits>) -> Self {
        self.shared = Some(redis);
        self
    }

    /// `RateLimited` with the wait when `key` is over its quota: decided by Redis when
    /// the limits are shared and Redis answers, else in-process.
    pub async fn check(&self, key: K) -> Result<(), ApiError> {
        let Some(l) = &self.inner else { return Ok(()) };
        if let (Some(redis), Some(quota)) = (&self.shared, self.quota) {
            match redis.check(self.scope, &key.to_string(), quota).await {
                Some(None) => return Ok(()),
                Some(Some(wait)) => return Err(self.refused(wait)),
                None => {
                    metrics::counter!("prompt_registry_rate_limit_fallbacks_total").increment(1);
                }
            }
        }
        l.check_key(&key).map_err(|not_until| {
            self.refused(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    fn refused(&self, wait: Duration) -> ApiError {
        ApiError::RateLimited {
            message: format!("rate limit exceeded for {}", self.what),
            retry_after: wait.max(Duration::from_millis(1)),
        }
    }

    /// Forget idle keys (call now and then so memory stays bounded).
    pub fn shrink(&self) {
        if let Some(l) = &self.inner {
            l.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_address_has_its_own_quota() {
        let l = AddrLimiter::per_minute(1, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.check(a).await.is_ok());
        assert!(l.check(a).await.is_ok());
        let Err(ApiError::RateLimited { message, .. }) = l.check(a).await else {
            panic!("the third request within the burst of 2 must be refused");
        };
        assert!(message.contains("client address"), "{message}");
        assert!(
            l.check(b).await.is_ok(),
            "another address is not limited by a's quota"
        );
        assert!(AddrLimiter::per_minute(0, 0).check(a).await.is_ok());
    }
}
