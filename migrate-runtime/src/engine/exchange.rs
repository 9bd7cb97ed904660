//! The round trips every part of the engine shares: reading the history, rolling back, naming a server error, and
//! reporting a step that committed.

use std::time::Duration;

use crate::compile::history::{parse_history, HistoryTable};
use crate::error::{Error, ErrorKind};
use crate::model::{AppliedMigration, StepReport};
use crate::plan::Step;
use crate::session::{QueryError, Session, SqlState};

/// The history rows, or `None` when the history table (or the schema) does not exist. PostgreSQL reports a missing
/// schema and a missing table alike (`undefined_table`), so the two are told apart only when it matters.
pub(crate) async fn read<S: Session>(
    session: &mut S,
    table: &HistoryTable,
) -> Result<Option<Vec<AppliedMigration>>, Error> {
    match session.batch(&table.select_sql()).await {
        Ok(answer) => Ok(Some(parse_history(table, &answer)?)),
        Err(e) if e.code() == Some(SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(source) => Err(history_read_failed(table, source)),
    }
}

/// Reading the history table failed. A table of that name that lacks `applied_at` (the one column the reads name
/// besides `*`, once the progress columns are there) is another tool's: say so, rather than the server's words.
pub(crate) fn history_read_failed(table: &HistoryTable, source: QueryError) -> Error {
    if source.code() == Some(SqlState::UNDEFINED_COLUMN) {
        let kind = ErrorKind::NotOurHistoryTable { table: table.qualified().to_owned(), column: "applied_at".into() };
        return Error::new(table.schema.as_str(), kind);
    }
    database(table, "read the history table", source)
}

pub(crate) fn database(table: &HistoryTable, action: &'static str, source: QueryError) -> Error {
    Error::new(table.schema.as_str(), ErrorKind::Database { action, source })
}

/// End the transaction in progress, whatever state it is in; a session already outside one gets a warning, which
/// is all this can fail with that matters here.
pub(crate) async fn rollback<S: Session>(session: &mut S) {
    let _ = session.batch("ROLLBACK").await;
}

/// A step that committed, logged and reported.
pub(crate) fn step_report(table: &HistoryTable, step: &Step<'_>, duration: Option<Duration>) -> StepReport {
    tracing::info!(
        schema = table.schema.as_str(),
        version = step.migration.version,
        file = step.script.file.as_ref(),
        ?duration,
        "{} migration",
        step.direction.past_tense()
    );
    StepReport {
        version: step.migration.version,
        name: step.migration.name.to_string(),
        direction: step.direction,
        duration,
    }
}
