//! Stored provider credentials: a project's own connection to an LLM vendor.
//!
//! The API key travels through the store only **sealed** (encrypted by the service
//! under its master key): `prompt-core` and the store backends never see it in clear
//! and never know how it is sealed. What a store keeps in clear is what lists need:
//! the kind, the base URL, default parameters and a short hint of the key
//! (`sk-…abcd`) so humans can tell keys apart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::validate;

/// Which wire protocol a stored provider speaks.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI itself.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API.
    Gemini,
    /// Any server speaking OpenAI's chat completions API (needs `base_url`).
    OpenaiCompatible,
}

impl ProviderKind {
    /// The vendor whose prices apply (an OpenAI-compatible server is priced as OpenAI,
    /// when it serves OpenAI's model names).
    pub fn pricing_name(self) -> &'static str {
        match self {
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::OpenaiCompatible => "openai_compatible",
        }
    }

    /// Parse the wire name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "openai" => Ok(ProviderKind::Openai),
            "anthropic" => Ok(ProviderKind::Anthropic),
            "gemini" => Ok(ProviderKind::Gemini),
            "openai_compatible" => Ok(ProviderKind::OpenaiCompatible),
            other => Err(Error::invalid(
                "kind",
                format!(
                    "unknown provider kind '{other}'; expected openai, anthropic, gemini or openai_compatible"
                ),
            )),
        }
    }
}

/// A provider credential as stored: the key is sealed (opaque to the store).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderCredential {
    /// The project it belongs to.
    pub project_id: Uuid,
    /// The provider's name in the project (`openai`, `my-groq`, …): what `provider` in
    /// a version's config and `provider/model` in the gateway refer to.
    pub name: String,
    /// The wire protocol.
    pub kind: ProviderKind,
    /// The API base URL; the vendor's default when `None`.
    pub base_url: Option<String>,
    /// The API key, sealed by the service (never the clear key).
    pub sealed_api_key: String,
    /// A masked hint of the key for display (`sk-…abcd`), never the key.
    pub key_hint: String,
    /// Default generation parameters (a JSON object), under the version's and call's.
    pub default_params: Value,
    /// When it was first stored.
    pub created_at: DateTime<Utc>,
    /// When it was last replaced.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for ProviderCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Even sealed, the key stays out of logs and debug output.
        f.debug_struct("ProviderCredential")
            .field("project_id", &self.project_id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("key_hint", &self.key_hint)
            .finish_non_exhaustive()
    }
}

/// A stored provider as shown: the key masked (`key_hint`), never the sealed value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderView {
    /// The provider's name in the project.
    pub name: String,
    /// The wire protocol.
    pub kind: ProviderKind,
    /// The API base URL, if not the vendor's default.
    pub base_url: Option<String>,
    /// The key, masked (`sk-…abcd`).
    pub api_key: String,
    /// Default generation parameters.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub default_params: Value,
    /// When first stored.
    pub created_at: DateTime<Utc>,
    /// When last replaced.
    pub updated_at: DateTime<Utc>,
}

impl From<ProviderCredential> for ProviderView {
    fn from(c: ProviderCredential) -> Self {
        ProviderView {
            name: c.name,
            kind: c.kind,
            base_url: c.base_url,
            api_key: c.key_hint,
            default_params: c.default_params,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A function giving a credential's new sealed key (master key rotation); see
/// [`PromptStore::reseal_provider_credentials`](crate::PromptStore::reseal_provider_credentials).
pub type Reseal = dyn Fn(&ProviderCredential) -> Result<String> + Send + Sync;

/// Longest provider name accepted.
pub const MAX_PROVIDER_NAME_LEN: usize = 64;

/// A provider name: 1–64 characters of `[a-z0-9_.-]`, starting with a letter or digit.
/// No `/` (the gateway reads `provider/model`) and no `:` (`prompt:NAME`).
pub fn validate_provider_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_PROVIDER_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!(
                "'{name}' is not a provider name: 1 to {MAX_PROVIDER_NAME_LEN} characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
            ),
        ))
    }
}

impl ProviderCredential {
    /// Validate what a store checks before writing: the name, a JSON object of default
    /// parameters, a base URL for `openai_compatible`, a non-empty sealed key.
    pub fn validate(&self) -> Result<()> {
        validate_provider_name(&self.name)?;
        if !self.default_params.is_object() {
            return Err(Error::invalid("default_params", "must be a JSON object"));
        }
        validate::json_no_nul("default_params", &self.default_params)?;
        if self.kind == ProviderKind::OpenaiCompatible && self.base_url.is_none() {
            return Err(Error::invalid(
                "base_url",
                "is required for an openai_compatible provider",
            ));
        }
        if let Some(u) = &self.base_url
            && (u.len() > 2000 || !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(Error::invalid(
                "base_url",
                "must be an http:// or https:// URL of at most 2000 characters",
            ));
        }
        if self.sealed_api_key.is_empty() {
            return Err(Error::invalid("api_key", "must not be empty"));
        }
        Ok(())
    }
}

/// A masked hint of a secret for display: its first three characters (when it is long
/// enough for that to reveal nothing useful) and last four, e.g. `sk-…abcd`. Short
/// secrets show only `…` and their last two characters.
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let n = chars.len();
    if n >= 16 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}…{tail}")
    } else if n >= 8 {
        let tail: String = chars[n - 2..].iter().collect();
        format!("…{tail}")
    } else {
        "…".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_masks() {
        assert!(validate_provider_name("my-groq").is_ok());
        assert!(validate_provider_name("openai").is_ok());
        for bad in ["", "a/b", "prompt:x", "Upper", "-x", &"x".repeat(65)] {
            assert!(validate_provider_name(bad).is_err(), "{bad}");
        }
        assert_eq!(mask_secret("sk-proj-abcdefghijklmnop1234"), "sk-…1234");
        assert_eq!(mask_secret("abcdefgh"), "…gh");
        assert_eq!(mask_secret("abc"), "…");
        assert_eq!(
            ProviderKind::parse("openai_compatible").unwrap(),
            ProviderKind::OpenaiCompatible
        );
        assert!(ProviderKind::parse("x").is_err());
    }
}
