//! The router: routes from `routes/*`, and every middleware in one place.
//!
//! One file over 600 lines on purpose: the route table, the OpenAPI document's parts
//! and the middleware stack are read together when a route is added.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{
    ApiError, ErrorBody, InternalCause, LangfuseError, LangfuseShaped, OpenAiError,
};
use crate::routes::{
    batch, events, execute, export, gateway, keys, prompts, protected_labels, providers, runs,
    service, tools, webhooks, ws,
};
use crate::state::AppState;

/// Limits applied by the router.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// Longest the server waits for the next piece of a request body (a client that
    /// stops sending gets 400 and its request ends).
    pub body_timeout: Duration,
    /// Serve `/metrics` on this router (false when it has its own listener).
    pub metrics_route: bool,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>` (401 otherwise).
    pub metrics_token: Option<MetricsToken>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            body_limit: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            body_timeout: Duration::from_secs(30),
            metrics_route: true,
            metrics_token: None,
        }
    }
}

/// The bearer token `/metrics` requires; its `Debug` hides it.
#[derive(Clone)]
pub struct MetricsToken(std::sync::Arc<str>);

impl MetricsToken {
    /// Wrap a token.
    pub fn new(token: &str) -> Self {
        MetricsToken(token.into())
    }

    /// Whether an `Authorization` header value carries this token (compared in
    /// constant time, so timing tells nothing about how much of a guess was right).
    pub fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        use subtle::ConstantTimeEq;
        let Some(presented) = authorization.and_then(|v| v.to_str().ok()).and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        }) else {
            return false;
        };
        presented.trim().as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(***)")
    }
}

/// Refuse a `/metrics` request without the configured token: 401 in the one error
/// shape, with `WWW-Authenticate: Bearer` (what Prometheus' `authorization` sends).
async fn require_metrics_token(token: Option<MetricsToken>, req: Request, next: Next) -> Response {
    match token {
        Some(t) if !t.accepts(req.headers().get(header::AUTHORIZATION)) => {
            let mut r = ApiError::Unauthorized(
                "/metrics needs Authorization: Bearer <the metrics token> (PROMPT_REGISTRY_METRICS_TOKEN)"
                    .into(),
            )
            .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        _ => next.run(req).await,
    }
}

/// `/metrics` behind its token when one is set.
fn metrics_router(token: Option<MetricsToken>) -> Router<AppState> {
    let (metrics, _) = OpenApiRouter::new()
        .routes(routes!(service::metrics_text))
        .split_for_parts();
    metrics.route_layer(middleware::from_fn(move |req: Request, next: Next| {
        require_metrics_token(token.clone(), req, next)
    }))
}

/// Only `/metrics` (with its token when set) and the request log: what a separate
/// metrics listener (`--metrics-addr`) serves; anything else is 404.
pub fn metrics_app(state: AppState, token: Option<MetricsToken>) -> Router {
    crate::metrics::install();
    metrics_router(token)
        .fallback(|req: Request| async move { no_route(req.uri().clone()).await })
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Prompt Registry",
        description = "Prompt management and LLM-run observability. Authenticate with `Authorization: Bearer <api key>`, or as a signed-in user with `Authorization: Bearer <access token>` plus `X-Project: ORG/NAME` (sign in at `/api/auth/login`; browsers keep the refresh token in an HttpOnly cookie and send `X-Requested-With` with cookie-authenticated calls); the Langfuse-compatible routes (`/api/public/…`, tag `langfuse`) take HTTP Basic with a Langfuse key pair (`prompt-registry keys create --langfuse`) and answer errors in Langfuse's shape `{message, error}`; the OpenAI-compatible gateway (`/v1/…`, tag `gateway`) answers errors in OpenAI's shape. Prompt names may contain `/`: encode it as `%2F` in paths (raw slashes are accepted too where unambiguous).",
        version = "1"
    ),
    modifiers(&BearerAuth),
    // Schemas only query parameters refer to (the path macros collect body schemas only).
    components(schemas(prompt_core::Order, crate::routes::runs::BatchInclude)),
    security(("bearer" = []), ("access_token" = [], "project" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // A signed-in user's access token (from `/api/auth/login` or `/refresh`), with
        // the project named in `X-Project` on project routes.
        components.add_security_scheme(
            "access_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A user's access token (JWT, 15 minutes) from /api/auth/login or /api/auth/refresh. On /api/v1 project routes send the project too: 'X-Project: ORG/NAME' (or NAME in the organization 'default', or the project's id); the role is the user's membership role there, checked on every request.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "project",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "X-Project",
                    "The project of a request made with a user access token: ORG/NAME, NAME (organization 'default') or the project's id.",
                ),
            )),
        );
        // The Langfuse-compatible routes: `PUBLIC_KEY:SECRET_KEY`.
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The API routes (behind auth) and the OpenAPI document they produce.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(prompts::create_prompt, prompts::list_prompts))
        .routes(routes!(
            prompts::get_prompt,
            prompts::update_prompt,
            prompts::archive_prompt
        ))
        .routes(routes!(prompts::get_prompt_by_id))
        .routes(routes!(prompts::create_version, prompts::list_versions))
        .routes(routes!(prompts::get_version, prompts::delete_version))
        .routes(routes!(prompts::resolve))
        .routes(routes!(prompts::diff))
        .routes(routes!(prompts::set_label, prompts::delete_label))
        .routes(routes!(prompts::label_history))
        .routes(routes!(protected_labels::list_protected_labels))
        .routes(routes!(
            protected_labels::get_protected_label,
            protected_labels::put_protected_label,
            protected_labels::delete_protected_label
        ))
        .routes(routes!(prompts::render))
        .routes(routes!(execute::execute))
        .routes(routes!(runs::stats))
        .routes(routes!(runs::project_stats))
        .routes(routes!(
            runs::create_run,
            runs::list_runs,
            runs::delete_runs
        ))
        .routes(routes!(runs::create_runs_batch))
        .routes(routes!(runs::get_run))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(keys::whoami, keys::put_project))
        .routes(routes!(tools::analyze))
        .routes(routes!(tools::render_draft))
        .routes(routes!(tools::remix))
        .routes(routes!(tools::create))
        .routes(routes!(tools::optimize))
        .routes(routes!(providers::list_providers))
        .routes(routes!(
            providers::put_provider,
            providers::get_provider,
            providers::delete_provider
        ))
        .routes(routes!(events::list_events))
        .routes(routes!(events::stream_events))
        .routes(routes!(events::sync_status))
        .routes(routes!(ws::ws))
        .routes(routes!(batch::apply_batch))
        .routes(routes!(export::export_prompts))
        // Prompts as code: a whole project's documents in one body.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(export::import_prompts))
                .layer(DefaultBodyLimit::max(export::IMPORT_BODY_LIMIT)),
        )
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::redeliver))
        .split_for_parts()
}

/// The OpenAPI document of the whole service as pretty JSON: what `/openapi.json`
/// serves and `prompt-registry openapi` prints.
pub fn openapi_json() -> String {
    openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The whole OpenAPI document: every route's operation and schema.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api_routes();
    let (_, service_doc) = service_routes();
    doc.merge(service_doc);
    let (_, gateway_doc) = gateway_routes();
    let (_, people_doc) = people_routes();
    doc.merge(people_doc);
    doc.merge(gateway_doc);
    let (_, langfuse_doc) = crate::routes::langfuse::api_routes();
    doc.merge(langfuse_doc);
    let (_, _, compat_doc) = compat_routes();
    doc.merge(compat_doc);
    crate::idempotency::document(&mut doc);
    crate::api_doc::complete(doc)
}

/// The OpenAI-compatible gateway (`/v1/…`): authenticated by the handlers themselves,
/// so that every error, 401 included, is in OpenAI's shape.
/// The people routes: sign-in (`/api/auth`), the user (`/api/users/me`) and
/// organizations (`/api/v1/orgs`). Each handler authenticates as it needs (most take
/// a user access token; sign-up, sign-in, refresh and the email links take none).
pub fn people_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use crate::routes::{auth, invitations, orgs, social, users};
    OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::logout_all))
        .routes(routes!(auth::sessions))
        .routes(routes!(auth::revoke_session))
        .routes(routes!(auth::verify_email))
        .routes(routes!(auth::send_verification))
        .routes(routes!(auth::password_reset))
        .routes(routes!(auth::password_reset_confirm))
        .routes(routes!(social::providers))
        .routes(routes!(social::start))
        .routes(routes!(social::callback))
        .routes(routes!(social::sign_in))
        .routes(routes!(users::get_me, users::patch_me, users::delete_me))
        .routes(routes!(users::change_password))
        .routes(routes!(users::get_preferences, users::patch_preferences))
        .routes(routes!(users::export))
        .routes(routes!(orgs::create_org, orgs::list_orgs))
        .routes(routes!(orgs::get_org, orgs::rename_org, orgs::delete_org))
        .routes(routes!(orgs::list_members))
        .routes(routes!(orgs::patch_member, orgs::remove_member))
        .routes(routes!(
            invitations::create_invitation,
            invitations::list_invitations
        ))
        .routes(routes!(invitations::revoke_invitation))
        .routes(routes!(invitations::accept_invitation))
        .routes(routes!(orgs::create_project, orgs::list_projects))
        .routes(routes!(orgs::rename_project, orgs::delete_project))
        .routes(routes!(orgs::audit))
        .split_for_parts()
}

/// The routes of the systems this service replaces (tag `compat`): the prompt analysis
/// service's (which authenticate in their extractor, anonymous callers included when
/// `--public-tools` is on), the AI prompt manager's and the prompt optimizer backend's
/// model, prompt and `POST /api/sync/force` routes (behind the API's auth, added in
/// [`app`]). See `routes::compat`.
pub fn compat_routes() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    use crate::routes::compat::{ai_prompts, analysis};
    let (analysis_routes, mut doc) = OpenApiRouter::new()
        .routes(routes!(analysis::analyze))
        .routes(routes!(analysis::remix))
        .routes(routes!(analysis::create))
        .split_for_parts();
    use crate::routes::compat::{optimizer, optimizer_prompts};
    let (ai, ai_doc) = OpenApiRouter::new()
        .routes(routes!(ai_prompts::create_prompt, ai_prompts::list_prompts))
        .routes(routes!(ai_prompts::get_prompt))
        .routes(routes!(optimizer::list_models))
        .routes(routes!(optimizer::list_configs))
        .routes(routes!(optimizer::put_config, optimizer::delete_config))
        .routes(routes!(
            optimizer_prompts::list_prompts,
            optimizer_prompts::create_prompt
        ))
        .routes(routes!(
            optimizer_prompts::get_prompt,
            optimizer_prompts::update_prompt,
            optimizer_prompts::delete_prompt
        ))
        .routes(routes!(optimizer_prompts::history))
        .routes(routes!(optimizer_prompts::optimize))
        .routes(routes!(crate::routes::events::sync_force))
        .split_for_parts();
    doc.merge(ai_doc);
    // The same handlers without the trailing slash (not in the document twice).
    let ai = ai.route(
        "/ai/prompts",
        axum::routing::post(ai_prompts::create_prompt).get(ai_prompts::list_prompts),
    );
    (analysis_routes, ai, doc)
}

fn gateway_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::new()
        .routes(routes!(gateway::chat_completions))
        .routes(routes!(gateway::list_models))
        .split_for_parts()
}

fn service_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::new()
        .routes(routes!(service::healthz))
        .routes(routes!(service::readyz))
        .routes(routes!(service::metrics_text))
        .split_for_parts()
}

/// The service routes the app serves: health and readiness (`/metrics` is added on
/// its own, behind its token, or served by a separate listener).
fn health_routes() -> Router<AppState> {
    let (router, _) = OpenApiRouter::new()
        .routes(routes!(service::healthz))
        .routes(routes!(service::readyz))
        .split_for_parts();
    router
}

/// The whole application: every route and middleware, ready to serve or to drive with
/// `tower::ServiceExt::oneshot` in tests.
pub fn app(state: AppState, config: RouterConfig) -> Router {
    crate::metrics::install();
    let (api, _) = api_routes();
    let svc = health_routes();
    let svc = if config.metrics_route {
        svc.merge(metrics_router(config.metrics_token.clone()))
    } else {
        svc
    };
    let (gateway, _) = gateway_routes();
    let guard_limits = crate::idempotency::GuardLimits {
        body_limit: config.body_limit,
        abandoned_after: crate::idempotency::abandoned_after(config.request_timeout),
    };
    let idempotent = |state: AppState| {
        middleware::from_fn(move |req: Request, next: Next| {
            crate::idempotency::guard(state.clone(), guard_limits, req, next)
        })
    };
    // The gateway authenticates in its handler; the guard authenticates by itself there.
    let gateway = gateway.route_layer(idempotent(state.clone()));
    let (people, _) = people_routes();
    let people = people.route_layer(middleware::from_fn_with_state(
        state.clone(),
        crate::auth::scope_user_actor,
    ));
    let cors = cors_layer(&state);
    // Inside authentication: the guard scopes keys by the caller it found.
    let api =
        api.route_layer(idempotent(state.clone()))
            .route_layer(middleware::from_fn_with_state(
                state.clone(),
                crate::auth::require_key,
            ));
    let (analysis, ai_prompts, _) = compat_routes();
    // Innermost first: the API's auth, then (outer, so it runs before) the default
    // project of a user token without `X-Project`.
    let ai_prompts = ai_prompts
        .route_layer(idempotent(state.clone()))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_key,
        ))
        .route_layer(middleware::from_fn(
            crate::routes::compat::ai_prompts::default_project,
        ));
    let console = crate::ui::router();
    let inner: Router = Router::new()
        .merge(api)
        .merge(svc)
        .merge(gateway)
        .merge(people)
        .merge(analysis)
        .merge(ai_prompts)
        .merge(crate::routes::langfuse::routes(state.clone(), guard_limits))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi()))
        .merge(test_routes())
        // A GET outside the API namespaces is the console's (its client-side routes
        // answer index.html); anything else unmatched is a 404 in the path's error shape.
        .fallback(move |req: Request| async move {
            let console_get = (req.method() == axum::http::Method::GET
                || req.method() == axum::http::Method::HEAD)
                && crate::ui::is_console_path(req.uri().path());
            if console_get {
                match console.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            } else {
                no_route(req.uri().clone()).await
            }
        })
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            config.body_timeout,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        // A panic is a bug: answer 500 (in the one error shape, via `observe`) instead
        // of dropping the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        // Outside the timeout (a heavy request still times out, on its own thread).
        .layer(middleware::from_fn(crate::heavy::off_workers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::storage::track_writes,
        ))
        .layer(middleware::from_fn(observe))
        .layer(cors)
        .with_state(state);
    // Prompt names may hold raw slashes; rewrite them to %2F before routing.
    Router::new().fallback_service(tower::service_fn(move |req: Request| {
        let inner = inner.clone();
        async move { inner.oneshot(normalize_prompt_path(req)).await }
    }))
}

/// The name of the variable that turns the test routes on (in builds that have them).
pub const TEST_ROUTES_ENV: &str = "PROMPT_REGISTRY_TEST_ROUTES";

/// Fault injection for the crate's own process tests: `GET /__test/panic` panics (to
/// check that a panic answers 500 and is reported). Only in builds with the
/// `test-routes` feature (the tests' own), and only with `PROMPT_REGISTRY_TEST_ROUTES=1`.
fn test_routes() -> Router<AppState> {
    #[cfg(feature = "test-routes")]
    if std::env::var(TEST_ROUTES_ENV).is_ok_and(|v| v == "1") {
        return Router::new().route("/__test/panic", axum::routing::get(test_panic));
    }
    Router::new()
}

#[cfg(feature = "test-routes")]
async fn test_panic() -> Response {
    panic!("a panic of the test route")
}

/// CORS: off unless origins are configured (`PROMPT_REGISTRY_CORS_ORIGINS`); then those
/// origins may call the API with credentials (the refresh cookie), and preflights are
/// answered without them. Outermost, so a preflight never reaches authentication.
fn cors_layer(state: &AppState) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = state
        .accounts
        .as_ref()
        .map(|a| a.config.allowed_origins.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        // No Access-Control-* headers at all: browsers refuse cross-origin reads.
        return CorsLayer::new();
    }
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::header::IF_MATCH,
            HeaderName::from_static("x-project"),
            HeaderName::from_static("x-requested-with"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            axum::http::header::ETAG,
            axum::http::header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
            // The next page of `GET /ai/prompts/` (whose body is a bare array).
            HeaderName::from_static("x-next-cursor"),
        ])
        .max_age(Duration::from_secs(600))
}

/// How the internal cause of a panic's 500 starts.
pub const PANIC_CAUSE_PREFIX: &str = "panic: ";

fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned());
    ApiError::Core(prompt_core::Error::internal(format!(
        "{PANIC_CAUSE_PREFIX}{detail}"
    )))
    .into_response()
}

async fn no_route(uri: Uri) -> Response {
    let e = ApiError::NoRoute(uri.path().to_owned());
    match ErrorShape::of(uri.path()) {
        ErrorShape::Langfuse => LangfuseError(e).into_response(),
        ErrorShape::OpenAi => OpenAiError(e).into_response(),
        ErrorShape::Ours => e.into_response(),
    }
}

/// Which error body a path answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorShape {
    /// `{"error": {"code", "message", "details"}}` (API.md).
    Ours,
    /// OpenAI's, on the gateway (`/v1/…`).
    OpenAi,
    /// Langfuse's `{"message", "error"}`, on the Langfuse-compatible API
    /// (`/api/public/…`).
    Langfuse,
}

impl ErrorShape {
    fn of(path: &str) -> Self {
        if path.starts_with("/v1/") {
            ErrorShape::OpenAi
        } else if path.starts_with("/api/public/") {
            ErrorShape::Langfuse
        } else {
            ErrorShape::Ours
        }
    }
}

const ACTIONS_1: &[&str] = &[
    "versions", "resolve", "render", "execute", "stats", "optimize", "diff",
];

/// `/api/v1/prompts/a/b/versions/3` → `/api/v1/prompts/a%2Fb/versions/3`.
fn normalize_prompt_path(mut req: Request) -> Request {
    const PREFIX: &str = "/api/v1/prompts/";
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return req;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() < 2 || segs.iter().any(|s| s.is_empty()) {
        return req;
    }
    let n = segs.len();
    // How many trailing segments are the action, longest interpretation first.
    let tail = if n >= 4 && segs[n - 3] == "labels" && segs[n - 1] == "history" {
        3
    } else if n >= 3 && (segs[n - 2] == "labels" || segs[n - 2] == "versions") {
        2
    } else if ACTIONS_1.contains(&segs[n - 1]) {
        1
    } else {
        0
    };
    let name_segs = &segs[..n - tail];
    if name_segs.len() < 2 {
        return req;
    }
    let mut new_path = String::from(PREFIX);
    new_path.push_str(&name_segs.join("%2F"));
    for s in &segs[n - tail..] {
        new_path.push('/');
        new_path.push_str(s);
    }
    let pq = match req.uri().query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    if let Ok(uri) = pq.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    req
}

fn valid_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_owned())
}

/// Request id, access log, metrics, and the one error shape for every error response.
async fn observe(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(valid_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        req.headers_mut().insert("x-request-id", v);
    }
    let method = req.method().clone();
    // Bounded label values: arbitrary client methods must not create metric series.
    let method_label: &'static str = match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    // The server span of OpenTelemetry's HTTP conventions too (`otel.*` and the
    // `http.*` attributes only reach OpenTelemetry; see `crate::otel`).
    let span = tracing::info_span!(
        "request",
        %method,
        path = %path,
        request_id = %request_id,
        project = tracing::field::Empty,
        otel.name = %format_args!("{method_label} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
    );
    let traced = crate::otel::enabled();
    if traced {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        crate::otel::set_parent_from(&span, req.headers());
        span.set_attribute("http.request.method", method_label);
        span.set_attribute("http.route", route.clone());
    }
    let hub = crate::error_reports::enabled()
        .then(|| crate::error_reports::request_hub(&request_id, method_label, &route));
    let mut resp = {
        use tracing::Instrument;
        let fut = next.run(req).instrument(span.clone());
        match &hub {
            Some(h) => sentry::SentryFutureExt::bind_hub(fut, h.clone()).await,
            None => fut.await,
        }
    };
    let status = resp.status();
    if traced {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("otel.status_code", "error");
        }
    }
    if status.is_client_error() || status.is_server_error() {
        // The OpenAI- and Langfuse-compatible routes answer in their own error shapes.
        resp = ensure_error_body(
            resp,
            &request_id,
            &span,
            hub.as_deref(),
            ErrorShape::of(&path),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let elapsed = started.elapsed();
    let status_label = status.as_u16().to_string();
    metrics::counter!("prompt_registry_http_requests_total", "method" => method_label, "route" => route.clone(), "status" => status_label.clone()).increment(1);
    metrics::histogram!("prompt_registry_http_request_duration_seconds", "method" => method_label, "route" => route, "status" => status_label).record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    });
    resp
}

/// Every 4xx/5xx leaves in the JSON shape of its path; 500s hide their cause (logged
/// here with the request id) and carry only `internal` and the request id (Langfuse's
/// shape: `Internal Server Error`).
fn ensure_error_body(
    resp: Response,
    request_id: &str,
    span: &tracing::Span,
    reports: Option<&sentry::Hub>,
    shape: ErrorShape,
) -> Response {
    let status = resp.status();
    if let Some(InternalCause(cause)) = resp.extensions().get::<InternalCause>() {
        span.in_scope(|| {
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::error!(%cause, "internal error");
                if let Some(hub) = reports {
                    crate::error_reports::internal_error(hub, cause);
                }
            } else {
                tracing::warn!(%cause, "service unavailable");
            }
        });
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // Handlers answer in their path's shape already (Langfuse's 500s included, without
    // their cause); anything else (a panic, a layer's bare status) is rewritten into it
    // from the one classification, and our 500s always carry the request id.
    let keep = match shape {
        ErrorShape::Langfuse => is_json && resp.extensions().get::<LangfuseShaped>().is_some(),
        ErrorShape::OpenAi => is_json,
        ErrorShape::Ours => is_json && status != StatusCode::INTERNAL_SERVER_ERROR,
    };
    if keep {
        return resp;
    }
    // The status stays the one answered; the classification gives the body.
    let error = ApiError::from_status(status);
    let mut new = match shape {
        ErrorShape::Langfuse => {
            crate::error::langfuse_error_response(status, error.classify().message)
        }
        ErrorShape::OpenAi => {
            let mut r = OpenAiError(error).into_response();
            *r.status_mut() = status;
            r
        }
        ErrorShape::Ours => {
            let mut c = error.classify();
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                c.details.request_id = Some(Some(request_id.to_owned()));
            }
            (
                status,
                axum::Json(ErrorBody {
                    error: c.to_detail(),
                }),
            )
                .into_response()
        }
    };
    // The replacement's hidden cause is ours, not the handler's: the log has it above.
    new.extensions_mut().remove::<InternalCause>();
    copy_error_headers(&resp, &mut new);
    new
}

/// Keep `Retry-After` and `Allow` of the replaced response; a 503 always says when to
/// retry.
fn copy_error_headers(old: &Response, new: &mut Response) {
    for h in [header::RETRY_AFTER, header::ALLOW] {
        if let Some(v) = old.headers().get(&h) {
            new.headers_mut().insert(h, v.clone());
        }
    }
    if new.status() == StatusCode::SERVICE_UNAVAILABLE
        && !new.headers().contains_key(header::RETRY_AFTER)
    {
        new.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn norm(p: &str) -> String {
        let req = Request::builder().uri(p).body(Body::empty()).unwrap();
        normalize_prompt_path(req).uri().to_string()
    }

    #[test]
    fn raw_slashes_in_names_are_encoded() {
        assert_eq!(norm("/api/v1/prompts/a/b"), "/api/v1/prompts/a%2Fb");
        assert_eq!(
            norm("/api/v1/prompts/a/b/versions"),
            "/api/v1/prompts/a%2Fb/versions"
        );
        assert_eq!(
            norm("/api/v1/prompts/a/b/versions/3"),
            "/api/v1/prompts/a%2Fb/versions/3"
        );
        assert_eq!(
            norm("/api/v1/prompts/a/b/c/resolve?label=x"),
            "/api/v1/prompts/a%2Fb%2Fc/resolve?label=x"
        );
        assert_eq!(
            norm("/api/v1/prompts/a/b/diff?from=1&to=production"),
            "/api/v1/prompts/a%2Fb/diff?from=1&to=production"
        );
        assert_eq!(
            norm("/api/v1/prompts/a/b/labels/prod"),
            "/api/v1/prompts/a%2Fb/labels/prod"
        );
        assert_eq!(
            norm("/api/v1/prompts/a/b/labels/prod/history"),
            "/api/v1/prompts/a%2Fb/labels/prod/history"
        );
        assert_eq!(
            norm("/api/v1/prompts/a/versions"),
            "/api/v1/prompts/a/versions"
        );
        assert_eq!(
            norm("/api/v1/prompts/a/versions/x"),
            "/api/v1/prompts/a/versions/x"
        );
        assert_eq!(
            norm("/api/v1/prompts/a%2Fb/render"),
            "/api/v1/prompts/a%2Fb/render"
        );
        assert_eq!(norm("/api/v1/runs"), "/api/v1/runs");
    }
}
