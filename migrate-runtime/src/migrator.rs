//! [`Migrator`]: the embedded set plus options, and the operations on one schema. Each call reads, plans (pure,
//! in [`crate::plan`]), locks and executes (in [`crate::engine`]).

use std::time::Duration;

use std::sync::Arc;

use crate::compile::history::{binary_name, HistoryTable, Timeouts, DEFAULT_HISTORY_TABLE};

/// The `lock_timeout` migrations run under on an existing schema unless set otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// How many more times a migration that ran out of `lock_timeout` is tried unless set otherwise.
pub const DEFAULT_LOCK_RETRIES: u32 = 2;
use crate::engine::{self, EngineOptions, Waiting};
use crate::error::{Error, LockHolder};
use crate::foreign::Tool;
use crate::model::{AppliedMigration, Preview, Report};
use crate::plan::{Operation, PlanOptions, Resolution};
use crate::schema::{validate_identifier, InvalidName, SchemaName};
use crate::session;
use crate::set::MigrationSet;
use crate::target::Target;

/// The environment variable naming the history table in each schema: read at boot by [`Migrator::with_env`]
/// and by the CLI's `--history-table`, so the service and its operators use the same table.
pub const HISTORY_TABLE_ENV: &str = "MIGRATE_HISTORY_TABLE";

/// The environment variable listing the shared schemas after each schema in its migrations' `search_path`
/// (`extensions,public`): read at boot by [`Migrator::with_env`] and by the CLI's `--extra-search-path`, so every
/// path that runs or builds migrations (boot, `upgrade`, `verify`'s reference build) resolves names alike.
pub const EXTRA_SEARCH_PATH_ENV: &str = "MIGRATE_EXTRA_SEARCH_PATH";

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
    options: EngineOptions,
}

impl<'s> Migrator<'s> {
    /// A migrator for `set` with the defaults: history table `schema_migrations`, one transaction per migration,
    /// refuse missing and out-of-order versions, wait up to ten minutes for another process's migration lock, and
    /// the running binary's file name (else `migrate`) as the service name.
    pub fn new(set: &'s MigrationSet) -> Migrator<'s> {
        let options = EngineOptions {
            history_table: DEFAULT_HISTORY_TABLE.to_owned(),
            extra_search_path: Vec::new(),
            plan: PlanOptions::default(),
            lock_wait: Duration::from_secs(600),
            timeouts: Timeouts { lock_timeout: Some(DEFAULT_LOCK_TIMEOUT), statement_timeout: None },
            lock_retries: DEFAULT_LOCK_RETRIES,
            on_wait: Arc::new(engine::log_waiting),
            interrupted: None,
            service: binary_name(),
        };
        Migrator { set, options }
    }

    /// The embedded set.
    pub fn set(&self) -> &'s MigrationSet {
        self.set
    }

    /// The history table's name.
    pub fn history_table_name(&self) -> &str {
        &self.options.history_table
    }

    /// The service name recorded in the history tables this migrator creates.
    pub fn service(&self) -> &str {
        &self.options.service
    }

    /// The service that owns the history tables this migrator creates (default: the running binary's file name,
    /// else `migrate`). It is recorded in the comment on the table's `version` column, so `migrate --all-schemas`
    /// selects this service's schemas and not another service's in the same database. Set it when two binaries
    /// (a service and its worker, say) migrate the same schemas, or when the binary's file name changes.
    ///
    /// ```
    /// # use migrate_runtime::{MigrationSet, Migrator};
    /// # static SET: MigrationSet = MigrationSet::from_static(&[], "");
    /// let migrator = Migrator::new(&SET).service_name("billing");
    /// assert_eq!(migrator.service(), "billing");
    /// ```
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.options.service = name.into();
        self
    }

    /// This migrator with the history table and the shared schemas that the environment names
    /// ([`HISTORY_TABLE_ENV`], [`EXTRA_SEARCH_PATH_ENV`]; unset or empty: the defaults), the same variables the
    /// CLI reads, so a service's boot and its operators' commands agree. A name that cannot be used is refused
    /// before any SQL is built.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// let migrator = Migrator::new(&MIGRATIONS).with_env()?;
    /// # Ok::<(), migrate_runtime::InvalidName>(())
    /// ```
    pub fn with_env(self) -> Result<Self, InvalidName> {
        let var = |name| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let mut migrator = self;
        if let Some(table) = var(HISTORY_TABLE_ENV) {
            validate_identifier(&table, "history table")?;
            migrator = migrator.history_table(table);
        }
        if let Some(list) = var(EXTRA_SEARCH_PATH_ENV) {
            migrator = migrator.extra_search_path(SchemaName::parse_list(&list)?);
        }
        Ok(migrator)
    }

    /// Name of the history table inside each schema (validated and quoted like a schema name). A project whose own
    /// migrations use a table named `schema_migrations`, or whose schemas hold another tool's (Rails,
    /// golang-migrate and dbmate use that name too), gives this tool a name of its own; the CLI takes it as
    /// `--history-table` or [`HISTORY_TABLE_ENV`].
    pub fn history_table(mut self, name: impl Into<String>) -> Self {
        self.options.history_table = name.into();
        self
    }

    /// Shared schemas placed after the migrated schema in every migration's `search_path` (`SET LOCAL search_path
    /// TO "tenant-1", "extensions"`), so extension types and functions installed once in a shared schema resolve.
    /// Objects are still created in the migrated schema, the first in the path, and the history table is always
    /// schema-qualified. Give the application's connections the same list ([`crate::in_schema_with`],
    /// [`SchemaName::search_path_option_with`]).
    ///
    /// ```
    /// # use migrate_runtime::{MigrationSet, Migrator, SchemaName};
    /// # static SET: MigrationSet = MigrationSet::from_static(&[], "");
    /// let migrator = Migrator::new(&SET).extra_search_path(SchemaName::parse_list("extensions").unwrap());
    /// ```
    pub fn extra_search_path(mut self, schemas: impl IntoIterator<Item = SchemaName>) -> Self {
        self.options.extra_search_path = schemas.into_iter().collect();
        self
    }

    /// The shared schemas after the migrated one in `search_path`.
    pub fn extra_search_path_schemas(&self) -> &[SchemaName] {
        &self.options.extra_search_path
    }

    /// Apply all pending migrations of a schema in one transaction: all or nothing. Refused when one of them is
    /// marked no-transaction, unless it can run in the transaction that creates the schema
    /// ([`Execution::InCreatingTransaction`](crate::Execution::InCreatingTransaction)).
    pub fn single_transaction(mut self, yes: bool) -> Self {
        self.options.plan.single_transaction = yes;
        self
    }

    /// Accept applied versions this binary does not have (a rolled-back deploy) instead of refusing.
    pub fn allow_missing(mut self, yes: bool) -> Self {
        self.options.plan.allow_missing = yes;
        self
    }

    /// Apply pending migrations numbered below the newest applied one instead of refusing.
    pub fn allow_out_of_order(mut self, yes: bool) -> Self {
        self.options.plan.allow_out_of_order = yes;
        self
    }

    /// How long to wait for another process that holds this schema's migration lock before giving up with
    /// [`ErrorKind::LockTimeout`](crate::ErrorKind::LockTimeout).
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.options.lock_wait = wait;
        self
    }

    /// Who hears that a run is waiting for another process (for the schema's migration lock, or for the runner of a
    /// no-transaction migration): called about a second into the wait and then every ten seconds, with who holds it.
    /// By default a `tracing` warning.
    ///
    /// ```
    /// # use migrate_runtime::{MigrationSet, Migrator};
    /// # static SET: MigrationSet = MigrationSet::from_static(&[], "");
    /// let migrator = Migrator::new(&SET).on_wait(|waiting| eprintln!("{waiting}"));
    /// ```
    pub fn on_wait(mut self, report: impl Fn(&Waiting) + Send + Sync + 'static) -> Self {
        self.options.on_wait = Arc::new(report);
        self
    }

    /// Stop when `flag` is set (from a signal handler, say): a run stops waiting for a lock or a runner, starts no
    /// new step, and reports [`ErrorKind::Interrupted`](crate::ErrorKind::Interrupted) with what committed. Cancel
    /// the query in flight yourself (the connection's `cancel_token`, [`Database::cancel`](crate::Database::cancel)):
    /// a transactional step then rolls back, and a no-transaction statement leaves its migration claimed with its
    /// lease ended, so the next run resumes it at once.
    pub fn interrupted_by(mut self, flag: Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.options.interrupted = Some(flag);
        self
    }

    /// `lock_timeout` for migration SQL on an existing schema (default [`DEFAULT_LOCK_TIMEOUT`]): a migration that
    /// waits this long for a table lock is rolled back and tried again (see [`lock_retries`](Self::lock_retries))
    /// instead of queueing behind a long transaction with the tenant's queries queued behind it. The transaction that
    /// creates a schema runs without it (its tables are its own). `None` waits as long as PostgreSQL's own
    /// setting says.
    pub fn lock_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.timeouts.lock_timeout = timeout;
        self
    }

    /// How many more times a migration that ran out of `lock_timeout` is tried (default [`DEFAULT_LOCK_RETRIES`]),
    /// after a pause of one second that doubles each time; then the schema fails with
    /// [`ErrorKind::TableLocked`](crate::ErrorKind::TableLocked), nothing of that migration applied.
    pub fn lock_retries(mut self, retries: u32) -> Self {
        self.options.lock_retries = retries;
        self
    }

    /// `statement_timeout` for migration SQL.
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.timeouts.statement_timeout = timeout;
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
    ///     println!("{} version {}", fix.kind.label(), fix.version);
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

    /// For a schema built by another tool or by hand: record every embedded migration up to `version` (in the set's
    /// order) as applied, without running it, with the binary's checksums and `applied_by` ending in `(baseline)`.
    /// Creates the history table if missing, not the schema; refuses a schema whose history has a migration after
    /// `version` ([`Refusal::BaselineBelowApplied`](crate::Refusal::BaselineBelowApplied)). Runs under the schema's migration lock, in one transaction.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// // `prod` was built by Alembic up to what our migration 4 does.
    /// Migrator::new(&MIGRATIONS).baseline(&mut client, "prod", 4)?;
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    pub fn baseline(&self, client: &mut postgres::Client, schema: &str, version: i64) -> Result<Report, Error> {
        self.run(client, schema, Operation::Baseline { version })
    }

    /// Record as applied what `tool` (sqlx, diesel, refinery) recorded in its own history table in `schema`, read
    /// under the migration lock, in one transaction; `applied_by` ends in `(adopted from TOOL)`. Refuses a version
    /// the binary lacks, a failed sqlx row, and a checksum that the embedded file does not reproduce (sqlx's
    /// SHA-384, refinery's SipHash). The other tool's table is left in place.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator, Tool};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// Migrator::new(&MIGRATIONS).adopt(&mut client, "tenant-1", Tool::Sqlx)?;
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    pub fn adopt(&self, client: &mut postgres::Client, schema: &str, tool: Tool) -> Result<Report, Error> {
        self.run(client, schema, Operation::Adopt(tool))
    }

    /// Run `operation` on `schema`.
    pub fn run(&self, client: &mut postgres::Client, schema: &str, operation: Operation) -> Result<Report, Error> {
        let schema = schema_name(schema)?;
        session::block_on_ready(engine::run(client, self.set, &self.options, &schema, operation))
    }

    /// What `operation` would do to `schema`, with the exact SQL, changing nothing and taking no lock.
    ///
    /// ```no_run
    /// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator, Operation, Target};
    /// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
    /// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
    /// let preview = Migrator::new(&MIGRATIONS).dry_run(&mut client, "prod", Operation::Upgrade(Target::Head)).unwrap();
    /// print!("{}", preview.sql());
    /// ```
    pub fn dry_run(&self, client: &mut postgres::Client, schema: &str, operation: Operation) -> Result<Preview, Error> {
        let schema = schema_name(schema)?;
        session::block_on_ready(engine::preview(client, self.set, &self.options, &schema, operation))
    }

    /// The schema's history rows, oldest first; empty when the schema or table does not exist.
    pub fn applied(&self, client: &mut postgres::Client, schema: &str) -> Result<Vec<AppliedMigration>, Error> {
        Ok(self.read_history(client, schema)?.unwrap_or_default())
    }

    /// The schema's history rows, oldest first; `None` when the schema or its history table does not exist.
    pub fn read_history(
        &self,
        client: &mut postgres::Client,
        schema: &str,
    ) -> Result<Option<Vec<AppliedMigration>>, Error> {
        let table = self.table(schema)?;
        session::block_on_ready(engine::read(client, &table))
    }

    /// Who is migrating `schema` right now: the holder of its migration lock, else the live runner of one of the
    /// no-transaction migrations that `history` (as [`read_history`](Self::read_history) returned it) has dirty.
    pub fn migrating_now(
        &self,
        client: &mut postgres::Client,
        schema: &str,
        history: &[AppliedMigration],
    ) -> Result<Option<LockHolder>, Error> {
        let table = self.table(schema)?;
        Ok(session::block_on_ready(engine::migrating_now(client, &table, history)))
    }

    /// [`Migrator::migrate`] on a `tokio-postgres` client.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn migrate_async(&self, client: &tokio_postgres::Client, schema: &str) -> Result<Report, Error> {
        self.run_async(client, schema, Operation::Upgrade(Target::Head)).await
    }

    /// [`Migrator::migrate`] with the service's own sqlx pool: one connection of it, for the run.
    #[cfg(feature = "sqlx")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
    pub async fn migrate_sqlx(&self, pool: &sqlx::PgPool, schema: &str) -> Result<Report, Error> {
        self.run_sqlx(pool, schema, Operation::Upgrade(Target::Head)).await
    }

    /// [`Migrator::run`] with the service's own sqlx pool.
    #[cfg(feature = "sqlx")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
    pub async fn run_sqlx(&self, pool: &sqlx::PgPool, schema: &str, operation: Operation) -> Result<Report, Error> {
        let mut connection = pool.acquire().await.map_err(|source| {
            let kind =
                crate::error::ErrorKind::Database { action: "take a connection from the pool", source: source.into() };
            Error::new(schema, kind)
        })?;
        self.run_sqlx_connection(&mut connection, schema, operation).await
    }

    /// [`Migrator::run`] on one sqlx connection (`&mut *pool.acquire().await?`, or a `PgConnection`).
    #[cfg(feature = "sqlx")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
    pub async fn run_sqlx_connection(
        &self,
        connection: &mut sqlx::PgConnection,
        schema: &str,
        operation: Operation,
    ) -> Result<Report, Error> {
        let schema = schema_name(schema)?;
        engine::run(&mut &mut *connection, self.set, &self.options, &schema, operation).await
    }

    /// [`Migrator::migrate`] on the service's own diesel connection (see the crate's README for what the diesel
    /// drivers need: English server messages).
    #[cfg(feature = "diesel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "diesel")))]
    pub fn migrate_diesel(&self, connection: &mut diesel::PgConnection, schema: &str) -> Result<Report, Error> {
        self.run_diesel(connection, schema, Operation::Upgrade(Target::Head))
    }

    /// [`Migrator::run`] on a diesel connection that is not inside a transaction.
    #[cfg(feature = "diesel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "diesel")))]
    pub fn run_diesel(
        &self,
        connection: &mut diesel::PgConnection,
        schema: &str,
        operation: Operation,
    ) -> Result<Report, Error> {
        let schema = schema_name(schema)?;
        let mut session = crate::session_diesel::DieselSession::new(connection);
        session::block_on_ready(engine::run(&mut session, self.set, &self.options, &schema, operation))
    }

    /// [`Migrator::migrate`] on the service's own diesel-async connection.
    #[cfg(feature = "diesel-async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "diesel-async")))]
    pub async fn migrate_diesel_async(
        &self,
        connection: &mut diesel_async::AsyncPgConnection,
        schema: &str,
    ) -> Result<Report, Error> {
        self.run_diesel_async(connection, schema, Operation::Upgrade(Target::Head)).await
    }

    /// [`Migrator::run`] on a diesel-async connection that is not inside a transaction (`&mut *pool.get().await?`
    /// with deadpool or bb8).
    #[cfg(feature = "diesel-async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "diesel-async")))]
    pub async fn run_diesel_async(
        &self,
        connection: &mut diesel_async::AsyncPgConnection,
        schema: &str,
        operation: Operation,
    ) -> Result<Report, Error> {
        let schema = schema_name(schema)?;
        let mut session = crate::session_diesel::DieselSession::new(connection);
        engine::run(&mut session, self.set, &self.options, &schema, operation).await
    }

    /// [`Migrator::run`] on a `tokio-postgres` client.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn run_async(
        &self,
        client: &tokio_postgres::Client,
        schema: &str,
        operation: Operation,
    ) -> Result<Report, Error> {
        let schema = schema_name(schema)?;
        engine::run(&mut &*client, self.set, &self.options, &schema, operation).await
    }

    /// The SQL of a transaction that creates `schema` already at the head of the set, around statements the caller
    /// runs between the two halves (`migrate_ops::Template` runs a template's structure and rows there): the first
    /// begins, takes the schema's migration lock, creates the schema and its history table and sets `search_path`
    /// (the schema, then the extra search path); the second records every migration as applied and commits.
    /// Nothing is applied by replaying migrations, so the caller must prove what it built (the template does).
    pub fn created_at_head_sql(&self, schema: &SchemaName) -> Result<(String, String), Error> {
        let table = self.table(schema.as_str())?.with_service(&self.options.service);
        let table = table.with_extra_search_path(&self.options.extra_search_path);
        Ok(table.created_at_head_sql(self.set.iter()))
    }

    /// The history table of `schema`, both names checked.
    fn table(&self, schema: &str) -> Result<HistoryTable, Error> {
        HistoryTable::new(&schema_name(schema)?, &self.options.history_table)
            .map_err(|invalid| Error::new(schema, invalid))
    }
}

/// `schema` as a checked name, or the error naming it.
fn schema_name(schema: &str) -> Result<SchemaName, Error> {
    SchemaName::new(schema).map_err(|invalid| Error::new(schema, invalid))
}
