//! WeChat website login (网站应用微信登录): the browser goes to `qrconnect`, WeChat
//! sends it back with a `code`, and
//!
//! 1. `GET {base}/sns/oauth2/access_token?appid=&secret=&code=&grant_type=authorization_code`
//!    → `{"access_token", "expires_in", "refresh_token", "openid", "scope", "unionid"?}`;
//! 2. `GET {base}/sns/userinfo?access_token=&openid=`
//!    → `{"openid", "nickname", "sex", "province", "city", "country", "headimgurl",
//!    "privilege": [], "unionid"?}`.
//!
//! Both answer HTTP 200 with `{"errcode": 40029, "errmsg": "invalid code"}` when they
//! fail, so every body is checked for `errcode` first ([`parse_wechat_error`]).
//!
//! The subject is the `unionid` when WeChat gives one (stable across the apps of one
//! WeChat Open Platform account), else the `openid` (per app: changing the app id
//! changes every subject). WeChat gives no email, so new users get a placeholder
//! address at `.invalid` (see [`super::placeholder_email`]) and are never linked by
//! email.
//!
//! The app secret travels in the first URL's query: transport errors are reported
//! without their URL, and URLs are never logged.

use prompt_core::wire::ErrorDetails;
use prompt_core::{Error, ProviderErrorKind, Result};
use serde::Deserialize;

use super::{SocialIdentity, provider_failed, transport_failed};
use crate::error::ApiError;

/// The provider name of WeChat login.
pub const NAME: &str = "wechat";

/// WeChat's API base.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// WeChat's QR-code sign-in page for websites.
pub const DEFAULT_AUTHORIZE_URL: &str = "https://open.weixin.qq.com/connect/qrconnect";

/// WeChat login settings.
#[derive(Clone, PartialEq, Eq)]
pub struct WeChatConfig {
    /// The provider name (`wechat`).
    pub name: String,
    /// The website application's AppID.
    pub appid: String,
    /// The website application's AppSecret.
    pub secret: String,
    /// The API base (`https://api.weixin.qq.com`).
    pub api_base: String,
    /// The QR-code sign-in page (`https://open.weixin.qq.com/connect/qrconnect`).
    pub authorize_url: String,
}

impl std::fmt::Debug for WeChatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatConfig")
            .field("name", &self.name)
            .field("appid", &self.appid)
            .field("secret", &"<hidden>")
            .field("api_base", &self.api_base)
            .field("authorize_url", &self.authorize_url)
            .finish()
    }
}

/// The answer of `sns/oauth2/access_token`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessToken {
    /// The user's access token (for `sns/userinfo`).
    pub access_token: String,
    /// The user's id in this app.
    pub openid: String,
    /// The user's id across the Open Platform account's apps, when bound.
    #[serde(default)]
    pub unionid: Option<String>,
}

/// The answer of `sns/userinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    /// The user's id in this app.
    pub openid: String,
    /// The display name.
    #[serde(default)]
    pub nickname: Option<String>,
    /// The user's id across the Open Platform account's apps, when bound.
    #[serde(default)]
    pub unionid: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// The URL of step 1 (it holds the app secret: never log it).
pub fn access_token_url(config: &WeChatConfig, code: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("appid", &config.appid)
        .append_pair("secret", &config.secret)
        .append_pair("code", code)
        .append_pair("grant_type", "authorization_code")
        .finish();
    format!(
        "{}/sns/oauth2/access_token?{query}",
        config.api_base.trim_end_matches('/')
    )
}

/// The URL of step 2.
pub fn userinfo_url(config: &WeChatConfig, token: &AccessToken) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("access_token", &token.access_token)
        .append_pair("openid", &token.openid)
        .finish();
    format!(
        "{}/sns/userinfo?{query}",
        config.api_base.trim_end_matches('/')
    )
}

/// The URL the browser is sent to. WeChat wants the parameters in this order and the
/// `#wechat_redirect` fragment.
pub fn authorize_url(config: &WeChatConfig, redirect_uri: &str, state: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("appid", &config.appid)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "snsapi_login")
        .append_pair("state", state)
        .finish();
    format!("{}?{query}#wechat_redirect", config.authorize_url)
}

/// A WeChat `errcode` as our error:
///
/// - the code is bad, used or missing (40029, 40163, 41008): 400 — start again;
/// - anything else (a wrong app secret 40001/40125, a bad appid 40013, an openid or
///   token WeChat itself gave that it now refuses 40003/40014/42001, rate limits
///   45009/45011, busy -1): 502, WeChat failed us.
///
/// Both carry `provider: wechat`, `vendor_code: <errcode>` and WeChat's `errmsg`.
pub fn parse_wechat_error(step: &str, errcode: i64, errmsg: &str) -> ApiError {
    let message = format!("WeChat refused {step}: errcode {errcode}: {errmsg}");
    match errcode {
        40029 | 40163 | 41008 => ApiError::BadRequest {
            message: format!("{message} (sign in again)"),
            details: Box::new(ErrorDetails {
                provider: Some(NAME.to_owned()),
                vendor_code: Some(Some(errcode.to_string())),
                reason: Some(errmsg.to_owned()),
                ..ErrorDetails::default()
            }),
        },
        _ => {
            let kind = match errcode {
                40001 | 40125 | 40013 | 41004 => ProviderErrorKind::Auth,
                45009 | 45011 => ProviderErrorKind::RateLimited,
                -1 => ProviderErrorKind::Overloaded,
                _ => ProviderErrorKind::InvalidRequest,
            };
            provider_failed(NAME, kind, Some(200), Some(errcode.to_string()), message).into()
        }
    }
}

/// Read an answer of WeChat: its `errcode` body, else `T`.
pub fn parse_response<T: serde::de::DeserializeOwned>(
    step: &str,
    status: u16,
    bytes: &[u8],
) -> Result<T, ApiError> {
    if let Ok(e) = serde_json::from_slice::<ErrorBody>(bytes)
        && e.errcode != 0
    {
        return Err(parse_wechat_error(step, e.errcode, &e.errmsg));
    }
    if !(200..300).contains(&status) {
        return Err(provider_failed(
            NAME,
            ProviderErrorKind::Server,
            Some(status),
            None,
            format!("WeChat answered {status} to {step}"),
        )
        .into());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        provider_failed(
            NAME,
            ProviderErrorKind::MalformedResponse,
            Some(status),
            None,
            format!("WeChat's answer to {step} cannot be read: {e}"),
        )
        .into()
    })
}

/// WeChat login over an HTTP client.
#[derive(Debug)]
pub struct WeChatProvider {
    config: WeChatConfig,
    http: reqwest::Client,
}

impl WeChatProvider {
    /// A provider over `http`.
    pub fn new(config: WeChatConfig, http: reqwest::Client) -> Self {
        WeChatProvider { config, http }
    }

    /// Its settings.
    pub fn config(&self) -> &WeChatConfig {
        &self.config
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        step: &str,
        url: &str,
    ) -> Result<T, ApiError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| transport_failed(NAME, e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| transport_failed(NAME, e))?;
        parse_response(step, status, &bytes)
    }

    /// Exchange `code` and read who signed in.
    pub async fn sign_in(&self, code: &str) -> Result<SocialIdentity, ApiError> {
        if code.is_empty() || code.len() > 512 {
            return Err(Error::invalid("code", "must be 1 to 512 characters").into());
        }
        let token: AccessToken = self
            .get(
                "the code (sns/oauth2/access_token)",
                &access_token_url(&self.config, code),
            )
            .await?;
        let info: UserInfo = self
            .get(
                "the user info (sns/userinfo)",
                &userinfo_url(&self.config, &token),
            )
            .await?;
        if info.openid != token.openid {
            return Err(provider_failed(
                NAME,
                ProviderErrorKind::MalformedResponse,
                Some(200),
                None,
                "sns/userinfo answered for another openid",
            )
            .into());
        }
        let subject = token.unionid.or(info.unionid).unwrap_or(token.openid);
        Ok(SocialIdentity {
            provider: self.config.name.clone(),
            subject,
            email: None,
            email_verified: false,
            name: info.nickname.filter(|n| !n.trim().is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WeChatConfig {
        WeChatConfig {
            name: NAME.into(),
            appid: "wx123".into(),
            secret: "s3cret".into(),
            api_base: DEFAULT_API_BASE.into(),
            authorize_url: DEFAULT_AUTHORIZE_URL.into(),
        }
    }

    #[test]
    fn urls_are_wechats() {
        let c = config();
        assert_eq!(
            access_token_url(&c, "CODE"),
            "https://api.weixin.qq.com/sns/oauth2/access_token?appid=wx123&secret=s3cret&code=CODE&grant_type=authorization_code"
        );
        assert_eq!(
            authorize_url(
                &c,
                "https://reg.example.com/api/auth/social/wechat/callback",
                "ST"
            ),
            "https://open.weixin.qq.com/connect/qrconnect?appid=wx123&redirect_uri=https%3A%2F%2Freg.example.com%2Fapi%2Fauth%2Fsocial%2Fwechat%2Fcallback&response_type=code&scope=snsapi_login&state=ST#wechat_redirect"
        );
    }

    #[test]
    fn an_errcode_body_with_status_200_is_an_error_with_the_code() {
        let e = parse_response::<AccessToken>(
            "x",
            200,
            br#"{"errcode":40029,"errmsg":"invalid code"}"#,
        )
        .unwrap_err()
        .classify();
        assert_eq!(e.status, 400);
        assert_eq!(e.details.vendor_code, Some(Some("40029".into())));
        assert_eq!(e.details.provider.as_deref(), Some("wechat"));
        let e =
            parse_response::<UserInfo>("x", 200, br#"{"errcode":40003,"errmsg":"invalid openid"}"#)
                .unwrap_err()
                .classify();
        assert_eq!(e.status, 502);
        assert_eq!(e.details.vendor_code, Some(Some("40003".into())));
    }

    #[test]
    fn a_token_answer_parses() {
        let t: AccessToken = parse_response(
            "x",
            200,
            br#"{"access_token":"AT","expires_in":7200,"refresh_token":"RT","openid":"o1","scope":"snsapi_login","unionid":"u1"}"#,
        )
        .unwrap();
        assert_eq!(t.unionid.as_deref(), Some("u1"));
    }
}
