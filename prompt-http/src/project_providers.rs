//! The providers a request executes with: its project's stored credentials first, then
//! the environment's (`prompt_providers::credentials`, re-exported here).

pub use prompt_providers::credentials::{
    NewProviderCredential, ProjectProviders, ResolvedProvider, STORED_PROVIDER_TTL, StoredProvider,
    StoredProviderSource, build_stored_provider,
};

/// The providers of each project for the background workers.
pub type WorkerProviders = StoredProviderSource;

impl crate::state::AppState {
    /// The registry of `project` with the providers it can execute with: its stored
    /// credentials first, then the environment's.
    pub async fn executing_registry(
        &self,
        project: &prompt_core::Project,
    ) -> prompt_core::Result<prompt_core::Registry> {
        let set = self
            .project_providers
            .set_for(&self.store, project.id)
            .await?;
        Ok(self.registry(project).with_providers(set))
    }

    /// The providers of this state's projects for background workers: only the store
    /// and the providers, not the whole state (the workers outlive the router, and a
    /// state clone would keep the run writer open after shutdown).
    pub fn worker_providers(&self) -> WorkerProviders {
        StoredProviderSource::new(self.store.clone(), self.project_providers.clone())
    }
}
