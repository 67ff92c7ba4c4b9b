//! A user's access to a project on each request made with an access token.
//!
//! The role is the membership's, read from the store; a short cache (keyed by user,
//! session and the project asked for) keeps the token path as cheap as the API-key
//! path. Every change of memberships, roles, sessions or projects made through this
//! instance clears it, so it takes effect on the next request; a change made through
//! another instance takes effect within the cache's lifetime (`access_cache_ttl`, the
//! same bound API keys have).

use std::sync::Arc;
use std::time::Duration;

use prompt_core::{Error, KeyRole, Project, PromptStore};
use uuid::Uuid;

use super::Accounts;
use crate::auth::{Caller, Principal};
use crate::error::ApiError;

/// The header naming the project of a request made with a user access token.
pub const PROJECT_HEADER: &str = "x-project";

#[derive(Debug, Clone)]
struct Grant {
    claims: super::tokens::AccessClaims,
    project: Project,
    role: KeyRole,
    email: String,
}

/// Users' recent grants.
#[derive(Debug, Clone)]
pub struct AccessCache {
    /// Keyed by the whole token (only ever inserted after it verified) and the project
    /// asked for, so a hit skips the signature check as well as the reads.
    cache: Option<moka::sync::Cache<(String, String), Arc<Grant>>>,
    /// Bumped by every [`AccessCache::clear`]: a grant read from the store before a
    /// clear is not cached after it (it may hold the role the change took away).
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl AccessCache {
    /// A cache whose entries live `ttl` (none when zero).
    pub fn new(ttl: Duration) -> Self {
        AccessCache {
            cache: (!ttl.is_zero()).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(ttl)
                    .build()
            }),
            generation: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forget every grant (after any change that may lower one).
    pub fn clear(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(c) = &self.cache {
            c.invalidate_all();
        }
    }
}

fn not_found(project: &str) -> ApiError {
    Error::not_found(format!("project '{project}'")).into()
}

impl Accounts {
    /// The [`Caller`] of a request bearing the access token `token` for the project
    /// named by `project_ref` (`NAME`, `ORG/NAME` or the project's id): 401 for a bad,
    /// expired or revoked token, 400 without a project, 404 for a project the user
    /// cannot see (missing, or in an organization the user is not a member of).
    pub async fn caller_for(
        &self,
        store: &Arc<dyn PromptStore>,
        token: &str,
        project_ref: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let project_ref = project_ref.map(str::trim).filter(|p| !p.is_empty()).ok_or_else(|| {
            ApiError::BadRequest {
                message: "a request with a user access token names its project: send the header 'X-Project: ORG/NAME' (or NAME in the default organization, or the project's id)".into(),
                details: Box::new(prompt_core::wire::ErrorDetails {
                    header: Some("X-Project".into()),
                    ..Default::default()
                }),
            }
        })?;
        let key = (token.to_owned(), project_ref.to_owned());
        let cached = self
            .access
            .cache
            .as_ref()
            .and_then(|c| c.get(&key))
            // A cached grant outlives no token: past `exp`, verify again (and fail).
            .filter(|g| g.claims.exp > chrono::Utc::now().timestamp());
        let grant = match cached {
            Some(g) => g,
            None => {
                let claims = self.keys.verify(token).await?;
                let read_at = self.access.generation();
                let g = Arc::new(self.grant(store, claims, project_ref).await?);
                if let Some(c) = &self.access.cache
                    && self.access.generation() == read_at
                {
                    c.insert(key, g.clone());
                }
                g
            }
        };
        Ok(Caller {
            principal: Principal::User {
                id: grant.claims.sub,
                email: grant.email.clone(),
                session: grant.claims.sid,
            },
            project: grant.project.clone(),
            role: grant.role,
        })
    }

    async fn grant(
        &self,
        store: &Arc<dyn PromptStore>,
        claims: super::tokens::AccessClaims,
        project_ref: &str,
    ) -> Result<Grant, ApiError> {
        let (user, sid) = (claims.sub, claims.sid);
        let revoked = || ApiError::Unauthorized("the session of this token was signed out".into());
        match self.people.session(sid).await {
            Ok(s) if s.user_id == user && s.revoked_at.is_none() => {}
            Ok(_) | Err(Error::NotFound { .. }) => return Err(revoked()),
            Err(e) => return Err(e.into()),
        }
        let project = match Uuid::parse_str(project_ref) {
            Ok(id) => store.project_by_id(id).await,
            Err(_) => store.project_by_name(project_ref).await,
        };
        let project = match project {
            Ok(p) => p,
            Err(Error::NotFound { .. }) => return Err(not_found(project_ref)),
            Err(e @ Error::InvalidInput { .. }) => {
                return Err(ApiError::BadRequest {
                    message: format!("X-Project: {e}"),
                    details: Box::new(prompt_core::wire::ErrorDetails {
                        header: Some("X-Project".into()),
                        ..Default::default()
                    }),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let role = match self.people.project_access(user, project.id).await {
            Ok(Some(role)) => role,
            Ok(None) | Err(Error::NotFound { .. }) => return Err(not_found(project_ref)),
            Err(e) => return Err(e.into()),
        };
        let email = match self.people.user_by_id(user).await {
            Ok(u) => u.email,
            Err(Error::NotFound { .. }) => return Err(revoked()),
            Err(e) => return Err(e.into()),
        };
        Ok(Grant {
            claims,
            project,
            role,
            email,
        })
    }
}
