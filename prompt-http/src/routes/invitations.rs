//! `/api/v1/orgs/{org}/invitations` and `/api/v1/invitations/accept`: inviting an email
//! into an organization with a role, and accepting by the single-use token that only
//! the invited mailbox receives.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Duration as ChronoDuration;
use prompt_core::Error;
use prompt_core::domain::{Invitation, Membership, OrgRole, new_id, now};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::orgs::{actor, membership_in, need};
use crate::accounts::web::SignedInUser;
use crate::accounts::{ClientInfo, actor_of, check_email, tokens};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

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
