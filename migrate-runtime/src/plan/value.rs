//! The plan value and its parts: what to do ([`Operation`]), what was read ([`Found`]), and what will be done
//! ([`Plan`]: a prologue, steps, history fixes, and how they are grouped into transactions).

use migrate_core::{Direction, Migration, Script};

use crate::foreign::Tool;
use crate::model::{AppliedMigration, Execution, Fix, FixKind, RecordSource, Recorded, TransactionMode};
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
    /// Record as applied what another tool's history table says it applied (planned from a [`ForeignHistory`](crate::ForeignHistory)).
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

impl HistoryFix<'_> {
    /// What the fix does, for reports: the version and the change.
    pub fn fix(&self) -> Fix {
        let kind = match self {
            HistoryFix::Repair { migration, recorded } => FixKind::Repaired {
                before: recorded.clone(),
                after: Recorded {
                    name: migration.name.to_string(),
                    checksum: migration.up.checksum,
                    down_checksum: migration.down.as_ref().map(|d| d.checksum),
                },
            },
            HistoryFix::MarkApplied(_) => FixKind::MarkedApplied,
            HistoryFix::MarkNotApplied(_) => FixKind::MarkedNotApplied,
            HistoryFix::Record { source, .. } => FixKind::Recorded { source: *source },
        };
        Fix { version: self.version(), kind }
    }

    /// The version the fix is about.
    pub fn version(&self) -> i64 {
        match self {
            HistoryFix::Repair { migration, .. } | HistoryFix::Record { migration, .. } => migration.version,
            HistoryFix::MarkApplied(version) | HistoryFix::MarkNotApplied(version) => *version,
        }
    }
}

/// What an operation will do to one schema: built by [`plan`](crate::plan()), executed by the engine, rendered by the dry run.
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
    pub(super) base: Vec<i64>,
    /// The set, whose order says which version is the newest.
    pub(super) set: &'m MigrationSet,
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
        self.set.newest(self.applied_after(done))
    }

    /// The versions applied once the prologue, the fixes and the given steps have run.
    pub fn applied_after(&self, done: impl IntoIterator<Item = (Direction, i64)>) -> Vec<i64> {
        let mut applied = self.base.clone();
        for (direction, version) in done {
            match direction {
                Direction::Up => applied.push(version),
                Direction::Down => applied.retain(|&v| v != version),
            }
        }
        applied
    }

    /// The newest applied version after the whole plan.
    pub fn planned_version_after(&self) -> Option<i64> {
        self.version_after(self.steps.iter().map(|s| (s.direction, s.migration.version)))
    }
}
