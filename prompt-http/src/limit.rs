//! Rate limiting per API key (governor's keyed GCRA limiter).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::error::ApiError;

type Keyed = RateLimiter<Uuid, governor::state::keyed::DefaultKeyedStateStore<Uuid>, DefaultClock>;

/// Requests per second and burst allowed to each key; `None` turns limiting off.
#[derive(Debug, Clone)]
pub struct KeyLimiter {
    inner: Option<Arc<Keyed>>,
}

impl KeyLimiter {
    /// A limiter allowing `per_second` sustained and `burst` at once per key; 0 disables.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let inner = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        KeyLimiter { inner }
    }

    /// A limiter that allows everything.
    pub fn disabled() -> Self {
        KeyLimiter { inner: None }
    }

    /// `RateLimited` with the wait when `key` is over its quota.
    pub fn check(&self, key: Uuid) -> Result<(), ApiError> {
        let Some(l) = &self.inner else { return Ok(()) };
        l.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
                message: "rate limit exceeded for this API key".into(),
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
