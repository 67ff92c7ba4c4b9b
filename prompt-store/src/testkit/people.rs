//! Behaviour tests of the people store: organizations and their projects, users,
//! memberships and the last-owner rule, invitations, sessions and refresh-token
//! rotation, one-time tokens, social accounts, the audit log and signing keys. Each
//! runs on a fresh database, so "the first user" is the test's first user.
//!
//! One file over 600 lines: one behaviour body per `PeopleStore` subject, registered
//! together in the suite list, sharing the small builders at the top.

use std::sync::Arc;

use chrono::Duration;
use prompt_core::domain::{
    AuditEntry, AuthSession, DEFAULT_ORG_ID, Invitation, KeyRole, NewUser, OneTimeToken, OrgRole,
    Rotation, SigningKey, SocialAccount, TokenPurpose, User, UserUpdate, new_id, now,
};
use prompt_core::{
    Error, NewPrompt, NewRun, NewVersion, PageRequest, PeopleStore, RunQuery, RunStatus, Selector,
};
use serde_json::json;
use uuid::Uuid;

use super::TestBackend;

/// The backend's people store, or `None` after printing the skip.
fn people(b: &TestBackend) -> Option<Arc<dyn PeopleStore>> {
    if b.people.is_none() {
        eprintln!("SKIPPED on this backend: the people store (it offers none)");
    }
    b.people.clone()
}

async fn user(p: &dyn PeopleStore, email: &str) -> User {
    p.create_user(NewUser {
        email: email.into(),
        name: email.split('@').next().unwrap_or(email).into(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$x$y".into()),
        email_verified: true,
    })
    .await
    .unwrap()
}

fn is_conflict<T: std::fmt::Debug>(r: prompt_core::Result<T>) -> bool {
    matches!(r, Err(Error::Conflict { .. }))
}

fn is_not_found<T: std::fmt::Debug>(r: prompt_core::Result<T>) -> bool {
    matches!(r, Err(Error::NotFound { .. }))
}

fn is_taken<T: std::fmt::Debug>(r: prompt_core::Result<T>) -> bool {
    matches!(r, Err(Error::AlreadyExists { .. }))
}

fn invitation(org: Uuid, email: &str, role: OrgRole, hash: &str, ttl: Duration) -> Invitation {
    let at = now();
    Invitation {
        id: new_id(),
        org_id: org,
        email: email.into(),
        role,
        token_hash: hash.into(),
        invited_by: "user:owner@x.io".into(),
        created_at: at,
        expires_at: at + ttl,
        accepted_at: None,
        revoked_at: None,
    }
}

fn session(user: Uuid, hash: &str, ttl: Duration) -> AuthSession {
    let at = now();
    AuthSession {
        id: new_id(),
        user_id: user,
        token_hash: hash.into(),
        user_agent: Some("test".into()),
        ip: Some("127.0.0.1".into()),
        created_at: at,
        last_used_at: at,
        expires_at: at + ttl,
        revoked_at: None,
    }
}

fn audit(org: Option<Uuid>, user: Option<Uuid>, action: &str) -> AuditEntry {
    AuditEntry {
        id: new_id(),
        org_id: org,
        project_id: None,
        user_id: user,
        actor: "system".into(),
        action: action.into(),
        ip: None,
        data: json!({"n": action}),
        at: now(),
    }
}

/// The first user owns `default`; later ones do not. Emails are unique and found
/// without regard to case; updates change what they name.
pub async fn people_users_and_first_owner(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let first = user(&*p, "Ada@Example.com").await;
    assert!(first.has_password());
    let m = p.membership(DEFAULT_ORG_ID, first.id).await.unwrap();
    assert_eq!(m.role, OrgRole::Owner);
    let second = user(&*p, "bob@example.com").await;
    assert!(is_not_found(p.membership(DEFAULT_ORG_ID, second.id).await));
    assert!(is_taken(
        p.create_user(NewUser {
            email: "ADA@example.COM".into(),
            name: "again".into(),
            password_hash: None,
            email_verified: false,
        })
        .await
    ));
    let found = p.user_by_email("ada@EXAMPLE.com").await.unwrap();
    assert_eq!(found.id, first.id);
    assert_eq!(found.email, "Ada@Example.com", "stored as given");
    assert_eq!(p.user_by_id(first.id).await.unwrap(), found);
    assert!(is_not_found(p.user_by_id(Uuid::now_v7()).await));
    assert!(is_not_found(p.user_by_email("nobody@example.com").await));
    let login = now();
    let mut prefs = serde_json::Map::new();
    prefs.insert("theme".into(), json!("dark"));
    let u = p
        .update_user(
            second.id,
            UserUpdate {
                name: Some("Bobby".into()),
                preferences: Some(prefs.clone()),
                password_hash: Some("h2".into()),
                email_verified: Some(false),
                last_login_at: Some(login),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (u.name.as_str(), &u.preferences, u.email_verified),
        ("Bobby", &prefs, false)
    );
    assert_eq!(u.password_hash.as_deref(), Some("h2"));
    assert_eq!(u.last_login_at, Some(login));
    assert_eq!(p.user_by_id(second.id).await.unwrap(), u);
    // Nothing named: nothing changes but `updated_at`.
    let same = p
        .update_user(second.id, UserUpdate::default())
        .await
        .unwrap();
    assert_eq!((same.name, same.preferences), (u.name, u.preferences));
    assert!(is_not_found(
        p.update_user(Uuid::now_v7(), UserUpdate::default()).await
    ));
}

/// An organization always keeps an owner: demoting, removing or deleting the last
/// one is refused, also when two owners demote each other at once.
pub async fn people_last_owner_is_kept(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let a = user(&*p, "a@x.io").await;
    let c = user(&*p, "c@x.io").await;
    let org = p.create_org("acme", Some(a.id)).await.unwrap();
    assert_eq!(
        p.membership(org.id, a.id).await.unwrap().role,
        OrgRole::Owner
    );
    assert!(is_conflict(
        p.set_member(org.id, a.id, OrgRole::Admin).await
    ));
    assert!(is_conflict(p.remove_member(org.id, a.id).await));
    assert!(is_conflict(p.delete_user(a.id, "user:a@x.io").await));
    // A second owner makes the first free to go.
    p.set_member(org.id, c.id, OrgRole::Owner).await.unwrap();
    let m = p.set_member(org.id, a.id, OrgRole::Member).await.unwrap();
    assert_eq!(m.role, OrgRole::Member);
    assert!(is_conflict(p.remove_member(org.id, c.id).await));
    p.remove_member(org.id, a.id).await.unwrap();
    assert!(is_not_found(p.remove_member(org.id, a.id).await));
    assert!(is_not_found(
        p.set_member(Uuid::now_v7(), a.id, OrgRole::Viewer).await
    ));
    assert!(is_not_found(
        p.set_member(org.id, Uuid::now_v7(), OrgRole::Viewer).await
    ));
    assert!(is_not_found(
        p.create_org("ghost-owned", Some(Uuid::now_v7())).await
    ));
    assert!(
        is_not_found(p.org_by_name("ghost-owned").await),
        "all or nothing"
    );

    // Two owners demoting each other concurrently: exactly one succeeds.
    p.set_member(org.id, a.id, OrgRole::Owner).await.unwrap();
    let (pa, pc) = (p.clone(), p.clone());
    let (oa, ob) = (org.id, org.id);
    let (ia, ic) = (a.id, c.id);
    let ta = tokio::spawn(async move { pa.set_member(oa, ia, OrgRole::Admin).await });
    let tc = tokio::spawn(async move { pc.set_member(ob, ic, OrgRole::Admin).await });
    let results = [ta.await.unwrap(), tc.await.unwrap()];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let owners = p
        .list_members(org.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.role == OrgRole::Owner)
        .count();
    assert_eq!(owners, 1);
}

/// Organizations: unique names, lookups, listings with the user's role, renames;
/// projects: the same name in two organizations, `ORG/NAME` lookups, pages, renames,
/// and deletes refused while they hold something.
pub async fn people_orgs_and_their_projects(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let a = user(&*p, "a@x.io").await;
    let acme = p.create_org("acme", Some(a.id)).await.unwrap();
    assert!(is_taken(p.create_org("acme", None).await));
    assert_eq!(p.org_by_name("acme").await.unwrap(), acme);
    assert_eq!(p.org_by_id(acme.id).await.unwrap(), acme);
    assert!(is_not_found(p.org_by_id(Uuid::now_v7()).await));
    let beta = p.create_org("beta", None).await.unwrap();
    let mine = p.list_orgs(Some(a.id)).await.unwrap();
    let mine: Vec<(String, Option<OrgRole>)> =
        mine.into_iter().map(|o| (o.org.name, o.role)).collect();
    assert_eq!(
        mine,
        vec![
            ("acme".to_owned(), Some(OrgRole::Owner)),
            ("default".to_owned(), Some(OrgRole::Owner))
        ]
    );
    let all: Vec<String> = p
        .list_orgs(None)
        .await
        .unwrap()
        .into_iter()
        .map(|o| {
            assert_eq!(o.role, None);
            o.org.name
        })
        .collect();
    assert_eq!(all, vec!["acme", "beta", "default"]);
    assert!(is_taken(p.rename_org(beta.id, "acme").await));
    assert_eq!(p.rename_org(beta.id, "bravo").await.unwrap().name, "bravo");
    assert!(is_not_found(p.rename_org(Uuid::now_v7(), "zz").await));

    // The same project name in two organizations, and NAME vs ORG/NAME.
    let in_acme = p.create_org_project(acme.id, "web").await.unwrap();
    let in_default = b.store.create_project("web").await.unwrap();
    assert_ne!(in_acme.id, in_default.id);
    assert_eq!(in_acme.org_id, acme.id);
    assert_eq!(in_default.org_id, DEFAULT_ORG_ID);
    assert!(is_taken(p.create_org_project(acme.id, "web").await));
    assert!(is_taken(b.store.create_project("acme/web").await));
    assert!(is_not_found(
        p.create_org_project(Uuid::now_v7(), "x").await
    ));
    assert_eq!(b.store.project_by_name("acme/web").await.unwrap(), in_acme);
    assert_eq!(b.store.project_by_name("web").await.unwrap(), in_default);
    assert_eq!(
        b.store.project_by_name("default/web").await.unwrap(),
        in_default
    );
    assert!(is_not_found(b.store.project_by_name("nope/web").await));
    assert!(is_not_found(b.store.create_project("nope/web").await));
    let ensured = b.store.ensure_project("bravo/api").await.unwrap();
    assert_eq!(ensured.org_id, beta.id);
    assert_eq!(
        b.store.ensure_project("bravo/api").await.unwrap().id,
        ensured.id
    );
    let e = b.store.project_by_name("a/b/c").await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");

    // Pages by name.
    for n in ["b", "a", "c"] {
        p.create_org_project(acme.id, n).await.unwrap();
    }
    let mut page = PageRequest {
        limit: Some(2),
        cursor: None,
    };
    let mut names = Vec::new();
    loop {
        let got = p.list_org_projects(acme.id, &page).await.unwrap();
        assert!(got.items.len() <= 2);
        names.extend(got.items.into_iter().map(|p| p.name));
        match got.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(names, vec!["a", "b", "c", "web"]);

    // Renames.
    let a_proj = b.store.project_by_name("acme/a").await.unwrap();
    assert!(is_taken(p.rename_project(acme.id, a_proj.id, "b").await));
    assert!(is_not_found(
        p.rename_project(beta.id, a_proj.id, "zz").await
    ));
    let renamed = p.rename_project(acme.id, a_proj.id, "alpha").await.unwrap();
    assert_eq!((renamed.id, renamed.name.as_str()), (a_proj.id, "alpha"));
    assert_eq!(
        b.store.project_by_name("acme/alpha").await.unwrap().id,
        a_proj.id
    );
    assert!(is_not_found(b.store.project_by_name("acme/a").await));

    // Deleting: refused while a prompt (even archived) is there.
    b.store
        .create_prompt(a_proj.id, NewPrompt::named("p"))
        .await
        .unwrap();
    b.store.archive_prompt(a_proj.id, "p").await.unwrap();
    let e = p.delete_project(acme.id, a_proj.id).await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict { message } if message.contains("prompts")),
        "{e}"
    );
    assert!(is_not_found(p.delete_project(beta.id, a_proj.id).await));
    let empty = b.store.project_by_name("acme/b").await.unwrap();
    p.set_project_role(empty.id, a.id, Some(KeyRole::Viewer))
        .await
        .unwrap();
    p.delete_project(acme.id, empty.id).await.unwrap();
    assert!(is_not_found(b.store.project_by_id(empty.id).await));
    assert!(is_not_found(p.delete_project(acme.id, empty.id).await));

    // Organizations: refused with projects; `default` stays.
    assert!(is_conflict(p.delete_org(acme.id).await));
    let gone = p.create_org("gone", Some(a.id)).await.unwrap();
    p.create_invitation(invitation(
        gone.id,
        "z@x.io",
        OrgRole::Member,
        "gone-inv",
        Duration::hours(1),
    ))
    .await
    .unwrap();
    p.delete_org(gone.id).await.unwrap();
    assert!(is_not_found(p.org_by_id(gone.id).await));
    assert!(is_not_found(p.membership(gone.id, a.id).await));
    assert!(is_not_found(p.delete_org(gone.id).await));
    assert!(is_conflict(p.delete_org(DEFAULT_ORG_ID).await));
}

/// What a member may do in a project: the organization role's mapping, replaced by a
/// project override; nothing for non-members; overrides listed with the members and
/// dropped with the membership.
pub async fn people_project_access(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let owner = user(&*p, "owner@x.io").await;
    let m = user(&*p, "member@x.io").await;
    let outsider = user(&*p, "out@x.io").await;
    let org = p.create_org("acme", Some(owner.id)).await.unwrap();
    let proj = p.create_org_project(org.id, "web").await.unwrap();
    let other = p.create_org_project(org.id, "api").await.unwrap();
    p.set_member(org.id, m.id, OrgRole::Member).await.unwrap();
    assert_eq!(
        p.project_access(m.id, proj.id).await.unwrap(),
        Some(KeyRole::Editor)
    );
    assert_eq!(
        p.project_access(owner.id, proj.id).await.unwrap(),
        Some(KeyRole::Admin)
    );
    assert_eq!(p.project_access(outsider.id, proj.id).await.unwrap(), None);
    assert!(is_not_found(p.project_access(m.id, Uuid::now_v7()).await));
    p.set_project_role(proj.id, m.id, Some(KeyRole::Viewer))
        .await
        .unwrap();
    assert_eq!(
        p.project_access(m.id, proj.id).await.unwrap(),
        Some(KeyRole::Viewer)
    );
    assert_eq!(
        p.project_access(m.id, other.id).await.unwrap(),
        Some(KeyRole::Editor)
    );
    p.set_project_role(proj.id, m.id, Some(KeyRole::Admin))
        .await
        .unwrap();
    let members = p.list_members(org.id).await.unwrap();
    let emails: Vec<&str> = members.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(emails, vec!["member@x.io", "owner@x.io"]);
    assert_eq!(members[0].role, OrgRole::Member);
    assert_eq!(members[0].project_roles.len(), 1);
    assert_eq!(members[0].project_roles[0].project_id, proj.id);
    assert_eq!(members[0].project_roles[0].role, KeyRole::Admin);
    assert!(members[1].project_roles.is_empty());
    p.set_project_role(proj.id, m.id, None).await.unwrap();
    assert_eq!(
        p.project_access(m.id, proj.id).await.unwrap(),
        Some(KeyRole::Editor)
    );
    assert!(is_not_found(
        p.set_project_role(proj.id, outsider.id, Some(KeyRole::Viewer))
            .await
    ));
    assert!(is_not_found(
        p.set_project_role(Uuid::now_v7(), m.id, Some(KeyRole::Viewer))
            .await
    ));
    p.set_project_role(proj.id, m.id, Some(KeyRole::Viewer))
        .await
        .unwrap();
    p.remove_member(org.id, m.id).await.unwrap();
    assert_eq!(p.project_access(m.id, proj.id).await.unwrap(), None);
    // Back as a member: the old override is gone.
    p.set_member(org.id, m.id, OrgRole::Viewer).await.unwrap();
    assert_eq!(
        p.project_access(m.id, proj.id).await.unwrap(),
        Some(KeyRole::Viewer)
    );
    let members = p.list_members(org.id).await.unwrap();
    assert!(members.iter().all(|m| m.project_roles.is_empty()));
}

/// Invitations: listed while open, newest first; accepted once; refused when expired
/// or revoked; accepting keeps a higher role the user already has.
pub async fn people_invitations(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let owner = user(&*p, "owner@x.io").await;
    let guest = user(&*p, "guest@x.io").await;
    let org = p.create_org("acme", Some(owner.id)).await.unwrap();
    let hour = Duration::hours(1);
    let first = p
        .create_invitation(invitation(
            org.id,
            "guest@x.io",
            OrgRole::Member,
            "h1",
            hour,
        ))
        .await
        .unwrap();
    let second = p
        .create_invitation(invitation(
            org.id,
            "guest@x.io",
            OrgRole::Viewer,
            "h2",
            hour,
        ))
        .await
        .unwrap();
    assert!(is_taken(
        p.create_invitation(invitation(org.id, "x@x.io", OrgRole::Viewer, "h1", hour))
            .await
    ));
    assert!(is_not_found(
        p.create_invitation(invitation(
            Uuid::now_v7(),
            "x@x.io",
            OrgRole::Viewer,
            "h9",
            hour
        ))
        .await
    ));
    let open: Vec<Uuid> = p
        .list_invitations(org.id)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(open, vec![second.id, first.id]);
    assert_eq!(p.invitation_by_hash("h1").await.unwrap(), first);
    assert!(is_not_found(p.invitation_by_hash("nope").await));

    let m = p.accept_invitation("h1", guest.id, now()).await.unwrap();
    assert_eq!(
        (m.org_id, m.user_id, m.role),
        (org.id, guest.id, OrgRole::Member)
    );
    assert!(is_not_found(
        p.accept_invitation("h1", guest.id, now()).await
    ));
    assert!(
        p.invitation_by_hash("h1")
            .await
            .unwrap()
            .accepted_at
            .is_some()
    );
    // A lower role does not demote.
    let m = p.accept_invitation("h2", guest.id, now()).await.unwrap();
    assert_eq!(m.role, OrgRole::Member);
    assert!(p.list_invitations(org.id).await.unwrap().is_empty());

    // Expired, revoked.
    p.create_invitation(invitation(org.id, "g@x.io", OrgRole::Admin, "h3", hour))
        .await
        .unwrap();
    assert!(is_not_found(
        p.accept_invitation("h3", guest.id, now() + Duration::hours(2))
            .await
    ));
    let third = p.invitation_by_hash("h3").await.unwrap();
    assert!(is_not_found(
        p.revoke_invitation(Uuid::now_v7(), third.id).await
    ));
    p.revoke_invitation(org.id, third.id).await.unwrap();
    assert!(is_not_found(p.revoke_invitation(org.id, third.id).await));
    assert!(is_not_found(
        p.accept_invitation("h3", guest.id, now()).await
    ));
    assert_eq!(
        p.membership(org.id, guest.id).await.unwrap().role,
        OrgRole::Member
    );
    // A higher role is given.
    p.create_invitation(invitation(org.id, "g@x.io", OrgRole::Admin, "h4", hour))
        .await
        .unwrap();
    let m = p.accept_invitation("h4", guest.id, now()).await.unwrap();
    assert_eq!(m.role, OrgRole::Admin);
}

/// Of concurrent accepts of one invitation, exactly one succeeds.
pub async fn people_concurrent_accept(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let owner = user(&*p, "owner@x.io").await;
    let org = p.create_org("acme", Some(owner.id)).await.unwrap();
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(user(&*p, &format!("u{i}@x.io")).await.id);
    }
    p.create_invitation(invitation(
        org.id,
        "u@x.io",
        OrgRole::Member,
        "race",
        Duration::hours(1),
    ))
    .await
    .unwrap();
    let tasks: Vec<_> = users
        .iter()
        .map(|u| {
            let (p, u) = (p.clone(), *u);
            tokio::spawn(async move { p.accept_invitation("race", u, now()).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::NotFound { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(p.list_members(org.id).await.unwrap().len(), 2);
}

/// Sessions: a refresh token rotates once; presenting a rotated one revokes the
/// session; unknown and expired ones are refused; concurrent rotations of one token
/// give one rotation and one re-use; listing and revoking.
pub async fn people_sessions_rotate_once(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let u = user(&*p, "u@x.io").await;
    let other = user(&*p, "o@x.io").await;
    let day = Duration::days(1);
    let s = p.create_session(session(u.id, "t1", day)).await.unwrap();
    assert_eq!(p.session(s.id).await.unwrap(), s);
    assert!(is_not_found(p.session(Uuid::now_v7()).await));
    assert!(is_taken(p.create_session(session(u.id, "t1", day)).await));
    assert!(is_not_found(
        p.create_session(session(Uuid::now_v7(), "tx", day)).await
    ));

    let at = now();
    let exp = at + Duration::days(2);
    match p.rotate_session("t1", "t2", exp, at).await.unwrap() {
        Rotation::Rotated(r) => {
            assert_eq!((r.id, r.expires_at, r.last_used_at), (s.id, exp, at));
            assert_eq!(r.token_hash, "t2");
            assert!(r.revoked_at.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p.rotate_session("t2", "t3", exp, now()).await.unwrap(),
        Rotation::Rotated(_)
    ));
    // Re-use of t1: the session is revoked; again: still re-use, revoked once.
    let reuse_at = now();
    let revoked = match p.rotate_session("t1", "t9", exp, reuse_at).await.unwrap() {
        Rotation::Reused(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(revoked.revoked_at, Some(reuse_at));
    match p.rotate_session("t2", "t9", exp, now()).await.unwrap() {
        Rotation::Reused(r) => assert_eq!(r.revoked_at, Some(reuse_at)),
        other => panic!("{other:?}"),
    }
    // The current token of a revoked session no longer works.
    assert!(is_not_found(p.rotate_session("t3", "t4", exp, now()).await));
    assert!(is_not_found(
        p.rotate_session("unknown", "t5", exp, now()).await
    ));
    // Expired.
    let short = p
        .create_session(session(u.id, "e1", Duration::minutes(1)))
        .await
        .unwrap();
    assert!(is_not_found(
        p.rotate_session("e1", "e2", exp, now() + Duration::minutes(2))
            .await
    ));
    // Concurrent rotations of one token.
    p.create_session(session(u.id, "c1", day)).await.unwrap();
    let tasks: Vec<_> = ["c2", "c3"]
        .into_iter()
        .map(|new| {
            let p = p.clone();
            tokio::spawn(async move { p.rotate_session("c1", new, exp, now()).await })
        })
        .collect();
    let mut rotated = 0;
    let mut reused = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Reused(_) => reused += 1,
        }
    }
    assert_eq!((rotated, reused), (1, 1));

    // Listing and revoking.
    let l1 = p.create_session(session(u.id, "l1", day)).await.unwrap();
    let l2 = p.create_session(session(u.id, "l2", day)).await.unwrap();
    let theirs = p
        .create_session(session(other.id, "x1", day))
        .await
        .unwrap();
    let live: Vec<Uuid> = p
        .list_sessions(u.id, now() + Duration::minutes(2))
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![l2.id, l1.id], "newest first, live only");
    assert!(!live.contains(&short.id));
    assert!(is_not_found(p.revoke_session(u.id, theirs.id, now()).await));
    p.revoke_session(u.id, l1.id, now()).await.unwrap();
    assert!(is_not_found(p.revoke_session(u.id, l1.id, now()).await));
    // l2, and `short` (not expired yet).
    assert_eq!(p.revoke_sessions(u.id, now()).await.unwrap(), 2);
    assert!(p.list_sessions(u.id, now()).await.unwrap().is_empty());
    assert_eq!(p.list_sessions(other.id, now()).await.unwrap().len(), 1);
}

/// One-time tokens: used once, for their purpose, before they expire; of concurrent
/// uses exactly one succeeds.
pub async fn people_one_time_tokens(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let u = user(&*p, "u@x.io").await;
    let token = |hash: &str, purpose, ttl: Duration| OneTimeToken {
        token_hash: hash.into(),
        purpose,
        user_id: u.id,
        created_at: now(),
        expires_at: now() + ttl,
    };
    let hour = Duration::hours(1);
    p.create_token(token("v1", TokenPurpose::VerifyEmail, hour))
        .await
        .unwrap();
    assert!(is_taken(
        p.create_token(token("v1", TokenPurpose::VerifyEmail, hour))
            .await
    ));
    let mut ghost = token("g1", TokenPurpose::VerifyEmail, hour);
    ghost.user_id = Uuid::now_v7();
    assert!(is_not_found(p.create_token(ghost).await));
    assert!(is_not_found(
        p.consume_token(TokenPurpose::PasswordReset, "v1", now())
            .await
    ));
    let used = p
        .consume_token(TokenPurpose::VerifyEmail, "v1", now())
        .await
        .unwrap();
    assert_eq!(
        (used.user_id, used.purpose),
        (u.id, TokenPurpose::VerifyEmail)
    );
    assert!(is_not_found(
        p.consume_token(TokenPurpose::VerifyEmail, "v1", now())
            .await
    ));
    p.create_token(token("r1", TokenPurpose::PasswordReset, hour))
        .await
        .unwrap();
    assert!(is_not_found(
        p.consume_token(
            TokenPurpose::PasswordReset,
            "r1",
            now() + Duration::hours(2)
        )
        .await
    ));
    assert!(is_not_found(
        p.consume_token(TokenPurpose::SetPassword, "nope", now())
            .await
    ));
    p.create_token(token("s1", TokenPurpose::SetPassword, hour))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                p.consume_token(TokenPurpose::SetPassword, "s1", now())
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

/// Social identities: linked to one user at most, found, listed.
pub async fn people_social_accounts(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let u = user(&*p, "u@x.io").await;
    let v = user(&*p, "v@x.io").await;
    let account = |provider: &str, subject: &str, user: Uuid| SocialAccount {
        provider: provider.into(),
        subject: subject.into(),
        user_id: user,
        email: Some("u@x.io".into()),
        created_at: now(),
    };
    p.link_social(account("google", "123", u.id)).await.unwrap();
    p.link_social(account("wechat", "abc", u.id)).await.unwrap();
    assert!(is_taken(
        p.link_social(account("google", "123", v.id)).await
    ));
    assert!(is_not_found(
        p.link_social(account("google", "456", Uuid::now_v7()))
            .await
    ));
    assert_eq!(p.user_by_social("google", "123").await.unwrap().id, u.id);
    assert!(is_not_found(p.user_by_social("google", "999").await));
    assert!(is_not_found(p.user_by_social("wechat", "123").await));
    let linked: Vec<String> = p
        .list_social(u.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.provider)
        .collect();
    assert_eq!(linked, vec!["google", "wechat"]);
    assert!(p.list_social(v.id).await.unwrap().is_empty());
}

/// The audit log of an organization: its entries and the organization-less entries
/// of its current members since they joined, newest first, in pages; a user's own
/// entries.
pub async fn people_audit_log(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let member = user(&*p, "m@x.io").await;
    let stranger = user(&*p, "s@x.io").await;
    let org = p.create_org("acme", Some(member.id)).await.unwrap();
    let other = p.create_org("other", None).await.unwrap();
    let mut expected = Vec::new();
    for (o, u, action) in [
        (Some(org.id), Some(member.id), "member.role_changed"),
        (None, Some(member.id), "auth.login"),
        (Some(other.id), Some(member.id), "elsewhere"),
        (None, Some(stranger.id), "auth.login_failed"),
        (None, None, "system.start"),
        (Some(org.id), None, "org.renamed"),
    ] {
        let e = audit(o, u, action);
        if o == Some(org.id) || (o.is_none() && u == Some(member.id)) {
            expected.push(e.id);
        }
        p.append_audit(e).await.unwrap();
    }
    expected.reverse();
    let mut page = PageRequest {
        limit: Some(2),
        cursor: None,
    };
    let mut got = Vec::new();
    loop {
        let r = p.list_audit(org.id, &page).await.unwrap();
        assert!(r.items.len() <= 2);
        got.extend(r.items);
        match r.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), expected);
    let login = got.iter().find(|e| e.action == "auth.login").unwrap();
    assert_eq!(login.data, json!({"n": "auth.login"}));
    assert_eq!(login.actor, "system");
    // The user's own entries, newest first, at most `limit`.
    let mine = p.user_audit(member.id, 10).await.unwrap();
    let actions: Vec<&str> = mine.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec!["elsewhere", "auth.login", "member.role_changed"]
    );
    assert_eq!(p.user_audit(member.id, 1).await.unwrap().len(), 1);
    // A new member's own events show from when they joined, not before: an
    // organization does not learn a member's earlier history elsewhere.
    p.set_member(org.id, stranger.id, OrgRole::Viewer)
        .await
        .unwrap();
    let mut later = audit(None, Some(stranger.id), "auth.login");
    later.at = now() + Duration::seconds(1);
    p.append_audit(later.clone()).await.unwrap();
    let all = p
        .list_audit(
            org.id,
            &PageRequest {
                limit: Some(100),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert!(!all.items.iter().any(|e| e.action == "auth.login_failed"));
    assert!(all.items.iter().any(|e| e.id == later.id));
}

/// Signing keys: stored once, listed newest first, retired by age.
pub async fn people_signing_keys(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let t0 = now();
    let key = |id: &str, offset: i64| SigningKey {
        id: id.into(),
        secret: vec![offset as u8; 32],
        created_at: t0 + Duration::seconds(offset),
        retired_at: None,
    };
    p.add_signing_key(key("k1", 0)).await.unwrap();
    p.add_signing_key(key("k2", 10)).await.unwrap();
    assert!(is_taken(p.add_signing_key(key("k1", 20)).await));
    let keys = p.signing_keys().await.unwrap();
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, vec!["k2", "k1"]);
    assert_eq!(keys[1].secret, vec![0u8; 32]);
    let at = now();
    assert_eq!(
        p.retire_signing_keys(t0 + Duration::seconds(5), at)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        p.retire_signing_keys(t0 + Duration::seconds(5), at)
            .await
            .unwrap(),
        0,
        "already retired"
    );
    let keys = p.signing_keys().await.unwrap();
    assert_eq!(keys[0].retired_at, None);
    assert_eq!(keys[1].retired_at, Some(at));
}

/// Deleting a user removes what was theirs and anonymises their authorship.
pub async fn people_delete_user_anonymises(b: &TestBackend) {
    let Some(p) = people(b) else { return };
    let owner = user(&*p, "owner@x.io").await;
    let leaver = user(&*p, "leaver@x.io").await;
    let actor = "user:leaver@x.io";
    p.set_member(DEFAULT_ORG_ID, leaver.id, OrgRole::Member)
        .await
        .unwrap();
    let reg = b.registry("anon").await;
    let mut v = NewVersion::new("hi");
    v.created_by = Some(actor.into());
    reg.create_version("greet", v).await.unwrap();
    let mut kept = NewVersion::new("hello");
    kept.created_by = Some("user:owner@x.io".into());
    reg.create_version("greet", kept).await.unwrap();
    reg.set_label(
        "greet",
        "production",
        1,
        prompt_core::LabelExpect::Any,
        Some(actor),
    )
    .await
    .unwrap();
    let s = p
        .create_session(session(leaver.id, "lt", Duration::days(1)))
        .await
        .unwrap();
    p.link_social(SocialAccount {
        provider: "google".into(),
        subject: "leaver".into(),
        user_id: leaver.id,
        email: None,
        created_at: now(),
    })
    .await
    .unwrap();
    let mut e = audit(None, Some(leaver.id), "auth.login");
    e.actor = actor.into();
    p.append_audit(e).await.unwrap();
    let sent = p
        .create_invitation(Invitation {
            id: new_id(),
            org_id: DEFAULT_ORG_ID,
            email: "friend@x.io".into(),
            role: OrgRole::Viewer,
            token_hash: "leaver-invite".into(),
            invited_by: actor.into(),
            created_at: now(),
            expires_at: now() + Duration::days(1),
            accepted_at: None,
            revoked_at: None,
        })
        .await
        .unwrap();

    p.delete_user(leaver.id, actor).await.unwrap();
    assert_eq!(
        p.invitation_by_hash("leaver-invite")
            .await
            .unwrap()
            .invited_by,
        "deleted user",
        "invitation {} still names the deleted user",
        sent.id
    );
    assert!(is_not_found(p.user_by_id(leaver.id).await));
    assert!(is_not_found(p.session(s.id).await));
    assert!(is_not_found(p.user_by_social("google", "leaver").await));
    assert!(is_not_found(p.membership(DEFAULT_ORG_ID, leaver.id).await));
    assert!(is_not_found(p.delete_user(leaver.id, actor).await));
    let v1 = b
        .store
        .resolve(reg.project().id, "greet", &Selector::Version(1))
        .await
        .unwrap();
    assert_eq!(v1.created_by.as_deref(), Some("deleted user"));
    let v2 = b
        .store
        .resolve(reg.project().id, "greet", &Selector::Version(2))
        .await
        .unwrap();
    assert_eq!(v2.created_by.as_deref(), Some("user:owner@x.io"));
    let moves = reg
        .label_history("greet", "production", &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(moves.items[0].moved_by.as_deref(), Some("deleted user"));
    let entries = p.user_audit(leaver.id, 10).await.unwrap();
    assert!(
        entries.iter().all(|e| e.actor == "deleted user"),
        "{entries:?}"
    );
    // The email is free again.
    user(&*p, "LEAVER@x.io").await;
    assert_eq!(
        p.membership(DEFAULT_ORG_ID, owner.id).await.unwrap().role,
        OrgRole::Owner
    );
}

/// Runs record who they were made for, and listings filter by it.
pub async fn runs_filter_by_user(b: &TestBackend) {
    let r = b.registry(&format!("ru-{}", Uuid::new_v4().simple())).await;
    let mut ids = Vec::new();
    for who in [Some("user:1"), Some("user:2"), None, Some("user:1")] {
        let mut n = NewRun::with_status(RunStatus::Completed);
        n.user = who.map(str::to_owned);
        ids.push(r.log_run(n).await.unwrap().id);
    }
    let got = r.get_run(ids[0]).await.unwrap();
    assert_eq!(got.user.as_deref(), Some("user:1"));
    assert_eq!(r.get_run(ids[2]).await.unwrap().user, None);
    let mut q = RunQuery::default();
    q.user = Some("user:1".into());
    let page = r.runs(&q).await.unwrap();
    let mut found: Vec<Uuid> = page.items.iter().map(|r| r.id).collect();
    found.sort();
    let mut want = vec![ids[0], ids[3]];
    want.sort();
    assert_eq!(found, want);
    q.user = Some("user:3".into());
    assert!(r.runs(&q).await.unwrap().items.is_empty());
}
