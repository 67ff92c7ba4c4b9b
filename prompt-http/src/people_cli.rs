//! The people commands of the `prompt-registry` binary: `users create`, `orgs list`,
//! `projects list` (their own module so that `main.rs` stays the service's start-up
//! and the key commands).

use std::time::Duration;

use clap::Subcommand;
use prompt_core::validate;

use crate::backend::Opened;
use crate::config::DatabaseArgs;

/// `prompt-registry users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user (or find the existing one with that email), optionally give them a
    /// role in an organization, and print a one-time link to set their password alone
    /// on stdout.
    Create {
        #[command(flatten)]
        /// The database.
        db: DatabaseArgs,
        /// Email address.
        #[arg(long)]
        email: String,
        /// Display name (the email's local part by default).
        #[arg(long)]
        name: Option<String>,
        /// An organization to add the user to (created if it does not exist).
        #[arg(long)]
        org: Option<String>,
        /// The role there: owner, admin, member or viewer.
        #[arg(long, default_value = "member", requires = "org")]
        role: String,
        /// The server's public base URL, for the link.
        #[arg(
            long,
            env = "PROMPT_REGISTRY_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        public_url: String,
    },
}

/// `prompt-registry orgs …`.
#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// List every organization.
    List {
        #[command(flatten)]
        /// The database.
        db: DatabaseArgs,
    },
}

/// `prompt-registry projects …`.
#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List projects as ORG/NAME, of one organization or of all.
    List {
        #[command(flatten)]
        /// The database.
        db: DatabaseArgs,
        /// Only this organization's.
        #[arg(long)]
        org: Option<String>,
    },
}

async fn open_people(db: &DatabaseArgs) -> Result<Opened, String> {
    crate::backend::open(&db.database_url, Duration::ZERO, Duration::ZERO)
        .await
        .map_err(|e| format!("cannot open the database (DATABASE_URL / --database-url): {e}"))
}

/// Run a `users` command; the error is the message to print.
pub async fn users(command: UsersCommand) -> Result<(), String> {
    match command {
        UsersCommand::Create {
            db,
            email,
            name,
            org,
            role,
            public_url,
        } => {
            let email = crate::accounts::check_email("email", &email)
                .map_err(|e| format!("--email: {e}"))?;
            let name = match name {
                Some(n) => {
                    crate::accounts::check_name("name", &n).map_err(|e| format!("--name: {e}"))?
                }
                None => email.split('@').next().unwrap_or("user").to_owned(),
            };
            let role = prompt_core::OrgRole::parse(&role).map_err(|e| format!("--role: {e}"))?;
            if let Some(o) = &org {
                validate::org_name(o).map_err(|e| format!("--org: {e}"))?;
            }
            if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
                return Err(format!(
                    "--public-url '{public_url}': must start with http:// or https://"
                ));
            }
            let opened = open_people(&db).await?;
            let people = opened.backend.people.clone();
            let user = match people
                .create_user(prompt_core::NewUser {
                    email: email.clone(),
                    name,
                    password_hash: None,
                    email_verified: false,
                })
                .await
            {
                Ok(u) => {
                    eprintln!("created user {} ({})", u.email, u.id);
                    u
                }
                Err(prompt_core::Error::AlreadyExists { .. }) => {
                    let u = people
                        .user_by_email(&email)
                        .await
                        .map_err(|e| e.to_string())?;
                    eprintln!("user {} exists already ({})", u.email, u.id);
                    u
                }
                Err(e) => return Err(e.to_string()),
            };
            if let Some(o) = org {
                let org = match people.org_by_name(&o).await {
                    Ok(org) => org,
                    Err(prompt_core::Error::NotFound { .. }) => {
                        let org = people
                            .create_org(&o, None)
                            .await
                            .map_err(|e| e.to_string())?;
                        eprintln!("created organization {}", org.name);
                        org
                    }
                    Err(e) => return Err(e.to_string()),
                };
                people
                    .set_member(org.id, user.id, role)
                    .await
                    .map_err(|e| e.to_string())?;
                eprintln!("{} is {} of {}", user.email, role.as_str(), org.name);
            }
            let accounts = crate::accounts::Accounts::new(
                people,
                crate::accounts::mail::Mailer::Log,
                crate::accounts::AccountsConfig {
                    public_url: public_url.trim_end_matches('/').to_owned(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            let link = accounts
                .set_password_link(&user)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("one-time link to set the password (valid 24 hours):");
            println!("{link}");
            opened.backend.close().await;
            Ok(())
        }
    }
}

/// Run an `orgs` command; the error is the message to print.
pub async fn orgs(command: OrgsCommand) -> Result<(), String> {
    match command {
        OrgsCommand::List { db } => {
            let opened = open_people(&db).await?;
            for o in opened
                .backend
                .people
                .list_orgs(None)
                .await
                .map_err(|e| e.to_string())?
            {
                println!(
                    "{}\t{}\t{}",
                    o.org.name,
                    o.org.id,
                    o.org.created_at.to_rfc3339()
                );
            }
            opened.backend.close().await;
            Ok(())
        }
    }
}

/// Run a `projects` command; the error is the message to print.
pub async fn projects(command: ProjectsCommand) -> Result<(), String> {
    match command {
        ProjectsCommand::List { db, org } => {
            if let Some(o) = &org {
                validate::org_name(o).map_err(|e| format!("--org: {e}"))?;
            }
            let opened = open_people(&db).await?;
            let people = opened.backend.people.clone();
            let orgs = people.list_orgs(None).await.map_err(|e| e.to_string())?;
            let chosen: Vec<_> = orgs
                .into_iter()
                .filter(|o| org.as_ref().is_none_or(|n| *n == o.org.name))
                .collect();
            if let Some(n) = &org
                && chosen.is_empty()
            {
                return Err(format!("--org: organization '{n}' not found"));
            }
            for o in chosen {
                let mut page = prompt_core::PageRequest::first(500);
                loop {
                    let p = people
                        .list_org_projects(o.org.id, &page)
                        .await
                        .map_err(|e| e.to_string())?;
                    for project in &p.items {
                        println!("{}/{}\t{}", o.org.name, project.name, project.id);
                    }
                    match p.next_cursor {
                        Some(c) => page.cursor = Some(c),
                        None => break,
                    }
                }
            }
            opened.backend.close().await;
            Ok(())
        }
    }
}
