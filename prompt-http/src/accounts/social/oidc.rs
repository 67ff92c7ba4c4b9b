//! OpenID Connect: the authorization code flow with PKCE (S256), `state` and `nonce`,
//! and the ID token verified against the issuer's JWKS with `jsonwebtoken`.
//!
//! - **Discovery** from `{issuer}/.well-known/openid-configuration`, cached for an
//!   hour; its `issuer` must be the configured one (OpenID Connect Discovery §4.3).
//! - **Keys** from its `jwks_uri`, cached for an hour and fetched again once when a
//!   token names a `kid` the cached set lacks (the issuer rotated).
//! - **The ID token** must be signed with an asymmetric algorithm (RS*, PS*, ES*,
//!   EdDSA) that its JWK allows: `none` and HS* (a client secret as a MAC key) are
//!   refused before any key is looked at. Then the signature, `iss` (the configured
//!   issuer), `aud` (contains our client id; `azp`, when present, is our client id),
//!   `exp` (60 s leeway), and `nonce` (the one we sent, used once).

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use prompt_core::{Error, ProviderErrorKind, Result};
use serde::{Deserialize, Deserializer};
use tokio::sync::Mutex;

use super::{SocialIdentity, provider_failed, transport_failed};

/// Google's issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// The scopes asked for by default.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "email", "profile"];

/// How long discovery documents and key sets are kept.
const CACHE_TTL: Duration = Duration::from_secs(3600);

/// Clock skew allowed on `exp`.
const LEEWAY_SECS: u64 = 60;

/// The only algorithms an ID token may be signed with.
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// An OpenID Connect provider's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// Its name in routes and linked accounts (`google`, or a configured name).
    pub name: String,
    /// The issuer URL (discovery is at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// The `iss` values accepted in ID tokens (the issuer; Google also writes it
    /// without the scheme).
    pub accepted_issuers: Vec<String>,
    /// Our client id at the provider (the `aud` of its ID tokens).
    pub client_id: String,
    /// Our client secret at the provider.
    pub client_secret: String,
    /// The scopes asked for (`openid` among them).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<hidden>")
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl OidcConfig {
    /// The Google preset at `issuer` (Google's own unless testing).
    pub fn google(issuer: String, client_id: String, client_secret: String) -> Self {
        let mut accepted_issuers = vec![issuer.clone()];
        if issuer == GOOGLE_ISSUER {
            // Google's ID tokens may say `accounts.google.com` without the scheme.
            accepted_issuers.push("accounts.google.com".to_owned());
        }
        OidcConfig {
            name: "google".to_owned(),
            issuer,
            accepted_issuers,
            client_id,
            client_secret,
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The parts of a discovery document we use.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    /// The issuer (must be the configured one).
    pub issuer: String,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where codes are exchanged.
    pub token_endpoint: String,
    /// The issuer's public keys.
    pub jwks_uri: String,
    /// How the client may authenticate at the token endpoint (absent: basic).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// The answer of the token endpoint (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Debug, Clone, Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// An error answer of the token endpoint (RFC 6749 §5.2).
#[derive(Debug, Clone, Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// The claims of an ID token we read.
#[derive(Debug, Clone, Deserialize)]
pub struct IdClaims {
    /// The person's id at the issuer.
    pub sub: String,
    /// The nonce sent in the authorization request.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The authorized party (our client id when present).
    #[serde(default)]
    pub azp: Option<String>,
    /// The person's email.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the issuer verified the email (a boolean; some issuers write a string).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub email_verified: bool,
    /// The person's name.
    #[serde(default)]
    pub name: Option<String>,
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    })
}

/// An OpenID Connect provider, with its cached discovery document and keys.
#[derive(Debug)]
pub struct OidcProvider {
    config: OidcConfig,
    http: reqwest::Client,
    discovery: Mutex<Option<(Discovery, Instant)>>,
    jwks: Mutex<Option<(JwkSet, Instant)>>,
}

/// A refused ID token or code: 401 naming the provider and why.
fn refused(provider: &str, why: impl std::fmt::Display) -> Error {
    Error::Unauthorized {
        message: format!("sign-in with {provider} refused: {why}"),
    }
}

impl OidcProvider {
    /// A provider over `http`; nothing is fetched until first used.
    pub fn new(config: OidcConfig, http: reqwest::Client) -> Self {
        OidcProvider {
            config,
            http,
            discovery: Mutex::new(None),
            jwks: Mutex::new(None),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str, what: &str) -> Result<T> {
        let name = &self.config.name;
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport_failed(name, e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(provider_failed(
                name,
                ProviderErrorKind::Server,
                Some(status.as_u16()),
                None,
                format!("fetching its {what} at {url} answered {status}"),
            ));
        }
        let bytes = resp.bytes().await.map_err(|e| transport_failed(name, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            provider_failed(
                name,
                ProviderErrorKind::MalformedResponse,
                Some(status.as_u16()),
                None,
                format!("its {what} at {url} is not what OpenID Connect says: {e}"),
            )
        })
    }

    /// The discovery document (cached).
    pub async fn discovery(&self) -> Result<Discovery> {
        let mut cached = self.discovery.lock().await;
        if let Some((d, at)) = cached.as_ref()
            && at.elapsed() < CACHE_TTL
        {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let d: Discovery = self.get_json(&url, "discovery document").await?;
        if d.issuer != self.config.issuer {
            return Err(provider_failed(
                &self.config.name,
                ProviderErrorKind::MalformedResponse,
                None,
                None,
                format!(
                    "its discovery document names the issuer '{}', not the configured '{}'",
                    d.issuer, self.config.issuer
                ),
            ));
        }
        *cached = Some((d.clone(), Instant::now()));
        Ok(d)
    }

    async fn jwks(&self, refresh: bool) -> Result<JwkSet> {
        let mut cached = self.jwks.lock().await;
        if !refresh
            && let Some((set, at)) = cached.as_ref()
            && at.elapsed() < CACHE_TTL
        {
            return Ok(set.clone());
        }
        let uri = self.discovery().await?.jwks_uri;
        let set: JwkSet = self.get_json(&uri, "key set").await?;
        *cached = Some((set.clone(), Instant::now()));
        Ok(set)
    }

    /// The URL to send the browser to: the code flow with `state`, `nonce` and the
    /// PKCE S256 `challenge`.
    pub async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        challenge: &str,
    ) -> Result<String> {
        let d = self.discovery().await?;
        let mut url = reqwest::Url::parse(&d.authorization_endpoint).map_err(|e| {
            provider_failed(
                &self.config.name,
                ProviderErrorKind::MalformedResponse,
                None,
                None,
                format!("its authorization_endpoint is not a URL: {e}"),
            )
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.config.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchange `code` at the token endpoint and verify the ID token it answers
    /// with. `nonce`: the one sent, which the token must carry.
    pub async fn sign_in(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
        nonce: Option<&str>,
        used_nonce: impl FnOnce(&str) -> bool,
    ) -> Result<SocialIdentity> {
        let id_token = self.exchange(code, redirect_uri, verifier).await?;
        let claims = self.verify_id_token(&id_token, nonce, used_nonce).await?;
        Ok(SocialIdentity {
            provider: self.config.name.clone(),
            subject: claims.sub,
            email: claims.email,
            email_verified: claims.email_verified,
            name: claims.name,
        })
    }

    /// The ID token for `code` (client authentication: `client_secret_basic`, or
    /// `client_secret_post` when the provider supports only that).
    async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<String> {
        let name = &self.config.name;
        let d = self.discovery().await?;
        let basic = d
            .token_endpoint_auth_methods_supported
            .as_ref()
            .is_none_or(|m| {
                m.iter().any(|m| m == "client_secret_basic")
                    || !m.iter().any(|m| m == "client_secret_post")
            });
        // Built before any await: the serializer is not `Send`.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", redirect_uri);
            if let Some(v) = verifier {
                form.append_pair("code_verifier", v);
            }
            if !basic {
                form.append_pair("client_id", &self.config.client_id)
                    .append_pair("client_secret", &self.config.client_secret);
            }
            form.finish()
        };
        let mut req = self
            .http
            .post(&d.token_endpoint)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        if basic {
            // RFC 6749 §2.3.1: each part form-encoded, then base64.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let credentials = STANDARD.encode(format!(
                "{}:{}",
                enc(&self.config.client_id),
                enc(&self.config.client_secret)
            ));
            req = req.header(
                reqwest::header::AUTHORIZATION,
                format!("Basic {credentials}"),
            );
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| transport_failed(name, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport_failed(name, e))?;
        if !status.is_success() {
            let err: Option<TokenError> = serde_json::from_slice(&bytes).ok();
            return Err(match err {
                // The code (or its verifier) is bad, used or expired: the sign-in is
                // refused; start again.
                Some(e) if e.error == "invalid_grant" => refused(
                    name,
                    format!(
                        "the code was not accepted ({}{})",
                        e.error,
                        e.error_description
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    ),
                ),
                Some(e) => provider_failed(
                    name,
                    if e.error == "invalid_client" || e.error == "unauthorized_client" {
                        ProviderErrorKind::Auth
                    } else {
                        ProviderErrorKind::InvalidRequest
                    },
                    Some(status.as_u16()),
                    Some(e.error.clone()),
                    e.error_description.unwrap_or(e.error),
                ),
                None => provider_failed(
                    name,
                    if status.is_server_error() {
                        ProviderErrorKind::Server
                    } else {
                        ProviderErrorKind::MalformedResponse
                    },
                    Some(status.as_u16()),
                    None,
                    format!("its token endpoint answered {status}"),
                ),
            });
        }
        let token: TokenResponse = serde_json::from_slice(&bytes).map_err(|e| {
            provider_failed(
                name,
                ProviderErrorKind::MalformedResponse,
                Some(status.as_u16()),
                None,
                format!("its token answer cannot be read: {e}"),
            )
        })?;
        token.id_token.ok_or_else(|| {
            provider_failed(
                name,
                ProviderErrorKind::MalformedResponse,
                Some(status.as_u16()),
                None,
                "its token answer has no id_token (is 'openid' among the scopes?)",
            )
        })
    }

    /// Verify an ID token: algorithm, key, signature, `iss`, `aud`, `azp`, `exp`, and
    /// `nonce` (equal to `nonce` when given; never seen before per `used_nonce`).
    pub async fn verify_id_token(
        &self,
        token: &str,
        nonce: Option<&str>,
        used_nonce: impl FnOnce(&str) -> bool,
    ) -> Result<IdClaims> {
        let name = &self.config.name;
        let bad = |why: &str| refused(name, format!("its ID token {why}"));
        // A header whose `alg` is `none` or unknown does not even parse.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| bad("is malformed, unsigned or uses an unknown algorithm"))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(bad(&format!(
                "is signed with {:?}, not a public-key algorithm",
                header.alg
            )));
        }
        let key = match self.find_key(&self.jwks(false).await?, header.kid.as_deref(), header.alg) {
            Some(k) => k,
            // The issuer may have rotated its keys since they were cached.
            None => self
                .find_key(&self.jwks(true).await?, header.kid.as_deref(), header.alg)
                .ok_or_else(|| bad("is signed with a key the issuer does not publish"))?,
        };
        let key =
            DecodingKey::from_jwk(&key).map_err(|_| bad("names a key that cannot be used"))?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&self.config.accepted_issuers);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                bad(match e.kind() {
                    K::InvalidSignature => "has a bad signature",
                    K::ExpiredSignature => "has expired",
                    K::InvalidAudience => "is for another client (aud)",
                    K::InvalidIssuer => "is from another issuer (iss)",
                    K::MissingRequiredClaim(_) => "lacks a required claim",
                    _ => "does not verify",
                })
            })?;
        if claims
            .azp
            .as_deref()
            .is_some_and(|azp| azp != self.config.client_id)
        {
            return Err(bad("was issued to another client (azp)"));
        }
        match (nonce, claims.nonce.as_deref()) {
            (Some(want), Some(got)) if want == got => {}
            (Some(_), _) => return Err(bad("does not carry the nonce of this sign-in")),
            (None, _) => {}
        }
        if let Some(n) = claims.nonce.as_deref()
            && !used_nonce(n)
        {
            return Err(bad("was used before (replayed nonce)"));
        }
        Ok(claims)
    }

    /// The JWK for a token: by `kid` (or the only signing key when the token names
    /// none), whose declared algorithm, if any, is the token's, and whose use, if
    /// any, is signing.
    fn find_key(&self, set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
        let usable = |k: &&Jwk| {
            k.common
                .key_algorithm
                // Both serialize to their JOSE name (`RS256`, …).
                .is_none_or(|a| serde_json::to_value(a).ok() == serde_json::to_value(alg).ok())
                && k.common
                    .public_key_use
                    .as_ref()
                    .is_none_or(|u| *u == PublicKeyUse::Signature)
        };
        match kid {
            Some(kid) => set
                .keys
                .iter()
                .filter(|k| k.common.key_id.as_deref() == Some(kid))
                .find(usable)
                .cloned(),
            None => {
                let mut candidates = set.keys.iter().filter(usable);
                match (candidates.next(), candidates.next()) {
                    (Some(k), None) => Some(k.clone()),
                    _ => None,
                }
            }
        }
    }
}
