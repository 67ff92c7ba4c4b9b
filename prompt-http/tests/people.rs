//! People over HTTP: sign-up, email verification (through a local SMTP sink), sign-in,
//! refresh rotation and re-use detection, sign-out, throttling, organizations,
//! invitations, the role matrix of user tokens over the project routes, cross-org
//! 404s, account deletion and export, CORS and CSRF — on memory, SQLite files and
//! Postgres.
//!
//! One file over 600 lines: the scenarios share the setup and helpers and run as one
//! suite per backend through `people_suite!`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::smtp::{SmtpSink, token_in};
use common::{Options, Resp, TestApp, assert_error};
use prompt_core::{PeopleStore, PromptStore, RunLog};
use prompt_http::AccountsSetup;
use prompt_http::accounts::AccountsConfig;
use prompt_http::accounts::mail::Mailer;
use serde_json::{Value, json};

const PW: &str = "violet tugboat ferments quietly";

struct People {
    app: TestApp,
    people: Arc<dyn PeopleStore>,
    sink: SmtpSink,
}

type Parts = (
    Arc<dyn PromptStore>,
    Arc<dyn RunLog>,
    Arc<dyn PeopleStore>,
    Option<Box<dyn std::any::Any + Send + Sync>>,
);

async fn people_app(parts: Parts, tweak: impl FnOnce(&mut AccountsConfig)) -> People {
    let (store, runs, people, guard) = parts;
    let sink = SmtpSink::start().await;
    let mut config = AccountsConfig::default();
    tweak(&mut config);
    let mut app = TestApp::with_accounts(
        store,
        runs,
        Options::default(),
        Some(AccountsSetup {
            people: people.clone(),
            mailer: Mailer::smtp(&sink.url, "Registry <registry@example.com>").unwrap(),
            config,
        }),
    )
    .await;
    app._guard = guard;
    People { app, people, sink }
}

async fn register(p: &People, email: &str) -> Resp {
    p.app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": email, "password": PW})),
        )
        .await
}

async fn login(p: &People, email: &str, password: &str) -> Resp {
    p.app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
}

/// Register, verify through the mailed link, sign in: the access token.
async fn signed_up(p: &People, email: &str) -> String {
    assert_eq!(register(p, email).await.status, StatusCode::ACCEPTED);
    let mail = p.sink.wait_for(email, "Verify your email").await;
    let v = p
        .app
        .call(
            Method::POST,
            "/api/auth/verify-email",
            None,
            Some(json!({"token": token_in(&mail)})),
        )
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    let r = login(p, email, PW).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["access_token"].as_str().unwrap().to_owned()
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A")
}

fn without_request_id(r: &Resp) -> Value {
    let mut b = r.body.clone();
    if let Some(e) = b.get_mut("error").and_then(Value::as_object_mut) {
        e.remove("request_id");
        if let Some(d) = e.get_mut("details").and_then(Value::as_object_mut) {
            d.remove("request_id");
        }
    }
    b
}

async fn signup_verify_login_refresh_reuse_logout(p: &People) {
    // The first user owns `default`, which holds the data that was there before.
    let token = signed_up(p, "Owner@Example.com").await;
    let me = p
        .app
        .as_user(Method::GET, "/api/users/me", &token, None, None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["email_verified"], true);
    assert!(me.body.get("password_hash").is_none(), "{}", me.text);
    assert_eq!(me.body["organizations"][0]["name"], "default");
    assert_eq!(me.body["organizations"][0]["role"], "owner");
    // Emails are case-insensitive: signing up again answers the same, and mails a notice.
    let again = register(p, "owner@example.COM").await;
    let fresh = register(p, "fresh@example.com").await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body, fresh.body, "no enumeration through sign-up");
    p.sink
        .wait_for("owner@example.COM", "already has one")
        .await;

    // Refresh rotates; the old token presented again signs the session out.
    let r = login(p, "owner@example.com", PW).await;
    let refresh1 = r.body["refresh_token"].as_str().unwrap().to_owned();
    let access1 = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["cache-control"], "no-store");
    let r2 = p
        .app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh1})),
        )
        .await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.text);
    let refresh2 = r2.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh1, refresh2);
    let reuse = p
        .app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh1})),
        )
        .await;
    assert_error(&reuse, 401, "unauthorized");
    // The whole family is revoked: the successor is dead, and so is the access token.
    let dead = p
        .app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh2})),
        )
        .await;
    assert_error(&dead, 401, "unauthorized");
    let me = p
        .app
        .as_user(Method::GET, "/api/users/me", &access1, None, None)
        .await;
    assert_error(&me, 401, "unauthorized");

    // Sessions list and logout-all.
    let a = login(p, "owner@example.com", PW).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = login(p, "owner@example.com", PW).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = p
        .app
        .as_user(Method::GET, "/api/auth/sessions", &a, None, None)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let items = list.body["items"].as_array().unwrap();
    assert!(items.len() >= 3, "{}", list.text);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(!list.text.contains("token_hash"));
    let out = p
        .app
        .as_user(Method::POST, "/api/auth/logout-all", &a, None, None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    for t in [&a, &b, &token] {
        let r = p
            .app
            .as_user(Method::GET, "/api/users/me", t, None, None)
            .await;
        assert_error(&r, 401, "unauthorized");
    }

    // The audit log saw the sign-ins and the re-use, with no secret in it.
    let t = login(p, "owner@example.com", PW).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let audit = p
        .app
        .as_user(
            Method::GET,
            "/api/v1/orgs/default/audit?limit=500",
            &t,
            None,
            None,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let _ = login(p, "owner@example.com", "a wrong password here").await;
    let audit = p
        .app
        .as_user(
            Method::GET,
            "/api/v1/orgs/default/audit?limit=500",
            &t,
            None,
            None,
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for want in [
        "auth.login",
        "auth.login_failed",
        "auth.refresh_reused",
        "auth.logout_all",
    ] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    assert!(!audit.text.contains(&refresh1) && !audit.text.contains(PW));
    assert!(!audit.text.contains("a wrong password here"));
}

async fn wrong_password_and_unknown_email_look_the_same_and_throttle(p: &People) {
    signed_up(p, "victim@example.com").await;
    let unknown = login(p, "nobody@example.com", "whatever password").await;
    let wrong = login(p, "victim@example.com", "whatever password").await;
    assert_error(&unknown, 401, "unauthorized");
    assert_eq!(without_request_id(&unknown), without_request_id(&wrong));
    // Five failures lock the account out, growing; others still sign in.
    let mut last = wrong;
    for _ in 0..6 {
        last = login(p, "victim@example.com", "whatever password").await;
    }
    assert_error(&last, 429, "rate_limited");
    let retry: u64 = last.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Even the right password waits out the lock-out.
    assert_error(
        &login(p, "victim@example.com", PW).await,
        429,
        "rate_limited",
    );
    signed_up(p, "bystander@example.com").await;
    // Password reset answers the same for known and unknown emails.
    let known = p
        .app
        .call(
            Method::POST,
            "/api/auth/password-reset",
            None,
            Some(json!({"email": "victim@example.com"})),
        )
        .await;
    let unknown = p
        .app
        .call(
            Method::POST,
            "/api/auth/password-reset",
            None,
            Some(json!({"email": "ghost@example.com"})),
        )
        .await;
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.text, unknown.text);
    let mail = p.sink.wait_for("victim@example.com", "Reset your").await;
    let token = token_in(&mail);
    let weak = p
        .app
        .call(
            Method::POST,
            "/api/auth/password-reset/confirm",
            None,
            Some(json!({"token": token, "password": "password1"})),
        )
        .await;
    assert_error(&weak, 422, "validation_failed");
    assert_eq!(weak.body["error"]["details"]["field"], "password");
    // The token was used by the weak attempt: a new link is needed.
    let reused = p
        .app
        .call(
            Method::POST,
            "/api/auth/password-reset/confirm",
            None,
            Some(json!({"token": token, "password": "another quite long passphrase"})),
        )
        .await;
    assert_error(&reused, 404, "not_found");
    assert_eq!(p.sink.count_to("ghost@example.com"), 0);
}

async fn bad_input_names_the_field(p: &People) {
    for (body, field) in [
        (json!({"email": "not-an-email", "password": PW}), "email"),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "password123456"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": PW, "nme": "x"}),
            "body",
        ),
    ] {
        let r = p
            .app
            .call(Method::POST, "/api/auth/register", None, Some(body))
            .await;
        assert_error(&r, 422, "validation_failed");
        let named = r.body["error"]["details"]["field"].as_str().unwrap_or("");
        assert!(
            named.contains(field) || r.text.contains("nme"),
            "{}",
            r.text
        );
    }
    let r = p
        .app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "x"})),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
}

async fn orgs_invitations_and_the_role_matrix(p: &People) {
    let owner = signed_up(p, "own@example.com").await;
    let key = p.app.key("default", prompt_core::KeyRole::Admin).await;
    let _ = key;
    // An organization with a project.
    let org = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/orgs",
            &owner,
            None,
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(org.status, StatusCode::CREATED, "{}", org.text);
    let proj = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/orgs/acme/projects",
            &owner,
            None,
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(proj.status, StatusCode::CREATED, "{}", proj.text);
    // The same project name in another organization is fine.
    let other = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/orgs/default/projects",
            &owner,
            None,
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    // The owner works in acme/web with the token.
    let created = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/prompts/greet/versions",
            &owner,
            Some("acme/web"),
            Some(json!({"template": "Hello {{name}}", "labels": ["production"]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["created_by"], "user:own@example.com");
    // No project header: 400 naming it.
    let r = p
        .app
        .as_user(Method::GET, "/api/v1/prompts", &owner, None, None)
        .await;
    assert_error(&r, 400, "bad_request");
    assert!(r.text.contains("X-Project"), "{}", r.text);

    // Invite a viewer; the invitation is single use and bound to its email.
    let inv = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/orgs/acme/invitations",
            &owner,
            None,
            Some(json!({"email": "Viewer@example.com", "role": "viewer"})),
        )
        .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.text);
    assert!(
        inv.body.get("token").is_none(),
        "the token goes to the mailbox only: {}",
        inv.text
    );
    assert!(!inv.text.contains("token_hash"));
    let mailed = p.sink.wait_for("Viewer@example.com", "invited you").await;
    let inv_token = token_in(&mailed);
    let wrong = p
        .app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "other@example.com", "password": PW, "invitation": inv_token})),
        )
        .await;
    assert_error(&wrong, 403, "forbidden");
    let joined = p
        .app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "viewer@example.com", "password": PW, "invitation": inv_token})),
        )
        .await;
    assert_eq!(joined.status, StatusCode::ACCEPTED, "{}", joined.text);
    let again = p
        .app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "late@example.com", "password": PW, "invitation": inv_token})),
        )
        .await;
    assert_error(&again, 404, "not_found");
    let viewer = login(p, "viewer@example.com", PW).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Viewer: reads, cannot write.
    let read = p
        .app
        .as_user(
            Method::GET,
            "/api/v1/prompts/greet",
            &viewer,
            Some("acme/web"),
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    let write = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/prompts/greet/versions",
            &viewer,
            Some("acme/web"),
            Some(json!({"template": "x"})),
        )
        .await;
    assert_error(&write, 403, "forbidden");
    // Another organization's project answers 404, as does a made-up one.
    for project in ["default/web", "default", "nope/web"] {
        let r = p
            .app
            .as_user(Method::GET, "/api/v1/prompts", &viewer, Some(project), None)
            .await;
        assert_error(&r, 404, "not_found");
    }
    let r = p
        .app
        .as_user(
            Method::GET,
            "/api/v1/orgs/default/members",
            &viewer,
            None,
            None,
        )
        .await;
    assert_error(&r, 404, "not_found");

    // Member: writes, but cannot move a protected label.
    let members = p
        .app
        .as_user(Method::GET, "/api/v1/orgs/acme/members", &owner, None, None)
        .await;
    let viewer_id = members.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "viewer@example.com")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let up = p
        .app
        .as_user(
            Method::PATCH,
            &format!("/api/v1/orgs/acme/members/{viewer_id}"),
            &owner,
            None,
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.text);
    let v2 = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/prompts/greet/versions",
            &viewer,
            Some("acme/web"),
            Some(json!({"template": "Hi {{name}}"})),
        )
        .await;
    assert_eq!(
        v2.status,
        StatusCode::CREATED,
        "the new role applies at once: {}",
        v2.text
    );
    let protected = p
        .app
        .as_user(
            Method::PUT,
            "/api/v1/prompts/greet/labels/production",
            &viewer,
            Some("acme/web"),
            Some(json!({"version": 2})),
        )
        .await;
    assert_error(&protected, 403, "forbidden");
    let keys = p
        .app
        .as_user(Method::GET, "/api/v1/keys", &viewer, Some("acme/web"), None)
        .await;
    assert_error(&keys, 403, "forbidden");
    // A project override makes the member admin of acme/web only.
    let ov = p
        .app
        .as_user(
            Method::PATCH,
            &format!("/api/v1/orgs/acme/members/{viewer_id}"),
            &owner,
            None,
            Some(json!({"project_roles": {"web": "admin"}})),
        )
        .await;
    assert_eq!(ov.status, StatusCode::OK, "{}", ov.text);
    let moved = p
        .app
        .as_user(
            Method::PUT,
            "/api/v1/prompts/greet/labels/production",
            &viewer,
            Some("acme/web"),
            Some(json!({"version": 2})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    // A release split set by a batch is audited as one set by the label route.
    let split = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/batch",
            &viewer,
            Some("acme/web"),
            Some(
                json!({"ops": [{"op": "set_label", "name": "greet", "label": "beta",
                                 "split": {"1": 90, "2": 10}}]}),
            ),
        )
        .await;
    assert_eq!(split.status, StatusCode::OK, "{}", split.text);
    // A member cannot make themselves owner; the last owner cannot be demoted.
    let me_owner = p
        .app
        .as_user(
            Method::PATCH,
            &format!("/api/v1/orgs/acme/members/{viewer_id}"),
            &viewer,
            None,
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_error(&me_owner, 403, "forbidden");
    let owner_id = members.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "own@example.com")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let demote = p
        .app
        .as_user(
            Method::PATCH,
            &format!("/api/v1/orgs/acme/members/{owner_id}"),
            &owner,
            None,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_error(&demote, 409, "conflict");
    // Removed: the next request is a 404.
    let rm = p
        .app
        .as_user(
            Method::DELETE,
            &format!("/api/v1/orgs/acme/members/{viewer_id}"),
            &owner,
            None,
            None,
        )
        .await;
    assert_eq!(rm.status, StatusCode::NO_CONTENT, "{}", rm.text);
    let gone = p
        .app
        .as_user(
            Method::GET,
            "/api/v1/prompts/greet",
            &viewer,
            Some("acme/web"),
            None,
        )
        .await;
    assert_error(&gone, 404, "not_found");

    // The audit log holds role changes, invitations and the protected-label move.
    let audit = p
        .app
        .as_user(Method::GET, "/api/v1/orgs/acme/audit", &owner, None, None)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for want in [
        "member.role_changed",
        "invitation.created",
        "invitation.accepted",
        "protected_label.moved",
        "label.split",
        "member.removed",
    ] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let split = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "label.split")
        .unwrap();
    assert_eq!(
        (&split["data"]["label"], &split["data"]["split"]),
        (&json!("beta"), &json!({"1": 90, "2": 10})),
        "{split}"
    );
    assert!(!audit.text.contains(&inv_token));

    // An organization with projects cannot be deleted; an empty project can.
    let del = p
        .app
        .as_user(Method::DELETE, "/api/v1/orgs/acme", &owner, None, None)
        .await;
    assert_error(&del, 409, "conflict");
    let busy = p
        .app
        .as_user(
            Method::DELETE,
            "/api/v1/orgs/acme/projects/web",
            &owner,
            None,
            None,
        )
        .await;
    assert_error(&busy, 409, "conflict");
}

/// Every project route, with the least project role it needs.
const PROJECT_ROUTES: &[(&str, &str, &str)] = &[
    ("post", "/api/v1/prompts", "editor"),
    ("get", "/api/v1/prompts", "viewer"),
    ("get", "/api/v1/prompts/{name}", "viewer"),
    ("patch", "/api/v1/prompts/{name}", "editor"),
    ("delete", "/api/v1/prompts/{name}", "editor"),
    ("post", "/api/v1/prompts/{name}/versions", "editor"),
    ("get", "/api/v1/prompts/{name}/versions", "viewer"),
    ("get", "/api/v1/prompts/{name}/versions/{version}", "viewer"),
    ("get", "/api/v1/prompts/{name}/resolve", "viewer"),
    ("put", "/api/v1/prompts/{name}/labels/{label}", "editor"),
    ("delete", "/api/v1/prompts/{name}/labels/{label}", "editor"),
    (
        "get",
        "/api/v1/prompts/{name}/labels/{label}/history",
        "viewer",
    ),
    ("post", "/api/v1/prompts/{name}/render", "viewer"),
    ("post", "/api/v1/runs", "editor"),
    ("post", "/api/v1/runs/batch", "editor"),
    ("get", "/api/v1/runs", "viewer"),
    ("get", "/api/v1/runs/{id}", "viewer"),
    ("get", "/api/v1/prompts/{name}/stats", "viewer"),
    ("get", "/api/v1/stats", "viewer"),
    ("post", "/api/v1/prompts/{name}/execute", "editor"),
    ("post", "/api/v1/keys", "admin"),
    ("get", "/api/v1/keys", "admin"),
    ("delete", "/api/v1/keys/{id}", "admin"),
    ("get", "/api/v1/project", "viewer"),
    ("put", "/api/v1/providers/{name}", "admin"),
    ("get", "/api/v1/providers", "editor"),
    ("get", "/api/v1/providers/{name}", "editor"),
    ("delete", "/api/v1/providers/{name}", "admin"),
    ("post", "/api/v1/tools/analyze", "editor"),
    ("post", "/api/v1/tools/remix", "editor"),
    ("post", "/api/v1/tools/create", "editor"),
    ("post", "/api/v1/prompts/{name}/optimize", "editor"),
];

/// Each organization role on every project route: below the route's role → 403,
/// at or above → anything but 401/403; a user of another organization → 404.
async fn role_matrix_over_every_project_route(p: &People) {
    let owner = signed_up(p, "matrix-owner@example.com").await;
    p.app
        .as_user(
            Method::POST,
            "/api/v1/orgs",
            &owner,
            None,
            Some(json!({"name": "matrix"})),
        )
        .await;
    p.app
        .as_user(
            Method::POST,
            "/api/v1/orgs/matrix/projects",
            &owner,
            None,
            Some(json!({"name": "p"})),
        )
        .await;
    let org = p.people.org_by_name("matrix").await.unwrap();
    let mut tokens = Vec::new();
    for (role, level) in [("viewer", 0), ("member", 1), ("admin", 2)] {
        let email = format!("matrix-{role}@example.com");
        assert_eq!(register(p, &email).await.status, StatusCode::ACCEPTED);
        let u = p.people.user_by_email(&email).await.unwrap();
        p.people
            .set_member(org.id, u.id, prompt_core::OrgRole::parse(role).unwrap())
            .await
            .unwrap();
        let t = login(p, &email, PW).await.body["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        tokens.push((role, level, t));
    }
    let outsider = signed_up(p, "matrix-outsider@example.com").await;
    for (method, path, needs) in PROJECT_ROUTES {
        let need = match *needs {
            "viewer" => 0,
            "editor" => 1,
            _ => 2,
        };
        let uri = path
            .replace("{name}", "x")
            .replace("{version}", "1")
            .replace("{label}", "staging")
            .replace("{id}", "0190f0e0-0000-7000-8000-000000000000");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
        for (role, level, token) in &tokens {
            let r = p
                .app
                .as_user(m.clone(), &uri, token, Some("matrix/p"), body.clone())
                .await;
            if *level < need {
                assert_error(&r, 403, "forbidden");
            } else {
                assert!(
                    r.status != StatusCode::FORBIDDEN && r.status != StatusCode::UNAUTHORIZED,
                    "{role} on {method} {uri}: {} {}",
                    r.status,
                    r.text
                );
            }
        }
        let r = p
            .app
            .as_user(m.clone(), &uri, &outsider, Some("matrix/p"), body.clone())
            .await;
        assert_error(&r, 404, "not_found");
    }
}

async fn deletion_and_export(p: &People) {
    let owner = signed_up(p, "first@example.com").await;
    let second = signed_up(p, "second@example.com").await;
    // The sole owner of `default` cannot delete the account.
    let refused = p
        .app
        .as_user(
            Method::DELETE,
            "/api/users/me",
            &owner,
            None,
            Some(json!({"password": PW})),
        )
        .await;
    assert_error(&refused, 409, "conflict");
    // Second user's own organization and a version it wrote.
    let org = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/orgs",
            &second,
            None,
            Some(json!({"name": "solo"})),
        )
        .await;
    assert_eq!(org.status, StatusCode::CREATED);
    p.app
        .as_user(
            Method::POST,
            "/api/v1/orgs/solo/projects",
            &second,
            None,
            Some(json!({"name": "p"})),
        )
        .await;
    let v = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/prompts/mine/versions",
            &second,
            Some("solo/p"),
            Some(json!({"template": "x"})),
        )
        .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.text);
    let prefs = p
        .app
        .as_user(
            Method::PATCH,
            "/api/users/me/preferences",
            &second,
            None,
            Some(json!({"theme": "dark", "language": "zh-CN", "favourite": [1, 2]})),
        )
        .await;
    assert_eq!(prefs.status, StatusCode::OK, "{}", prefs.text);
    let bad = p
        .app
        .as_user(
            Method::PATCH,
            "/api/users/me/preferences",
            &second,
            None,
            Some(json!({"theme": "purple"})),
        )
        .await;
    assert_error(&bad, 422, "validation_failed");
    assert_eq!(bad.body["error"]["details"]["field"], "preferences.theme");
    // Export: the user's data, nothing of others'.
    let ex = p
        .app
        .as_user(Method::GET, "/api/users/me/export", &second, None, None)
        .await;
    assert_eq!(ex.status, StatusCode::OK, "{}", ex.text);
    assert_eq!(ex.body["user"]["email"], "second@example.com");
    assert_eq!(ex.body["user"]["preferences"]["theme"], "dark");
    assert_eq!(ex.body["organizations"][0]["name"], "solo");
    assert!(!ex.text.contains("first@example.com"), "{}", ex.text);
    assert!(!ex.text.contains("password_hash") && !ex.text.contains("argon2"));
    // Deleting needs the password, and anonymises authorship.
    let nopw = p
        .app
        .as_user(Method::DELETE, "/api/users/me", &second, None, None)
        .await;
    assert_error(&nopw, 422, "validation_failed");
    let sole = p
        .app
        .as_user(
            Method::DELETE,
            "/api/users/me",
            &second,
            None,
            Some(json!({"password": PW})),
        )
        .await;
    assert_error(&sole, 409, "conflict");
    // Make the first user owner of solo, then leave.
    let first_id = p
        .app
        .as_user(Method::GET, "/api/users/me", &owner, None, None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let add = p.people.set_member(
        p.people.org_by_name("solo").await.unwrap().id,
        uuid::Uuid::parse_str(&first_id).unwrap(),
        prompt_core::OrgRole::Owner,
    );
    add.await.unwrap();
    let ok = p
        .app
        .as_user(
            Method::DELETE,
            "/api/users/me",
            &second,
            None,
            Some(json!({"password": PW})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.text);
    assert_error(
        &login(p, "second@example.com", PW).await,
        401,
        "unauthorized",
    );
    let v = p
        .app
        .as_user(
            Method::GET,
            "/api/v1/prompts/mine/versions/1",
            &owner,
            Some("solo/p"),
            None,
        )
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    assert_eq!(v.body["created_by"], "deleted user");
}

async fn api_keys_and_user_tokens_side_by_side(p: &People) {
    let owner = signed_up(p, "both@example.com").await;
    let key = p.app.admin.clone();
    for (token, project) in [(key.as_str(), None), (owner.as_str(), Some("default"))] {
        let r = p
            .app
            .as_user(Method::GET, "/api/v1/project", token, project, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["project"]["name"], "default");
        assert_eq!(r.body["role"], "admin");
    }
    // Runs made with a user token record the user; `?user=` filters by it, and by the
    // `user` an OpenAI client sends through the gateway.
    let me = p
        .app
        .as_user(Method::GET, "/api/users/me", &owner, None, None)
        .await;
    let user_ref = format!("user:{}", me.body["id"].as_str().unwrap());
    let v = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/prompts/hello/versions",
            &owner,
            Some("default"),
            Some(json!({"template": "Hello {{who}}"})),
        )
        .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.text);
    let run = p
        .app
        .as_user(
            Method::POST,
            "/api/v1/prompts/hello/execute",
            &owner,
            Some("default"),
            Some(json!({"version": 1, "variables": {"who": "you"}, "provider": "mock", "model": "mock/echo"})),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert_eq!(run.body["user"], user_ref.as_str());
    let g = p
        .app
        .post(
            "/v1/chat/completions",
            &key,
            json!({"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}], "user": "end-user-7"}),
        )
        .await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.text);
    for (who, want) in [(user_ref.as_str(), 1), ("end-user-7", 1), ("nobody", 0)] {
        let mut listed = 0;
        for _ in 0..100 {
            let r = p
                .app
                .get(&format!("/api/v1/runs?user={}", urlencode(who)), &key)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            listed = r.body["items"].as_array().unwrap().len();
            if listed == want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(listed, want, "runs of {who}");
    }

    // A tampered or `alg: none` token is refused.
    let mut parts: Vec<String> = owner.split('.').map(str::to_owned).collect();
    parts[2] = "AAAA".into();
    let tampered = parts.join(".");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let hs = format!(
        "{}.{}.{}",
        b64.encode(br#"{"alg":"HS512","typ":"JWT","kid":"x"}"#),
        parts[1],
        parts[2]
    );
    for bad in [tampered, none, hs] {
        let r = p
            .app
            .as_user(Method::GET, "/api/v1/prompts", &bad, Some("default"), None)
            .await;
        assert_error(&r, 401, "unauthorized");
    }
    // An expired token (signed with the real key) is refused.
    let key = p.people.signing_keys().await.unwrap().remove(0);
    let claims = json!({"sub": uuid::Uuid::now_v7(), "sid": uuid::Uuid::now_v7(), "iat": 1, "exp": 2,
        "iss": "prompt-registry", "aud": "prompt-registry"});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.id.clone());
    let expired = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&key.secret),
    )
    .unwrap();
    let r = p
        .app
        .as_user(
            Method::GET,
            "/api/v1/prompts",
            &expired,
            Some("default"),
            None,
        )
        .await;
    assert_error(&r, 401, "unauthorized");
    assert!(r.text.contains("expired"), "{}", r.text);
}

async fn browser_sessions_cors_and_csrf(p: &People) {
    signed_up(p, "browser@example.com").await;
    let r = p
        .app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "browser@example.com", "password": PW, "session": "cookie"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.body.get("refresh_token").is_none(),
        "cookie mode keeps it out of the body"
    );
    let set = r.headers["set-cookie"].to_str().unwrap().to_owned();
    for part in [
        "pr_refresh=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/auth",
    ] {
        assert!(set.contains(part), "{part} in {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP here: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let refresh = |csrf: bool, origin: Option<&str>| {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/api/auth/refresh")
            .header("cookie", cookie.clone())
            .header("host", "registry.test");
        if csrf {
            b = b.header("x-requested-with", "fetch");
        }
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_error(&p.app.send(refresh(false, None)).await, 403, "forbidden");
    assert_error(
        &p.app.send(refresh(true, Some("https://evil.test"))).await,
        403,
        "forbidden",
    );
    let ok = p
        .app
        .send(refresh(true, Some("http://registry.test")))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert!(
        ok.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("pr_refresh=")
    );
    // Logout clears the cookie.
    let mut req = refresh(true, None);
    *req.uri_mut() = "/api/auth/logout".parse().unwrap();
    let new_cookie = ok.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    req.headers_mut()
        .insert("cookie", new_cookie.parse().unwrap());
    let out = p.app.send(req).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // A JSON `null` body is no body (the document says the body is optional).
    let null_body = Request::builder()
        .method(Method::POST)
        .uri("/api/auth/logout")
        .header("content-type", "application/json")
        .body(Body::from("null"))
        .unwrap();
    let out = p.app.send(null_body).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);

    // CORS is off by default: no Access-Control headers, even on a preflight.
    let pre = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/prompts")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization,x-project")
            .body(Body::empty())
            .unwrap()
    };
    let r = p.app.send(pre("https://console.test")).await;
    assert!(
        r.headers.get("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers
    );
}

async fn cors_with_configured_origins(parts: Parts) {
    let p = people_app(parts, |c| {
        c.allowed_origins = vec!["https://console.test".into()]
    })
    .await;
    let pre = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/prompts")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization,x-project")
            .body(Body::empty())
            .unwrap()
    };
    let r = p.app.send(pre("https://console.test")).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.text);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://console.test"
    );
    assert_eq!(r.headers["access-control-allow-credentials"], "true");
    assert!(r.headers.get("www-authenticate").is_none());
    let r = p.app.send(pre("https://evil.test")).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

async fn signup_policies(parts: Parts) {
    let p = people_app(parts, |c| {
        c.signup = prompt_http::accounts::SignupPolicy::Closed
    })
    .await;
    assert_error(&register(&p, "x@example.com").await, 403, "forbidden");
}

macro_rules! people_suite {
    ($factory:ident) => {
        people_suite!($factory:
            signup_verify_login_refresh_reuse_logout,
            wrong_password_and_unknown_email_look_the_same_and_throttle,
            bad_input_names_the_field,
            orgs_invitations_and_the_role_matrix,
            role_matrix_over_every_project_route,
            deletion_and_export,
            api_keys_and_user_tokens_side_by_side,
            browser_sessions_cors_and_csrf,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn cors_when_configured() {
            let Some(parts) = $factory().await else { return };
            super::cors_with_configured_origins(parts).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn closed_sign_up() {
            let Some(parts) = $factory().await else { return };
            super::signup_policies(parts).await;
        }
    };
    ($factory:ident: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(parts) = $factory().await else { return };
                let p = super::people_app(parts, |_| {}).await;
                super::$name(&p).await;
            }
        )*
    };
}

fn from_backend(b: Option<prompt_store::testkit::TestBackend>) -> Option<Parts> {
    let b = b?;
    let people = b.people.clone().expect("the backend offers a people store");
    Some((b.store.clone(), b.runs.clone(), people, Some(Box::new(b))))
}

mod memory {
    use super::*;

    async fn parts() -> Option<Parts> {
        let (store, runs, people) = prompt_store::memory_with_people();
        Some((store, runs, people, None))
    }

    people_suite!(parts);
}

mod sqlite {
    use super::*;

    async fn parts() -> Option<Parts> {
        from_backend(prompt_store::testkit::sqlite_backend().await)
    }

    people_suite!(parts);
}

mod postgres {
    use super::*;

    async fn parts() -> Option<Parts> {
        from_backend(prompt_store::testkit::postgres_backend().await)
    }

    people_suite!(parts);
}

/// Review findings, kept as tests: concurrent guesses do not get past the throttle,
/// social sign-in never adopts an account whose address was not proved, and an
/// admin cannot change an owner's roles or half-apply a change.
mod review {
    use std::net::{IpAddr, Ipv4Addr};

    use prompt_http::accounts::social::SocialIdentity;
    use prompt_http::accounts::{Accounts, ClientInfo};
    use prompt_http::error::ApiError;

    use super::*;

    async fn accounts() -> Accounts {
        let (_store, _runs, people) = prompt_store::memory_with_people();
        Accounts::new(people, Mailer::Log, AccountsConfig::default())
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_guesses_do_not_get_past_the_throttle() {
        let a = Arc::new(accounts().await);
        a.register("victim@example.com", PW, None, None, &ClientInfo::default())
            .await
            .unwrap();
        let client = ClientInfo {
            ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9))),
            user_agent: None,
        };
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let (a, client) = (a.clone(), client.clone());
                tokio::spawn(async move {
                    a.login(
                        "victim@example.com",
                        &format!("guess number {i} xx"),
                        &client,
                    )
                    .await
                })
            })
            .collect();
        let mut checked = 0;
        for t in tasks {
            if let Err(ApiError::Unauthorized(_)) = t.await.unwrap() {
                checked += 1;
            }
        }
        assert!(
            checked <= 5,
            "{checked} guesses were checked; the allowance is 5"
        );
    }

    #[tokio::test]
    async fn social_sign_in_does_not_adopt_an_unverified_account() {
        let a = accounts().await;
        let c = ClientInfo::default();
        a.register("first@example.com", PW, None, None, &c)
            .await
            .unwrap();
        a.register(
            "victim@example.com",
            "attacker chosen passphrase",
            None,
            None,
            &c,
        )
        .await
        .unwrap();
        let r = a
            .social_sign_in(
                SocialIdentity {
                    provider: "google".into(),
                    subject: "g-1".into(),
                    email: Some("victim@example.com".into()),
                    email_verified: true,
                    name: None,
                },
                &c,
            )
            .await;
        assert!(
            r.is_err(),
            "linked to an account someone else holds the password of"
        );
        // Nor can anyone register in the placeholder domain of email-less identities.
        let e = a
            .register("wx-1@wechat.invalid", PW, None, None, &c)
            .await
            .unwrap_err();
        assert!(
            matches!(e, prompt_core::Error::InvalidInput { ref field, .. } if field == "email"),
            "{e:?}"
        );
    }

    async fn admin_cannot_touch_an_owner(p: &People) {
        let owner = signed_up(p, "o@example.com").await;
        p.app
            .as_user(
                Method::POST,
                "/api/v1/orgs",
                &owner,
                None,
                Some(json!({"name": "co"})),
            )
            .await;
        p.app
            .as_user(
                Method::POST,
                "/api/v1/orgs/co/projects",
                &owner,
                None,
                Some(json!({"name": "p"})),
            )
            .await;
        assert_eq!(
            register(p, "adm@example.com").await.status,
            StatusCode::ACCEPTED
        );
        let org = p.people.org_by_name("co").await.unwrap();
        let adm = p.people.user_by_email("adm@example.com").await.unwrap();
        let own = p.people.user_by_email("o@example.com").await.unwrap();
        p.people
            .set_member(org.id, adm.id, prompt_core::OrgRole::Admin)
            .await
            .unwrap();
        let admin = login(p, "adm@example.com", PW).await.body["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = p
            .app
            .as_user(
                Method::PATCH,
                &format!("/api/v1/orgs/co/members/{}", own.id),
                &admin,
                None,
                Some(json!({"project_roles": {"p": "viewer"}})),
            )
            .await;
        assert_error(&r, 403, "forbidden");
        // An unknown project changes nothing, the role included.
        let bob_email = "bob@example.com";
        assert_eq!(register(p, bob_email).await.status, StatusCode::ACCEPTED);
        let bob = p.people.user_by_email(bob_email).await.unwrap();
        p.people
            .set_member(org.id, bob.id, prompt_core::OrgRole::Viewer)
            .await
            .unwrap();
        let r = p
            .app
            .as_user(
                Method::PATCH,
                &format!("/api/v1/orgs/co/members/{}", bob.id),
                &admin,
                None,
                Some(json!({"role": "member", "project_roles": {"nope": "admin"}})),
            )
            .await;
        assert_error(&r, 404, "not_found");
        assert_eq!(
            p.people.membership(org.id, bob.id).await.unwrap().role,
            prompt_core::OrgRole::Viewer
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_admin_cannot_change_an_owner_or_half_apply() {
        let (store, runs, people) = prompt_store::memory_with_people();
        let p = people_app((store, runs, people, None), |_| {}).await;
        admin_cannot_touch_an_owner(&p).await;
    }
}
