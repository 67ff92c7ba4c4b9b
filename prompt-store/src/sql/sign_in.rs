//! The sign-in half of [`prompt_core::PeopleStore`] on any SQL dialect: invitations,
//! sessions and their rotating refresh tokens, one-time tokens, social accounts, the
//! audit log and the signing keys (see [`super::people`] for how the invariants hold
//! under concurrency).
//!
//! Over 600 lines: one subject per section, each a handful of statements with their
//! row mapping; splitting further would scatter the shared column lists.

use chrono::{DateTime, Utc};
use prompt_core::domain::{
    AuditEntry, AuthSession, Invitation, Membership, OneTimeToken, OrgRole, Rotation, SigningKey,
    SocialAccount, TokenPurpose, User,
};
use prompt_core::page::{Page, PageRequest};
use prompt_core::{Error, Result};
use sqlx::{ColumnIndex, Decode, Encode, Executor, QueryBuilder, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::people::{opt_time, user_cols};
use super::store::{begin_write, finish, write};
use super::{Failure, SqlStore, is_foreign_key_violation, is_unique_violation};

macro_rules! invitation_cols {
    () => {
        "id, org_id, email, role, token_hash, invited_by, created_at, expires_at, accepted_at, \
         revoked_at"
    };
}

macro_rules! session_cols {
    () => {
        "id, user_id, token_hash, user_agent, ip, created_at, last_used_at, expires_at, revoked_at"
    };
}

macro_rules! audit_cols {
    () => {
        "id, org_id, project_id, user_id, actor, action, ip, data, at"
    };
}

fn session_not_found() -> Error {
    Error::not_found("session")
}

#[expect(
    private_bounds,
    reason = "crate-internal helpers of the generic store: its public surface is the store traits"
)]
impl<D, S> SqlStore<D, S>
where
    D: Dialect<State = S>,
    S: Send + Sync + 'static,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'a> &'a str: ColumnIndex<D::Row>,
    for<'q> Uuid: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> String: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> bool: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> Vec<u8>: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> Option<String>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
    for<'q> Option<Uuid>: Encode<'q, D> + Decode<'q, D>,
    for<'q> Option<D::Time>: Encode<'q, D>,
    for<'q> Option<D::TextList>: Encode<'q, D>,
{
    fn invitation_from_row(r: &D::Row) -> Result<Invitation, Failure> {
        Ok(Invitation {
            id: r.try_get("id")?,
            org_id: r.try_get("org_id")?,
            email: r.try_get("email")?,
            role: OrgRole::parse(&r.try_get::<String, _>("role")?)?,
            token_hash: r.try_get("token_hash")?,
            invited_by: r.try_get("invited_by")?,
            created_at: D::from_time(r.try_get("created_at")?)?,
            expires_at: D::from_time(r.try_get("expires_at")?)?,
            accepted_at: opt_time::<D>(r, "accepted_at")?,
            revoked_at: opt_time::<D>(r, "revoked_at")?,
        })
    }

    fn session_from_row(r: &D::Row) -> Result<AuthSession, Failure> {
        Ok(AuthSession {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            token_hash: r.try_get("token_hash")?,
            user_agent: r.try_get("user_agent")?,
            ip: r.try_get("ip")?,
            created_at: D::from_time(r.try_get("created_at")?)?,
            last_used_at: D::from_time(r.try_get("last_used_at")?)?,
            expires_at: D::from_time(r.try_get("expires_at")?)?,
            revoked_at: opt_time::<D>(r, "revoked_at")?,
        })
    }

    fn social_from_row(r: &D::Row) -> Result<SocialAccount, Failure> {
        Ok(SocialAccount {
            provider: r.try_get("provider")?,
            subject: r.try_get("subject")?,
            user_id: r.try_get("user_id")?,
            email: r.try_get("email")?,
            created_at: D::from_time(r.try_get("created_at")?)?,
        })
    }

    fn audit_from_row(r: &D::Row) -> Result<AuditEntry, Failure> {
        Ok(AuditEntry {
            id: r.try_get("id")?,
            org_id: r.try_get("org_id")?,
            project_id: r.try_get("project_id")?,
            user_id: r.try_get("user_id")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            ip: r.try_get("ip")?,
            data: D::from_json("data", r.try_get("data")?)?,
            at: D::from_time(r.try_get("at")?)?,
        })
    }

    fn signing_key_from_row(r: &D::Row) -> Result<SigningKey, Failure> {
        Ok(SigningKey {
            id: r.try_get("id")?,
            secret: r.try_get("secret")?,
            created_at: D::from_time(r.try_get("created_at")?)?,
            retired_at: opt_time::<D>(r, "retired_at")?,
        })
    }

    // ----- invitations -----

    pub(super) async fn insert_invitation(&self, i: Invitation) -> Result<Invitation> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(concat!(
                "INSERT INTO invitations (",
                invitation_cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(i.id)
            .bind(i.org_id)
            .bind(&i.email)
            .bind(i.role.as_str())
            .bind(&i.token_hash)
            .bind(&i.invited_by)
            .bind(D::time(i.created_at))
            .bind(D::time(i.expires_at))
            .bind(i.accepted_at.map(D::time))
            .bind(i.revoked_at.map(D::time))
            .execute(&self.writer)
            .await;
            match r {
                Ok(_) => Ok(i.clone()),
                Err(e) if is_unique_violation(&e) => {
                    Err(Error::already_exists("invitation").into())
                }
                Err(e) if is_foreign_key_violation(&e) => {
                    Err(Error::not_found(format!("organization {}", i.org_id)).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    pub(super) async fn open_invitations(&self, org: Uuid) -> Result<Vec<Invitation>> {
        finish::<D, _>(
            async {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    invitation_cols!(),
                    " FROM invitations WHERE org_id = $1 AND accepted_at IS NULL \
                     AND revoked_at IS NULL ORDER BY created_at DESC, id DESC"
                ))
                .bind(org)
                .fetch_all(&self.reader)
                .await?;
                rows.iter().map(Self::invitation_from_row).collect()
            }
            .await,
        )
    }

    pub(super) async fn close_invitation(&self, org: Uuid, id: Uuid) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(
                "UPDATE invitations SET revoked_at = $1 WHERE id = $2 AND org_id = $3 \
                 AND accepted_at IS NULL AND revoked_at IS NULL",
            )
            .bind(D::time(prompt_core::domain::now()))
            .bind(id)
            .bind(org)
            .execute(&self.writer)
            .await?;
            if D::rows_affected(&r) == 0 {
                return Err(Error::not_found(format!("invitation {id}")).into());
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn invitation_with_hash(&self, token_hash: &str) -> Result<Invitation> {
        finish::<D, _>(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    invitation_cols!(),
                    " FROM invitations WHERE token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found("invitation"))?;
                Self::invitation_from_row(&row)
            }
            .await,
        )
    }

    pub(super) async fn accept(
        &self,
        token_hash: &str,
        user: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Membership> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            // Taken by the one UPDATE that still finds it open.
            let row = sqlx::query(
                "UPDATE invitations SET accepted_at = $1 WHERE token_hash = $2 \
                 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
                 RETURNING org_id, role",
            )
            .bind(D::time(at))
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("invitation"))?;
            let org: Uuid = row.try_get("org_id")?;
            let invited = OrgRole::parse(&row.try_get::<String, _>("role")?)?;
            Self::lock_org(&mut tx, org).await?;
            let current =
                sqlx::query("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                    .bind(org)
                    .bind(user)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get::<String, _>("role"))
                    .transpose()?
                    .map(|r| OrgRole::parse(&r))
                    .transpose()?;
            let role = current.map_or(invited, |c| c.max(invited));
            let m = Self::put_member(&mut tx, org, user, role).await?;
            let woken = self.member_changed(&mut tx, org, None, user).await?;
            tx.commit().await?;
            self.committed_all(woken);
            Ok(m)
        })
        .await
    }

    // ----- sessions -----

    pub(super) async fn insert_session(&self, s: AuthSession) -> Result<AuthSession> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(concat!(
                "INSERT INTO auth_sessions (",
                session_cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .bind(s.id)
            .bind(s.user_id)
            .bind(&s.token_hash)
            .bind(&s.user_agent)
            .bind(&s.ip)
            .bind(D::time(s.created_at))
            .bind(D::time(s.last_used_at))
            .bind(D::time(s.expires_at))
            .bind(s.revoked_at.map(D::time))
            .execute(&self.writer)
            .await;
            match r {
                Ok(_) => Ok(s.clone()),
                Err(e) if is_unique_violation(&e) => Err(Error::already_exists("session").into()),
                Err(e) if is_foreign_key_violation(&e) => {
                    Err(Error::not_found(format!("user {}", s.user_id)).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    pub(super) async fn session_with_id(&self, id: Uuid) -> Result<AuthSession> {
        finish::<D, _>(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM auth_sessions WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found(format!("session {id}")))?;
                Self::session_from_row(&row)
            }
            .await,
        )
    }

    pub(super) async fn session_with_token(&self, token_hash: &str) -> Result<AuthSession> {
        finish::<D, _>(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM auth_sessions WHERE token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found("session"))?;
                Self::session_from_row(&row)
            }
            .await,
        )
    }

    pub(super) async fn rotate(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Rotation> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            // The current token of a live session: one UPDATE takes it. A concurrent
            // rotation of the same token waits for this row, then no longer matches
            // (the hash changed) and finds the old hash among the rotated ones below.
            let rotated = sqlx::query(concat!(
                "UPDATE auth_sessions SET token_hash = $1, expires_at = $2, last_used_at = $3 \
                 WHERE token_hash = $4 AND revoked_at IS NULL AND expires_at > $3 RETURNING ",
                session_cols!()
            ))
            .bind(new_hash)
            .bind(D::time(new_expires_at))
            .bind(D::time(at))
            .bind(old_hash)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = rotated {
                let session = Self::session_from_row(&row)?;
                sqlx::query(
                    "INSERT INTO rotated_refresh_tokens (token_hash, session_id, rotated_at) \
                     VALUES ($1, $2, $3)",
                )
                .bind(old_hash)
                .bind(session.id)
                .bind(D::time(at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(Rotation::Rotated(session));
            }
            let sid: Uuid =
                sqlx::query("SELECT session_id FROM rotated_refresh_tokens WHERE token_hash = $1")
                    .bind(old_hash)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(session_not_found)?
                    .try_get("session_id")?;
            // Re-use: the whole family is revoked.
            let row = sqlx::query(concat!(
                "UPDATE auth_sessions SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 \
                 RETURNING ",
                session_cols!()
            ))
            .bind(D::time(at))
            .bind(sid)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(session_not_found)?;
            let session = Self::session_from_row(&row)?;
            tx.commit().await?;
            Ok(Rotation::Reused(session))
        })
        .await
    }

    pub(super) async fn live_sessions(
        &self,
        user: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Vec<AuthSession>> {
        finish::<D, _>(
            async {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM auth_sessions WHERE user_id = $1 AND revoked_at IS NULL \
                     AND expires_at > $2 ORDER BY created_at DESC, id DESC"
                ))
                .bind(user)
                .bind(D::time(at))
                .fetch_all(&self.reader)
                .await?;
                rows.iter().map(Self::session_from_row).collect()
            }
            .await,
        )
    }

    /// Revoke the live sessions of `user` (only session `id` if given); how many.
    pub(super) async fn end_sessions(
        &self,
        user: Uuid,
        id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(
                "UPDATE auth_sessions SET revoked_at = $1 WHERE user_id = $2 \
                 AND ($3 IS NULL OR id = $3) AND revoked_at IS NULL AND expires_at > $1",
            )
            .bind(D::time(at))
            .bind(user)
            .bind(id)
            .execute(&self.writer)
            .await?;
            Ok(D::rows_affected(&r))
        })
        .await
    }

    // ----- one-time tokens -----

    pub(super) async fn insert_token(&self, t: OneTimeToken) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(
                "INSERT INTO one_time_tokens (token_hash, purpose, user_id, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&t.token_hash)
            .bind(t.purpose.as_str())
            .bind(t.user_id)
            .bind(D::time(t.created_at))
            .bind(D::time(t.expires_at))
            .execute(&self.writer)
            .await;
            match r {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(Error::already_exists("token").into()),
                Err(e) if is_foreign_key_violation(&e) => {
                    Err(Error::not_found(format!("user {}", t.user_id)).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    pub(super) async fn use_token(
        &self,
        purpose: TokenPurpose,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<OneTimeToken> {
        write::<D, _, _, _>(|| async {
            // One statement: of concurrent uses, the first takes the row and the others
            // re-evaluate `used_at IS NULL` after it and match nothing.
            let row = sqlx::query(
                "UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 \
                 AND used_at IS NULL AND expires_at > $1 \
                 RETURNING token_hash, purpose, user_id, created_at, expires_at",
            )
            .bind(D::time(at))
            .bind(token_hash)
            .bind(purpose.as_str())
            .fetch_optional(&self.writer)
            .await?
            .ok_or_else(|| Error::not_found("token"))?;
            Ok(OneTimeToken {
                token_hash: row.try_get("token_hash")?,
                purpose: TokenPurpose::parse(&row.try_get::<String, _>("purpose")?)?,
                user_id: row.try_get("user_id")?,
                created_at: D::from_time(row.try_get("created_at")?)?,
                expires_at: D::from_time(row.try_get("expires_at")?)?,
            })
        })
        .await
    }

    // ----- social accounts -----

    pub(super) async fn insert_social(&self, a: SocialAccount) -> Result<SocialAccount> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(
                "INSERT INTO social_accounts (provider, subject, user_id, email, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&a.provider)
            .bind(&a.subject)
            .bind(a.user_id)
            .bind(&a.email)
            .bind(D::time(a.created_at))
            .execute(&self.writer)
            .await;
            match r {
                Ok(_) => Ok(a.clone()),
                Err(e) if is_unique_violation(&e) => Err(Error::already_exists(format!(
                    "{} account {}",
                    a.provider, a.subject
                ))
                .into()),
                Err(e) if is_foreign_key_violation(&e) => {
                    Err(Error::not_found(format!("user {}", a.user_id)).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    pub(super) async fn social_user(&self, provider: &str, subject: &str) -> Result<User> {
        finish::<D, _>(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users WHERE id = (SELECT user_id FROM social_accounts \
                     WHERE provider = $1 AND subject = $2)"
                ))
                .bind(provider)
                .bind(subject)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found(format!("{provider} account {subject}")))?;
                Self::user_from_row(&row)
            }
            .await,
        )
    }

    pub(super) async fn social_of(&self, user: Uuid) -> Result<Vec<SocialAccount>> {
        finish::<D, _>(
            async {
                let rows = sqlx::query(
                    "SELECT provider, subject, user_id, email, created_at FROM social_accounts \
                     WHERE user_id = $1 ORDER BY provider, subject",
                )
                .bind(user)
                .fetch_all(&self.reader)
                .await?;
                rows.iter().map(Self::social_from_row).collect()
            }
            .await,
        )
    }

    // ----- audit log -----

    pub(super) async fn insert_audit(&self, e: AuditEntry) -> Result<()> {
        let data = D::json("data", &e.data)?;
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(concat!(
                "INSERT INTO audit_log (",
                audit_cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .bind(e.id)
            .bind(e.org_id)
            .bind(e.project_id)
            .bind(e.user_id)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.ip)
            .bind(&data)
            .bind(D::time(e.at))
            .execute(&self.writer)
            .await;
            match r {
                Ok(_) => Ok(()),
                Err(err) if is_unique_violation(&err) => {
                    Err(Error::already_exists(format!("audit entry {}", e.id)).into())
                }
                Err(err) => Err(err.into()),
            }
        })
        .await
    }

    pub(super) async fn org_audit(
        &self,
        org: Uuid,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let limit = page.limit()?;
        let before: Option<Uuid> = page.position()?;
        let mut q = QueryBuilder::<D>::new(concat!(
            "SELECT ",
            audit_cols!(),
            " FROM audit_log WHERE (org_id = "
        ));
        q.push_bind(org)
            .push(
                // A member's own events (sign-ins …) from the day they joined only.
                " OR (org_id IS NULL AND EXISTS (SELECT 1 FROM memberships m \
                 WHERE m.user_id = audit_log.user_id AND m.created_at <= audit_log.at \
                 AND m.org_id = ",
            )
            .push_bind(org)
            .push(")))");
        if let Some(b) = before {
            q.push(" AND id < ").push_bind(b);
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        finish::<D, _>(
            async {
                let rows = q.build().fetch_all(&self.reader).await?;
                let items = rows
                    .iter()
                    .map(Self::audit_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_overfetch(items, limit, |e| e.id)?)
            }
            .await,
        )
    }

    pub(super) async fn audit_of_user(&self, user: Uuid, limit: u32) -> Result<Vec<AuditEntry>> {
        finish::<D, _>(
            async {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    audit_cols!(),
                    " FROM audit_log WHERE user_id = $1 ORDER BY id DESC LIMIT $2"
                ))
                .bind(user)
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await?;
                rows.iter().map(Self::audit_from_row).collect()
            }
            .await,
        )
    }

    // ----- signing keys -----

    pub(super) async fn all_signing_keys(&self) -> Result<Vec<SigningKey>> {
        finish::<D, _>(
            async {
                let rows = sqlx::query(
                    "SELECT id, secret, created_at, retired_at FROM signing_keys \
                     ORDER BY created_at DESC, id DESC",
                )
                .fetch_all(&self.reader)
                .await?;
                rows.iter().map(Self::signing_key_from_row).collect()
            }
            .await,
        )
    }

    pub(super) async fn insert_signing_key(&self, k: SigningKey) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(
                "INSERT INTO signing_keys (id, secret, created_at, retired_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&k.id)
            .bind(k.secret.clone())
            .bind(D::time(k.created_at))
            .bind(k.retired_at.map(D::time))
            .execute(&self.writer)
            .await;
            match r {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => {
                    Err(Error::already_exists(format!("signing key '{}'", k.id)).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    pub(super) async fn retire_keys(
        &self,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(
                "UPDATE signing_keys SET retired_at = $1 WHERE created_at < $2 \
                 AND retired_at IS NULL",
            )
            .bind(D::time(at))
            .bind(D::time(before))
            .execute(&self.writer)
            .await?;
            Ok(D::rows_affected(&r))
        })
        .await
    }
}
