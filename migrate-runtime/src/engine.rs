//! Read, lock, plan, apply: the I/O around the pure planner, written once for both drivers.
//!
//! Round trips are the cost that matters over thousands of schemas, so the engine sends work in as few query
//! strings as it can: an up-to-date schema costs one read; consecutive transactional steps go to the server in one
//! query string (each in its own transaction, or all in one), and a fresh schema is created and migrated in a
//! single transaction when every migration allows it.

use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::SimpleQueryMessage;

use crate::history::{parse_history, restore_settings_sql, rows, HistoryTable, Timeouts, ELAPSED_COLUMN};
use crate::plan::{plan, AppliedMigration, Direction, Step, StepKind};
use crate::session::Session;
use crate::sql::{line_and_column, split_statements};
use crate::{
    Error, Fix, FixKind, Migrator, Operation, PlannedStep, Preview, Report, Resolution, SchemaName, StepReport, Target,
};

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

/// Run `operation` on `schema`. An up-to-date schema costs one round trip: the history is read without a lock
/// and, when the plan is empty, nothing else is sent. Otherwise the schema's advisory lock is taken, the history
/// re-read under it, and the plan applied; the lock is released on every path.
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
    let found = acquire_lock(session, &table, migrator.lock_wait).await?;
    let result = locked(session, migrator, &table, operation, found).await;
    let released = session.batch(&format!("SELECT pg_advisory_unlock({})", table.lock_key())).await;
    let report = result?;
    released.map_err(|e| database(&table, "release the migration lock", e))?;
    Ok(report)
}

/// What the lock statement found besides the lock.
#[derive(Debug, Clone, Copy)]
struct Found {
    schema_exists: bool,
    table_exists: bool,
}

/// Poll `pg_try_advisory_lock` instead of blocking in `pg_advisory_lock`: a session blocked on the lock would hold
/// a snapshot that `CREATE INDEX CONCURRENTLY`, run by the lock holder, has to wait for, a deadlock. Between polls
/// the session is idle and holds nothing.
async fn acquire_lock<S: Session>(session: &mut S, table: &HistoryTable, wait: Duration) -> Result<Found, Error> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(10);
    loop {
        let messages =
            session.batch(&table.try_lock_sql()).await.map_err(|e| database(table, "take the migration lock", e))?;
        let row = rows(&messages).next().unwrap_or_default();
        let flag = |i: usize| row.get(i) == Some(&Some("t"));
        if flag(0) {
            return Ok(Found { schema_exists: flag(1), table_exists: flag(2) });
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

/// Under the lock: read the history, plan, and apply.
async fn locked<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    table: &HistoryTable,
    operation: Operation,
    found: Found,
) -> Result<Report, Error> {
    let schema = table.schema.as_str();
    let history = if found.table_exists { read_history(session, table).await?.into_rows() } else { Vec::new() };
    let (steps, prologue) = match operation.movement() {
        None if operation != Operation::Reset => {
            return fix_history(session, migrator, table, operation, history).await
        }
        Some((direction, target)) => {
            let steps = plan(schema, migrator.set, &history, direction, target, migrator.plan_options)?;
            // Only an upgrade creates what is missing: a downgrade of a schema that was never migrated changes nothing.
            let create = (!found.table_exists && direction == Direction::Up)
                .then(|| format!("{};\n", table.create_sql(!found.schema_exists)));
            (steps, create)
        }
        None => {
            let steps = plan(schema, migrator.set, &[], Direction::Up, Target::Head, migrator.plan_options)?;
            (steps, Some(table.reset_sql()))
        }
    };
    let all_transactional = steps.iter().all(|s| !s.script().no_transaction);
    if migrator.single_transaction && !all_transactional {
        let step = steps.iter().find(|s| s.script().no_transaction).unwrap_or(&steps[0]);
        return Err(Error::NoTransactionInSingleTransaction {
            schema: schema.to_owned(),
            version: step.migration.version,
            file: step.script().file.to_string(),
        });
    }
    // A fresh schema or a reset is built in one transaction when the migrations allow it: a failure leaves the
    // database exactly as it was.
    let one_transaction = all_transactional && (migrator.single_transaction || prologue.is_some());
    let prologue_action = if operation == Operation::Reset {
        "drop and recreate the schema"
    } else {
        "create the schema and its history table"
    };
    let done = if one_transaction {
        let prologue = (prologue.as_deref().unwrap_or(""), prologue_action);
        run_in_one_transaction(session, migrator, table, &steps, prologue).await?
    } else {
        if let Some(prologue) = &prologue {
            let sql = format!("{}{prologue}COMMIT;\n", table.open_sql(timeouts(migrator)));
            if let Err(e) = session.batch(&sql).await {
                let _ = session.batch("ROLLBACK").await;
                return Err(database(table, prologue_action, e));
            }
            tracing::info!(schema, table = table.qualified(), "{prologue_action}: done");
        }
        run_steps(session, migrator, table, &steps).await?
    };
    let base = if matches!(operation, Operation::Reset) { Vec::new() } else { history.clone() };
    let mut report = Report::new(&table.schema, &base, done);
    report.version_before = history.iter().map(|a| a.version).max();
    Ok(report)
}

/// `repair` and `resolve`: change history rows, run no migration, all in one transaction.
async fn fix_history<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    table: &HistoryTable,
    operation: Operation,
    history: Vec<AppliedMigration>,
) -> Result<Report, Error> {
    let schema = table.schema.as_str();
    let mut fixes = Vec::new();
    let mut sql = String::from("BEGIN;\n");
    match operation {
        Operation::Resolve { version, resolution } => {
            let Some(row) = history.iter().find(|a| a.version == version) else {
                return Err(Error::BadTarget {
                    schema: schema.to_owned(),
                    problem: format!("version {version} has no history row: nothing to resolve"),
                });
            };
            if !row.dirty {
                return Err(Error::BadTarget {
                    schema: schema.to_owned(),
                    problem: format!("version {version} is not dirty: nothing to resolve"),
                });
            }
            let kind = match resolution {
                Resolution::Applied => FixKind::MarkedApplied,
                Resolution::NotApplied => FixKind::MarkedNotApplied,
            };
            sql.push_str(&table.resolve_sql(version, resolution == Resolution::Applied));
            fixes.push(Fix { version, kind });
        }
        _ => {
            for applied in history.iter().filter(|a| !a.dirty) {
                let Some(migration) = migrator.set.get(applied.version) else { continue };
                let down = migration.down.as_ref().map(|d| d.checksum);
                if applied.checksum != migration.up.checksum
                    || applied.down_checksum != down
                    || applied.name != migration.name
                {
                    sql.push_str(&table.repair_sql(migration));
                    fixes.push(Fix { version: applied.version, kind: FixKind::Repaired });
                }
            }
        }
    }
    sql.push_str("COMMIT;\n");
    if !fixes.is_empty() {
        if let Err(e) = session.batch(&sql).await {
            let _ = session.batch("ROLLBACK").await;
            return Err(database(table, "update the history table", e));
        }
    }
    for fix in &fixes {
        tracing::info!(schema, version = fix.version, kind = ?fix.kind, "history fixed");
    }
    let mut report = Report::new(&table.schema, &history, Vec::new());
    if fixes.iter().any(|f| f.kind == FixKind::MarkedNotApplied) {
        report.version_after =
            history.iter().filter(|a| !fixes.iter().any(|f| f.version == a.version)).map(|a| a.version).max();
    }
    report.fixes = fixes;
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
        None if operation != Operation::Reset => (None, Vec::new()),
        None => {
            let steps = plan(schema.as_str(), migrator.set, &[], Direction::Up, Target::Head, migrator.plan_options)?;
            let commit = if steps.iter().any(|s| s.script().no_transaction) { "COMMIT;\n" } else { "" };
            (Some(format!("{}{}{commit}", table.open_sql(timeouts(migrator)), table.reset_sql())), steps)
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

fn timeouts(migrator: &Migrator<'_>) -> Timeouts {
    Timeouts { lock_timeout: migrator.lock_timeout, statement_timeout: migrator.statement_timeout }
}

/// A query string holding several steps, and where each step's script sits in it.
struct Message<'s, 'm> {
    sql: String,
    chars: usize,
    /// (step, first character of its script) in order.
    steps: Vec<(&'s Step<'m>, usize)>,
}

impl<'s, 'm> Message<'s, 'm> {
    fn new() -> Self {
        Message { sql: String::new(), chars: 0, steps: Vec::new() }
    }

    fn push(&mut self, text: &str) {
        self.sql.push_str(text);
        self.chars += text.chars().count();
    }

    fn push_step(&mut self, table: &HistoryTable, step: &'s Step<'m>, timeouts: Timeouts) {
        let batch = table.step_sql(step.migration, step.kind == StepKind::Apply, step.script(), timeouts);
        self.steps.push((step, self.chars + batch.script_start));
        self.push(&batch.sql);
    }

    /// The step whose script holds PostgreSQL's error position, and the start of that script.
    fn step_at(&self, error: &postgres::Error) -> Option<(&'s Step<'m>, usize)> {
        let position = match error.as_db_error()?.position()? {
            postgres::error::ErrorPosition::Original(p) => *p as usize,
            postgres::error::ErrorPosition::Internal { .. } => return None,
        };
        self.steps.iter().rev().find(|(_, start)| *start < position).copied()
    }
}

/// The durations the steps of a message returned, in order.
fn step_durations(messages: &[SimpleQueryMessage]) -> Vec<Duration> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) if row.columns().first().is_some_and(|c| c.name() == ELAPSED_COLUMN) => {
                row.get(0).and_then(|ms| ms.parse().ok()).map(Duration::from_millis)
            }
            _ => None,
        })
        .collect()
}

/// All steps in one transaction, sent as one query string after `prologue`, which creates or resets the schema
/// (its SQL, and what it does for error messages).
async fn run_in_one_transaction<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    table: &HistoryTable,
    steps: &[Step<'_>],
    prologue: (&str, &'static str),
) -> Result<Vec<StepReport>, Error> {
    let (prologue, prologue_action) = prologue;
    let mut message = Message::new();
    message.push(&table.open_sql(timeouts(migrator)));
    message.push(prologue);
    for step in steps {
        message.push_step(table, step, timeouts(migrator));
    }
    message.push("COMMIT;\n");
    match session.batch(&message.sql).await {
        Ok(messages) => Ok(reports(table, steps, &step_durations(&messages))),
        Err(error) => {
            let _ = session.batch("ROLLBACK").await;
            Err(match message.step_at(&error) {
                Some((step, start)) => migration_failed(table, step, &error, Some(start as isize)),
                None => {
                    name_the_failing_step(session, migrator, table, steps, (prologue, prologue_action), &error).await
                }
            })
        }
    }
}

/// The one-transaction message failed without a position to say which step: replay it one step per round trip,
/// inside a transaction that is rolled back, to name the step that fails.
async fn name_the_failing_step<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    table: &HistoryTable,
    steps: &[Step<'_>],
    prologue: (&str, &'static str),
    original: &postgres::Error,
) -> Error {
    let (prologue, prologue_action) = prologue;
    let opened = session.batch(&format!("{}{prologue}", table.open_sql(timeouts(migrator)))).await;
    let mut culprit = None;
    if opened.is_ok() {
        for step in steps {
            let batch = table.step_sql(step.migration, step.kind == StepKind::Apply, step.script(), timeouts(migrator));
            if let Err(error) = session.batch(&batch.sql).await {
                culprit = Some(migration_failed(table, step, &error, Some(batch.script_start as isize)));
                break;
            }
        }
    }
    let _ = session.batch("ROLLBACK").await;
    match (culprit, opened) {
        (Some(error), _) => error,
        (None, Err(error)) => database(table, prologue_action, error),
        // The failure did not repeat: report it against the first step, with the server's own words.
        (None, Ok(_)) => migration_failed(table, &steps[0], original, None),
    }
}

/// Steps in their own transactions: consecutive transactional steps go to the server as one query string; a
/// no-transaction step runs statement by statement.
async fn run_steps<S: Session>(
    session: &mut S,
    migrator: &Migrator<'_>,
    table: &HistoryTable,
    steps: &[Step<'_>],
) -> Result<Vec<StepReport>, Error> {
    let mut done = Vec::with_capacity(steps.len());
    let mut rest = steps;
    while let Some(first) = rest.first() {
        if first.script().no_transaction {
            let started = Instant::now();
            run_untransacted(session, migrator, table, first).await?;
            done.extend(reports(table, std::slice::from_ref(first), &[started.elapsed()]));
            rest = &rest[1..];
            continue;
        }
        let group_len = rest.iter().take_while(|s| !s.script().no_transaction).count();
        let (group, after) = rest.split_at(group_len);
        let mut message = Message::new();
        for step in group {
            message.push("BEGIN;\n");
            message.push_step(table, step, timeouts(migrator));
            message.push("COMMIT;\n");
        }
        match session.batch(&message.sql).await {
            Ok(messages) => done.extend(reports(table, group, &step_durations(&messages))),
            Err(error) => {
                // The failing step's transaction is aborted; the steps before it committed.
                let _ = session.batch("ROLLBACK").await;
                return Err(match message.step_at(&error) {
                    Some((step, start)) => migration_failed(table, step, &error, Some(start as isize)),
                    None => {
                        let step = first_unfinished(session, table, group).await;
                        migration_failed(table, step, &error, None)
                    }
                });
            }
        }
        rest = after;
    }
    Ok(done)
}

/// The first step of `group` whose effect is not in the history: the one that failed.
async fn first_unfinished<'s, 'm, S: Session>(
    session: &mut S,
    table: &HistoryTable,
    group: &'s [Step<'m>],
) -> &'s Step<'m> {
    let applied: Vec<i64> = match read_history(session, table).await {
        Ok(history) => history.into_rows().iter().map(|a| a.version).collect(),
        Err(_) => return &group[0],
    };
    group.iter().find(|s| applied.contains(&s.migration.version) != (s.kind == StepKind::Apply)).unwrap_or(&group[0])
}

fn reports(table: &HistoryTable, steps: &[Step<'_>], durations: &[Duration]) -> Vec<StepReport> {
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let duration = durations.get(i).copied().unwrap_or_default();
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
            StepReport {
                version: step.migration.version,
                name: step.migration.name.to_string(),
                kind: step.kind,
                duration,
            }
        })
        .collect()
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
    let saved: Vec<String> =
        rows(&messages).next().unwrap_or_default().iter().map(|v| v.unwrap_or("").to_owned()).collect();
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
/// query held no part of the script or the position is not to be trusted.
fn migration_failed(
    table: &HistoryTable,
    step: &Step<'_>,
    error: &postgres::Error,
    script_start: Option<isize>,
) -> Error {
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
