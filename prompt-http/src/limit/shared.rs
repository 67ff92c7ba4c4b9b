//! Rate limits shared by every instance through Redis (`--redis-url`): the same GCRA
//! as the in-process limiter, run atomically by a Lua script on Redis' clock. When
//! Redis cannot be reached, each instance falls back to its own in-process limits
//! (logged once per outage, counted on `/metrics`) and tries Redis again a second later.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one Redis round trip may take before the decision falls back to the
/// in-process limiter.
const CALL_TIMEOUT: Duration = Duration::from_millis(100);

/// How long the limiter stays on its in-process fallback after Redis failed.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// GCRA on Redis: `KEYS[1]` holds the theoretical arrival time in microseconds of
/// Redis' clock; `ARGV[1]` is the emission interval (µs), `ARGV[2]` the burst.
/// Answers 0 when the request is allowed, else the microseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return math.max(1, math.ceil(allow_at - now))
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
";

/// A quota as the shared limiter applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gcra {
    /// Time between two requests at the sustained rate.
    pub interval: Duration,
    /// Requests allowed at once.
    pub burst: u32,
}

/// The connection to Redis shared by every limiter of the instance.
pub struct SharedLimits {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    connecting: tokio::sync::Mutex<()>,
    down_until: Mutex<Option<Instant>>,
    prefix: String,
    script: redis::Script,
}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimits")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl SharedLimits {
    /// Limits shared through the Redis at `url` (`redis://[:PASSWORD@]HOST[:PORT][/DB]`
    /// or `rediss://…` for TLS), under keys starting with `prefix`. Nothing is
    /// connected yet: the first request connects, so a Redis that is down at start-up
    /// only means in-process limits until it is up. The error names the setting.
    pub fn new(url: &str, prefix: &str) -> Result<SharedLimits, String> {
        let client = redis::Client::open(url).map_err(|e| {
            // The driver's message may quote the URL, password included.
            let _ = e;
            "invalid PROMPT_REGISTRY_REDIS_URL / --redis-url: expected redis://[:PASSWORD@]HOST[:PORT][/DB] or rediss://…".to_owned()
        })?;
        if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(
                "invalid PROMPT_REGISTRY_REDIS_PREFIX / --redis-prefix: must be non-empty, without spaces"
                    .into(),
            );
        }
        Ok(SharedLimits {
            client,
            conn: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            down_until: Mutex::new(None),
            prefix: prefix.to_owned(),
            script: redis::Script::new(GCRA),
        })
    }

    /// The decision of Redis for `key` of `scope`: `Some(None)` allowed,
    /// `Some(Some(wait))` refused, `None` when Redis cannot answer now (the caller
    /// falls back to its in-process limiter).
    pub(super) async fn check(
        &self,
        scope: &str,
        key: &str,
        quota: Gcra,
    ) -> Option<Option<Duration>> {
        let mut conn = self.connection().await?;
        let redis_key = format!("{}:limit:{scope}:{key}", self.prefix);
        let interval = u64::try_from(quota.interval.as_micros()).unwrap_or(u64::MAX);
        let mut invocation = self.script.key(redis_key);
        invocation.arg(interval).arg(quota.burst);
        let call = invocation.invoke_async::<i64>(&mut conn);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(0)) => {
                self.up();
                Some(None)
            }
            Ok(Ok(wait)) => {
                self.up();
                Some(Some(Duration::from_micros(wait.unsigned_abs())))
            }
            Ok(Err(e)) => {
                self.down(&e.to_string());
                None
            }
            Err(_) => {
                self.down("no answer within 100 ms");
                None
            }
        }
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        if let Some(c) = lock(&self.conn).clone() {
            return Some(c);
        }
        if lock(&self.down_until).is_some_and(|t| Instant::now() < t) {
            return None;
        }
        // One request connects; the others decide in-process meanwhile.
        let _guard = self.connecting.try_lock().ok()?;
        if let Some(c) = lock(&self.conn).clone() {
            return Some(c);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT * 3))
            .set_response_timeout(Some(CALL_TIMEOUT));
        match tokio::time::timeout(
            CALL_TIMEOUT * 4,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        {
            Ok(Ok(c)) => {
                tracing::info!("connected to Redis: rate limits are shared across instances");
                metrics::gauge!("prompt_registry_rate_limit_redis_up").set(1.0);
                *lock(&self.conn) = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.down(&e.to_string());
                None
            }
            Err(_) => {
                self.down("no connection within 400 ms");
                None
            }
        }
    }

    fn up(&self) {
        let was_down = lock(&self.down_until).take().is_some();
        if was_down {
            tracing::info!("Redis answers again: rate limits are shared across instances");
            metrics::gauge!("prompt_registry_rate_limit_redis_up").set(1.0);
        }
    }

    fn down(&self, why: &str) {
        let mut down = lock(&self.down_until);
        if down.is_none() {
            tracing::warn!(
                error = why,
                "Redis is unreachable: rate limits fall back to this instance's own until it answers"
            );
            metrics::gauge!("prompt_registry_rate_limit_redis_up").set(0.0);
        }
        *down = Some(Instant::now() + RETRY_AFTER_FAILURE);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
