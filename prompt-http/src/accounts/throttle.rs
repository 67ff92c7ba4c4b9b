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
    /// Attempts being checked right now: they count against the allowance, so that
    /// guesses sent all at once cannot all pass before the first failure is counted.
    in_flight: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// The throttle. Keys are `account:<email>` and `address:<ip>`, each with whether it
/// is an account (its allowance).
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    records: Mutex<HashMap<String, Record>>,
}

/// Most keys held before old ones are swept.
const MAX_KEYS: usize = 100_000;

/// One attempt being checked, holding its place against the allowance of each key.
/// End it with [`Attempt::failed`] or [`Attempt::succeeded`]; dropped without either
/// (an error before the password was judged), it only gives its place back.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: Vec<(String, bool)>,
    done: bool,
}

impl LoginThrottle {
    /// A throttle with these limits.
    pub fn new(config: ThrottleConfig) -> Self {
        LoginThrottle {
            config,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn allowance(&self, is_account: bool) -> u32 {
        if is_account {
            self.config.account_failures
        } else {
            self.config.address_failures
        }
    }

    /// Begin an attempt on `keys`: `Err(wait)` if any key is locked out, or already
    /// has as many failures plus attempts in flight as its allowance.
    pub fn begin(&self, keys: Vec<(String, bool)>) -> Result<Attempt<'_>, Duration> {
        let now = Instant::now();
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.len() > MAX_KEYS {
            let forget = self.config.forget_after;
            records.retain(|_, r| r.in_flight > 0 || now.duration_since(r.last) < forget);
        }
        let mut wait: Option<Duration> = None;
        for (key, is_account) in &keys {
            let Some(r) = records.get_mut(key) else {
                continue;
            };
            if r.in_flight == 0 && now.duration_since(r.last) >= self.config.forget_after {
                r.failures = 0;
                r.locked_until = None;
            }
            let w = match r.locked_until {
                Some(until) if until > now => Some(until - now),
                _ if r.failures + r.in_flight >= self.allowance(*is_account) => {
                    Some(self.config.base_lockout)
                }
                _ => None,
            };
            if let Some(w) = w {
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        for (key, _) in &keys {
            let r = records.entry(key.clone()).or_insert(Record {
                failures: 0,
                in_flight: 0,
                last: now,
                locked_until: None,
            });
            r.in_flight += 1;
            r.last = now;
        }
        Ok(Attempt {
            throttle: self,
            keys,
            done: false,
        })
    }

    fn release(&self, keys: &[(String, bool)]) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        for (key, _) in keys {
            if let Some(r) = records.get_mut(key) {
                r.in_flight = r.in_flight.saturating_sub(1);
            }
        }
    }
}

impl Attempt<'_> {
    /// The password was wrong: count a failure against each key, locking out those
    /// over their allowance; returns the longest lock-out now in force.
    pub fn failed(mut self) -> Option<Duration> {
        self.done = true;
        let t = self.throttle;
        let now = Instant::now();
        let mut records = t.records.lock().unwrap_or_else(|p| p.into_inner());
        let mut longest = None;
        for (key, is_account) in &self.keys {
            let Some(r) = records.get_mut(key) else {
                continue;
            };
            r.in_flight = r.in_flight.saturating_sub(1);
            r.failures = r.failures.saturating_add(1);
            r.last = now;
            let allowance = t.allowance(*is_account);
            if r.failures >= allowance {
                let doublings = (r.failures - allowance).min(20);
                let lock = t
                    .config
                    .base_lockout
                    .saturating_mul(1u32 << doublings)
                    .min(t.config.max_lockout);
                r.locked_until = Some(now + lock);
                longest = Some(longest.map_or(lock, |l: Duration| l.max(lock)));
            }
        }
        longest
    }

    /// The password was right: the account's record is cleared (not the address's:
    /// one good password must not reset a stuffing run from that address).
    pub fn succeeded(mut self) {
        self.done = true;
        let t = self.throttle;
        let mut records = t.records.lock().unwrap_or_else(|p| p.into_inner());
        for (key, is_account) in &self.keys {
            if *is_account {
                records.remove(key);
            } else if let Some(r) = records.get_mut(key) {
                r.in_flight = r.in_flight.saturating_sub(1);
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.throttle.release(&self.keys);
        }
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
        let keys = |a: &str| {
            vec![
                (format!("account:{a}"), true),
                ("address:x".to_owned(), false),
            ]
        };
        assert_eq!(t.begin(keys("a")).unwrap().failed(), None);
        assert_eq!(t.begin(keys("a")).unwrap().failed(), None);
        let first = t.begin(keys("a")).unwrap().failed().unwrap();
        assert!(t.begin(keys("a")).is_err(), "locked out");
        assert!(
            t.begin(keys("b")).is_ok(),
            "another account from the same address"
        );
        let _ = first;
        // A success clears the account.
        let t = LoginThrottle::new(ThrottleConfig::default());
        t.begin(keys("c")).unwrap().failed();
        t.begin(keys("c")).unwrap().succeeded();
        for _ in 0..4 {
            t.begin(keys("c")).unwrap().failed();
        }
        assert!(
            t.begin(keys("c")).is_ok(),
            "4 failures after the success: under 5"
        );
    }

    #[test]
    fn attempts_in_flight_count_against_the_allowance() {
        let t = LoginThrottle::new(ThrottleConfig::default());
        let keys = || vec![("account:v".to_owned(), true)];
        let held: Vec<_> = (0..5).map(|_| t.begin(keys()).unwrap()).collect();
        assert!(
            t.begin(keys()).is_err(),
            "five guesses in flight: the sixth waits"
        );
        drop(held);
        assert!(t.begin(keys()).is_ok(), "given back when dropped unjudged");
    }
}
