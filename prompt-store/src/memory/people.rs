//! [`PeopleStore`] in memory: the people live in the same lock's state as the
//! projects and prompts, so every method is one atomic step and the invariants (last
//! owner, single use, rotate once) hold by construction.
//!
//! One file for the one trait implementation of the memory backend (as `mod.rs` is
//! for the prompt store), hence over 600 lines; its tests are the shared behaviour
//! suite, not here.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::domain::{
    AuditEntry, AuthSession, DEFAULT_ORG, DEFAULT_ORG_ID, Invitation, KeyRole, Member, Membership,
    NewUser, OneTimeToken, OrgRole, Organization, ProjectRole, Rotation, SigningKey, SocialAccount,
    TokenPurpose, User, UserUpdate, new_id, now,
};
use prompt_core::page::{Page, PageRequest};
use prompt_core::{Error, OrgWithRole, PeopleStore, Project, Result};
use uuid::Uuid;

use super::{MemoryStore, State};

/// What `delete_user` writes in place of the deleted user's actor string.
pub(crate) const DELETED_USER: &str = "deleted user";

/// The people part of the memory store's state.
#[derive(Debug)]
pub(super) struct People {
    orgs: HashMap<Uuid, Organization>,
    users: HashMap<Uuid, User>,
    /// ASCII-lowercased email → user.
    emails: HashMap<String, Uuid>,
    /// (org, user) → membership.
    pub(super) memberships: BTreeMap<(Uuid, Uuid), Membership>,
    /// (project, user) → role override.
    pub(super) project_roles: BTreeMap<(Uuid, Uuid), KeyRole>,
    invitations: HashMap<Uuid, Invitation>,
    sessions: HashMap<Uuid, AuthSession>,
    /// Rotated refresh token hash → its session.
    rotated: HashMap<String, Uuid>,
    /// Token hash → (token, used at).
    tokens: HashMap<String, (OneTimeToken, Option<DateTime<Utc>>)>,
    /// (provider, subject) → account.
    social: BTreeMap<(String, String), SocialAccount>,
    /// By id: time-ordered.
    audit: BTreeMap<Uuid, AuditEntry>,
    signing_keys: HashMap<String, SigningKey>,
}

impl Default for People {
    /// The state of a new database: the organization `default` only.
    fn default() -> Self {
        let default = Organization {
            id: DEFAULT_ORG_ID,
            name: DEFAULT_ORG.to_owned(),
            created_at: now(),
        };
        People {
            orgs: HashMap::from([(DEFAULT_ORG_ID, default)]),
            users: HashMap::new(),
            emails: HashMap::new(),
            memberships: BTreeMap::new(),
            project_roles: BTreeMap::new(),
            invitations: HashMap::new(),
            sessions: HashMap::new(),
            rotated: HashMap::new(),
            tokens: HashMap::new(),
            social: BTreeMap::new(),
            audit: BTreeMap::new(),
            signing_keys: HashMap::new(),
        }
    }
}

impl People {
    fn org(&self, id: Uuid) -> Result<&Organization> {
        self.orgs
            .get(&id)
            .ok_or_else(|| Error::not_found(format!("organization {id}")))
    }

    pub(super) fn org_named(&self, name: &str) -> Result<&Organization> {
        self.orgs
            .values()
            .find(|o| o.name == name)
            .ok_or_else(|| Error::not_found(format!("organization '{name}'")))
    }

    fn user(&self, id: Uuid) -> Result<&User> {
        self.users
            .get(&id)
            .ok_or_else(|| Error::not_found(format!("user {id}")))
    }

    fn owners(&self, org: Uuid) -> usize {
        self.memberships
            .range((org, Uuid::nil())..=(org, Uuid::max()))
            .filter(|(_, m)| m.role == OrgRole::Owner)
            .count()
    }

    /// `Conflict` if `user` is the only owner of `org`.
    fn check_not_last_owner(&self, org: Uuid, user: Uuid) -> Result<()> {
        let is_owner = self
            .memberships
            .get(&(org, user))
            .is_some_and(|m| m.role == OrgRole::Owner);
        if is_owner && self.owners(org) == 1 {
            return Err(last_owner(org));
        }
        Ok(())
    }

    fn put_member(&mut self, org: Uuid, user: Uuid, role: OrgRole) -> Membership {
        let m = self
            .memberships
            .entry((org, user))
            .or_insert_with(|| Membership {
                org_id: org,
                user_id: user,
                role,
                created_at: now(),
            });
        m.role = role;
        m.clone()
    }
}

pub(crate) fn last_owner(org: Uuid) -> Error {
    Error::conflict(format!(
        "organization {org} must keep an owner: make another member owner first"
    ))
}

fn lower(email: &str) -> String {
    email.to_ascii_lowercase()
}

fn org_projects(s: &State, org: Uuid) -> impl Iterator<Item = &Project> {
    s.projects.values().filter(move |p| p.org_id == org)
}

#[async_trait]
impl PeopleStore for MemoryStore {
    async fn create_org(&self, name: &str, owner: Option<Uuid>) -> Result<Organization> {
        let mut s = self.write()?;
        if s.people.org_named(name).is_ok() {
            return Err(Error::already_exists(format!("organization '{name}'")));
        }
        if let Some(u) = owner {
            s.people.user(u)?;
        }
        let org = Organization {
            id: new_id(),
            name: name.to_owned(),
            created_at: now(),
        };
        s.people.orgs.insert(org.id, org.clone());
        if let Some(u) = owner {
            s.people.put_member(org.id, u, OrgRole::Owner);
        }
        Ok(org)
    }

    async fn org_by_name(&self, name: &str) -> Result<Organization> {
        self.read()?.people.org_named(name).cloned()
    }

    async fn org_by_id(&self, id: Uuid) -> Result<Organization> {
        self.read()?.people.org(id).cloned()
    }

    async fn list_orgs(&self, user: Option<Uuid>) -> Result<Vec<OrgWithRole>> {
        let s = self.read()?;
        let mut out: Vec<OrgWithRole> = match user {
            None => s
                .people
                .orgs
                .values()
                .map(|o| OrgWithRole {
                    org: o.clone(),
                    role: None,
                })
                .collect(),
            Some(u) => s
                .people
                .memberships
                .values()
                .filter(|m| m.user_id == u)
                .filter_map(|m| {
                    s.people.orgs.get(&m.org_id).map(|o| OrgWithRole {
                        org: o.clone(),
                        role: Some(m.role),
                    })
                })
                .collect(),
        };
        out.sort_by(|a, b| a.org.name.cmp(&b.org.name));
        Ok(out)
    }

    async fn rename_org(&self, id: Uuid, name: &str) -> Result<Organization> {
        let mut s = self.write()?;
        s.people.org(id)?;
        if s.people.orgs.values().any(|o| o.name == name && o.id != id) {
            return Err(Error::already_exists(format!("organization '{name}'")));
        }
        let org = s
            .people
            .orgs
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("organization {id}")))?;
        org.name = name.to_owned();
        Ok(org.clone())
    }

    async fn delete_org(&self, id: Uuid) -> Result<()> {
        let mut s = self.write()?;
        s.people.org(id)?;
        if id == DEFAULT_ORG_ID {
            return Err(default_org_stays());
        }
        if org_projects(&s, id).next().is_some() {
            return Err(Error::conflict(format!(
                "organization {id} still has projects: delete them first"
            )));
        }
        s.people.memberships.retain(|(o, _), _| *o != id);
        s.people.invitations.retain(|_, i| i.org_id != id);
        s.people.orgs.remove(&id);
        Ok(())
    }

    async fn create_org_project(&self, org: Uuid, name: &str) -> Result<Project> {
        let mut s = self.write()?;
        s.people.org(org)?;
        s.insert_project(org, name, name)
    }

    async fn list_org_projects(&self, org: Uuid, page: &PageRequest) -> Result<Page<Project>> {
        let limit = page.limit()?;
        let after: Option<String> = page.position()?;
        let s = self.read()?;
        let mut items: Vec<Project> = org_projects(&s, org)
            .filter(|p| after.as_ref().is_none_or(|a| p.name > *a))
            .cloned()
            .collect();
        items.sort_by(|a, b| a.name.cmp(&b.name));
        items.truncate(limit as usize + 1);
        Page::from_overfetch(items, limit, |p| p.name.clone())
    }

    async fn rename_project(&self, org: Uuid, id: Uuid, name: &str) -> Result<Project> {
        let mut s = self.write()?;
        let old = s
            .projects
            .get(&id)
            .filter(|p| p.org_id == org)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("project {id}")))?;
        if old.name == name {
            return Ok(old);
        }
        let key = (org, name.to_owned());
        if s.project_names.contains_key(&key) {
            return Err(Error::already_exists(format!("project '{name}'")));
        }
        s.project_names.remove(&(org, old.name.clone()));
        s.project_names.insert(key, id);
        let p = s
            .projects
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("project {id}")))?;
        p.name = name.to_owned();
        Ok(p.clone())
    }

    async fn delete_project(&self, org: Uuid, id: Uuid) -> Result<()> {
        let mut s = self.write()?;
        let p = s
            .projects
            .get(&id)
            .filter(|p| p.org_id == org)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("project {id}")))?;
        let mut holds = Vec::new();
        if s.prompts.values().any(|r| r.project == id) {
            holds.push("prompts");
        }
        if self.has_runs(id)? {
            holds.push("runs");
        }
        if s.keys.values().any(|k| k.project_id == id) {
            holds.push("API keys");
        }
        if s.credentials.keys().any(|(pid, _)| *pid == id) {
            holds.push("provider credentials");
        }
        if !holds.is_empty() {
            return Err(Error::conflict(format!(
                "project '{}' still holds {}: delete them first",
                p.name,
                holds.join(", ")
            )));
        }
        s.people.project_roles.retain(|(pid, _), _| *pid != id);
        s.project_names.remove(&(org, p.name));
        s.projects.remove(&id);
        Ok(())
    }

    async fn create_user(&self, new: NewUser) -> Result<User> {
        let mut s = self.write()?;
        let key = lower(&new.email);
        if s.people.emails.contains_key(&key) {
            return Err(Error::already_exists(format!("user '{}'", new.email)));
        }
        let at = now();
        let user = User {
            id: new_id(),
            email: new.email,
            name: new.name,
            email_verified: new.email_verified,
            password_hash: new.password_hash,
            preferences: Default::default(),
            created_at: at,
            updated_at: at,
            last_login_at: None,
        };
        s.people.emails.insert(key, user.id);
        s.people.users.insert(user.id, user.clone());
        let mut woken = Vec::new();
        if s.people.orgs.contains_key(&DEFAULT_ORG_ID) && s.people.owners(DEFAULT_ORG_ID) == 0 {
            s.people.put_member(DEFAULT_ORG_ID, user.id, OrgRole::Owner);
            woken = s.member_changed(DEFAULT_ORG_ID, None, user.id);
        }
        Ok(self.wake(s, woken, user))
    }

    async fn user_by_id(&self, id: Uuid) -> Result<User> {
        self.read()?.people.user(id).cloned()
    }

    async fn user_by_email(&self, email: &str) -> Result<User> {
        let s = self.read()?;
        s.people
            .emails
            .get(&lower(email))
            .and_then(|id| s.people.users.get(id))
            .cloned()
            .ok_or_else(|| Error::not_found(format!("user '{email}'")))
    }

    async fn update_user(&self, id: Uuid, update: UserUpdate) -> Result<User> {
        let mut s = self.write()?;
        let u = s
            .people
            .users
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("user {id}")))?;
        if let Some(n) = update.name {
            u.name = n;
        }
        if let Some(p) = update.preferences {
            u.preferences = p;
        }
        if let Some(h) = update.password_hash {
            u.password_hash = Some(h);
        }
        if let Some(v) = update.email_verified {
            u.email_verified = v;
        }
        if let Some(t) = update.last_login_at {
            u.last_login_at = Some(t);
        }
        u.updated_at = now();
        Ok(u.clone())
    }

    async fn delete_user(&self, id: Uuid, actor: &str) -> Result<()> {
        let mut s = self.write()?;
        let user = s.people.user(id)?.clone();
        let owned: Vec<Uuid> = s
            .people
            .memberships
            .values()
            .filter(|m| m.user_id == id && m.role == OrgRole::Owner)
            .map(|m| m.org_id)
            .collect();
        for org in owned {
            s.people.check_not_last_owner(org, id)?;
        }
        let mut orgs: Vec<Uuid> = s
            .people
            .memberships
            .keys()
            .filter(|(_, u)| *u == id)
            .map(|(o, _)| *o)
            .collect();
        orgs.sort();
        let p = &mut s.people;
        p.memberships.retain(|(_, u), _| *u != id);
        p.project_roles.retain(|(_, u), _| *u != id);
        let sessions: Vec<Uuid> = p
            .sessions
            .values()
            .filter(|x| x.user_id == id)
            .map(|x| x.id)
            .collect();
        p.rotated.retain(|_, sid| !sessions.contains(sid));
        p.sessions.retain(|_, x| x.user_id != id);
        p.tokens.retain(|_, (t, _)| t.user_id != id);
        p.social.retain(|_, a| a.user_id != id);
        for e in p.audit.values_mut() {
            if e.actor == actor {
                DELETED_USER.clone_into(&mut e.actor);
            }
        }
        for i in p.invitations.values_mut() {
            if i.invited_by == actor {
                DELETED_USER.clone_into(&mut i.invited_by);
            }
        }
        p.emails.remove(&lower(&user.email));
        p.users.remove(&id);
        for row in s.prompts.values_mut() {
            for v in row.versions.iter_mut() {
                if v.created_by.as_deref() == Some(actor) {
                    std::sync::Arc::make_mut(v).created_by = Some(DELETED_USER.to_owned());
                }
            }
            for moves in row.history.values_mut() {
                for m in moves.iter_mut() {
                    if m.moved_by.as_deref() == Some(actor) {
                        m.moved_by = Some(DELETED_USER.to_owned());
                    }
                }
            }
        }
        s.anonymise_events(actor, DELETED_USER);
        let mut woken = Vec::new();
        for org in orgs {
            woken.extend(s.member_changed(org, None, id));
        }
        self.wake(s, woken, ());
        Ok(())
    }

    async fn set_member(&self, org: Uuid, user: Uuid, role: OrgRole) -> Result<Membership> {
        let mut s = self.write()?;
        s.people.org(org)?;
        s.people.user(user)?;
        if role != OrgRole::Owner {
            s.people.check_not_last_owner(org, user)?;
        }
        let m = s.people.put_member(org, user, role);
        let woken = s.member_changed(org, None, user);
        Ok(self.wake(s, woken, m))
    }

    async fn membership(&self, org: Uuid, user: Uuid) -> Result<Membership> {
        self.read()?
            .people
            .memberships
            .get(&(org, user))
            .cloned()
            .ok_or_else(|| not_member(org, user))
    }

    async fn list_members(&self, org: Uuid) -> Result<Vec<Member>> {
        let s = self.read()?;
        let mut out = Vec::new();
        for m in s.people.memberships.values().filter(|m| m.org_id == org) {
            let Some(u) = s.people.users.get(&m.user_id) else {
                continue;
            };
            let project_roles = s
                .people
                .project_roles
                .iter()
                .filter(|((pid, uid), _)| {
                    *uid == u.id && s.projects.get(pid).is_some_and(|p| p.org_id == org)
                })
                .map(|((pid, _), role)| ProjectRole {
                    project_id: *pid,
                    role: *role,
                })
                .collect();
            out.push(Member {
                user_id: u.id,
                email: u.email.clone(),
                name: u.name.clone(),
                role: m.role,
                project_roles,
                created_at: m.created_at,
            });
        }
        out.sort_by_key(|m| (lower(&m.email), m.user_id));
        Ok(out)
    }

    async fn remove_member(&self, org: Uuid, user: Uuid) -> Result<()> {
        let mut s = self.write()?;
        if !s.people.memberships.contains_key(&(org, user)) {
            return Err(not_member(org, user));
        }
        s.people.check_not_last_owner(org, user)?;
        let in_org: Vec<Uuid> = org_projects(&s, org).map(|p| p.id).collect();
        s.people
            .project_roles
            .retain(|(pid, uid), _| !(*uid == user && in_org.contains(pid)));
        s.people.memberships.remove(&(org, user));
        let woken = s.member_changed(org, None, user);
        self.wake(s, woken, ());
        Ok(())
    }

    async fn set_project_role(
        &self,
        project: Uuid,
        user: Uuid,
        role: Option<KeyRole>,
    ) -> Result<()> {
        let mut s = self.write()?;
        let org = s
            .projects
            .get(&project)
            .map(|p| p.org_id)
            .ok_or_else(|| Error::not_found(format!("project {project}")))?;
        if !s.people.memberships.contains_key(&(org, user)) {
            return Err(not_member(org, user));
        }
        match role {
            Some(r) => {
                s.people.project_roles.insert((project, user), r);
            }
            None => {
                s.people.project_roles.remove(&(project, user));
            }
        }
        let woken = s.member_changed(org, Some(project), user);
        self.wake(s, woken, ());
        Ok(())
    }

    async fn project_access(&self, user: Uuid, project: Uuid) -> Result<Option<KeyRole>> {
        let s = self.read()?;
        let org = s
            .projects
            .get(&project)
            .map(|p| p.org_id)
            .ok_or_else(|| Error::not_found(format!("project {project}")))?;
        let Some(m) = s.people.memberships.get(&(org, user)) else {
            return Ok(None);
        };
        Ok(Some(
            s.people
                .project_roles
                .get(&(project, user))
                .copied()
                .unwrap_or_else(|| m.role.project_role()),
        ))
    }

    async fn create_invitation(&self, invitation: Invitation) -> Result<Invitation> {
        let mut s = self.write()?;
        s.people.org(invitation.org_id)?;
        if s.people.invitations.contains_key(&invitation.id)
            || s.people
                .invitations
                .values()
                .any(|i| i.token_hash == invitation.token_hash)
        {
            return Err(Error::already_exists("invitation"));
        }
        s.people
            .invitations
            .insert(invitation.id, invitation.clone());
        Ok(invitation)
    }

    async fn list_invitations(&self, org: Uuid) -> Result<Vec<Invitation>> {
        let s = self.read()?;
        let mut out: Vec<Invitation> = s
            .people
            .invitations
            .values()
            .filter(|i| i.org_id == org && i.accepted_at.is_none() && i.revoked_at.is_none())
            .cloned()
            .collect();
        out.sort_by_key(|x| std::cmp::Reverse((x.created_at, x.id)));
        Ok(out)
    }

    async fn revoke_invitation(&self, org: Uuid, id: Uuid) -> Result<()> {
        let mut s = self.write()?;
        match s.people.invitations.get_mut(&id) {
            Some(i) if i.org_id == org && i.accepted_at.is_none() && i.revoked_at.is_none() => {
                i.revoked_at = Some(now());
                Ok(())
            }
            _ => Err(Error::not_found(format!("invitation {id}"))),
        }
    }

    async fn invitation_by_hash(&self, token_hash: &str) -> Result<Invitation> {
        self.read()?
            .people
            .invitations
            .values()
            .find(|i| i.token_hash == token_hash)
            .cloned()
            .ok_or_else(|| Error::not_found("invitation"))
    }

    async fn accept_invitation(
        &self,
        token_hash: &str,
        user: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Membership> {
        let mut s = self.write()?;
        s.people.user(user)?;
        let inv = s
            .people
            .invitations
            .values_mut()
            .find(|i| i.token_hash == token_hash && i.is_open(at))
            .ok_or_else(|| Error::not_found("invitation"))?;
        inv.accepted_at = Some(at);
        let (org, role) = (inv.org_id, inv.role);
        let role = match s.people.memberships.get(&(org, user)) {
            Some(m) if m.role >= role => m.role,
            _ => role,
        };
        let m = s.people.put_member(org, user, role);
        let woken = s.member_changed(org, None, user);
        Ok(self.wake(s, woken, m))
    }

    async fn create_session(&self, session: AuthSession) -> Result<AuthSession> {
        let mut s = self.write()?;
        s.people.user(session.user_id)?;
        if s.people.sessions.contains_key(&session.id)
            || s.people.rotated.contains_key(&session.token_hash)
            || s.people
                .sessions
                .values()
                .any(|x| x.token_hash == session.token_hash)
        {
            return Err(Error::already_exists("session"));
        }
        s.people.sessions.insert(session.id, session.clone());
        Ok(session)
    }

    async fn session(&self, id: Uuid) -> Result<AuthSession> {
        self.read()?
            .people
            .sessions
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("session {id}")))
    }

    async fn session_by_token(&self, token_hash: &str) -> Result<AuthSession> {
        self.read()?
            .people
            .sessions
            .values()
            .find(|s| s.token_hash == token_hash)
            .cloned()
            .ok_or_else(|| Error::not_found("session"))
    }

    async fn rotate_session(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Rotation> {
        let mut s = self.write()?;
        let p = &mut s.people;
        if let Some(sid) = p.rotated.get(old_hash).copied() {
            let x = p
                .sessions
                .get_mut(&sid)
                .ok_or_else(|| Error::not_found("session"))?;
            if x.revoked_at.is_none() {
                x.revoked_at = Some(at);
            }
            return Ok(Rotation::Reused(x.clone()));
        }
        let x = p
            .sessions
            .values_mut()
            .find(|x| x.token_hash == old_hash && x.is_live(at))
            .ok_or_else(|| Error::not_found("session"))?;
        new_hash.clone_into(&mut x.token_hash);
        x.expires_at = new_expires_at;
        x.last_used_at = at;
        let out = x.clone();
        p.rotated.insert(old_hash.to_owned(), out.id);
        Ok(Rotation::Rotated(out))
    }

    async fn list_sessions(&self, user: Uuid, at: DateTime<Utc>) -> Result<Vec<AuthSession>> {
        let s = self.read()?;
        let mut out: Vec<AuthSession> = s
            .people
            .sessions
            .values()
            .filter(|x| x.user_id == user && x.is_live(at))
            .cloned()
            .collect();
        out.sort_by_key(|x| std::cmp::Reverse((x.created_at, x.id)));
        Ok(out)
    }

    async fn revoke_session(&self, user: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        let mut s = self.write()?;
        match s.people.sessions.get_mut(&id) {
            Some(x) if x.user_id == user && x.is_live(at) => {
                x.revoked_at = Some(at);
                Ok(())
            }
            _ => Err(Error::not_found(format!("session {id}"))),
        }
    }

    async fn revoke_sessions(&self, user: Uuid, at: DateTime<Utc>) -> Result<u64> {
        let mut s = self.write()?;
        let mut n = 0;
        for x in s.people.sessions.values_mut() {
            if x.user_id == user && x.is_live(at) {
                x.revoked_at = Some(at);
                n += 1;
            }
        }
        Ok(n)
    }

    async fn create_token(&self, token: OneTimeToken) -> Result<()> {
        let mut s = self.write()?;
        s.people.user(token.user_id)?;
        if s.people.tokens.contains_key(&token.token_hash) {
            return Err(Error::already_exists("token"));
        }
        s.people
            .tokens
            .insert(token.token_hash.clone(), (token, None));
        Ok(())
    }

    async fn consume_token(
        &self,
        purpose: TokenPurpose,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<OneTimeToken> {
        let mut s = self.write()?;
        match s.people.tokens.get_mut(token_hash) {
            Some((t, used @ None)) if t.purpose == purpose && at < t.expires_at => {
                *used = Some(at);
                Ok(t.clone())
            }
            _ => Err(Error::not_found("token")),
        }
    }

    async fn link_social(&self, account: SocialAccount) -> Result<SocialAccount> {
        let mut s = self.write()?;
        s.people.user(account.user_id)?;
        let key = (account.provider.clone(), account.subject.clone());
        if s.people.social.contains_key(&key) {
            return Err(Error::already_exists(format!(
                "{} account {}",
                account.provider, account.subject
            )));
        }
        s.people.social.insert(key, account.clone());
        Ok(account)
    }

    async fn user_by_social(&self, provider: &str, subject: &str) -> Result<User> {
        let s = self.read()?;
        s.people
            .social
            .get(&(provider.to_owned(), subject.to_owned()))
            .and_then(|a| s.people.users.get(&a.user_id))
            .cloned()
            .ok_or_else(|| Error::not_found(format!("{provider} account {subject}")))
    }

    async fn list_social(&self, user: Uuid) -> Result<Vec<SocialAccount>> {
        Ok(self
            .read()?
            .people
            .social
            .values()
            .filter(|a| a.user_id == user)
            .cloned()
            .collect())
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<()> {
        let mut s = self.write()?;
        if s.people.audit.contains_key(&entry.id) {
            return Err(Error::already_exists(format!("audit entry {}", entry.id)));
        }
        s.people.audit.insert(entry.id, entry);
        Ok(())
    }

    async fn list_audit(&self, org: Uuid, page: &PageRequest) -> Result<Page<AuditEntry>> {
        let limit = page.limit()?;
        let before: Option<Uuid> = page.position()?;
        let s = self.read()?;
        let p = &s.people;
        let entries = match before {
            Some(b) => p.audit.range(..b),
            None => p.audit.range(..),
        };
        let items: Vec<AuditEntry> = entries
            .rev()
            .map(|(_, e)| e)
            .filter(|e| match e.org_id {
                Some(o) => o == org,
                // A member's own events from the day they joined only.
                None => e.user_id.is_some_and(|u| {
                    p.memberships
                        .get(&(org, u))
                        .is_some_and(|m| m.created_at <= e.at)
                }),
            })
            .take(limit as usize + 1)
            .cloned()
            .collect();
        Page::from_overfetch(items, limit, |e| e.id)
    }

    async fn user_audit(&self, user: Uuid, limit: u32) -> Result<Vec<AuditEntry>> {
        Ok(self
            .read()?
            .people
            .audit
            .values()
            .rev()
            .filter(|e| e.user_id == Some(user))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
        let mut keys: Vec<SigningKey> =
            self.read()?.people.signing_keys.values().cloned().collect();
        keys.sort_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)));
        Ok(keys)
    }

    async fn add_signing_key(&self, key: SigningKey) -> Result<()> {
        let mut s = self.write()?;
        if s.people.signing_keys.contains_key(&key.id) {
            return Err(Error::already_exists(format!("signing key '{}'", key.id)));
        }
        s.people.signing_keys.insert(key.id.clone(), key);
        Ok(())
    }

    async fn retire_signing_keys(&self, before: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
        let mut s = self.write()?;
        let mut n = 0;
        for k in s.people.signing_keys.values_mut() {
            if k.created_at < before && k.retired_at.is_none() {
                k.retired_at = Some(at);
                n += 1;
            }
        }
        Ok(n)
    }
}

fn not_member(org: Uuid, user: Uuid) -> Error {
    Error::not_found(format!("membership of user {user} in organization {org}"))
}

pub(crate) fn default_org_stays() -> Error {
    Error::conflict(format!(
        "the organization '{DEFAULT_ORG}' holds the projects named without an organization \
         and cannot be deleted"
    ))
}
