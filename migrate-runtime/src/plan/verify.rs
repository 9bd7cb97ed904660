//! Whether a history matches the binary: no dirty row, no edited file, no version the binary lacks.

use migrate_core::Checksum;

use super::refusal::Refusal;
use super::value::PlanOptions;
use crate::model::{AppliedMigration, RowState};
use crate::set::MigrationSet;

/// Refuse a history that does not match the binary: dirty rows, edited files, versions the binary lacks.
pub fn verify_history(set: &MigrationSet, history: &[AppliedMigration], options: PlanOptions) -> Result<(), Refusal> {
    for applied in history {
        let (version, name) = (applied.version, applied.name.clone());
        match &applied.state {
            RowState::Clean => {}
            RowState::Running { runner, .. } => return Err(Refusal::InProgress { version, runner: runner.clone() }),
            RowState::Interrupted { direction, .. } => {
                return Err(Refusal::Interrupted { version, name, direction: *direction });
            }
            RowState::Failed { failure } => return Err(Refusal::Dirty { version, name, failure: failure.clone() }),
        }
        let Some(migration) = set.get(applied.version) else {
            if options.allow_missing {
                continue;
            }
            return Err(Refusal::MissingFromBinary { version: applied.version, name: applied.name.clone() });
        };
        let mismatch = |file: &str, recorded: Checksum, embedded: Checksum| Refusal::ChecksumMismatch {
            version: applied.version,
            file: file.to_owned(),
            recorded,
            embedded,
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
