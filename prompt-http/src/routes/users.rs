//! `/api/users/me*`: the signed-in user's profile, preferences, data export and
//! account deletion.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use prompt_core::domain::{UserUpdate, now};
use prompt_core::{AuditEntry, AuthSession, Error, OrgWithRole, User};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::accounts::web::SignedInUser;
use crate::accounts::{ClientInfo, actor_of, check_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// The signed-in user as `GET /api/users/me` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// Linked social accounts.
    pub social_accounts: Vec<prompt_core::domain::SocialAccount>,
    /// Organizations and the user's role in each.
    pub organizations: Vec<OrgWithRole>,
}

async fn me_of(state: &AppState, user: &User) -> ApiResult<Me> {
    let people = &state.accounts()?.people;
    Ok(Me {
        user: user.clone(),
        social_accounts: people.list_social(user.id).await?,
        organizations: people.list_orgs(Some(user.id)).await?,
    })
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("access_token" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn get_me(State(state): State<AppState>, me: SignedInUser) -> ApiResult<Json<Me>> {
    let user = state.accounts()?.people.user_by_id(me.id).await?;
    Ok(Json(me_of(&state, &user).await?))
}

/// Body of `PATCH /api/users/me`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    /// New display name.
    pub name: Option<String>,
}

/// Change the signed-in user's profile.
#[utoipa::path(patch, path = "/api/users/me", tag = "users", security(("access_token" = [])), request_body = MePatch,
    responses((status = 200, body = Me), (status = 422, body = ErrorBody)))]
pub async fn patch_me(
    State(state): State<AppState>,
    me: SignedInUser,
    ApiJson(body): ApiJson<MePatch>,
) -> ApiResult<Json<Me>> {
    let name = body.name.map(|n| check_name("name", &n)).transpose()?;
    let user = state
        .accounts()?
        .people
        .update_user(
            me.id,
            UserUpdate {
                name,
                ..UserUpdate::default()
            },
        )
        .await?;
    Ok(Json(me_of(&state, &user).await?))
}

/// Body of `POST /api/users/me/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password (omit when the account has none yet).
    pub current_password: Option<String>,
    /// The new password.
    pub new_password: String,
}

/// Change the signed-in user's password; every other session is signed out.
#[utoipa::path(post, path = "/api/users/me/password", tag = "users", security(("access_token" = [])), request_body = PasswordChange,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    client: ClientInfo,
    me: SignedInUser,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    let accounts = state.accounts()?;
    let user = accounts.people.user_by_id(me.id).await?;
    accounts
        .confirm_current_password(&user, body.current_password.as_deref())
        .await?;
    crate::accounts::password::check_policy(
        "new_password",
        &body.new_password,
        &user.email,
        &user.name,
    )?;
    let hash = accounts.hash_password(&body.new_password).await?;
    accounts
        .people
        .update_user(
            me.id,
            UserUpdate {
                password_hash: Some(hash),
                ..UserUpdate::default()
            },
        )
        .await?;
    for s in accounts.people.list_sessions(me.id, now()).await? {
        if s.id != me.session {
            accounts.people.revoke_session(me.id, s.id, now()).await?;
        }
    }
    accounts.access.clear();
    accounts
        .audit(
            None,
            None,
            Some(me.id),
            &actor_of(&user),
            "auth.password_changed",
            &client,
            json!({}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Known preference keys and their checks; other keys are kept as given.
pub fn check_preferences(prefs: &Map<String, Value>) -> Result<(), ApiError> {
    for (k, v) in prefs {
        let field = format!("preferences.{k}");
        if k.is_empty() || k.len() > 64 {
            return Err(ApiError::invalid(field, "keys are 1 to 64 characters"));
        }
        prompt_core::validate::no_nul("preferences", k)?;
        prompt_core::validate::json_no_nul(&field, v)?;
        match k.as_str() {
            "theme" => match v.as_str() {
                Some("light" | "dark" | "system") => {}
                _ => {
                    return Err(ApiError::invalid(
                        field,
                        "must be \"light\", \"dark\" or \"system\"",
                    ));
                }
            },
            "language" => {
                let ok = v.as_str().is_some_and(|s| {
                    (2..=35).contains(&s.len())
                        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
                if !ok {
                    return Err(ApiError::invalid(
                        field,
                        "must be a language tag such as \"en\" or \"zh-CN\"",
                    ));
                }
            }
            "default_provider" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| ApiError::invalid(&field, "must be a provider name"))?;
                prompt_core::credential::validate_provider_name(s)
                    .map_err(|e| ApiError::invalid(&field, e.to_string()))?;
            }
            "default_model" => {
                let ok = v.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 200);
                if !ok {
                    return Err(ApiError::invalid(
                        field,
                        "must be a model name of 1 to 200 characters",
                    ));
                }
            }
            _ => {}
        }
    }
    let size = serde_json::to_vec(prefs)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > 16 * 1024 {
        return Err(ApiError::invalid(
            "preferences",
            format!("are {size} bytes as JSON; at most 16384"),
        ));
    }
    Ok(())
}

/// The signed-in user's preferences.
#[utoipa::path(get, path = "/api/users/me/preferences", tag = "users", security(("access_token" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody)))]
pub async fn get_preferences(
    State(state): State<AppState>,
    me: SignedInUser,
) -> ApiResult<Json<Map<String, Value>>> {
    Ok(Json(
        state
            .accounts()?
            .people
            .user_by_id(me.id)
            .await?
            .preferences,
    ))
}

/// Merge preferences: each key given replaces the stored one; `null` removes it.
/// Known keys are checked: `theme` (light, dark, system), `language`,
/// `default_provider`, `default_model`.
#[utoipa::path(patch, path = "/api/users/me/preferences", tag = "users", security(("access_token" = [])), request_body = Object,
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
pub async fn patch_preferences(
    State(state): State<AppState>,
    me: SignedInUser,
    ApiJson(patch): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<Map<String, Value>>> {
    let people = &state.accounts()?.people;
    let mut prefs = people.user_by_id(me.id).await?.preferences;
    for (k, v) in patch {
        if v.is_null() {
            prefs.remove(&k);
        } else {
            prefs.insert(k, v);
        }
    }
    check_preferences(&prefs)?;
    let user = people
        .update_user(
            me.id,
            UserUpdate {
                preferences: Some(prefs),
                ..UserUpdate::default()
            },
        )
        .await?;
    Ok(Json(user.preferences))
}

/// Everything held about the signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Export {
    /// When it was made.
    pub exported_at: chrono::DateTime<chrono::Utc>,
    /// The user (no password hash).
    pub user: User,
    /// Linked social accounts.
    pub social_accounts: Vec<prompt_core::domain::SocialAccount>,
    /// Organizations and roles.
    pub organizations: Vec<OrgWithRole>,
    /// Live sessions (no tokens).
    pub sessions: Vec<AuthSession>,
    /// Audit entries about or by the user (newest 10,000).
    pub audit: Vec<AuditEntry>,
}

/// Export everything held about the signed-in user as one JSON document (audited).
#[utoipa::path(get, path = "/api/users/me/export", tag = "users", security(("access_token" = [])),
    responses((status = 200, body = Export), (status = 401, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    client: ClientInfo,
    me: SignedInUser,
) -> ApiResult<Json<Export>> {
    let accounts = state.accounts()?;
    let people = &accounts.people;
    let user = people.user_by_id(me.id).await?;
    accounts
        .audit(
            None,
            None,
            Some(me.id),
            &actor_of(&user),
            "user.exported",
            &client,
            json!({}),
        )
        .await;
    Ok(Json(Export {
        exported_at: now(),
        social_accounts: people.list_social(me.id).await?,
        organizations: people.list_orgs(Some(me.id)).await?,
        sessions: people.list_sessions(me.id, now()).await?,
        audit: people.user_audit(me.id, 10_000).await?,
        user,
    }))
}

/// Body of `DELETE /api/users/me`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DeleteMe {
    /// The current password (required when the account has one).
    pub password: Option<String>,
}

/// Delete the signed-in user's account: refused (409) while the user is the only owner
/// of an organization. Removes the account, its sessions, memberships and links, and
/// anonymises the authorship that must stay (versions, label moves, audit actors).
#[utoipa::path(delete, path = "/api/users/me", tag = "users", security(("access_token" = [])), request_body = DeleteMe,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_me(
    State(state): State<AppState>,
    client: ClientInfo,
    me: SignedInUser,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let body: DeleteMe = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteMe::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let accounts = state.accounts()?;
    let user = accounts.people.user_by_id(me.id).await?;
    accounts
        .confirm_current_password(&user, body.password.as_deref())
        .await?;
    match accounts.people.delete_user(me.id, &actor_of(&user)).await {
        Ok(()) => {}
        Err(Error::Conflict { message }) => {
            return Err(Error::conflict(format!(
                "{message}: make another member owner, or delete the organization, first"
            ))
            .into());
        }
        Err(e) => return Err(e.into()),
    }
    accounts.access.clear();
    accounts
        .audit(
            None,
            None,
            None,
            "deleted user",
            "user.deleted",
            &client,
            json!({"user_id": me.id}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
