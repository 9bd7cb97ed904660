//! Apply SQL migrations, embedded in the binary at compile time, to a PostgreSQL schema at service boot.
//!
//! ```no_run
//! use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
//!
//! static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls)?;
//!     let schema = std::env::var("DEFAULT_SCHEMA_NAME").unwrap_or_else(|_| "dev".into());
//!     let report = Migrator::new(&MIGRATIONS).migrate(&mut client, &schema)?;
//!     println!("schema {} at version {:?}", report.schema, report.version_after);
//!     Ok(())
//! }
//! ```
//!
//! What happens at boot:
//! - the history table (`schema_migrations` in the target schema) is read in one round trip; when nothing is
//!   pending and every checksum matches, that is all;
//! - otherwise an advisory lock keyed on the database and schema is taken, so replicas booting together apply each
//!   migration exactly once while other schemas never wait; the schema and history table are created if missing;
//! - each migration runs in its own transaction with `SET LOCAL search_path` to the schema, and its history row
//!   commits with it (no-transaction migrations excepted), or all in one transaction with
//!   [`Migrator::single_transaction`];
//! - the lock is released on every path.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
mod database;
mod engine;
mod error;
mod fleet;
mod history;
mod inspect;
mod plan;
mod revision;
mod schema;
mod session;
mod set;
mod sql;
mod structure;
mod target;

use std::time::Duration;

pub use database::{ConnectError, Database, DatabaseError, SslMode};
pub use error::Error;
pub use fleet::{default_jobs, Fleet, Standing, Task};
pub use history::DEFAULT_HISTORY_TABLE;
pub use inspect::{history_of, status_of, HistoryEntry, SchemaState, SchemaStatus};
pub use migrate_core::{
    build, Checksum, Direction as FileDirection, FileName, FileNameError, Migration, ResolveError, Script,
    CHECKSUM_ALGORITHM, NO_TRANSACTION_MARKER,
};
pub use plan::{plan, verify_history, AppliedMigration, Direction, PlanOptions, Step, StepKind};
pub use revision::{write_revision, Revision, RevisionError};
pub use schema::{InvalidName, NameProblem, SchemaName};
pub use set::MigrationSet;
pub use structure::{
    diff, diff_schemas, read_structures, reference_structure, suggest_sql, verify_schemas, Definition, Difference,
    Fingerprint, Object, ObjectKind, ObjectName, Outcome, Structure, Verification, SCHEMA_PLACEHOLDER,
};
pub use target::{InvalidTarget, Target};

/// Embed a folder of SQL migrations into the binary, checked at compile time.
///
/// The path is relative to the calling crate's `Cargo.toml`. File names: `{version}_{name}.up.sql` with an optional
/// `{version}_{name}.down.sql`, or refinery's `V{version}__{name}.sql`; versions are positive integers ordered
/// numerically. A first line `-- migrate:no-transaction` runs the script outside a transaction. Checksums are
/// SHA-256 over the text with CRLF folded to LF and a leading BOM removed, computed at compile time.
///
/// Every problem in the folder is a compile error naming the file: a duplicate version, a name that fits no
/// pattern, a down file without its up file, an empty or non-UTF-8 file, a misplaced marker, a missing folder, an
/// absolute path. Pair it with [`build::rerun_if_migrations_change`] in `build.rs` so that *adding* a file also
/// rebuilds.
///
/// ```
/// use migrate_runtime::{embed_migrations, MigrationSet};
///
/// static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
/// let first = MIGRATIONS.iter().next().unwrap();
/// assert_eq!(first.version, 1);
/// assert_eq!(first.up.checksum, migrate_runtime::Checksum::of(&first.up.sql));
/// ```
pub use migrate_macros::embed_migrations;

/// How to migrate: the embedded set plus options. Cheap to build; build one per call or keep one around.
///
/// ```no_run
/// use std::time::Duration;
/// use migrate_runtime::{embed_migrations, MigrationSet, Migrator, Target};
///
/// static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
///
/// # fn main() -> Result<(), migrate_runtime::Error> {
/// let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
/// let migrator = Migrator::new(&MIGRATIONS)
///     .history_table("migrations_history")
///     .lock_timeout(Some(Duration::from_secs(5)))
///     .single_transaction(true);
/// migrator.migrate_to(&mut client, "tenant-1", Target::Version(3))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Migrator<'s> {
    set: &'s MigrationSet,
    history_table: String,
    single_transaction: bool,
    plan_options: PlanOptions,
    lock_wait: Duration,
    lock_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
}

impl<'s> Migrator<'s> {
    /// A migrator for `set` with the defaults: history table `schema_migrations`, one transaction per migration,
    /// refuse missing and out-of-order versions, wait up to ten minutes for another process's migration lock.
    pub fn new(set: &'s MigrationSet) -> Migrator<'s> {
        Migrator {
            set,
            history_table: DEFAULT_HISTORY_TABLE.to_owned(),
            single_transaction: false,
            plan_options: PlanOptions::default(),
            lock_wait: Duration::from_secs(600),
            lock_timeout: None,
            statement_timeout: None,
        }
    }

    /// The embedded set.
    pub fn set(&self) -> &'s MigrationSet {
        self.set
    }

    /// The history table's name.
    pub fn history_table_name(&self) -> &str {
        &self.history_table
    }

    /// Name of the history table inside each schema (validated and quoted like a schema name).
    pub fn history_table(mut self, name: impl Into<String>) -> Self {
        self.history_table = name.into();
        self
    }

    /// Apply all pending migrations of a schema in one transaction: all or nothing. Refused when one of them is
    /// marked no-transaction.
    pub fn single_transaction(mut self, yes: bool) -> Self {
        self.single_transaction = yes;
        self
    }

    /// Accept applied versions this binary does not have (a rolled-back deploy) instead of refusing.
    pub fn allow_missing(mut self, yes: bool) -> Self {
        self.plan_options.allow_missing = yes;
        self
    }

    /// Apply pending migrations numbered below the newest applied one instead of refusing.
    pub fn allow_out_of_order(mut self, yes: bool) -> Self {
        self.plan_options.allow_out_of_order = yes;
        self
    }

    /// How long to wait for another process that holds this schema's migration lock before giving up with
    /// [`Error::LockTimeout`].
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// `lock_timeout` for migration SQL: a migration waiting this long on a busy table fails instead of stalling
    /// the application behind it.
    pub fn lock_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// `statement_timeout` for migration SQL.
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// Migrate `schema` to the newest version, creating the schema and history table if missing.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// let report = Migrator::new(&MIGRATIONS).migrate(&mut client, "tenant-1")?;
    /// println!("{} migration(s) applied, now at {:?}", report.steps.len(), report.version_after);
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    pub fn migrate(&self, client: &mut postgres::Client, schema: &str) -> Result<Report, Error> {
        self.run(client, schema, Operation::Upgrade(Target::Head))
    }

    /// Migrate `schema` up to `target` (`head`, a version, or `+N`).
    pub fn migrate_to(&self, client: &mut postgres::Client, schema: &str, target: Target) -> Result<Report, Error> {
        self.run(client, schema, Operation::Upgrade(target))
    }

    /// Revert `schema` down to `target` (`base`, a version, or `-N`), newest first, each down script with the
    /// removal of its history row in one transaction. Refuses before changing anything when a down file is missing.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// // Undo the newest migration of `dev`.
    /// Migrator::new(&MIGRATIONS).downgrade(&mut client, "dev", migrate_runtime::Target::Relative(-1))?;
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    pub fn downgrade(&self, client: &mut postgres::Client, schema: &str, target: Target) -> Result<Report, Error> {
        self.run(client, schema, Operation::Downgrade(target))
    }

    /// Drop `schema` with everything in it, recreate it and apply every migration: in one transaction when no
    /// migration is marked no-transaction, so a failure leaves the old schema exactly as it was.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// Migrator::new(&MIGRATIONS).reset(&mut client, "dev")?;
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    pub fn reset(&self, client: &mut postgres::Client, schema: &str) -> Result<Report, Error> {
        self.run(client, schema, Operation::Reset)
    }

    /// After reviewing edited migration files: record the binary's checksums for every applied migration of
    /// `schema`, so the edit is accepted. Dirty records are left alone.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// let report = Migrator::new(&MIGRATIONS).repair(&mut client, "dev")?;
    /// for fix in &report.fixes {
    ///     println!("recorded the binary's checksum for version {}", fix.version);
    /// }
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    pub fn repair(&self, client: &mut postgres::Client, schema: &str) -> Result<Report, Error> {
        self.run(client, schema, Operation::Repair)
    }

    /// Settle the dirty no-transaction migration `version` of `schema` after fixing the schema by hand.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// // The index of migration 5 was finished by hand.
    /// Migrator::new(&MIGRATIONS).resolve(&mut client, "dev", 5, migrate_runtime::Resolution::Applied)?;
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    pub fn resolve(
        &self,
        client: &mut postgres::Client,
        schema: &str,
        version: i64,
        resolution: Resolution,
    ) -> Result<Report, Error> {
        self.run(client, schema, Operation::Resolve { version, resolution })
    }

    /// Run `operation` on `schema`.
    pub fn run(&self, client: &mut postgres::Client, schema: &str, operation: Operation) -> Result<Report, Error> {
        let schema = SchemaName::new(schema)?;
        session::block_on_ready(engine::run(client, self, &schema, operation))
    }

    /// What `operation` would do to `schema`, with the exact SQL, changing nothing and taking no lock.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator, Operation, Target};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// let preview = Migrator::new(&MIGRATIONS).dry_run(&mut client, "prod", Operation::Upgrade(Target::Head)).unwrap();
    /// for step in &preview.steps {
    ///     println!("-- {} {}\n{}", step.version, step.file, step.sql);
    /// }
    /// ```
    pub fn dry_run(&self, client: &mut postgres::Client, schema: &str, operation: Operation) -> Result<Preview, Error> {
        let schema = SchemaName::new(schema)?;
        session::block_on_ready(engine::preview(client, self, &schema, operation))
    }

    /// The schema's history rows, oldest first; empty when the schema or table does not exist.
    pub fn applied(&self, client: &mut postgres::Client, schema: &str) -> Result<Vec<AppliedMigration>, Error> {
        Ok(self.read(client, schema)?.unwrap_or_default())
    }

    /// Where `schema` stands against this binary: version, pending count, and whether it is at head, behind,
    /// ahead or drifted.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// let status = Migrator::new(&MIGRATIONS).status(&mut client, "prod")?;
    /// println!("{}: {} ({} pending)", status.schema, status.state.label(), status.pending);
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    pub fn status(&self, client: &mut postgres::Client, schema: &str) -> Result<SchemaStatus, Error> {
        let history = self.read(client, schema)?;
        Ok(status_of(schema, self.set, history.as_deref()))
    }

    /// Every migration of the binary and of the database, applied or pending, with checksum mismatches marked.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// for entry in Migrator::new(&MIGRATIONS).history(&mut client, "dev")? {
    ///     println!("{} {} {}", entry.version, entry.name, entry.state());
    /// }
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    pub fn history(&self, client: &mut postgres::Client, schema: &str) -> Result<Vec<HistoryEntry>, Error> {
        Ok(history_of(self.set, &self.applied(client, schema)?))
    }

    fn read(&self, client: &mut postgres::Client, schema: &str) -> Result<Option<Vec<AppliedMigration>>, Error> {
        let schema = SchemaName::new(schema)?;
        let table = history::HistoryTable::new(&schema, &self.history_table)?;
        Ok(match session::block_on_ready(engine::read_history(client, &table))? {
            engine::History::Rows(rows) => Some(rows),
            engine::History::NoTable => None,
        })
    }

    /// [`Migrator::migrate`] on a `tokio-postgres` client.
    #[cfg(feature = "tokio")]
    pub async fn migrate_async(&self, client: &tokio_postgres::Client, schema: &str) -> Result<Report, Error> {
        self.run_async(client, schema, Operation::Upgrade(Target::Head)).await
    }

    /// [`Migrator::run`] on a `tokio-postgres` client.
    #[cfg(feature = "tokio")]
    pub async fn run_async(
        &self,
        client: &tokio_postgres::Client,
        schema: &str,
        operation: Operation,
    ) -> Result<Report, Error> {
        let schema = SchemaName::new(schema)?;
        engine::run(&mut &*client, self, &schema, operation).await
    }
}

/// What to do to a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Apply pending migrations up to the target (`head`, a version, `+N`).
    Upgrade(Target),
    /// Revert applied migrations down to the target (`base`, a version, `-N`).
    Downgrade(Target),
    /// Drop the schema, recreate it, apply everything.
    Reset,
    /// After review of edited files: record the binary's checksums (and names) for every applied migration.
    Repair,
    /// Settle a dirty no-transaction migration after a manual fix.
    Resolve {
        /// The dirty version.
        version: i64,
        /// Whether its effects are now in place.
        resolution: Resolution,
    },
}

/// How a dirty migration was settled by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Its effects are in place: keep the record, clean.
    Applied,
    /// Its effects are not in place: drop the record, so the next upgrade runs it again.
    NotApplied,
}

impl Operation {
    fn movement(self) -> Option<(Direction, Target)> {
        match self {
            Operation::Upgrade(target) => Some((Direction::Up, target)),
            Operation::Downgrade(target) => Some((Direction::Down, target)),
            Operation::Reset | Operation::Repair | Operation::Resolve { .. } => None,
        }
    }
}

/// A change to a history row that runs no migration: what `repair` and `resolve` do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// The version.
    pub version: i64,
    /// What changed.
    pub kind: FixKind,
}

/// What a [`Fix`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixKind {
    /// The recorded checksums or name now match the binary.
    Repaired,
    /// A dirty record was marked clean.
    MarkedApplied,
    /// A dirty record was removed.
    MarkedNotApplied,
}

/// What a dry run found: the plan for one schema and the exact SQL of each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The schema.
    pub schema: String,
    /// Newest applied version now.
    pub version_before: Option<i64>,
    /// Newest applied version after the plan.
    pub version_after: Option<i64>,
    /// For a reset: the SQL that drops and recreates the schema.
    pub prologue: Option<String>,
    /// The steps, in order.
    pub steps: Vec<PlannedStep>,
}

/// One step of a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// The version.
    pub version: i64,
    /// The migration's name.
    pub name: String,
    /// Apply or revert.
    pub kind: StepKind,
    /// The file that would run.
    pub file: String,
    /// Runs outside a transaction.
    pub no_transaction: bool,
    /// The SQL that would be sent.
    pub sql: String,
}

impl Preview {
    fn new(
        schema: &SchemaName,
        history: &[AppliedMigration],
        prologue: Option<String>,
        steps: Vec<PlannedStep>,
    ) -> Preview {
        let (version_before, version_after) = versions(history, steps.iter().map(|s| (s.kind, s.version)));
        Preview { schema: schema.to_string(), version_before, version_after, prologue, steps }
    }
}

/// Newest version before and after applying `steps` to `history`.
fn versions(history: &[AppliedMigration], steps: impl Iterator<Item = (StepKind, i64)>) -> (Option<i64>, Option<i64>) {
    let mut versions: std::collections::BTreeSet<i64> = history.iter().map(|a| a.version).collect();
    let before = versions.last().copied();
    for (kind, version) in steps {
        match kind {
            StepKind::Apply => versions.insert(version),
            StepKind::Revert => versions.remove(&version),
        };
    }
    (before, versions.last().copied())
}

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

/// One migration applied or reverted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The version.
    pub version: i64,
    /// The migration's name.
    pub name: String,
    /// Applied or reverted.
    pub kind: StepKind,
    /// Wall time of the step, round trips included.
    pub duration: Duration,
}

impl Report {
    fn new(schema: &SchemaName, history: &[AppliedMigration], steps: Vec<StepReport>) -> Report {
        let (version_before, version_after) = versions(history, steps.iter().map(|s| (s.kind, s.version)));
        Report { schema: schema.to_string(), version_before, version_after, steps, fixes: Vec::new() }
    }
}
