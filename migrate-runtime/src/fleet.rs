//! Many schemas, on one database server or several: find in one round trip which schemas need work, then run an
//! operation on those over a bounded pool of connections.
//!
//! ```no_run
//! use migrate_runtime::{embed_migrations, Fleet, MigrationSet, Migrator, Operation, SchemaName, Target, Task};
//!
//! static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
//!
//! let migrator = Migrator::new(&MIGRATIONS);
//! let databases = vec!["host=127.0.0.1 user=postgres".parse().unwrap()];
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

use sha2::{Digest, Sha256};

use crate::history::{rows, HistoryTable};
use crate::{Error, Migrator, SchemaName};

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

/// Schemas read per transaction in a survey: reading a table takes a lock held to the end of the transaction, and
/// the server's lock table is sized for about `max_locks_per_transaction` (64) per connection.
const SURVEY_CHUNK: usize = 200;

/// Runs operations over many schemas on one or several databases.
#[derive(Debug, Clone)]
pub struct Fleet<'m> {
    migrator: &'m Migrator<'m>,
    databases: Vec<postgres::Config>,
    jobs: usize,
    keep_going: bool,
}

impl<'m> Fleet<'m> {
    /// A fleet over `databases` (one config per server or database), with [`default_jobs`] connections per
    /// database, stopping at the first failure.
    pub fn new(migrator: &'m Migrator<'m>, databases: Vec<postgres::Config>) -> Fleet<'m> {
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
    pub fn databases(&self) -> &[postgres::Config] {
        &self.databases
    }

    /// Which of `schemas` on database `database` are exactly at the binary's head: two round trips for any number
    /// of schemas (one to list the schemas holding the history table, one that reads a digest of every history
    /// table, a few hundred schemas per transaction). A schema found `Current` needs no work; the others are
    /// worth a closer look.
    pub fn survey(&self, database: usize, schemas: &[SchemaName]) -> Result<Vec<Standing>, Error> {
        let config = &self.databases[database];
        let context = |source| Error::Database { schema: String::new(), action: "survey the schemas", source };
        let mut client = config.connect(postgres::NoTls).map_err(context)?;
        survey(&mut client, self.migrator, schemas)
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
                    let config = &self.databases[database];
                    scope.spawn(move || {
                        let mut client: Option<postgres::Client> = None;
                        while !stop.load(Ordering::SeqCst) {
                            let Some(&index) = queue.get(next.fetch_add(1, Ordering::SeqCst)) else { break };
                            let schema = &tasks[index].schema;
                            let result = match &mut client {
                                Some(client) => work(client, schema),
                                None => match config.connect(postgres::NoTls) {
                                    Ok(connected) => work(client.insert(connected), schema),
                                    Err(source) => Err(Error::Database {
                                        schema: schema.to_string(),
                                        action: "connect to the database",
                                        source,
                                    }),
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

/// The digest of a history that is exactly the binary's set: what the survey query computes per schema.
fn expected_digest(migrator: &Migrator<'_>) -> String {
    let rows: Vec<String> = migrator
        .set()
        .iter()
        .map(|m| {
            match &m.down {
                Some(down) => format!("{}:{}:{}:f", m.version, m.up.checksum, down.checksum),
                None => format!("{}:{}:f", m.version, m.up.checksum),
            }
        })
        .collect();
    let digest = Sha256::digest(rows.join(",").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn survey(client: &mut postgres::Client, migrator: &Migrator<'_>, schemas: &[SchemaName]) -> Result<Vec<Standing>, Error> {
    let context = |source| Error::Database { schema: String::new(), action: "survey the schemas", source };
    let table = migrator.history_table_name();
    let managed: std::collections::HashSet<String> = client
        .query(
            "SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = $1 AND c.relkind IN ('r', 'p')",
            &[&table],
        )
        .map_err(context)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut standings: Vec<Standing> =
        schemas.iter().map(|s| if managed.contains(s.as_str()) { Standing::Differs } else { Standing::Uninitialized }).collect();
    let surveyed: Vec<usize> = (0..schemas.len()).filter(|&i| standings[i] == Standing::Differs).collect();
    if surveyed.is_empty() {
        return Ok(standings);
    }
    let mut sql = String::new();
    for chunk in surveyed.chunks(SURVEY_CHUNK) {
        let arms: Result<Vec<String>, Error> = chunk
            .iter()
            .map(|&i| {
                let history = HistoryTable::new(&schemas[i], table)?;
                // concat_ws skips a NULL down checksum; checksums are fixed-width hex, so rows stay unambiguous.
                // (It is also several times cheaper per row than a chain of `||` with casts.)
                Ok(format!(
                    "SELECT {i}, max(version), encode(sha256(convert_to(coalesce(string_agg(\
                     concat_ws(':', version, checksum, down_checksum, dirty), ',' ORDER BY version), ''), 'UTF8')), 'hex') \
                     FROM {}",
                    history.qualified()
                ))
            })
            .collect();
        sql.push_str("BEGIN READ ONLY;\n");
        sql.push_str(&arms?.join("\nUNION ALL "));
        sql.push_str(";\nCOMMIT;\n");
    }
    let expected = expected_digest(migrator);
    let messages = client.simple_query(&sql).map_err(context)?;
    for row in rows(&messages) {
        let (Some(Some(index)), Some(version), Some(Some(digest))) = (row.first(), row.get(1), row.get(2)) else { continue };
        let Ok(index) = index.parse::<usize>() else { continue };
        if *digest == expected && index < standings.len() {
            standings[index] = Standing::Current { version: version.and_then(|v| v.parse().ok()) };
        }
    }
    Ok(standings)
}
