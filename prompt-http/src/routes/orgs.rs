//! `/api/v1/orgs*`: organizations, their members, invitations, projects and audit log,
//! for signed-in users. An organization the user is not a member of answers 404.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Duration as ChronoDuration;
use prompt_core::domain::{Invitation, Membership, OrgRole, Organization, new_id, now};
use prompt_core::{AuditEntry, Error, KeyRole, Member, OrgWithRole, Page, PageRequest, Project};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::accounts::web::SignedInUser;
use crate::accounts::{Accounts, ClientInfo, actor_of, check_email, tokens};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

/// The organization `name` and the caller's membership: 404 unless a member.
async fn membership_in(
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

fn need(m: &Membership, role: OrgRole) -> ApiResult<()> {
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

async fn actor(accounts: &Accounts, user: &SignedInUser) -> ApiResult<String> {
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

/// Body of `POST /api/v1/orgs/{org}/invitations`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationBody {
    /// Who to invite.
    pub email: String,
    /// The role given on acceptance (`member` by default).
    #[serde(default = "default_role")]
    pub role: OrgRole,
}

fn default_role() -> OrgRole {
    OrgRole::Member
}

/// A new invitation. Its token goes only to the invited address (or, without SMTP,
/// into the server's log for an operator): shown to the inviter, it would let anyone
/// with an organization make a verified account for any address.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewInvitation {
    /// The invitation.
    #[serde(flatten)]
    pub invitation: Invitation,
}

/// Invitations of an organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    /// Open invitations, newest first.
    pub items: Vec<Invitation>,
}

/// Invite an email with a role (admin; owner invitations by owners).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/invitations", tag = "orgs", security(("access_token" = [])), request_body = InvitationBody,
    params(("org" = String, Path, description = "organization name")),
    responses((status = 201, body = NewInvitation), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_invitation(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<InvitationBody>,
) -> ApiResult<(StatusCode, Json<NewInvitation>)> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    need(&m, OrgRole::Admin)?;
    if body.role == OrgRole::Owner && m.role != OrgRole::Owner {
        return Err(ApiError::Forbidden("only owners invite owners".into()));
    }
    let email = check_email("email", &body.email)?;
    let token = tokens::random_token();
    let at = now();
    let who = actor(accounts, &user).await?;
    let ttl = ChronoDuration::from_std(accounts.config.invitation_ttl)
        .map_err(|e| Error::internal(format!("invitation lifetime: {e}")))?;
    let invitation = accounts
        .people
        .create_invitation(Invitation {
            id: new_id(),
            org_id: org.id,
            email: email.clone(),
            role: body.role,
            token_hash: tokens::hash_token(&token),
            invited_by: who.clone(),
            created_at: at,
            expires_at: at + ttl,
            accepted_at: None,
            revoked_at: None,
        })
        .await?;
    let link = format!(
        "{}/accept-invitation?token={token}",
        accounts.config.public_url
    );
    accounts.mailer.send_later(crate::accounts::mail::Mail {
        to: email.clone(),
        subject: format!("You are invited to {} on Prompt Registry", org.name),
        body: format!(
            "{who} invited you to the organization {} as {}.\nAccept: {link}\n(sign up with this email address, or sign in and POST the token to /api/v1/invitations/accept)\n\nToken: {token}",
            org.name,
            body.role.as_str()
        ),
        link,
    });
    accounts
        .audit(
            Some(org.id),
            None,
            None,
            &who,
            "invitation.created",
            &client,
            json!({"email": email, "role": body.role, "invitation": invitation.id}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(NewInvitation { invitation })))
}

/// Open invitations (admin).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/invitations", tag = "orgs", security(("access_token" = [])),
    params(("org" = String, Path, description = "organization name")),
    responses((status = 200, body = InvitationList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_invitations(
    State(state): State<AppState>,
    user: SignedInUser,
    Path(org): Path<String>,
) -> ApiResult<Json<InvitationList>> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    need(&m, OrgRole::Admin)?;
    Ok(Json(InvitationList {
        items: accounts.people.list_invitations(org.id).await?,
    }))
}

/// Revoke an open invitation (admin).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/invitations/{id}", tag = "orgs", security(("access_token" = [])),
    params(("org" = String, Path, description = "organization name"), ("id" = Uuid, Path, description = "invitation id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let accounts = state.accounts()?;
    let (org, m) = membership_in(accounts, &user, &org).await?;
    need(&m, OrgRole::Admin)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::invalid("id", format!("'{id}' is not an invitation id (a UUID)")))?;
    accounts.people.revoke_invitation(org.id, id).await?;
    accounts
        .audit(
            Some(org.id),
            None,
            None,
            &actor(accounts, &user).await?,
            "invitation.revoked",
            &client,
            json!({"invitation": id}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/invitations/accept`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// The invitation's token.
    pub token: String,
}

/// Accept an invitation as the signed-in user, whose verified email must be the one
/// invited. Single use; an unknown, used, revoked or expired token answers 404.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "orgs", security(("access_token" = [])), request_body = AcceptBody,
    responses((status = 200, body = Membership), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    client: ClientInfo,
    user: SignedInUser,
    ApiJson(body): ApiJson<AcceptBody>,
) -> ApiResult<Json<Membership>> {
    let accounts = state.accounts()?;
    let refused = || {
        ApiError::from(Error::not_found(
            "invitation (unknown, used, revoked or expired)",
        ))
    };
    let hash = tokens::hash_token(&body.token);
    let inv = accounts
        .people
        .invitation_by_hash(&hash)
        .await
        .map_err(|_| refused())?;
    if !inv.is_open(now()) {
        return Err(refused());
    }
    let u = accounts.people.user_by_id(user.id).await?;
    if !inv.email.eq_ignore_ascii_case(&u.email) {
        return Err(ApiError::Forbidden(
            "this invitation was sent to another email address".into(),
        ));
    }
    if !u.email_verified {
        return Err(ApiError::Forbidden(
            "verify your email address before accepting an invitation (POST /api/auth/verify-email/send)".into(),
        ));
    }
    let m = accounts
        .people
        .accept_invitation(&hash, user.id, now())
        .await
        .map_err(|e| match e {
            Error::NotFound { .. } => refused(),
            e => e.into(),
        })?;
    accounts.access.clear();
    accounts
        .audit(
            Some(m.org_id),
            None,
            Some(user.id),
            &actor_of(&u),
            "invitation.accepted",
            &client,
            json!({"role": m.role, "invitation": inv.id}),
        )
        .await;
    Ok(Json(m))
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

/// Query of project listings.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl PageQuery {
    fn page(self) -> PageRequest {
        PageRequest {
            limit: self.limit,
            cursor: self.cursor,
        }
    }
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
