//! People on the service: sign-up, sign-in, sessions, email flows, invitations and the
//! audit log, over a [`PeopleStore`].
//!
//! The HTTP handlers (`routes::auth`, `routes::users`, `routes::orgs`) and the CLI call
//! these flows; the rules live here once.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prompt_core::domain::{
    AuditEntry, AuthSession, NewUser, OneTimeToken, Rotation, TokenPurpose, User, UserUpdate,
    new_id, now,
};
use prompt_core::{Error, PeopleStore, Result};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;

pub mod access;
pub mod mail;
pub mod password;
pub mod social;
pub mod throttle;
pub mod tokens;
pub mod web;

use mail::{Mail, Mailer};
use throttle::{LoginThrottle, ThrottleConfig};
use tokens::Keys;

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

    /// Make and send a verification link for `user`.
    pub async fn send_verification(&self, user: &User) -> Result<()> {
        let token = self.one_time(user.id, TokenPurpose::VerifyEmail).await?;
        let link = format!("{}/verify-email?token={token}", self.config.public_url);
        self.mailer.send_later(Mail {
            to: user.email.clone(),
            subject: "Verify your email for Prompt Registry".into(),
            body: format!(
                "Confirm that {} is your address: {link}\n(or POST the token to /api/auth/verify-email)\n\nToken: {token}",
                user.email
            ),
            link,
        });
        Ok(())
    }

    async fn one_time(&self, user: Uuid, purpose: TokenPurpose) -> Result<String> {
        let token = tokens::random_token();
        let at = now();
        self.people
            .create_token(OneTimeToken {
                token_hash: tokens::hash_token(&token),
                purpose,
                user_id: user,
                created_at: at,
                expires_at: at + secs(self.config.link_ttl)?,
            })
            .await?;
        Ok(token)
    }

    /// A link to set a first password (for accounts made with the CLI).
    pub async fn set_password_link(&self, user: &User) -> Result<String> {
        let token = self.one_time(user.id, TokenPurpose::SetPassword).await?;
        Ok(format!(
            "{}/set-password?token={token}  (or POST {{\"token\": \"{token}\", \"password\": \"…\"}} to {}/api/auth/password-reset/confirm)",
            self.config.public_url, self.config.public_url
        ))
    }

    /// Use a verification token.
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> Result<User> {
        let t = self
            .people
            .consume_token(TokenPurpose::VerifyEmail, &tokens::hash_token(token), now())
            .await
            .map_err(|_| link_refused())?;
        let user = self
            .people
            .update_user(
                t.user_id,
                UserUpdate {
                    email_verified: Some(true),
                    ..UserUpdate::default()
                },
            )
            .await?;
        self.access.clear();
        self.audit(
            None,
            None,
            Some(user.id),
            &actor_of(&user),
            "user.email_verified",
            client,
            json!({}),
        )
        .await;
        Ok(user)
    }

    /// Ask for a password reset: answers the same whether or not the email is known.
    pub async fn request_reset(&self, email: &str, client: &ClientInfo) -> Result<()> {
        let email = check_email("email", email)?;
        // The answer comes before any work that only a known email does (the token,
        // the mail, the audit entry), so its timing does not tell whether the email
        // has an account.
        let this = self.clone();
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(e) = this.send_reset(&email, &client).await {
                tracing::warn!(error = %e, "a password-reset request could not be completed");
            }
        });
        Ok(())
    }

    async fn send_reset(&self, email: &str, client: &ClientInfo) -> Result<()> {
        let user = match self.people.user_by_email(email).await {
            Ok(user) => user,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let token = self.one_time(user.id, TokenPurpose::PasswordReset).await?;
        let link = format!("{}/reset-password?token={token}", self.config.public_url);
        self.mailer.send_later(Mail {
            to: user.email.clone(),
            subject: "Reset your Prompt Registry password".into(),
            body: format!(
                "Set a new password: {link}\n(or POST the token and a new password to /api/auth/password-reset/confirm)\n\nToken: {token}\n\nIf you did not ask for this, ignore this email."
            ),
            link,
        });
        self.audit(
            None,
            None,
            Some(user.id),
            "anonymous",
            "auth.password_reset_requested",
            client,
            json!({}),
        )
        .await;
        Ok(())
    }

    /// Set a new password with a reset (or set-password) token; every session of the
    /// user is revoked, and the email counts as verified (the link reached it).
    pub async fn confirm_reset(
        &self,
        token: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<User> {
        let hash = tokens::hash_token(token);
        let t = match self
            .people
            .consume_token(TokenPurpose::PasswordReset, &hash, now())
            .await
        {
            Ok(t) => t,
            Err(Error::NotFound { .. }) => self
                .people
                .consume_token(TokenPurpose::SetPassword, &hash, now())
                .await
                .map_err(|_| link_refused())?,
            Err(e) => return Err(e),
        };
        let user = self.people.user_by_id(t.user_id).await?;
        // The token is used either way: a weak password means asking for a new link,
        // which is the safe side.
        password::check_policy("password", password, &user.email, &user.name)?;
        let user = self
            .people
            .update_user(
                user.id,
                UserUpdate {
                    password_hash: Some(self.hash_password(password).await?),
                    email_verified: Some(true),
                    ..UserUpdate::default()
                },
            )
            .await?;
        self.people.revoke_sessions(user.id, now()).await?;
        self.access.clear();
        self.audit(
            None,
            None,
            Some(user.id),
            &actor_of(&user),
            "auth.password_changed",
            client,
            json!({}),
        )
        .await;
        Ok(user)
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
