//! The planner: (operation, options, embedded set, what was read) → a [`Plan`] value, or a typed refusal. Pure: no
//! I/O, so every operation and every divergent, missing, repeated and out-of-order case is unit-tested without a
//! database. The engine executes a `Plan`; the dry run renders the same `Plan`.
//!
//! Versions are ordered as the set orders them (numerically for most layouts, as strings for diesel's), never by
//! comparing the numbers themselves.

use migrate_core::{Checksum, Direction, Migration, Script};

use crate::error::{Refusal, ResolveProblem};
use crate::foreign::{ForeignHistory, Tool};
use crate::history::{AppliedMigration, Dirt, Recorded};
use crate::set::MigrationSet;
use crate::target::Target;

/// What to do to a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Apply pending migrations up to the target (`head`, a version, `+N`).
    Upgrade(Target),
    /// Revert applied migrations down to the target (`base`, a version, `-N`).
    Downgrade(Target),
    /// Drop the schema, recreate it, apply everything.
    Reset,
    /// After review of edited files: record the binary's checksums (and names) for every applied migration.
    Repair,
    /// Settle a dirty no-transaction migration after a manual fix.
    Resolve {
        /// The dirty version.
        version: i64,
        /// Whether its effects are now in place.
        resolution: Resolution,
    },
    /// For a schema built by another tool or by hand: record every migration up to `version` (in the set's order)
    /// as applied, without running it.
    Baseline {
        /// The newest migration whose effects are in place.
        version: i64,
    },
    /// Record as applied what another tool's history table says it applied (planned from a [`ForeignHistory`]).
    Adopt(Tool),
}

/// How a dirty migration was settled by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Its effects are in place: keep the record, clean.
    Applied,
    /// Its effects are not in place: drop the record, so the next upgrade runs it again.
    NotApplied,
}

/// Options that change what the planner accepts and how it groups steps into transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Accept applied versions that the binary does not have (a rolled-back deploy).
    pub allow_missing: bool,
    /// Apply pending migrations ordered before the newest applied one instead of refusing.
    pub allow_out_of_order: bool,
    /// Run every step in one transaction; refused when a step runs outside any ([`Execution::Untransacted`]).
    pub single_transaction: bool,
}

/// What was read from the database before planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The schema does not exist.
    NoSchema,
    /// The schema exists without a history table.
    NoTable,
    /// The history table's rows.
    History(Vec<AppliedMigration>),
}

impl Found {
    /// The history rows; none when there is no history table.
    pub fn rows(&self) -> &[AppliedMigration] {
        match self {
            Found::History(rows) => rows,
            Found::NoSchema | Found::NoTable => &[],
        }
    }
}

/// SQL run before the steps, in the same transaction as them when the plan allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prologue {
    /// Create the history table, and the schema first when `schema` is true.
    Create {
        /// The schema is missing too.
        schema: bool,
    },
    /// Drop the schema with everything in it and recreate it with an empty history table.
    Reset,
}

impl Prologue {
    /// What the prologue does, for error messages: "could not {action}".
    pub fn action(self) -> &'static str {
        match self {
            Prologue::Create { .. } => "create the schema and its history table",
            Prologue::Reset => "drop and recreate the schema",
        }
    }

    /// It creates the schema: nobody else sees the schema, or anything in it, before its transaction commits.
    pub fn creates_schema(self) -> bool {
        matches!(self, Prologue::Create { schema: true } | Prologue::Reset)
    }
}

/// How the plan's SQL is grouped into transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionMode {
    /// The prologue, every step and every history fix in one transaction: all or nothing.
    Single,
    /// The prologue in its own transaction, then each step in its own (a no-transaction step in none).
    PerStep,
}

/// One migration to run: which way, the script that does it, and where it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'m> {
    /// Apply (up) or revert (down).
    pub direction: Direction,
    /// The migration.
    pub migration: &'m Migration,
    /// The script this step runs: the up script, or the down script.
    pub script: &'m Script,
    /// In a transaction, outside any, or in the transaction that creates the schema.
    pub execution: Execution,
    /// For a no-transaction script interrupted part-way: resume it, after this many statements already done.
    pub resume_from: Option<usize>,
}

impl<'m> Step<'m> {
    /// A step that runs `script` as the script asks: in a transaction, or outside any when marked no-transaction.
    pub fn new(direction: Direction, migration: &'m Migration, script: &'m Script) -> Step<'m> {
        let execution = if script.no_transaction { Execution::Untransacted } else { Execution::InTransaction };
        Step { direction, migration, script, execution, resume_from: None }
    }
}

/// Where a step's script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// In a transaction, with the change to its history row.
    InTransaction,
    /// A no-transaction script: claimed in a transaction, then run statement by statement outside any.
    Untransacted,
    /// A no-transaction script whose every statement is a `CONCURRENTLY` index statement on the schema's own
    /// relations, in a schema the plan creates (a fresh schema, a reset): it runs in the transaction that creates
    /// the schema, without `CONCURRENTLY` and with its relations qualified. Nobody can see the schema before that
    /// transaction commits, so a concurrent build would only wait for other transactions; the index comes out the
    /// same, and a failure leaves no half-built schema.
    InCreatingTransaction,
}

impl Execution {
    /// `in_transaction`, `untransacted` or `in_creating_transaction`, for machine-readable output.
    pub fn label(self) -> &'static str {
        match self {
            Execution::InTransaction => "in_transaction",
            Execution::Untransacted => "untransacted",
            Execution::InCreatingTransaction => "in_creating_transaction",
        }
    }
}

/// A change to a history row that runs no migration: what `repair` and `resolve` plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryFix<'m> {
    /// Record the binary's checksums and name for this applied migration.
    Repair {
        /// The migration as the binary has it.
        migration: &'m Migration,
        /// What the history recorded, for the report and the dry run.
        recorded: Recorded,
    },
    /// Mark a dirty record clean.
    MarkApplied(i64),
    /// Remove a dirty record.
    MarkNotApplied(i64),
    /// Record a migration as applied without running it: `baseline` and `adopt`.
    Record {
        /// The migration as the binary has it (its checksums are recorded).
        migration: &'m Migration,
        /// Why it is recorded, kept in the row's `applied_by`.
        source: RecordSource,
    },
}

/// Why a migration was recorded without being run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordSource {
    /// `baseline`: its effects were put in place some other way.
    Baseline,
    /// `adopt`: another tool applied it.
    Adopted(Tool),
}

impl RecordSource {
    /// `baseline`, or `adopted from sqlx`: what the history's `applied_by` says after the role's name.
    pub fn label(self) -> String {
        match self {
            RecordSource::Baseline => "baseline".to_owned(),
            RecordSource::Adopted(tool) => format!("adopted from {tool}"),
        }
    }
}

impl HistoryFix<'_> {
    /// The version the fix is about.
    pub fn version(&self) -> i64 {
        match self {
            HistoryFix::Repair { migration, .. } | HistoryFix::Record { migration, .. } => migration.version,
            HistoryFix::MarkApplied(version) | HistoryFix::MarkNotApplied(version) => *version,
        }
    }
}

/// What an operation will do to one schema: built by [`plan`], executed by the engine, rendered by the dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'m> {
    /// SQL that creates or resets the schema first.
    pub prologue: Option<Prologue>,
    /// Migrations to run, in order.
    pub steps: Vec<Step<'m>>,
    /// History rows to change without running a migration.
    pub fixes: Vec<HistoryFix<'m>>,
    /// How the SQL is grouped into transactions.
    pub transaction: TransactionMode,
    /// The newest applied version before the operation.
    pub version_before: Option<i64>,
    /// The versions applied once the prologue and the fixes have run, before any step.
    base: Vec<i64>,
    /// The set, whose order says which version is the newest.
    set: &'m MigrationSet,
}

impl<'m> Plan<'m> {
    /// When the plan creates the schema and runs in one transaction: the migrations its history table holds once
    /// that transaction commits, as no other session can have written to it (and the migrations' own statements
    /// have no business there).
    pub fn history_it_creates(&self) -> Option<impl Iterator<Item = &'m Migration> + '_> {
        let creates = self.prologue.is_some_and(Prologue::creates_schema);
        let only_applies = self.fixes.is_empty() && self.steps.iter().all(|step| step.direction == Direction::Up);
        (creates && only_applies && self.transaction == TransactionMode::Single)
            .then(|| self.steps.iter().map(|step| step.migration))
    }

    /// Nothing to do: the schema is already where it was asked to be.
    pub fn is_empty(&self) -> bool {
        self.prologue.is_none() && self.steps.is_empty() && self.fixes.is_empty()
    }

    /// The newest applied version once the prologue, the fixes and the given steps (a prefix of the plan's steps,
    /// or all of them) have run.
    pub fn version_after(&self, done: impl IntoIterator<Item = (Direction, i64)>) -> Option<i64> {
        let mut applied = self.base.clone();
        for (direction, version) in done {
            match direction {
                Direction::Up => applied.push(version),
                Direction::Down => applied.retain(|&v| v != version),
            }
        }
        self.set.newest(applied)
    }

    /// The newest applied version after the whole plan.
    pub fn planned_version_after(&self) -> Option<i64> {
        self.version_after(self.steps.iter().map(|s| (s.direction, s.migration.version)))
    }
}

/// Plan `operation` on a schema from what was `found` in it; a refusal says why not, without naming the schema
/// (the engine, which knows it, does).
///
/// ```
/// use migrate_runtime::{plan, Found, Migration, MigrationSet, Operation, PlanOptions, Script, Target};
///
/// let m = |v: i64| Migration { version: v, name: "m".into(), up: Script::new("m.up.sql", "SELECT 1"), down: None };
/// let set = MigrationSet::from_migrations(vec![m(1), m(2)]);
/// let plan = plan(&set, &Found::NoSchema, Operation::Upgrade(Target::Head), PlanOptions::default()).unwrap();
/// assert_eq!(plan.steps.len(), 2);
/// assert_eq!(plan.planned_version_after(), Some(2));
/// ```
pub fn plan<'m>(
    set: &'m MigrationSet,
    found: &Found,
    operation: Operation,
    options: PlanOptions,
) -> Result<Plan<'m>, Refusal> {
    plan_with_foreign(set, found, None, operation, options)
}

/// [`plan`], with another tool's history as read for [`Operation::Adopt`] (`None`: its table does not exist).
pub fn plan_with_foreign<'m>(
    set: &'m MigrationSet,
    found: &Found,
    foreign: Option<&ForeignHistory>,
    operation: Operation,
    options: PlanOptions,
) -> Result<Plan<'m>, Refusal> {
    let history = found.rows();
    let version_before = set.newest(history.iter().map(|a| a.version));
    let applied_versions = || history.iter().map(|a| a.version).collect::<Vec<i64>>();
    let (prologue, steps, fixes, base) = match operation {
        Operation::Upgrade(target) => {
            let prologue = match found {
                Found::NoSchema => Some(Prologue::Create { schema: true }),
                Found::NoTable => Some(Prologue::Create { schema: false }),
                Found::History(_) => None,
            };
            (prologue, upgrade_steps(set, history, target, options)?, Vec::new(), applied_versions())
        }
        // A downgrade of a schema that was never migrated creates nothing.
        Operation::Downgrade(target) => {
            (None, downgrade_steps(set, history, target, options)?, Vec::new(), applied_versions())
        }
        Operation::Reset => {
            let steps = upgrade_steps(set, &[], Target::Head, options)?;
            (Some(Prologue::Reset), steps, Vec::new(), Vec::new())
        }
        Operation::Repair => (None, Vec::new(), repair_fixes(set, history), applied_versions()),
        Operation::Resolve { version, resolution } => {
            let fix = resolve_fix(history, version, resolution)?;
            let mut base = applied_versions();
            if let HistoryFix::MarkNotApplied(removed) = &fix {
                base.retain(|v| v != removed);
            }
            (None, Vec::new(), vec![fix], base)
        }
        Operation::Baseline { version } => {
            let fixes = baseline_fixes(set, found, version, options)?;
            record(found, fixes, applied_versions())
        }
        Operation::Adopt(tool) => {
            let fixes = adopt_fixes(set, found, tool, foreign, options)?;
            record(found, fixes, applied_versions())
        }
    };
    let steps = match prologue {
        Some(prologue) if prologue.creates_schema() => fold_into_creating_transaction(steps),
        _ => steps,
    };
    let transaction = transaction_mode(prologue, &steps, options)?;
    Ok(Plan { prologue, steps, fixes, transaction, version_before, base, set })
}

/// The parts of a plan that records `fixes`: the history table first when it is missing, and the recorded versions
/// counted as applied.
type Parts<'m> = (Option<Prologue>, Vec<Step<'m>>, Vec<HistoryFix<'m>>, Vec<i64>);

fn record<'m>(found: &Found, fixes: Vec<HistoryFix<'m>>, mut base: Vec<i64>) -> Parts<'m> {
    let prologue = (matches!(found, Found::NoTable) && !fixes.is_empty()).then_some(Prologue::Create { schema: false });
    base.extend(fixes.iter().map(HistoryFix::version));
    (prologue, Vec::new(), fixes, base)
}

/// `baseline`: every migration of the set up to `version`, in the set's order, that the history does not have.
/// Refused for a missing schema, a version the binary lacks, a history that does not match the binary, or one that
/// has a migration after `version`.
fn baseline_fixes<'m>(
    set: &'m MigrationSet,
    found: &Found,
    version: i64,
    options: PlanOptions,
) -> Result<Vec<HistoryFix<'m>>, Refusal> {
    if matches!(found, Found::NoSchema) {
        return Err(Refusal::SchemaMissing { operation: "baseline" });
    }
    if set.get(version).is_none() {
        return Err(Refusal::TargetNotInSet { target: version });
    }
    let history = found.rows();
    verify_history(set, history, options)?;
    let limit = set.order_key(version);
    if let Some(after) = history.iter().find(|a| set.get(a.version).is_none() || set.order_key(a.version) > limit) {
        return Err(Refusal::BaselineBelowApplied { version, applied: after.version, name: after.name.clone() });
    }
    Ok(set
        .iter()
        .take_while(|m| set.order_key(m.version) <= limit)
        .filter(|m| !history.iter().any(|a| a.version == m.version))
        .map(|migration| HistoryFix::Record { migration, source: RecordSource::Baseline })
        .collect())
}

/// `adopt`: every version the other tool applied, checked against the binary, that the history does not have yet.
/// Refused for a missing schema or table, a failed row, a version the binary lacks, or a checksum that differs.
fn adopt_fixes<'m>(
    set: &'m MigrationSet,
    found: &Found,
    tool: Tool,
    foreign: Option<&ForeignHistory>,
    options: PlanOptions,
) -> Result<Vec<HistoryFix<'m>>, Refusal> {
    if matches!(found, Found::NoSchema) {
        return Err(Refusal::SchemaMissing { operation: "adopt" });
    }
    let Some(foreign) = foreign.filter(|f| f.tool == tool) else {
        return Err(Refusal::ForeignHistoryMissing { tool, table: tool.table().to_owned() });
    };
    let history = found.rows();
    verify_history(set, history, options)?;
    let mut fixes = Vec::new();
    for row in &foreign.rows {
        if !row.success {
            return Err(Refusal::ForeignFailed { tool, version: row.version, name: row.label() });
        }
        let Some(migration) = set.get(row.version) else {
            return Err(Refusal::ForeignMissingFromBinary { tool, version: row.version, name: row.label() });
        };
        if let Some((recorded, embedded)) = row.checksum_mismatch(tool, migration) {
            return Err(Refusal::ForeignChecksumMismatch {
                tool,
                version: row.version,
                file: migration.file().to_owned(),
                recorded,
                embedded,
            });
        }
        if !history.iter().any(|a| a.version == row.version) {
            fixes.push((migration, HistoryFix::Record { migration, source: RecordSource::Adopted(tool) }));
        }
    }
    // Recorded in the set's order, whatever order the other tool's table had.
    fixes.sort_by_key(|(m, _)| set.order_key(m.version));
    Ok(fixes.into_iter().map(|(_, fix)| fix).collect())
}

/// The steps of a plan that creates its schema: when every no-transaction script among them can run in the
/// creating transaction, they do ([`Execution::InCreatingTransaction`]) and the plan is one transaction. Otherwise
/// the creation commits first and each runs on its own, as in a schema that exists.
fn fold_into_creating_transaction(mut steps: Vec<Step<'_>>) -> Vec<Step<'_>> {
    let untransacted: Vec<&mut Step<'_>> =
        steps.iter_mut().filter(|s| s.execution == Execution::Untransacted).collect();
    if untransacted.iter().all(|s| crate::sql::runs_in_creating_transaction(&s.script.sql)) {
        for step in untransacted {
            step.execution = Execution::InCreatingTransaction;
        }
    }
    steps
}

/// A fresh schema or a reset is built in one transaction when every step allows it, so a failure leaves the
/// database as it was; so is everything in single-transaction mode, which refuses a no-transaction step.
fn transaction_mode(
    prologue: Option<Prologue>,
    steps: &[Step<'_>],
    options: PlanOptions,
) -> Result<TransactionMode, Refusal> {
    let untransacted = steps.iter().find(|s| s.execution == Execution::Untransacted);
    match untransacted {
        Some(step) if options.single_transaction => Err(Refusal::NoTransactionInSingleTransaction {
            version: step.migration.version,
            file: step.script.file.to_string(),
        }),
        Some(_) => Ok(TransactionMode::PerStep),
        None if options.single_transaction || prologue.is_some() => Ok(TransactionMode::Single),
        None => Ok(TransactionMode::PerStep),
    }
}

fn upgrade_steps<'m>(
    set: &'m MigrationSet,
    history: &[AppliedMigration],
    target: Target,
    options: PlanOptions,
) -> Result<Vec<Step<'m>>, Refusal> {
    let (resume, history) = checked(set, history, target, Direction::Up, options)?;
    let history = history.as_slice();
    let current = set.newest(history.iter().map(|a| a.version));
    let pending: Vec<&Migration> = set.iter().filter(|m| !history.iter().any(|a| a.version == m.version)).collect();
    if let (Some(newest_applied), false) = (current, options.allow_out_of_order) {
        if let Some(early) = pending.iter().find(|m| set.order_key(m.version) < set.order_key(newest_applied)) {
            return Err(Refusal::OutOfOrder { version: early.version, file: early.file().to_owned(), newest_applied });
        }
    }
    let chosen: Vec<&Migration> = match target {
        Target::Head => pending,
        Target::Relative(n) if n > 0 => pending.into_iter().take(n as usize).collect(),
        Target::Version(v) => {
            if set.get(v).is_none() {
                return Err(Refusal::TargetNotInSet { target: v });
            }
            if let Some(current) = current.filter(|&c| set.order_key(v) < set.order_key(c)) {
                return Err(Refusal::TargetBelowCurrent { target: v, current });
            }
            pending.into_iter().filter(|m| set.order_key(m.version) <= set.order_key(v)).collect()
        }
        // Refused above: these point down.
        Target::Base | Target::Relative(_) => Vec::new(),
    };
    let steps = chosen.into_iter().map(|migration| Step::new(Direction::Up, migration, &migration.up));
    Ok(resume.into_iter().chain(steps).collect())
}

fn downgrade_steps<'m>(
    set: &'m MigrationSet,
    history: &[AppliedMigration],
    target: Target,
    options: PlanOptions,
) -> Result<Vec<Step<'m>>, Refusal> {
    let (resume, history) = checked(set, history, target, Direction::Down, options)?;
    let history = history.as_slice();
    let mut applied: Vec<&AppliedMigration> = history.iter().collect();
    applied.sort_by_key(|a| std::cmp::Reverse(set.order_key(a.version)));
    let count = match target {
        Target::Base => applied.len(),
        // Like `upgrade +N`, which applies at most what is pending: at most what is applied, so `-1` at base is
        // "nothing to do", as `upgrade +1` at head is (and as `sqlx migrate revert` at base is). A resumed revert is
        // one of the steps asked for.
        Target::Relative(n) if n < 0 => (n.unsigned_abs() as usize - usize::from(resume.is_some())).min(applied.len()),
        Target::Version(v) => {
            if !history.iter().any(|a| a.version == v) {
                return Err(Refusal::TargetNotApplied { target: v });
            }
            applied.iter().take_while(|a| set.order_key(a.version) > set.order_key(v)).count()
        }
        // Refused above: these point up.
        Target::Head | Target::Relative(_) => 0,
    };
    applied[..count]
        .iter()
        .map(|a| {
            // verify_history has made sure that every applied version is known, unless allow_missing.
            let migration = set
                .get(a.version)
                .ok_or_else(|| Refusal::MissingFromBinary { version: a.version, name: a.name.clone() })?;
            let script = migration
                .down
                .as_ref()
                .ok_or_else(|| Refusal::MissingDownFile { version: a.version, file: migration.file().to_owned() })?;
            Ok(Step::new(Direction::Down, migration, script))
        })
        .collect::<Result<Vec<Step<'m>>, Refusal>>()
        .map(|steps| resume.into_iter().chain(steps).collect())
}

/// What both directions check first: the target points `direction`'s way, and the history (bar an interrupted
/// step to resume, which is returned) matches the binary.
fn checked<'m>(
    set: &'m MigrationSet,
    history: &[AppliedMigration],
    target: Target,
    direction: Direction,
    options: PlanOptions,
) -> Result<(Option<Step<'m>>, Vec<AppliedMigration>), Refusal> {
    target.towards(direction).map_err(Refusal::WrongDirection)?;
    let (resume, history) = resumable(set, history, direction)?;
    verify_history(set, &history, options)?;
    Ok((resume, history))
}

/// The interrupted no-transaction step of `history` going `direction`, to resume before anything else, and the
/// history as the rest of the plan sees it: an interrupted apply counts as applied, an interrupted revert as gone.
fn resumable<'m>(
    set: &'m MigrationSet,
    history: &[AppliedMigration],
    direction: Direction,
) -> Result<(Option<Step<'m>>, Vec<AppliedMigration>), Refusal> {
    let mut resume = None;
    let mut rest = Vec::with_capacity(history.len());
    for applied in history {
        match applied.dirt() {
            Some(Dirt::Interrupted { statements_done, direction: going }) if going == direction && resume.is_none() => {
                let migration = set.get(applied.version).ok_or_else(|| Refusal::MissingFromBinary {
                    version: applied.version,
                    name: applied.name.clone(),
                })?;
                let script = match direction {
                    Direction::Up => &migration.up,
                    Direction::Down => migration.down.as_ref().ok_or_else(|| Refusal::MissingDownFile {
                        version: applied.version,
                        file: migration.file().to_owned(),
                    })?,
                };
                resume = Some(Step { resume_from: Some(statements_done), ..Step::new(direction, migration, script) });
                if direction == Direction::Up {
                    rest.push(AppliedMigration { dirty: false, ..applied.clone() });
                }
            }
            _ => rest.push(applied.clone()),
        }
    }
    Ok((resume, rest))
}

/// Every clean applied migration whose recorded checksums or name differ from the binary's.
fn repair_fixes<'m>(set: &'m MigrationSet, history: &[AppliedMigration]) -> Vec<HistoryFix<'m>> {
    history
        .iter()
        .filter(|applied| !applied.dirty)
        .filter_map(|applied| {
            let migration = set.get(applied.version)?;
            let down = migration.down.as_ref().map(|d| d.checksum);
            let differs = applied.checksum != migration.up.checksum
                || applied.down_checksum != down
                || applied.name != migration.name;
            differs.then(|| HistoryFix::Repair { migration, recorded: Recorded::of(applied) })
        })
        .collect()
}

fn resolve_fix(
    history: &[AppliedMigration],
    version: i64,
    resolution: Resolution,
) -> Result<HistoryFix<'static>, Refusal> {
    let refuse = |problem| Refusal::NothingToResolve { version, problem };
    let row = history.iter().find(|a| a.version == version).ok_or_else(|| refuse(ResolveProblem::NoHistoryRow))?;
    match row.dirt() {
        None => return Err(refuse(ResolveProblem::NotDirty)),
        Some(Dirt::Running { runner }) => {
            return Err(Refusal::InProgress { version, runner });
        }
        Some(Dirt::Interrupted { .. } | Dirt::Failed { .. }) => {}
    }
    Ok(match resolution {
        Resolution::Applied => HistoryFix::MarkApplied(version),
        Resolution::NotApplied => HistoryFix::MarkNotApplied(version),
    })
}

/// Refuse a history that does not match the binary: dirty rows, edited files, versions the binary lacks.
pub fn verify_history(set: &MigrationSet, history: &[AppliedMigration], options: PlanOptions) -> Result<(), Refusal> {
    for applied in history {
        if let Some(dirt) = applied.dirt() {
            let (version, name) = (applied.version, applied.name.clone());
            return Err(match dirt {
                Dirt::Running { runner } => Refusal::InProgress { version, runner },
                Dirt::Interrupted { direction, .. } => Refusal::Interrupted { version, name, direction },
                Dirt::Failed { failure } => Refusal::Dirty { version, name, failure },
            });
        }
        let Some(migration) = set.get(applied.version) else {
            if options.allow_missing {
                continue;
            }
            return Err(Refusal::MissingFromBinary { version: applied.version, name: applied.name.clone() });
        };
        let mismatch = |file: &str, recorded: Checksum, embedded: Checksum| Refusal::ChecksumMismatch {
            version: applied.version,
            file: file.to_owned(),
            recorded,
            embedded,
        };
        if migration.up.checksum != applied.checksum {
            return Err(mismatch(&migration.up.file, applied.checksum, migration.up.checksum));
        }
        // A down file added after the migration was applied has nothing recorded to compare with.
        if let (Some(down), Some(recorded)) = (&migration.down, applied.down_checksum) {
            if down.checksum != recorded {
                return Err(mismatch(&down.file, recorded, down.checksum));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrate_core::Script;

    fn migration(version: i64, with_down: bool) -> Migration {
        let file = format!("migrations/{version}_m.up.sql");
        Migration {
            version,
            name: "m".into(),
            up: Script::new(file, format!("SELECT {version};")),
            down: with_down
                .then(|| Script::new(format!("migrations/{version}_m.down.sql"), format!("SELECT -{version};"))),
        }
    }

    fn untransacted(version: i64) -> Migration {
        Migration {
            version,
            name: "idx".into(),
            up: Script::new(format!("migrations/{version}_idx.up.sql"), "-- migrate:no-transaction\nSELECT 1;"),
            down: None,
        }
    }

    fn set(versions: &[i64]) -> MigrationSet {
        MigrationSet::from_migrations(versions.iter().map(|&v| migration(v, true)).collect())
    }

    fn applied(m: &Migration) -> AppliedMigration {
        AppliedMigration {
            version: m.version,
            name: m.name.to_string(),
            checksum: m.up.checksum,
            down_checksum: m.down.as_ref().map(|d| d.checksum),
            applied_at: "2026-01-01 00:00:00+00".into(),
            execution_ms: 1,
            applied_by: "postgres".into(),
            dirty: false,
            progress: Default::default(),
        }
    }

    fn history(set: &MigrationSet, versions: &[i64]) -> Found {
        Found::History(versions.iter().map(|&v| applied(set.get(v).unwrap())).collect())
    }

    fn planned(set: &MigrationSet, found: &Found, operation: Operation) -> Result<Vec<(Direction, i64)>, Refusal> {
        plan(set, found, operation, PlanOptions::default())
            .map(|plan| plan.steps.iter().map(|s| (s.direction, s.migration.version)).collect())
    }

    fn up(target: Target) -> Operation {
        Operation::Upgrade(target)
    }

    fn down(target: Target) -> Operation {
        Operation::Downgrade(target)
    }

    use Direction::{Down as Revert, Up as Apply};

    #[test]
    fn fresh_schema_is_created_and_built_in_one_transaction() {
        let set = set(&[1, 2, 10]);
        let plan = plan(&set, &Found::NoSchema, up(Target::Head), PlanOptions::default()).unwrap();
        assert_eq!(plan.prologue, Some(Prologue::Create { schema: true }));
        assert_eq!(plan.transaction, TransactionMode::Single);
        assert_eq!((plan.version_before, plan.planned_version_after()), (None, Some(10)));
        let steps: Vec<_> = plan.steps.iter().map(|s| (s.direction, s.migration.version, &*s.script.file)).collect();
        assert_eq!(
            steps,
            [
                (Apply, 1, "migrations/1_m.up.sql"),
                (Apply, 2, "migrations/2_m.up.sql"),
                (Apply, 10, "migrations/10_m.up.sql")
            ]
        );
        let table_only = super::plan(&set, &Found::NoTable, up(Target::Head), PlanOptions::default()).unwrap();
        assert_eq!(table_only.prologue, Some(Prologue::Create { schema: false }));
    }

    #[test]
    fn a_fresh_schema_with_a_no_transaction_step_commits_its_prologue_first() {
        let set = MigrationSet::from_migrations(vec![migration(1, true), untransacted(2)]);
        let plan = plan(&set, &Found::NoSchema, up(Target::Head), PlanOptions::default()).unwrap();
        assert_eq!(plan.transaction, TransactionMode::PerStep);
        let single = PlanOptions { single_transaction: true, ..PlanOptions::default() };
        let error = super::plan(&set, &Found::NoSchema, up(Target::Head), single).unwrap_err();
        assert!(matches!(error, Refusal::NoTransactionInSingleTransaction { version: 2, .. }), "{error}");
    }

    fn concurrent_index(version: i64, relation: &str) -> Migration {
        let sql = format!("-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i{version} ON {relation} (a);");
        Migration {
            version,
            name: "idx".into(),
            up: Script::new(format!("migrations/{version}_idx.up.sql"), sql),
            down: Some(Script::new(
                format!("migrations/{version}_idx.down.sql"),
                format!("-- migrate:no-transaction\nDROP INDEX CONCURRENTLY i{version};"),
            )),
        }
    }

    #[test]
    fn a_schema_the_plan_creates_builds_its_concurrent_indexes_in_the_creating_transaction() {
        let set = MigrationSet::from_migrations(vec![migration(1, true), concurrent_index(2, "t"), migration(3, true)]);
        let executions = |plan: &Plan<'_>| plan.steps.iter().map(|s| s.execution).collect::<Vec<_>>();
        let single = PlanOptions { single_transaction: true, ..PlanOptions::default() };
        for (operation, found) in [(up(Target::Head), Found::NoSchema), (Operation::Reset, history(&set, &[1, 2]))] {
            for options in [PlanOptions::default(), single] {
                let plan = plan(&set, &found, operation, options).unwrap();
                assert_eq!(plan.transaction, TransactionMode::Single, "{operation:?}");
                assert_eq!(
                    executions(&plan),
                    [Execution::InTransaction, Execution::InCreatingTransaction, Execution::InTransaction]
                );
            }
        }
        // A schema that exists may be in use: the index is built concurrently, outside any transaction.
        for found in [Found::NoTable, history(&set, &[1])] {
            let plan = plan(&set, &found, up(Target::Head), PlanOptions::default()).unwrap();
            assert_eq!(plan.transaction, TransactionMode::PerStep);
            assert!(executions(&plan).contains(&Execution::Untransacted), "{found:?}");
        }
        // So is a down script, and an index on another schema's table even in a fresh schema.
        let reverted = plan(&set, &history(&set, &[1, 2]), down(Target::Base), PlanOptions::default()).unwrap();
        assert_eq!(executions(&reverted), [Execution::Untransacted, Execution::InTransaction]);
        let shared = MigrationSet::from_migrations(vec![migration(1, true), concurrent_index(2, "public.t")]);
        let fresh = plan(&shared, &Found::NoSchema, up(Target::Head), PlanOptions::default()).unwrap();
        assert_eq!((fresh.transaction, executions(&fresh)[1]), (TransactionMode::PerStep, Execution::Untransacted));
        // And every one of them when another no-transaction script cannot run in a transaction.
        let mixed = MigrationSet::from_migrations(vec![concurrent_index(1, "t"), untransacted(2)]);
        let fresh = plan(&mixed, &Found::NoSchema, up(Target::Head), PlanOptions::default()).unwrap();
        assert_eq!(fresh.transaction, TransactionMode::PerStep);
        assert_eq!(executions(&fresh), [Execution::Untransacted, Execution::Untransacted]);
    }

    #[test]
    fn up_to_date_schema_plans_nothing() {
        let set = set(&[1, 2]);
        let plan = plan(&set, &history(&set, &[1, 2]), up(Target::Head), PlanOptions::default()).unwrap();
        assert!(plan.is_empty());
        assert_eq!(plan.transaction, TransactionMode::PerStep);
        assert_eq!((plan.version_before, plan.planned_version_after()), (Some(2), Some(2)));
    }

    #[test]
    fn single_transaction_groups_pending_steps() {
        let set = set(&[1, 2, 3]);
        let single = PlanOptions { single_transaction: true, ..PlanOptions::default() };
        let plan = plan(&set, &history(&set, &[1]), up(Target::Head), single).unwrap();
        assert_eq!((plan.prologue, plan.transaction, plan.steps.len()), (None, TransactionMode::Single, 2));
    }

    #[test]
    fn upgrade_targets() {
        let set = set(&[1, 2, 3, 4]);
        let h = history(&set, &[1]);
        assert_eq!(planned(&set, &h, up(Target::Version(3))).unwrap(), [(Apply, 2), (Apply, 3)]);
        assert_eq!(planned(&set, &h, up(Target::Relative(1))).unwrap(), [(Apply, 2)]);
        assert_eq!(planned(&set, &h, up(Target::Relative(9))).unwrap().len(), 3);
        assert_eq!(planned(&set, &h, up(Target::Version(1))).unwrap(), []);
        let below = planned(&set, &history(&set, &[1, 2]), up(Target::Version(1))).unwrap_err();
        assert!(matches!(below, Refusal::TargetBelowCurrent { target: 1, current: 2, .. }), "{below}");
        assert!(below.to_string().contains("below the current version 2: use downgrade"), "{below}");
        assert!(matches!(planned(&set, &h, up(Target::Version(7))), Err(Refusal::TargetNotInSet { target: 7, .. })));
        for target in [Target::Base, Target::Relative(-1)] {
            let error = planned(&set, &h, up(target)).unwrap_err();
            assert!(
                matches!(error, Refusal::WrongDirection(crate::WrongDirection { direction: Direction::Up, .. })),
                "{error}"
            );
        }
    }

    #[test]
    fn downgrade_targets_revert_newest_first() {
        let set = set(&[1, 2, 3]);
        let h = history(&set, &[1, 2, 3]);
        assert_eq!(planned(&set, &h, down(Target::Relative(-1))).unwrap(), [(Revert, 3)]);
        assert_eq!(planned(&set, &h, down(Target::Version(1))).unwrap(), [(Revert, 3), (Revert, 2)]);
        assert_eq!(planned(&set, &h, down(Target::Base)).unwrap(), [(Revert, 3), (Revert, 2), (Revert, 1)]);
        let plan = plan(&set, &h, down(Target::Version(1)), PlanOptions::default()).unwrap();
        assert_eq!(plan.steps[0].script.file, "migrations/3_m.down.sql", "a revert holds the down script");
        assert_eq!((plan.version_before, plan.planned_version_after()), (Some(3), Some(1)));
        assert_eq!(planned(&set, &h, down(Target::Relative(-4))).unwrap(), [(Revert, 3), (Revert, 2), (Revert, 1)]);
        assert_eq!(planned(&set, &history(&set, &[]), down(Target::Relative(-1))).unwrap(), []);
        let at_head = planned(&set, &h, up(Target::Relative(5))).unwrap();
        assert!(at_head.is_empty(), "+N at head, like -N at base, is nothing to do");
        assert!(matches!(
            planned(&set, &h, down(Target::Head)),
            Err(Refusal::WrongDirection(crate::WrongDirection { direction: Direction::Down, .. }))
        ));
        assert!(matches!(
            planned(&set, &history(&set, &[1]), down(Target::Version(2))),
            Err(Refusal::TargetNotApplied { target: 2, .. })
        ));
    }

    #[test]
    fn downgrade_of_a_schema_never_migrated_creates_nothing() {
        let set = set(&[1]);
        let plan = plan(&set, &Found::NoSchema, down(Target::Base), PlanOptions::default()).unwrap();
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn downgrade_refuses_up_front_when_a_down_file_is_missing() {
        let set = MigrationSet::from_migrations(vec![migration(1, true), migration(2, false), migration(3, true)]);
        let h = history(&set, &[1, 2, 3]);
        let error = planned(&set, &h, down(Target::Base)).unwrap_err();
        assert!(matches!(error, Refusal::MissingDownFile { version: 2, .. }), "{error}");
        // Reverting only 3 does not need 2's down file.
        assert_eq!(planned(&set, &h, down(Target::Relative(-1))).unwrap(), [(Revert, 3)]);
    }

    #[test]
    fn edited_up_or_down_file_is_refused() {
        let set = set(&[1, 2]);
        let Found::History(mut rows) = history(&set, &[1, 2]) else { unreachable!() };
        rows[1].checksum = Checksum::of("something else");
        let error = planned(&set, &Found::History(rows), up(Target::Head)).unwrap_err();
        assert!(
            matches!(&error, Refusal::ChecksumMismatch { version: 2, file, .. } if file == "migrations/2_m.up.sql"),
            "{error}"
        );
        let Found::History(mut rows) = history(&set, &[1, 2]) else { unreachable!() };
        rows[0].down_checksum = Some(Checksum::of("old down"));
        let error = planned(&set, &Found::History(rows.clone()), down(Target::Base)).unwrap_err();
        assert!(
            matches!(&error, Refusal::ChecksumMismatch { version: 1, file, .. } if file == "migrations/1_m.down.sql"),
            "{error}"
        );
        // A down file added after apply (nothing recorded) is accepted.
        rows[0].down_checksum = None;
        assert!(planned(&set, &Found::History(rows), up(Target::Head)).is_ok());
    }

    #[test]
    fn applied_version_missing_from_binary_is_refused_unless_allowed() {
        let old = set(&[1, 2, 3]);
        let h = history(&old, &[1, 2, 3]);
        let new = set(&[1, 2]);
        let error = planned(&new, &h, up(Target::Head)).unwrap_err();
        assert!(matches!(error, Refusal::MissingFromBinary { version: 3, .. }), "{error}");
        let allowed = PlanOptions { allow_missing: true, ..PlanOptions::default() };
        let plan = plan(&new, &h, up(Target::Head), allowed).unwrap();
        assert!(plan.is_empty());
        assert_eq!(plan.version_before, Some(3), "a version the binary lacks is the newest");
        // Reverting a version the binary lacks is impossible even when allowed.
        let error = plan_error(&new, &h, down(Target::Relative(-1)), allowed);
        assert!(matches!(error, Refusal::MissingFromBinary { version: 3, .. }), "{error}");
    }

    fn plan_error(set: &MigrationSet, found: &Found, operation: Operation, options: PlanOptions) -> Refusal {
        plan(set, found, operation, options).unwrap_err()
    }

    #[test]
    fn pending_migration_below_newest_applied_is_refused_unless_allowed() {
        let set = set(&[1, 2, 3]);
        let h = history(&set, &[1, 3]);
        let error = planned(&set, &h, up(Target::Head)).unwrap_err();
        assert!(matches!(error, Refusal::OutOfOrder { version: 2, newest_applied: 3, .. }), "{error}");
        let allowed = PlanOptions { allow_out_of_order: true, ..PlanOptions::default() };
        let plan = plan(&set, &h, up(Target::Head), allowed).unwrap();
        assert_eq!(plan.steps.iter().map(|s| s.migration.version).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn order_is_the_sets_not_the_numbers() {
        // A set ordered as diesel orders versions (as strings): 202605271200000000 comes before 20260603220228.
        let (first, second) = (202_605_271_200_000_000, 20_260_603_220_228);
        let set = MigrationSet::from_ordered(vec![migration(first, true), migration(second, true)]);
        let h = history(&set, &[first]);
        assert_eq!(planned(&set, &h, up(Target::Head)).unwrap(), [(Apply, second)]);
        let both = history(&set, &[first, second]);
        assert_eq!(planned(&set, &both, down(Target::Relative(-1))).unwrap(), [(Revert, second)]);
        let plan = plan(&set, &both, up(Target::Head), PlanOptions::default()).unwrap();
        assert_eq!(plan.version_before, Some(second));
        assert_eq!(planned(&set, &h, up(Target::Version(second))).unwrap(), [(Apply, second)]);
        let error = planned(&set, &history(&set, &[second]), up(Target::Head)).unwrap_err();
        assert!(matches!(error, Refusal::OutOfOrder { version, .. } if version == first), "{error}");
    }

    #[test]
    fn dirty_history_is_refused() {
        let set = set(&[1, 2]);
        let Found::History(mut rows) = history(&set, &[1, 2]) else { unreachable!() };
        rows[1].dirty = true;
        let error = planned(&set, &Found::History(rows), up(Target::Head)).unwrap_err();
        assert!(matches!(error, Refusal::Dirty { version: 2, .. }), "{error}");
    }

    fn dirty(set: &MigrationSet, versions: &[i64], progress: crate::history::Progress) -> Found {
        let Found::History(mut rows) = history(set, versions) else { unreachable!() };
        let last = rows.last_mut().unwrap();
        last.dirty = true;
        last.progress = progress;
        Found::History(rows)
    }

    #[test]
    fn a_no_transaction_migration_is_waited_for_resumed_or_refused_by_what_its_row_says() {
        use crate::history::Progress;
        let set = MigrationSet::from_migrations(vec![migration(1, true), untransacted(2), migration(3, true)]);
        let runner = |alive| Progress {
            runner: Some("svc migrate 7".into()),
            runner_alive: alive,
            statements_done: 1,
            direction: Some(Direction::Up),
            failure: None,
        };
        let running = planned(&set, &dirty(&set, &[1, 2], runner(true)), up(Target::Head)).unwrap_err();
        assert!(
            matches!(&running, Refusal::InProgress { version: 2, runner, .. } if runner == "svc migrate 7"),
            "{running}"
        );

        let interrupted = dirty(&set, &[1, 2], runner(false));
        let plan = plan_ok(&set, &interrupted, up(Target::Head));
        let steps: Vec<_> = plan.steps.iter().map(|s| (s.direction, s.migration.version, s.resume_from)).collect();
        assert_eq!(steps, [(Apply, 2, Some(1)), (Apply, 3, None)], "resumed first, then the rest");
        let error = planned(&set, &interrupted, down(Target::Base)).unwrap_err();
        assert!(matches!(error, Refusal::Interrupted { version: 2, direction: Direction::Up, .. }), "{error}");

        let failed = Progress { failure: Some("deadlock detected".into()), ..runner(false) };
        let error = planned(&set, &dirty(&set, &[1, 2], failed), up(Target::Head)).unwrap_err();
        assert!(
            matches!(&error, Refusal::Dirty { version: 2, failure: Some(f), .. } if f == "deadlock detected"),
            "{error}"
        );
        assert!(error.to_string().contains("an earlier run failed part-way: deadlock detected"), "{error}");
        // A row left dirty by an older version says nothing about its runner: a person must look.
        let error = planned(&set, &dirty(&set, &[1, 2], Progress::default()), up(Target::Head)).unwrap_err();
        assert!(matches!(error, Refusal::Dirty { version: 2, failure: None, .. }), "{error}");
    }

    #[test]
    fn reset_drops_and_rebuilds_everything_from_nothing() {
        let set = set(&[1, 2]);
        let plan = plan(&set, &history(&set, &[1]), Operation::Reset, PlanOptions::default()).unwrap();
        assert_eq!(plan.prologue, Some(Prologue::Reset));
        assert_eq!(plan.transaction, TransactionMode::Single);
        assert_eq!(plan.steps.iter().map(|s| s.migration.version).collect::<Vec<_>>(), [1, 2]);
        assert_eq!((plan.version_before, plan.planned_version_after()), (Some(1), Some(2)));
        // A reset does not care what the history said: it is thrown away.
        let Found::History(mut rows) = history(&set, &[1]) else { unreachable!() };
        rows[0].dirty = true;
        assert!(super::plan(&set, &Found::History(rows), Operation::Reset, PlanOptions::default()).is_ok());
    }

    #[test]
    fn repair_records_the_binarys_checksums_and_names_of_clean_rows() {
        let set = set(&[1, 2, 3]);
        let Found::History(mut rows) = history(&set, &[1, 2, 3]) else { unreachable!() };
        rows[0].checksum = Checksum::of("old");
        rows[1].name = "renamed".into();
        rows[2].dirty = true;
        rows[2].checksum = Checksum::of("old");
        let plan = plan(&set, &Found::History(rows), Operation::Repair, PlanOptions::default()).unwrap();
        assert_eq!(plan.fixes.iter().map(HistoryFix::version).collect::<Vec<_>>(), [1, 2]);
        assert!(
            matches!(&plan.fixes[0], HistoryFix::Repair { recorded, .. } if recorded.checksum == Checksum::of("old")),
            "{:?}",
            plan.fixes[0]
        );
        assert_eq!((plan.transaction, plan.steps.len()), (TransactionMode::PerStep, 0));
        let clean = plan_ok(&set, &history(&set, &[1]), Operation::Repair);
        assert!(clean.is_empty());
        assert!(plan_ok(&set, &Found::NoSchema, Operation::Repair).is_empty());
    }

    fn plan_ok<'m>(set: &'m MigrationSet, found: &Found, operation: Operation) -> Plan<'m> {
        plan(set, found, operation, PlanOptions::default()).unwrap()
    }

    #[test]
    fn resolve_settles_only_a_dirty_row() {
        let set = set(&[1, 2]);
        let Found::History(mut rows) = history(&set, &[1, 2]) else { unreachable!() };
        rows[1].dirty = true;
        let found = Found::History(rows);
        let resolve = |version, resolution| Operation::Resolve { version, resolution };
        let kept = plan_ok(&set, &found, resolve(2, Resolution::Applied));
        assert_eq!((kept.fixes.clone(), kept.planned_version_after()), (vec![HistoryFix::MarkApplied(2)], Some(2)));
        let dropped = plan_ok(&set, &found, resolve(2, Resolution::NotApplied));
        assert_eq!(
            (dropped.fixes.clone(), dropped.planned_version_after()),
            (vec![HistoryFix::MarkNotApplied(2)], Some(1))
        );
        for (version, problem) in [(1, ResolveProblem::NotDirty), (7, ResolveProblem::NoHistoryRow)] {
            let error = plan(&set, &found, resolve(version, Resolution::Applied), PlanOptions::default()).unwrap_err();
            assert!(
                matches!(&error, Refusal::NothingToResolve { version: v, problem: p, .. } if *v == version && *p == problem),
                "{error}"
            );
        }
    }

    fn recorded(plan: &Plan<'_>) -> Vec<(i64, RecordSource)> {
        plan.fixes
            .iter()
            .map(|fix| match fix {
                HistoryFix::Record { migration, source } => (migration.version, *source),
                other => panic!("not a record: {other:?}"),
            })
            .collect()
    }

    fn baseline(version: i64) -> Operation {
        Operation::Baseline { version }
    }

    #[test]
    fn baseline_records_up_to_the_version_in_the_sets_order() {
        // Diesel's text order: 202605271200000000 before 20260603220228, though the number is larger.
        let (first, second, third) = (202_605_271_200_000_000, 20_260_603_220_228, 20_270_101_000_000);
        let set =
            MigrationSet::from_ordered(vec![migration(first, true), migration(second, true), migration(third, true)]);
        let plan = plan_ok(&set, &Found::NoTable, baseline(second));
        use RecordSource::Baseline as B;
        assert_eq!(recorded(&plan), [(first, B), (second, B)]);
        assert!(plan.steps.is_empty(), "nothing runs");
        assert_eq!(plan.prologue, Some(Prologue::Create { schema: false }), "the history table is created");
        assert_eq!(plan.transaction, TransactionMode::Single, "table and rows in one transaction");
        assert_eq!((plan.version_before, plan.planned_version_after()), (None, Some(second)));
        // With a history table: only what it lacks, in the locking transaction.
        let partial = plan_ok(&set, &history(&set, &[first]), baseline(third));
        assert_eq!(recorded(&partial), [(second, B), (third, B)]);
        assert_eq!((partial.prologue, partial.transaction), (None, TransactionMode::PerStep));
        assert_eq!(partial.planned_version_after(), Some(third));
        // Again: nothing to do.
        assert!(plan_ok(&set, &history(&set, &[first, second]), baseline(second)).is_empty());
    }

    #[test]
    fn baseline_refuses_a_missing_schema_an_unknown_version_and_newer_history() {
        let set = set(&[1, 2, 3]);
        let error = plan_error(&set, &Found::NoSchema, baseline(2), PlanOptions::default());
        assert!(matches!(error, Refusal::SchemaMissing { operation: "baseline", .. }), "{error}");
        let error = plan_error(&set, &Found::NoTable, baseline(7), PlanOptions::default());
        assert!(matches!(error, Refusal::TargetNotInSet { target: 7, .. }), "{error}");
        let error = plan_error(&set, &history(&set, &[1, 2, 3]), baseline(2), PlanOptions::default());
        assert!(matches!(error, Refusal::BaselineBelowApplied { version: 2, applied: 3, .. }), "{error}");
        assert!(error.to_string().contains("migration 3 (m) is already applied and comes after it"), "{error}");
        // A version the binary lacks is after anything it has.
        let allowed = PlanOptions { allow_missing: true, ..PlanOptions::default() };
        let newer = history(&super::tests::set(&[1, 2, 3, 4]), &[1, 4]);
        let error = plan_error(&set, &newer, baseline(3), allowed);
        assert!(matches!(error, Refusal::BaselineBelowApplied { applied: 4, .. }), "{error}");
        // A drifted history is refused as by every other operation.
        let Found::History(mut rows) = history(&set, &[1]) else { unreachable!() };
        rows[0].checksum = Checksum::of("edited");
        let error = plan_error(&set, &Found::History(rows), baseline(2), PlanOptions::default());
        assert!(matches!(error, Refusal::ChecksumMismatch { version: 1, .. }), "{error}");
    }

    fn foreign(tool: Tool, rows: &[(i64, bool, Option<String>)]) -> ForeignHistory {
        let rows = rows
            .iter()
            .map(|(version, success, checksum)| crate::foreign::ForeignRow {
                version: *version,
                name: Some(format!("m{version}")),
                success: *success,
                checksum: checksum.clone(),
            })
            .collect();
        ForeignHistory { tool, rows }
    }

    fn adopt<'m>(set: &'m MigrationSet, found: &Found, foreign: Option<&ForeignHistory>) -> Result<Plan<'m>, Refusal> {
        let tool = foreign.map_or(Tool::Sqlx, |f| f.tool);
        plan_with_foreign(set, found, foreign, Operation::Adopt(tool), PlanOptions::default())
    }

    #[test]
    fn adopt_records_what_the_other_tool_applied_with_matching_checksums() {
        let set = set(&[1, 2, 3]);
        let sqlx = |v: i64| Some(crate::foreign::sqlx_checksum(&set.get(v).unwrap().up.sql));
        // Read in another order: recorded in the set's.
        let theirs = foreign(Tool::Sqlx, &[(2, true, sqlx(2)), (1, true, sqlx(1))]);
        let plan = adopt(&set, &Found::NoTable, Some(&theirs)).unwrap();
        let by = RecordSource::Adopted(Tool::Sqlx);
        assert_eq!(recorded(&plan), [(1, by), (2, by)]);
        assert_eq!(plan.prologue, Some(Prologue::Create { schema: false }));
        assert_eq!(plan.planned_version_after(), Some(2));
        // Already adopted: nothing to do; partly adopted: the rest.
        assert!(adopt(&set, &history(&set, &[1, 2]), Some(&theirs)).unwrap().is_empty());
        assert_eq!(recorded(&adopt(&set, &history(&set, &[1]), Some(&theirs)).unwrap()), [(2, by)]);
        // Diesel keeps no checksum; its versions are checked against the binary all the same.
        let diesel = foreign(Tool::Diesel, &[(1, true, None), (3, true, None)]);
        let by = RecordSource::Adopted(Tool::Diesel);
        assert_eq!(recorded(&adopt(&set, &Found::NoTable, Some(&diesel)).unwrap()), [(1, by), (3, by)]);
        // An empty table of theirs: nothing to record, nothing created.
        assert!(adopt(&set, &Found::NoTable, Some(&foreign(Tool::Refinery, &[]))).unwrap().is_empty());
    }

    #[test]
    fn adopt_refuses_by_name() {
        let set = set(&[1, 2]);
        let good = Some(crate::foreign::sqlx_checksum(&set.get(1).unwrap().up.sql));
        let error = adopt(&set, &Found::NoSchema, Some(&foreign(Tool::Sqlx, &[]))).unwrap_err();
        assert!(matches!(error, Refusal::SchemaMissing { operation: "adopt", .. }), "{error}");
        let error = adopt(&set, &Found::NoTable, None).unwrap_err();
        assert!(
            matches!(&error, Refusal::ForeignHistoryMissing { tool: Tool::Sqlx, table, .. } if table == "_sqlx_migrations"),
            "{error}"
        );
        let failed = foreign(Tool::Sqlx, &[(1, true, good.clone()), (2, false, Some("00".into()))]);
        let error = adopt(&set, &Found::NoTable, Some(&failed)).unwrap_err();
        assert!(matches!(&error, Refusal::ForeignFailed { version: 2, name, .. } if name == "m2"), "{error}");
        let unknown = foreign(Tool::Diesel, &[(1, true, None), (9, true, None)]);
        let error = adopt(&set, &Found::NoTable, Some(&unknown)).unwrap_err();
        assert!(matches!(error, Refusal::ForeignMissingFromBinary { version: 9, tool: Tool::Diesel, .. }), "{error}");
        let edited = foreign(Tool::Sqlx, &[(1, true, Some("abcd".into()))]);
        let error = adopt(&set, &Found::NoTable, Some(&edited)).unwrap_err();
        assert!(
            matches!(&error, Refusal::ForeignChecksumMismatch { version: 1, file, recorded, .. }
                if file == "migrations/1_m.up.sql" && recorded == "abcd"),
            "{error}"
        );
        let refinery = foreign(Tool::Refinery, &[(1, true, Some("12345".into()))]);
        let error = adopt(&set, &Found::NoTable, Some(&refinery)).unwrap_err();
        assert!(matches!(error, Refusal::ForeignChecksumMismatch { tool: Tool::Refinery, .. }), "{error}");
    }
}
