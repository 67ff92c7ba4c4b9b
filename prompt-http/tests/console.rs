//! The web console as the binary serves it (the committed `prompt-ui/dist`, embedded),
//! driving the real router: the SPA fallback, cache headers, compression and security
//! headers; API 404s staying JSON; the draft render the editor's preview calls; and the
//! console's copy of the OpenAPI document matching the server's.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{TestApp, assert_error};
use http_body_util::BodyExt;
use prompt_core::KeyRole;
use serde_json::{Value, json};
use tower::ServiceExt;

fn get(path: &str) -> Request<Body> {
    Request::builder().uri(path).body(Body::empty()).unwrap()
}

/// The hashed script `index.html` loads (`/assets/index-HASH.js`).
fn entry_script(index: &str) -> String {
    let start = index.find("/assets/").expect("index.html loads an asset");
    let rest = &index[start..];
    let end = rest.find('"').unwrap();
    rest[..end].to_owned()
}

#[tokio::test]
async fn the_console_is_served_at_the_root_with_its_security_headers() {
    let app = TestApp::memory().await;
    assert!(
        prompt_http::ui::is_embedded(),
        "prompt-ui/dist is committed"
    );
    let r = app.send(get("/")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text.contains("<div id=\"root\">"), "{}", r.text);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-cache");
    let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    // Nothing is loaded from another origin: no CDN, no remote font.
    assert!(!r.text.contains("http://") && !r.text.contains("https://"));
}

#[tokio::test]
async fn client_side_routes_answer_index_html_and_api_404s_stay_json() {
    let app = TestApp::memory().await;
    let index = app.send(get("/")).await.text;
    for path in [
        "/prompts",
        "/prompt/support/triage",
        "/settings/keys",
        "/runs/0191",
    ] {
        let r = app.send(get(path)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.text, index, "{path}");
    }
    for path in ["/api/v1/nope", "/api/nope", "/api", "/v1/nothing"] {
        let r = app.send(get(path)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.body.is_object(), "{path}: JSON body, got {}", r.text);
    }
    // A missing file is a plain 404, never index.html served as a script.
    let r = app.send(get("/assets/index-deadbeef.js")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.text.contains("<html"));
    // Only GET and HEAD reach the console; other methods keep the API's 404.
    let r = app
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/prompts")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
}

#[tokio::test]
async fn hashed_assets_are_immutable_compressed_and_revalidated_by_etag() {
    let app = TestApp::memory().await;
    let index = app.send(get("/")).await.text;
    let script = entry_script(&index);
    let r = app.send(get(&script)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let plain_len = r.text.len();
    let etag = r.headers[header::ETAG].to_str().unwrap().to_owned();

    let gz = app
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri(&script)
                .header(header::ACCEPT_ENCODING, "gzip")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
    let gz_len = gz.into_body().collect().await.unwrap().to_bytes().len();
    assert!(
        gz_len < plain_len / 2,
        "gzip shrinks the script: {gz_len} of {plain_len} bytes"
    );

    let again = app
        .send(
            Request::builder()
                .uri(&script)
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.text.is_empty());

    let head = app
        .send(
            Request::builder()
                .method(Method::HEAD)
                .uri("/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.text.is_empty());
}

#[tokio::test]
async fn a_draft_renders_strictly_and_says_what_is_missing() {
    let app = TestApp::memory().await;
    let viewer = app.key("default", KeyRole::Viewer).await;
    let r = app
        .post(
            "/api/v1/tools/render",
            &viewer,
            json!({"template": "Hi {{ name }}, about {{ topic }}", "variables": {"name": "Ada", "topic": "tea"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["text"], "Hi Ada, about tea");
    assert_eq!(r.body["variables"], json!(["name", "topic"]));

    let chat = app
        .post(
            "/api/v1/tools/render",
            &viewer,
            json!({"template": [{"role": "system", "content": "Be {{ tone }}"}, {"role": "user", "content": "{{ q }}"}],
                   "variables": {"tone": "brief", "q": "why?"}}),
        )
        .await;
    assert_eq!(chat.status, StatusCode::OK, "{}", chat.text);
    assert_eq!(chat.body["messages"][0]["content"], "Be brief");
    assert!(chat.body.get("text").is_none());

    let missing = app
        .post(
            "/api/v1/tools/render",
            &viewer,
            json!({"template": "Hi {{ name }}", "variables": {}}),
        )
        .await;
    assert_eq!(
        missing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        missing.text
    );
    assert!(missing.text.contains("name"), "{}", missing.text);

    let unknown = app
        .post(
            "/api/v1/tools/render",
            &viewer,
            json!({"template": "x", "variabels": {}}),
        )
        .await;
    assert!(unknown.status.is_client_error(), "{}", unknown.text);
    assert!(unknown.text.contains("variabels"), "{}", unknown.text);

    let anonymous = app
        .call(
            Method::POST,
            "/api/v1/tools/render",
            None,
            Some(json!({"template": "x"})),
        )
        .await;
    assert_error(&anonymous, 401, "unauthorized");
}

#[tokio::test]
async fn the_caller_view_names_the_protected_labels() {
    let app = TestApp::memory().await;
    let r = app.get("/api/v1/project", &app.admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["protected_labels"], json!(["production"]));
}

/// The console's typed client is generated from `prompt-ui/src/api/openapi.json`; this
/// fails when that copy differs from the document the server serves. Fix: run
/// `npm run gen:api -- --refresh` in `prompt-ui/` and commit both files.
#[test]
fn the_consoles_openapi_document_is_the_servers() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../prompt-ui/src/api/openapi.json"
    );
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let current: Value = serde_json::from_str(&prompt_http::openapi_json()).unwrap();
    assert!(
        committed == current,
        "prompt-ui/src/api/openapi.json is stale: run `npm run gen:api -- --refresh` in prompt-ui/ and commit it with src/api/schema.d.ts"
    );
}

/// Code generators (openapi-typescript among them) refuse a document in which two
/// operations share an `operationId`.
#[test]
fn every_operation_id_is_unique() {
    let doc: Value = serde_json::from_str(&prompt_http::openapi_json()).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str)
                && let Some(first) = seen.insert(id.to_owned(), format!("{method} {path}"))
            {
                panic!("operationId {id} of {method} {path} is also {first}'s");
            }
        }
    }
}

/// Every `$ref` of the document names a schema it defines (a dangling one breaks every
/// client generator).
#[test]
fn every_schema_reference_resolves() {
    fn walk(v: &Value, schemas: &serde_json::Map<String, Value>, at: &str) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    let name = r.trim_start_matches("#/components/schemas/");
                    assert!(schemas.contains_key(name), "{at}: dangling $ref {r}");
                }
                for (k, x) in m {
                    walk(x, schemas, &format!("{at}/{k}"));
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, schemas, at)),
            _ => {}
        }
    }
    let doc: Value = serde_json::from_str(&prompt_http::openapi_json()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap().clone();
    walk(&doc, &schemas, "");
}

/// A parameter `in: path` is one the path names (`{org}`), and every `{…}` of a path is
/// declared: a query parameter documented as a path one turns into a required path
/// argument in generated clients.
#[test]
fn path_parameters_are_the_paths_own() {
    let doc: Value = serde_json::from_str(&prompt_http::openapi_json()).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(params) = op.get("parameters").and_then(Value::as_array) else {
                continue;
            };
            for p in params {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: `{name}` is documented as a path parameter"
                    );
                }
            }
        }
    }
}

/// The service routes answer without credentials, and the document says so (a generated
/// client or a fuzzer must not send an API key to `/healthz`); `/metrics` also declares
/// the 401 of a server with a metrics token.
#[test]
fn service_routes_declare_anonymous_access() {
    let doc: Value = serde_json::from_str(&prompt_http::openapi_json()).unwrap();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let op = &doc["paths"][path]["get"];
        let security = op["security"].as_array().unwrap_or_else(|| {
            panic!("{path} has no operation-level security, so the global API-key one applies")
        });
        assert!(
            security
                .iter()
                .any(|s| s.as_object().is_some_and(|o| o.is_empty())),
            "{path}: {security:?} does not allow anonymous access"
        );
    }
    assert!(doc["paths"]["/metrics"]["get"]["responses"]["401"].is_object());
}
