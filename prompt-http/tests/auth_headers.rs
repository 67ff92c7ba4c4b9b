//! Credentials that cannot be read one way: two `Authorization` headers on a request,
//! driving the real router.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{TestApp, assert_error};
use prompt_core::KeyRole;

/// Two `Authorization` headers are refused with 400 in each route family's error shape,
/// whatever their order: the caller is never decided by whichever one comes first.
#[tokio::test]
async fn two_authorization_headers_are_a_bad_request() {
    let app = TestApp::memory().await;
    let viewer = app.key("default", KeyRole::Viewer).await;
    let two = |method: Method, path: &str, first: &str, second: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", first)
            .header("authorization", second)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap()
    };
    let admin = format!("Bearer {}", app.admin);
    let viewer = format!("Bearer {viewer}");
    for (a, b) in [(&admin, &viewer), (&viewer, &admin)] {
        let r = app.send(two(Method::GET, "/api/v1/prompts", a, b)).await;
        assert_error(&r, 400, "bad_request");
        assert!(r.text.contains("one Authorization header"), "{}", r.text);
        let r = app.send(two(Method::GET, "/api/v1/project", a, b)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    // The gateway answers in OpenAI's shape, the Langfuse routes in Langfuse's.
    let r = app
        .send(two(Method::POST, "/v1/chat/completions", &admin, &viewer))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.body["error"]["message"].as_str().is_some(), "{}", r.text);
    let r = app
        .send(two(
            Method::GET,
            "/api/public/v2/prompts",
            "Basic YTpi",
            "Basic YzpkZA==",
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.body["message"].as_str().is_some(), "{}", r.text);
    // One header still works.
    let r = app.get("/api/v1/prompts", &app.admin).await;
    assert_eq!(r.status, StatusCode::OK);
}
