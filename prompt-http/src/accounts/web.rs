//! What the people routes share on the HTTP side: the signed-in user extractor, the
//! client's facts, the refresh cookie and the CSRF check of cookie-authenticated calls.
//!
//! - The browser keeps the access token in memory and the refresh token in the cookie
//!   [`REFRESH_COOKIE`]: `HttpOnly` (no script reads it), `SameSite=Strict` (no other
//!   site sends it), `Path=/api/auth` (sent to the auth routes only), `Secure` when the
//!   service is reached over TLS.
//! - A call authenticated by that cookie (refresh, logout) must also carry the header
//!   `X-Requested-With` (any value; a cross-site form cannot set a header, and a
//!   cross-site script must pass a CORS preflight, which only configured origins do),
//!   and an `Origin` header, when sent, must be this service's or a configured one.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};
use uuid::Uuid;

use super::ClientInfo;
use crate::auth::bearer;
use crate::error::ApiError;
use crate::state::AppState;

/// The refresh cookie's name.
pub const REFRESH_COOKIE: &str = "pr_refresh";
/// The header a cookie-authenticated call must carry.
pub const CSRF_HEADER: &str = "x-requested-with";

/// A signed-in user (a valid access token of a live session), without a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInUser {
    /// The user.
    pub id: Uuid,
    /// The session of the token.
    pub session: Uuid,
}

impl FromRequestParts<AppState> for SignedInUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let accounts = state.accounts()?;
        let token = bearer(&parts.headers)?.ok_or_else(|| {
            ApiError::Unauthorized(
                "sign in first: send 'Authorization: Bearer <access token>'".into(),
            )
        })?;
        if !super::tokens::looks_like_jwt(token) {
            return Err(ApiError::Unauthorized(
                "this needs a user's access token, not an API key".into(),
            ));
        }
        let claims = accounts.keys.verify(token).await?;
        match accounts.people.session(claims.sid).await {
            Ok(s) if s.user_id == claims.sub && s.revoked_at.is_none() => {}
            Ok(_) | Err(prompt_core::Error::NotFound { .. }) => {
                return Err(ApiError::Unauthorized(
                    "the session of this token was signed out".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        state.limiter.check(claims.sub).await?;
        Ok(SignedInUser {
            id: claims.sub,
            session: claims.sid,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(200).collect());
        Ok(ClientInfo { ip, user_agent })
    }
}

/// An `HttpOnly` cookie of ours: `name=value` on `path` for `max_age_secs`, or its
/// removal when `value` is `None`; `Secure` when the service is reached over TLS.
pub fn http_only_cookie(
    name: &'static str,
    path: &'static str,
    same_site: SameSite,
    value: Option<&str>,
    max_age_secs: i64,
    secure: bool,
) -> HeaderValue {
    let mut c = Cookie::build((name, value.unwrap_or_default().to_owned()))
        .http_only(true)
        .same_site(same_site)
        .path(path)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(if value.is_some() {
            max_age_secs
        } else {
            0
        }))
        .build();
    if value.is_none() {
        c.make_removal();
    }
    // Our values are base64url or JWTs: always a valid header.
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of our cookie `name` in the request, if any and not empty.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}

/// The `Set-Cookie` value holding `token` (or clearing the cookie when `None`).
pub fn refresh_cookie(token: Option<&str>, max_age_secs: i64, secure: bool) -> HeaderValue {
    http_only_cookie(
        REFRESH_COOKIE,
        "/api/auth",
        SameSite::Strict,
        token,
        max_age_secs,
        secure,
    )
}

/// The refresh token in the request's cookie, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    read_cookie(headers, REFRESH_COOKIE)
}

/// Refuse a cookie-authenticated call that could be a cross-site request forgery.
pub fn check_csrf(headers: &HeaderMap, allowed_origins: &[String]) -> Result<(), ApiError> {
    if !headers.contains_key(CSRF_HEADER) {
        return Err(ApiError::Forbidden(
            "a call authenticated by the session cookie must send the header 'X-Requested-With' (CSRF protection)".into(),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let same = origin
            .split_once("://")
            .is_some_and(|(_, rest)| !host.is_empty() && rest == host);
        if !same && !allowed_origins.iter().any(|o| o == origin) {
            return Err(ApiError::Forbidden(format!(
                "origin '{origin}' may not use the session cookie (CSRF protection)"
            )));
        }
    }
    Ok(())
}
