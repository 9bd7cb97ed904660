//! Where many schemas stand, in one catalog query for any number of them, without opening a history table or
//! taking a lock: which schemas hold the history table, the digest of its rows that a trigger keeps in the table's
//! comment (in the same transaction as every change), and the service recorded on its `version` column.
//!
//! On Citus (a database with the `citus` extension), the history table of a distributed schema has no trigger:
//! Citus refuses triggers on distributed tables. The digest of such a table is computed from its rows instead: in
//! one more statement on the coordinator, which has each worker read the shards it holds of the selected schemas'
//! history tables (`master_run_on_worker`, the workers at once, each shard planned on its own). Tables that
//! statement could not read (not placed on a worker, moved away meanwhile, a worker refusing) are read through the
//! coordinator (`UNION ALL`, a hundred tables a query, the fleet's over several connections at once). Either way:
//! the same digest, the same standings, at the cost of reading every selected history table.
//!
//! The fleet's survey, the CLI's schema listing and `verify`'s reading of applied versions all read this one query.

use migrate_runtime::catalog::{
    clean_digest_comment, digest_of_rows_sql, digest_query_for_format, DIGEST_FUNCTION, DIGEST_PREFIX, SERVICE_PREFIX,
};
use migrate_runtime::quote_literal;
use migrate_runtime::{MigrationSet, SchemaName};
use postgres::types::Type;

/// How many history tables one query reads for their digests (Citus plans each as a query of its own on its
/// worker: its planning time grows faster than the number of tables).
const TABLES_PER_QUERY: usize = 100;

/// One schema as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surveyed {
    /// The schema's name.
    pub schema: String,
    /// It holds the history table.
    pub has_history: bool,
    /// The digest of the history table's rows (`migrate-digest:...`): its comment, which the trigger keeps; on
    /// Citus, for a table without the trigger in a selected schema, computed from its rows.
    pub digest: Option<String>,
    /// The service recorded as the history table's owner; `None` for a table made before services were recorded.
    pub service: Option<String>,
}

/// What the survey found for one schema, against the binary's migrations.
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

/// The schemas of one database, sorted by name, as one catalog query found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    schemas: Vec<Surveyed>,
    /// Selected schemas whose digest is still to be read from their history table's rows (Citus).
    unread: Vec<String>,
}

impl Catalog {
    /// Read the catalog: every schema but PostgreSQL's own, or only those of `only`, with what they hold of the
    /// history table `history_table`. One query, however many schemas; on Citus, one more for every hundred
    /// schemas of `only` whose history table has no digest trigger (their digests, from their rows).
    pub fn read(
        client: &mut impl postgres::GenericClient,
        history_table: &str,
        only: Option<&[SchemaName]>,
    ) -> Result<Catalog, postgres::Error> {
        let mut catalog = Catalog::read_catalog(client, history_table, only)?;
        let unread = catalog.read_on_workers(client, history_table)?;
        for chunk in unread.chunks(TABLES_PER_QUERY) {
            catalog.set_digests(read_digests(client, history_table, chunk)?);
        }
        Ok(catalog)
    }

    /// [`read`](Self::read) with the digests from rows read over up to `connections` connections at once (made by
    /// `connect`, one chunk of tables a query): what [`Fleet::survey`](crate::Fleet::survey) uses.
    pub fn read_spread<E: From<postgres::Error> + Send>(
        client: &mut postgres::Client,
        history_table: &str,
        only: &[SchemaName],
        connections: usize,
        connect: impl Fn() -> Result<postgres::Client, E> + Sync,
    ) -> Result<Catalog, E> {
        let mut catalog = Catalog::read_catalog(client, history_table, Some(only))?;
        let unread = catalog.read_on_workers(client, history_table)?;
        let chunks: Vec<&[String]> = unread.chunks(TABLES_PER_QUERY).collect();
        if chunks.is_empty() {
            // Not on Citus, or every table has the trigger: the catalog query was all, on the one connection.
            return Ok(catalog);
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let read_chunks = || -> Result<Vec<(String, String)>, E> {
            let mut client = connect()?;
            let mut found = Vec::new();
            while let Some(chunk) = chunks.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                found.extend(read_digests(&mut client, history_table, chunk)?);
            }
            Ok(found)
        };
        let threads = connections.clamp(1, chunks.len());
        let results: Vec<Result<Vec<(String, String)>, E>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(read_chunks)).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        });
        for result in results {
            catalog.set_digests(result?);
        }
        Ok(catalog)
    }

    /// The catalog query alone; on Citus the selected schemas whose digest must be read from rows are left in
    /// `unread`.
    fn read_catalog(
        client: &mut impl postgres::GenericClient,
        history_table: &str,
        only: Option<&[SchemaName]>,
    ) -> Result<Catalog, postgres::Error> {
        let names: Option<Vec<&str>> = only.map(|schemas| schemas.iter().map(SchemaName::as_str).collect());
        // An unnamed statement, typed here: no prepared statement outlives the query, so the survey works through a
        // transaction pooler too (PgBouncer 1.18 does not track named ones across clients).
        let rows = client.query_typed(
            "SELECT n.nspname::text, c.oid IS NOT NULL, digest.description, service.description, \
               EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = $3), \
               EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') \
             FROM pg_catalog.pg_namespace n \
             LEFT JOIN pg_catalog.pg_class c \
               ON c.relnamespace = n.oid AND c.relname = $1 AND c.relkind IN ('r', 'p') \
             LEFT JOIN pg_catalog.pg_description digest ON digest.objoid = c.oid \
               AND digest.classoid = 'pg_catalog.pg_class'::regclass AND digest.objsubid = 0 \
             LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'version' \
             LEFT JOIN pg_catalog.pg_description service ON service.objoid = c.oid \
               AND service.classoid = 'pg_catalog.pg_class'::regclass AND service.objsubid = a.attnum \
             WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
               AND ($2::text[] IS NULL OR n.nspname::text = ANY($2)) \
             ORDER BY 1",
            &[(&history_table, Type::TEXT), (&names, Type::TEXT_ARRAY), (&DIGEST_FUNCTION, Type::TEXT)],
        )?;
        let mut untriggered = Vec::new();
        let schemas = rows
            .into_iter()
            .map(|row| {
                let (has_history, triggered, citus): (bool, bool, bool) = (row.get(1), row.get(4), row.get(5));
                let schema: String = row.get(0);
                // On Citus a table without the trigger has no digest that is kept: read its rows (below).
                let untracked = citus && has_history && !triggered;
                if untracked && only.is_some() {
                    untriggered.push(schema.clone());
                }
                Surveyed {
                    schema,
                    has_history,
                    digest: if untracked { None } else { row.get(2) },
                    service: row
                        .get::<_, Option<String>>(3)
                        .and_then(|comment| comment.strip_prefix(SERVICE_PREFIX).map(str::to_owned)),
                }
            })
            .collect();
        Ok(Catalog { schemas, unread: untriggered })
    }

    /// Read the digests of the schemas left `unread` on the workers that hold their history tables
    /// ([`digests_on_workers`]); what remains unread, to read through the coordinator.
    fn read_on_workers(
        &mut self,
        client: &mut impl postgres::GenericClient,
        history_table: &str,
    ) -> Result<Vec<String>, postgres::Error> {
        let unread = std::mem::take(&mut self.unread);
        if unread.is_empty() {
            return Ok(unread);
        }
        self.set_digests(digests_on_workers(client, history_table, &unread)?);
        Ok(unread.into_iter().filter(|schema| self.get(schema).is_some_and(|found| found.digest.is_none())).collect())
    }

    /// Record digests read from rows, by schema.
    fn set_digests(&mut self, digests: Vec<(String, String)>) {
        for (schema, digest) in digests {
            if let Ok(i) = self.schemas.binary_search_by(|s| s.schema.as_str().cmp(&schema)) {
                self.schemas[i].digest = Some(digest);
            }
        }
    }

    /// Every schema found, sorted by name.
    pub fn schemas(&self) -> &[Surveyed] {
        &self.schemas
    }

    /// The schema named `schema`, when it exists.
    pub fn get(&self, schema: &str) -> Option<&Surveyed> {
        self.schemas.binary_search_by(|s| s.schema.as_str().cmp(schema)).ok().map(|i| &self.schemas[i])
    }

    /// Where each of `schemas` stands against `set`: `Current` when its digest is exactly that of the whole set
    /// applied and clean.
    pub fn standings(&self, set: &MigrationSet, schemas: &[SchemaName]) -> Vec<Standing> {
        let expected = clean_digest_comment(set.iter());
        schemas
            .iter()
            .map(|schema| match self.get(schema.as_str()) {
                Some(found) if found.has_history && found.digest.as_deref() == Some(expected.as_str()) => {
                    Standing::Current { version: set.head() }
                }
                Some(found) if found.has_history => Standing::Differs,
                _ => Standing::Uninitialized,
            })
            .collect()
    }
}

/// The digests of the history tables of `schemas`, computed from their rows in one `UNION ALL` query, every name
/// quoted: `(schema, digest comment)`.
fn read_digests(
    client: &mut impl postgres::GenericClient,
    history_table: &str,
    schemas: &[String],
) -> Result<Vec<(String, String)>, postgres::Error> {
    let sql = schemas
        .iter()
        .filter_map(|schema| SchemaName::new(schema).ok())
        .map(|schema| digest_of_rows_sql(&schema, history_table))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    if sql.is_empty() {
        return Ok(Vec::new());
    }
    let mut digests = Vec::new();
    for message in client.simple_query(&sql)? {
        let postgres::SimpleQueryMessage::Row(row) = message else { continue };
        if let (Some(schema), Some(digest)) = (row.get("schema"), row.get("digest")) {
            digests.push((schema.to_owned(), digest.to_owned()));
        }
    }
    Ok(digests)
}

/// The digests of the history tables of `schemas` that Citus has placed on a node, each computed from its rows on
/// that node, in one statement on the coordinator: `master_run_on_worker` sends each node one query over the
/// shards it holds (their names come from Citus's metadata as data, never as SQL text; each shard is read by
/// `query_to_xml`, so a shard moved away since the metadata was read is skipped, not an error), the nodes at
/// once. Through the coordinator, Citus plans each table of a query as a distributed query of its own (about a
/// millisecond each, one after the other); on its worker a shard is a plain table.
///
/// A schema missing from the answer (its history table not a single-shard table, its shard moved, its node
/// refusing) is left to the caller. A statement Citus refuses as a whole (an older Citus, a role without rights
/// on its metadata) leaves them all to the caller: the statement runs in a savepoint, so a transaction around the
/// survey goes on.
pub fn digests_on_workers(
    client: &mut impl postgres::GenericClient,
    history_table: &str,
    schemas: &[String],
) -> Result<Vec<(String, String)>, postgres::Error> {
    // One node's query: the digest of each of its shards `v.t` (a qualified, quoted name) of schema `v.s`, as a
    // JSON array of `[schema, digest comment]`. `query_to_xml` runs the query given as text, one shard at a time.
    let per_shard = quote_literal(&digest_query_for_format());
    let prefix = quote_literal(DIGEST_PREFIX);
    let node_query_head = format!(
        "SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(v.s, {prefix} || \
           pg_catalog.substring(pg_catalog.query_to_xml(pg_catalog.format({per_shard}, v.t), false, true, '')::text, \
             '<digest>([0-9a-f]+)</digest>')))::text, '[]') \
         FROM (VALUES "
    );
    let node_query_tail = ") v(s, t) WHERE pg_catalog.to_regclass(v.t) IS NOT NULL";
    let statement = "WITH placed AS ( \
           SELECT DISTINCT ON (shard.logicalrelid) node.nodename, node.nodeport, n.nspname::text AS schema, \
             pg_catalog.shard_name(shard.logicalrelid, shard.shardid, false) AS shard \
           FROM pg_catalog.pg_dist_partition part \
           JOIN pg_catalog.pg_dist_shard shard ON shard.logicalrelid = part.logicalrelid \
           JOIN pg_catalog.pg_dist_placement placement ON placement.shardid = shard.shardid \
           JOIN pg_catalog.pg_dist_node node ON node.groupid = placement.groupid \
             AND node.noderole = 'primary' AND node.isactive \
           JOIN pg_catalog.pg_class c ON c.oid = shard.logicalrelid \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE part.partmethod = 'n' AND c.relname = $1 AND n.nspname::text = ANY($2) \
           ORDER BY shard.logicalrelid, node.nodeid), \
         commands AS ( \
           SELECT array_agg(nodename) AS names, array_agg(nodeport) AS ports, array_agg(command) AS commands \
           FROM (SELECT nodename, nodeport, \
                   $3 || string_agg(pg_catalog.format('(%L, %L)', schema, shard), ', ') || $4 AS command \
                 FROM placed GROUP BY nodename, nodeport) per_node \
           HAVING count(*) > 0) \
         SELECT found ->> 0, found ->> 1 \
         FROM commands, pg_catalog.master_run_on_worker(names, ports, commands, true) ran, \
           pg_catalog.json_array_elements(CASE WHEN ran.success THEN ran.result::json ELSE '[]' END) found";
    let mut savepoint = client.transaction()?;
    let rows = savepoint.query_typed(
        statement,
        &[
            (&history_table, Type::TEXT),
            (&schemas, Type::TEXT_ARRAY),
            (&node_query_head, Type::TEXT),
            (&node_query_tail, Type::TEXT),
        ],
    );
    let rows = match rows {
        Ok(rows) => rows,
        // Refused as a whole: the caller reads these tables through the coordinator.
        Err(error) if error.as_db_error().is_some() => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    savepoint.commit()?;
    Ok(rows
        .into_iter()
        .filter_map(|row| Some((row.get::<_, Option<String>>(0)?, row.get::<_, Option<String>>(1)?)))
        .collect())
}

/// Whether the database has the `citus` extension (a Citus coordinator, or a worker): there, some DDL must be sent
/// one statement a query string, and the history tables of distributed schemas have no digest trigger.
pub fn has_citus(client: &mut impl postgres::GenericClient) -> Result<bool, postgres::Error> {
    let row =
        client.query_typed("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')", &[])?;
    Ok(row.first().is_some_and(|row| row.get(0)))
}
