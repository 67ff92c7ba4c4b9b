//! Sign-in throttling: per account and per client address, with a lock-out that grows
//! with repeated failures.
//!
//! Per instance (in memory): several instances each allow their own budget, which
//! multiplies an attacker's rate by the instance count but still bounds it; a shared
//! store would be the next step (see the closing note of issue 15).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits of the throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Failures allowed per account before it is locked out.
    pub account_failures: u32,
    /// Failures allowed per client address before it is locked out.
    pub address_failures: u32,
    /// The first lock-out; each further failure doubles it.
    pub base_lockout: Duration,
    /// The longest lock-out.
    pub max_lockout: Duration,
    /// Failures are forgotten after this long without one.
    pub forget_after: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            account_failures: 5,
            address_failures: 30,
            base_lockout: Duration::from_secs(1),
            max_lockout: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// The throttle. Keys are `account:<email>` and `address:<ip>`.
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    records: Mutex<HashMap<String, Record>>,
}

/// Most keys held before old ones are swept.
const MAX_KEYS: usize = 100_000;

impl LoginThrottle {
    /// A throttle with these limits.
    pub fn new(config: ThrottleConfig) -> Self {
        LoginThrottle {
            config,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` if any of `keys` is locked out now.
    pub fn check(&self, keys: &[String]) -> Result<(), Duration> {
        let now = Instant::now();
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| records.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(w) => Err(w),
            None => Ok(()),
        }
    }

    /// Count a failure against each of `keys` (with its allowance), locking out those
    /// over it; returns the longest lock-out now in force.
    pub fn fail(&self, keys: &[(String, bool)]) -> Option<Duration> {
        let now = Instant::now();
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.len() > MAX_KEYS {
            let forget = self.config.forget_after;
            records.retain(|_, r| now.duration_since(r.last) < forget);
        }
        let mut longest = None;
        for (key, is_account) in keys {
            let allowance = if *is_account {
                self.config.account_failures
            } else {
                self.config.address_failures
            };
            let r = records.entry(key.clone()).or_insert(Record {
                failures: 0,
                last: now,
                locked_until: None,
            });
            if now.duration_since(r.last) >= self.config.forget_after {
                r.failures = 0;
            }
            r.failures = r.failures.saturating_add(1);
            r.last = now;
            if r.failures >= allowance {
                let doublings = (r.failures - allowance).min(20);
                let lock = self
                    .config
                    .base_lockout
                    .saturating_mul(1u32 << doublings)
                    .min(self.config.max_lockout);
                r.locked_until = Some(now + lock);
                longest = Some(longest.map_or(lock, |l: Duration| l.max(lock)));
            }
        }
        longest
    }

    /// A successful sign-in clears the account's record (not the address's: one good
    /// password must not reset a stuffing run from that address).
    pub fn succeed(&self, account_key: &str) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.remove(account_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_growing_and_per_key() {
        let t = LoginThrottle::new(ThrottleConfig {
            account_failures: 3,
            address_failures: 100,
            base_lockout: Duration::from_secs(10),
            ..ThrottleConfig::default()
        });
        let keys = |a: &str| vec![(format!("account:{a}"), true), ("address:x".into(), false)];
        assert_eq!(t.fail(&keys("a")), None);
        assert_eq!(t.fail(&keys("a")), None);
        let first = t.fail(&keys("a")).unwrap();
        let second = t.fail(&keys("a")).unwrap();
        assert!(second > first, "{first:?} then {second:?}");
        assert!(t.check(&["account:a".into()]).is_err());
        assert!(t.check(&["account:b".into(), "address:x".into()]).is_ok());
        t.succeed("account:a");
        assert!(t.check(&["account:a".into()]).is_ok());
    }
}
