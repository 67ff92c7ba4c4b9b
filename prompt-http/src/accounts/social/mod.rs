//! Social sign-in: OpenID Connect providers (Google as a preset, any other issuer by
//! name) and WeChat website login. (The providers' wire formats are in `oidc.rs` and
//! `wechat.rs`; this file is the shared account resolution and configuration, one
//! job, hence a little over 600 lines.)
//!
//! - **Configuration** is data ([`SocialProviderConfig`]), read from the environment by
//!   [`SocialProviderConfig::from_env`]; issuers and API bases are configurable so that
//!   tests run against local identity providers speaking the real wire formats.
//! - **The browser flow keeps no server state**: `start` puts the `state`, the
//!   `nonce`, the PKCE verifier, the provider and where to go afterwards in a JWT
//!   signed with our own signing keys ([`Keys::sign_claims`], audience
//!   [`FLOW_AUDIENCE`]) and sets it as a short-lived `HttpOnly`, `SameSite=Lax` cookie;
//!   the callback checks the provider's `state` against it. Any instance on the same
//!   database can finish a flow another began.
//! - **Account resolution** ([`Accounts::social_sign_in`]): a linked identity signs its
//!   user in; otherwise an email the provider says is verified links to the user who
//!   has it; an email it does not vouch for never takes over an account (409); else
//!   a new user is made, when the sign-up policy allows.
//!
//! [`Keys::sign_claims`]: super::tokens::Keys::sign_claims

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prompt_core::domain::{NewUser, SocialAccount, User, now};
use prompt_core::{Error, ProviderError, ProviderErrorKind, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Accounts, ClientInfo, SignedIn, SignupPolicy, actor_of, check_email, check_name};
use crate::error::ApiError;

pub mod oidc;
pub mod wechat;

pub use oidc::{OidcConfig, OidcProvider};
pub use wechat::{WeChatConfig, WeChatProvider};

/// The audience of the signed flow cookie: never that of an access token.
pub const FLOW_AUDIENCE: &str = "prompt-registry/social-flow";

/// The name of the cookie holding a browser flow's signed state.
pub const FLOW_COOKIE: &str = "pr_social_flow";

/// How long a browser flow may take, from `start` to the callback.
pub const FLOW_TTL: Duration = Duration::from_secs(10 * 60);

/// The domain of the placeholder email of users from providers that give none
/// (WeChat): `.invalid` is reserved (RFC 2606), so such an address can never
/// receive mail nor belong to anyone.
pub const PLACEHOLDER_EMAIL_DOMAIN: &str = "invalid";

/// How long an ID token's `nonce` is remembered as used. Longer than an ID token
/// from the token endpoint is ever accepted for (its `exp`, plus leeway).
const NONCE_TTL: Duration = Duration::from_secs(2 * 3600);

/// How many used nonces are remembered at most (per instance).
const NONCE_CAPACITY: u64 = 100_000;

/// A configured social provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocialProviderConfig {
    /// An OpenID Connect provider (Google or a named one).
    Oidc(OidcConfig),
    /// WeChat website login (`wechat`).
    WeChat(WeChatConfig),
}

impl SocialProviderConfig {
    /// The provider's name, as in the routes (`/api/auth/social/{name}`) and in
    /// linked accounts.
    pub fn name(&self) -> &str {
        match self {
            SocialProviderConfig::Oidc(c) => &c.name,
            SocialProviderConfig::WeChat(c) => &c.name,
        }
    }

    /// The providers configured by the environment, read with `lookup` (pass
    /// `|k| std::env::var(k).ok()`); an empty list when none is. An error names the
    /// variable at fault.
    ///
    /// - Google: `PROMPT_REGISTRY_GOOGLE_CLIENT_ID` and `…_CLIENT_SECRET` (both or
    ///   neither), `PROMPT_REGISTRY_GOOGLE_ISSUER` (default
    ///   `https://accounts.google.com`).
    /// - Any OpenID Connect issuer: `PROMPT_REGISTRY_OIDC_PROVIDERS=name1,name2`
    ///   (lower-case letters, digits and `-`), then for each
    ///   `PROMPT_REGISTRY_OIDC_<NAME>_ISSUER`, `…_CLIENT_ID`, `…_CLIENT_SECRET` and
    ///   optionally `…_SCOPES` (space- or comma-separated; `openid` is always asked
    ///   for), where `<NAME>` is the name upper-cased with `-` as `_`.
    /// - WeChat: `PROMPT_REGISTRY_WECHAT_APPID` and `…_SECRET` (both or neither),
    ///   `PROMPT_REGISTRY_WECHAT_API_BASE` (default `https://api.weixin.qq.com`),
    ///   `PROMPT_REGISTRY_WECHAT_AUTHORIZE_URL` (default
    ///   `https://open.weixin.qq.com/connect/qrconnect`).
    ///
    /// The callback URL to register with each provider is
    /// `{public URL}/api/auth/social/{name}/callback`.
    pub fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<Vec<Self>, String> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut out = Vec::new();

        let pair = |id_var: &str, secret_var: &str| -> std::result::Result<_, String> {
            match (get(id_var), get(secret_var)) {
                (Some(id), Some(secret)) => Ok(Some((id, secret))),
                (None, None) => Ok(None),
                (Some(_), None) => Err(format!("{secret_var} must be set when {id_var} is")),
                (None, Some(_)) => Err(format!("{id_var} must be set when {secret_var} is")),
            }
        };

        if let Some((client_id, client_secret)) = pair(
            "PROMPT_REGISTRY_GOOGLE_CLIENT_ID",
            "PROMPT_REGISTRY_GOOGLE_CLIENT_SECRET",
        )? {
            let issuer = get("PROMPT_REGISTRY_GOOGLE_ISSUER")
                .unwrap_or_else(|| oidc::GOOGLE_ISSUER.to_owned());
            check_url("PROMPT_REGISTRY_GOOGLE_ISSUER", &issuer)?;
            out.push(SocialProviderConfig::Oidc(OidcConfig::google(
                issuer,
                client_id,
                client_secret,
            )));
        }

        if let Some(list) = get("PROMPT_REGISTRY_OIDC_PROVIDERS") {
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                check_provider_name("PROMPT_REGISTRY_OIDC_PROVIDERS", name)?;
                if out.iter().any(|p| p.name() == name) {
                    return Err(format!(
                        "PROMPT_REGISTRY_OIDC_PROVIDERS: '{name}' is listed twice or is the name of a preset"
                    ));
                }
                let prefix = format!(
                    "PROMPT_REGISTRY_OIDC_{}_",
                    name.to_ascii_uppercase().replace('-', "_")
                );
                let var = |suffix: &str| format!("{prefix}{suffix}");
                let required = |suffix: &str| {
                    get(&var(suffix)).ok_or_else(|| {
                        format!("{} must be set for the OIDC provider '{name}'", var(suffix))
                    })
                };
                let issuer = required("ISSUER")?;
                check_url(&var("ISSUER"), &issuer)?;
                let mut scopes: Vec<String> = get(&var("SCOPES"))
                    .map(|s| {
                        s.split([' ', ','])
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_else(|| {
                        oidc::DEFAULT_SCOPES
                            .iter()
                            .map(|s| (*s).to_owned())
                            .collect()
                    });
                if !scopes.iter().any(|s| s == "openid") {
                    scopes.insert(0, "openid".to_owned());
                }
                out.push(SocialProviderConfig::Oidc(OidcConfig {
                    name: name.to_owned(),
                    issuer: issuer.clone(),
                    accepted_issuers: vec![issuer],
                    client_id: required("CLIENT_ID")?,
                    client_secret: required("CLIENT_SECRET")?,
                    scopes,
                }));
            }
        }

        if let Some((appid, secret)) = pair(
            "PROMPT_REGISTRY_WECHAT_APPID",
            "PROMPT_REGISTRY_WECHAT_SECRET",
        )? {
            let api_base = get("PROMPT_REGISTRY_WECHAT_API_BASE")
                .unwrap_or_else(|| wechat::DEFAULT_API_BASE.to_owned());
            check_url("PROMPT_REGISTRY_WECHAT_API_BASE", &api_base)?;
            let authorize_url = get("PROMPT_REGISTRY_WECHAT_AUTHORIZE_URL")
                .unwrap_or_else(|| wechat::DEFAULT_AUTHORIZE_URL.to_owned());
            check_url("PROMPT_REGISTRY_WECHAT_AUTHORIZE_URL", &authorize_url)?;
            out.push(SocialProviderConfig::WeChat(WeChatConfig {
                name: wechat::NAME.to_owned(),
                appid,
                secret,
                api_base,
                authorize_url,
            }));
        }
        Ok(out)
    }
}

/// A provider name: 1–32 lower-case ASCII letters, digits or `-`, starting with a
/// letter; `wechat` is taken by the WeChat preset.
fn check_provider_name(var: &str, name: &str) -> std::result::Result<(), String> {
    let ok = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(format!(
            "{var}: '{name}' is not a provider name (1 to 32 lower-case letters, digits or '-', starting with a letter)"
        ));
    }
    if name == wechat::NAME {
        return Err(format!("{var}: '{name}' is reserved for WeChat login"));
    }
    Ok(())
}

fn check_url(var: &str, url: &str) -> std::result::Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(()),
        _ => Err(format!("{var}: '{url}' is not an http(s) URL")),
    }
}

/// What a provider says about the person who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialIdentity {
    /// The provider's configured name.
    pub provider: String,
    /// The provider's stable id of the person: OIDC `sub`; WeChat `unionid`, else
    /// `openid`.
    pub subject: String,
    /// The email the provider gave, if any.
    pub email: Option<String>,
    /// Whether the provider says the email is the person's (`email_verified: true`).
    pub email_verified: bool,
    /// A display name, if the provider gave one.
    pub name: Option<String>,
}

/// The signed state of a browser flow (the flow cookie's claims).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowClaims {
    /// The provider the flow is with.
    pub provider: String,
    /// The `state` sent to the provider.
    pub state: String,
    /// The `nonce` sent to the provider (OIDC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The PKCE code verifier (OIDC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
    /// Where to send the browser after signing in (a path on this site).
    pub redirect_to: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
    /// Issuer: [`super::tokens::TOKEN_ISSUER`].
    pub iss: String,
    /// Audience: [`FLOW_AUDIENCE`].
    pub aud: String,
}

/// The PKCE S256 challenge of `verifier`: base64url(SHA-256(verifier)), unpadded.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A configured provider, ready to call.
#[derive(Debug)]
pub enum SocialProvider {
    /// OpenID Connect (boxed: its caches make it much larger than WeChat's).
    Oidc(Box<OidcProvider>),
    /// WeChat.
    WeChat(WeChatProvider),
}

/// The configured providers by name, with the HTTP client they share and the
/// nonces already used.
#[derive(Debug, Clone)]
pub struct SocialProviders {
    providers: Arc<HashMap<String, Arc<SocialProvider>>>,
    used_nonces: moka::sync::Cache<String, ()>,
}

impl Default for SocialProviders {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl SocialProviders {
    /// The providers of `configs`, sharing one HTTP client (10 s connect, 20 s total).
    pub fn new(configs: &[SocialProviderConfig]) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_default();
        let providers = configs
            .iter()
            .map(|c| {
                let p = match c {
                    SocialProviderConfig::Oidc(c) => {
                        SocialProvider::Oidc(Box::new(OidcProvider::new(c.clone(), http.clone())))
                    }
                    SocialProviderConfig::WeChat(c) => {
                        SocialProvider::WeChat(WeChatProvider::new(c.clone(), http.clone()))
                    }
                };
                (c.name().to_owned(), Arc::new(p))
            })
            .collect();
        SocialProviders {
            providers: Arc::new(providers),
            // Bounded and per instance: a nonce evicted early (over capacity) or used
            // on another instance is not seen as replayed. The flow cookie binds a
            // browser flow's nonce, and codes are single use at the provider, so this
            // is a second line of defence.
            used_nonces: moka::sync::Cache::builder()
                .max_capacity(NONCE_CAPACITY)
                .time_to_live(NONCE_TTL)
                .build(),
        }
    }

    /// The provider of that name, or `NotFound`.
    pub fn get(&self, name: &str) -> Result<Arc<SocialProvider>> {
        self.providers.get(name).cloned().ok_or_else(|| {
            Error::not_found(format!(
                "social sign-in provider '{name}' (not configured on this server)"
            ))
        })
    }

    /// The names of the configured providers, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.providers.keys().cloned().collect();
        names.sort();
        names
    }

    /// Record `nonce` as used: `false` when it was already.
    pub fn use_nonce(&self, provider: &str, nonce: &str) -> bool {
        self.used_nonces
            .entry(format!("{provider}\u{0}{nonce}"))
            .or_insert(())
            .is_fresh()
    }
}

/// A provider that failed or answered what we cannot use: 502.
fn provider_failed(
    provider: &str,
    kind: ProviderErrorKind,
    status: Option<u16>,
    vendor_code: Option<String>,
    message: impl Into<String>,
) -> Error {
    ProviderError {
        status,
        vendor_code,
        ..ProviderError::new(kind, provider, message)
    }
    .into()
}

/// A transport failure, without the URL (a WeChat URL carries the app secret).
fn transport_failed(provider: &str, e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        ProviderErrorKind::Timeout
    } else {
        ProviderErrorKind::Connection
    };
    provider_failed(provider, kind, None, None, e.without_url().to_string())
}

/// The user's email when the provider gave none: `<subject>@<provider>.invalid`.
pub fn placeholder_email(provider: &str, subject: &str) -> String {
    format!("{subject}@{provider}.{PLACEHOLDER_EMAIL_DOMAIN}")
}

impl Accounts {
    /// Sign in with an identity a provider vouched for:
    ///
    /// 1. linked to a user → that user;
    /// 2. else an email the provider says is verified, and a user has it → link it
    ///    (`auth.social_linked`; the user's email becomes verified) and sign in;
    ///    a user has the email but the provider does not vouch for it → `Conflict`
    ///    (sign in with the password, then link): no silent takeover;
    /// 3. else a new user (the provider's email, verified as it says, or a
    ///    placeholder at `.invalid`), when the sign-up policy is open.
    ///
    /// The sign-in is audited as `auth.login` with `method: <provider>`. The policy
    /// `require_verified_email` is not applied: the provider proved who signed in.
    pub async fn social_sign_in(
        &self,
        identity: SocialIdentity,
        client: &ClientInfo,
    ) -> Result<SignedIn, ApiError> {
        let provider = identity.provider.clone();
        let user = match self
            .people
            .user_by_social(&provider, &identity.subject)
            .await
        {
            Ok(user) => user,
            Err(Error::NotFound { .. }) => self.social_account_for(&identity, client).await?,
            Err(e) => return Err(e.into()),
        };
        let signed = self.start_session(user, client).await?;
        self.audit(
            None,
            None,
            Some(signed.user.id),
            &actor_of(&signed.user),
            "auth.login",
            client,
            json!({"session": signed.session.id, "method": provider}),
        )
        .await;
        Ok(signed)
    }

    /// The user a new identity belongs to: linked by a verified email, or made.
    async fn social_account_for(
        &self,
        identity: &SocialIdentity,
        client: &ClientInfo,
    ) -> Result<User, ApiError> {
        let provider = &identity.provider;
        // An address that does not parse is as good as none.
        let email = identity
            .email
            .as_deref()
            .and_then(|e| check_email("email", e).ok());
        if let Some(email) = &email {
            match self.people.user_by_email(email).await {
                Ok(user) if identity.email_verified && user.email_verified => {
                    return self.link(user, identity, client).await;
                }
                Ok(_) if identity.email_verified => {
                    // Whoever registered this address never proved it: it may not be
                    // the person the provider vouches for. Linking would hand the real
                    // owner an account someone else holds the password of.
                    return Err(Error::conflict(format!(
                        "an account with the email {email} exists but its address was never verified, so it is not linked to {provider}: if it is yours, reset its password (POST /api/auth/password-reset) or verify it, then sign in with {provider} again"
                    ))
                    .into());
                }
                Ok(_) => {
                    return Err(Error::conflict(format!(
                        "an account with the email {email} exists, and {provider} does not say \
                         the address is verified: sign in with that account's password, then \
                         link {provider} from there"
                    ))
                    .into());
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match self.config.signup {
            SignupPolicy::Open => {}
            SignupPolicy::InviteOnly | SignupPolicy::Closed => {
                return Err(ApiError::Forbidden(format!(
                    "no account is linked to this {provider} identity, and this server does not \
                     let social sign-in create accounts: sign in another way, or ask for an invitation"
                )));
            }
        }
        let (email, verified) = match email {
            Some(e) => (e, identity.email_verified),
            None => (placeholder_email(provider, &identity.subject), false),
        };
        let name = identity
            .name
            .as_deref()
            .and_then(|n| check_name("name", n).ok())
            .unwrap_or_else(|| email.split('@').next().unwrap_or("user").to_owned());
        let user = match self
            .people
            .create_user(NewUser {
                email: email.clone(),
                name,
                password_hash: None,
                email_verified: verified,
            })
            .await
        {
            Ok(u) => u,
            Err(Error::AlreadyExists { .. }) => {
                return Err(Error::conflict(format!(
                    "an account with the email {email} was just made: sign in again"
                ))
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        self.audit(
            None,
            None,
            Some(user.id),
            &actor_of(&user),
            "user.registered",
            client,
            json!({"method": provider}),
        )
        .await;
        if !verified && !email.ends_with(&format!(".{PLACEHOLDER_EMAIL_DOMAIN}")) {
            self.send_verification(&user).await?;
        }
        match self.link(user.clone(), identity, client).await {
            Ok(u) => Ok(u),
            Err(ApiError::Core(Error::AlreadyExists { .. })) => {
                // The same identity signed in twice at once and the other request
                // linked first: drop the account made here, use the linked one.
                let _ = self.people.delete_user(user.id, &actor_of(&user)).await;
                Ok(self
                    .people
                    .user_by_social(provider, &identity.subject)
                    .await?)
            }
            Err(e) => Err(e),
        }
    }

    async fn link(
        &self,
        user: User,
        identity: &SocialIdentity,
        client: &ClientInfo,
    ) -> Result<User, ApiError> {
        self.people
            .link_social(SocialAccount {
                provider: identity.provider.clone(),
                subject: identity.subject.clone(),
                user_id: user.id,
                email: identity.email.clone(),
                created_at: now(),
            })
            .await?;
        self.audit(
            None,
            None,
            Some(user.id),
            &actor_of(&user),
            "auth.social_linked",
            client,
            json!({"provider": identity.provider, "subject": identity.subject}),
        )
        .await;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn pkce_challenge_is_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn no_variables_no_providers() {
        assert_eq!(SocialProviderConfig::from_env(env(&[])), Ok(vec![]));
    }

    #[test]
    fn google_preset_and_named_oidc_and_wechat() {
        let got = SocialProviderConfig::from_env(env(&[
            ("PROMPT_REGISTRY_GOOGLE_CLIENT_ID", "gid"),
            ("PROMPT_REGISTRY_GOOGLE_CLIENT_SECRET", "gsecret"),
            ("PROMPT_REGISTRY_OIDC_PROVIDERS", "acme-sso"),
            (
                "PROMPT_REGISTRY_OIDC_ACME_SSO_ISSUER",
                "https://sso.acme.test",
            ),
            ("PROMPT_REGISTRY_OIDC_ACME_SSO_CLIENT_ID", "aid"),
            ("PROMPT_REGISTRY_OIDC_ACME_SSO_CLIENT_SECRET", "asecret"),
            ("PROMPT_REGISTRY_OIDC_ACME_SSO_SCOPES", "email groups"),
            ("PROMPT_REGISTRY_WECHAT_APPID", "wxid"),
            ("PROMPT_REGISTRY_WECHAT_SECRET", "wxsecret"),
        ]))
        .unwrap();
        let names: Vec<&str> = got.iter().map(SocialProviderConfig::name).collect();
        assert_eq!(names, ["google", "acme-sso", "wechat"]);
        let SocialProviderConfig::Oidc(google) = &got[0] else {
            panic!("google is OIDC")
        };
        assert_eq!(google.issuer, "https://accounts.google.com");
        let SocialProviderConfig::Oidc(acme) = &got[1] else {
            panic!("acme is OIDC")
        };
        assert_eq!(acme.scopes, ["openid", "email", "groups"]);
        let SocialProviderConfig::WeChat(wx) = &got[2] else {
            panic!("wechat")
        };
        assert_eq!(wx.api_base, "https://api.weixin.qq.com");
        // Secrets never reach a log line.
        let debug = format!("{got:?}");
        for secret in ["gsecret", "asecret", "wxsecret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn errors_name_the_variable() {
        let err = |pairs: &[(&str, &str)]| SocialProviderConfig::from_env(env(pairs)).unwrap_err();
        assert!(
            err(&[("PROMPT_REGISTRY_GOOGLE_CLIENT_ID", "x")])
                .contains("PROMPT_REGISTRY_GOOGLE_CLIENT_SECRET")
        );
        assert!(
            err(&[("PROMPT_REGISTRY_WECHAT_SECRET", "x")]).contains("PROMPT_REGISTRY_WECHAT_APPID")
        );
        assert!(
            err(&[("PROMPT_REGISTRY_OIDC_PROVIDERS", "okta")])
                .contains("PROMPT_REGISTRY_OIDC_OKTA_ISSUER")
        );
        assert!(
            err(&[("PROMPT_REGISTRY_OIDC_PROVIDERS", "Bad Name")])
                .contains("PROMPT_REGISTRY_OIDC_PROVIDERS")
        );
        assert!(
            err(&[
                ("PROMPT_REGISTRY_OIDC_PROVIDERS", "okta"),
                ("PROMPT_REGISTRY_OIDC_OKTA_ISSUER", "not a url"),
            ])
            .contains("PROMPT_REGISTRY_OIDC_OKTA_ISSUER")
        );
    }

    #[test]
    fn a_nonce_is_used_once_per_provider() {
        let p = SocialProviders::new(&[]);
        assert!(p.use_nonce("google", "n1"));
        assert!(!p.use_nonce("google", "n1"));
        assert!(p.use_nonce("acme", "n1"));
    }
}
