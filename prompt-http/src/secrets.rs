//! The `rotate-master-key` command. Sealing itself (the master key, the keyring, the
//! sealed format) lives in `prompt_providers::credentials::keyring`, below this crate,
//! so that embedded programs and the Python module seal and open credentials the same
//! way; it is re-exported here.

pub use prompt_providers::credentials::keyring::{
    Keyring, MASTER_KEY_ENV, MasterKey, PREVIOUS_MASTER_KEY_ENV, open_with,
};

/// Settings of `prompt-registry rotate-master-key`. The keys are read from the
/// environment by default so they do not show in the process list.
#[derive(Debug, Clone, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    /// Database.
    pub db: crate::config::DatabaseArgs,
    /// The key the credentials are sealed under now.
    #[arg(
        long = "old-key",
        env = "PROMPT_REGISTRY_MASTER_KEY",
        hide_env_values = true
    )]
    pub old_key: String,
    /// The key to seal them under.
    #[arg(
        long = "new-key",
        env = "PROMPT_REGISTRY_NEW_MASTER_KEY",
        hide_env_values = true
    )]
    pub new_key: String,
}

/// Reseal every stored credential from the old key to the new one, in one
/// transaction; values already under the new key are resealed too (so an interrupted
/// rotation can be run again). Returns how many were resealed.
pub async fn rotate(
    store: &std::sync::Arc<dyn prompt_core::PromptStore>,
    args: &RotateArgs,
) -> Result<u64, String> {
    let old = MasterKey::parse(&args.old_key)
        .map_err(|e| format!("invalid --old-key / {MASTER_KEY_ENV}: {e}"))?;
    let new = MasterKey::parse(&args.new_key)
        .map_err(|e| format!("invalid --new-key / PROMPT_REGISTRY_NEW_MASTER_KEY: {e}"))?;
    prompt_providers::credentials::rotate(store, old, new)
        .await
        .map_err(|e| format!("rotation failed, nothing was changed: {e}"))
}
