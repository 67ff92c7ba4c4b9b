//! `/api/auth/*`: sign-up, sign-in, refresh, sign-out, sessions, email verification and
//! password reset.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use prompt_core::User;
use prompt_core::domain::now;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::web::{SignedInUser, check_csrf, cookie_token, refresh_cookie};
use crate::accounts::{ClientInfo, SignedIn, actor_of};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// How the client keeps its refresh token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// In the answer's body (API clients, the CLI, Python).
    #[default]
    Token,
    /// Only in an `HttpOnly` cookie (browsers).
    Cookie,
}

/// The email fields' schema: what `accounts::config::check_email` accepts (3 to 254
/// characters once trimmed, one `@` with text on both sides, a dot inside the domain,
/// no space or control character).
fn email_schema() -> utoipa::openapi::schema::Object {
    const CH: &str = r"[^\s@\x00-\x1f\x7f-\x9f]";
    const DOMAIN_END: &str = r"[^\s@.\x00-\x1f\x7f-\x9f]";
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(3))
        .max_length(Some(254))
        .pattern(Some(format!(
            r"^\s*{CH}+@{DOMAIN_END}{CH}*\.{CH}*{DOMAIN_END}\s*$"
        )))
        .build()
}

/// Body of `POST /api/auth/register`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// Email address (surrounding spaces are ignored).
    #[schema(schema_with = email_schema)]
    pub email: String,
    /// Password: at least 10 characters, not a common or guessable one.
    #[schema(min_length = 10)]
    pub password: String,
    /// Display name (the email's local part by default).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// An invitation token, to join its organization (required when sign-up is
    /// invite-only).
    pub invitation: Option<String>,
}

/// Answer of `POST /api/auth/register`: the same whether or not the email was free.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// What happens next.
    pub message: String,
}

/// Register. Always `202` with the same body for a valid request, whether or not the
/// email already has an account (which is told by email instead): the answer never
/// reveals who has an account. Then sign in with `POST /api/auth/login`.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", security(()),
    request_body = RegisterBody,
    responses((status = 202, body = Registered), (status = 403, body = ErrorBody, description = "sign-up closed or invite-only"),
        (status = 422, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    let accounts = state.accounts()?;
    accounts
        .register(
            &body.email,
            &body.password,
            body.name.as_deref(),
            body.invitation.as_deref(),
            &client,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Registered {
            message: "if this email can be used, the account is ready: sign in, and follow the link sent to the address to verify it".into(),
        }),
    ))
}

/// Body of `POST /api/auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// Email address (surrounding spaces are ignored).
    #[schema(schema_with = email_schema)]
    pub email: String,
    /// Password.
    #[schema(min_length = 1, max_length = 256)]
    pub password: String,
    /// Where the refresh token goes (`token`: in the body; `cookie`: only in the
    /// `HttpOnly` cookie).
    #[serde(default)]
    pub session: SessionMode,
}

/// Tokens after a sign-in or a refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAnswer {
    /// The access token (JWT): `Authorization: Bearer …`, with `X-Project` on project
    /// routes.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The refresh token, single use (absent in cookie mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The session.
    pub session_id: Uuid,
    /// The user.
    pub user: User,
}

/// The answer to a sign-in: the tokens in the body, the refresh token also (cookie
/// mode: only) in the `HttpOnly` cookie.
pub(crate) fn token_answer(
    state: &AppState,
    signed: SignedIn,
    mode: SessionMode,
) -> ApiResult<Response> {
    let accounts = state.accounts()?;
    let expires_in = (signed.access_expires_at - now()).num_seconds().max(0);
    let refresh_age = (signed.session.expires_at - now()).num_seconds().max(0);
    let body = TokenAnswer {
        access_token: signed.access_token,
        token_type: "Bearer".into(),
        expires_in,
        expires_at: signed.access_expires_at,
        refresh_token: (mode == SessionMode::Token).then(|| signed.refresh_token.clone()),
        session_id: signed.session.id,
        user: signed.user,
    };
    let mut res = Json(body).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store"
            .parse()
            .map_err(|_| ApiError::Core(prompt_core::Error::internal("header")))?,
    );
    if mode == SessionMode::Cookie {
        res.headers_mut().insert(
            header::SET_COOKIE,
            refresh_cookie(
                Some(&signed.refresh_token),
                refresh_age,
                accounts.config.secure_cookies,
            ),
        );
    }
    Ok(res)
}

/// Sign in with email and password. A wrong password and an unknown email answer the
/// same 401 after the same work; repeated failures lock the account and the client
/// address out for a growing time (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", security(()),
    request_body = LoginBody,
    responses((status = 200, body = TokenAnswer), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let accounts = state.accounts()?;
    let signed = accounts.login(&body.email, &body.password, &client).await?;
    token_answer(&state, signed, body.session)
}

/// Body of `POST /api/auth/refresh` and `/api/auth/logout`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    /// The refresh token; omit it to use the session cookie (then send
    /// `X-Requested-With`).
    pub refresh_token: Option<String>,
}

/// The refresh token of a request: the body's, else the cookie's (CSRF-checked).
fn presented_token(
    state: &AppState,
    headers: &HeaderMap,
    body: &RefreshBody,
) -> ApiResult<(String, SessionMode)> {
    if let Some(t) = &body.refresh_token {
        return Ok((t.clone(), SessionMode::Token));
    }
    let token = cookie_token(headers).ok_or_else(|| {
        ApiError::Unauthorized(
            "no refresh token: send {\"refresh_token\": …} or the session cookie".into(),
        )
    })?;
    check_csrf(headers, &state.accounts()?.config.allowed_origins)?;
    Ok((token, SessionMode::Cookie))
}

fn optional_body(bytes: &[u8]) -> ApiResult<RefreshBody> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(RefreshBody::default())
    } else {
        // A JSON `null` is no body too.
        crate::extract::parse_json::<Option<RefreshBody>>(bytes).map(Option::unwrap_or_default)
    }
}

/// Exchange a refresh token for new tokens. The token is single use: the answer holds
/// its successor; presenting a used one again signs the whole session out.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", security(()),
    request_body = RefreshBody,
    responses((status = 200, body = TokenAnswer), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "cookie without the CSRF header")))]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = optional_body(&body)?;
    let (token, mode) = presented_token(&state, &headers, &body)?;
    let signed = state.accounts()?.refresh(&token, &client).await?;
    token_answer(&state, signed, mode)
}

fn cleared(state: &AppState) -> ApiResult<Response> {
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        refresh_cookie(None, 0, state.accounts()?.config.secure_cookies),
    );
    Ok(res)
}

/// Sign out one session: the one of the refresh token (body or cookie), or else the one
/// of the bearer access token. Always 204 (an unknown token is already signed out).
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(()),
    request_body = Option<RefreshBody>, responses((status = 204)))]
pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let accounts = state.accounts()?;
    let body = optional_body(&body)?;
    let session = if body.refresh_token.is_some() || cookie_token(&headers).is_some() {
        let (token, _) = presented_token(&state, &headers, &body)?;
        accounts
            .people
            .session_by_token(&crate::accounts::tokens::hash_token(&token))
            .await
            .ok()
    } else if let Some(t) = crate::auth::bearer(&headers)?
        && crate::accounts::tokens::looks_like_jwt(t)
    {
        let claims = accounts.keys.verify(t).await?;
        accounts.people.session(claims.sid).await.ok()
    } else {
        None
    };
    if let Some(s) = session {
        let _ = accounts.people.revoke_session(s.user_id, s.id, now()).await;
        accounts.access.clear();
        accounts
            .audit(
                None,
                None,
                Some(s.user_id),
                &format!("user:{}", s.user_id),
                "auth.logout",
                &client,
                json!({"session": s.id}),
            )
            .await;
    }
    cleared(&state)
}

/// Sign out every session of the signed-in user.
#[utoipa::path(post, path = "/api/auth/logout-all", tag = "auth", security(("access_token" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout_all(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
) -> ApiResult<Response> {
    let accounts = state.accounts()?;
    let n = accounts.people.revoke_sessions(user.id, now()).await?;
    accounts.access.clear();
    let u = accounts.people.user_by_id(user.id).await?;
    accounts
        .audit(
            None,
            None,
            Some(user.id),
            &actor_of(&u),
            "auth.logout_all",
            &client,
            json!({"sessions": n}),
        )
        .await;
    cleared(&state)
}

/// A session as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The session.
    #[serde(flatten)]
    pub session: prompt_core::AuthSession,
    /// Whether the calling token belongs to it.
    pub current: bool,
}

/// The signed-in user's live sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Sessions.
    pub items: Vec<SessionView>,
}

/// The signed-in user's live sessions.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("access_token" = [])),
    responses((status = 200, body = SessionList), (status = 401, body = ErrorBody)))]
pub async fn sessions(
    State(state): State<AppState>,
    user: SignedInUser,
) -> ApiResult<Json<SessionList>> {
    let list = state
        .accounts()?
        .people
        .list_sessions(user.id, now())
        .await?;
    Ok(Json(SessionList {
        items: list
            .into_iter()
            .map(|s| SessionView {
                current: s.id == user.session,
                session: s,
            })
            .collect(),
    }))
}

/// Sign out one of the signed-in user's sessions.
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth", security(("access_token" = [])),
    params(("id" = Uuid, Path, description = "session id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::invalid("id", format!("'{id}' is not a session id (a UUID)")))?;
    let accounts = state.accounts()?;
    accounts.people.revoke_session(user.id, id, now()).await?;
    accounts.access.clear();
    accounts
        .audit(
            None,
            None,
            Some(user.id),
            &format!("user:{}", user.id),
            "auth.session_revoked",
            &client,
            json!({"session": id}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/auth/verify-email`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The token from the email.
    pub token: String,
}

/// Verify an email address with the token sent to it.
#[utoipa::path(post, path = "/api/auth/verify-email", tag = "auth", security(()),
    request_body = TokenBody,
    responses((status = 200, body = User), (status = 404, body = ErrorBody, description = "unknown, used or expired token")))]
pub async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        state.accounts()?.verify_email(&body.token, &client).await?,
    ))
}

/// Send the signed-in user a new verification link.
#[utoipa::path(post, path = "/api/auth/verify-email/send", tag = "auth", security(("access_token" = [])),
    responses((status = 202), (status = 401, body = ErrorBody)))]
pub async fn send_verification(
    State(state): State<AppState>,
    user: SignedInUser,
) -> ApiResult<StatusCode> {
    let accounts = state.accounts()?;
    let u = accounts.people.user_by_id(user.id).await?;
    if !u.email_verified {
        accounts.send_verification(&u).await?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// Body of `POST /api/auth/password-reset`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// The account's email (surrounding spaces are ignored).
    #[schema(schema_with = email_schema)]
    pub email: String,
}

/// Ask for a password-reset link. Always 202: the answer does not tell whether the
/// email has an account.
#[utoipa::path(post, path = "/api/auth/password-reset", tag = "auth", security(()),
    request_body = ResetBody, responses((status = 202), (status = 422, body = ErrorBody)))]
pub async fn password_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<ResetBody>,
) -> ApiResult<StatusCode> {
    state
        .accounts()?
        .request_reset(&body.email, &client)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Body of `POST /api/auth/password-reset/confirm`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmBody {
    /// The token from the email (or from `prompt-registry users create`).
    pub token: String,
    /// The new password: at least 10 characters, not a common or guessable one.
    #[schema(min_length = 10)]
    pub password: String,
}

/// Set a new password with a reset or set-password token; signs out every session.
#[utoipa::path(post, path = "/api/auth/password-reset/confirm", tag = "auth", security(()),
    request_body = ResetConfirmBody,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn password_reset_confirm(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<ResetConfirmBody>,
) -> ApiResult<StatusCode> {
    state
        .accounts()?
        .confirm_reset(&body.token, &body.password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
