use super::*;
use crate::foreign::Tool;
use crate::model::{AppliedMigration, RecordSource, RowState};
use migrate_core::{Checksum, Direction, Migration, Script};

fn migration(version: i64, with_down: bool) -> Migration {
    let file = format!("migrations/{version}_m.up.sql");
    Migration {
        version,
        name: "m".into(),
        up: Script::new(file, format!("SELECT {version};")),
        down: with_down.then(|| Script::new(format!("migrations/{version}_m.down.sql"), format!("SELECT -{version};"))),
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
        state: RowState::Clean,
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
    rows[1].state = RowState::Failed { failure: None };
    let error = planned(&set, &Found::History(rows), up(Target::Head)).unwrap_err();
    assert!(matches!(error, Refusal::Dirty { version: 2, .. }), "{error}");
}

fn dirty(set: &MigrationSet, versions: &[i64], state: RowState) -> Found {
    let Found::History(mut rows) = history(set, versions) else { unreachable!() };
    rows.last_mut().unwrap().state = state;
    Found::History(rows)
}

#[test]
fn a_no_transaction_migration_is_waited_for_resumed_or_refused_by_what_its_row_says() {
    let set = MigrationSet::from_migrations(vec![migration(1, true), untransacted(2), migration(3, true)]);
    let runner = "svc migrate 7".to_owned();
    let running = RowState::Running { runner: runner.clone(), statements_done: 1, direction: Direction::Up };
    let running = planned(&set, &dirty(&set, &[1, 2], running), up(Target::Head)).unwrap_err();
    assert!(
        matches!(&running, Refusal::InProgress { version: 2, runner, .. } if runner == "svc migrate 7"),
        "{running}"
    );

    let interrupted =
        dirty(&set, &[1, 2], RowState::Interrupted { runner, statements_done: 1, direction: Direction::Up });
    let plan = plan_ok(&set, &interrupted, up(Target::Head));
    let steps: Vec<_> = plan.steps.iter().map(|s| (s.direction, s.migration.version, s.resume_from)).collect();
    assert_eq!(steps, [(Apply, 2, Some(1)), (Apply, 3, None)], "resumed first, then the rest");
    let error = planned(&set, &interrupted, down(Target::Base)).unwrap_err();
    assert!(matches!(error, Refusal::Interrupted { version: 2, direction: Direction::Up, .. }), "{error}");

    let failed = RowState::Failed { failure: Some("deadlock detected".into()) };
    let error = planned(&set, &dirty(&set, &[1, 2], failed), up(Target::Head)).unwrap_err();
    assert!(
        matches!(&error, Refusal::Dirty { version: 2, failure: Some(f), .. } if f == "deadlock detected"),
        "{error}"
    );
    assert!(error.to_string().contains("an earlier run failed part-way: deadlock detected"), "{error}");
    // A row left dirty by an older version says nothing about its runner (`parse_row` reads it as failed).
    let error = planned(&set, &dirty(&set, &[1, 2], RowState::Failed { failure: None }), up(Target::Head)).unwrap_err();
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
    rows[0].state = RowState::Failed { failure: None };
    assert!(super::plan(&set, &Found::History(rows), Operation::Reset, PlanOptions::default()).is_ok());
}

#[test]
fn repair_records_the_binarys_checksums_and_names_of_clean_rows() {
    let set = set(&[1, 2, 3]);
    let Found::History(mut rows) = history(&set, &[1, 2, 3]) else { unreachable!() };
    rows[0].checksum = Checksum::of("old");
    rows[1].name = "renamed".into();
    rows[2].state = RowState::Failed { failure: None };
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
    rows[1].state = RowState::Failed { failure: None };
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
    let set = MigrationSet::from_ordered(vec![migration(first, true), migration(second, true), migration(third, true)]);
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
