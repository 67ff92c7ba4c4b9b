//! Rate limiting (governor's keyed GCRA limiter): per API key or user on the API, per
//! client address on the anonymous prompt tools (`--public-tools`).

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
        )
    }

    /// A limiter that allows everything.
    pub fn disabled() -> Self {
        Limiter {
            inner: None,
            what: "this API key",
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
        )
    }
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn with_quota(quota: Option<Quota>, burst: u32, what: &'static str) -> Self {
        let inner = quota.map(|q| {
            let burst = NonZeroU32::new(burst).unwrap_or(q.burst_size());
            Arc::new(RateLimiter::keyed(q.allow_burst(burst)))
        });
        Limiter { inner, what }
    }

    /// `RateLimited` with the wait when `key` is over its quota.
    pub fn check(&self, key: K) -> Result<(), ApiError> {
        let Some(l) = &self.inner else { return Ok(()) };
        l.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
                message: format!("rate limit exceeded for {}", self.what),
                retry_after: wait.max(Duration::from_millis(1)),
            }
        })
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

    #[test]
    fn each_address_has_its_own_quota() {
        let l = AddrLimiter::per_minute(1, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.check(a).is_ok());
        assert!(l.check(a).is_ok());
        let Err(ApiError::RateLimited { message, .. }) = l.check(a) else {
            panic!("the third request within the burst of 2 must be refused");
        };
        assert!(message.contains("client address"), "{message}");
        assert!(
            l.check(b).is_ok(),
            "another address is not limited by a's quota"
        );
        assert!(AddrLimiter::per_minute(0, 0).check(a).is_ok());
    }
}
