//! Social sign-in end to end: the real router over the memory people store, against
//! a local OpenID Connect issuer and a local WeChat API that speak the real wire
//! formats (discovery, JWKS, the token endpoint with client authentication and
//! PKCE; WeChat's `sns/*` answers, `errcode` bodies with HTTP 200 included).
//! Nothing here reaches the internet. One file over 600 lines: the mock identity
//! providers are its shared fixture.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::BodyExt;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use prompt_core::PeopleStore;
use prompt_core::domain::NewUser;
use prompt_http::accounts::mail::Mailer;
use prompt_http::accounts::social::SocialProviderConfig;
use prompt_http::accounts::{AccountsConfig, SignupPolicy};
use prompt_http::{AccountsSetup, RouterConfig, StateConfig, app};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const IDP_KEY: &[u8] = include_bytes!("fixtures/idp_rsa.pem");
const OTHER_KEY: &[u8] = include_bytes!("fixtures/other_rsa.pem");
const CLIENT_ID: &str = "registry-client.apps.example";
const CLIENT_SECRET: &str = "idp-client-secret";
const WX_APPID: &str = "wx0123456789abcdef";
const WX_SECRET: &str = "wechat-app-secret-0123456789";
const PUBLIC_URL: &str = "http://registry.test";

// ----- a local OpenID Connect issuer -----

struct Grant {
    redirect_uri: String,
    challenge: Option<String>,
    id_token: String,
}

struct Idp {
    issuer: String,
    grants: Mutex<HashMap<String, Grant>>,
    jwks: Mutex<Value>,
}

fn jwk(pem: &[u8], kid: &str) -> Jwk {
    let mut k =
        Jwk::from_encoding_key(&EncodingKey::from_rsa_pem(pem).unwrap(), Algorithm::RS256).unwrap();
    k.common.key_id = Some(kid.to_owned());
    k.common.public_key_use = Some(PublicKeyUse::Signature);
    k
}

async fn discovery(State(idp): State<Arc<Idp>>) -> Response {
    let i = &idp.issuer;
    axum::Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/o/oauth2/v2/auth"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/v1/userinfo"),
        "jwks_uri": format!("{i}/oauth2/v3/certs"),
        "response_types_supported": ["code", "token", "id_token", "code id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "name", "sub"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"]
    }))
    .into_response()
}

async fn certs(State(idp): State<Arc<Idp>>) -> Response {
    axum::Json(idp.jwks.lock().unwrap().clone()).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// RFC 6749 §4.1.3 and RFC 7636 §4.6: client authentication (basic or post), the
/// code (single use), the redirect URI and the PKCE verifier.
async fn token(
    State(idp): State<Arc<Idp>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let dec = |x: &str| {
                form_urlencoded::parse(format!("x={x}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((dec(id)?, dec(secret)?))
        });
    let (id, secret) = basic.unwrap_or_else(|| {
        (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        )
    });
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type",
        );
    }
    let code = form.get("code").cloned().unwrap_or_default();
    let Some(grant) = idp.grants.lock().unwrap().remove(&code) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Malformed auth code.",
        );
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "Bad Request",
        );
    }
    if let Some(challenge) = grant.challenge {
        let ok = form
            .get("code_verifier")
            .is_some_and(|v| URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == challenge);
        if !ok {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid code verifier.",
            );
        }
    }
    axum::Json(json!({
        "access_token": "ya29.a0-mock-access-token",
        "expires_in": 3599,
        "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
        "token_type": "Bearer",
        "id_token": grant.id_token
    }))
    .into_response()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn start_idp() -> Arc<Idp> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let idp = Arc::new(Idp {
        issuer,
        grants: Mutex::new(HashMap::new()),
        jwks: Mutex::new(
            serde_json::to_value(JwkSet {
                keys: vec![jwk(IDP_KEY, "idp-1")],
            })
            .unwrap(),
        ),
    });
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth2/v3/certs", get(certs))
        .route("/token", post(token))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    idp
}

// ----- a local WeChat API -----

/// WeChat answers `text/plain` with a JSON body, errors included, with HTTP 200.
fn wx(body: Value) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body.to_string()).into_response()
}

async fn wx_access_token(Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("appid").map(String::as_str) != Some(WX_APPID) {
        return wx(json!({"errcode": 40013, "errmsg": "invalid appid"}));
    }
    if q.get("secret").map(String::as_str) != Some(WX_SECRET) {
        return wx(json!({"errcode": 40125, "errmsg": "invalid appsecret"}));
    }
    if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return wx(json!({"errcode": 40002, "errmsg": "invalid grant_type"}));
    }
    let (token, openid, unionid) = match q.get("code").map(String::as_str) {
        Some("code-union") => (
            "AT-union",
            "o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
            Some("oUnion-ZhangWei"),
        ),
        Some("code-openid") => ("AT-openid", "o6_bmasdasdsad6_2sgVt7hMZOPfL", None),
        Some("code-bad-userinfo") => ("AT-stale", "o6_stale", None),
        _ => {
            return wx(
                json!({"errcode": 40029, "errmsg": "invalid code, rid: 6530a1b2-1c2d3e4f-5a6b7c8d"}),
            );
        }
    };
    let mut body = json!({
        "access_token": token,
        "expires_in": 7200,
        "refresh_token": format!("RT-{token}"),
        "openid": openid,
        "scope": "snsapi_login"
    });
    if let Some(u) = unionid {
        body["unionid"] = json!(u);
    }
    wx(body)
}

async fn wx_userinfo(Query(q): Query<HashMap<String, String>>) -> Response {
    let at = q
        .get("access_token")
        .map(String::as_str)
        .unwrap_or_default();
    let openid = q.get("openid").map(String::as_str).unwrap_or_default();
    let (nickname, unionid) = match (at, openid) {
        ("AT-union", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M") => ("张伟", Some("oUnion-ZhangWei")),
        ("AT-openid", "o6_bmasdasdsad6_2sgVt7hMZOPfL") => ("Li Na", None),
        _ => {
            return wx(
                json!({"errcode": 40003, "errmsg": "invalid openid, rid: 6530a1b3-0f1e2d3c"}),
            );
        }
    };
    let mut body = json!({
        "openid": openid,
        "nickname": nickname,
        "sex": 1,
        "province": "Guangdong",
        "city": "Shenzhen",
        "country": "CN",
        "headimgurl": "https://thirdwx.qlogo.cn/mmopen/g3MonUZtNHkdmzicIlibx6iaFqAc56vxLSUfpb6n5WKSYVY0ChQKkiaJSgQ1dZuTOgvLLrhJbERQQ4eMsv84eavHiaiceqxibJxCfHe/46",
        "privilege": ["PRIVILEGE1", "PRIVILEGE2"]
    });
    if let Some(u) = unionid {
        body["unionid"] = json!(u);
    }
    wx(body)
}

async fn start_wechat() -> String {
    serve(
        Router::new()
            .route("/sns/oauth2/access_token", get(wx_access_token))
            .route("/sns/userinfo", get(wx_userinfo)),
    )
    .await
}

// ----- the app -----

struct TestApp {
    router: Router,
    people: Arc<dyn PeopleStore>,
    idp: Arc<Idp>,
}

#[derive(Debug)]
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn location(&self) -> String {
        self.headers[header::LOCATION].to_str().unwrap().to_owned()
    }

    /// The value of the cookie `name` the answer sets.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                let (n, rest) = c.split_once('=')?;
                (n == name).then(|| rest.split(';').next().unwrap_or_default().to_owned())
            })
    }

    fn set_cookie_line(&self, name: &str) -> String {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_default()
            .to_owned()
    }

    fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

async fn app_with(signup: SignupPolicy) -> TestApp {
    let idp = start_idp().await;
    let wechat = start_wechat().await;
    let vars: HashMap<&str, String> = [
        ("PROMPT_REGISTRY_GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
        (
            "PROMPT_REGISTRY_GOOGLE_CLIENT_SECRET",
            CLIENT_SECRET.to_owned(),
        ),
        ("PROMPT_REGISTRY_GOOGLE_ISSUER", idp.issuer.clone()),
        ("PROMPT_REGISTRY_OIDC_PROVIDERS", "acme-sso".to_owned()),
        ("PROMPT_REGISTRY_OIDC_ACME_SSO_ISSUER", idp.issuer.clone()),
        (
            "PROMPT_REGISTRY_OIDC_ACME_SSO_CLIENT_ID",
            CLIENT_ID.to_owned(),
        ),
        (
            "PROMPT_REGISTRY_OIDC_ACME_SSO_CLIENT_SECRET",
            CLIENT_SECRET.to_owned(),
        ),
        ("PROMPT_REGISTRY_WECHAT_APPID", WX_APPID.to_owned()),
        ("PROMPT_REGISTRY_WECHAT_SECRET", WX_SECRET.to_owned()),
        ("PROMPT_REGISTRY_WECHAT_API_BASE", wechat),
        (
            "PROMPT_REGISTRY_WECHAT_AUTHORIZE_URL",
            "https://open.weixin.qq.com/connect/qrconnect".to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    let social = SocialProviderConfig::from_env(|k| vars.get(k).cloned()).unwrap();
    let (store, runs, people) = prompt_store::memory_with_people();
    let (state, _writer) = prompt_http::build_state(
        store,
        runs,
        &StateConfig {
            accounts: Some(AccountsSetup {
                people: people.clone(),
                mailer: Mailer::Log,
                config: AccountsConfig {
                    signup,
                    public_url: PUBLIC_URL.to_owned(),
                    social,
                    ..AccountsConfig::default()
                },
            }),
            ..StateConfig::default()
        },
    )
    .await
    .unwrap();
    TestApp {
        router: app(state, RouterConfig::default()),
        people,
        idp,
    }
}

async fn open_app() -> TestApp {
    app_with(SignupPolicy::Open).await
}

fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let q = q.split('#').next().unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// What `start` handed the browser: the provider's parameters and the flow cookie.
struct Started {
    params: HashMap<String, String>,
    flow_cookie: String,
}

impl TestApp {
    async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, uri: &str, cookie: Option<&str>) -> Resp {
        let mut b = Request::get(uri);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, uri: &str, body: Value) -> Resp {
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    async fn start(&self, provider: &str, redirect_to: &str) -> Started {
        let r = self
            .get(
                &format!("/api/auth/social/{provider}/start?redirect_to={redirect_to}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::FOUND, "{:?}", r.body);
        Started {
            params: query(&r.location()),
            flow_cookie: format!("pr_social_flow={}", r.cookie("pr_social_flow").unwrap()),
        }
    }

    /// The IdP will answer `code` with `id_token`, for the PKCE challenge of `s`.
    fn grant(&self, code: &str, s: &Started, id_token: String) {
        self.idp.grants.lock().unwrap().insert(
            code.to_owned(),
            Grant {
                redirect_uri: s.params["redirect_uri"].clone(),
                challenge: Some(s.params["code_challenge"].clone()),
                id_token,
            },
        );
    }

    async fn callback(&self, provider: &str, code: &str, s: &Started) -> Resp {
        self.get(
            &format!(
                "/api/auth/social/{provider}/callback?code={code}&state={}",
                s.params["state"]
            ),
            Some(&s.flow_cookie),
        )
        .await
    }

    /// A browser sign-in with Google whose ID token has `claims` over the defaults.
    async fn google_sign_in(&self, claims: Value) -> Resp {
        let s = self.start("google", "/prompts").await;
        let token = id_token(&self.idp, &s.params["nonce"], claims);
        let code = format!("4/0A-{}", s.params["state"]);
        self.grant(&code, &s, token);
        self.callback("google", &code, &s).await
    }

    /// Who the refresh cookie of a callback signs in as.
    async fn refresh_as(&self, callback: &Resp) -> Value {
        let r = self
            .send(
                Request::post("/api/auth/refresh")
                    .header(
                        header::COOKIE,
                        format!("pr_refresh={}", callback.cookie("pr_refresh").unwrap()),
                    )
                    .header("x-requested-with", "test")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body["user"].clone()
    }

    async fn audit_actions(&self, user: &str) -> Vec<(String, Value)> {
        let id = user.parse().unwrap();
        self.people
            .user_audit(id, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.data))
            .collect()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Google-like ID token claims, `over` replacing or adding some (a `null` removes).
fn claims(idp: &Idp, nonce: &str, over: Value) -> Value {
    let mut c = json!({
        "iss": idp.issuer,
        "azp": CLIENT_ID,
        "aud": CLIENT_ID,
        "sub": "110169484474386276334",
        "email": "ada@example.com",
        "email_verified": true,
        "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
        "nonce": nonce,
        "name": "Ada Lovelace",
        "iat": now(),
        "exp": now() + 3600
    });
    for (k, v) in over.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn sign(pem: &[u8], kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

fn id_token(idp: &Idp, nonce: &str, over: Value) -> String {
    sign(IDP_KEY, "idp-1", &claims(idp, nonce, over))
}

// ----- OpenID Connect -----

#[tokio::test]
async fn start_redirects_to_the_issuer_with_state_nonce_and_an_s256_challenge() {
    let t = open_app().await;
    let r = t
        .get("/api/auth/social/google/start?redirect_to=/prompts", None)
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let location = r.location();
    assert!(
        location.starts_with(&format!("{}/o/oauth2/v2/auth?", t.idp.issuer)),
        "{location}"
    );
    let p = query(&location);
    assert_eq!(p["response_type"], "code");
    assert_eq!(p["client_id"], CLIENT_ID);
    assert_eq!(p["scope"], "openid email profile");
    assert_eq!(
        p["redirect_uri"],
        format!("{PUBLIC_URL}/api/auth/social/google/callback")
    );
    assert_eq!(p["code_challenge_method"], "S256");
    // base64url of a SHA-256: 43 characters.
    assert_eq!(p["code_challenge"].len(), 43);
    assert!(p["state"].len() >= 43 && p["nonce"].len() >= 43);
    assert_ne!(p["state"], p["nonce"]);
    // The flow cookie: HttpOnly, Lax (the provider's redirect back is cross-site),
    // ten minutes, sent to the social routes only.
    let line = r.set_cookie_line("pr_social_flow");
    for part in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/api/auth/social",
        "Max-Age=600",
    ] {
        assert!(line.contains(part), "{line}");
    }
    // Two starts never share a state or a nonce.
    let again = t.start("google", "/").await;
    assert_ne!(again.params["state"], p["state"]);
    assert_ne!(again.params["nonce"], p["nonce"]);
}

#[tokio::test]
async fn first_sign_in_makes_and_links_the_account_and_the_second_finds_it() {
    let t = open_app().await;
    let r = t.google_sign_in(json!({})).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{:?}", r.body);
    assert_eq!(r.location(), "/prompts");
    let refresh = r.set_cookie_line("pr_refresh");
    assert!(
        refresh.contains("HttpOnly") && refresh.contains("SameSite=Strict"),
        "{refresh}"
    );
    // The flow cookie is spent.
    assert!(r.set_cookie_line("pr_social_flow").contains("Max-Age=0"));

    let user = t.refresh_as(&r).await;
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["email_verified"], true);
    let id = user["id"].as_str().unwrap().to_owned();
    let linked = t.people.list_social(id.parse().unwrap()).await.unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].provider, "google");
    assert_eq!(linked[0].subject, "110169484474386276334");

    // Again, with another email at Google: the link decides, not the email.
    let r = t
        .google_sign_in(json!({"email": "ada.lovelace@example.org"}))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{:?}", r.body);
    assert_eq!(t.refresh_as(&r).await["id"], id.as_str());

    let actions = t.audit_actions(&id).await;
    let logins: Vec<&Value> = actions
        .iter()
        .filter(|(a, _)| a == "auth.login")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(logins.len(), 2);
    assert!(logins.iter().all(|d| d["method"] == "google"));
    assert_eq!(
        actions
            .iter()
            .filter(|(a, _)| a == "auth.social_linked")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_verified_email_links_to_the_account_that_has_it() {
    let t = open_app().await;
    let existing = t
        .people
        .create_user(NewUser {
            email: "Ada@Example.com".into(),
            name: "Ada".into(),
            password_hash: None,
            email_verified: false,
        })
        .await
        .unwrap();
    // An account whose address was never proved is not linked, even to a provider
    // that vouches for the address: whoever registered it may not be its owner.
    let r = t.google_sign_in(json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    t.people
        .update_user(
            existing.id,
            prompt_core::UserUpdate {
                email_verified: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = t.google_sign_in(json!({})).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{:?}", r.body);
    let user = t.refresh_as(&r).await;
    assert_eq!(user["id"], existing.id.to_string());
    // Google proved the address.
    assert_eq!(user["email_verified"], true);
    let actions = t.audit_actions(&existing.id.to_string()).await;
    assert!(
        actions
            .iter()
            .any(|(a, d)| a == "auth.social_linked" && d["provider"] == "google")
    );
}

#[tokio::test]
async fn an_email_the_provider_does_not_vouch_for_never_takes_an_account_over() {
    let t = open_app().await;
    let existing = t
        .people
        .create_user(NewUser {
            email: "ada@example.com".into(),
            name: "Ada".into(),
            password_hash: None,
            email_verified: true,
        })
        .await
        .unwrap();
    for unverified in [json!(false), json!("false"), Value::Null] {
        let r = t
            .google_sign_in(json!({"sub": "attacker-1", "email_verified": unverified}))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
        assert!(
            r.message().contains("sign in with that account's password"),
            "{}",
            r.message()
        );
        assert!(r.cookie("pr_refresh").is_none());
    }
    assert!(t.people.list_social(existing.id).await.unwrap().is_empty());
    assert!(
        t.people
            .user_by_social("google", "attacker-1")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn every_bad_id_token_is_refused_with_401() {
    let t = open_app().await;
    let unsigned = |claims: &Value| {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    };
    let hs256_with_client_secret = |claims: &Value| {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("idp-1".into());
        jsonwebtoken::encode(
            &h,
            claims,
            &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
        )
        .unwrap()
    };
    type Forge = Box<dyn Fn(&Idp, &str) -> String>;
    let cases: Vec<(&str, Forge, &str)> = vec![
        (
            "signed by another key under the issuer's kid",
            Box::new(|idp, n| sign(OTHER_KEY, "idp-1", &claims(idp, n, json!({})))),
            "bad signature",
        ),
        (
            "signed by a key the issuer does not publish",
            Box::new(|idp, n| sign(OTHER_KEY, "attacker", &claims(idp, n, json!({})))),
            "does not publish",
        ),
        (
            "for another client",
            Box::new(|idp, n| {
                id_token(
                    idp,
                    n,
                    json!({"aud": "someone-else", "azp": "someone-else"}),
                )
            }),
            "aud",
        ),
        (
            "from another issuer",
            Box::new(|idp, n| id_token(idp, n, json!({"iss": "https://evil.example"}))),
            "iss",
        ),
        (
            "expired",
            Box::new(|idp, n| id_token(idp, n, json!({"iat": now() - 7200, "exp": now() - 3600}))),
            "expired",
        ),
        (
            "without exp",
            Box::new(|idp, n| id_token(idp, n, json!({"exp": null}))),
            "claim",
        ),
        (
            "with another sign-in's nonce",
            Box::new(|idp, _| id_token(idp, "a-nonce-from-elsewhere", json!({}))),
            "nonce",
        ),
        (
            "without a nonce",
            Box::new(|idp, _| id_token(idp, "", json!({"nonce": null}))),
            "nonce",
        ),
        (
            "unsigned (alg none)",
            Box::new(move |idp, n| unsigned(&claims(idp, n, json!({})))),
            "unsigned",
        ),
        (
            "HS256 with the client secret as the key",
            Box::new(move |idp, n| hs256_with_client_secret(&claims(idp, n, json!({})))),
            "public-key",
        ),
    ];
    for (case, forge, why) in cases {
        let s = t.start("google", "/").await;
        let code = format!("code-{}", s.params["state"]);
        t.grant(&code, &s, forge(&t.idp, &s.params["nonce"]));
        let r = t.callback("google", &code, &s).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{case}: {:?}", r.body);
        assert!(r.message().contains(why), "{case}: {}", r.message());
        assert!(r.cookie("pr_refresh").is_none(), "{case}");
    }
    assert!(t.people.user_by_email("ada@example.com").await.is_err());
}

#[tokio::test]
async fn a_replayed_nonce_is_refused() {
    let t = open_app().await;
    // An app did the redirect itself and sends the code (API flow).
    let nonce = "n-0S6_WzA2Mj";
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let redirect_uri = "com.example.app:/oauth2redirect";
    let token = id_token(&t.idp, nonce, json!({}));
    for code in ["code-1", "code-2"] {
        t.idp.grants.lock().unwrap().insert(
            code.into(),
            Grant {
                redirect_uri: redirect_uri.into(),
                challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
                id_token: token.clone(),
            },
        );
    }
    let body = |code: &str| json!({"code": code, "redirect_uri": redirect_uri, "code_verifier": verifier, "nonce": nonce});
    let r = t.post("/api/auth/social/google", body("code-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert!(r.body["refresh_token"].is_string());
    assert_eq!(r.body["user"]["email"], "ada@example.com");
    // The same ID token (same nonce) for another code: replayed.
    let r = t.post("/api/auth/social/google", body("code-2")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    assert!(r.message().contains("replayed nonce"), "{}", r.message());
}

#[tokio::test]
async fn the_code_exchange_checks_pkce_and_the_code() {
    let t = open_app().await;
    let s = t.start("google", "/").await;
    t.grant("c1", &s, id_token(&t.idp, &s.params["nonce"], json!({})));
    let r = t
        .post(
            "/api/auth/social/google",
            json!({"code": "c1", "redirect_uri": s.params["redirect_uri"], "code_verifier": "not-the-verifier"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    assert!(r.message().contains("invalid_grant"), "{}", r.message());
    // The code is spent at the issuer: the right cookie cannot use it now.
    let r = t.callback("google", "c1", &s).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    // OIDC needs the redirect_uri of the authorization request.
    let r = t
        .post("/api/auth/social/google", json!({"code": "c2"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["details"]["field"], "redirect_uri");
}

#[tokio::test]
async fn the_callback_checks_state_against_the_flow_cookie() {
    let t = open_app().await;
    let s = t.start("google", "/").await;
    t.grant("c1", &s, id_token(&t.idp, &s.params["nonce"], json!({})));
    // Another state.
    let r = t
        .get(
            "/api/auth/social/google/callback?code=c1&state=forged",
            Some(&s.flow_cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.message().contains("state"), "{}", r.message());
    // No cookie (the flow began in another browser).
    let r = t
        .get(
            &format!(
                "/api/auth/social/google/callback?code=c1&state={}",
                s.params["state"]
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A cookie that is not ours.
    let r = t
        .get(
            &format!(
                "/api/auth/social/google/callback?code=c1&state={}",
                s.params["state"]
            ),
            Some("pr_social_flow=eyJhbGciOiJub25lIn0.eyJ9.x"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A flow begun with another provider.
    let r = t.callback("acme-sso", "c1", &s).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.message().contains("another provider"), "{}", r.message());
    // The right state still works (nothing was spent).
    let r = t.callback("google", "c1", &s).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{:?}", r.body);
}

#[tokio::test]
async fn the_issuer_rotating_its_keys_is_picked_up() {
    let t = open_app().await;
    assert_eq!(
        t.google_sign_in(json!({})).await.status,
        StatusCode::SEE_OTHER
    );
    // The issuer now signs with a new key (cached key set is stale).
    *t.idp.jwks.lock().unwrap() = serde_json::to_value(JwkSet {
        keys: vec![jwk(IDP_KEY, "idp-1"), jwk(OTHER_KEY, "idp-2")],
    })
    .unwrap();
    let s = t.start("google", "/").await;
    t.grant(
        "c2",
        &s,
        sign(
            OTHER_KEY,
            "idp-2",
            &claims(&t.idp, &s.params["nonce"], json!({})),
        ),
    );
    let r = t.callback("google", "c2", &s).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{:?}", r.body);
}

#[tokio::test]
async fn a_named_oidc_provider_is_its_own_identity_space() {
    let t = open_app().await;
    let google = t.google_sign_in(json!({})).await;
    let google_user = t.refresh_as(&google).await;
    // Same sub at another provider: another identity; the verified email links it.
    let s = t.start("acme-sso", "/").await;
    assert!(s.params["redirect_uri"].ends_with("/api/auth/social/acme-sso/callback"));
    t.grant("a1", &s, id_token(&t.idp, &s.params["nonce"], json!({})));
    let r = t.callback("acme-sso", "a1", &s).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{:?}", r.body);
    assert_eq!(t.refresh_as(&r).await["id"], google_user["id"]);
    let id = google_user["id"].as_str().unwrap().parse().unwrap();
    let mut providers: Vec<String> = t
        .people
        .list_social(id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.provider)
        .collect();
    providers.sort();
    assert_eq!(providers, ["acme-sso", "google"]);
    let r = t.get("/api/auth/social", None).await;
    assert_eq!(r.body["items"], json!(["acme-sso", "google", "wechat"]));
}

#[tokio::test]
async fn closed_sign_up_makes_no_account_but_linked_users_still_sign_in() {
    let t = app_with(SignupPolicy::Closed).await;
    let r = t.google_sign_in(json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(t.people.user_by_email("ada@example.com").await.is_err());
    // An operator made the account: the verified email links to it.
    t.people
        .create_user(NewUser {
            email: "ada@example.com".into(),
            name: "Ada".into(),
            password_hash: None,
            email_verified: true,
        })
        .await
        .unwrap();
    let r = t.google_sign_in(json!({})).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{:?}", r.body);
}

#[tokio::test]
async fn redirects_stay_on_this_site_and_provider_errors_are_clear() {
    let t = open_app().await;
    for bad in [
        "//evil.example/x",
        "https://evil.example/",
        "/%5Cevil.example",
    ] {
        let r = t
            .get(
                &format!("/api/auth/social/google/start?redirect_to={bad}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(r.body["error"]["details"]["field"], "redirect_to");
    }
    let r = t.get("/api/auth/social/github/start", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().contains("github"), "{}", r.message());

    let s = t.start("google", "/").await;
    let r = t
        .get(
            &format!(
                "/api/auth/social/google/callback?error=access_denied&state={}",
                s.params["state"]
            ),
            Some(&s.flow_cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.message().contains("declined"), "{}", r.message());
}

// ----- WeChat -----

#[tokio::test]
async fn wechat_start_sends_the_browser_to_qrconnect() {
    let t = open_app().await;
    let r = t
        .get("/api/auth/social/wechat/start?redirect_to=/home", None)
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let location = r.location();
    assert!(
        location.starts_with(&format!(
            "https://open.weixin.qq.com/connect/qrconnect?appid={WX_APPID}&redirect_uri=http%3A%2F%2Fregistry.test%2Fapi%2Fauth%2Fsocial%2Fwechat%2Fcallback&response_type=code&scope=snsapi_login&state="
        )),
        "{location}"
    );
    assert!(location.ends_with("#wechat_redirect"), "{location}");
    assert!(!location.contains(WX_SECRET));
}

#[tokio::test]
async fn wechat_sign_in_with_a_unionid_in_the_browser() {
    let t = open_app().await;
    let s = t.start("wechat", "/home").await;
    let r = t.callback("wechat", "code-union", &s).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{:?}", r.body);
    assert_eq!(r.location(), "/home");
    let user = t.refresh_as(&r).await;
    assert_eq!(user["name"], "张伟");
    // WeChat gives no email: a placeholder that can never receive mail.
    assert_eq!(user["email"], "oUnion-ZhangWei@wechat.invalid");
    assert_eq!(user["email_verified"], false);
    let linked = t
        .people
        .user_by_social("wechat", "oUnion-ZhangWei")
        .await
        .unwrap();
    assert_eq!(linked.id.to_string(), user["id"].as_str().unwrap());
    // Signing in again finds the same user.
    let s = t.start("wechat", "/").await;
    let r = t.callback("wechat", "code-union", &s).await;
    assert_eq!(t.refresh_as(&r).await["id"], user["id"]);
}

#[tokio::test]
async fn wechat_sign_in_with_only_an_openid_by_code() {
    let t = open_app().await;
    let r = t
        .post(
            "/api/auth/social/wechat",
            json!({"code": "code-openid", "session": "cookie"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body.get("refresh_token").is_none());
    assert!(r.cookie("pr_refresh").is_some());
    assert_eq!(r.body["user"]["name"], "Li Na");
    assert!(
        t.people
            .user_by_social("wechat", "o6_bmasdasdsad6_2sgVt7hMZOPfL")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn wechat_errcodes_are_clear_errors_that_never_show_the_secret() {
    let t = open_app().await;
    // An invalid code (HTTP 200 with errcode 40029 at sns/oauth2/access_token).
    let r = t
        .post("/api/auth/social/wechat", json!({"code": "expired-code"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let d = &r.body["error"]["details"];
    assert_eq!(d["provider"], "wechat");
    assert_eq!(d["vendor_code"], "40029");
    assert!(d["reason"].as_str().unwrap().starts_with("invalid code"));
    assert!(r.message().contains("40029"), "{}", r.message());
    // WeChat refuses the openid it just gave (errcode 40003 at sns/userinfo): WeChat
    // failed us, 502.
    let s = t.start("wechat", "/").await;
    let r = t.callback("wechat", "code-bad-userinfo", &s).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    let d = &r.body["error"]["details"];
    assert_eq!(d["provider"], "wechat");
    assert_eq!(d["vendor_code"], "40003");
    assert!(r.message().contains("invalid openid"), "{}", r.message());
    assert!(!r.body.to_string().contains(WX_SECRET));
    assert!(
        t.people
            .user_by_email("o6_stale@wechat.invalid")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_wrong_wechat_app_secret_is_a_502_without_the_secret() {
    let idp_less = open_app().await;
    // Same app, but pointing WeChat at an app secret WeChat does not know.
    let vars: HashMap<&str, String> = [
        ("PROMPT_REGISTRY_WECHAT_APPID", WX_APPID.to_owned()),
        ("PROMPT_REGISTRY_WECHAT_SECRET", "a-wrong-secret".to_owned()),
        ("PROMPT_REGISTRY_WECHAT_API_BASE", start_wechat().await),
    ]
    .into_iter()
    .collect();
    let social = SocialProviderConfig::from_env(|k| vars.get(k).cloned()).unwrap();
    let (store, runs, people) = prompt_store::memory_with_people();
    let (state, _w) = prompt_http::build_state(
        store,
        runs,
        &StateConfig {
            accounts: Some(AccountsSetup {
                people,
                mailer: Mailer::Log,
                config: AccountsConfig {
                    social,
                    ..AccountsConfig::default()
                },
            }),
            ..StateConfig::default()
        },
    )
    .await
    .unwrap();
    let t = TestApp {
        router: app(state, RouterConfig::default()),
        people: idp_less.people.clone(),
        idp: idp_less.idp.clone(),
    };
    let r = t
        .post("/api/auth/social/wechat", json!({"code": "code-union"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["vendor_code"], "40125");
    assert_eq!(r.body["error"]["details"]["kind"], "auth");
    assert!(!r.body.to_string().contains("a-wrong-secret"));
}
