//! Postgres and driver errors → our error kinds.

use std::time::Duration;

use prompt_core::Error;
use sqlx::error::DatabaseError;

use crate::sql::parse_driver_error;

/// The SQLSTATE of a database error.
fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Turn a driver error of the Postgres backend into our error kinds.
///
/// - `23505` unique violation → `AlreadyExists` (naming the object of the constraint;
///   callers that know what collided say more);
/// - other integrity violations (`23xxx`) → `Conflict`;
/// - `40001` serialization failure, `40P01` deadlock, `55P03` lock not available,
///   `57014` statement cancelled, class `08` connection exceptions, `53xxx`
///   other insufficient resources (out of memory, too many connections),
///   `57P0x` server shutting down / starting up, `25006` read-only transaction (a
///   replica or a failover in progress), a refused or broken connection, an exhausted
///   or closed pool → `Unavailable` (retrying later may work);
/// - `53100` disk full, `58030` I/O error → `Storage` (507, like SQLite's full disk);
/// - `22xxx` data exceptions (a value the database cannot store) → `InvalidInput`;
/// - anything else → `Internal` (the message is for logs).
pub fn parse_postgres_error(e: sqlx::Error) -> Error {
    parse_driver_error(e, parse_database_error)
}

fn parse_database_error(db: &dyn DatabaseError) -> Error {
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let msg = db.message();
    let transient = |what: &str, retry_after: Option<Duration>| Error::Unavailable {
        message: format!("database {what}: {msg}"),
        retry_after,
    };
    match code.as_str() {
        "23505" => Error::already_exists(describe_constraint(db.constraint())),
        "23503" => Error::conflict("the referenced object does not exist (foreign key)"),
        c if c.starts_with("23") => Error::conflict(format!("constraint violated: {msg}")),
        "40001" => transient("serialization failure", Some(Duration::from_millis(50))),
        "40P01" => transient("deadlock", Some(Duration::from_millis(50))),
        "55P03" => transient("lock not available", Some(Duration::from_millis(100))),
        "57014" => transient("statement cancelled", None),
        "25006" => transient("is read-only", Some(Duration::from_secs(1))),
        "53100" => Error::storage(format!("database disk full: {msg}")),
        "58030" => Error::storage(format!("database I/O error: {msg}")),
        c if c.starts_with("53") => transient("out of resources", Some(Duration::from_secs(1))),
        c if c.starts_with("08") => transient("connection failed", Some(Duration::from_secs(1))),
        c if c.starts_with("57P") => transient("unavailable", Some(Duration::from_secs(1))),
        "22021" | "22P05" => Error::invalid(
            "text",
            "contains a character the database cannot store (NUL)",
        ),
        c if c.starts_with("22") => {
            Error::invalid("value", format!("rejected by the database: {msg}"))
        }
        _ => Error::internal(format!("database error {code}: {msg}")),
    }
}

fn describe_constraint(name: Option<&str>) -> String {
    match name.unwrap_or("") {
        "projects_name_key" => "project",
        "prompts_live_name_key" => "prompt",
        "prompt_versions_number_key" => "version",
        "api_keys_hash_key" | "api_keys_pkey" => "api key",
        "runs_pkey" => "run",
        _ => "row",
    }
    .to_owned()
}

/// Whether the database rolled the whole transaction back, so that running it again
/// is safe and may succeed.
pub(crate) fn rolled_back(e: &sqlx::Error) -> bool {
    matches!(sqlstate(e).as_deref(), Some("40001" | "40P01"))
}

/// Whether `e` is a unique violation; with the constraint's name.
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            Some(db.constraint().unwrap_or_default().to_owned())
        }
        _ => None,
    }
}

/// The key value in a unique violation's detail: `Key (id)=(…) already exists.`
pub(crate) fn violating_key(e: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    let detail = pg.detail()?;
    let start = detail.find(")=(")? + 3;
    let end = detail[start..].find(')')? + start;
    Some(detail[start..end].to_owned())
}
