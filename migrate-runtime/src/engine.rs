//! Read, lock, execute: the I/O around the pure planner, written once for both drivers. The engine decides
//! nothing: it reads what the planner needs, takes the lock, and executes the [`Plan`] it is given; the dry run
//! renders the very query strings the engine would send.
//!
//! No session state outlives a transaction, so the engine is correct through a transaction pooler (PgBouncer in
//! `pool_mode = transaction`) and through a direct connection alike:
//! - the migration lock is a transaction-level advisory lock, polled with `pg_try_advisory_xact_lock` (a session
//!   blocked on a lock would hold a snapshot that a `CREATE INDEX CONCURRENTLY` run by the holder must wait for),
//!   taken in the transaction that re-reads the history and runs the first steps, and released by its `COMMIT` or
//!   `ROLLBACK`: nothing is left on a pooled server connection, whatever happens to the client;
//! - every later transaction of a run opens with a guard that takes the lock again or fails with
//!   [`LOST_LOCK_SQLSTATE`]; the engine then re-reads and re-plans (another process may have done the rest);
//! - settings are `SET LOCAL`;
//! - a no-transaction script is claimed in a locked transaction (its history row records the runner, which way it
//!   goes and a lease), then runs statement by statement outside any transaction and lock, recording each statement
//!   done; another process that finds the claim waits while the runner is alive and resumes the script when the
//!   runner is gone, skipping what was done and dropping INVALID indexes an interrupted concurrent build left.
//!
//! Round trips are the cost that matters over thousands of schemas, so a plan is sent in as few query strings as it
//! can: an up-to-date schema costs one read; consecutive transactional steps go to the server in one query string
//! (each in its own transaction, or all in one), and a fresh schema is created and migrated in a single
//! transaction when every migration allows it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use migrate_core::Direction;

use crate::error::{Error, ErrorKind, LockHolder, Refusal};
use crate::foreign::{parse_rows, ForeignHistory};
use crate::history::{
    index_is_valid, parse_history, restore_settings_sql, AppliedMigration, Exists, HistoryTable, LockAttempt, Timeouts,
    ELAPSED_COLUMN, LOST_LOCK_DETAIL, LOST_LOCK_SQLSTATE,
};
use crate::plan::{
    plan, plan_with_foreign, Execution, Found, Operation, Plan, PlanOptions, Prologue, Step, TransactionMode,
};
use crate::report::{Fix, PlannedStep, Preview, Report, StepReport};
use crate::schema::SchemaName;
use crate::session::{Answer, QueryError, Session, SqlState};
use crate::set::MigrationSet;
use crate::sql::{created_index_name, line_and_column, qualify_relations, split_statements};
use crate::target::Target;

/// How the engine runs: the history table's name, what the planner accepts, how long to wait for the lock, the
/// session limits for migration SQL, and who hears about waiting.
#[derive(Clone)]
pub(crate) struct EngineOptions {
    pub history_table: String,
    /// Shared schemas after the schema in every migration's `search_path`.
    pub extra_search_path: Vec<SchemaName>,
    pub plan: PlanOptions,
    pub lock_wait: Duration,
    pub timeouts: Timeouts,
    pub on_wait: Arc<dyn Fn(&Waiting) + Send + Sync>,
    /// The service recorded as the owner of a history table the engine creates.
    pub service: String,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("history_table", &self.history_table)
            .field("extra_search_path", &self.extra_search_path)
            .field("plan", &self.plan)
            .field("lock_wait", &self.lock_wait)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// A run is waiting for another process: for the schema's migration lock, or for the runner of a no-transaction
/// migration. Reported about a second into the wait and then every ten seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The schema.
    pub schema: String,
    /// How long we have waited.
    pub waited: Duration,
    /// The no-transaction migration being run by another process, when that is what we wait for.
    pub running_version: Option<i64>,
    /// Who we wait for, when it could be seen.
    pub holder: Option<LockHolder>,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let holder = self.holder.as_ref().map_or("another process".to_owned(), ToString::to_string);
        match self.running_version {
            Some(version) => {
                write!(f, "schema {:?}: waiting for {holder}, which is running migration {version}", self.schema)?
            }
            None => write!(f, "schema {:?}: waiting for the migration lock held by {holder}", self.schema)?,
        }
        write!(f, " (waited {})", crate::error::human_duration(self.waited))
    }
}

/// The default report of a wait: a warning in the service's log.
pub(crate) fn log_waiting(waiting: &Waiting) {
    tracing::warn!(schema = waiting.schema.as_str(), "{waiting}");
}

/// The history rows, or `None` when the history table (or the schema) does not exist. PostgreSQL reports a missing
/// schema and a missing table alike (`undefined_table`), so the two are told apart only when it matters.
pub(crate) async fn read<S: Session>(
    session: &mut S,
    table: &HistoryTable,
) -> Result<Option<Vec<AppliedMigration>>, Error> {
    match session.batch(&table.select_sql()).await {
        Ok(answer) => Ok(Some(parse_history(table, &answer)?)),
        Err(e) if e.code() == Some(SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(source) => Err(database(table, "read the history table", source)),
    }
}

fn database(table: &HistoryTable, action: &'static str, source: QueryError) -> Error {
    Error::new(table.schema.as_str(), ErrorKind::Database { action, source })
}

/// The history table of `schema` as the options name it, owned by the options' service.
fn history_table(schema: &SchemaName, options: &EngineOptions) -> Result<HistoryTable, Error> {
    Ok(HistoryTable::new(schema, &options.history_table)
        .map_err(|invalid| Error::new(schema.as_str(), invalid))?
        .with_service(&options.service)
        .with_extra_search_path(&options.extra_search_path))
}

/// A name for this run's connection while it runs a no-transaction script, unique among runs, so another process
/// can see whether the runner is still there (`pg_stat_activity.application_name`, at most 63 bytes).
fn runner_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let program = crate::history::binary_name();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let tag = format!(" migrate {}.{nanos:x}.{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let room = 63 - tag.len();
    let mut program: String = program.chars().filter(|c| c.is_ascii_graphic()).collect();
    while program.len() > room {
        program.pop();
    }
    format!("{program}{tag}")
}

/// Run `operation` on `schema`. The history is read without a lock and, when the plan from it is empty, nothing
/// else is sent: an up-to-date schema costs one round trip. Otherwise the schema's lock is taken in a transaction,
/// the history re-read and planned again under it, and the plan executed; when another process takes the lock
/// between two of our transactions, the rest is re-read and re-planned.
pub(crate) async fn run<S: Session>(
    session: &mut S,
    set: &MigrationSet,
    options: &EngineOptions,
    schema: &SchemaName,
    operation: Operation,
) -> Result<Report, Error> {
    let table = history_table(schema, options)?;
    if let Some(rows) = read(session, &table).await? {
        // A refusal here may be transient (another replica mid-way through a no-transaction migration): only an
        // empty plan is trusted without the lock; anything else is decided again under it.
        if let Ok(plan) = plan(set, &Found::History(rows), operation, options.plan) {
            if plan.is_empty() {
                tracing::debug!(schema = schema.as_str(), "nothing to do");
                return Ok(Report::of(schema, plan.version_before, &plan, Vec::new(), Vec::new()));
            }
        }
    }
    let runner = runner_name();
    let mut done: Vec<StepReport> = Vec::new();
    let mut version_before = None;
    let mut operation = operation;
    loop {
        let plan = lock_and_plan(session, set, options, &table, operation).await?;
        let before = *version_before.get_or_insert(plan.version_before);
        let first_of_plan = done.len();
        match execute(session, &table, options.timeouts, &plan, &runner, &mut done).await? {
            Executed::Finished { fixes_written } => {
                let fixes = if fixes_written { plan.fixes.iter().map(Fix::of).collect() } else { Vec::new() };
                let after = plan.version_after(done[first_of_plan..].iter().map(|s| (s.direction, s.version)));
                let mut report = Report::of(schema, before, &plan, done, fixes);
                report.version_after = after;
                return Ok(report);
            }
            Executed::LostLock => {
                tracing::debug!(schema = schema.as_str(), "another process took the migration lock: planning again");
                operation = remaining(operation, done.len() - first_of_plan);
            }
        }
    }
}

/// What is left of `operation` once `done` of its steps committed: a reset that has run is now an upgrade, and a
/// relative target counts what was done.
fn remaining(operation: Operation, done: usize) -> Operation {
    let done = done as i64;
    match operation {
        Operation::Reset => Operation::Upgrade(Target::Head),
        Operation::Upgrade(Target::Relative(n)) => Operation::Upgrade(Target::Relative((n - done).max(0))),
        Operation::Downgrade(Target::Relative(n)) => Operation::Downgrade(Target::Relative((n + done).min(0))),
        other => other,
    }
}

/// What we wait for while polling.
enum Blocker {
    /// The schema's migration lock.
    Lock,
    /// The runner of a no-transaction migration (its application name).
    Runner { runner: String, version: i64 },
}

/// Open a transaction holding the schema's migration lock, read what the planner needs in it, and plan. Polls:
/// between attempts nothing is open. Waiting is reported after about a second and then every ten seconds.
async fn lock_and_plan<'m, S: Session>(
    session: &mut S,
    set: &'m MigrationSet,
    options: &EngineOptions,
    table: &HistoryTable,
    operation: Operation,
) -> Result<Plan<'m>, Error> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(10);
    let mut next_report = Duration::from_secs(1);
    loop {
        let read = match locked_found(session, table, options.timeouts).await {
            Ok(Some(found)) => read_foreign(session, table, operation).await.map(|foreign| Some((found, foreign))),
            other => other.map(|found| found.map(|found| (found, None))),
        };
        let blocker = match read {
            Ok(Some((found, foreign))) => {
                match plan_with_foreign(set, &found, foreign.as_ref(), operation, options.plan) {
                    Ok(plan) => return Ok(plan),
                    Err(Refusal::InProgress { runner, version }) => Blocker::Runner { runner, version },
                    Err(refusal) => {
                        rollback(session).await;
                        return Err(Error::new(table.schema.as_str(), refusal));
                    }
                }
            }
            Ok(None) => Blocker::Lock,
            Err(error) => {
                rollback(session).await;
                return Err(error);
            }
        };
        rollback(session).await;
        let waited = started.elapsed();
        if waited >= next_report || waited >= options.lock_wait {
            let holder = holder(session, table, &blocker).await;
            if waited >= options.lock_wait {
                return Err(Error::new(table.schema.as_str(), ErrorKind::LockTimeout { waited, holder }));
            }
            let running_version = match blocker {
                Blocker::Runner { version, .. } => Some(version),
                Blocker::Lock => None,
            };
            (options.on_wait)(&Waiting { schema: table.schema.to_string(), waited, running_version, holder });
            next_report = waited + Duration::from_secs(10);
        }
        session.pause(backoff.min(options.lock_wait.saturating_sub(waited))).await;
        backoff = (backoff * 2).min(Duration::from_millis(250));
    }
}

/// One attempt: open a transaction and take the lock. `None` when another process holds it (the transaction is
/// still open: roll it back); otherwise what exists, with the history read under the lock.
async fn locked_found<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
) -> Result<Option<Found>, Error> {
    let answer =
        session.batch(&table.lock_sql(timeouts)).await.map_err(|e| database(table, "take the migration lock", e))?;
    let attempt = LockAttempt::of(&answer);
    if !attempt.locked {
        return Ok(None);
    }
    if !attempt.exists.schema {
        return Ok(Some(Found::NoSchema));
    }
    if !attempt.exists.table {
        return Ok(Some(Found::NoTable));
    }
    // A history table made by an older version gains the progress columns, under the lock.
    let add = if attempt.exists.progress_columns { String::new() } else { table.add_progress_columns_sql() };
    let answer = session
        .batch(&format!("{add}{}", table.locked_select_sql()))
        .await
        .map_err(|e| database(table, "read the history table", e))?;
    Ok(Some(Found::History(parse_history(table, &answer)?)))
}

/// For [`Operation::Adopt`]: the other tool's history rows, or `None` when its table does not exist. Read in the
/// transaction that holds the lock when called from [`lock_and_plan`]; the existence check comes first, so a
/// missing table aborts nothing.
async fn read_foreign<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    operation: Operation,
) -> Result<Option<ForeignHistory>, Error> {
    let Operation::Adopt(tool) = operation else { return Ok(None) };
    let schema = &table.schema;
    let failed = |e| database(table, "read the other tool's history table", e);
    let answer = session.batch(&tool.exists_sql(schema)).await.map_err(failed)?;
    if !tool.exists_in(&answer) {
        return Ok(None);
    }
    let answer = session.batch(&tool.select_sql(schema)).await.map_err(failed)?;
    let rows = parse_rows(&answer).map_err(|problem| {
        Error::new(schema.as_str(), ErrorKind::CorruptHistory { table: tool.qualified(schema), problem })
    })?;
    Ok(Some(ForeignHistory { tool, rows }))
}

async fn rollback<S: Session>(session: &mut S) {
    let _ = session.batch("ROLLBACK").await;
}

/// Who we wait for: the lock's holder from `pg_locks`, or the runner's backend from `pg_stat_activity`.
async fn holder<S: Session>(session: &mut S, table: &HistoryTable, blocker: &Blocker) -> Option<LockHolder> {
    let sql = match blocker {
        Blocker::Lock => table.lock_holder_sql(),
        Blocker::Runner { runner, .. } => table.runner_sql(runner),
    };
    LockHolder::of(&session.batch(&sql).await.ok()?)
}

/// Who is migrating the schema right now: the holder of its migration lock, else the live runner of one of its
/// no-transaction migrations.
pub(crate) async fn migrating_now<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    history: &[AppliedMigration],
) -> Option<LockHolder> {
    if let Some(holder) = holder(session, table, &Blocker::Lock).await {
        return Some(holder);
    }
    for applied in history.iter().filter(|a| a.dirty) {
        if let Some(runner) = &applied.progress.runner {
            let blocker = Blocker::Runner { runner: runner.clone(), version: applied.version };
            if let Some(holder) = holder(session, table, &blocker).await {
                return Some(holder);
            }
        }
    }
    None
}

/// The plan for `operation` and the exact SQL a run would send, without taking the lock or changing anything.
pub(crate) async fn preview<S: Session>(
    session: &mut S,
    set: &MigrationSet,
    options: &EngineOptions,
    schema: &SchemaName,
    operation: Operation,
) -> Result<Preview, Error> {
    let table = history_table(schema, options)?;
    let found = match read(session, &table).await? {
        Some(rows) => Found::History(rows),
        None => {
            let answer =
                session.batch(&table.exists_sql()).await.map_err(|e| database(&table, "look up the schema", e))?;
            if Exists::of(&answer).schema {
                Found::NoTable
            } else {
                Found::NoSchema
            }
        }
    };
    let foreign = match found {
        Found::NoSchema => None,
        _ => read_foreign(session, &table, operation).await?,
    };
    let plan = plan_with_foreign(set, &found, foreign.as_ref(), operation, options.plan)
        .map_err(|refusal| Error::new(schema.as_str(), refusal))?;
    Ok(render(&table, options.timeouts, &plan))
}

/// One query string the engine sends, or one no-transaction step (sent statement by statement).
enum Outgoing<'p, 'm> {
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

    /// A step; in per-step mode its transaction's opening (`open`) comes first and its `COMMIT` after.
    fn push_step(&mut self, table: &HistoryTable, step: &'p Step<'m>, timeouts: Timeouts, open: &str) {
        let start = self.sql.len();
        let own_transaction = self.mode == TransactionMode::PerStep;
        self.push(open);
        let step_sql = table.step_sql(step, timeouts);
        let script_start = self.chars + step_sql.script_start;
        self.push(&step_sql.sql);
        if own_transaction {
            self.push(&table.commit_sql());
        }
        self.parts.push(Part { step, range: start..self.sql.len(), script_start });
    }

    /// The index of the part whose script holds PostgreSQL's error position.
    fn part_at(&self, error: &QueryError) -> Option<usize> {
        let position = error.server()?.position?;
        self.parts.iter().rposition(|part| part.script_start < position)
    }
}

/// How the first transaction of a plan begins.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// The engine opened it and took the lock before planning: nothing to send.
    AlreadyOpen,
    /// Shown by the dry run: the statement that opens it and takes the lock.
    Shown,
}

/// The plan as the query strings the engine sends, in order. The first transaction is the one that took the lock;
/// each later one opens with a guard that takes it again. A no-transaction step is claimed in a transaction first.
fn compile<'p, 'm>(
    table: &HistoryTable,
    timeouts: Timeouts,
    plan: &'p Plan<'m>,
    runner: &str,
    opening: Opening,
) -> Vec<Outgoing<'p, 'm>> {
    let mut first = true;
    // `committed_before`: the steps of the query string in progress that commit before this transaction.
    // `step`: the step the transaction runs or claims, whose row the guard checks.
    let mut open = |committed_before: usize, step: Option<&Step<'_>>| match (std::mem::take(&mut first), opening) {
        (true, Opening::AlreadyOpen) => String::new(),
        (true, Opening::Shown) => table.lock_sql(timeouts),
        (false, _) => table.guarded_open_sql(timeouts, committed_before, step),
    };
    let fixes_sql: String = plan.fixes.iter().map(|fix| table.fix_sql(fix)).collect();
    if plan.transaction == TransactionMode::Single {
        let mut batch = Batch::new(TransactionMode::Single);
        batch.push(&open(batch.parts.len(), None));
        if let Some(prologue) = plan.prologue {
            batch.push(&table.prologue_sql(prologue));
            batch.prologue = Some(prologue);
        }
        for step in &plan.steps {
            batch.push_step(table, step, timeouts, "");
        }
        batch.push(&fixes_sql);
        batch.fixes = !plan.fixes.is_empty();
        batch.push(&match plan.history_it_creates() {
            Some(applied) => table.commit_creating_sql(applied),
            None => table.commit_sql(),
        });
        return vec![Outgoing::Batch(batch)];
    }
    let mut sends = Vec::new();
    let mut batch = Batch::new(TransactionMode::PerStep);
    if let Some(prologue) = plan.prologue {
        // A query string of its own: when it fails, nothing after it ran, and the error is the prologue's.
        batch.push(&open(batch.parts.len(), None));
        batch.push(&table.prologue_sql(prologue));
        batch.push(&table.commit_sql());
        batch.prologue = Some(prologue);
        sends.push(Outgoing::Batch(std::mem::replace(&mut batch, Batch::new(TransactionMode::PerStep))));
    }
    for step in &plan.steps {
        if step.execution == Execution::Untransacted {
            // The claim ends the query string in progress; the script's statements follow on their own.
            batch.push(&open(batch.parts.len(), Some(step)));
            batch.push(&table.claim_sql(step, runner, batch.parts.len()));
            batch.push(&table.commit_sql());
            sends.push(Outgoing::Batch(std::mem::replace(&mut batch, Batch::new(TransactionMode::PerStep))));
            sends.push(Outgoing::Untransacted(step));
        } else {
            let opening = open(batch.parts.len(), Some(step));
            batch.push_step(table, step, timeouts, &opening);
        }
    }
    if !plan.fixes.is_empty() {
        batch.push(&open(batch.parts.len(), None));
        batch.push(&fixes_sql);
        batch.push(&table.commit_sql());
        batch.fixes = true;
    }
    if !batch.sql.is_empty() {
        sends.push(Outgoing::Batch(batch));
    }
    sends
}

/// What the dry run shows: the same query strings [`compile`] builds for [`execute`], cut at the steps. SQL before
/// the first step is the prologue, SQL after the last one the epilogue; SQL between two steps stays with the
/// earlier one.
fn render(table: &HistoryTable, timeouts: Timeouts, plan: &Plan<'_>) -> Preview {
    let runner = "<runner>";
    let mut prologue = String::new();
    let mut steps: Vec<PlannedStep> = Vec::new();
    let mut trailing = String::new();
    for send in compile(table, timeouts, plan, runner, Opening::Shown) {
        match send {
            // History fixes are the epilogue, with or without steps before them.
            Outgoing::Batch(batch) if batch.fixes && batch.parts.is_empty() => trailing.push_str(&batch.sql),
            Outgoing::Batch(batch) => {
                let mut at = 0;
                for part in &batch.parts {
                    between(&steps, &mut prologue, &mut trailing, &batch.sql[at..part.range.start]);
                    push_step(&mut steps, &mut trailing, planned(part.step, batch.sql[part.range.clone()].to_owned()));
                    at = part.range.end;
                }
                between(&steps, &mut prologue, &mut trailing, &batch.sql[at..]);
            }
            Outgoing::Untransacted(step) => {
                let mut sql = table.untransacted_settings_sql(runner, timeouts);
                let from = step.resume_from.unwrap_or(0);
                if from > 0 {
                    sql.push_str(&format!(
                        "-- resumed: the first {from} statement(s) were done by an interrupted run\n"
                    ));
                }
                for (i, (_, statement)) in split_statements(&step.script.sql).into_iter().enumerate().skip(from) {
                    // As `run_statement` sends it: a concurrent index statement on its own, qualified; any other
                    // statement in a transaction with its record (or on its own, if PostgreSQL refuses that).
                    let bare = qualify_relations(statement.trim(), &table.schema.quoted());
                    if bare != statement.trim() {
                        sql.push_str(&format!("{bare};\n{};\n", table.progress_sql(step, runner, i + 1)));
                    } else {
                        sql.push_str(&table.statement_in_transaction_sql(timeouts, &bare, step, runner, i + 1));
                    }
                }
                sql.push_str(&table.finish_untransacted(step, runner, Duration::ZERO));
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
        execution: step.execution,
        sql,
    }
}

/// How executing a plan ended.
enum Executed {
    /// Every query string ran.
    Finished { fixes_written: bool },
    /// Another process took the lock between two of our transactions: what committed is in `done`; plan again.
    LostLock,
}

/// Execute `plan`, whose first transaction is open and holds the lock: every query string in order, appending each
/// step that commits to `done`. A failure reports the steps that committed before it.
async fn execute<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
    plan: &Plan<'_>,
    runner: &str,
    done: &mut Vec<StepReport>,
) -> Result<Executed, Error> {
    if plan.is_empty() {
        session.batch("COMMIT").await.map_err(|e| database(table, "end the transaction", e))?;
        return Ok(Executed::Finished { fixes_written: false });
    }
    let mut fixes_written = false;
    for send in compile(table, timeouts, plan, runner, Opening::AlreadyOpen) {
        match send {
            Outgoing::Batch(batch) => match session.batch(&batch.sql).await {
                Ok(answer) => {
                    let durations = step_durations(&answer);
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
                    rollback(session).await;
                    if error.code() == Some(LOST_LOCK_SQLSTATE) {
                        let index = committed_before_guard(&error).unwrap_or(0).min(batch.parts.len());
                        done.extend(batch.parts[..index].iter().map(|part| step_report(table, part.step, None)));
                        return Ok(Executed::LostLock);
                    }
                    return Err(batch_failed(session, table, timeouts, &batch, error, done.clone()).await);
                }
            },
            Outgoing::Untransacted(step) => {
                let started = Instant::now();
                run_untransacted(session, table, timeouts, step, runner, done).await?;
                done.push(step_report(table, step, Some(started.elapsed())));
            }
        }
    }
    for fix in plan.fixes.iter().filter(|_| fixes_written) {
        tracing::info!(schema = table.schema.as_str(), version = fix.version(), "history fixed");
    }
    Ok(Executed::Finished { fixes_written })
}

/// How many steps of a query string committed before its lost-lock guard failed, from the guard's detail.
fn committed_before_guard(error: &QueryError) -> Option<usize> {
    error.server()?.detail.as_deref()?.strip_prefix(LOST_LOCK_DETAIL)?.parse().ok()
}

/// The error for a query string that failed: which step, and which steps committed before it.
async fn batch_failed<S: Session>(
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
        Ok(rows) => rows.unwrap_or_default().iter().filter(|a| !a.dirty).map(|a| a.version).collect(),
        Err(_) => return 0,
    };
    batch
        .parts
        .iter()
        .position(|part| applied.contains(&part.step.migration.version) != (part.step.direction == Direction::Up))
        .unwrap_or(batch.parts.len())
}

/// The durations the steps of a query string returned, in order.
fn step_durations(answer: &Answer) -> Vec<Duration> {
    answer
        .rows()
        .iter()
        .filter(|row| row.first_column() == Some(ELAPSED_COLUMN))
        .filter_map(|row| row.first_value()?.parse().ok().map(Duration::from_millis))
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

/// A claimed no-transaction script: its statements one by one, outside any transaction, each recorded when done.
/// A resumed script skips what an interrupted run did, after dropping the INVALID indexes an interrupted concurrent
/// build left, and skips an index build the interrupted run finished but could not record. A statement that fails
/// records PostgreSQL's message, so later runs refuse until someone looks.
async fn run_untransacted<S: Session>(
    session: &mut S,
    table: &HistoryTable,
    timeouts: Timeouts,
    step: &Step<'_>,
    runner: &str,
    committed: &[StepReport],
) -> Result<(), Error> {
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
        drop_invalid_indexes(session, table).await?;
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
            match run_statement(session, table, timeouts, step, runner, statement, i + 1).await {
                Ok(()) => continue,
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
    let finish = match outcome {
        Ok(()) => format!("{};\n{restore}", table.finish_untransacted(step, runner, started.elapsed())),
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
    match session.batch(&bare).await {
        Ok(_) => session.batch(&table.progress_sql(step, runner, done)).await.map(|_| ()).map_err(|e| (e, None)),
        // A qualified name shifts positions: trust them only when the text is unchanged.
        Err(error) => Err((error, (bare == statement).then_some(0))),
    }
}

/// Drop the schema's INVALID indexes: what an interrupted `CREATE INDEX CONCURRENTLY` leaves behind, and what
/// `CREATE INDEX CONCURRENTLY IF NOT EXISTS` would otherwise accept as done.
async fn drop_invalid_indexes<S: Session>(session: &mut S, table: &HistoryTable) -> Result<(), Error> {
    let answer = session
        .batch(&table.invalid_indexes_sql())
        .await
        .map_err(|e| database(table, "look for invalid indexes", e))?;
    let invalid: Vec<String> = answer.rows().iter().filter_map(|row| row.first_value().map(str::to_owned)).collect();
    for index in invalid {
        tracing::info!(schema = table.schema.as_str(), index, "dropping an invalid index left by an interrupted build");
        session
            .batch(&format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"))
            .await
            .map_err(|e| database(table, "drop an invalid index", e))?;
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

/// Build the error for a failed step. `script_start` is where the script starts in the query string that failed, in
/// characters (negative when the query string is a statement that starts inside the script); `None` when the failed
/// query held no part of the script or the position is not to be trusted.
fn migration_failed(
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

    /// The query strings the engine sends for a plan of transactional steps, as the dry run shows them.
    fn sent(plan: &Plan<'_>) -> String {
        compile(&table(), Timeouts::default(), plan, "<runner>", Opening::Shown)
            .iter()
            .map(|send| match send {
                Outgoing::Batch(batch) => batch.sql.clone(),
                Outgoing::Untransacted(_) => unreachable!("transactional plans only"),
            })
            .collect()
    }

    fn upgrade(set: &MigrationSet, found: Found) -> Plan<'_> {
        plan(set, &found, Operation::Upgrade(Target::Head), PlanOptions::default()).unwrap()
    }

    #[test]
    fn the_dry_run_renders_exactly_what_a_fresh_schema_is_sent() {
        let set =
            MigrationSet::from_migrations(vec![migration(1, "CREATE TABLE a (id int);"), migration(2, "SELECT 2;")]);
        let plan = upgrade(&set, Found::NoSchema);
        let preview = render(&table(), Timeouts::default(), &plan);
        assert_eq!(preview.sql(), sent(&plan));
        let prologue = preview.prologue.as_deref().unwrap();
        assert!(prologue.starts_with("BEGIN;\nSET LOCAL search_path TO \"tenant-1\";\n"), "{prologue}");
        assert!(prologue.contains("pg_try_advisory_xact_lock("), "the lock is the transaction's: {prologue}");
        assert!(prologue.contains("CREATE SCHEMA \"tenant-1\";"), "{prologue}");
        assert!(!prologue.contains("COMMIT"), "one transaction: {prologue}");
        let epilogue = preview.epilogue.as_deref().unwrap();
        assert_eq!(epilogue, table().commit_creating_sql(set.iter()), "the digest is known: a literal, then COMMIT");
        assert!(!epilogue.contains("UPDATE"), "the trigger is not asked to compute it: {epilogue}");
        assert!(preview.steps[0].sql.contains("CREATE TABLE a (id int);"));
        assert!(preview.steps.iter().all(|s| !s.sql.contains("BEGIN")), "steps share the one transaction");
    }

    #[test]
    fn a_schema_that_exists_has_its_digest_computed_from_its_rows() {
        let set =
            MigrationSet::from_migrations(vec![migration(1, "CREATE TABLE a (id int);"), migration(2, "SELECT 2;")]);
        let options = PlanOptions { single_transaction: true, ..PlanOptions::default() };
        for found in [Found::NoTable, Found::History(Vec::new())] {
            let plan = plan(&set, &found, Operation::Upgrade(Target::Head), options).unwrap();
            assert_eq!(plan.transaction, TransactionMode::Single);
            assert!(plan.history_it_creates().is_none(), "{found:?}: others may have written to the table");
            assert!(sent(&plan).ends_with(&table().commit_sql()), "{found:?}");
        }
    }

    #[test]
    fn later_transactions_of_a_run_take_the_lock_again_or_fail() {
        let set = MigrationSet::from_migrations(vec![
            migration(1, "CREATE TABLE a (id int);"),
            migration(2, "SELECT 2;"),
            migration(3, "SELECT 3;"),
        ]);
        let plan = upgrade(&set, Found::History(Vec::new()));
        assert_eq!(plan.transaction, TransactionMode::PerStep);
        let preview = render(&table(), Timeouts::default(), &plan);
        assert_eq!(preview.sql(), sent(&plan));
        let first = &preview.steps[0].sql;
        assert!(first.starts_with("BEGIN;\n") && first.contains("pg_try_advisory_xact_lock"), "{first}");
        for later in &preview.steps[1..] {
            assert!(later.sql.contains(&format!("ERRCODE = '{LOST_LOCK_SQLSTATE}'")), "{}", later.sql);
            assert!(later.sql.ends_with("COMMIT;\n"));
        }
        let all = preview.sql();
        assert!(!all.contains("pg_advisory_lock(") && !all.contains("pg_advisory_unlock"), "no session lock: {all}");
        // Executing, the first transaction is already open and locked: nothing opens it again.
        let executed = compile(&table(), Timeouts::default(), &plan, "r", Opening::AlreadyOpen);
        let Outgoing::Batch(batch) = &executed[0] else { unreachable!() };
        assert!(batch.sql.starts_with("SET LOCAL search_path"), "{}", batch.sql);
    }

    #[test]
    fn a_no_transaction_step_is_claimed_in_a_transaction_then_runs_alone() {
        let set = MigrationSet::from_migrations(vec![
            migration(1, "CREATE TABLE a (id int);"),
            migration(2, "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON a (id);"),
            migration(3, "SELECT 3;"),
        ]);
        let plan = upgrade(&set, Found::NoTable);
        assert_eq!(plan.transaction, TransactionMode::PerStep);
        let sends = compile(&table(), Timeouts::default(), &plan, "svc migrate 1", Opening::AlreadyOpen);
        let shapes: Vec<String> = sends
            .iter()
            .map(|s| match s {
                Outgoing::Batch(b) => format!("{} step(s), prologue {}", b.parts.len(), b.prologue.is_some()),
                Outgoing::Untransacted(step) => format!("untransacted {}", step.migration.version),
            })
            .collect();
        assert_eq!(
            shapes,
            ["0 step(s), prologue true", "1 step(s), prologue false", "untransacted 2", "1 step(s), prologue false"]
        );
        let Outgoing::Batch(claim) = &sends[1] else { unreachable!() };
        assert!(claim.sql.contains("runner = 'svc migrate 1'"), "{}", claim.sql);
        assert!(claim.sql.contains("claim_direction = 'up'"), "{}", claim.sql);
        let preview = render(&table(), Timeouts::default(), &plan);
        assert!(preview.prologue.as_deref().unwrap().ends_with("COMMIT;\n"), "the table is created first");
        let untransacted = &preview.steps[1].sql;
        assert!(untransacted.contains("SET application_name = '<runner>';"), "{untransacted}");
        assert!(untransacted.contains("CREATE INDEX CONCURRENTLY i ON \"tenant-1\".a (id);\nUPDATE"), "{untransacted}");
        assert!(!untransacted.contains("BEGIN"), "{untransacted}");
        assert_eq!(preview.epilogue, None);
    }

    #[test]
    fn history_fixes_go_in_one_transaction_of_their_own() {
        let set = MigrationSet::from_migrations(vec![migration(1, "SELECT 1;")]);
        let mut plan = plan(&set, &Found::NoSchema, Operation::Repair, PlanOptions::default()).unwrap();
        plan.fixes = vec![HistoryFix::MarkApplied(1)];
        let preview = render(&table(), Timeouts::default(), &plan);
        assert_eq!(preview.sql(), sent(&plan));
        let epilogue = preview.epilogue.unwrap();
        assert!(epilogue.starts_with("BEGIN;\n") && epilogue.ends_with("COMMIT;\n"), "{epilogue}");
        assert!(epilogue.contains("UPDATE \"tenant-1\".\"schema_migrations\" SET dirty = false WHERE version = 1;"));
    }

    #[test]
    fn what_remains_of_an_operation_after_some_steps() {
        assert_eq!(remaining(Operation::Reset, 3), Operation::Upgrade(Target::Head));
        assert_eq!(remaining(Operation::Upgrade(Target::Relative(5)), 2), Operation::Upgrade(Target::Relative(3)));
        assert_eq!(
            remaining(Operation::Downgrade(Target::Relative(-2)), 1),
            Operation::Downgrade(Target::Relative(-1))
        );
        assert_eq!(remaining(Operation::Downgrade(Target::Base), 4), Operation::Downgrade(Target::Base));
    }

    #[test]
    fn runner_names_fit_in_an_application_name() {
        let (a, b) = (runner_name(), runner_name());
        assert_ne!(a, b);
        assert!(a.len() <= 63 && a.contains(" migrate "), "{a}");
    }

    #[test]
    fn baseline_is_the_history_table_and_rows_in_one_transaction() {
        let set =
            MigrationSet::from_migrations(vec![migration(1, "CREATE TABLE a (id int);"), migration(2, "SELECT 2;")]);
        let plan = plan(&set, &Found::NoTable, Operation::Baseline { version: 2 }, PlanOptions::default()).unwrap();
        let preview = render(&table(), Timeouts::default(), &plan);
        assert_eq!(preview.sql(), sent(&plan));
        let sql = preview.sql();
        assert!(!sql.contains("CREATE TABLE a"), "no migration runs: {sql}");
        assert!(!sql.contains("CREATE SCHEMA"), "the schema is not created: {sql}");
        assert!(sql.contains("CREATE TABLE IF NOT EXISTS \"tenant-1\".\"schema_migrations\""), "{sql}");
        assert_eq!(sql.matches("current_user || ' (baseline)'").count(), 2, "{sql}");
        assert_eq!(sql.matches("COMMIT").count(), 1, "{sql}");
    }

    #[test]
    fn a_fresh_schema_builds_its_concurrent_index_plainly_in_the_creating_transaction() {
        let set = MigrationSet::from_migrations(vec![
            migration(1, "CREATE TABLE a (id int);"),
            migration(2, "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON a (id);"),
            migration(3, "SELECT 3;"),
        ]);
        let plan = upgrade(&set, Found::NoSchema);
        let preview = render(&table(), Timeouts::default(), &plan);
        assert_eq!(preview.sql(), sent(&plan));
        let sql = preview.sql();
        assert_eq!((sql.matches("BEGIN;\n").count(), sql.matches("COMMIT;\n").count()), (1, 1), "{sql}");
        assert!(sql.contains("-- migrate:no-transaction\nCREATE INDEX i ON \"tenant-1\".a (id);"), "{sql}");
        assert!(!sql.contains("CONCURRENTLY") && !sql.contains("$claim$"), "{sql}");
        assert_eq!(preview.steps[1].execution, Execution::InCreatingTransaction);
    }

    #[test]
    fn shared_schemas_follow_the_schema_in_every_search_path() {
        let set = MigrationSet::from_migrations(vec![
            migration(1, "CREATE TABLE a (id int);"),
            migration(2, "-- migrate:no-transaction\nVACUUM a;"),
        ]);
        let plan = upgrade(&set, Found::NoSchema);
        let shared = [SchemaName::new("extensions").unwrap(), SchemaName::new("tenant-1").unwrap()];
        let table = table().with_extra_search_path(&shared);
        let sql = render(&table, Timeouts::default(), &plan).sql();
        assert!(!sql.contains("search_path TO \"tenant-1\";"), "every setting has the shared schema: {sql}");
        assert!(sql.contains("SET LOCAL search_path TO \"tenant-1\", \"extensions\";"), "{sql}");
        assert!(sql.contains("SET search_path TO \"tenant-1\", \"extensions\";"), "no-transaction too: {sql}");
        assert!(sql.contains("INSERT INTO \"tenant-1\".\"schema_migrations\""), "history qualified: {sql}");
    }
}
