//! The planner: applied history + embedded set + request → the steps to run, or a refusal. Pure: no I/O, so every
//! divergent, missing, repeated and out-of-order case is unit-tested without a database.

use migrate_core::{Checksum, Migration};

use crate::{Error, MigrationSet, Target};

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
    /// When it was applied, as PostgreSQL prints a `timestamptz`.
    pub applied_at: String,
    /// How long it took, in milliseconds.
    pub execution_ms: i64,
    /// The database role that applied it.
    pub applied_by: String,
    /// A no-transaction migration that started and did not finish.
    pub dirty: bool,
}

/// Which way a step moves the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// Run the up script and record the version.
    Apply,
    /// Run the down script and delete the version's record.
    Revert,
}

/// One step of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'m> {
    /// Apply or revert.
    pub kind: StepKind,
    /// The migration.
    pub migration: &'m Migration,
}

impl Step<'_> {
    /// The script this step runs.
    pub fn script(&self) -> &migrate_core::Script {
        match self.kind {
            StepKind::Apply => &self.migration.up,
            // The planner only emits a revert for a migration with a down script.
            StepKind::Revert => self.migration.down.as_ref().unwrap_or(&self.migration.up),
        }
    }
}

/// Whether an upgrade or a downgrade was asked for: the same target means different things to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `upgrade`: head, a version at or above the current one, or `+N`.
    Up,
    /// `downgrade`: base, a version at or below the current one, or `-N`.
    Down,
}

/// Options that change what the planner accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Accept applied versions that the binary does not have (a rolled-back deploy).
    pub allow_missing: bool,
    /// Apply pending migrations numbered below the newest applied one instead of refusing.
    pub allow_out_of_order: bool,
}

/// Plan the steps that move `schema` from `history` to `target`.
///
/// ```
/// use migrate_runtime::{plan, Direction, Migration, MigrationSet, PlanOptions, Script, StepKind, Target};
///
/// let m = |v: i64| Migration { version: v, name: "m".into(), up: Script::new("m.up.sql", "SELECT 1"), down: None };
/// let set = MigrationSet::from_migrations(vec![m(1), m(2)]);
/// let steps = plan("dev", &set, &[], Direction::Up, Target::Head, PlanOptions::default()).unwrap();
/// assert_eq!(steps.len(), 2);
/// assert_eq!(steps[0].kind, StepKind::Apply);
/// ```
pub fn plan<'m>(
    schema: &str,
    set: &'m MigrationSet,
    history: &[AppliedMigration],
    direction: Direction,
    target: Target,
    options: PlanOptions,
) -> Result<Vec<Step<'m>>, Error> {
    verify_history(schema, set, history, options)?;
    let current = history.iter().map(|a| a.version).max();
    let bad_target = |problem: String| Error::BadTarget { schema: schema.to_owned(), problem };
    match direction {
        Direction::Up => {
            let pending: Vec<&Migration> =
                set.iter().filter(|m| !history.iter().any(|a| a.version == m.version)).collect();
            if let (Some(newest_applied), false) = (current, options.allow_out_of_order) {
                if let Some(early) = pending.iter().find(|m| m.version < newest_applied) {
                    return Err(Error::OutOfOrder {
                        schema: schema.to_owned(),
                        version: early.version,
                        file: early.file().to_owned(),
                        newest_applied,
                    });
                }
            }
            let chosen: Vec<&Migration> = match target {
                Target::Head => pending,
                Target::Relative(n) if n > 0 => pending.into_iter().take(n as usize).collect(),
                Target::Version(v) => {
                    if set.get(v).is_none() {
                        return Err(bad_target(format!("target version {v} is not in this binary's migrations")));
                    }
                    if let Some(current) = current.filter(|&c| v < c) {
                        return Err(bad_target(format!(
                            "target version {v} is below the current version {current}: use downgrade"
                        )));
                    }
                    pending.into_iter().filter(|m| m.version <= v).collect()
                }
                Target::Base | Target::Relative(_) => {
                    return Err(bad_target(format!("cannot upgrade to `{target}`: use head, a version or +N")))
                }
            };
            Ok(chosen.into_iter().map(|migration| Step { kind: StepKind::Apply, migration }).collect())
        }
        Direction::Down => {
            let mut applied: Vec<&AppliedMigration> = history.iter().collect();
            applied.sort_by_key(|a| std::cmp::Reverse(a.version));
            let count = match target {
                Target::Base => applied.len(),
                Target::Relative(n) if n < 0 => {
                    let n = n.unsigned_abs() as usize;
                    if n > applied.len() {
                        return Err(bad_target(format!(
                            "cannot step down {n}: only {} migration(s) are applied",
                            applied.len()
                        )));
                    }
                    n
                }
                Target::Version(v) => {
                    if !history.iter().any(|a| a.version == v) {
                        return Err(bad_target(format!("target version {v} is not applied in this schema")));
                    }
                    applied.iter().take_while(|a| a.version > v).count()
                }
                Target::Head | Target::Relative(_) => {
                    return Err(bad_target(format!("cannot downgrade to `{target}`: use base, a version or -N")))
                }
            };
            applied[..count]
                .iter()
                .map(|a| {
                    // verify_history has made sure that every applied version is known, unless allow_missing.
                    let migration = set.get(a.version).ok_or_else(|| Error::MissingFromBinary {
                        schema: schema.to_owned(),
                        version: a.version,
                        name: a.name.clone(),
                    })?;
                    if migration.down.is_none() {
                        return Err(Error::MissingDownFile {
                            schema: schema.to_owned(),
                            version: a.version,
                            file: migration.file().to_owned(),
                        });
                    }
                    Ok(Step { kind: StepKind::Revert, migration })
                })
                .collect()
        }
    }
}

/// Refuse a history that does not match the binary: dirty rows, edited files, versions the binary lacks.
pub fn verify_history(
    schema: &str,
    set: &MigrationSet,
    history: &[AppliedMigration],
    options: PlanOptions,
) -> Result<(), Error> {
    for applied in history {
        if applied.dirty {
            return Err(Error::Dirty {
                schema: schema.to_owned(),
                version: applied.version,
                name: applied.name.clone(),
            });
        }
        let Some(migration) = set.get(applied.version) else {
            if options.allow_missing {
                continue;
            }
            return Err(Error::MissingFromBinary {
                schema: schema.to_owned(),
                version: applied.version,
                name: applied.name.clone(),
            });
        };
        let mismatch = |file: &str, recorded: Checksum, embedded: Checksum| Error::ChecksumMismatch {
            schema: schema.to_owned(),
            version: applied.version,
            file: file.to_owned(),
            recorded: recorded.to_string(),
            embedded: embedded.to_string(),
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
        }
    }

    fn history(set: &MigrationSet, versions: &[i64]) -> Vec<AppliedMigration> {
        versions.iter().map(|&v| applied(set.get(v).unwrap())).collect()
    }

    fn steps(
        set: &MigrationSet,
        history: &[AppliedMigration],
        direction: Direction,
        target: Target,
    ) -> Result<Vec<(StepKind, i64)>, Error> {
        plan("s", set, history, direction, target, PlanOptions::default())
            .map(|steps| steps.iter().map(|s| (s.kind, s.migration.version)).collect())
    }

    use StepKind::{Apply, Revert};

    #[test]
    fn fresh_schema_applies_everything_in_order() {
        let set = set(&[1, 2, 10]);
        assert_eq!(steps(&set, &[], Direction::Up, Target::Head).unwrap(), [(Apply, 1), (Apply, 2), (Apply, 10)]);
    }

    #[test]
    fn up_to_date_schema_plans_nothing() {
        let set = set(&[1, 2]);
        assert_eq!(steps(&set, &history(&set, &[1, 2]), Direction::Up, Target::Head).unwrap(), []);
    }

    #[test]
    fn upgrade_targets() {
        let set = set(&[1, 2, 3, 4]);
        let h = history(&set, &[1]);
        assert_eq!(steps(&set, &h, Direction::Up, Target::Version(3)).unwrap(), [(Apply, 2), (Apply, 3)]);
        assert_eq!(steps(&set, &h, Direction::Up, Target::Relative(1)).unwrap(), [(Apply, 2)]);
        assert_eq!(steps(&set, &h, Direction::Up, Target::Relative(9)).unwrap().len(), 3);
        assert_eq!(steps(&set, &h, Direction::Up, Target::Version(1)).unwrap(), []);
        let below = steps(&set, &history(&set, &[1, 2]), Direction::Up, Target::Version(1)).unwrap_err();
        assert!(below.to_string().contains("below the current version 2: use downgrade"), "{below}");
        assert!(matches!(steps(&set, &h, Direction::Up, Target::Version(7)), Err(Error::BadTarget { .. })));
        assert!(matches!(steps(&set, &h, Direction::Up, Target::Base), Err(Error::BadTarget { .. })));
        assert!(matches!(steps(&set, &h, Direction::Up, Target::Relative(-1)), Err(Error::BadTarget { .. })));
    }

    #[test]
    fn downgrade_targets_revert_newest_first() {
        let set = set(&[1, 2, 3]);
        let h = history(&set, &[1, 2, 3]);
        assert_eq!(steps(&set, &h, Direction::Down, Target::Relative(-1)).unwrap(), [(Revert, 3)]);
        assert_eq!(steps(&set, &h, Direction::Down, Target::Version(1)).unwrap(), [(Revert, 3), (Revert, 2)]);
        assert_eq!(steps(&set, &h, Direction::Down, Target::Base).unwrap(), [(Revert, 3), (Revert, 2), (Revert, 1)]);
        assert!(matches!(steps(&set, &h, Direction::Down, Target::Relative(-4)), Err(Error::BadTarget { .. })));
        assert!(matches!(steps(&set, &h, Direction::Down, Target::Head), Err(Error::BadTarget { .. })));
        assert!(matches!(
            steps(&set, &history(&set, &[1]), Direction::Down, Target::Version(2)),
            Err(Error::BadTarget { .. })
        ));
    }

    #[test]
    fn downgrade_refuses_up_front_when_a_down_file_is_missing() {
        let set = MigrationSet::from_migrations(vec![migration(1, true), migration(2, false), migration(3, true)]);
        let h = history(&set, &[1, 2, 3]);
        let error = steps(&set, &h, Direction::Down, Target::Base).unwrap_err();
        assert!(matches!(error, Error::MissingDownFile { version: 2, .. }), "{error}");
        // Reverting only 3 does not need 2's down file.
        assert_eq!(steps(&set, &h, Direction::Down, Target::Relative(-1)).unwrap(), [(Revert, 3)]);
    }

    #[test]
    fn edited_up_or_down_file_is_refused() {
        let set = set(&[1, 2]);
        let mut h = history(&set, &[1, 2]);
        h[1].checksum = Checksum::of("something else");
        let error = steps(&set, &h, Direction::Up, Target::Head).unwrap_err();
        assert!(
            matches!(&error, Error::ChecksumMismatch { version: 2, file, .. } if file == "migrations/2_m.up.sql"),
            "{error}"
        );
        let mut h = history(&set, &[1, 2]);
        h[0].down_checksum = Some(Checksum::of("old down"));
        let error = steps(&set, &h, Direction::Down, Target::Base).unwrap_err();
        assert!(
            matches!(&error, Error::ChecksumMismatch { version: 1, file, .. } if file == "migrations/1_m.down.sql"),
            "{error}"
        );
        // A down file added after apply (nothing recorded) is accepted.
        h[0].down_checksum = None;
        assert!(steps(&set, &h, Direction::Up, Target::Head).is_ok());
    }

    #[test]
    fn applied_version_missing_from_binary_is_refused_unless_allowed() {
        let old = set(&[1, 2, 3]);
        let h = history(&old, &[1, 2, 3]);
        let new = set(&[1, 2]);
        let error = steps(&new, &h, Direction::Up, Target::Head).unwrap_err();
        assert!(matches!(error, Error::MissingFromBinary { version: 3, .. }), "{error}");
        let allowed = PlanOptions { allow_missing: true, ..PlanOptions::default() };
        assert!(plan("s", &new, &h, Direction::Up, Target::Head, allowed).unwrap().is_empty());
        // Reverting a version the binary lacks is impossible even when allowed.
        let error = plan("s", &new, &h, Direction::Down, Target::Relative(-1), allowed).unwrap_err();
        assert!(matches!(error, Error::MissingFromBinary { version: 3, .. }), "{error}");
    }

    #[test]
    fn out_of_order_is_refused_unless_allowed() {
        let set = set(&[1, 2, 3]);
        let h = history(&set, &[1, 3]);
        let error = steps(&set, &h, Direction::Up, Target::Head).unwrap_err();
        assert!(matches!(error, Error::OutOfOrder { version: 2, newest_applied: 3, .. }), "{error}");
        let allowed = PlanOptions { allow_out_of_order: true, ..PlanOptions::default() };
        let steps = plan("s", &set, &h, Direction::Up, Target::Head, allowed).unwrap();
        assert_eq!(steps.iter().map(|s| s.migration.version).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn dirty_history_is_refused() {
        let set = set(&[1, 2]);
        let mut h = history(&set, &[1, 2]);
        h[1].dirty = true;
        let error = steps(&set, &h, Direction::Up, Target::Head).unwrap_err();
        assert!(matches!(error, Error::Dirty { version: 2, .. }), "{error}");
    }
}
