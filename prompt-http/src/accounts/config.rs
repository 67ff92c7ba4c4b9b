//! Settings of the people features, the client facts every flow records, and the
//! checks of the fields a person types (email, display name).

use std::net::IpAddr;
use std::time::Duration;

use prompt_core::{Error, Result};

use super::social;
use super::throttle::ThrottleConfig;

/// Who may sign up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignupPolicy {
    /// Anyone.
    Open,
    /// Only with an invitation.
    InviteOnly,
    /// Nobody (accounts come from the CLI).
    Closed,
}

/// Settings of the people features.
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    /// Who may sign up.
    pub signup: SignupPolicy,
    /// Refuse sign-in until the email is verified.
    pub require_verified_email: bool,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token (each rotation starts a new one).
    pub refresh_ttl: Duration,
    /// Age at which the signing key is replaced.
    pub key_rotation: Duration,
    /// Lifetime of verification and reset links.
    pub link_ttl: Duration,
    /// Lifetime of invitations.
    pub invitation_ttl: Duration,
    /// The public base URL of the service, for links in emails.
    pub public_url: String,
    /// The sign-in throttle.
    pub throttle: ThrottleConfig,
    /// How long a user's role in a project may be served from memory. Changes made
    /// through this instance take effect at once; this bounds changes made through
    /// another instance.
    pub access_cache_ttl: Duration,
    /// Browser origins allowed to call the API (CORS) and to use the session cookie.
    pub allowed_origins: Vec<String>,
    /// Mark the refresh cookie `Secure` (the service is reached over TLS).
    pub secure_cookies: bool,
    /// Social sign-in providers (see [`social::SocialProviderConfig::from_env`]).
    pub social: Vec<social::SocialProviderConfig>,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            signup: SignupPolicy::Open,
            require_verified_email: false,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            key_rotation: Duration::from_secs(30 * 24 * 3600),
            link_ttl: Duration::from_secs(24 * 3600),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            public_url: "http://127.0.0.1:8080".to_owned(),
            throttle: ThrottleConfig::default(),
            access_cache_ttl: Duration::from_secs(5),
            allowed_origins: Vec::new(),
            secure_cookies: false,
            social: Vec::new(),
        }
    }
}

/// Facts about the client of a request, for sessions and the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Its address.
    pub ip: Option<IpAddr>,
    /// Its user agent, truncated to 200 characters.
    pub user_agent: Option<String>,
}

/// Normalize and check an email address: trimmed, 3–254 characters, one `@` with text
/// on both sides, a dot in the domain, no spaces or control characters.
pub fn check_email(field: &str, email: &str) -> Result<String> {
    let email = email.trim();
    let bad =
        |why: &str| Error::invalid(field, format!("'{email}' is not an email address: {why}"));
    if email.len() < 3 || email.len() > 254 {
        return Err(bad("it must be 3 to 254 characters"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains a space or a control character"));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(bad("it has no '@'"));
    };
    if local.is_empty() || local.contains('@') {
        return Err(bad("the part before '@' is empty or holds another '@'"));
    }
    if domain.len() < 3 || !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.')
    {
        return Err(bad("the domain must be like example.com"));
    }
    Ok(email.to_owned())
}

/// Check a display name: 1–100 characters once trimmed, no control characters.
pub fn check_name(field: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if name.chars().count() > 100 {
        return Err(Error::invalid(field, "is longer than 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(field, "contains a control character"));
    }
    Ok(name.to_owned())
}
