//! The change feed on any SQL dialect: appending a write's events inside its
//! transaction, and reading the log.
//!
//! # Why `seq` follows commit order
//!
//! [`SqlStore::append_events`] is the last step of every write transaction that has
//! events: it increments the project's row of `event_heads` (creating it on the first
//! event) and inserts the events numbered up to the new head. The increment takes the
//! row's write lock (Postgres: the row lock; SQLite: the database's single write lock
//! is held anyway), which the transaction keeps until it commits: a second writer of
//! the same project waits at that statement until the first has committed (or rolled
//! back, undoing its increment), and only then takes the next numbers. So numbers are
//! handed out in commit order, without gaps, and a reader that has seen `seq = N` never
//! later finds a committed event below `N`. A plain sequence would hand out numbers at
//! insert time and let a later number commit first. Taking the lock last keeps the
//! serialised stretch to one statement and the commit.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::domain::{cursor_gone, new_id, now};
use prompt_core::{Committed, Event, EventLog, EventPage, EventType, NewEvent, Result};
use sqlx::{ColumnIndex, Decode, Encode, Executor, Row, Type};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::dialect::Dialect;
use super::store::finish;
use super::{Failure, SqlStore, opt_version};

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
    for<'q> Option<String>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
{
    /// Append `events` of `project` in the write transaction on `conn`, as its last
    /// statements before commit (see the module doc); the wake-up to send once the
    /// transaction has committed (`None` when there was nothing to append).
    pub(super) async fn append_events(
        &self,
        conn: &mut D::Connection,
        project: Uuid,
        events: Vec<NewEvent>,
    ) -> Result<Option<Committed>, Failure> {
        if events.is_empty() {
            return Ok(None);
        }
        let n = events.len() as i64;
        let head: i64 = sqlx::query(
            "INSERT INTO event_heads (project_id, seq) VALUES ($1, $2) \
             ON CONFLICT (project_id) DO UPDATE SET seq = event_heads.seq + excluded.seq \
             RETURNING seq",
        )
        .bind(project)
        .bind(n)
        .fetch_one(&mut *conn)
        .await?
        .try_get("seq")?;
        let at = now();
        for (i, e) in events.into_iter().enumerate() {
            let seq = head - n + 1 + i as i64;
            let e = e.into_event(project, seq as u64, new_id(), at);
            sqlx::query(
                "INSERT INTO events (project_id, seq, id, type, prompt, version, label, actor, \
                 at, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(project)
            .bind(seq)
            .bind(e.id)
            .bind(e.kind.as_str())
            .bind(e.prompt)
            .bind(e.version.map(i64::from))
            .bind(e.label)
            .bind(e.actor)
            .bind(D::time(at))
            .bind(D::json("data", &e.data)?)
            .execute(&mut *conn)
            .await?;
        }
        D::notify_events(&self.state, conn, project, head as u64).await?;
        Ok(Some(Committed {
            project,
            seq: head as u64,
        }))
    }

    /// Append `member.changed` for `user` to `project`'s log, or to the log of every
    /// project of `org` when `project` is `None` (in id order, so that concurrent
    /// writers take the logs' locks in one order); the wake-ups to send after commit.
    pub(super) async fn member_changed(
        &self,
        conn: &mut D::Connection,
        org: Uuid,
        project: Option<Uuid>,
        user: Uuid,
    ) -> Result<Vec<Committed>, Failure> {
        let projects: Vec<Uuid> = match project {
            Some(p) => vec![p],
            None => sqlx::query("SELECT id FROM projects WHERE org_id = $1 ORDER BY id")
                .bind(org)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?,
        };
        let mut woken = Vec::with_capacity(projects.len());
        for p in projects {
            let row = sqlx::query(
                "SELECT m.role AS org_role, r.role AS project_role FROM projects p \
                 LEFT JOIN memberships m ON m.org_id = p.org_id AND m.user_id = $1 \
                 LEFT JOIN project_roles r ON r.project_id = p.id AND r.user_id = $1 \
                 WHERE p.id = $2",
            )
            .bind(user)
            .bind(p)
            .fetch_one(&mut *conn)
            .await?;
            let org_role: Option<String> = row.try_get("org_role")?;
            let project_role: Option<String> = row.try_get("project_role")?;
            let e = NewEvent::member_changed(user, org_role.as_deref(), project_role.as_deref());
            woken.extend(self.append_events(conn, p, vec![e]).await?);
        }
        Ok(woken)
    }

    /// Wake this process's subscribers after commits.
    pub(super) fn committed_all(&self, woken: Vec<Committed>) {
        for c in woken {
            self.committed(Some(c));
        }
    }

    /// Wake this process's subscribers after a commit.
    pub(super) fn committed(&self, c: Option<Committed>) {
        if let Some(c) = c {
            let _ = self.commits.send(c);
        }
    }

    fn event_from_row(r: &D::Row) -> Result<Event, Failure> {
        let seq: i64 = r.try_get("seq")?;
        Ok(Event {
            seq: u64::try_from(seq).map_err(|_| prompt_core::Error::internal("negative seq"))?,
            id: r.try_get("id")?,
            project: r.try_get("project_id")?,
            kind: EventType::parse("type", &r.try_get::<String, _>("type")?)?,
            prompt: r.try_get("prompt")?,
            version: opt_version(r.try_get("version")?)?,
            label: r.try_get("label")?,
            actor: r.try_get("actor")?,
            at: D::from_time(r.try_get("at")?)?,
            data: D::from_json("data", r.try_get("data")?)?,
        })
    }

    async fn read_head(&self, project: Uuid) -> Result<u64, Failure> {
        let head: Option<i64> = sqlx::query("SELECT seq FROM event_heads WHERE project_id = $1")
            .bind(project)
            .fetch_optional(&self.reader)
            .await?
            .map(|r| r.try_get("seq"))
            .transpose()?;
        Ok(head.map_or(0, |h| h as u64))
    }
}

#[async_trait]
impl<D, S> EventLog for SqlStore<D, S>
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
    for<'q> Option<String>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
    for<'q> D::Time: Encode<'q, D>,
{
    async fn events(&self, project: Uuid, after: u64, limit: u32) -> Result<EventPage> {
        let after_i = i64::try_from(after)
            .map_err(|_| prompt_core::Error::invalid("after", "is too large"))?;
        finish::<D, _>(
            async {
                // The head first: events read after it are at least as new.
                let head = self.read_head(project).await?;
                let rows = sqlx::query(
                    "SELECT project_id, seq, id, type, prompt, version, label, actor, at, data \
                     FROM events WHERE project_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(project)
                .bind(after_i)
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await?;
                let events = rows
                    .iter()
                    .map(Self::event_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                match events.first() {
                    Some(first) if first.seq > after + 1 => {
                        return Err(cursor_gone(after, first.seq).into());
                    }
                    None if after < head => return Err(cursor_gone(after, head + 1).into()),
                    _ => {}
                }
                // Pruning goes by commit time, which instances' clocks may skew: a hole
                // inside the page is as gone as one before it.
                if let Some(w) = events.windows(2).find(|w| w[1].seq != w[0].seq + 1) {
                    return Err(cursor_gone(w[0].seq, w[1].seq).into());
                }
                let last = events.last().map(|e| e.seq);
                Ok(EventPage {
                    head: head.max(last.unwrap_or(0)),
                    next: last.unwrap_or(after),
                    events,
                })
            }
            .await,
        )
    }

    async fn head(&self, project: Uuid) -> Result<u64> {
        finish::<D, _>(self.read_head(project).await)
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64> {
        finish::<D, _>(
            async {
                let r = sqlx::query("DELETE FROM events WHERE at < $1")
                    .bind(D::time(before))
                    .execute(&self.writer)
                    .await?;
                Ok(D::rows_affected(&r))
            }
            .await,
        )
    }

    fn commits(&self) -> broadcast::Receiver<Committed> {
        D::follow_commits(&self.state, &self.commits);
        self.commits.subscribe()
    }
}
