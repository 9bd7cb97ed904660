//! The JSON sink: one document per command, from typed outcomes that derive `Serialize`. Keys come out sorted
//! (the document goes through `serde_json::Value`), so the shapes are stable whatever order the fields are in.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::advice::{error_text, problem_text};
use crate::error::CliError;
use crate::exit::{self, ExitCode};
use migrate_ops::{Definition, Difference, Error, HistoryEntry, Outcome, SchemaStatus, Verification};
use migrate_runtime::{
    Checksum, Execution, Fix, FixKind, PlannedStep, Preview, RecordSource, Recorded, Report as RunReport, SchemaName,
    SqlState, StepReport,
};

/// One schema's entry in a command's document, with its database when the command works on several.
#[derive(Debug, Serialize)]
pub(crate) struct Entry {
    #[serde(flatten)]
    pub outcome: SchemaOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// What happened to one schema, by command.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum SchemaOutcome {
    Changed(Changed),
    Planned(Planned),
    Status(Status),
    History(History),
    Verified(Verified),
    Failed(Failed),
}

/// `changed` or `unchanged`, `planned` (a dry run), `failed`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    Changed,
    Unchanged,
    Planned,
    Refused,
    Interrupted,
    Failed,
}

#[derive(Debug, Serialize)]
pub(crate) struct Changed {
    schema: String,
    outcome: Verdict,
    version_before: Option<i64>,
    version_after: Option<i64>,
    steps: Vec<Step>,
    fixes: Vec<FixOut>,
    /// What another process applied or reverted meanwhile (`kind` `apply` or `revert`).
    by_others: Vec<OtherOut>,
}

#[derive(Debug, Serialize)]
struct OtherOut {
    version: i64,
    kind: &'static str,
}

impl Changed {
    pub fn of(report: &RunReport) -> Changed {
        Changed {
            schema: report.schema.clone(),
            outcome: if report.is_unchanged() { Verdict::Unchanged } else { Verdict::Changed },
            version_before: report.version_before,
            version_after: report.version_after,
            steps: report.steps.iter().map(Step::of).collect(),
            fixes: report.fixes.iter().map(FixOut::of).collect(),
            by_others: report
                .by_others
                .iter()
                .map(|o| OtherOut { version: o.version, kind: o.direction.verb() })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Failed {
    schema: String,
    outcome: Verdict,
    error: String,
    sqlstate: Option<String>,
    exit_code: ExitCode,
    committed: Vec<Step>,
}

impl Failed {
    pub fn of(schema: &SchemaName, error: &Error) -> Failed {
        Failed {
            schema: schema.to_string(),
            outcome: match exit::Failure::of(error) {
                exit::Failure::Refused => Verdict::Refused,
                exit::Failure::Interrupted => Verdict::Interrupted,
                exit::Failure::Failed => Verdict::Failed,
            },
            error: error_text(error),
            sqlstate: sqlstate(error).map(|code| code.to_string()),
            exit_code: exit::code_of(error),
            committed: error.committed().iter().map(Step::of).collect(),
        }
    }
}

/// A step that committed: `kind` is `apply` or `revert`.
#[derive(Debug, Serialize)]
struct Step {
    version: i64,
    name: String,
    kind: &'static str,
    duration_ms: Option<u64>,
}

impl Step {
    fn of(step: &StepReport) -> Step {
        Step {
            version: step.version,
            name: step.name.clone(),
            kind: step.direction.verb(),
            duration_ms: step.duration.map(|d| d.as_millis() as u64),
        }
    }
}

/// A history fix: `fix` is its label (`repaired`, `marked applied`, `baselined`, `adopted`, ...).
#[derive(Debug, Serialize)]
struct FixOut {
    version: i64,
    fix: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<RecordedOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<RecordedOut>,
}

impl FixOut {
    fn of(fix: &Fix) -> FixOut {
        let from = match fix.kind {
            FixKind::Recorded { source: RecordSource::Adopted(tool) } => Some(tool.label()),
            _ => None,
        };
        let (before, after) = match &fix.kind {
            FixKind::Repaired { before, after } => (Some(RecordedOut::of(before)), Some(RecordedOut::of(after))),
            _ => (None, None),
        };
        FixOut { version: fix.version, fix: fix.kind.label(), from, before, after }
    }
}

#[derive(Debug, Serialize)]
struct RecordedOut {
    name: String,
    checksum: String,
    down_checksum: Option<String>,
}

impl RecordedOut {
    fn of(recorded: &Recorded) -> RecordedOut {
        RecordedOut {
            name: recorded.name.clone(),
            checksum: recorded.checksum.to_string(),
            down_checksum: recorded.down_checksum.as_ref().map(Checksum::to_string),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Planned {
    schema: String,
    outcome: Verdict,
    version_before: Option<i64>,
    version_after: Option<i64>,
    prologue: Option<String>,
    steps: Vec<PlannedOut>,
    fixes: Vec<FixOut>,
    epilogue: Option<String>,
}

impl Planned {
    pub fn of(preview: &Preview) -> Planned {
        Planned {
            schema: preview.schema.clone(),
            outcome: Verdict::Planned,
            version_before: preview.version_before,
            version_after: preview.version_after,
            prologue: preview.prologue.clone(),
            steps: preview.steps.iter().map(PlannedOut::of).collect(),
            fixes: preview.fixes.iter().map(FixOut::of).collect(),
            epilogue: preview.epilogue.clone(),
        }
    }
}

/// A step of a dry run, with the SQL it would send.
#[derive(Debug, Serialize)]
struct PlannedOut {
    version: i64,
    name: String,
    kind: &'static str,
    file: String,
    no_transaction: bool,
    execution: &'static str,
    sql: String,
}

impl PlannedOut {
    fn of(step: &PlannedStep) -> PlannedOut {
        PlannedOut {
            version: step.version,
            name: step.name.clone(),
            kind: step.direction.verb(),
            file: step.file.clone(),
            no_transaction: step.execution == Execution::Untransacted,
            execution: step.execution.label(),
            sql: step.sql.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Status {
    schema: String,
    version: Option<i64>,
    name: Option<String>,
    head: Option<i64>,
    pending: usize,
    state: &'static str,
    problem: Option<String>,
    migrating_now: Option<String>,
    last_failure: Option<LastFailure>,
}

/// [`migrate_ops::LastFailure`] in a status document.
#[derive(Debug, Serialize)]
pub(crate) struct LastFailure {
    at: String,
    version: Option<i64>,
    sqlstate: Option<String>,
    message: String,
}

impl Status {
    pub fn of(status: &SchemaStatus) -> Status {
        Status {
            schema: status.schema.clone(),
            version: status.current.as_ref().map(|c| c.0),
            name: status.current.as_ref().map(|c| c.1.clone()),
            head: status.head,
            pending: status.pending,
            state: status.state.label(),
            problem: status.problem.as_ref().map(|p| problem_text(&status.schema, p)),
            migrating_now: status.migrating_now.as_ref().map(ToString::to_string),
            last_failure: status.last_failure.as_ref().map(|failure| LastFailure {
                at: failure.at.clone(),
                version: failure.version,
                sqlstate: failure.sqlstate.clone(),
                message: failure.message.clone(),
            }),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct History {
    schema: String,
    migrations: Vec<HistoryMigration>,
}

#[derive(Debug, Serialize)]
struct HistoryMigration {
    version: i64,
    name: String,
    state: &'static str,
    applied_at: Option<String>,
    execution_ms: Option<i64>,
    applied_by: Option<String>,
}

impl History {
    pub fn of(schema: &SchemaName, entries: &[HistoryEntry]) -> History {
        let migrations = entries
            .iter()
            .map(|e| HistoryMigration {
                version: e.version,
                name: e.name.clone(),
                state: e.state().label(),
                applied_at: e.applied.as_ref().map(|a| a.applied_at.clone()),
                execution_ms: e.applied.as_ref().map(|a| a.execution_ms),
                applied_by: e.applied.as_ref().map(|a| a.applied_by.clone()),
            })
            .collect();
        History { schema: schema.to_string(), migrations }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Verified {
    schema: String,
    version: Option<i64>,
    outcome: &'static str,
    differences: Vec<DifferenceOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ahead_versions: Option<Vec<i64>>,
}

impl Verified {
    pub fn of(verification: &Verification) -> Verified {
        let (differences, ahead_versions) = match &verification.outcome {
            Outcome::Differs(differences) => (differences.iter().map(DifferenceOut::of).collect(), None),
            Outcome::Ahead { versions } => (Vec::new(), Some(versions.clone())),
            _ => (Vec::new(), None),
        };
        Verified {
            schema: verification.schema.to_string(),
            version: verification.version,
            outcome: verification.outcome.label(),
            differences,
            ahead_versions,
        }
    }
}

/// One difference for scripts: `label` (`missing`, `extra`, `changed`), `kind`, `object`, `text` (the line people
/// read), and the attributes: `expected` (the reference, or A) and `found` (the schema, or B), `changed` naming
/// the attributes that differ. A flag attribute (`not null`, `invalid`) is an empty string.
#[derive(Debug, Serialize)]
struct DifferenceOut {
    label: &'static str,
    kind: &'static str,
    object: String,
    table: Option<String>,
    name: String,
    arguments: Option<String>,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    found: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<Vec<String>>,
}

impl DifferenceOut {
    fn of(difference: &Difference) -> DifferenceOut {
        let attributes = |definition: &Definition| -> BTreeMap<String, String> {
            definition.attributes().map(|(name, value)| (name.to_owned(), value.to_owned())).collect()
        };
        let (expected, found, changed) = match difference {
            Difference::Missing { definition, .. } => (Some(attributes(definition)), None, None),
            Difference::Extra { definition, .. } => (None, Some(attributes(definition)), None),
            Difference::Changed { expected, found, .. } => (
                Some(attributes(expected)),
                Some(attributes(found)),
                Some(expected.changed_attributes(found).into_iter().map(str::to_owned).collect()),
            ),
        };
        let name = difference.name();
        DifferenceOut {
            label: difference.label(),
            kind: difference.kind().label(),
            object: name.to_string(),
            table: name.table.clone(),
            name: name.name.clone(),
            arguments: name.arguments.clone(),
            text: difference.to_string(),
            expected,
            found,
            changed,
        }
    }
}

/// The counts at the end of a command's document: states for commands that read, changes for those that change.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Summary {
    Read {
        schemas: usize,
        states: BTreeMap<&'static str, usize>,
        refused: usize,
        failed: usize,
        not_started: usize,
    },
    Changed {
        schemas: usize,
        changed: usize,
        unchanged: usize,
        /// Schemas another process changed while this run worked on them.
        by_others: usize,
        refused: usize,
        failed: usize,
        not_started: usize,
    },
    Planned {
        schemas: usize,
        would_change: usize,
        unchanged: usize,
        refused: usize,
        failed: usize,
        not_started: usize,
    },
}

/// A command's document: every schema's entry in the order given, the summary and the exit code.
#[derive(Debug, Serialize)]
pub(crate) struct Document {
    pub schemas: Vec<Entry>,
    pub summary: Summary,
    pub exit_code: ExitCode,
}

/// `diff A B --format json`: the two schemas, every difference, counts, the suggested SQL with `--sql`.
#[derive(Debug, Serialize)]
pub(crate) struct DiffDocument {
    a: String,
    b: String,
    equal: bool,
    differences: Vec<DifferenceOut>,
    summary: DiffSummary,
    sql: Option<String>,
    exit_code: ExitCode,
}

#[derive(Debug, Serialize)]
struct DiffSummary {
    only_in_a: usize,
    only_in_b: usize,
    changed: usize,
}

impl DiffDocument {
    pub fn of(a: &SchemaName, b: &SchemaName, differences: &[Difference], sql: Option<&str>, code: ExitCode) -> Self {
        let count = |label: &str| differences.iter().filter(|d| d.label() == label).count();
        DiffDocument {
            a: a.to_string(),
            b: b.to_string(),
            equal: differences.is_empty(),
            differences: differences.iter().map(DifferenceOut::of).collect(),
            summary: DiffSummary { only_in_a: count("missing"), only_in_b: count("extra"), changed: count("changed") },
            sql: sql.map(str::to_owned),
            exit_code: code,
        }
    }
}

/// What stopped a command before or around its per-schema work, with `--format json`: one document on stdout, as
/// every other outcome (the same words go to stderr).
#[derive(Debug, Serialize)]
pub(crate) struct ErrorDocument {
    error: String,
    kind: &'static str,
    exit_code: ExitCode,
    /// For `missing_schemas`: each schema and the nearest existing names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing: Vec<MissingOut>,
    /// For `not_confirmed`: the protected schemas the command would have changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    protected: Vec<String>,
}

#[derive(Debug, Serialize)]
struct MissingOut {
    schema: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    nearest: Vec<String>,
}

impl ErrorDocument {
    pub fn of(error: &CliError) -> ErrorDocument {
        let missing = match error {
            CliError::MissingSchemas { missing, .. } => missing
                .iter()
                .map(|m| MissingOut {
                    schema: m.schema.clone(),
                    database: m.database.clone(),
                    nearest: m.nearest.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        let protected = match error {
            CliError::NotConfirmed { schemas, .. } => schemas.clone(),
            _ => Vec::new(),
        };
        ErrorDocument {
            error: crate::advice::chain(error),
            kind: error.kind(),
            exit_code: exit::code_of_cli(error),
            missing,
            protected,
        }
    }
}

/// `revision --format json`: the version, the layout and the files written; for a generated revision, the number
/// of statements and the review notes.
#[derive(Debug, Serialize)]
pub(crate) struct RevisionDocument {
    pub version: i64,
    pub layout: String,
    pub up: std::path::PathBuf,
    pub down: Option<std::path::PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated: Option<GeneratedOut>,
}

#[derive(Debug, Serialize)]
pub(crate) struct GeneratedOut {
    after_version: i64,
    up_statements: usize,
    down_statements: usize,
    proven: bool,
    reviews: Vec<ReviewOut>,
}

#[derive(Debug, Serialize)]
struct ReviewOut {
    text: String,
    lint_rule: Option<&'static str>,
}

impl RevisionDocument {
    pub fn of(revision: &migrate_ops::Revision, generated: Option<&migrate_ops::Generated>) -> Self {
        RevisionDocument {
            version: revision.version,
            layout: revision.layout.to_string(),
            up: revision.up.clone(),
            down: revision.down.clone(),
            generated: generated.map(|generated| GeneratedOut {
                after_version: generated.head,
                up_statements: generated.up.len(),
                down_statements: generated.down.len(),
                proven: true,
                reviews: generated
                    .up
                    .reviews()
                    .map(|review| ReviewOut { text: review.text.clone(), lint_rule: review.lint_rule })
                    .collect(),
            }),
        }
    }
}

/// A document as printed: pretty, keys sorted.
pub(crate) fn print(document: &impl Serialize) -> String {
    match serde_json::to_value(document) {
        Ok(value) => format!("{value:#}"),
        // Every document here is plain data: maps with string keys, numbers, strings.
        Err(error) => format!("{{\"error\": {:?}}}", error.to_string()),
    }
}

/// PostgreSQL's SQLSTATE of a failed migration (`42P07`, `55P03`), when the server reported one.
pub(crate) fn sqlstate(error: &Error) -> Option<SqlState> {
    match error {
        Error::Migrate(error) => match error.kind() {
            migrate_runtime::ErrorKind::MigrationFailed { code, .. } => *code,
            migrate_runtime::ErrorKind::TableLocked { .. } => Some(SqlState::LOCK_NOT_AVAILABLE),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_difference_says_what_changed_on_which_side() {
        let (changed, missing) = crate::render::sample_differences();
        let value = serde_json::to_value(DifferenceOut::of(&changed)).unwrap();
        assert_eq!(value["label"], "changed");
        assert_eq!(value["object"], "touch()");
        assert_eq!(value["changed"], json!(["body", "strict"]));
        assert_eq!(value["expected"]["strict"], "");
        assert!(value["found"].get("strict").is_none());
        let value = serde_json::to_value(DifferenceOut::of(&missing)).unwrap();
        assert!(value.get("found").is_none() && value.get("changed").is_none(), "{value}");
    }

    #[test]
    fn exit_codes_are_numbers_and_outcomes_are_words() {
        let value = serde_json::to_value(Verdict::Unchanged).unwrap();
        assert_eq!(value, json!("unchanged"));
        assert_eq!(serde_json::to_value(ExitCode::Drift).unwrap(), json!(5));
    }
}
