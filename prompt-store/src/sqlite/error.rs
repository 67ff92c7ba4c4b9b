//! SQLite and driver errors → our error kinds.

use std::time::Duration;

use prompt_core::Error;
use sqlx::error::DatabaseError;

use crate::sql::parse_driver_error;

// Result codes, https://www.sqlite.org/rescode.html (primary code = low byte).
const SQLITE_INTERRUPT: i32 = 9;
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_NOMEM: i32 = 7;
const SQLITE_READONLY: i32 = 8;
const SQLITE_IOERR: i32 = 10;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_PROTOCOL: i32 = 15;
const SQLITE_TOOBIG: i32 = 18;
const SQLITE_CONSTRAINT: i32 = 19;
const SQLITE_NOTADB: i32 = 26;
const SQLITE_CONSTRAINT_FOREIGNKEY: i32 = 787;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// The extended result code of a SQLite error.
pub(crate) fn code_of(db: &dyn DatabaseError) -> Option<i32> {
    db.code().and_then(|c| c.parse().ok())
}

/// Turn a driver error of the SQLite backend into our error kinds.
///
/// - unique / primary key violations → `AlreadyExists` (callers that know what
///   collided replace the generic description);
/// - other constraint violations → `Conflict`;
/// - `SQLITE_BUSY` / `SQLITE_LOCKED` (another process holds the write lock past the
///   busy timeout), a file that cannot be opened, out of memory, an exhausted or
///   closed pool, a lost connection → `Unavailable` (retrying later may work);
/// - `SQLITE_FULL` (disk or `max_page_count` full), `SQLITE_IOERR` (any extended
///   code), `SQLITE_READONLY` → `Storage` (507: an operator must free space or fix
///   the file; writes recover by themselves afterwards);
/// - a corrupt file or decoding failures → `Internal`.
pub fn parse_sqlite_error(e: sqlx::Error) -> Error {
    parse_driver_error(e, parse_database_error)
}

fn parse_database_error(db: &dyn DatabaseError) -> Error {
    let code = code_of(db).unwrap_or(0);
    let msg = db.message();
    match (code & 0xff, code) {
        (_, SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY) => {
            Error::already_exists(describe_unique(msg))
        }
        (_, SQLITE_CONSTRAINT_FOREIGNKEY) => {
            Error::conflict("the referenced object does not exist (foreign key)")
        }
        (SQLITE_CONSTRAINT, _) => Error::conflict(format!("constraint violated: {msg}")),
        (SQLITE_BUSY | SQLITE_LOCKED, _) => Error::Unavailable {
            message: format!("database is locked by another writer ({msg})"),
            retry_after: Some(Duration::from_millis(100)),
        },
        (SQLITE_FULL, _) => Error::storage(format!("database or disk is full ({msg})")),
        (SQLITE_IOERR, _) => Error::storage(format!("database file I/O failed ({msg})")),
        (SQLITE_READONLY, _) => Error::storage(format!("database is read-only ({msg})")),
        (SQLITE_CANTOPEN | SQLITE_PROTOCOL, _) => {
            Error::unavailable(format!("database file cannot be used ({msg})"))
        }
        (SQLITE_NOMEM | SQLITE_INTERRUPT, _) => Error::unavailable(format!("database: {msg}")),
        (SQLITE_TOOBIG, _) => Error::invalid("value", "is too large for the database"),
        (SQLITE_CORRUPT | SQLITE_NOTADB, _) => {
            Error::internal(format!("database file is corrupt or not a database: {msg}"))
        }
        _ => Error::internal(format!("database error (code {code}): {msg}")),
    }
}

/// `UNIQUE constraint failed: prompts.project_id, prompts.name` → `prompt`.
fn describe_unique(msg: &str) -> String {
    let table = msg
        .split(": ")
        .nth(1)
        .and_then(|cols| cols.split('.').next())
        .unwrap_or("");
    match table {
        "projects" => "project",
        "prompts" => "prompt",
        "prompt_versions" => "version",
        "api_keys" => "api key",
        "runs" => "run",
        "label_moves" => "label move",
        _ => "row",
    }
    .to_owned()
}

/// Whether the database rolled the attempt back (or never started it) so that running
/// it again is safe: the write lock was busy past the timeout.
pub(crate) fn rolled_back(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            matches!(
                code_of(db.as_ref()).map(|c| c & 0xff),
                Some(SQLITE_BUSY | SQLITE_LOCKED)
            )
        }
        _ => false,
    }
}
