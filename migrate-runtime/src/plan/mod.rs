//! The planner: (operation, options, embedded set, what was read) → a [`Plan`] value, or a typed refusal. Pure: no
//! I/O, so every operation and every divergent, missing, repeated and out-of-order case is unit-tested without a
//! database. The engine executes a `Plan`; the dry run renders the same `Plan`.
//!
//! Versions are ordered as the set orders them (numerically for most layouts, as strings for diesel's), never by
//! comparing the numbers themselves.

mod fixes;
mod refusal;
mod steps;
#[cfg(test)]
mod tests;
mod value;
mod verify;

use crate::foreign::ForeignHistory;
use crate::model::{Execution, TransactionMode};
use crate::set::MigrationSet;
use crate::target::Target;
use fixes::{adopt_fixes, baseline_fixes, record, repair_fixes, resolve_fix};
pub use refusal::{Refusal, ResolveProblem};
use steps::{downgrade_steps, upgrade_steps};
pub use value::{Found, HistoryFix, Operation, Plan, PlanOptions, Prologue, Resolution, Step};
pub use verify::verify_history;

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
