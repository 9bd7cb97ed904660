//! Read, lock, plan, apply: the I/O around the pure planner, written once for both drivers.

use std::time::{Duration, Instant};

use postgres::error::SqlState;

use crate::history::{parse_history, restore_settings_sql, rows, HistoryTable, Timeouts};
use crate::plan::{plan, AppliedMigration, Direction, Step, StepKind};
use crate::session::Session;
use crate::sql::{line_and_column, split_statements};
use crate::{Error, Migrator, Operation, PlannedStep, Preview, Report, SchemaName, StepReport, Target};

/// What reading the history table found. PostgreSQL reports a missing schema and a missing table alike
/// (`undefined_table`), so the two are told apart only when it matters, under the lock.
pub(crate) enum History {
    Rows(Vec<AppliedMigration>),
    NoTable,
}

impl History {
    pub(crate) fn into_rows(self) -> Vec<AppliedMigration> {
        match self {
            History::Rows(rows) => rows,
            History::NoTable => Vec::new(),
        }
    }
}

pub(crate) async fn read_history<S: Session>(session: &mut S, table: &HistoryTable) -> Result<History, Error> {
    match session.batch(&table.select_sql()).await {
        Ok(messages) => Ok(History::Rows(parse_history(table, &messages)?)),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(History::NoTable),
        Err(source) => Err(database(table, "read the history table", source)),
    }
}

fn database(table: &HistoryTable, action: &'static str, source: postgres::Error) -> Error {
    Error::Database { schema: table.schema.to_string(), action, source }
}

/// Run `job` on `schema`. An up-to-date schema costs one round trip: the history is read without a lock and, when
/// the plan is empty, nothing else is sent. Otherwise the schema's advisory lock is taken, the history re-read
/// under it, and the plan applied; the lock is released on every path.
pub(crate) async fn run<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    schema: &SchemaName,
    operation: Operation,
) -> Result<Report, Error> {
    let table = HistoryTable::new(schema, &migrator.history_table)?;
    if let Some((direction, target)) = operation.movement() {
        if let History::Rows(history) = read_history(session, &table).await? {
            // A refusal here may be transient (another replica mid-way through a no-transaction migration): only
            // an empty plan is trusted without the lock; anything else is decided again under it.
            if let Ok(steps) = plan(schema.as_str(), migrator.set, &history, direction, target, migrator.plan_options) {
                if steps.is_empty() {
                    tracing::debug!(schema = schema.as_str(), "schema is up to date");
                    return Ok(Report::new(schema, &history, Vec::new()));
                }
            }
        }
    }
    let lock = acquire_lock(session, &table, migrator.lock_wait).await?;
    let result = match operation.movement() {
        Some((direction, target)) => migrate_locked(session, migrator, &table, direction, target).await,
        None => reset_locked(session, migrator, &table).await,
    };
    let released = session.batch(&format!("SELECT pg_advisory_unlock({lock})")).await;
    let report = result?;
    released.map_err(|e| database(&table, "release the migration lock", e))?;
    Ok(report)
}

/// The plan and the exact SQL a run would send, without taking the lock or changing anything.
pub(crate) async fn preview<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    schema: &SchemaName,
    operation: Operation,
) -> Result<Preview, Error> {
    let table = HistoryTable::new(schema, &migrator.history_table)?;
    let history = read_history(session, &table).await?.into_rows();
    let (prologue, steps) = match operation.movement() {
        Some((direction, target)) => {
            (None, plan(schema.as_str(), migrator.set, &history, direction, target, migrator.plan_options)?)
        }
        None => {
            let steps = plan(schema.as_str(), migrator.set, &[], Direction::Up, Target::Head, migrator.plan_options)?;
            (Some(table.reset_sql(!is_atomic(&steps), timeouts(migrator))), steps)
        }
    };
    let planned = steps
        .iter()
        .map(|step| PlannedStep {
            version: step.migration.version,
            name: step.migration.name.to_string(),
            kind: step.kind,
            file: step.script().file.to_string(),
            no_transaction: step.script().no_transaction,
            sql: table.render_step(step.migration, step.kind == StepKind::Apply, step.script(), timeouts(migrator)),
        })
        .collect();
    let base = if prologue.is_some() { Vec::new() } else { history };
    Ok(Preview::new(schema, &base, prologue, planned))
}

/// A reset is one transaction unless a migration must run outside one.
fn is_atomic(steps: &[Step<'_>]) -> bool {
    !steps.iter().any(|s| s.script().no_transaction)
}

/// Poll `pg_try_advisory_lock` instead of blocking in `pg_advisory_lock`: a session blocked on the lock would hold
/// a snapshot that `CREATE INDEX CONCURRENTLY`, run by the lock holder, has to wait for, a deadlock. Between polls
/// the session is idle and holds nothing.
async fn acquire_lock<S: Session>(session: &mut S, table: &HistoryTable, wait: Duration) -> Result<i64, Error> {
    let key = table.lock_key();
    let started = Instant::now();
    let mut backoff = Duration::from_millis(10);
    loop {
        let messages = session
            .batch(&format!("SELECT pg_try_advisory_lock({key})"))
            .await
            .map_err(|e| database(table, "take the migration lock", e))?;
        if rows(&messages).next().is_some_and(|row| row.first() == Some(&Some("t"))) {
            return Ok(key);
        }
        let waited = started.elapsed();
        if waited >= wait {
            return Err(Error::LockTimeout { schema: table.schema.to_string(), waited });
        }
        tracing::debug!(schema = table.schema.as_str(), ?waited, "waiting for the migration lock");
        session.pause(backoff.min(wait - waited)).await;
        backoff = (backoff * 2).min(Duration::from_millis(250));
    }
}

/// Drop and rebuild the schema. When every migration can run in a transaction, the drop, the rebuild and every
/// history row commit together, so a failing migration leaves the old schema exactly as it was.
async fn reset_locked<S: Session>(session: &mut S, migrator: &Migrator<'_>, table: &HistoryTable) -> Result<Report, Error> {
    let history = read_history(session, table).await?.into_rows();
    let steps = plan(table.schema.as_str(), migrator.set, &[], Direction::Up, Target::Head, migrator.plan_options)?;
    let atomic = is_atomic(&steps);
    let prologue = table.reset_sql(!atomic, timeouts(migrator));
    if let Err(e) = session.batch(&prologue).await {
        let _ = session.batch("ROLLBACK").await;
        return Err(database(table, "drop and recreate the schema", e));
    }
    tracing::info!(schema = table.schema.as_str(), atomic, "dropped and recreated the schema");
    let mut done = Vec::with_capacity(steps.len());
    for step in &steps {
        let started = Instant::now();
        if atomic {
            run_transactional(session, migrator, table, step, false, false).await?;
        } else if step.script().no_transaction {
            run_untransacted(session, migrator, table, step).await?;
        } else {
            run_transactional(session, migrator, table, step, true, true).await?;
        }
        done.push(step_report(table, step, started.elapsed()));
    }
    if atomic {
        if let Err(e) = session.batch("COMMIT").await {
            let _ = session.batch("ROLLBACK").await;
            return Err(database(table, "commit the reset", e));
        }
    }
    let mut report = Report::new(&table.schema, &[], done);
    report.version_before = history.iter().map(|a| a.version).max();
    Ok(report)
}

async fn migrate_locked<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    table: &HistoryTable,
    direction: Direction,
    target: Target,
) -> Result<Report, Error> {
    let schema = table.schema.as_str();
    let history = match read_history(session, table).await? {
        History::Rows(rows) => rows,
        History::NoTable => {
            let found = session
                .batch(&table.schema_exists_sql())
                .await
                .map_err(|e| database(table, "look the schema up", e))?;
            let with_schema = rows(&found).next().is_none();
            session
                .batch(&table.create_sql(with_schema))
                .await
                .map_err(|e| database(table, "create the schema and its history table", e))?;
            tracing::info!(schema, table = table.qualified(), "created the history table");
            Vec::new()
        }
    };
    let steps = plan(schema, migrator.set, &history, direction, target, migrator.plan_options)?;
    let done = if migrator.single_transaction {
        if let Some(step) = steps.iter().find(|s| s.script().no_transaction) {
            return Err(Error::NoTransactionInSingleTransaction {
                schema: schema.to_owned(),
                version: step.migration.version,
                file: step.script().file.to_string(),
            });
        }
        apply_in_one_transaction(session, migrator, table, &steps).await?
    } else {
        let mut done = Vec::with_capacity(steps.len());
        for step in &steps {
            done.push(apply_step(session, migrator, table, step).await?);
        }
        done
    };
    Ok(Report::new(&table.schema, &history, done))
}

fn timeouts(migrator: &Migrator<'_>) -> Timeouts {
    Timeouts { lock_timeout: migrator.lock_timeout, statement_timeout: migrator.statement_timeout }
}

async fn apply_step<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    table: &HistoryTable,
    step: &Step<'_>,
) -> Result<StepReport, Error> {
    let started = Instant::now();
    if step.script().no_transaction {
        run_untransacted(session, migrator, table, step).await?;
    } else {
        run_transactional(session, migrator, table, step, true, true).await?;
    }
    Ok(step_report(table, step, started.elapsed()))
}

async fn apply_in_one_transaction<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    table: &HistoryTable,
    steps: &[Step<'_>],
) -> Result<Vec<StepReport>, Error> {
    let mut done = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let started = Instant::now();
        run_transactional(session, migrator, table, step, i == 0, i + 1 == steps.len()).await?;
        done.push(step_report(table, step, started.elapsed()));
    }
    Ok(done)
}

fn step_report(table: &HistoryTable, step: &Step<'_>, duration: Duration) -> StepReport {
    let verb = match step.kind {
        StepKind::Apply => "applied",
        StepKind::Revert => "reverted",
    };
    tracing::info!(
        schema = table.schema.as_str(),
        version = step.migration.version,
        file = step.script().file.as_ref(),
        ?duration,
        "{verb} migration"
    );
    StepReport { version: step.migration.version, name: step.migration.name.to_string(), kind: step.kind, duration }
}

async fn run_transactional<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    table: &HistoryTable,
    step: &Step<'_>,
    open: bool,
    close: bool,
) -> Result<(), Error> {
    let apply = step.kind == StepKind::Apply;
    let batch = table.transactional_step(step.migration, apply, step.script(), open, close, timeouts(migrator));
    if let Err(error) = session.batch(&batch.sql).await {
        // The transaction is aborted (or the connection gone): roll back so the session is usable; nothing of the
        // step, nor of earlier steps in single-transaction mode, is kept.
        let _ = session.batch("ROLLBACK").await;
        return Err(migration_failed(table, step, &error, Some(batch.script_start as isize)));
    }
    Ok(())
}

/// A no-transaction script: mark the version dirty, run each statement on its own, then mark it clean. A failure
/// leaves the row dirty, so the next run refuses until someone looks.
async fn run_untransacted<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    table: &HistoryTable,
    step: &Step<'_>,
) -> Result<(), Error> {
    let apply = step.kind == StepKind::Apply;
    let script = step.script();
    let started = Instant::now();
    let messages = session
        .batch(&table.begin_untransacted(step.migration, apply, timeouts(migrator)))
        .await
        .map_err(|e| migration_failed(table, step, &e, None))?;
    let saved: Vec<String> = rows(&messages).next().unwrap_or_default().iter().map(|v| v.unwrap_or("").to_owned()).collect();
    let restore = restore_settings_sql(&[0, 1, 2].map(|i| saved.get(i).cloned().unwrap_or_default()));

    let mut outcome = Ok(());
    for (offset, statement) in split_statements(&script.sql) {
        if let Err(error) = session.batch(statement).await {
            let statement_start = script.sql[..offset].chars().count() as isize;
            outcome = Err(migration_failed(table, step, &error, Some(-statement_start)));
            break;
        }
    }
    let finish = match outcome {
        Ok(()) => format!("{};\n{restore}", table.finish_untransacted(step.migration, apply, started.elapsed())),
        Err(_) => restore,
    };
    let finished = session.batch(&finish).await;
    outcome?;
    finished.map_err(|e| database(table, "record a no-transaction migration", e))?;
    Ok(())
}

/// Build the error for a failed step. `script_start` is where the script starts in the query string that failed, in
/// characters (negative when the query string is a statement that starts inside the script); `None` when the failed
/// query held no part of the script.
fn migration_failed(table: &HistoryTable, step: &Step<'_>, error: &postgres::Error, script_start: Option<isize>) -> Error {
    let script = step.script();
    let (code, message, position) = match error.as_db_error() {
        Some(db) => {
            let mut message = db.message().to_owned();
            for (label, extra) in [("detail", db.detail()), ("hint", db.hint())] {
                if let Some(extra) = extra {
                    message.push_str(&format!(" ({label}: {extra})"));
                }
            }
            let position = match (db.position(), script_start) {
                (Some(postgres::error::ErrorPosition::Original(p)), Some(start)) => {
                    let in_script = *p as isize - start;
                    (in_script >= 1 && in_script as usize <= script.sql.chars().count())
                        .then(|| line_and_column(&script.sql, in_script as usize))
                }
                _ => None,
            };
            (Some(db.code().code().to_owned()), message, position)
        }
        None => (None, error.to_string(), None),
    };
    Error::MigrationFailed {
        schema: table.schema.to_string(),
        version: step.migration.version,
        file: script.file.to_string(),
        code,
        message,
        position,
    }
}
