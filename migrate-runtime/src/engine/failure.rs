//! What a failed query string means: which step failed, which committed before it, and where in its file.

use migrate_core::Direction;

use super::exchange::{database, read, rollback, step_report};
use crate::compile::history::{HistoryTable, LockAttempt, Timeouts, LOST_LOCK_DETAIL};
use crate::compile::Batch;
use crate::error::{Error, ErrorKind};
use crate::model::{StepReport, TransactionMode};
use crate::plan::{Prologue, Step};
use crate::session::{QueryError, Session};
use crate::sql::line_and_column;

/// How many steps of a query string committed before its lost-lock guard failed, from the guard's detail.
pub(super) fn committed_before_guard(error: &QueryError) -> Option<usize> {
    error.server()?.detail.as_deref()?.strip_prefix(LOST_LOCK_DETAIL)?.parse().ok()
}

/// The error for a query string that failed: which step, and which steps committed before it.
pub(super) async fn batch_failed<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
    batch: &Batch<'_, '_>,
    error: QueryError,
    mut committed: Vec<StepReport>,
) -> Error {
    if batch.parts.is_empty() {
        let action = batch.prologue.map_or("update the history table", Prologue::action);
        return database(table, action, error);
    }
    let located = batch.part_at(&error).map(|i| (i, Some(batch.parts[i].script_start as isize)));
    let (index, script_start) = match (located, batch.mode) {
        (Some(located), _) => located,
        // All or nothing, and no position to say which step: replay to find it.
        (None, TransactionMode::Single) => {
            return name_the_failing_step(session, table, timeouts, batch, &error, committed).await;
        }
        // Each step committed on its own: the first whose effect is missing from the history failed.
        (None, TransactionMode::PerStep) => {
            (first_unfinished(session, table, batch).await.min(batch.parts.len() - 1), None)
        }
    };
    if batch.mode == TransactionMode::PerStep {
        committed.extend(batch.parts[..index].iter().map(|part| step_report(table, part.step, None)));
    }
    migration_failed(table, batch.parts[index].step, &error, script_start, committed, false)
}

/// The one-transaction query string failed without a position to say which step: replay it one step per round
/// trip, under the lock, inside a transaction that is rolled back, to name the step that fails.
async fn name_the_failing_step<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
    batch: &Batch<'_, '_>,
    original: &QueryError,
    committed: Vec<StepReport>,
) -> Error {
    let mut opening = table.lock_sql(timeouts);
    if let Some(prologue) = batch.prologue {
        opening.push_str(&table.prologue_sql(prologue));
    }
    let opened = session.batch(&opening).await;
    let mut culprit = None;
    if opened.as_ref().is_ok_and(|answer| LockAttempt::of(answer).locked) {
        for part in &batch.parts {
            let step_sql = table.step_sql(part.step, timeouts);
            if let Err(error) = session.batch(&step_sql.sql).await {
                let start = Some(step_sql.script_start as isize);
                culprit = Some(migration_failed(table, part.step, &error, start, committed.clone(), false));
                break;
            }
        }
    }
    rollback(session).await;
    match (culprit, opened, batch.prologue) {
        (Some(error), _, _) => error,
        (None, Err(error), Some(prologue)) => database(table, prologue.action(), error),
        // The failure did not repeat: report it against the first step, with the server's own words.
        _ => migration_failed(table, batch.parts[0].step, original, None, committed, false),
    }
}

/// The index of the first step of `batch` whose effect is not in the history: the one that failed or did not run.
async fn first_unfinished<S: Session>(session: &mut S, table: &HistoryTable, batch: &Batch<'_, '_>) -> usize {
    let applied: Vec<i64> = match read(session, table).await {
        Ok(rows) => rows.unwrap_or_default().iter().filter(|a| !a.is_dirty()).map(|a| a.version).collect(),
        Err(_) => return 0,
    };
    batch
        .parts
        .iter()
        .position(|part| applied.contains(&part.step.migration.version) != (part.step.direction == Direction::Up))
        .unwrap_or(batch.parts.len())
}

/// Build the error for a failed step. `script_start` is where the script starts in the query string that failed, in
/// characters (negative when the query string is a statement that starts inside the script); `None` when the failed
/// query held no part of the script or the position is not to be trusted.
pub(super) fn migration_failed(
    table: &HistoryTable,
    step: &Step<'_>,
    error: &QueryError,
    script_start: Option<isize>,
    committed: Vec<StepReport>,
    left_dirty: bool,
) -> Error {
    let script = step.script;
    let (code, message) = error.describe();
    let position = match (error.server().and_then(|server| server.position), script_start) {
        (Some(p), Some(start)) => {
            let in_script = p as isize - start;
            let in_file = (in_script >= 1).then(|| table.file_position(step, in_script as usize)).flatten();
            in_file.map(|in_file| line_and_column(&script.sql, in_file))
        }
        _ => None,
    };
    Error::new(
        table.schema.as_str(),
        ErrorKind::MigrationFailed {
            version: step.migration.version,
            file: script.file.to_string(),
            code,
            message,
            position,
            committed,
            left_dirty,
        },
    )
}
