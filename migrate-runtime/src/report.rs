//! What an operation did ([`Report`]) or would do ([`Preview`]), built from what happened: the steps that
//! committed and the fixes that were written, never patched afterwards.

use std::time::Duration;

use migrate_core::Direction;

use crate::history::Recorded;
use crate::plan::{Execution, HistoryFix, Plan, RecordSource, TransactionMode};
use crate::schema::SchemaName;

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
}

impl Report {
    /// The report of a run that started at `version_before` and ended with `plan`, of which the last of `steps`
    /// committed (earlier ones may come from earlier plans of the same run), and `fixes` were written.
    pub(crate) fn of(
        schema: &SchemaName,
        version_before: Option<i64>,
        plan: &Plan<'_>,
        steps: Vec<StepReport>,
        fixes: Vec<Fix>,
    ) -> Report {
        let version_after = plan.version_after(steps.iter().map(|s| (s.direction, s.version)));
        Report { schema: schema.to_string(), version_before, version_after, steps, fixes }
    }

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

impl Fix {
    pub(crate) fn of(fix: &HistoryFix<'_>) -> Fix {
        let kind = match fix {
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
        Fix { version: fix.version(), kind }
    }
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
}

impl Preview {
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

impl Preview {
    pub(crate) fn of(
        schema: &SchemaName,
        plan: &Plan<'_>,
        prologue: Option<String>,
        steps: Vec<PlannedStep>,
        epilogue: Option<String>,
    ) -> Preview {
        Preview {
            schema: schema.to_string(),
            version_before: plan.version_before,
            version_after: plan.planned_version_after(),
            transaction: plan.transaction,
            prologue,
            steps,
            fixes: plan.fixes.iter().map(Fix::of).collect(),
            epilogue,
        }
    }
}
