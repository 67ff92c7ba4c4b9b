//! `/api/auth/social/*`: sign-in with an OpenID Connect provider (Google, a named
//! issuer) or WeChat.
//!
//! - Browser: `GET …/{provider}/start?redirect_to=/path` sends the browser to the
//!   provider with a signed flow cookie; the provider sends it back to
//!   `GET …/{provider}/callback?code=&state=`, which signs in, sets the refresh cookie
//!   and redirects (303) to `redirect_to`.
//! - Apps that did the redirect themselves: `POST …/{provider}` with the code answers
//!   the tokens like `POST /api/auth/login`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use cookie::SameSite;
use prompt_core::Error;
use prompt_core::wire::ErrorDetails;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::accounts::social::{
    FLOW_AUDIENCE, FLOW_COOKIE, FLOW_TTL, FlowClaims, SocialIdentity, SocialProvider,
    pkce_challenge, wechat,
};
use crate::accounts::tokens::{TOKEN_ISSUER, random_token};
use crate::accounts::web::refresh_cookie;
use crate::accounts::{Accounts, ClientInfo};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::auth::{SessionMode, TokenAnswer, token_answer};
use crate::state::AppState;

/// The path the flow cookie is sent to.
const FLOW_COOKIE_PATH: &str = "/api/auth/social";

/// Query of `GET /api/auth/social/{provider}/start`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Where to go after signing in: a path on this site (`/prompts`), `/` by default.
    pub redirect_to: Option<String>,
}

/// Query of `GET /api/auth/social/{provider}/callback`, as the provider sends it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` sent at the start.
    pub state: Option<String>,
    /// The provider's error (`access_denied` when the person declined).
    pub error: Option<String>,
    /// The provider's explanation of the error.
    pub error_description: Option<String>,
}

/// Body of `POST /api/auth/social/{provider}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The authorization code the provider gave.
    pub code: String,
    /// The `redirect_uri` of the authorization request (OpenID Connect; required
    /// there, unused by WeChat).
    pub redirect_uri: Option<String>,
    /// The PKCE code verifier, if the authorization request had a challenge.
    pub code_verifier: Option<String>,
    /// The `nonce` of the authorization request: the ID token must carry it.
    pub nonce: Option<String>,
    /// Where the refresh token goes (`token`: in the body; `cookie`: only in the
    /// `HttpOnly` cookie).
    #[serde(default)]
    pub session: SessionMode,
}

/// `redirect_to` when it is a path on this site: it starts with one `/`, and holds
/// no backslash or control character (browsers read `/\evil` as `//evil`).
fn check_redirect(redirect_to: Option<&str>) -> Result<String, ApiError> {
    let Some(r) = redirect_to else {
        return Ok("/".to_owned());
    };
    let ok = r.starts_with('/')
        && !r.starts_with("//")
        && r.len() <= 2048
        && !r.chars().any(|c| c == '\\' || c.is_control());
    if ok {
        Ok(r.to_owned())
    } else {
        Err(ApiError::invalid(
            "redirect_to",
            format!("'{r}' is not a path on this site: give one like /prompts"),
        ))
    }
}

/// The callback URL registered with the provider.
fn callback_url(accounts: &Accounts, provider: &str) -> String {
    format!(
        "{}/api/auth/social/{provider}/callback",
        accounts.config.public_url.trim_end_matches('/')
    )
}

fn flow_cookie(value: Option<&str>, secure: bool) -> Result<HeaderValue, ApiError> {
    // Lax: the provider's redirect back is a cross-site top-level GET.
    Ok(crate::accounts::web::http_only_cookie(
        FLOW_COOKIE,
        FLOW_COOKIE_PATH,
        SameSite::Lax,
        value,
        i64::try_from(FLOW_TTL.as_secs()).unwrap_or(i64::MAX),
        secure,
    ))
}

fn flow_from_cookie(headers: &HeaderMap) -> Option<String> {
    crate::accounts::web::read_cookie(headers, FLOW_COOKIE)
}

/// Begin signing in with a provider: redirect (302) to it, with `state`, `nonce` and
/// a PKCE S256 challenge (OpenID Connect) or WeChat's QR-code page, and a 10-minute
/// `HttpOnly` cookie holding the signed flow.
#[utoipa::path(get, path = "/api/auth/social/{provider}/start", tag = "auth", security(()),
    params(("provider" = String, Path, description = "`google`, `wechat` or a configured OpenID Connect name"), StartQuery),
    responses((status = 302, description = "to the provider"), (status = 404, body = ErrorBody, description = "no such provider"),
        (status = 422, body = ErrorBody, description = "redirect_to is not a path on this site")))]
pub async fn start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    ApiQuery(q): ApiQuery<StartQuery>,
) -> ApiResult<Response> {
    let accounts = state.accounts()?;
    let p = accounts.social.get(&provider)?;
    let redirect_to = check_redirect(q.redirect_to.as_deref())?;
    let flow_state = random_token();
    let callback = callback_url(accounts, &provider);
    let (location, nonce, verifier) = match &*p {
        SocialProvider::Oidc(o) => {
            let nonce = random_token();
            let verifier = random_token();
            let url = o
                .authorize_url(&callback, &flow_state, &nonce, &pkce_challenge(&verifier))
                .await?;
            (url, Some(nonce), Some(verifier))
        }
        SocialProvider::WeChat(w) => (
            wechat::authorize_url(w.config(), &callback, &flow_state),
            None,
            None,
        ),
    };
    let iat = Utc::now().timestamp();
    let claims = FlowClaims {
        provider,
        state: flow_state,
        nonce,
        verifier,
        redirect_to,
        iat,
        exp: iat + FLOW_TTL.as_secs() as i64,
        iss: TOKEN_ISSUER.to_owned(),
        aud: FLOW_AUDIENCE.to_owned(),
    };
    let cookie = flow_cookie(
        Some(&accounts.keys.sign_claims(&claims)?),
        accounts.config.secure_cookies,
    )?;
    let mut res = StatusCode::FOUND.into_response();
    let h = res.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location)
            .map_err(|_| Error::internal("the provider's URL is not a header value"))?,
    );
    h.insert(header::SET_COOKIE, cookie);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The provider's error on the callback: 403 when the person declined, else 400;
/// the provider's code in the details.
fn provider_error(provider: &str, error: &str, description: Option<&str>) -> ApiError {
    let why = description.map(|d| format!(": {d}")).unwrap_or_default();
    if error == "access_denied" {
        return ApiError::Forbidden(format!(
            "sign-in with {provider} was declined or cancelled (access_denied{why})"
        ));
    }
    ApiError::BadRequest {
        message: format!("{provider} did not sign you in ({error}{why})"),
        details: Box::new(ErrorDetails {
            provider: Some(provider.to_owned()),
            vendor_code: Some(Some(error.to_owned())),
            reason: description.map(str::to_owned),
            ..ErrorDetails::default()
        }),
    }
}

/// Finish a browser sign-in: check `state` against the flow cookie, exchange the
/// code, sign in (linking or making the account), set the refresh cookie and
/// redirect (303) to the `redirect_to` given at the start.
#[utoipa::path(get, path = "/api/auth/social/{provider}/callback", tag = "auth", security(()),
    params(("provider" = String, Path, description = "the provider"), CallbackQuery),
    responses((status = 303, description = "signed in: to redirect_to, with the refresh cookie"),
        (status = 400, body = ErrorBody, description = "the provider answered an error, or the code is refused by WeChat"),
        (status = 401, body = ErrorBody, description = "state, code or ID token refused"),
        (status = 403, body = ErrorBody, description = "declined at the provider, or sign-up closed"),
        (status = 409, body = ErrorBody, description = "an account has the email, which the provider does not vouch for"),
        (status = 502, body = ErrorBody, description = "the provider failed")))]
pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> ApiResult<Response> {
    let accounts = state.accounts()?;
    let p = accounts.social.get(&provider)?;
    if let Some(error) = &q.error {
        return Err(provider_error(
            &provider,
            error,
            q.error_description.as_deref(),
        ));
    }
    let unauthorized =
        |why: &str| ApiError::Unauthorized(format!("sign-in with {provider} refused: {why}"));
    let token = flow_from_cookie(&headers).ok_or_else(|| {
        unauthorized(
            "no sign-in in progress in this browser (it expired, or began elsewhere): start again",
        )
    })?;
    let flow: FlowClaims = accounts
        .keys
        .verify_claims(&token, FLOW_AUDIENCE, "sign-in flow")
        .await
        .map_err(|_| unauthorized("the sign-in flow expired or is not ours: start again"))?;
    if flow.provider != provider {
        return Err(unauthorized(
            "the sign-in in progress is with another provider: start again",
        ));
    }
    if q.state.as_deref() != Some(flow.state.as_str()) {
        return Err(unauthorized(
            "the state does not match the sign-in in progress",
        ));
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::invalid("code", "the provider sent no code"))?;
    let identity = match &*p {
        SocialProvider::Oidc(o) => {
            o.sign_in(
                code,
                &callback_url(accounts, &provider),
                flow.verifier.as_deref(),
                // The flow always has a nonce; its absence is a token we did not make.
                Some(flow.nonce.as_deref().unwrap_or_default()),
                |n| accounts.social.use_nonce(&provider, n),
            )
            .await?
        }
        SocialProvider::WeChat(w) => w.sign_in(code).await?,
    };
    let signed = accounts.social_sign_in(identity, &client).await?;
    let mut res = StatusCode::SEE_OTHER.into_response();
    let refresh_age = (signed.session.expires_at - Utc::now())
        .num_seconds()
        .max(0);
    let h = res.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&flow.redirect_to)
            .map_err(|_| Error::internal("redirect_to is not a header value"))?,
    );
    h.append(
        header::SET_COOKIE,
        refresh_cookie(
            Some(&signed.refresh_token),
            refresh_age,
            accounts.config.secure_cookies,
        ),
    );
    h.append(
        header::SET_COOKIE,
        flow_cookie(None, accounts.config.secure_cookies)?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Sign in with a code an app got from the provider itself (it did the redirect):
/// OpenID Connect with `code` and `redirect_uri` (and `code_verifier`, `nonce` when
/// it sent them); WeChat with `code`. Answers like `POST /api/auth/login`.
#[utoipa::path(post, path = "/api/auth/social/{provider}", tag = "auth", security(()),
    params(("provider" = String, Path, description = "`google`, `wechat` or a configured OpenID Connect name")),
    request_body = CodeBody,
    responses((status = 200, body = TokenAnswer),
        (status = 400, body = ErrorBody, description = "the code is refused by WeChat"),
        (status = 401, body = ErrorBody, description = "code or ID token refused"),
        (status = 403, body = ErrorBody, description = "sign-up closed"),
        (status = 404, body = ErrorBody, description = "no such provider"),
        (status = 409, body = ErrorBody, description = "an account has the email, which the provider does not vouch for"),
        (status = 502, body = ErrorBody, description = "the provider failed")))]
pub async fn sign_in(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    client: ClientInfo,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<Response> {
    let accounts = state.accounts()?;
    let p = accounts.social.get(&provider)?;
    if body.code.is_empty() {
        return Err(ApiError::invalid("code", "must not be empty"));
    }
    let identity: SocialIdentity = match &*p {
        SocialProvider::Oidc(o) => {
            let redirect_uri = body.redirect_uri.as_deref().ok_or_else(|| {
                ApiError::invalid(
                    "redirect_uri",
                    "required: the redirect_uri of the authorization request",
                )
            })?;
            o.sign_in(
                &body.code,
                redirect_uri,
                body.code_verifier.as_deref(),
                body.nonce.as_deref(),
                |n| accounts.social.use_nonce(&provider, n),
            )
            .await?
        }
        SocialProvider::WeChat(w) => w.sign_in(&body.code).await?,
    };
    let signed = accounts.social_sign_in(identity, &client).await?;
    token_answer(&state, signed, body.session)
}

/// The configured social sign-in providers.
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = SocialProviderList)]
pub struct ProviderList {
    /// Their names, sorted (`google`, `wechat`, OpenID Connect names).
    pub items: Vec<String>,
}

/// The social sign-in providers this server offers (for a sign-in page's buttons).
#[utoipa::path(get, path = "/api/auth/social", tag = "auth", security(()),
    responses((status = 200, body = ProviderList)))]
pub async fn providers(State(state): State<AppState>) -> ApiResult<Json<ProviderList>> {
    Ok(Json(ProviderList {
        items: state.accounts()?.social.names(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::social::oidc;

    #[test]
    fn only_paths_on_this_site_are_redirect_targets() {
        assert_eq!(check_redirect(None).unwrap(), "/");
        assert_eq!(
            check_redirect(Some("/prompts?x=1")).unwrap(),
            "/prompts?x=1"
        );
        for bad in [
            "//evil.example",
            "https://evil.example/",
            "/\\evil.example",
            "evil",
            "",
            "/a\nb",
        ] {
            assert!(check_redirect(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn access_denied_is_403_other_errors_400_with_the_code() {
        let e = provider_error("google", "access_denied", None).classify();
        assert_eq!(e.status, 403);
        let e = provider_error("google", "invalid_scope", Some("nope")).classify();
        assert_eq!(e.status, 400);
        assert_eq!(e.details.vendor_code, Some(Some("invalid_scope".into())));
    }

    #[test]
    fn google_preset_accepts_both_issuer_spellings() {
        let c = oidc::OidcConfig::google(oidc::GOOGLE_ISSUER.into(), "id".into(), "s".into());
        assert_eq!(
            c.accepted_issuers,
            [oidc::GOOGLE_ISSUER, "accounts.google.com"]
        );
    }
}
