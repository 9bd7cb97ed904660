//! Read, lock, execute: the I/O around the pure planner, written once for both drivers. The engine decides
//! nothing: it reads what the planner needs, takes the lock, and executes the [`Plan`] it is given; the dry run
//! renders the very query strings the engine would send.
//!
//! Round trips are the cost that matters over thousands of schemas, so a plan is sent in as few query strings as it
//! can: an up-to-date schema costs one read; consecutive transactional steps go to the server in one query string
//! (each in its own transaction, or all in one), and a fresh schema is created and migrated in a single
//! transaction when every migration allows it.

use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::SimpleQueryMessage;

use crate::error::Error;
use crate::history::{
    first_row, flag, parse_history, restore_settings_sql, AppliedMigration, HistoryTable, Timeouts, ELAPSED_COLUMN,
};
use crate::plan::{plan, Found, Operation, Plan, PlanOptions, Prologue, Step, TransactionMode};
use crate::report::{PlannedStep, Preview, Report, StepReport};
use crate::schema::SchemaName;
use crate::session::Session;
use crate::set::MigrationSet;
use crate::sql::{line_and_column, split_statements};

/// How the engine runs: the history table's name, what the planner accepts, how long to wait for the lock, and
/// the session limits for migration SQL.
#[derive(Debug, Clone)]
pub(crate) struct EngineOptions {
    pub history_table: String,
    pub plan: PlanOptions,
    pub lock_wait: Duration,
    pub timeouts: Timeouts,
    /// The service recorded as the owner of a history table the engine creates.
    pub service: String,
}

/// The history rows, or `None` when the history table (or the schema) does not exist. PostgreSQL reports a missing
/// schema and a missing table alike (`undefined_table`), so the two are told apart only when it matters.
pub(crate) async fn read<S: Session>(
    session: &mut S,
    table: &HistoryTable,
) -> Result<Option<Vec<AppliedMigration>>, Error> {
    match session.batch(&table.select_sql()).await {
        Ok(messages) => Ok(Some(parse_history(table, &messages)?)),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(source) => Err(database(table, "read the history table", source)),
    }
}

fn database(table: &HistoryTable, action: &'static str, source: postgres::Error) -> Error {
    Error::Database { schema: table.schema.to_string(), action, source }
}

/// What `try_lock_sql` and `exists_sql` say about the schema, and the history once read.
async fn found<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    messages: &[SimpleQueryMessage],
) -> Result<Found, Error> {
    let row = first_row(messages);
    Ok(if !flag(row, "schema_exists") {
        Found::NoSchema
    } else if !flag(row, "table_exists") {
        Found::NoTable
    } else {
        read(session, table).await?.map_or(Found::NoTable, Found::History)
    })
}

/// Run `operation` on `schema`. The history is read without a lock and, when the plan from it is empty, nothing
/// else is sent: an up-to-date schema costs one round trip. Otherwise the schema's advisory lock is taken, the
/// history re-read and planned again under it, and the plan executed; the lock is released on every path.
pub(crate) async fn run<S: Session>(
    session: &mut S,
    set: &MigrationSet,
    options: &EngineOptions,
    schema: &SchemaName,
    operation: Operation,
) -> Result<Report, Error> {
    let table = HistoryTable::new(schema, &options.history_table)?.with_service(&options.service);
    if let Some(rows) = read(session, &table).await? {
        // A refusal here may be transient (another replica mid-way through a no-transaction migration): only an
        // empty plan is trusted without the lock; anything else is decided again under it.
        if let Ok(plan) = plan(schema.as_str(), set, &Found::History(rows), operation, options.plan) {
            if plan.is_empty() {
                tracing::debug!(schema = schema.as_str(), "nothing to do");
                return Ok(Report::of(schema, &plan, Vec::new(), true));
            }
        }
    }
    let locked = acquire_lock(session, &table, options.lock_wait).await?;
    let result = match found(session, &table, &locked).await {
        Ok(found) => match plan(schema.as_str(), set, &found, operation, options.plan) {
            Ok(plan) => execute(session, &table, options.timeouts, &plan).await,
            Err(refusal) => Err(refusal),
        },
        Err(error) => Err(error),
    };
    let released = session.batch(&format!("SELECT pg_advisory_unlock({})", table.lock_key())).await;
    let report = result?;
    released.map_err(|e| database(&table, "release the migration lock", e))?;
    Ok(report)
}

/// Poll `pg_try_advisory_lock` instead of blocking in `pg_advisory_lock`: a session blocked on the lock would hold
/// a snapshot that `CREATE INDEX CONCURRENTLY`, run by the lock holder, has to wait for, a deadlock. Between polls
/// the session is idle and holds nothing. Returns the lock statement's answer (which also says what exists).
async fn acquire_lock<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    wait: Duration,
) -> Result<Vec<SimpleQueryMessage>, Error> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(10);
    loop {
        let messages =
            session.batch(&table.try_lock_sql()).await.map_err(|e| database(table, "take the migration lock", e))?;
        if flag(first_row(&messages), "locked") {
            return Ok(messages);
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

/// The plan for `operation` and the exact SQL a run would send, without taking the lock or changing anything.
pub(crate) async fn preview<S: Session>(
    session: &mut S,
    set: &MigrationSet,
    options: &EngineOptions,
    schema: &SchemaName,
    operation: Operation,
) -> Result<Preview, Error> {
    let table = HistoryTable::new(schema, &options.history_table)?.with_service(&options.service);
    let found = match read(session, &table).await? {
        Some(rows) => Found::History(rows),
        None => {
            let messages =
                session.batch(&table.exists_sql()).await.map_err(|e| database(&table, "look up the schema", e))?;
            found(session, &table, &messages).await?
        }
    };
    let plan = plan(schema.as_str(), set, &found, operation, options.plan)?;
    Ok(render(&table, options.timeouts, &plan))
}

/// One query string the engine sends, or one no-transaction step (sent statement by statement).
enum Send<'p, 'm> {
    Batch(Batch<'p, 'm>),
    Untransacted(&'p Step<'m>),
}

/// A query string, and where each step's part of it and each step's script sit in it.
struct Batch<'p, 'm> {
    sql: String,
    /// Characters in `sql` so far: PostgreSQL reports error positions in characters.
    chars: usize,
    parts: Vec<Part<'p, 'm>>,
    /// All of it commits or none (one transaction), or each step commits on its own.
    mode: TransactionMode,
    /// The prologue it runs, for error messages.
    prologue: Option<Prologue>,
    /// It writes the plan's history fixes.
    fixes: bool,
}

struct Part<'p, 'm> {
    step: &'p Step<'m>,
    /// Byte range of the step's SQL in the batch.
    range: std::ops::Range<usize>,
    /// First character of the step's script in the batch.
    script_start: usize,
}

impl<'p, 'm> Batch<'p, 'm> {
    fn new(mode: TransactionMode) -> Self {
        Batch { sql: String::new(), chars: 0, parts: Vec::new(), mode, prologue: None, fixes: false }
    }

    fn push(&mut self, text: &str) {
        self.sql.push_str(text);
        self.chars += text.chars().count();
    }

    /// A step, wrapped in its own `BEGIN`/`COMMIT` when each step commits on its own.
    fn push_step(&mut self, table: &HistoryTable, step: &'p Step<'m>, timeouts: Timeouts) {
        let start = self.sql.len();
        let own_transaction = self.mode == TransactionMode::PerStep;
        if own_transaction {
            self.push("BEGIN;\n");
        }
        let step_sql = table.step_sql(step, timeouts);
        let script_start = self.chars + step_sql.script_start;
        self.push(&step_sql.sql);
        if own_transaction {
            self.push("COMMIT;\n");
        }
        self.parts.push(Part { step, range: start..self.sql.len(), script_start });
    }

    /// The index of the part whose script holds PostgreSQL's error position.
    fn part_at(&self, error: &postgres::Error) -> Option<usize> {
        let position = match error.as_db_error()?.position()? {
            postgres::error::ErrorPosition::Original(p) => *p as usize,
            postgres::error::ErrorPosition::Internal { .. } => return None,
        };
        self.parts.iter().rposition(|part| part.script_start < position)
    }
}

/// The plan as the query strings the engine sends, in order.
fn compile<'p, 'm>(table: &HistoryTable, timeouts: Timeouts, plan: &'p Plan<'m>) -> Vec<Send<'p, 'm>> {
    let fixes_sql: String = plan.fixes.iter().map(|fix| table.fix_sql(fix)).collect();
    let opened = |mode, prologue: Option<Prologue>| {
        let mut batch = Batch::new(mode);
        batch.push(&table.open_sql(timeouts));
        if let Some(prologue) = prologue {
            batch.push(&table.prologue_sql(prologue));
            batch.prologue = Some(prologue);
        }
        batch
    };
    if plan.transaction == TransactionMode::Single {
        let mut batch = opened(TransactionMode::Single, plan.prologue);
        for step in &plan.steps {
            batch.push_step(table, step, timeouts);
        }
        batch.push(&fixes_sql);
        batch.fixes = !plan.fixes.is_empty();
        batch.push("COMMIT;\n");
        return vec![Send::Batch(batch)];
    }
    let mut sends = Vec::new();
    if let Some(prologue) = plan.prologue {
        let mut batch = opened(TransactionMode::Single, Some(prologue));
        batch.push("COMMIT;\n");
        sends.push(Send::Batch(batch));
    }
    let mut rest = plan.steps.as_slice();
    while let Some(first) = rest.first() {
        if first.script.no_transaction {
            sends.push(Send::Untransacted(first));
            rest = &rest[1..];
            continue;
        }
        let group_len = rest.iter().take_while(|s| !s.script.no_transaction).count();
        let (group, after) = rest.split_at(group_len);
        let mut batch = Batch::new(TransactionMode::PerStep);
        for step in group {
            batch.push_step(table, step, timeouts);
        }
        sends.push(Send::Batch(batch));
        rest = after;
    }
    if !plan.fixes.is_empty() {
        let mut batch = opened(TransactionMode::Single, None);
        batch.push(&fixes_sql);
        batch.push("COMMIT;\n");
        batch.fixes = true;
        sends.push(Send::Batch(batch));
    }
    sends
}

/// What the dry run shows: the same query strings [`compile`] builds for [`execute`], cut at the steps. SQL before
/// the first step is the prologue, SQL after the last one the epilogue; SQL between two steps stays with the
/// earlier one.
fn render(table: &HistoryTable, timeouts: Timeouts, plan: &Plan<'_>) -> Preview {
    let mut prologue = String::new();
    let mut steps: Vec<PlannedStep> = Vec::new();
    let mut trailing = String::new();
    for send in compile(table, timeouts, plan) {
        match send {
            // History fixes are the epilogue, with or without steps before them.
            Send::Batch(batch) if batch.fixes && batch.parts.is_empty() => trailing.push_str(&batch.sql),
            Send::Batch(batch) => {
                let mut at = 0;
                for part in &batch.parts {
                    between(&steps, &mut prologue, &mut trailing, &batch.sql[at..part.range.start]);
                    push_step(&mut steps, &mut trailing, planned(part.step, batch.sql[part.range.clone()].to_owned()));
                    at = part.range.end;
                }
                between(&steps, &mut prologue, &mut trailing, &batch.sql[at..]);
            }
            Send::Untransacted(step) => {
                let mut sql = table.begin_untransacted(step, timeouts);
                for (_, statement) in split_statements(&step.script.sql) {
                    sql.push_str(statement.trim());
                    sql.push_str(";\n");
                }
                sql.push_str(&table.finish_untransacted(step, Duration::ZERO));
                sql.push_str(";\n");
                push_step(&mut steps, &mut trailing, planned(step, sql));
            }
        }
    }
    let text = |s: String| (!s.is_empty()).then_some(s);
    Preview::of(&table.schema, plan, text(prologue), steps, text(trailing))
}

fn planned(step: &Step<'_>, sql: String) -> PlannedStep {
    PlannedStep {
        version: step.migration.version,
        name: step.migration.name.to_string(),
        direction: step.direction,
        file: step.script.file.to_string(),
        no_transaction: step.script.no_transaction,
        sql,
    }
}

/// Execute `plan`: every query string in order. A failure reports the steps that committed before it.
async fn execute<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
    plan: &Plan<'_>,
) -> Result<Report, Error> {
    let mut done: Vec<StepReport> = Vec::with_capacity(plan.steps.len());
    let mut fixes_written = false;
    for send in compile(table, timeouts, plan) {
        match send {
            Send::Batch(batch) => match session.batch(&batch.sql).await {
                Ok(messages) => {
                    let durations = step_durations(&messages);
                    for (i, part) in batch.parts.iter().enumerate() {
                        done.push(step_report(table, part.step, durations.get(i).copied()));
                    }
                    if let Some(prologue) = batch.prologue {
                        tracing::info!(schema = table.schema.as_str(), "{}: done", prologue.action());
                    }
                    fixes_written |= batch.fixes;
                }
                Err(error) => {
                    // The failing transaction is aborted; roll it back so the session is usable again.
                    let _ = session.batch("ROLLBACK").await;
                    return Err(batch_failed(session, table, timeouts, &batch, error, done).await);
                }
            },
            Send::Untransacted(step) => {
                let started = Instant::now();
                run_untransacted(session, table, timeouts, step, &done).await?;
                done.push(step_report(table, step, Some(started.elapsed())));
            }
        }
    }
    for fix in plan.fixes.iter().filter(|_| fixes_written) {
        tracing::info!(schema = table.schema.as_str(), version = fix.version(), "history fixed");
    }
    Ok(Report::of(&table.schema, plan, done, fixes_written))
}

/// The error for a query string that failed: which step, and which steps committed before it.
async fn batch_failed<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
    batch: &Batch<'_, '_>,
    error: postgres::Error,
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
            return name_the_failing_step(session, table, timeouts, batch, &error).await;
        }
        // Each step committed on its own: the first whose effect is missing from the history failed.
        (None, TransactionMode::PerStep) => (first_unfinished(session, table, batch).await, None),
    };
    if batch.mode == TransactionMode::PerStep {
        committed.extend(batch.parts[..index].iter().map(|part| step_report(table, part.step, None)));
    }
    migration_failed(table, batch.parts[index].step, &error, script_start, committed)
}

/// The one-transaction query string failed without a position to say which step: replay it one step per round
/// trip, inside a transaction that is rolled back, to name the step that fails.
async fn name_the_failing_step<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
    batch: &Batch<'_, '_>,
    original: &postgres::Error,
) -> Error {
    let mut opening = table.open_sql(timeouts);
    if let Some(prologue) = batch.prologue {
        opening.push_str(&table.prologue_sql(prologue));
    }
    let opened = session.batch(&opening).await;
    let mut culprit = None;
    if opened.is_ok() {
        for part in &batch.parts {
            let step_sql = table.step_sql(part.step, timeouts);
            if let Err(error) = session.batch(&step_sql.sql).await {
                culprit =
                    Some(migration_failed(table, part.step, &error, Some(step_sql.script_start as isize), Vec::new()));
                break;
            }
        }
    }
    let _ = session.batch("ROLLBACK").await;
    match (culprit, opened, batch.prologue) {
        (Some(error), _, _) => error,
        (None, Err(error), Some(prologue)) => database(table, prologue.action(), error),
        // The failure did not repeat: report it against the first step, with the server's own words.
        _ => migration_failed(table, batch.parts[0].step, original, None, Vec::new()),
    }
}

/// The index of the first step of `batch` whose effect is not in the history: the one that failed.
async fn first_unfinished<S: Session>(session: &mut S, table: &HistoryTable, batch: &Batch<'_, '_>) -> usize {
    let applied: Vec<i64> = match read(session, table).await {
        Ok(rows) => rows.unwrap_or_default().iter().map(|a| a.version).collect(),
        Err(_) => return 0,
    };
    batch
        .parts
        .iter()
        .position(|part| {
            let recorded = applied.contains(&part.step.migration.version);
            recorded != (part.step.direction == migrate_core::Direction::Up)
        })
        .unwrap_or(0)
}

/// The durations the steps of a query string returned, in order.
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

fn step_report(table: &HistoryTable, step: &Step<'_>, duration: Option<Duration>) -> StepReport {
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

/// A no-transaction script: mark the version dirty, run each statement on its own, then mark it clean. A failure
/// leaves the row dirty, so the next run refuses until someone looks.
async fn run_untransacted<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
    step: &Step<'_>,
    committed: &[StepReport],
) -> Result<(), Error> {
    let started = Instant::now();
    let failed =
        |error: &postgres::Error, script_start| migration_failed(table, step, error, script_start, committed.to_vec());
    let saved = session.batch(&table.begin_untransacted(step, timeouts)).await.map_err(|e| failed(&e, None))?;
    let restore = restore_settings_sql(&saved);
    let mut outcome = Ok(());
    for (offset, statement) in split_statements(&step.script.sql) {
        if let Err(error) = session.batch(statement).await {
            let statement_start = step.script.sql[..offset].chars().count() as isize;
            outcome = Err(failed(&error, Some(-statement_start)));
            break;
        }
    }
    let finish = match outcome {
        Ok(()) => format!("{};\n{restore}", table.finish_untransacted(step, started.elapsed())),
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
    committed: Vec<StepReport>,
) -> Error {
    let script = step.script;
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
        committed,
    }
}

/// Add a step to a dry run; SQL that followed the previous step goes with it.
fn push_step(steps: &mut Vec<PlannedStep>, trailing: &mut String, step: PlannedStep) {
    if let Some(last) = steps.last_mut() {
        last.sql.push_str(&std::mem::take(trailing));
    }
    steps.push(step);
}

/// SQL outside any step: the prologue before the first step, trailing SQL after one.
fn between(steps: &[PlannedStep], prologue: &mut String, trailing: &mut String, text: &str) {
    if steps.is_empty() {
        prologue.push_str(text)
    } else {
        trailing.push_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::HistoryFix;
    use crate::target::Target;
    use migrate_core::{Migration, Script};

    fn migration(version: i64, sql: &str) -> Migration {
        Migration {
            version,
            name: format!("m{version}").into(),
            up: Script::new(format!("migrations/{version}_m{version}.up.sql"), sql.to_owned()),
            down: Some(Script::new(format!("migrations/{version}_m{version}.down.sql"), format!("SELECT -{version};"))),
        }
    }

    fn table() -> HistoryTable {
        HistoryTable::new(&SchemaName::new("tenant-1").unwrap(), "schema_migrations").unwrap()
    }

    /// All the SQL the engine would send, query string after query string, as [`compile`] builds it.
    fn sent(plan: &Plan<'_>) -> String {
        compile(&table(), Timeouts::default(), plan)
            .iter()
            .map(|send| match send {
                Send::Batch(batch) => batch.sql.clone(),
                Send::Untransacted(step) => render(&table(), Timeouts::default(), &only(plan, step)).sql(),
            })
            .collect()
    }

    /// A plan holding one step of `plan`.
    fn only<'m>(plan: &Plan<'m>, step: &Step<'m>) -> Plan<'m> {
        let mut one = plan.clone();
        one.prologue = None;
        one.steps = vec![*step];
        one.fixes = Vec::new();
        one
    }

    #[test]
    fn the_dry_run_renders_exactly_what_a_fresh_schema_is_sent() {
        let set =
            MigrationSet::from_migrations(vec![migration(1, "CREATE TABLE a (id int);"), migration(2, "SELECT 2;")]);
        let plan =
            plan("tenant-1", &set, &Found::NoSchema, Operation::Upgrade(Target::Head), PlanOptions::default()).unwrap();
        let preview = render(&table(), Timeouts::default(), &plan);
        assert_eq!(preview.sql(), sent(&plan));
        let prologue = preview.prologue.as_deref().unwrap();
        assert!(
            prologue.starts_with("BEGIN;\nSET LOCAL search_path TO \"tenant-1\";\nCREATE SCHEMA \"tenant-1\";"),
            "{prologue}"
        );
        assert!(!prologue.contains("COMMIT"), "one transaction: {prologue}");
        assert_eq!(preview.epilogue.as_deref(), Some("COMMIT;\n"));
        assert!(preview.steps[0].sql.contains("CREATE TABLE a (id int);"));
        assert!(preview.steps.iter().all(|s| !s.sql.contains("BEGIN")), "steps share the one transaction");
    }

    #[test]
    fn per_step_plans_commit_each_step_and_run_no_transaction_scripts_alone() {
        let set = MigrationSet::from_migrations(vec![
            migration(1, "CREATE TABLE a (id int);"),
            migration(2, "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON a (id);"),
            migration(3, "SELECT 3;"),
        ]);
        let plan =
            plan("tenant-1", &set, &Found::NoTable, Operation::Upgrade(Target::Head), PlanOptions::default()).unwrap();
        assert_eq!(plan.transaction, TransactionMode::PerStep);
        let sends = compile(&table(), Timeouts::default(), &plan);
        let shapes: Vec<&str> = sends
            .iter()
            .map(|s| match s {
                Send::Batch(b) if b.prologue.is_some() => "prologue",
                Send::Batch(_) => "batch",
                Send::Untransacted(_) => "untransacted",
            })
            .collect();
        assert_eq!(shapes, ["prologue", "batch", "untransacted", "batch"]);
        let preview = render(&table(), Timeouts::default(), &plan);
        assert_eq!(preview.sql(), sent(&plan));
        assert!(preview.prologue.as_deref().unwrap().ends_with("COMMIT;\n"), "the table is created first");
        assert!(preview.steps[0].sql.starts_with("BEGIN;\n") && preview.steps[0].sql.ends_with("COMMIT;\n"));
        assert!(preview.steps[1].sql.contains("CREATE INDEX CONCURRENTLY i ON a (id);\n"));
        assert!(!preview.steps[1].sql.contains("BEGIN"), "{}", preview.steps[1].sql);
        assert_eq!(preview.epilogue, None);
    }

    #[test]
    fn history_fixes_go_in_one_transaction_of_their_own() {
        let set = MigrationSet::from_migrations(vec![migration(1, "SELECT 1;")]);
        let mut plan = plan("tenant-1", &set, &Found::NoSchema, Operation::Repair, PlanOptions::default()).unwrap();
        plan.fixes = vec![HistoryFix::MarkApplied(1)];
        let preview = render(&table(), Timeouts::default(), &plan);
        assert_eq!(preview.sql(), sent(&plan));
        let epilogue = preview.epilogue.unwrap();
        assert!(epilogue.starts_with("BEGIN;\n") && epilogue.ends_with("COMMIT;\n"), "{epilogue}");
        assert!(epilogue.contains("UPDATE \"tenant-1\".\"schema_migrations\" SET dirty = false WHERE version = 1;"));
    }
}
