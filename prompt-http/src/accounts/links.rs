//! The flows of single-use links sent by email: email verification, password reset
//! and first passwords (accounts made with the CLI).

use prompt_core::domain::{OneTimeToken, TokenPurpose, User, UserUpdate, now};
use prompt_core::{Error, Result};
use serde_json::json;
use uuid::Uuid;

use super::mail::Mail;
use super::{Accounts, ClientInfo, actor_of, check_email, link_refused, password, secs, tokens};

impl Accounts {
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
}
