//! [`PeopleStore`] on any SQL dialect: organizations and their projects, users and
//! memberships here; invitations, sessions, one-time tokens, social accounts, the
//! audit log and signing keys in [`super::sign_in`].
//!
//! Over 600 lines because it is one trait implementation (the generic `impl` with its
//! bounds) plus the row mappings it shares with [`super::sign_in`]; the trait is split
//! across the two files by subject already.
//!
//! The invariants hold under concurrency because every transaction that could break
//! one first locks what it depends on: on SQLite the write transaction holds the
//! database's single write lock from `BEGIN IMMEDIATE` on; on Postgres (READ
//! COMMITTED) membership changes lock the organization's row (`FOR UPDATE`), so two
//! of them on one organization run one after the other and the second sees the
//! first's owners, and single-use rows are taken by one conditional
//! `UPDATE … WHERE <still open> RETURNING`, which a concurrent second `UPDATE`
//! re-evaluates after the first commits (and then matches nothing).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::domain::{
    AuditEntry, AuthSession, DEFAULT_ORG, DEFAULT_ORG_ID, Invitation, KeyRole, Member, Membership,
    NewUser, OneTimeToken, OrgRole, Organization, ProjectRole, Rotation, SigningKey, SocialAccount,
    TokenPurpose, User, UserUpdate, new_id, now,
};
use prompt_core::page::{Page, PageRequest};
use prompt_core::{Error, OrgWithRole, PeopleStore, Project, Result};
use serde_json::{Map, Value};
use sqlx::{ColumnIndex, Decode, Encode, Executor, QueryBuilder, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::store::{begin_write, finish, write};
use super::{Failure, SqlStore, is_foreign_key_violation, is_unique_violation};

/// What `delete_user` writes in place of the deleted user's actor string.
pub(super) const DELETED_USER: &str = "deleted user";

/// The columns of a user.
macro_rules! user_cols {
    () => {
        "id, email, name, email_verified, password_hash, preferences, created_at, updated_at, \
         last_login_at"
    };
}
pub(super) use user_cols;

/// A stored optional timestamp back.
pub(super) fn opt_time<D>(r: &D::Row, column: &str) -> Result<Option<DateTime<Utc>>, Failure>
where
    D: Dialect,
    for<'a> &'a str: ColumnIndex<D::Row>,
{
    Ok(r.try_get::<Option<D::Time>, _>(column)?
        .map(D::from_time)
        .transpose()?)
}

pub(super) fn last_owner(org: Uuid) -> Error {
    Error::conflict(format!(
        "organization {org} must keep an owner: make another member owner first"
    ))
}

fn not_member(org: Uuid, user: Uuid) -> Error {
    Error::not_found(format!("membership of user {user} in organization {org}"))
}

fn org_not_found(id: Uuid) -> Error {
    Error::not_found(format!("organization {id}"))
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
    for<'q> Option<String>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
    for<'q> Option<D::Time>: Encode<'q, D>,
    for<'q> Option<D::TextList>: Encode<'q, D>,
{
    fn org_from_row(r: &D::Row) -> Result<Organization, Failure> {
        Ok(Organization {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            created_at: D::from_time(r.try_get("created_at")?)?,
        })
    }

    pub(super) fn user_from_row(r: &D::Row) -> Result<User, Failure> {
        Ok(User {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            email_verified: r.try_get("email_verified")?,
            password_hash: r.try_get("password_hash")?,
            preferences: D::from_json("preferences", r.try_get("preferences")?)?,
            created_at: D::from_time(r.try_get("created_at")?)?,
            updated_at: D::from_time(r.try_get("updated_at")?)?,
            last_login_at: opt_time::<D>(r, "last_login_at")?,
        })
    }

    pub(super) fn membership_from_row(r: &D::Row) -> Result<Membership, Failure> {
        Ok(Membership {
            org_id: r.try_get("org_id")?,
            user_id: r.try_get("user_id")?,
            role: OrgRole::parse(&r.try_get::<String, _>("role")?)?,
            created_at: D::from_time(r.try_get("created_at")?)?,
        })
    }

    /// Lock the row of organization `org` until the transaction ends (`NotFound` if
    /// there is none): membership changes of one organization run one at a time.
    pub(super) async fn lock_org(conn: &mut D::Connection, org: Uuid) -> Result<(), Failure> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM organizations WHERE id = $1{}",
            D::FOR_UPDATE
        )))
        .bind(org)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| org_not_found(org))?;
        Ok(())
    }

    /// How many owners `org` has.
    async fn owners(conn: &mut D::Connection, org: Uuid) -> Result<i64, Failure> {
        let row = sqlx::query(
            "SELECT count(*) AS n FROM memberships WHERE org_id = $1 AND role = 'owner'",
        )
        .bind(org)
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// The role of `user` in `org`, if a member.
    async fn role_in(
        conn: &mut D::Connection,
        org: Uuid,
        user: Uuid,
    ) -> Result<Option<OrgRole>, Failure> {
        let row = sqlx::query("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org)
            .bind(user)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|r| Ok(OrgRole::parse(&r.try_get::<String, _>("role")?)?))
            .transpose()
    }

    /// `Conflict` if `user` is the only owner of `org` (whose row is locked).
    async fn check_not_last_owner(
        conn: &mut D::Connection,
        org: Uuid,
        user: Uuid,
    ) -> Result<(), Failure> {
        if Self::role_in(conn, org, user).await? == Some(OrgRole::Owner)
            && Self::owners(conn, org).await? <= 1
        {
            return Err(last_owner(org).into());
        }
        Ok(())
    }

    /// Give `user` `role` in `org` (insert or change); `NotFound` if the user is
    /// missing.
    pub(super) async fn put_member(
        conn: &mut D::Connection,
        org: Uuid,
        user: Uuid,
        role: OrgRole,
    ) -> Result<Membership, Failure> {
        let r = sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role \
             RETURNING org_id, user_id, role, created_at",
        )
        .bind(org)
        .bind(user)
        .bind(role.as_str())
        .bind(D::time(now()))
        .fetch_one(&mut *conn)
        .await;
        match r {
            Ok(row) => Self::membership_from_row(&row),
            Err(e) if is_foreign_key_violation(&e) => {
                Err(Error::not_found(format!("user {user}")).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn exists(
        conn: &mut D::Connection,
        sql: &'static str,
        id: Uuid,
    ) -> Result<bool, Failure> {
        Ok(sqlx::query(sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some())
    }
}

#[async_trait]
impl<D, S> PeopleStore for SqlStore<D, S>
where
    D: Dialect<State = S>,
    S: Send + Sync + 'static,
    SqlStore<D, S>: std::fmt::Debug,
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
    for<'q> Option<bool>: Encode<'q, D>,
    for<'q> Option<Uuid>: Encode<'q, D> + Decode<'q, D>,
    for<'q> Option<D::Time>: Encode<'q, D>,
    for<'q> Option<D::Json>: Encode<'q, D>,
    for<'q> Option<D::TextList>: Encode<'q, D>,
{
    async fn create_org(&self, name: &str, owner: Option<Uuid>) -> Result<Organization> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let org = Organization {
                id: new_id(),
                name: name.to_owned(),
                created_at: now(),
            };
            let r =
                sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(org.id)
                    .bind(&org.name)
                    .bind(D::time(org.created_at))
                    .execute(&mut *tx)
                    .await;
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::already_exists(format!("organization '{name}'")).into());
                }
                Err(e) => return Err(e.into()),
            }
            if let Some(u) = owner {
                Self::put_member(&mut tx, org.id, u, OrgRole::Owner).await?;
            }
            tx.commit().await?;
            Ok(org)
        })
        .await
    }

    async fn org_by_name(&self, name: &str) -> Result<Organization> {
        finish::<D, _>(
            async {
                let row =
                    sqlx::query("SELECT id, name, created_at FROM organizations WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| Error::not_found(format!("organization '{name}'")))?;
                Self::org_from_row(&row)
            }
            .await,
        )
    }

    async fn org_by_id(&self, id: Uuid) -> Result<Organization> {
        finish::<D, _>(
            async {
                let row =
                    sqlx::query("SELECT id, name, created_at FROM organizations WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| org_not_found(id))?;
                Self::org_from_row(&row)
            }
            .await,
        )
    }

    async fn list_orgs(&self, user: Option<Uuid>) -> Result<Vec<OrgWithRole>> {
        finish::<D, _>(
            async {
                let rows = match user {
                    Some(u) => {
                        sqlx::query(
                            "SELECT o.id, o.name, o.created_at, m.role FROM organizations o \
                             JOIN memberships m ON m.org_id = o.id WHERE m.user_id = $1 \
                             ORDER BY o.name",
                        )
                        .bind(u)
                        .fetch_all(&self.reader)
                        .await?
                    }
                    None => {
                        sqlx::query(
                            "SELECT id, name, created_at, NULL AS role FROM organizations \
                             ORDER BY name",
                        )
                        .fetch_all(&self.reader)
                        .await?
                    }
                };
                rows.iter()
                    .map(|r| {
                        let role = match user {
                            Some(_) => Some(OrgRole::parse(&r.try_get::<String, _>("role")?)?),
                            None => None,
                        };
                        Ok(OrgWithRole {
                            org: Self::org_from_row(r)?,
                            role,
                        })
                    })
                    .collect()
            }
            .await,
        )
    }

    async fn rename_org(&self, id: Uuid, name: &str) -> Result<Organization> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(
                "UPDATE organizations SET name = $1 WHERE id = $2 RETURNING id, name, created_at",
            )
            .bind(name)
            .bind(id)
            .fetch_optional(&self.writer)
            .await;
            match r {
                Ok(Some(row)) => Self::org_from_row(&row),
                Ok(None) => Err(org_not_found(id).into()),
                Err(e) if is_unique_violation(&e) => {
                    Err(Error::already_exists(format!("organization '{name}'")).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn delete_org(&self, id: Uuid) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            Self::lock_org(&mut tx, id).await?;
            if id == DEFAULT_ORG_ID {
                return Err(default_org_stays().into());
            }
            if Self::exists(
                &mut tx,
                "SELECT 1 AS x FROM projects WHERE org_id = $1 LIMIT 1",
                id,
            )
            .await?
            {
                return Err(Error::conflict(format!(
                    "organization {id} still has projects: delete them first"
                ))
                .into());
            }
            for sql in [
                "DELETE FROM memberships WHERE org_id = $1",
                "DELETE FROM invitations WHERE org_id = $1",
                "DELETE FROM organizations WHERE id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn create_org_project(&self, org: Uuid, name: &str) -> Result<Project> {
        write::<D, _, _, _>(|| self.insert_project_in(org, name, name)).await
    }

    async fn list_org_projects(&self, org: Uuid, page: &PageRequest) -> Result<Page<Project>> {
        let limit = page.limit()?;
        let after: Option<String> = page.position()?;
        let mut q = QueryBuilder::<D>::new(
            "SELECT id, org_id, name, created_at, run_retention_days FROM projects WHERE org_id = ",
        );
        q.push_bind(org);
        if let Some(a) = after {
            q.push(" AND name > ").push_bind(a);
        }
        q.push(" ORDER BY name LIMIT ")
            .push_bind(i64::from(limit) + 1);
        finish::<D, _>(
            async {
                let rows = q.build().fetch_all(&self.reader).await?;
                let items = rows
                    .iter()
                    .map(Self::project_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_overfetch(items, limit, |p| p.name.clone())?)
            }
            .await,
        )
    }

    async fn rename_project(&self, org: Uuid, id: Uuid, name: &str) -> Result<Project> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(
                "UPDATE projects SET name = $1 WHERE id = $2 AND org_id = $3 \
                 RETURNING id, org_id, name, created_at, run_retention_days",
            )
            .bind(name)
            .bind(id)
            .bind(org)
            .fetch_optional(&self.writer)
            .await;
            match r {
                Ok(Some(row)) => Self::project_from_row(&row),
                Ok(None) => Err(Error::not_found(format!("project {id}")).into()),
                Err(e) if is_unique_violation(&e) => {
                    Err(Error::already_exists(format!("project '{name}'")).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn delete_project(&self, org: Uuid, id: Uuid) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            // Locked: a prompt, key or credential created meanwhile waits for this
            // transaction (their foreign key), then finds the project gone.
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name FROM projects WHERE id = $1 AND org_id = $2{}",
                D::FOR_UPDATE
            )))
            .bind(id)
            .bind(org)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found(format!("project {id}")))?;
            let name: String = row.try_get("name")?;
            let mut holds = Vec::new();
            for (what, sql) in [
                (
                    "prompts",
                    "SELECT 1 AS x FROM prompts WHERE project_id = $1 LIMIT 1",
                ),
                (
                    "runs",
                    "SELECT 1 AS x FROM runs WHERE project_id = $1 LIMIT 1",
                ),
                (
                    "API keys",
                    "SELECT 1 AS x FROM api_keys WHERE project_id = $1 LIMIT 1",
                ),
                (
                    "provider credentials",
                    "SELECT 1 AS x FROM provider_credentials WHERE project_id = $1 LIMIT 1",
                ),
            ] {
                if Self::exists(&mut tx, sql, id).await? {
                    holds.push(what);
                }
            }
            if !holds.is_empty() {
                return Err(Error::conflict(format!(
                    "project '{name}' still holds {}: delete them first",
                    holds.join(", ")
                ))
                .into());
            }
            for sql in [
                "DELETE FROM project_roles WHERE project_id = $1",
                "DELETE FROM projects WHERE id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn create_user(&self, new: NewUser) -> Result<User> {
        let preferences = D::json("preferences", &Map::<String, Value>::new())?;
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let at = now();
            let r = sqlx::query(concat!(
                "INSERT INTO users (id, email, email_lower, name, email_verified, password_hash, \
                 preferences, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 RETURNING ",
                user_cols!()
            ))
            .bind(new_id())
            .bind(&new.email)
            .bind(new.email.to_ascii_lowercase())
            .bind(&new.name)
            .bind(new.email_verified)
            .bind(&new.password_hash)
            .bind(&preferences)
            .bind(D::time(at))
            .fetch_one(&mut *tx)
            .await;
            let user = match r {
                Ok(row) => Self::user_from_row(&row)?,
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::already_exists(format!("user '{}'", new.email)).into());
                }
                Err(e) => return Err(e.into()),
            };
            // The first user owns the data that was there before.
            let mut woken = Vec::new();
            match Self::lock_org(&mut tx, DEFAULT_ORG_ID).await {
                Ok(()) => {
                    if Self::owners(&mut tx, DEFAULT_ORG_ID).await? == 0 {
                        Self::put_member(&mut tx, DEFAULT_ORG_ID, user.id, OrgRole::Owner).await?;
                        woken = self
                            .member_changed(&mut tx, DEFAULT_ORG_ID, None, user.id)
                            .await?;
                    }
                }
                Err(Failure::App(Error::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
            tx.commit().await?;
            self.committed_all(woken);
            Ok(user)
        })
        .await
    }

    async fn user_by_id(&self, id: Uuid) -> Result<User> {
        finish::<D, _>(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found(format!("user {id}")))?;
                Self::user_from_row(&row)
            }
            .await,
        )
    }

    async fn user_by_email(&self, email: &str) -> Result<User> {
        finish::<D, _>(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users WHERE email_lower = $1"
                ))
                .bind(email.to_ascii_lowercase())
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found(format!("user '{email}'")))?;
                Self::user_from_row(&row)
            }
            .await,
        )
    }

    async fn update_user(&self, id: Uuid, update: UserUpdate) -> Result<User> {
        write::<D, _, _, _>(|| async {
            let preferences = update
                .preferences
                .as_ref()
                .map(|p| D::json("preferences", p))
                .transpose()?;
            let row = sqlx::query(concat!(
                "UPDATE users SET name = COALESCE($1, name), \
                 preferences = COALESCE($2, preferences), \
                 password_hash = COALESCE($3, password_hash), \
                 email_verified = COALESCE($4, email_verified), \
                 last_login_at = COALESCE($5, last_login_at), updated_at = $6 \
                 WHERE id = $7 RETURNING ",
                user_cols!()
            ))
            .bind(update.name.clone())
            .bind(preferences)
            .bind(update.password_hash.clone())
            .bind(update.email_verified)
            .bind(update.last_login_at.map(D::time))
            .bind(D::time(now()))
            .bind(id)
            .fetch_optional(&self.writer)
            .await?
            .ok_or_else(|| Error::not_found(format!("user {id}")))?;
            Self::user_from_row(&row)
        })
        .await
    }

    async fn delete_user(&self, id: Uuid, actor: &str) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            Self::exists(&mut tx, "SELECT 1 AS x FROM users WHERE id = $1", id)
                .await?
                .then_some(())
                .ok_or_else(|| Error::not_found(format!("user {id}")))?;
            let owned: Vec<Uuid> = sqlx::query(
                "SELECT org_id FROM memberships WHERE user_id = $1 AND role = 'owner' \
                 ORDER BY org_id",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("org_id"))
            .collect::<Result<_, _>>()?;
            for org in owned {
                Self::lock_org(&mut tx, org).await?;
                Self::check_not_last_owner(&mut tx, org, id).await?;
            }
            let orgs: Vec<Uuid> =
                sqlx::query("SELECT org_id FROM memberships WHERE user_id = $1 ORDER BY org_id")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| r.try_get("org_id"))
                    .collect::<Result<_, _>>()?;
            for sql in [
                "DELETE FROM memberships WHERE user_id = $1",
                "DELETE FROM project_roles WHERE user_id = $1",
                "DELETE FROM rotated_refresh_tokens WHERE session_id IN \
                 (SELECT id FROM auth_sessions WHERE user_id = $1)",
                "DELETE FROM auth_sessions WHERE user_id = $1",
                "DELETE FROM one_time_tokens WHERE user_id = $1",
                "DELETE FROM social_accounts WHERE user_id = $1",
                "DELETE FROM users WHERE id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            for sql in [
                "UPDATE prompt_versions SET created_by = $1 WHERE created_by = $2",
                "UPDATE label_moves SET moved_by = $1 WHERE moved_by = $2",
                "UPDATE audit_log SET actor = $1 WHERE actor = $2",
                "UPDATE invitations SET invited_by = $1 WHERE invited_by = $2",
                "UPDATE events SET actor = $1 WHERE actor = $2",
            ] {
                sqlx::query(sql)
                    .bind(DELETED_USER)
                    .bind(actor)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut woken = Vec::new();
            for org in orgs {
                woken.extend(self.member_changed(&mut tx, org, None, id).await?);
            }
            tx.commit().await?;
            self.committed_all(woken);
            Ok(())
        })
        .await
    }

    async fn set_member(&self, org: Uuid, user: Uuid, role: OrgRole) -> Result<Membership> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            Self::lock_org(&mut tx, org).await?;
            if role != OrgRole::Owner {
                Self::check_not_last_owner(&mut tx, org, user).await?;
            }
            let m = Self::put_member(&mut tx, org, user, role).await?;
            let woken = self.member_changed(&mut tx, org, None, user).await?;
            tx.commit().await?;
            self.committed_all(woken);
            Ok(m)
        })
        .await
    }

    async fn membership(&self, org: Uuid, user: Uuid) -> Result<Membership> {
        finish::<D, _>(
            async {
                let row = sqlx::query(
                    "SELECT org_id, user_id, role, created_at FROM memberships \
                     WHERE org_id = $1 AND user_id = $2",
                )
                .bind(org)
                .bind(user)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| not_member(org, user))?;
                Self::membership_from_row(&row)
            }
            .await,
        )
    }

    async fn list_members(&self, org: Uuid) -> Result<Vec<Member>> {
        finish::<D, _>(
            async {
                let rows = sqlx::query(
                    "SELECT u.id, u.email, u.name, m.role, m.created_at FROM memberships m \
                     JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 \
                     ORDER BY u.email_lower, u.id",
                )
                .bind(org)
                .fetch_all(&self.reader)
                .await?;
                let overrides = sqlx::query(
                    "SELECT r.user_id, r.project_id, r.role FROM project_roles r \
                     JOIN projects p ON p.id = r.project_id WHERE p.org_id = $1 \
                     ORDER BY r.project_id",
                )
                .bind(org)
                .fetch_all(&self.reader)
                .await?;
                let mut members = Vec::with_capacity(rows.len());
                for r in &rows {
                    let user_id: Uuid = r.try_get("id")?;
                    let mut project_roles = Vec::new();
                    for o in &overrides {
                        if o.try_get::<Uuid, _>("user_id")? == user_id {
                            project_roles.push(ProjectRole {
                                project_id: o.try_get("project_id")?,
                                role: KeyRole::parse(&o.try_get::<String, _>("role")?)?,
                            });
                        }
                    }
                    members.push(Member {
                        user_id,
                        email: r.try_get("email")?,
                        name: r.try_get("name")?,
                        role: OrgRole::parse(&r.try_get::<String, _>("role")?)?,
                        project_roles,
                        created_at: D::from_time(r.try_get("created_at")?)?,
                    });
                }
                Ok(members)
            }
            .await,
        )
    }

    async fn remove_member(&self, org: Uuid, user: Uuid) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            Self::lock_org(&mut tx, org).await?;
            if Self::role_in(&mut tx, org, user).await?.is_none() {
                return Err(not_member(org, user).into());
            }
            Self::check_not_last_owner(&mut tx, org, user).await?;
            sqlx::query(
                "DELETE FROM project_roles WHERE user_id = $1 AND project_id IN \
                 (SELECT id FROM projects WHERE org_id = $2)",
            )
            .bind(user)
            .bind(org)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            let woken = self.member_changed(&mut tx, org, None, user).await?;
            tx.commit().await?;
            self.committed_all(woken);
            Ok(())
        })
        .await
    }

    async fn set_project_role(
        &self,
        project: Uuid,
        user: Uuid,
        role: Option<KeyRole>,
    ) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let org: Uuid = sqlx::query("SELECT org_id FROM projects WHERE id = $1")
                .bind(project)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::not_found(format!("project {project}")))?
                .try_get("org_id")?;
            // Against a concurrent remove_member, which deletes the overrides.
            Self::lock_org(&mut tx, org).await?;
            if Self::role_in(&mut tx, org, user).await?.is_none() {
                return Err(not_member(org, user).into());
            }
            match role {
                Some(r) => {
                    sqlx::query(
                        "INSERT INTO project_roles (project_id, user_id, role) VALUES ($1, $2, $3) \
                         ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
                    )
                    .bind(project)
                    .bind(user)
                    .bind(r.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM project_roles WHERE project_id = $1 AND user_id = $2")
                        .bind(project)
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let woken = self
                .member_changed(&mut tx, org, Some(project), user)
                .await?;
            tx.commit().await?;
            self.committed_all(woken);
            Ok(())
        })
        .await
    }

    async fn project_access(&self, user: Uuid, project: Uuid) -> Result<Option<KeyRole>> {
        finish::<D, _>(
            async {
                let row = sqlx::query(
                    "SELECT m.role AS org_role, r.role AS project_role FROM projects p \
                     LEFT JOIN memberships m ON m.org_id = p.org_id AND m.user_id = $1 \
                     LEFT JOIN project_roles r ON r.project_id = p.id AND r.user_id = $1 \
                     WHERE p.id = $2",
                )
                .bind(user)
                .bind(project)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found(format!("project {project}")))?;
                let Some(org_role) = row.try_get::<Option<String>, _>("org_role")? else {
                    return Ok(None);
                };
                Ok(Some(
                    match row.try_get::<Option<String>, _>("project_role")? {
                        Some(r) => KeyRole::parse(&r)?,
                        None => OrgRole::parse(&org_role)?.project_role(),
                    },
                ))
            }
            .await,
        )
    }

    async fn create_invitation(&self, invitation: Invitation) -> Result<Invitation> {
        self.insert_invitation(invitation).await
    }

    async fn list_invitations(&self, org: Uuid) -> Result<Vec<Invitation>> {
        self.open_invitations(org).await
    }

    async fn revoke_invitation(&self, org: Uuid, id: Uuid) -> Result<()> {
        self.close_invitation(org, id).await
    }

    async fn invitation_by_hash(&self, token_hash: &str) -> Result<Invitation> {
        self.invitation_with_hash(token_hash).await
    }

    async fn accept_invitation(
        &self,
        token_hash: &str,
        user: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Membership> {
        self.accept(token_hash, user, at).await
    }

    async fn create_session(&self, session: AuthSession) -> Result<AuthSession> {
        self.insert_session(session).await
    }

    async fn session(&self, id: Uuid) -> Result<AuthSession> {
        self.session_with_id(id).await
    }

    async fn session_by_token(&self, token_hash: &str) -> Result<AuthSession> {
        self.session_with_token(token_hash).await
    }

    async fn rotate_session(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Rotation> {
        self.rotate(old_hash, new_hash, new_expires_at, at).await
    }

    async fn list_sessions(&self, user: Uuid, at: DateTime<Utc>) -> Result<Vec<AuthSession>> {
        self.live_sessions(user, at).await
    }

    async fn revoke_session(&self, user: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        self.end_sessions(user, Some(id), at).await.and_then(|n| {
            if n == 0 {
                Err(Error::not_found(format!("session {id}")))
            } else {
                Ok(())
            }
        })
    }

    async fn revoke_sessions(&self, user: Uuid, at: DateTime<Utc>) -> Result<u64> {
        self.end_sessions(user, None, at).await
    }

    async fn create_token(&self, token: OneTimeToken) -> Result<()> {
        self.insert_token(token).await
    }

    async fn consume_token(
        &self,
        purpose: TokenPurpose,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<OneTimeToken> {
        self.use_token(purpose, token_hash, at).await
    }

    async fn link_social(&self, account: SocialAccount) -> Result<SocialAccount> {
        self.insert_social(account).await
    }

    async fn user_by_social(&self, provider: &str, subject: &str) -> Result<User> {
        self.social_user(provider, subject).await
    }

    async fn list_social(&self, user: Uuid) -> Result<Vec<SocialAccount>> {
        self.social_of(user).await
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<()> {
        self.insert_audit(entry).await
    }

    async fn list_audit(&self, org: Uuid, page: &PageRequest) -> Result<Page<AuditEntry>> {
        self.org_audit(org, page).await
    }

    async fn user_audit(&self, user: Uuid, limit: u32) -> Result<Vec<AuditEntry>> {
        self.audit_of_user(user, limit).await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
        self.all_signing_keys().await
    }

    async fn add_signing_key(&self, key: SigningKey) -> Result<()> {
        self.insert_signing_key(key).await
    }

    async fn retire_signing_keys(&self, before: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
        self.retire_keys(before, at).await
    }
}

pub(super) fn default_org_stays() -> Error {
    Error::conflict(format!(
        "the organization '{DEFAULT_ORG}' holds the projects named without an organization \
         and cannot be deleted"
    ))
}
