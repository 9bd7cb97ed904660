//! A claimed no-transaction script, statement by statement, outside any transaction and lock, each statement
//! recorded when done, so that a run killed part-way is resumed exactly where it stopped.

use std::time::Instant;

use super::exchange::{database, rollback};
use super::failure::migration_failed;
use super::options::EngineOptions;
use crate::compile::history::{index_is_valid, restore_settings_sql, HistoryTable, Timeouts};
use crate::error::{Error, ErrorKind};
use crate::model::StepReport;
use crate::plan::Step;
use crate::session::{QueryError, Session, SqlState};
use crate::sql::{created_index_name, qualify_relations, split_statements};

/// A claimed no-transaction script: its statements one by one, outside any transaction, each recorded when done.
/// A resumed script skips what an interrupted run did, after dropping the INVALID indexes an interrupted concurrent
/// build left, and skips an index build the interrupted run finished but could not record. A statement that fails
/// records PostgreSQL's message, so later runs refuse until someone looks.
pub(super) async fn run_untransacted<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    options: &EngineOptions,
    step: &Step<'_>,
    runner: &str,
    committed: &[StepReport],
) -> Result<(), Error> {
    let timeouts = options.timeouts;
    let interrupted = || Error::new(table.schema.as_str(), ErrorKind::Interrupted { committed: committed.to_vec() });
    let started = Instant::now();
    let sql_failed =
        |error: &QueryError, script_start| migration_failed(table, step, error, script_start, committed.to_vec(), true);
    let saved = session
        .batch(&table.untransacted_settings_sql(runner, timeouts))
        .await
        .map_err(|e| database(table, "set up a no-transaction migration", e))?;
    let restore = restore_settings_sql(&saved);
    let from = step.resume_from.unwrap_or(0);
    if step.resume_from.is_some() {
        drop_invalid_indexes(session, table, timeouts).await?;
    }
    let mut outcome = Ok(());
    for (i, (offset, statement)) in split_statements(&step.script.sql).into_iter().enumerate().skip(from) {
        let statement_start = step.script.sql[..offset].chars().count() as isize;
        if i == from && step.resume_from.is_some() && already_built(session, table, statement).await? {
            tracing::info!(
                schema = table.schema.as_str(),
                statement = i + 1,
                "index already built by the interrupted run"
            );
        } else {
            if options.is_interrupted() {
                outcome = Err(interrupted());
                break;
            }
            match run_statement(session, table, timeouts, step, runner, statement, i + 1).await {
                Ok(()) => continue,
                Err(_) if options.is_interrupted() => {
                    // Canceled because the run was stopped: not a failure. The claim stays, its lease ends now,
                    // so the next run resumes at this statement without waiting for it.
                    outcome = Err(interrupted());
                    break;
                }
                Err((error, _)) if error.code() == Some(SqlState::LOCK_NOT_AVAILABLE) => {
                    // One statement is atomic (the concurrent builds, which are not, run without lock_timeout): it
                    // was rolled back. The claim is released below, so the next run resumes at this statement.
                    outcome = Err(Error::new(
                        table.schema.as_str(),
                        ErrorKind::TableLocked {
                            version: step.migration.version,
                            file: step.script.file.to_string(),
                            lock_timeout: timeouts.lock_timeout.unwrap_or_default(),
                            attempts: 1,
                            committed: committed.to_vec(),
                            resumes_at: Some(i + 1),
                        },
                    ));
                    break;
                }
                Err((error, script_start)) => {
                    let failed = sql_failed(&error, script_start.map(|start| start - statement_start));
                    if let ErrorKind::MigrationFailed { message, .. } = failed.kind() {
                        // Recorded only while the connection works: a lost connection is an interruption.
                        let _ = session.batch(&table.failed_sql(step, runner, message)).await;
                    }
                    outcome = Err(failed);
                    break;
                }
            }
        }
        if let Err(error) = session.batch(&table.progress_sql(step, runner, i + 1)).await {
            outcome = Err(database(table, "record a no-transaction migration's progress", error));
            break;
        }
    }
    let finish = match &outcome {
        Ok(()) => format!("{};\n{restore}", table.finish_untransacted(step, runner, started.elapsed())),
        Err(error) if matches!(error.kind(), ErrorKind::Interrupted { .. } | ErrorKind::TableLocked { .. }) => {
            format!("{};\n{restore}", table.release_sql(step, runner))
        }
        Err(_) => restore,
    };
    let finished = session.batch(&finish).await;
    outcome?;
    let answer = finished.map_err(|e| database(table, "record a no-transaction migration", e))?;
    if answer.first().is_none() {
        return Err(Error::new(table.schema.as_str(), ErrorKind::ClaimLost { version: step.migration.version }));
    }
    Ok(())
}

/// One statement of a claimed script, recorded as statement `done` with it. In a transaction when PostgreSQL allows
/// it: `SET LOCAL search_path`, the statement and its record commit together, exactly once, on one server connection
/// even behind a pooler. A statement that refuses a transaction block (`CREATE INDEX CONCURRENTLY`, ...) runs on its
/// own, its relations qualified with the schema, and is recorded after it. The error comes with where the
/// statement starts in the query string that failed, in characters.
async fn run_statement<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
    step: &Step<'_>,
    runner: &str,
    statement: &str,
    done: usize,
) -> Result<(), (QueryError, Option<isize>)> {
    let wrapped = table.statement_in_transaction_sql(timeouts, statement, step, runner, done);
    match session.batch(&wrapped).await {
        Ok(_) => return Ok(()),
        Err(error) if error.code() == Some(SqlState::ACTIVE_SQL_TRANSACTION) => rollback(session).await,
        Err(error) => {
            rollback(session).await;
            return Err((error, Some(table.open_sql(timeouts).chars().count() as isize)));
        }
    }
    let bare = qualify_relations(statement, &table.schema.quoted());
    let (before, after) = timeouts.around_outside_transaction(&bare);
    if let Some(before) = before {
        session.batch(&before).await.map_err(|e| (e, None))?;
    }
    let outcome = session.batch(&bare).await;
    if let Some(after) = after {
        session.batch(&after).await.map_err(|e| (e, None))?;
    }
    match outcome {
        Ok(_) => session.batch(&table.progress_sql(step, runner, done)).await.map(|_| ()).map_err(|e| (e, None)),
        // A qualified name shifts positions: trust them only when the text is unchanged.
        Err(error) => Err((error, (bare == statement).then_some(0))),
    }
}

/// Drop the schema's INVALID indexes: what an interrupted `CREATE INDEX CONCURRENTLY` leaves behind, and what
/// `CREATE INDEX CONCURRENTLY IF NOT EXISTS` would otherwise accept as done.
async fn drop_invalid_indexes<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
) -> Result<(), Error> {
    let answer = session
        .batch(&table.invalid_indexes_sql())
        .await
        .map_err(|e| database(table, "look for invalid indexes", e))?;
    let invalid: Vec<String> = answer.rows().iter().filter_map(|row| row.first_value().map(str::to_owned)).collect();
    for index in invalid {
        tracing::info!(schema = table.schema.as_str(), index, "dropping an invalid index left by an interrupted build");
        let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {index}");
        let (before, after) = timeouts.around_outside_transaction(&drop);
        for sql in before.iter().chain(std::iter::once(&drop)).chain(after.iter()) {
            session.batch(sql).await.map_err(|e| database(table, "drop an invalid index", e))?;
        }
    }
    Ok(())
}

/// The statement builds a named index that exists and is valid: the interrupted run finished it.
async fn already_built<S: Session>(session: &mut S, table: &HistoryTable, statement: &str) -> Result<bool, Error> {
    let Some(name) = created_index_name(statement) else { return Ok(false) };
    let answer =
        session.batch(&table.valid_index_sql(&name)).await.map_err(|e| database(table, "look up an index", e))?;
    Ok(index_is_valid(&answer))
}
