//! The last failed run on a schema, kept where `status` finds it: a failed run rolls its transaction back, so what
//! went wrong is written afterwards, in a statement of its own, into the comment on the history table's `dirty`
//! column (`migrate-failure:...`), beside the other comments the runtime leaves for tools (the digest on the table,
//! the service on `version`).
//!
//! The record names the state of the history it failed against (the digest of its rows and the newest
//! `applied_at`). It stands only while the history is still in that state: any later change of the history (the
//! next run applying what failed, a service migrating at boot, a downgrade) makes it stale, and a stale record is
//! never shown, so nothing has to clear it. A schema at head is never shown with one.

use std::time::SystemTime;

use migrate_runtime::catalog::digest_of_rows_sql;
use migrate_runtime::{quote_ident, quote_literal, ErrorKind, SchemaName, SqlState};

/// What starts a failure record in the comment.
pub const FAILURE_PREFIX: &str = "migrate-failure:";

/// A run that failed on a schema, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFailure {
    /// When it failed: UTC, `YYYY-MM-DDTHH:MM:SSZ`, by the clock of the machine that ran it.
    pub at: String,
    /// The migration that failed, when one did.
    pub version: Option<i64>,
    /// PostgreSQL's SQLSTATE, when it gave one (`55P03` for a table that could not be locked in time).
    pub sqlstate: Option<String>,
    /// What went wrong, as the run reported it.
    pub message: String,
}

impl LastFailure {
    /// The failure worth recording in `error`, at `at`: a migration that failed or could not lock its tables, a run
    /// interrupted, a no-transaction migration taken over. `None` for a refusal (status shows the history's
    /// problem itself), another process holding the migration lock, and errors before any migration ran.
    pub fn of(error: &migrate_runtime::Error, at: SystemTime) -> Option<LastFailure> {
        let (version, sqlstate) = match error.kind() {
            ErrorKind::MigrationFailed { version, code, .. } => {
                (Some(*version), code.as_ref().map(|code| code.as_str().to_owned()))
            }
            ErrorKind::TableLocked { version, .. } => {
                (Some(*version), Some(SqlState::LOCK_NOT_AVAILABLE.as_str().to_owned()))
            }
            ErrorKind::ClaimLost { version } => (Some(*version), None),
            ErrorKind::Interrupted { .. } => (None, None),
            _ => return None,
        };
        Some(LastFailure { at: utc_text(at), version, sqlstate, message: error.kind().to_string() })
    }

    /// The comment text, for a history in state `state`: the prefix and state on the first line, then one line
    /// each for the time, version and SQLSTATE (empty when absent), then the message (which may span lines).
    fn comment(&self, state: &str) -> String {
        let version = self.version.map(|v| v.to_string()).unwrap_or_default();
        let sqlstate = self.sqlstate.as_deref().unwrap_or_default();
        format!("{FAILURE_PREFIX}{state}\n{}\n{version}\n{sqlstate}\n{}", self.at, self.message)
    }

    /// The record in `comment`, if it is one and was written against a history in state `state`.
    fn parse(comment: &str, state: &str) -> Option<LastFailure> {
        let mut lines = comment.strip_prefix(FAILURE_PREFIX)?.splitn(5, '\n');
        if lines.next()? != state {
            return None;
        }
        let at = lines.next()?.to_owned();
        let version = lines.next()?;
        let version = if version.is_empty() { None } else { Some(version.parse().ok()?) };
        let sqlstate = Some(lines.next()?.to_owned()).filter(|code| !code.is_empty());
        let message = lines.next().unwrap_or_default().to_owned();
        Some(LastFailure { at, version, sqlstate, message })
    }
}

impl std::fmt::Display for LastFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "last run failed at {}: {}", self.at, self.message)?;
        match &self.sqlstate {
            Some(code) => write!(f, " (SQLSTATE {code})"),
            None => Ok(()),
        }
    }
}

/// Record `failure` as the last failed run on `schema` (its history table `history_table`), against the history's
/// state now: in a transaction of its own (a savepoint inside the caller's), each statement a query string of its
/// own (as Citus wants DDL), waiting at most [`RECORD_LOCK_TIMEOUT`] for the history table (a `reset` dropping the
/// schema must not hold the CLI up). An error when the history table does not exist.
pub fn record_failure(
    client: &mut impl postgres::GenericClient,
    schema: &SchemaName,
    history_table: &str,
    failure: &LastFailure,
) -> Result<(), postgres::Error> {
    let mut transaction = client.transaction()?;
    transaction.batch_execute(&format!("SET LOCAL lock_timeout = '{RECORD_LOCK_TIMEOUT}'"))?;
    let state = first_row(&mut transaction, &state_sql(schema, history_table))?;
    let state = state.as_ref().and_then(|row| row.get(0)).unwrap_or_default().to_owned();
    let table = qualified(schema, history_table);
    let comment = quote_literal(&failure.comment(&state));
    transaction.batch_execute(&format!("COMMENT ON COLUMN {table}.dirty IS {comment}"))?;
    transaction.commit()
}

/// How long recording a failure waits for the history table's lock.
pub const RECORD_LOCK_TIMEOUT: &str = "2s";

/// The last failed run on `schema`, if one is recorded and the history is still as it was then. `None` also when
/// the schema has no history table.
pub fn read_last_failure(
    client: &mut impl postgres::GenericClient,
    schema: &SchemaName,
    history_table: &str,
) -> Result<Option<LastFailure>, postgres::Error> {
    let table = quote_literal(&qualified(schema, history_table));
    // One round trip; nothing is read when the table is missing or has no record.
    let sql = format!(
        "SELECT record, CASE WHEN record LIKE {prefix} THEN ({state}) END AS state FROM ( \
           SELECT pg_catalog.col_description(a.attrelid, a.attnum) AS record FROM pg_catalog.pg_attribute a \
           WHERE a.attrelid = pg_catalog.to_regclass({table}) AND a.attname = 'dirty') found",
        prefix = quote_literal(&format!("{FAILURE_PREFIX}%")),
        state = state_sql(schema, history_table),
    );
    let Some(row) = first_row(client, &sql)? else { return Ok(None) };
    Ok(match (row.get("record"), row.get("state")) {
        (Some(record), Some(state)) => LastFailure::parse(record, state),
        _ => None,
    })
}

/// A query of one value: the state of `schema`'s history (the digest of its rows and its newest `applied_at`, as epoch
/// seconds: the same text whatever the session's `TimeZone` and `DateStyle`).
fn state_sql(schema: &SchemaName, history_table: &str) -> String {
    format!(
        "SELECT rows.digest || '@' || coalesce((SELECT extract(epoch FROM max(applied_at))::text FROM {}), '') FROM ({}) rows",
        qualified(schema, history_table),
        digest_of_rows_sql(schema, history_table)
    )
}

fn qualified(schema: &SchemaName, history_table: &str) -> String {
    format!("{}.{}", schema.quoted(), quote_ident(history_table))
}

/// The first row `sql` returns, through the simple protocol (no prepared statement: it works through a
/// transaction pooler).
fn first_row(
    client: &mut impl postgres::GenericClient,
    sql: &str,
) -> Result<Option<postgres::SimpleQueryRow>, postgres::Error> {
    Ok(client.simple_query(sql)?.into_iter().find_map(|message| match message {
        postgres::SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    }))
}

/// `time` as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_text(time: SystemTime) -> String {
    let seconds = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let t = migrate_core::civil::date_time(i64::try_from(seconds).unwrap_or(i64::MAX));
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> LastFailure {
        LastFailure {
            at: "2026-12-05T02:13:00Z".to_owned(),
            version: Some(8),
            sqlstate: Some("55P03".to_owned()),
            message: "migration 8 (8_x.up.sql) could not lock a table\nsecond line".to_owned(),
        }
    }

    #[test]
    fn a_record_reads_back_only_against_the_state_it_was_written_for() {
        let comment = failure().comment("migrate-digest:abc@2026-12-05 02:00:00+00");
        assert_eq!(LastFailure::parse(&comment, "migrate-digest:abc@2026-12-05 02:00:00+00"), Some(failure()));
        assert_eq!(LastFailure::parse(&comment, "migrate-digest:def@2026-12-05 02:20:00+00"), None, "stale");
        assert_eq!(LastFailure::parse("a comment of someone else's", "x"), None);
        let bare = LastFailure { version: None, sqlstate: None, ..failure() };
        assert_eq!(LastFailure::parse(&bare.comment("s"), "s"), Some(bare));
    }

    #[test]
    fn the_time_is_utc_to_the_second() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_436_780);
        assert_eq!(utc_text(at), "2026-12-05T02:13:00Z");
    }
}
