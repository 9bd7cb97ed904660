//! Read-only views of a schema against the embedded set: where it stands (`current`, `status`) and every
//! migration, applied or pending (`history`). Pure functions over the history rows, so they are unit-tested.

use migrate_runtime::{
    verify_history, AppliedMigration, Error, ErrorKind, LockHolder, MigrationSet, Migrator, PlanOptions, Refusal,
    SchemaName,
};

/// Where a schema stands against the binary's migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaState {
    /// No history table: never migrated (or not ours).
    Uninitialized,
    /// Every migration of the binary is applied, and nothing else.
    AtHead,
    /// Some migrations of the binary are pending.
    Behind,
    /// The database has versions this binary does not know (a newer binary migrated it).
    Ahead,
    /// An applied file was edited.
    Drifted,
    /// A no-transaction migration is dirty: it failed or was interrupted part-way, or runs now. `history` says
    /// `dirty` of the same row.
    Dirty,
}

impl SchemaState {
    /// A short label: `uninitialized`, `at head`, `behind`, `ahead`, `drifted`, `dirty`.
    pub fn label(self) -> &'static str {
        match self {
            SchemaState::Uninitialized => "uninitialized",
            SchemaState::AtHead => "at head",
            SchemaState::Behind => "behind",
            SchemaState::Ahead => "ahead",
            SchemaState::Drifted => "drifted",
            SchemaState::Dirty => "dirty",
        }
    }

    /// The schema needs someone to look: ahead of the binary, drifted or dirty.
    pub fn is_problem(self) -> bool {
        matches!(self, SchemaState::Ahead | SchemaState::Drifted | SchemaState::Dirty)
    }
}

/// One schema's standing: what `current` and `status` print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The schema.
    pub schema: String,
    /// Newest applied version and its name.
    pub current: Option<(i64, String)>,
    /// The binary's newest version.
    pub head: Option<i64>,
    /// Migrations of the binary not applied yet.
    pub pending: usize,
    /// The verdict.
    pub state: SchemaState,
    /// What is wrong, for `ahead` and `drifted`.
    pub problem: Option<Refusal>,
    /// Who is migrating the schema right now (holds its migration lock, or runs one of its no-transaction
    /// migrations); `None` when nobody is, or when the status came from the catalog alone.
    pub migrating_now: Option<LockHolder>,
    /// The last run that failed on the schema, while its history is still as that run left it
    /// ([`LastFailure`](crate::last_failure::LastFailure)); `None` at head, or when the status came from the
    /// catalog alone.
    pub last_failure: Option<crate::last_failure::LastFailure>,
}

/// Work out a schema's standing from its history (`None`: no history table).
///
/// ```
/// use migrate_ops::{status_of, SchemaState};
/// use migrate_runtime::MigrationSet;
///
/// let status = status_of("dev", &MigrationSet::from_migrations(vec![]), None);
/// assert_eq!(status.state, SchemaState::Uninitialized);
/// ```
pub fn status_of(schema: &str, set: &MigrationSet, history: Option<&[AppliedMigration]>) -> SchemaStatus {
    let head = set.head();
    let Some(history) = history else {
        return SchemaStatus {
            schema: schema.to_owned(),
            current: None,
            head,
            pending: set.len(),
            state: SchemaState::Uninitialized,
            problem: None,
            migrating_now: None,
            last_failure: None,
        };
    };
    let newest = set.newest(history.iter().map(|a| a.version));
    let current = history.iter().find(|a| Some(a.version) == newest).map(|a| (a.version, a.name.clone()));
    let pending = set.iter().filter(|m| !history.iter().any(|a| a.version == m.version)).count();
    let (state, problem) = match verify_history(set, history, PlanOptions::default()) {
        Err(missing @ Refusal::MissingFromBinary { .. }) => {
            // An edited file is worse news than a newer binary's versions: look for it first.
            let lenient = PlanOptions { allow_missing: true, ..PlanOptions::default() };
            match verify_history(set, history, lenient) {
                Err(drift) => (SchemaState::Drifted, Some(drift)),
                Ok(()) => (SchemaState::Ahead, Some(missing)),
            }
        }
        Err(dirt @ (Refusal::Dirty { .. } | Refusal::Interrupted { .. } | Refusal::InProgress { .. })) => {
            (SchemaState::Dirty, Some(dirt))
        }
        Err(drift) => (SchemaState::Drifted, Some(drift)),
        Ok(()) if pending > 0 => (SchemaState::Behind, None),
        Ok(()) => (SchemaState::AtHead, None),
    };
    SchemaStatus {
        schema: schema.to_owned(),
        current,
        head,
        pending,
        state,
        problem,
        migrating_now: None,
        last_failure: None,
    }
}

/// Where one migration stands in a schema's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryState {
    /// Applied, and the binary's files match what was recorded.
    Applied,
    /// In the binary, not applied.
    Pending,
    /// A no-transaction migration that started and did not finish.
    Dirty,
    /// Applied, but the binary does not have it.
    NotInBinary,
    /// Applied, and the binary's up or down file no longer matches the recorded checksum.
    ChecksumMismatch,
}

impl EntryState {
    /// `applied`, `pending`, `dirty`, `not in binary` or `checksum mismatch`.
    pub fn label(self) -> &'static str {
        match self {
            EntryState::Applied => "applied",
            EntryState::Pending => "pending",
            EntryState::Dirty => "dirty",
            EntryState::NotInBinary => "not in binary",
            EntryState::ChecksumMismatch => "checksum mismatch",
        }
    }

    /// The database does not match the binary here.
    pub fn is_problem(self) -> bool {
        matches!(self, EntryState::Dirty | EntryState::NotInBinary | EntryState::ChecksumMismatch)
    }
}

/// One line of `history`: a migration of the binary or of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The version.
    pub version: i64,
    /// The name (from the binary, or as recorded when the binary lacks it).
    pub name: String,
    /// The history row, when applied.
    pub applied: Option<AppliedMigration>,
    /// The binary has this migration.
    pub in_binary: bool,
    /// Applied, and the binary's up or down file no longer matches the recorded checksum.
    pub checksum_mismatch: bool,
}

impl HistoryEntry {
    /// Where the migration stands.
    pub fn state(&self) -> EntryState {
        match (&self.applied, self.in_binary) {
            (None, _) => EntryState::Pending,
            (Some(a), _) if a.is_dirty() => EntryState::Dirty,
            (Some(_), false) => EntryState::NotInBinary,
            (Some(_), true) if self.checksum_mismatch => EntryState::ChecksumMismatch,
            (Some(_), true) => EntryState::Applied,
        }
    }
}

/// Every migration of the binary and of the database, by version.
///
/// ```
/// use migrate_ops::{history_of, EntryState};
/// use migrate_runtime::{Migration, MigrationSet, Script};
///
/// let set = MigrationSet::from_migrations(vec![Migration { version: 1, name: "a".into(), up: Script::new("1_a.up.sql", "SELECT 1"), down: None }]);
/// let entries = history_of(&set, &[]);
/// assert_eq!(entries[0].state(), EntryState::Pending);
/// ```
pub fn history_of(set: &MigrationSet, history: &[AppliedMigration]) -> Vec<HistoryEntry> {
    let mut versions: Vec<i64> = set.iter().map(|m| m.version).chain(history.iter().map(|a| a.version)).collect();
    versions.sort_unstable_by_key(|&v| set.order_key(v));
    versions.dedup();
    versions
        .into_iter()
        .map(|version| {
            let migration = set.get(version);
            let applied = history.iter().find(|a| a.version == version).cloned();
            let checksum_mismatch = match (migration, &applied) {
                (Some(m), Some(a)) => {
                    m.up.checksum != a.checksum
                        || matches!((&m.down, a.down_checksum), (Some(d), Some(recorded)) if d.checksum != recorded)
                }
                _ => false,
            };
            let name = migration.map(|m| m.name.to_string()).or_else(|| applied.as_ref().map(|a| a.name.clone()));
            HistoryEntry {
                version,
                name: name.unwrap_or_default(),
                in_binary: migration.is_some(),
                applied,
                checksum_mismatch,
            }
        })
        .collect()
}

/// Where a schema stands, and its history, read with a [`Migrator`]: `use migrate_ops::Inspect` and call
/// `migrator.status(..)` or `migrator.history(..)`.
pub trait Inspect {
    /// Where `schema` stands against this binary: version, pending count, and whether it is at head, behind,
    /// ahead or drifted; and who is migrating it now, when it is not at head.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// use migrate_ops::Inspect;
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// let status = Migrator::new(&MIGRATIONS).status(&mut client, "prod")?;
    /// println!("{}: {} ({} pending)", status.schema, status.state.label(), status.pending);
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    fn status(&self, client: &mut postgres::Client, schema: &str) -> Result<SchemaStatus, Error>;

    /// Every migration of the binary and of the database, applied or pending, with checksum mismatches marked.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// use migrate_ops::Inspect;
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// for entry in Migrator::new(&MIGRATIONS).history(&mut client, "dev")? {
    ///     println!("{} {} {}", entry.version, entry.name, entry.state().label());
    /// }
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    fn history(&self, client: &mut postgres::Client, schema: &str) -> Result<Vec<HistoryEntry>, Error>;
}

impl Inspect for Migrator<'_> {
    fn status(&self, client: &mut postgres::Client, schema: &str) -> Result<SchemaStatus, Error> {
        let history = self.read_history(client, schema)?;
        let mut status = status_of(schema, self.set(), history.as_deref());
        if status.state != SchemaState::AtHead {
            status.migrating_now = self.migrating_now(client, schema, history.as_deref().unwrap_or_default())?;
        }
        if history.is_some() && status.state != SchemaState::AtHead {
            let name = SchemaName::new(schema).map_err(|e| Error::new(schema, ErrorKind::InvalidName(e)))?;
            status.last_failure = crate::last_failure::read_last_failure(client, &name, self.history_table_name())
                .map_err(|source| {
                    Error::new(
                        schema,
                        ErrorKind::Database { action: "read the last failed run", source: source.into() },
                    )
                })?;
        }
        Ok(status)
    }

    fn history(&self, client: &mut postgres::Client, schema: &str) -> Result<Vec<HistoryEntry>, Error> {
        Ok(history_of(self.set(), &self.applied(client, schema)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrate_core::{Checksum, Migration, Script};

    fn set(versions: &[i64]) -> MigrationSet {
        MigrationSet::from_migrations(
            versions
                .iter()
                .map(|&v| Migration {
                    version: v,
                    name: format!("m{v}").into(),
                    up: Script::new(format!("{v}.up.sql"), format!("SELECT {v}")),
                    down: None,
                })
                .collect(),
        )
    }

    fn applied(set: &MigrationSet, versions: &[i64]) -> Vec<AppliedMigration> {
        versions
            .iter()
            .map(|&v| {
                let checksum = set.get(v).map_or(Checksum::of("gone"), |m| m.up.checksum);
                AppliedMigration {
                    version: v,
                    name: format!("m{v}"),
                    checksum,
                    down_checksum: None,
                    applied_at: String::new(),
                    execution_ms: 0,
                    applied_by: String::new(),
                    state: migrate_runtime::RowState::Clean,
                }
            })
            .collect()
    }

    #[test]
    fn states() {
        let s = set(&[1, 2]);
        assert_eq!(status_of("x", &s, Some(&applied(&s, &[1, 2]))).state, SchemaState::AtHead);
        let behind = status_of("x", &s, Some(&applied(&s, &[1])));
        assert_eq!((behind.state, behind.pending, behind.current), (SchemaState::Behind, 1, Some((1, "m1".into()))));
        let ahead = status_of("x", &s, Some(&applied(&s, &[1, 2, 3])));
        assert_eq!(ahead.state, SchemaState::Ahead);
        assert!(matches!(ahead.problem, Some(Refusal::MissingFromBinary { version: 3, .. })), "{:?}", ahead.problem);
        let mut drifted = applied(&s, &[1, 2, 3]);
        drifted[0].checksum = Checksum::of("edited");
        assert_eq!(status_of("x", &s, Some(&drifted)).state, SchemaState::Drifted);
    }

    #[test]
    fn history_marks_pending_missing_and_mismatched() {
        let s = set(&[1, 2, 3]);
        let mut h = applied(&s, &[1, 2]);
        h[1].checksum = Checksum::of("edited");
        h.extend(applied(&set(&[]), &[9]));
        let states: Vec<(i64, EntryState)> = history_of(&s, &h).iter().map(|e| (e.version, e.state())).collect();
        use EntryState::*;
        assert_eq!(states, [(1, Applied), (2, ChecksumMismatch), (3, Pending), (9, NotInBinary)]);
    }
}
