//! The vocabulary every step shares: a history row and where it stands ([`AppliedMigration`], [`RowState`]), and
//! what an operation did or would do ([`Report`], [`Preview`]). A leaf: it imports nothing else of the crate but
//! the names of the tools `adopt` reads.

use std::time::Duration;

use migrate_core::{Checksum, Direction};

use crate::foreign::Tool;

/// One row of the history table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// The version.
    pub version: i64,
    /// The name recorded when it was applied.
    pub name: String,
    /// Checksum of the up file as applied.
    pub checksum: Checksum,
    /// Checksum of the down file as it was when the migration was applied, if it had one.
    pub down_checksum: Option<Checksum>,
    /// When it was applied, RFC 3339 in UTC (`2026-01-01T12:00:00.000000Z`).
    pub applied_at: String,
    /// How long it took, in milliseconds.
    pub execution_ms: i64,
    /// The database role that applied it.
    pub applied_by: String,
    /// Clean, or how far a no-transaction migration got and whether its runner is still there.
    pub state: RowState,
}

impl AppliedMigration {
    /// A no-transaction migration that started and did not finish (the row's `dirty` column).
    pub fn is_dirty(&self) -> bool {
        self.state != RowState::Clean
    }
}

/// Where a history row stands. A no-transaction migration's row records its progress while it runs, so that a
/// later run can tell a runner that is still at work from one that was interrupted, and one that was interrupted
/// from one that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowState {
    /// Applied, completely.
    Clean,
    /// Its runner is still at work (a backend has its application name, or its lease has not expired): wait for
    /// it. Only seen under the schema's migration lock; read without it, a running row reads as `Interrupted`.
    Running {
        /// The runner's `application_name`.
        runner: String,
        /// Statements of the script done so far.
        statements_done: usize,
        /// Which way it is going.
        direction: Direction,
    },
    /// Its runner went away (killed, disconnected) part-way: a later run resumes it.
    Interrupted {
        /// The runner's `application_name`, as it was.
        runner: String,
        /// Statements of the script done.
        statements_done: usize,
        /// Which way it was going.
        direction: Direction,
    },
    /// A statement failed, or an older version of this tool left it dirty: a person must look.
    Failed {
        /// PostgreSQL's message, when known.
        failure: Option<String>,
    },
}

impl RowState {
    /// The runner of a claimed row, running or interrupted.
    pub fn runner(&self) -> Option<&str> {
        match self {
            RowState::Running { runner, .. } | RowState::Interrupted { runner, .. } => Some(runner),
            RowState::Clean | RowState::Failed { .. } => None,
        }
    }
}

/// What a history row records about a migration's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The migration's name.
    pub name: String,
    /// Checksum of the up file.
    pub checksum: Checksum,
    /// Checksum of the down file, if it had one.
    pub down_checksum: Option<Checksum>,
}

impl Recorded {
    /// What `applied` records.
    pub fn of(applied: &AppliedMigration) -> Recorded {
        Recorded { name: applied.name.clone(), checksum: applied.checksum, down_checksum: applied.down_checksum }
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

/// What a migration run did to one schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The schema.
    pub schema: String,
    /// The newest applied version before the run.
    pub version_before: Option<i64>,
    /// The newest applied version after the run.
    pub version_after: Option<i64>,
    /// The steps run, in order; empty when the schema was already where it was asked to be.
    pub steps: Vec<StepReport>,
    /// History rows changed without running a migration (`repair`, `resolve`).
    pub fixes: Vec<Fix>,
    /// What another process applied or reverted in the schema while this run waited for it or worked on it (two
    /// operators, or replicas, at once): the schema's change from `version_before` is `steps` and these.
    pub by_others: Vec<OtherStep>,
}

/// A migration that another process applied or reverted in the schema during this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherStep {
    /// The version.
    pub version: i64,
    /// Applied (up) or reverted (down).
    pub direction: Direction,
}

impl Report {
    /// Nothing was changed.
    pub fn is_unchanged(&self) -> bool {
        self.steps.is_empty() && self.fixes.is_empty()
    }
}

/// One migration applied or reverted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The version.
    pub version: i64,
    /// The migration's name.
    pub name: String,
    /// Applied (up) or reverted (down).
    pub direction: Direction,
    /// Wall time of the step as the server measured it; `None` when the step committed in a query string whose
    /// later step failed, so its timing never came back.
    pub duration: Option<Duration>,
}

/// A change to a history row that runs no migration: what `repair` and `resolve` do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// The version.
    pub version: i64,
    /// What changed.
    pub kind: FixKind,
}

/// What a [`Fix`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixKind {
    /// The recorded checksums or name now match the binary.
    Repaired {
        /// What the history recorded.
        before: Recorded,
        /// What it records now: the binary's.
        after: Recorded,
    },
    /// A dirty record was marked clean.
    MarkedApplied,
    /// A dirty record was removed.
    MarkedNotApplied,
    /// A migration was recorded as applied without running it (`baseline`, `adopt`).
    Recorded {
        /// Why.
        source: RecordSource,
    },
}

impl FixKind {
    /// `repaired`, `marked applied` or `marked not applied`.
    pub fn label(&self) -> &'static str {
        match self {
            FixKind::Repaired { .. } => "repaired",
            FixKind::MarkedApplied => "marked applied",
            FixKind::MarkedNotApplied => "marked not applied",
            FixKind::Recorded { source: RecordSource::Baseline } => "baselined",
            FixKind::Recorded { source: RecordSource::Adopted(_) } => "adopted",
        }
    }
}

/// What a dry run found: the plan for one schema and the exact SQL it would send, in order:
/// `prologue`, each step's `sql`, then `epilogue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The schema.
    pub schema: String,
    /// Newest applied version now.
    pub version_before: Option<i64>,
    /// Newest applied version after the plan.
    pub version_after: Option<i64>,
    /// How the SQL is grouped into transactions.
    pub transaction: TransactionMode,
    /// SQL sent before the first step: opening the transaction, creating or resetting the schema.
    pub prologue: Option<String>,
    /// The steps, in order.
    pub steps: Vec<PlannedStep>,
    /// History fixes that would be written (`repair`, `resolve`).
    pub fixes: Vec<Fix>,
    /// SQL sent after the last step: the history fixes, the closing `COMMIT`.
    pub epilogue: Option<String>,
    /// The plan creates the history table (and the schema, when it is missing), or drops and recreates the schema.
    pub creates: bool,
}

impl Preview {
    /// The plan would change the schema: it runs a step, writes a history fix, or creates or resets the schema.
    pub fn would_change(&self) -> bool {
        !self.steps.is_empty() || !self.fixes.is_empty() || self.creates
    }

    /// All the SQL, in the order it would be sent.
    pub fn sql(&self) -> String {
        let steps = self.steps.iter().map(|s| s.sql.as_str());
        self.prologue.iter().map(String::as_str).chain(steps).chain(self.epilogue.as_deref()).collect()
    }
}

/// One step of a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// The version.
    pub version: i64,
    /// The migration's name.
    pub name: String,
    /// Apply (up) or revert (down).
    pub direction: Direction,
    /// The file that would run.
    pub file: String,
    /// Where it runs: in a transaction, outside any, or in the transaction that creates the schema.
    pub execution: Execution,
    /// The SQL that would be sent for this step.
    pub sql: String,
}
