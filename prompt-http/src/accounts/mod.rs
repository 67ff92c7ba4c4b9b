//! People on the service: sign-up, sign-in, sessions, email flows, invitations and the
//! audit log, over a [`PeopleStore`].
//!
//! The HTTP handlers (`routes::auth`, `routes::users`, `routes::orgs`) and the CLI call
//! these flows; the rules live here once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prompt_core::domain::{
    AuditEntry, AuthSession, NewUser, Rotation, User, UserUpdate, new_id, now,
};
use prompt_core::{Error, PeopleStore, Result};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;

pub use config::{AccountsConfig, ClientInfo, SignupPolicy, check_email, check_name};

pub mod access;
mod config;
mod links;
pub mod mail;
pub mod password;
pub mod social;
pub mod throttle;
pub mod tokens;
pub mod web;

use mail::{Mail, Mailer};
use throttle::LoginThrottle;
use tokens::Keys;

/// The outcome of a sign-in or refresh: tokens to hand to the client.
#[derive(Clone)]
pub struct SignedIn {
    /// The user.
    pub user: User,
    /// The session.
    pub session: AuthSession,
    /// The access token (JWT).
    pub access_token: String,
    /// When it expires.
    pub access_expires_at: DateTime<Utc>,
    /// The refresh token (opaque; only its hash is stored).
    pub refresh_token: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("user", &self.user.id)
            .field("session", &self.session.id)
            .finish_non_exhaustive()
    }
}

/// The people features of a running service.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// The store.
    pub people: Arc<dyn PeopleStore>,
    /// Access-token signing keys.
    pub keys: Keys,
    /// Where account emails go.
    pub mailer: Mailer,
    /// Settings.
    pub config: Arc<AccountsConfig>,
    /// The sign-in throttle.
    pub throttle: Arc<LoginThrottle>,
    /// Users' roles in projects, briefly cached.
    pub access: access::AccessCache,
    /// The social sign-in providers.
    pub social: social::SocialProviders,
    /// Password hashes computed at once: one per core. An argon2id hash takes 19 MiB
    /// and a core for ~20 ms, so a burst of sign-ins queues here instead of growing
    /// memory and starving the other requests' threads.
    pub hashing: Arc<tokio::sync::Semaphore>,
}

/// The one answer to a failed sign-in, whatever failed.
pub const BAD_CREDENTIALS: &str = "invalid email or password";

fn secs(d: Duration) -> Result<chrono::Duration> {
    chrono::Duration::from_std(d).map_err(|e| Error::internal(format!("duration: {e}")))
}

impl Accounts {
    /// Set up over `people`: load (or make) the signing keys, warm the dummy hash.
    pub async fn new(
        people: Arc<dyn PeopleStore>,
        mailer: Mailer,
        config: AccountsConfig,
    ) -> Result<Self> {
        let keys = Keys::load(people.clone(), config.access_ttl, config.key_rotation).await?;
        tokio::task::spawn_blocking(password::warm_up)
            .await
            .map_err(|e| Error::internal(format!("warming the password hasher: {e}")))?;
        Ok(Accounts {
            people,
            keys,
            mailer,
            throttle: Arc::new(LoginThrottle::new(config.throttle)),
            access: access::AccessCache::new(config.access_cache_ttl),
            social: social::SocialProviders::new(&config.social),
            hashing: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            )),
            config: Arc::new(config),
        })
    }

    /// Append an audit entry; a failure is logged, never hidden from the operator, and
    /// does not fail the action that was already done.
    #[expect(
        clippy::too_many_arguments,
        reason = "the entry's fields, each named at the call site; a struct literal per call would only add noise"
    )]
    pub async fn audit(
        &self,
        org: Option<Uuid>,
        project: Option<Uuid>,
        user: Option<Uuid>,
        actor: &str,
        action: &str,
        client: &ClientInfo,
        data: Value,
    ) {
        let entry = AuditEntry {
            id: new_id(),
            org_id: org,
            project_id: project,
            user_id: user,
            actor: actor.to_owned(),
            action: action.to_owned(),
            ip: client.ip.map(|ip| ip.to_string()),
            data,
            at: now(),
        };
        if let Err(e) = self.people.append_audit(entry).await {
            tracing::error!(error = %e, action, "an audit entry could not be written");
        }
    }

    /// Hash a password off the async threads.
    pub async fn hash_password(&self, password: &str) -> Result<String> {
        let _slot = self
            .hashing
            .acquire()
            .await
            .map_err(|e| Error::internal(format!("password hashing slots: {e}")))?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || password::hash_password(&password))
            .await
            .map_err(|e| Error::internal(format!("password hashing task: {e}")))?
    }

    async fn verify_password(&self, hash: Option<String>, password: &str) -> bool {
        let Ok(_slot) = self.hashing.acquire().await else {
            return false;
        };
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || match hash {
            Some(h) => password::verify_password(&h, &password),
            None => {
                password::verify_dummy(&password);
                false
            }
        })
        .await
        .unwrap_or(false)
    }

    /// Check the current password of `user` before a sensitive change: 422 when it
    /// is needed and missing, 403 when wrong; accounts without a password pass.
    pub async fn confirm_current_password(
        &self,
        user: &User,
        given: Option<&str>,
    ) -> Result<(), ApiError> {
        match (&user.password_hash, given) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(ApiError::invalid(
                "password",
                "confirm with the account's current password",
            )),
            (Some(h), Some(p)) => {
                // Guesses count against the account as sign-in failures do: a stolen
                // access token is not a way around the throttle.
                let (account, _) = Self::throttle_keys(&user.email, &ClientInfo::default());
                let attempt = self
                    .throttle
                    .begin(vec![(account, true)])
                    .map_err(rate_limited)?;
                if self.verify_password(Some(h.clone()), p).await {
                    attempt.succeeded();
                    Ok(())
                } else {
                    attempt.failed();
                    Err(ApiError::Forbidden("the current password is wrong".into()))
                }
            }
        }
    }

    /// Sign up. Answers the same whether or not the email is taken (no enumeration):
    /// a new account gets a verification email; an existing one gets a notice that
    /// someone tried to sign up with it. With `invitation`, the invitation's email must
    /// be the one given; the account is then verified and joins the organization.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: Option<&str>,
        invitation: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Option<User>> {
        let email = check_email("email", email)?;
        if email.to_ascii_lowercase().ends_with(".invalid") {
            // Reserved (RFC 2606): the placeholder addresses of social accounts that
            // come without an email live there.
            return Err(Error::invalid(
                "email",
                format!("'{email}' is in the reserved domain .invalid"),
            ));
        }
        let name = match name {
            Some(n) => check_name("name", n)?,
            None => email.split('@').next().unwrap_or("user").to_owned(),
        };
        password::check_policy("password", password, &email, &name)?;
        let invite = match invitation {
            Some(token) => {
                let inv = self
                    .people
                    .invitation_by_hash(&tokens::hash_token(token))
                    .await
                    .map_err(|_| invitation_refused())?;
                if !inv.is_open(now()) {
                    return Err(invitation_refused());
                }
                if !inv.email.eq_ignore_ascii_case(&email) {
                    return Err(Error::Forbidden {
                        message: "this invitation was sent to another email address".into(),
                    });
                }
                Some(token.to_owned())
            }
            None => None,
        };
        match (self.config.signup, &invite) {
            (SignupPolicy::Closed, _) => {
                return Err(Error::Forbidden {
                    message: "sign-up is closed on this server; ask an operator for an account"
                        .into(),
                });
            }
            (SignupPolicy::InviteOnly, None) => {
                return Err(Error::Forbidden {
                    message: "sign-up needs an invitation on this server".into(),
                });
            }
            _ => {}
        }
        let hash = self.hash_password(password).await?;
        let created = self
            .people
            .create_user(NewUser {
                email: email.clone(),
                name,
                password_hash: Some(hash),
                email_verified: invite.is_some(),
            })
            .await;
        match created {
            Ok(user) => {
                self.audit(
                    None,
                    None,
                    Some(user.id),
                    &actor_of(&user),
                    "user.registered",
                    client,
                    json!({}),
                )
                .await;
                if let Some(token) = invite {
                    let m = self
                        .people
                        .accept_invitation(&tokens::hash_token(&token), user.id, now())
                        .await?;
                    self.audit(
                        Some(m.org_id),
                        None,
                        Some(user.id),
                        &actor_of(&user),
                        "invitation.accepted",
                        client,
                        json!({"role": m.role}),
                    )
                    .await;
                } else {
                    self.send_verification(&user).await?;
                }
                Ok(Some(user))
            }
            Err(Error::AlreadyExists { .. }) => {
                self.mailer.send_later(Mail {
                    to: email.clone(),
                    subject: "Someone tried to sign up with your email".into(),
                    body: format!(
                        "Someone tried to create a Prompt Registry account with {email}, \
                         which already has one. If it was you, sign in or reset your \
                         password at {}/api/auth/password-reset.",
                        self.config.public_url
                    ),
                    link: format!("{}/api/auth/password-reset", self.config.public_url),
                });
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The throttle's keys of a sign-in: the account's and the client address's.
    pub fn throttle_keys(email: &str, client: &ClientInfo) -> (String, Option<String>) {
        (
            format!("account:{}", email.to_ascii_lowercase()),
            client.ip.map(|ip| format!("address:{ip}")),
        )
    }

    /// Sign in with email and password. Unknown email and wrong password answer the
    /// same `Unauthorized` after the same work; throttled attempts answer
    /// `RateLimited` with the wait.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<SignedIn, ApiError> {
        let email = check_email("email", email)?;
        if password.is_empty() || password.len() > password::MAX_PASSWORD_BYTES {
            return Err(ApiError::invalid(
                "password",
                format!("must be 1 to {} bytes", password::MAX_PASSWORD_BYTES),
            ));
        }
        let (account, address) = Self::throttle_keys(&email, client);
        let mut keys = vec![(account, true)];
        keys.extend(address.map(|a| (a, false)));
        // The attempt holds its place before the password is checked: guesses sent
        // all at once cannot all pass before the first failure is counted.
        let attempt = self.throttle.begin(keys).map_err(rate_limited)?;
        let user = match self.people.user_by_email(&email).await {
            Ok(u) => Some(u),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let ok = self
            .verify_password(
                user.as_ref().and_then(|u| u.password_hash.clone()),
                password,
            )
            .await;
        let target = user.as_ref().map(|u| u.id);
        let Some(user) = user.filter(|_| ok) else {
            let locked = attempt.failed();
            // About the account when it exists, so that its organizations see it.
            self.audit(
                None,
                None,
                target,
                "anonymous",
                "auth.login_failed",
                client,
                json!({"email": email, "locked_out_secs": locked.map(|d| d.as_secs())}),
            )
            .await;
            return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
        };
        attempt.succeeded();
        if self.config.require_verified_email && !user.email_verified {
            return Err(ApiError::Forbidden("verify your email address first: follow the link sent to it (POST /api/auth/verify-email/send sends a new one)".into()));
        }
        if user
            .password_hash
            .as_deref()
            .is_some_and(password::needs_rehash)
        {
            let hash = self.hash_password(password).await?;
            self.people
                .update_user(
                    user.id,
                    UserUpdate {
                        password_hash: Some(hash),
                        ..UserUpdate::default()
                    },
                )
                .await?;
        }
        let signed = self.start_session(user, client).await?;
        self.audit(
            None,
            None,
            Some(signed.user.id),
            &actor_of(&signed.user),
            "auth.login",
            client,
            json!({"session": signed.session.id, "method": "password"}),
        )
        .await;
        Ok(signed)
    }

    /// Open a session for `user` (after any successful sign-in) and record the sign-in.
    pub async fn start_session(&self, user: User, client: &ClientInfo) -> Result<SignedIn> {
        let refresh = tokens::random_token();
        let at = now();
        let session = self
            .people
            .create_session(AuthSession {
                id: new_id(),
                user_id: user.id,
                token_hash: tokens::hash_token(&refresh),
                user_agent: client.user_agent.clone(),
                ip: client.ip.map(|ip| ip.to_string()),
                created_at: at,
                last_used_at: at,
                expires_at: at + secs(self.config.refresh_ttl)?,
                revoked_at: None,
            })
            .await?;
        let user = self
            .people
            .update_user(
                user.id,
                UserUpdate {
                    last_login_at: Some(at),
                    ..UserUpdate::default()
                },
            )
            .await?;
        let (access_token, access_expires_at) = self.keys.issue(user.id, session.id)?;
        Ok(SignedIn {
            user,
            session,
            access_token,
            access_expires_at,
            refresh_token: refresh,
        })
    }

    /// Rotate a refresh token. A rotated token presented again revokes its session
    /// (and is audited); unknown, expired or revoked tokens answer `Unauthorized`.
    pub async fn refresh(&self, token: &str, client: &ClientInfo) -> Result<SignedIn> {
        let refused = || Error::Unauthorized {
            message: "invalid, expired or revoked refresh token: sign in again".into(),
        };
        if token.is_empty() || token.len() > 200 {
            return Err(refused());
        }
        let new = tokens::random_token();
        let at = now();
        let rotation = self
            .people
            .rotate_session(
                &tokens::hash_token(token),
                &tokens::hash_token(&new),
                at + secs(self.config.refresh_ttl)?,
                at,
            )
            .await;
        match rotation {
            Ok(Rotation::Rotated(session)) => {
                let user = self.people.user_by_id(session.user_id).await?;
                let (access_token, access_expires_at) = self.keys.issue(user.id, session.id)?;
                Ok(SignedIn {
                    user,
                    session,
                    access_token,
                    access_expires_at,
                    refresh_token: new,
                })
            }
            Ok(Rotation::Reused(session)) => {
                self.access.clear();
                self.audit(
                    None,
                    None,
                    Some(session.user_id),
                    "anonymous",
                    "auth.refresh_reused",
                    client,
                    json!({"session": session.id, "action": "session revoked"}),
                )
                .await;
                Err(refused())
            }
            Err(Error::NotFound { .. }) => Err(refused()),
            Err(e) => Err(e),
        }
    }
}

/// The actor string of a user in audit fields and authorship.
pub fn actor_of(user: &User) -> String {
    format!("user:{}", user.email)
}

fn invitation_refused() -> Error {
    Error::not_found("invitation (unknown, used, revoked or expired)")
}

fn link_refused() -> Error {
    Error::not_found("token (unknown, used or expired): ask for a new link")
}

/// The answer to a throttled sign-in: 429 with `Retry-After`.
pub fn rate_limited(wait: Duration) -> ApiError {
    ApiError::RateLimited {
        message: format!(
            "too many failed sign-ins: try again in {} s",
            wait.as_secs().max(1)
        ),
        retry_after: Duration::from_secs(wait.as_secs().max(1)),
    }
}
