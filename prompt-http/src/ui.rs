//! The web console: the production build of `prompt-ui/` (its `dist/` folder, committed
//! so that a fresh clone serves it without Node), embedded in the binary and served at
//! `/`.
//!
//! - Files under `/assets/` carry a content hash in their names: they are cached for a
//!   year (`immutable`). Everything else (`index.html`, the icon) is revalidated
//!   (`no-cache` plus an `ETag`).
//! - A path the console's client-side router owns (no file extension, not an API
//!   namespace) answers `index.html`; the API namespaces keep their JSON 404s
//!   ([`is_console_path`]).
//! - Responses are gzip-compressed when the client accepts it, and carry a strict
//!   Content-Security-Policy: the console loads nothing from another origin.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::compression::CompressionLayer;

#[derive(rust_embed::Embed)]
#[folder = "../prompt-ui/dist"]
// Vite's build manifest is for the bundle-size check, not for browsers.
#[exclude = ".vite/*"]
struct Assets;

/// The policy every console response carries: scripts, styles, fonts and API calls from
/// this origin only (inline styles are allowed: the charts position with them).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; \
     object-src 'none'";

/// Path prefixes that belong to the API and the service, never to the console: an
/// unknown path under them stays a JSON 404.
const API_PREFIXES: &[&str] = &[
    "/api/",
    "/v1/",
    // The AI prompt manager's compatibility routes (`/ai/prompts/`).
    "/ai/",
    "/docs",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// Whether the console answers `path` (a `GET`/`HEAD` that no API route matched).
pub fn is_console_path(path: &str) -> bool {
    path != "/api"
        && path != "/v1"
        && path != "/ai"
        && !API_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Whether the console's build is embedded (false only for a build of the binary from a
/// tree whose `prompt-ui/dist` is empty).
pub fn is_embedded() -> bool {
    Assets::get("index.html").is_some()
}

/// The console as a router (compressed), to be used as the application's fallback for
/// console paths.
pub fn router() -> Router {
    Router::new().fallback(serve).layer(CompressionLayer::new())
}

async fn serve(req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let path = req.uri().path().trim_start_matches('/');
    let (file, name) = match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(f) => (f, path),
        None => {
            let last = path.rsplit('/').next().unwrap_or_default();
            if last.contains('.') {
                // A missing file (a stale hashed asset, a typo): never answer HTML for it.
                return (StatusCode::NOT_FOUND, "not found").into_response();
            }
            match Assets::get("index.html") {
                Some(f) => (f, "index.html"),
                None => {
                    return (
                        StatusCode::NOT_FOUND,
                        "the console is not built into this binary (prompt-ui/dist is empty)",
                    )
                        .into_response();
                }
            }
        }
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let body = if req.method() == Method::HEAD {
        Body::empty()
    } else {
        Body::from(file.data.into_owned())
    };
    (StatusCode::OK, headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_namespaces_are_not_the_consoles() {
        for p in [
            "/api/v1/nope",
            "/api",
            "/ai",
            "/ai/prompts/",
            "/ai/nope",
            "/v1/models/x",
            "/openapi.json",
            "/docs/",
            "/healthz",
        ] {
            assert!(!is_console_path(p), "{p}");
        }
        for p in [
            "/",
            "/prompts/a/b",
            "/settings/keys",
            "/apiary",
            "/aim",
            "/assets/x.js",
        ] {
            assert!(is_console_path(p), "{p}");
        }
    }
}
