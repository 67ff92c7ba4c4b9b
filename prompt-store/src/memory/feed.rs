//! The change feed on the memory backend: each project's log lives in the store's
//! state and is appended under the same write lock as the change it records, so an
//! event exists exactly when its change does and `seq` follows the order of writes.

use std::collections::VecDeque;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::domain::{cursor_gone, new_id, now};
use prompt_core::{Committed, Event, EventLog, EventPage, NewEvent, Result};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{MemoryStore, State};

/// One project's log: its head and the events still retained, oldest first (their
/// `seq`s are consecutive and end at `head`).
#[derive(Debug, Default, Clone)]
pub(super) struct ProjectLog {
    head: u64,
    events: VecDeque<Event>,
}

impl ProjectLog {
    /// The `seq` of the oldest retained event (`head + 1` when none is).
    fn oldest(&self) -> u64 {
        self.events.front().map_or(self.head + 1, |e| e.seq)
    }
}

impl State {
    /// Append `events` to `project`'s log, numbered after its head; the wake-up to
    /// send once the lock is released (`None` when there was nothing to append).
    pub(super) fn append(&mut self, project: Uuid, events: Vec<NewEvent>) -> Option<Committed> {
        if events.is_empty() {
            return None;
        }
        let log = self.feed.entry(project).or_default();
        let at = now();
        for e in events {
            log.head += 1;
            log.events
                .push_back(e.into_event(project, log.head, new_id(), at));
        }
        Some(Committed {
            project,
            seq: log.head,
        })
    }
}

impl State {
    /// Append `member.changed` for `user` to `project`'s log, or to the log of every
    /// project of `org` when `project` is `None`; the wake-ups to send.
    pub(super) fn member_changed(
        &mut self,
        org: Uuid,
        project: Option<Uuid>,
        user: Uuid,
    ) -> Vec<Committed> {
        let projects: Vec<Uuid> = match project {
            Some(p) => vec![p],
            None => {
                let mut ps: Vec<Uuid> = self
                    .projects
                    .values()
                    .filter(|p| p.org_id == org)
                    .map(|p| p.id)
                    .collect();
                ps.sort();
                ps
            }
        };
        let org_role = self
            .people
            .memberships
            .get(&(org, user))
            .map(|m| m.role.as_str());
        let mut events = Vec::with_capacity(projects.len());
        for p in projects {
            let project_role = self
                .people
                .project_roles
                .get(&(p, user))
                .map(|r| r.as_str());
            events.push((p, NewEvent::member_changed(user, org_role, project_role)));
        }
        events
            .into_iter()
            .filter_map(|(p, e)| self.append(p, vec![e]))
            .collect()
    }
}

impl State {
    /// Replace the actor `actor` of every event by `by` (a deleted user's).
    pub(super) fn anonymise_events(&mut self, actor: &str, by: &str) {
        for log in self.feed.values_mut() {
            for e in log.events.iter_mut() {
                if e.actor.as_deref() == Some(actor) {
                    e.actor = Some(by.to_owned());
                }
            }
        }
    }
}

impl MemoryStore {
    /// Release the write lock `s`, then send the wake-ups `woken`; returns `out`.
    pub(super) fn wake<T>(
        &self,
        s: std::sync::RwLockWriteGuard<'_, State>,
        woken: Vec<Committed>,
        out: T,
    ) -> T {
        drop(s);
        for c in woken {
            self.notifier.send(Some(c));
        }
        out
    }
}

/// The wake-ups of a memory store's commits (shared by its clones).
#[derive(Debug)]
pub(super) struct Notifier(broadcast::Sender<Committed>);

impl Default for Notifier {
    fn default() -> Self {
        Notifier(broadcast::channel(1024).0)
    }
}

impl Notifier {
    /// Wake subscribers (nobody listening is fine).
    pub(super) fn send(&self, c: Option<Committed>) {
        if let Some(c) = c {
            let _ = self.0.send(c);
        }
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn events(&self, project: Uuid, after: u64, limit: u32) -> Result<EventPage> {
        let s = self.read()?;
        let Some(log) = s.feed.get(&project) else {
            return Ok(EventPage {
                events: Vec::new(),
                next: after,
                head: 0,
            });
        };
        let oldest = log.oldest();
        if after < log.head && after + 1 < oldest {
            return Err(cursor_gone(after, oldest));
        }
        let skip = usize::try_from((after + 1).saturating_sub(oldest)).unwrap_or(usize::MAX);
        let events: Vec<Event> = log
            .events
            .iter()
            .skip(skip)
            .take(limit as usize)
            .cloned()
            .collect();
        let next = events.last().map_or(after, |e| e.seq);
        Ok(EventPage {
            events,
            next,
            head: log.head,
        })
    }

    async fn head(&self, project: Uuid) -> Result<u64> {
        Ok(self.read()?.feed.get(&project).map_or(0, |l| l.head))
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut s = self.write()?;
        let mut pruned = 0;
        for log in s.feed.values_mut() {
            while log.events.front().is_some_and(|e| e.at < before) {
                log.events.pop_front();
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    fn commits(&self) -> broadcast::Receiver<Committed> {
        self.notifier.0.subscribe()
    }
}
