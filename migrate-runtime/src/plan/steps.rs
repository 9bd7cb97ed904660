//! The steps of an upgrade or a downgrade: which migrations, in which order, after the checks both directions share.

use migrate_core::{Direction, Migration};

use super::refusal::Refusal;
use super::value::{PlanOptions, Step};
use super::verify::verify_history;
use crate::model::{AppliedMigration, RowState};
use crate::set::MigrationSet;
use crate::target::Target;

pub(super) fn upgrade_steps<'m>(
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

pub(super) fn downgrade_steps<'m>(
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
        match &applied.state {
            RowState::Interrupted { statements_done, direction: going, .. }
                if *going == direction && resume.is_none() =>
            {
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
                resume = Some(Step { resume_from: Some(*statements_done), ..Step::new(direction, migration, script) });
                if direction == Direction::Up {
                    rest.push(AppliedMigration { state: RowState::Clean, ..applied.clone() });
                }
            }
            _ => rest.push(applied.clone()),
        }
    }
    Ok((resume, rest))
}
