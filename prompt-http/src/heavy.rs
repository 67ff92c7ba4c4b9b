//! Requests with large bodies are served off the async workers.
//!
//! Parsing a large JSON body and what follows it (a template's variables and lints,
//! an import's documents, a batch's runs) is CPU work proportional to the body: up to
//! tens of milliseconds for the largest bodies the API takes. On the async workers
//! (one per core) a few such requests at once would hold every worker, and `/healthz`,
//! a cached `resolve` or any other short request would wait for them. So a request
//! whose body is larger than [`HEAVY_BODY_BYTES`] (or of unknown length) is handled
//! on a thread of the blocking pool, which drives its future to the end there; the
//! workers stay free, and the operating system shares the cores between the heavy
//! threads and the workers.
//!
//! The layer sits outside the request timeout, so a heavy request that times out is
//! still cancelled (its future dropped) on its thread.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Bodies larger than this are handled off the async workers (64 KiB: parsing that
/// much JSON costs about a tenth of a millisecond; a body at the limit, tens).
pub const HEAVY_BODY_BYTES: u64 = 64 * 1024;

/// Whether `req` announces a body larger than [`HEAVY_BODY_BYTES`], or a body of
/// unknown length (chunked).
pub fn is_heavy(req: &Request) -> bool {
    let headers = req.headers();
    match headers.get(header::CONTENT_LENGTH) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .is_none_or(|n| n > HEAVY_BODY_BYTES),
        None => headers.contains_key(header::TRANSFER_ENCODING),
    }
}

/// The middleware: a heavy request is served on the blocking pool, any other where it
/// is.
pub async fn off_workers(req: Request, next: Next) -> Response {
    if !is_heavy(&req) {
        return next.run(req).await;
    }
    let handle = tokio::runtime::Handle::current();
    match tokio::task::spawn_blocking(move || handle.block_on(next.run(req))).await {
        Ok(response) => response,
        // The handler panicked: the panic layer inside already answered 500 for a
        // panic in a handler; this is one in the layers around it. Let it go on up.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down.
        Err(_) => ApiError::Core(prompt_core::Error::unavailable(
            "the server is shutting down",
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut b = axum::http::Request::builder().method("POST").uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty())
            .unwrap_or_else(|_| Request::new(Body::empty()))
    }

    #[test]
    fn heavy_means_a_large_or_unknown_body() {
        assert!(!is_heavy(&request(&[])));
        assert!(!is_heavy(&request(&[("content-length", "65536")])));
        assert!(is_heavy(&request(&[("content-length", "65537")])));
        assert!(is_heavy(&request(&[("content-length", "nonsense")])));
        assert!(is_heavy(&request(&[("transfer-encoding", "chunked")])));
    }
}
