//! `/api/v1/orgs*`: organizations, their members, invitations, projects and audit log,
//! for signed-in users. An organization the user is not a member of answers 404.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use prompt_core::domain::{Membership, OrgRole, Organization};
use prompt_core::{AuditEntry, Error, KeyRole, Member, OrgWithRole, Page, Project};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::web::SignedInUser;
use crate::accounts::{Accounts, ClientInfo, actor_of};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::prompts::PageQuery;
use crate::state::AppState;

/// The organization `name` and the caller's membership: 404 unless a member.
pub(crate) async fn membership_in(
    accounts: &Accounts,
    user: &SignedInUser,
    name: &str,
) -> ApiResult<(Organization, Membership)> {
    let missing = || ApiError::from(Error::not_found(format!("organization '{name}'")));
    let org = match accounts.people.org_by_name(name).await {
        Ok(o) => o,
        Err(Error::NotFound { .. } | Error::InvalidInput { .. }) => return Err(missing()),
        Err(e) => return Err(e.into()),
    };
    match accounts.people.membership(org.id, user.id).await {
        Ok(m) => Ok((org, m)),
        Err(Error::NotFound { .. }) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn need(m: &Membership, role: OrgRole) -> ApiResult<()> {
    if m.role >= role {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "this needs the {} role in the organization; you have {}",
            role.as_str(),
            m.role.as_str()
        )))
    }
}

pub(crate) async fn actor(accounts: &Accounts, user: &SignedInUser) -> ApiResult<String> {
    Ok(actor_of(&accounts.people.user_by_id(user.id).await?))
}

/// Body of `POST /api/v1/orgs` and `PATCH /api/v1/orgs/{org}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgBody {
    /// Name: 1–100 of letters, digits, `_ . -`.
    pub name: String,
}

/// The caller's organizations.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgList {
    /// Organizations with the caller's role.
    pub items: Vec<OrgWithRole>,
}

/// Create an organization; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "orgs", security(("access_token" = [])), request_body = OrgBody,
    responses((status = 201, body = OrgWithRole), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_org(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    ApiJson(body): ApiJson<OrgBody>,
) -> ApiResult<(StatusCode, Json<OrgWithRole>)> {
    let accounts = state.accounts()?;
    check_org_name(&body.name)?;
    let org = accounts
        .people
        .create_org(&body.name, Some(user.id))
        .await?;
    accounts
        .audit(
            Some(org.id),
            None,
            Some(user.id),
            &actor(accounts, &user).await?,
            "org.created",
            &client,
            json!({"name": org.name}),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(OrgWithRole {
            org,
            role: Some(OrgRole::Owner),
        }),
    ))
}

/// The caller's organizations.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "orgs", security(("access_token" = [])),
    responses((status = 200, body = OrgList), (status = 401, body = ErrorBody)))]
pub async fn list_orgs(
    State(state): State<AppState>,
    user: SignedInUser,
) -> ApiResult<Json<OrgList>> {
    let items = state.accounts()?.people.list_orgs(Some(user.id)).await?;
    Ok(Json(OrgList { items }))
}

/// One organization of the caller's.
#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "orgs", security(("access_token" = [])),
    params(("org" = String, Path, description = "organization name")),
    responses((status = 200, body = OrgWithRole), (status = 404, body = ErrorBody)))]
pub async fn get_org(
    State(state): State<AppState>,
    user: SignedInUser,
    Path(org): Path<String>,
) -> ApiResult<Json<OrgWithRole>> {
    let (org, m) = membership_in(state.accounts()?, &user, &org).await?;
    Ok(Json(OrgWithRole {
        org,
        role: Some(m.role),
    }))
}

/// Rename an organization (admin).
#[utoipa::path(patch, path = "/api/v1/orgs/{org}", tag = "orgs", security(("access_token" = [])), request_body = OrgBody,
    params(("org" = String, Path, description = "organization name")),
    responses((status = 200, body = OrgWithRole), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rename_org(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<OrgBody>,
) -> ApiResult<Json<OrgWithRole>> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    need(&m, OrgRole::Admin)?;
    check_org_name(&body.name)?;
    if org.id == prompt_core::domain::DEFAULT_ORG_ID {
        return Err(ApiError::invalid(
            "name",
            "the organization 'default' keeps its name: unqualified project names refer to it",
        ));
    }
    let renamed = accounts.people.rename_org(org.id, &body.name).await?;
    accounts.access.clear();
    accounts
        .audit(
            Some(org.id),
            None,
            Some(user.id),
            &actor(accounts, &user).await?,
            "org.renamed",
            &client,
            json!({"from": org.name, "to": renamed.name}),
        )
        .await;
    Ok(Json(OrgWithRole {
        org: renamed,
        role: Some(m.role),
    }))
}

/// Delete an organization that has no projects (owner).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}", tag = "orgs", security(("access_token" = [])),
    params(("org" = String, Path, description = "organization name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_org(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    Path(org): Path<String>,
) -> ApiResult<StatusCode> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    need(&m, OrgRole::Owner)?;
    if org.id == prompt_core::domain::DEFAULT_ORG_ID {
        return Err(Error::conflict("the organization 'default' cannot be deleted").into());
    }
    accounts.people.delete_org(org.id).await?;
    accounts.access.clear();
    accounts
        .audit(
            Some(org.id),
            None,
            Some(user.id),
            &actor(accounts, &user).await?,
            "org.deleted",
            &client,
            json!({"name": org.name}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Members of an organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    /// Members, by email.
    pub items: Vec<Member>,
}

/// The members of an organization (any member).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/members", tag = "orgs", security(("access_token" = [])),
    params(("org" = String, Path, description = "organization name")),
    responses((status = 200, body = MemberList), (status = 404, body = ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    user: SignedInUser,
    Path(org): Path<String>,
) -> ApiResult<Json<MemberList>> {
    let accounts = state.accounts()?;
    let (org, _) = membership_in(accounts, &user, &org).await?;
    Ok(Json(MemberList {
        items: accounts.people.list_members(org.id).await?,
    }))
}

/// Body of `PATCH /api/v1/orgs/{org}/members/{user}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    /// The new organization role.
    pub role: Option<OrgRole>,
    /// Per-project roles by project name: a role sets the override, `null` clears it.
    #[schema(value_type = Option<Object>)]
    pub project_roles: Option<std::collections::BTreeMap<String, Option<KeyRole>>>,
}

/// Change a member's role (admin; only owners grant or take the owner role), and
/// per-project overrides. The last owner cannot be demoted (409).
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/members/{user}", tag = "orgs", security(("access_token" = [])), request_body = MemberPatch,
    params(("org" = String, Path, description = "organization name"), ("user" = Uuid, Path, description = "user id")),
    responses((status = 200, body = Member), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn patch_member(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    Path((org, member)): Path<(String, String)>,
    ApiJson(body): ApiJson<MemberPatch>,
) -> ApiResult<Json<Member>> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    need(&m, OrgRole::Admin)?;
    let member = parse_user_id(&member)?;
    let current = accounts.people.membership(org.id, member).await?;
    let who = actor(accounts, &user).await?;
    let touches_owner = body.role == Some(OrgRole::Owner)
        || (current.role == OrgRole::Owner
            && (body.role.is_some() || body.project_roles.is_some()));
    if touches_owner && m.role != OrgRole::Owner {
        return Err(ApiError::Forbidden(
            "only owners grant or take the owner role, or change an owner's project roles".into(),
        ));
    }
    // Every project named must exist before anything changes: all or nothing.
    let mut overrides = Vec::new();
    for (project, role) in body.project_roles.unwrap_or_default() {
        overrides.push((org_project(&state, &org, &project).await?, role));
    }
    if let Some(role) = body.role {
        accounts.people.set_member(org.id, member, role).await?;
        accounts
            .audit(
                Some(org.id),
                None,
                Some(member),
                &who,
                "member.role_changed",
                &client,
                json!({"from": current.role, "to": role}),
            )
            .await;
    }
    for (p, role) in overrides {
        accounts.people.set_project_role(p.id, member, role).await?;
        accounts
            .audit(
                Some(org.id),
                Some(p.id),
                Some(member),
                &who,
                "member.project_role_changed",
                &client,
                json!({"project": p.name, "role": role}),
            )
            .await;
    }
    accounts.access.clear();
    let listed = accounts.people.list_members(org.id).await?;
    listed
        .into_iter()
        .find(|x| x.user_id == member)
        .map(Json)
        .ok_or_else(|| Error::not_found(format!("member {member}")).into())
}

/// Remove a member (admin; owners only by owners), or leave (any member removing
/// themselves). The last owner cannot go (409).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/members/{user}", tag = "orgs", security(("access_token" = [])),
    params(("org" = String, Path, description = "organization name"), ("user" = Uuid, Path, description = "user id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    Path((org, member)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    let member = parse_user_id(&member)?;
    if member != user.id {
        need(&m, OrgRole::Admin)?;
        let target = accounts.people.membership(org.id, member).await?;
        if target.role == OrgRole::Owner && m.role != OrgRole::Owner {
            return Err(ApiError::Forbidden("only owners remove an owner".into()));
        }
    }
    accounts.people.remove_member(org.id, member).await?;
    accounts.access.clear();
    accounts
        .audit(
            Some(org.id),
            None,
            Some(member),
            &actor(accounts, &user).await?,
            "member.removed",
            &client,
            json!({}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// An organization name follows the project name rules; the error names `name`.
fn check_org_name(name: &str) -> ApiResult<()> {
    prompt_core::validate::project_name(name).map_err(|e| match e {
        Error::InvalidInput { message, .. } => ApiError::invalid("name", message),
        e => e.into(),
    })
}

fn parse_user_id(s: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(s)
        .map_err(|_| ApiError::invalid("user", format!("'{s}' is not a user id (a UUID)")))
}

async fn org_project(state: &AppState, org: &Organization, name: &str) -> ApiResult<Project> {
    let missing = || {
        ApiError::from(Error::not_found(format!(
            "project '{name}' in organization '{}'",
            org.name
        )))
    };
    let p = match Uuid::parse_str(name) {
        Ok(id) => state.store.project_by_id(id).await,
        Err(_) => {
            state
                .store
                .project_by_name(&format!("{}/{name}", org.name))
                .await
        }
    };
    match p {
        Ok(p) if p.org_id == org.id => Ok(p),
        Ok(_) | Err(Error::NotFound { .. } | Error::InvalidInput { .. }) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

/// Body of `POST /api/v1/orgs/{org}/projects` and its rename.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectBody {
    /// Name, unique in the organization: 1–100 of letters, digits, `_ . -`.
    pub name: String,
}

/// Create a project in the organization (admin).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects", tag = "orgs", security(("access_token" = [])), request_body = ProjectBody,
    params(("org" = String, Path, description = "organization name")),
    responses((status = 201, body = Project), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_project(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<ProjectBody>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    need(&m, OrgRole::Admin)?;
    check_org_name(&body.name)?;
    let p = accounts
        .people
        .create_org_project(org.id, &body.name)
        .await?;
    accounts
        .audit(
            Some(org.id),
            Some(p.id),
            None,
            &actor(accounts, &user).await?,
            "project.created",
            &client,
            json!({"name": p.name}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(p)))
}

/// The organization's projects, by name (any member).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects", tag = "orgs", security(("access_token" = [])),
    params(("org" = String, Path, description = "organization name"), PageQuery),
    responses((status = 200, body = Page<Project>), (status = 404, body = ErrorBody)))]
pub async fn list_projects(
    State(state): State<AppState>,
    user: SignedInUser,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Project>>> {
    let accounts = state.accounts()?;
    let (org, _) = membership_in(accounts, &user, &org).await?;
    Ok(Json(
        accounts.people.list_org_projects(org.id, &q.page()).await?,
    ))
}

/// Rename a project (admin).
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/projects/{project}", tag = "orgs", security(("access_token" = [])), request_body = ProjectBody,
    params(("org" = String, Path, description = "organization name"), ("project" = String, Path, description = "project name or id")),
    responses((status = 200, body = Project), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rename_project(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    Path((org, project)): Path<(String, String)>,
    ApiJson(body): ApiJson<ProjectBody>,
) -> ApiResult<Json<Project>> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    need(&m, OrgRole::Admin)?;
    check_org_name(&body.name)?;
    let p = org_project(&state, &org, &project).await?;
    let renamed = accounts
        .people
        .rename_project(org.id, p.id, &body.name)
        .await?;
    accounts.access.clear();
    accounts
        .audit(
            Some(org.id),
            Some(p.id),
            None,
            &actor(accounts, &user).await?,
            "project.renamed",
            &client,
            json!({"from": p.name, "to": renamed.name}),
        )
        .await;
    Ok(Json(renamed))
}

/// Delete an empty project (admin): 409 while it holds prompts, runs, keys or
/// credentials.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/projects/{project}", tag = "orgs", security(("access_token" = [])),
    params(("org" = String, Path, description = "organization name"), ("project" = String, Path, description = "project name or id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_project(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    Path((org, project)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    need(&m, OrgRole::Admin)?;
    let p = org_project(&state, &org, &project).await?;
    accounts.people.delete_project(org.id, p.id).await?;
    accounts.access.clear();
    accounts
        .audit(
            Some(org.id),
            Some(p.id),
            None,
            &actor(accounts, &user).await?,
            "project.deleted",
            &client,
            json!({"name": p.name}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log of an organization (admin), newest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit", tag = "orgs", security(("access_token" = [])),
    params(("org" = String, Path, description = "organization name"), PageQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    user: SignedInUser,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    need(&m, OrgRole::Admin)?;
    Ok(Json(accounts.people.list_audit(org.id, &q.page()).await?))
}
