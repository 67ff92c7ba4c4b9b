//! Test helpers shared by the execution tests.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use prompt_core::{ChatRequest, ChatResponse, Provider, ProviderError, ProviderErrorKind};
use prompt_providers::MockProvider;
use tokio::sync::Semaphore;

/// A provider that holds every call until released, counting calls in flight.
#[derive(Debug)]
pub struct Gate {
    pub release: Semaphore,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub calls: AtomicUsize,
}

impl Gate {
    /// A gate that lets `n` calls through before holding the next ones.
    pub fn with_permits(n: usize) -> Self {
        let g = Gate::default();
        g.release.add_permits(n);
        g
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            release: Semaphore::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GatedProvider(pub Arc<Gate>);

#[async_trait]
impl Provider for GatedProvider {
    fn name(&self) -> &str {
        "mock"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let g = &self.0;
        g.calls.fetch_add(1, Ordering::SeqCst);
        let now = g.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        g.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let permit = g.release.acquire().await;
        g.in_flight.fetch_sub(1, Ordering::SeqCst);
        permit
            .map_err(|_| ProviderError::new(ProviderErrorKind::Connection, "mock", "gate closed"))?
            .forget();
        MockProvider::new().complete(request).await
    }
}

/// Wait (with a deadline) until `f` holds.
pub async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}
