//! Changes to history rows that run no migration: `repair`, `resolve`, and the records of `baseline` and `adopt`.

use super::refusal::{Refusal, ResolveProblem};
use super::value::{Found, HistoryFix, PlanOptions, Prologue, Resolution, Step};
use super::verify::verify_history;
use crate::foreign::{ForeignHistory, Tool};
use crate::model::{AppliedMigration, RecordSource, Recorded, RowState};
use crate::set::MigrationSet;

/// The parts of a plan that records `fixes`: the history table first when it is missing, and the recorded versions
/// counted as applied.
pub(super) type Parts<'m> = (Option<Prologue>, Vec<Step<'m>>, Vec<HistoryFix<'m>>, Vec<i64>);

pub(super) fn record<'m>(found: &Found, fixes: Vec<HistoryFix<'m>>, mut base: Vec<i64>) -> Parts<'m> {
    let prologue = (matches!(found, Found::NoTable) && !fixes.is_empty()).then_some(Prologue::Create { schema: false });
    base.extend(fixes.iter().map(HistoryFix::version));
    (prologue, Vec::new(), fixes, base)
}

/// `baseline`: every migration of the set up to `version`, in the set's order, that the history does not have.
/// Refused for a missing schema, a version the binary lacks, a history that does not match the binary, or one that
/// has a migration after `version`.
pub(super) fn baseline_fixes<'m>(
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
pub(super) fn adopt_fixes<'m>(
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

/// Every clean applied migration whose recorded checksums or name differ from the binary's.
pub(super) fn repair_fixes<'m>(set: &'m MigrationSet, history: &[AppliedMigration]) -> Vec<HistoryFix<'m>> {
    history
        .iter()
        .filter(|applied| !applied.is_dirty())
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

pub(super) fn resolve_fix(
    history: &[AppliedMigration],
    version: i64,
    resolution: Resolution,
) -> Result<HistoryFix<'static>, Refusal> {
    let refuse = |problem| Refusal::NothingToResolve { version, problem };
    let row = history.iter().find(|a| a.version == version).ok_or_else(|| refuse(ResolveProblem::NoHistoryRow))?;
    match &row.state {
        RowState::Clean => return Err(refuse(ResolveProblem::NotDirty)),
        RowState::Running { runner, .. } => return Err(Refusal::InProgress { version, runner: runner.clone() }),
        RowState::Interrupted { .. } | RowState::Failed { .. } => {}
    }
    Ok(match resolution {
        Resolution::Applied => HistoryFix::MarkApplied(version),
        Resolution::NotApplied => HistoryFix::MarkNotApplied(version),
    })
}
