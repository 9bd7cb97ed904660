//! The plan as the query strings the engine sends: the history table's SQL ([`history`]) put together into as few
//! round trips as the plan allows ([`compile`]), and the same strings cut at the steps for the dry run
//! ([`render`]). Pure: no I/O.

pub(crate) mod history;

use std::time::Duration;

use crate::model::{Execution, TransactionMode};
use crate::model::{PlannedStep, Preview};
use crate::plan::{HistoryFix, Plan, Prologue, Step};
use crate::schema::SchemaName;
use crate::session::QueryError;
use crate::sql::{qualify_relations, split_statements, without_concurrently};
use history::{HistoryTable, Timeouts};

/// One query string the engine sends, or one no-transaction step (sent statement by statement).
pub(crate) enum Outgoing<'p, 'm> {
    Batch(Batch<'p, 'm>),
    Untransacted(&'p Step<'m>),
}

/// A query string, and where each step's part of it and each step's script sit in it.
pub(crate) struct Batch<'p, 'm> {
    pub sql: String,
    /// Characters in `sql` so far: PostgreSQL reports error positions in characters.
    pub chars: usize,
    pub parts: Vec<Part<'p, 'm>>,
    /// All of it commits or none (one transaction), or each step commits on its own.
    pub mode: TransactionMode,
    /// The prologue it runs, for error messages.
    pub prologue: Option<Prologue>,
    /// It writes the plan's history fixes.
    pub fixes: bool,
}

pub(crate) struct Part<'p, 'm> {
    pub step: &'p Step<'m>,
    /// Byte range of the step's SQL in the batch.
    pub range: std::ops::Range<usize>,
    /// First character of the step's script in the batch.
    pub script_start: usize,
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
    pub fn part_at(&self, error: &QueryError) -> Option<usize> {
        let position = error.server()?.position?;
        self.parts.iter().rposition(|part| part.script_start < position)
    }
}

/// How the first transaction of a plan begins.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// The engine opened it and took the lock before planning: nothing to send.
    AlreadyOpen,
    /// Shown by the dry run: the statement that opens it and takes the lock.
    Shown,
}

/// The plan as the query strings the engine sends, in order. The first transaction is the one that took the lock;
/// each later one opens with a guard that takes it again. A no-transaction step is claimed in a transaction first.
pub(crate) fn compile<'p, 'm>(
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
pub(crate) fn render(table: &HistoryTable, timeouts: Timeouts, plan: &Plan<'_>) -> Preview {
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
                    let concurrent = matches!(without_concurrently(&bare), std::borrow::Cow::Owned(_));
                    if concurrent || bare != statement.trim() {
                        let (before, after) = timeouts.around_outside_transaction(&bare);
                        for sent in before.iter().chain(std::iter::once(&bare)).chain(after.iter()) {
                            sql.push_str(&format!("{sent};\n"));
                        }
                        sql.push_str(&format!("{};\n", table.progress_sql(step, runner, i + 1)));
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

impl Preview {
    fn of(
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
            fixes: plan.fixes.iter().map(HistoryFix::fix).collect(),
            epilogue,
            creates: plan.prologue.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::history::LOST_LOCK_SQLSTATE;
    use crate::plan::{plan, Found, Operation, PlanOptions};
    use crate::set::MigrationSet;
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
