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

use std::time::{Duration, Instant};

use crate::compile::history::{
    binary_name, parse_history, Exists, HistoryTable, LockAttempt, Timeouts, ELAPSED_COLUMN, LOST_LOCK_SQLSTATE,
};
use crate::compile::{compile, render, Opening, Outgoing};
use crate::error::{Error, ErrorKind, LockHolder};
use crate::foreign::{parse_rows, ForeignHistory};
use crate::model::{AppliedMigration, OtherStep, Preview, Report, StepReport};
use crate::plan::{plan, plan_with_foreign, Found, HistoryFix, Operation, Plan, Refusal};
use crate::schema::SchemaName;
use crate::session::{Answer, Session, SqlState};
use crate::set::MigrationSet;
use crate::target::Target;
use migrate_core::Direction;

mod exchange;
mod failure;
mod options;
mod statements;
mod untransacted;
mod waiting;

pub(crate) use options::EngineOptions;
pub(crate) use waiting::log_waiting;
pub use waiting::Waiting;

pub(crate) use exchange::read;
use exchange::{database, history_read_failed, rollback, step_report};
use failure::{batch_failed, committed_before_guard};
use statements::Sender;
use untransacted::run_untransacted;

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
    let program = binary_name();
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
    // Query strings go whole until the lock's transaction finds Citus (see `statements`).
    let session = &mut Sender::new(session);
    // What this run saw when it started, to tell its own work from another process's at the end.
    let mut seen: Vec<i64> = Vec::new();
    if let Some(rows) = read(session, &table).await? {
        seen = rows.iter().map(|row| row.version).collect();
        // A refusal here may be transient (another replica mid-way through a no-transaction migration): only an
        // empty plan is trusted without the lock; anything else is decided again under it.
        if let Ok(plan) = plan(set, &Found::History(rows), operation, options.plan) {
            if plan.is_empty() {
                tracing::debug!(schema = schema.as_str(), "nothing to do");
                let version = plan.version_before;
                return Ok(Report {
                    schema: schema.to_string(),
                    version_before: version,
                    version_after: version,
                    steps: Vec::new(),
                    fixes: Vec::new(),
                    by_others: Vec::new(),
                });
            }
        }
    }
    let runner = runner_name();
    let mut done: Vec<StepReport> = Vec::new();
    let started_at = set.newest(seen.iter().copied());
    let mut operation = operation;
    let asked = operation;
    let mut attempts = 1;
    loop {
        let plan = lock_and_plan(session, set, options, &table, operation).await?;
        let first_of_plan = done.len();
        let executed = execute(session, &table, options, &plan, &runner, &mut done).await;
        if let Some((version, file)) = executed.as_ref().err().and_then(table_lock_timed_out) {
            // Rolled back whole: wait for the holder to finish, away from the table, then plan again.
            done = executed.err().map(|error| error.committed().to_vec()).unwrap_or_default();
            if attempts > options.lock_retries {
                let lock_timeout = options.timeouts.lock_timeout.unwrap_or_default();
                let kind =
                    ErrorKind::TableLocked { version, file, lock_timeout, attempts, committed: done, resumes_at: None };
                return Err(Error::new(schema.as_str(), kind));
            }
            tracing::warn!(schema = schema.as_str(), version, attempt = attempts, "a table lock timed out: retrying");
            session.pause(Duration::from_secs(1 << (attempts - 1).min(5))).await;
            attempts += 1;
            if options.is_interrupted() {
                return Err(Error::new(schema.as_str(), ErrorKind::Interrupted { committed: done }));
            }
            operation = remaining(operation, done.len() - first_of_plan);
            continue;
        }
        match executed? {
            Executed::Finished { fixes_written } => {
                // Built from what happened: the fixes written, and the steps that committed (earlier plans' too).
                let fixes = if fixes_written { plan.fixes.iter().map(HistoryFix::fix).collect() } else { Vec::new() };
                let applied = plan.applied_after(done[first_of_plan..].iter().map(|s| (s.direction, s.version)));
                let version_after = set.newest(applied.iter().copied());
                // Only steps move an upgrade or a downgrade; a reset drops everything and applies it again itself, and
                // the fixes of the others are this run's: for those, the report is of this run's plan alone.
                let (by_others, version_before) = match asked {
                    Operation::Upgrade(_) | Operation::Downgrade(_) => (by_others(&seen, &applied, &done), started_at),
                    _ => (Vec::new(), plan.version_before),
                };
                return Ok(Report {
                    schema: schema.to_string(),
                    version_before,
                    version_after,
                    steps: done,
                    fixes,
                    by_others,
                });
            }
            Executed::LostLock => {
                tracing::debug!(schema = schema.as_str(), "another process took the migration lock: planning again");
                operation = remaining(operation, done.len() - first_of_plan);
            }
        }
    }
}

/// The version and file of a transactional migration that failed on `lock_timeout` (rolled back whole, so it can
/// be tried again); `None` for any other error.
fn table_lock_timed_out(error: &Error) -> Option<(i64, String)> {
    match error.kind() {
        ErrorKind::MigrationFailed { version, file, code: Some(code), left_dirty: false, .. }
            if *code == SqlState::LOCK_NOT_AVAILABLE =>
        {
            Some((*version, file.clone()))
        }
        _ => None,
    }
}

/// What changed in the schema between what this run `seen` at its start and what is `applied` at its end, that
/// this run's `done` steps do not account for: another process's work.
fn by_others(seen: &[i64], applied: &[i64], done: &[StepReport]) -> Vec<OtherStep> {
    let ours =
        |direction: Direction, version: i64| done.iter().any(|s| s.direction == direction && s.version == version);
    let mut others: Vec<OtherStep> = applied
        .iter()
        .filter(|&&v| !seen.contains(&v) && !ours(Direction::Up, v))
        .map(|&version| OtherStep { version, direction: Direction::Up })
        .collect();
    others.extend(
        seen.iter()
            .filter(|&&v| !applied.contains(&v) && !ours(Direction::Down, v))
            .map(|&version| OtherStep { version, direction: Direction::Down }),
    );
    others.sort_by_key(|o| o.version);
    others
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
    session: &mut Sender<'_, S>,
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
        if options.is_interrupted() {
            return Err(Error::new(table.schema.as_str(), ErrorKind::Interrupted { committed: Vec::new() }));
        }
        session.pause(backoff.min(options.lock_wait.saturating_sub(waited))).await;
        backoff = (backoff * 2).min(Duration::from_millis(250));
    }
}

/// One attempt: open a transaction and take the lock. `None` when another process holds it (the transaction is
/// still open: roll it back); otherwise what exists, with the history read under the lock.
async fn locked_found<S: Session>(
    session: &mut Sender<'_, S>,
    table: &HistoryTable,
    timeouts: Timeouts,
) -> Result<Option<Found>, Error> {
    let answer =
        session.batch(&table.lock_sql(timeouts)).await.map_err(|e| database(table, "take the migration lock", e))?;
    let attempt = LockAttempt::of(&answer);
    session.one_statement_at_a_time(attempt.exists.citus);
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
        .batch(&format!("{add}{}", table.locked_select_sql(attempt.backend)))
        .await
        .map_err(|e| history_read_failed(table, e))?;
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
    for applied in history {
        if let Some(runner) = applied.state.runner() {
            let blocker = Blocker::Runner { runner: runner.to_owned(), version: applied.version };
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
    options: &EngineOptions,
    plan: &Plan<'_>,
    runner: &str,
    done: &mut Vec<StepReport>,
) -> Result<Executed, Error> {
    let timeouts = options.timeouts;
    let interrupted = |committed: &[StepReport]| {
        Error::new(table.schema.as_str(), ErrorKind::Interrupted { committed: committed.to_vec() })
    };
    if plan.is_empty() {
        session.batch("COMMIT").await.map_err(|e| database(table, "end the transaction", e))?;
        return Ok(Executed::Finished { fixes_written: false });
    }
    let mut fixes_written = false;
    for send in compile(table, timeouts, plan, runner, Opening::AlreadyOpen) {
        // Nothing new is started once the run is asked to stop; the open transaction (and its lock) ends here.
        if options.is_interrupted() {
            rollback(session).await;
            return Err(interrupted(done));
        }
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
                    let failed = batch_failed(session, table, timeouts, &batch, error, done.clone()).await;
                    // A query canceled because the run was stopped is an interruption, not a failed migration.
                    return Err(match options.is_interrupted() {
                        true => interrupted(failed.committed()),
                        false => failed,
                    });
                }
            },
            Outgoing::Untransacted(step) => {
                let started = Instant::now();
                run_untransacted(session, table, options, step, runner, done).await?;
                done.push(step_report(table, step, Some(started.elapsed())));
            }
        }
    }
    for fix in plan.fixes.iter().filter(|_| fixes_written) {
        tracing::info!(schema = table.schema.as_str(), version = fix.version(), "history fixed");
    }
    Ok(Executed::Finished { fixes_written })
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_wait_for_a_runner_that_shows_no_backend_says_so() {
        let waiting =
            Waiting { schema: "t".into(), waited: Duration::from_secs(12), running_version: Some(5), holder: None };
        let text = waiting.to_string();
        assert!(text.contains("migration 5 was claimed by a runner that shows no backend now"), "{text}");
        assert!(!text.contains("which is running"), "not claimed to be running: {text}");
    }
}
