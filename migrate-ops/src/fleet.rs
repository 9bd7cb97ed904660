//! Many schemas, on one database server or several: find in one round trip which schemas need work, then run an
//! operation on those over a bounded pool of connections.
//!
//! ```no_run
//! use migrate_ops::{Fleet, Task};
//! use migrate_runtime::{embed_migrations, MigrationSet, Migrator, Operation, SchemaName, Target};
//!
//! static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
//!
//! let migrator = Migrator::new(&MIGRATIONS);
//! let databases = vec!["postgres://postgres@127.0.0.1/postgres?sslmode=prefer".parse().unwrap()];
//! let fleet = Fleet::new(&migrator, databases).jobs(8).keep_going(true);
//! let schemas: Vec<SchemaName> = (1..=100).map(|i| SchemaName::new(&format!("tenant-{i}")).unwrap()).collect();
//! // Only schemas that are not already at head are touched.
//! let standings = fleet.survey(0, &schemas).unwrap();
//! let tasks: Vec<Task> = schemas
//!     .into_iter()
//!     .zip(standings)
//!     .filter(|(_, standing)| !standing.is_current())
//!     .map(|(schema, _)| Task { database: 0, schema })
//!     .collect();
//! let not_started = fleet.for_each(&tasks, |client, schema| Ok(migrator.run(client, schema.as_str(), Operation::Upgrade(Target::Head))?), |i, result| {
//!     println!("{}: {:?}", tasks[i].schema, result.map(|r| r.version_after));
//! });
//! ```

use migrate_runtime::{Database, Migrator, SchemaName};

use crate::error::Error;
use crate::pool;
use crate::stop::Stop;
use crate::structure::{verify_schemas, Verification};
use crate::survey::{Catalog, Standing};

/// What went wrong in a survey: a connection, or a query.
enum SurveyError {
    Connect(Error),
    Query(postgres::Error),
}

impl From<postgres::Error> for SurveyError {
    fn from(error: postgres::Error) -> SurveyError {
        SurveyError::Query(error)
    }
}

/// One unit of fleet work: a schema on one of the fleet's databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Index into the fleet's databases.
    pub database: usize,
    /// The schema.
    pub schema: SchemaName,
}

/// Runs operations over many schemas on one or several databases.
#[derive(Debug, Clone)]
pub struct Fleet<'m> {
    migrator: &'m Migrator<'m>,
    databases: Vec<Database>,
    jobs: usize,
    keep_going: bool,
    stop: Option<std::sync::Arc<Stop>>,
}

impl<'m> Fleet<'m> {
    /// A fleet over `databases` (one config per server or database), with [`default_jobs`] connections per
    /// database, stopping at the first failure.
    pub fn new(migrator: &'m Migrator<'m>, databases: Vec<Database>) -> Fleet<'m> {
        Fleet { migrator, databases, jobs: default_jobs(), keep_going: false, stop: None }
    }

    /// Schemas worked on at once per database, each on its own connection.
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Go on with the other schemas after one fails, instead of starting no new ones.
    pub fn keep_going(mut self, yes: bool) -> Self {
        self.keep_going = yes;
        self
    }

    /// Stop with `stop`: once it is thrown no schema is started, and the queries of the connections this fleet
    /// opens are canceled. Give the migrator the same switch (`Migrator::interrupted_by(stop.flag())`), so a run in
    /// flight stops waiting and reports what committed.
    pub fn stop_with(mut self, stop: std::sync::Arc<Stop>) -> Self {
        self.stop = Some(stop);
        self
    }

    fn interrupted(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| stop.is_stopped())
    }

    /// The databases.
    pub fn databases(&self) -> &[Database] {
        &self.databases
    }

    /// Connect to database `database`.
    pub fn connect(&self, database: usize) -> Result<postgres::Client, Error> {
        let database = &self.databases[database];
        database.connect().map_err(|source| Error::Connect { database: database.to_string(), source })
    }

    /// Which of `schemas` on database `database` are exactly at the binary's head, in one catalog query for any
    /// number of schemas ([`Catalog`]; on Citus, the history tables of distributed schemas are read too, over up to
    /// `jobs` connections). A schema found `Current` needs no work; the others are worth a closer look.
    pub fn survey(&self, database: usize, schemas: &[SchemaName]) -> Result<Vec<Standing>, Error> {
        let mut client = self.connect(database)?;
        let failed = |source| Error::Catalog {
            database: self.databases[database].to_string(),
            action: "survey the schemas",
            source,
        };
        let catalog = Catalog::read_spread(&mut client, self.migrator.history_table_name(), schemas, self.jobs, || {
            self.connect(database).map_err(SurveyError::Connect)
        })
        .map_err(|error| match error {
            SurveyError::Connect(error) => error,
            SurveyError::Query(source) => failed(source),
        })?;
        Ok(catalog.standings(self.migrator.set(), schemas))
    }

    /// Call `work` for every task, on at most `jobs` connections per database; `on_result` gets each task's index
    /// and result on the caller's thread as it finishes. Returns how many tasks were not started because one
    /// failed (unless `keep_going`).
    pub fn for_each<T: Send>(
        &self,
        tasks: &[Task],
        work: impl Fn(&mut postgres::Client, &SchemaName) -> Result<T, Error> + Sync,
        on_result: impl FnMut(usize, Result<T, Error>),
    ) -> usize {
        let queues: Vec<Vec<usize>> = (0..self.databases.len())
            .map(|database| (0..tasks.len()).filter(|&i| tasks[i].database == database).collect())
            .collect();
        let run = |worker: &mut Worker, index: usize| {
            let task = &tasks[index];
            let result = match &mut worker.client {
                Some(client) => work(client, &task.schema),
                None => self.connect(task.database).and_then(|connected| {
                    if let Some(stop) = &self.stop {
                        worker.watched = Some(stop.watch(&self.databases[task.database], &connected));
                    }
                    work(worker.client.insert(connected), &task.schema)
                }),
            };
            // A broken connection is replaced before the next schema.
            if worker.client.as_ref().is_some_and(|c| c.is_closed()) {
                worker.client = None;
                worker.forget(self.stop.as_deref());
            }
            result
        };
        let interrupted = || self.interrupted();
        pool::drain(&queues, self.jobs, self.keep_going, &interrupted, |_| Worker::default(), run, on_result)
    }

    /// `verify` over `tasks`: one [`verify_schemas`] call per database for all of that database's schemas (it reads
    /// them in a few queries, however many), up to `jobs` databases at once, each on its own connection.
    /// `on_result` gets each database's index and result on the caller's thread. Without `keep_going`, no
    /// database is started after one fails. Returns how many schemas were not started.
    pub fn verify(&self, tasks: &[Task], mut on_result: impl FnMut(usize, Result<Vec<Verification>, Error>)) -> usize {
        let databases: Vec<usize> =
            (0..self.databases.len()).filter(|&d| tasks.iter().any(|t| t.database == d)).collect();
        let schemas_of = |database: usize| -> Vec<SchemaName> {
            tasks.iter().filter(|t| t.database == database).map(|t| t.schema.clone()).collect()
        };
        let mut verified = 0;
        let verify = |_: &mut (), database: usize| {
            let mut client = self.connect(database)?;
            Ok(verify_schemas(&mut client, self.migrator, &schemas_of(database))?)
        };
        let interrupted = || self.interrupted();
        pool::drain(
            &[databases],
            self.jobs,
            self.keep_going,
            &interrupted,
            |_| (),
            verify,
            |database, result| {
                verified += schemas_of(database).len();
                on_result(database, result);
            },
        );
        tasks.len() - verified
    }
}

/// A worker's connection, and its key in the stop switch's watch list.
#[derive(Default)]
struct Worker {
    client: Option<postgres::Client>,
    watched: Option<u64>,
}

impl Worker {
    fn forget(&mut self, stop: Option<&Stop>) {
        if let (Some(stop), Some(key)) = (stop, self.watched.take()) {
            stop.forget(key);
        }
    }
}

/// Default connections per database: two per core (the work is mostly waiting on the server), at most 16.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2).min(16)
}
