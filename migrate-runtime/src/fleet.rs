//! Many schemas, on one database server or several: find in one round trip which schemas need work, then run an
//! operation on those over a bounded pool of connections.
//!
//! ```no_run
//! use migrate_runtime::{embed_migrations, Fleet, MigrationSet, Migrator, Operation, SchemaName, Target, Task};
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
//! let not_started = fleet.for_each(&tasks, |client, schema| migrator.run(client, schema.as_str(), Operation::Upgrade(Target::Head)), |i, result| {
//!     println!("{}: {:?}", tasks[i].schema, result.map(|r| r.version_after));
//! });
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use std::collections::HashMap;

use crate::database::Database;
use crate::error::Error;
use crate::history::clean_digest_comment;
use crate::migrator::Migrator;
use crate::schema::SchemaName;

/// One unit of fleet work: a schema on one of the fleet's databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Index into the fleet's databases.
    pub database: usize,
    /// The schema.
    pub schema: SchemaName,
}

/// What the survey found for one schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Exactly the binary's migrations are applied, with matching checksums and nothing dirty.
    Current {
        /// The newest version.
        version: Option<i64>,
    },
    /// No history table: never migrated.
    Uninitialized,
    /// Something differs (pending, ahead, drifted, dirty): the schema needs a closer look.
    Differs,
}

impl Standing {
    /// Nothing to do for an upgrade to head.
    pub fn is_current(self) -> bool {
        matches!(self, Standing::Current { .. })
    }
}

/// Runs operations over many schemas on one or several databases.
#[derive(Debug, Clone)]
pub struct Fleet<'m> {
    migrator: &'m Migrator<'m>,
    databases: Vec<Database>,
    jobs: usize,
    keep_going: bool,
}

impl<'m> Fleet<'m> {
    /// A fleet over `databases` (one config per server or database), with [`default_jobs`] connections per
    /// database, stopping at the first failure.
    pub fn new(migrator: &'m Migrator<'m>, databases: Vec<Database>) -> Fleet<'m> {
        Fleet { migrator, databases, jobs: default_jobs(), keep_going: false }
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

    /// The databases.
    pub fn databases(&self) -> &[Database] {
        &self.databases
    }

    /// Which of `schemas` on database `database` are exactly at the binary's head, in one catalog query for any
    /// number of schemas: each history table carries a digest of its rows in its comment, kept by a trigger in the
    /// same transaction as every change. A schema found `Current` needs no work; the others are worth a closer
    /// look.
    pub fn survey(&self, database: usize, schemas: &[SchemaName]) -> Result<Vec<Standing>, Error> {
        let database = &self.databases[database];
        let mut client =
            database.connect().map_err(|source| Error::Connect { database: database.to_string(), source })?;
        survey(&mut client, database, self.migrator, schemas)
    }

    /// Call `work` for every task, on at most `jobs` connections per database; `on_result` gets each task's index
    /// and result on the caller's thread as it finishes. Returns how many tasks were not started because one
    /// failed (unless `keep_going`).
    pub fn for_each<T: Send>(
        &self,
        tasks: &[Task],
        work: impl Fn(&mut postgres::Client, &SchemaName) -> Result<T, Error> + Sync,
        mut on_result: impl FnMut(usize, Result<T, Error>),
    ) -> usize {
        let stop = AtomicBool::new(false);
        let (sender, receiver) = mpsc::channel::<(usize, Result<T, Error>)>();
        let mut finished = 0;
        std::thread::scope(|scope| {
            for database in 0..self.databases.len() {
                // Each database has its own queue and pool, so servers are worked on in parallel.
                let queue: Vec<usize> = (0..tasks.len()).filter(|&i| tasks[i].database == database).collect();
                if queue.is_empty() {
                    continue;
                }
                let next = std::sync::Arc::new(AtomicUsize::new(0));
                let queue = std::sync::Arc::new(queue);
                for _ in 0..self.jobs.min(queue.len()) {
                    let (sender, next, queue, stop, work) = (sender.clone(), next.clone(), queue.clone(), &stop, &work);
                    let database = &self.databases[database];
                    scope.spawn(move || {
                        let mut client: Option<postgres::Client> = None;
                        while !stop.load(Ordering::SeqCst) {
                            let Some(&index) = queue.get(next.fetch_add(1, Ordering::SeqCst)) else { break };
                            let schema = &tasks[index].schema;
                            let result = match &mut client {
                                Some(client) => work(client, schema),
                                None => match database.connect() {
                                    Ok(connected) => work(client.insert(connected), schema),
                                    Err(source) => Err(Error::Connect { database: database.to_string(), source }),
                                },
                            };
                            // A broken connection is replaced before the next schema.
                            if client.as_ref().is_some_and(|c| c.is_closed()) {
                                client = None;
                            }
                            if result.is_err() && !self.keep_going {
                                stop.store(true, Ordering::SeqCst);
                            }
                            if sender.send((index, result)).is_err() {
                                break;
                            }
                        }
                    });
                }
            }
            drop(sender);
            for (index, result) in receiver {
                finished += 1;
                on_result(index, result);
            }
        });
        tasks.len() - finished
    }
}

/// Default connections per database: two per core (the work is mostly waiting on the server), at most 16.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2).min(16)
}

/// One catalog query: every history table with its digest comment, which a trigger rewrites in the same
/// transaction as every change to the table. No history table is opened and no lock is taken.
fn survey(
    client: &mut postgres::Client,
    database: &Database,
    migrator: &Migrator<'_>,
    schemas: &[SchemaName],
) -> Result<Vec<Standing>, Error> {
    let context = |source| Error::Catalog { database: database.to_string(), action: "survey the schemas", source };
    let found: HashMap<String, Option<String>> = client
        .query(
            "SELECT n.nspname, d.description FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_catalog.pg_description d \
               ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0 \
             WHERE c.relname = $1 AND c.relkind IN ('r', 'p')",
            &[&migrator.history_table_name()],
        )
        .map_err(context)?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let expected = clean_digest_comment(migrator.set().iter());
    Ok(schemas
        .iter()
        .map(|schema| match found.get(schema.as_str()) {
            None => Standing::Uninitialized,
            Some(Some(comment)) if *comment == expected => Standing::Current { version: migrator.set().head() },
            Some(_) => Standing::Differs,
        })
        .collect())
}
