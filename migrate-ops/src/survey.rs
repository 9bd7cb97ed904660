//! Where many schemas stand, in one catalog query for any number of them, without opening a history table or
//! taking a lock: which schemas hold the history table, the digest of its rows that a trigger keeps in the table's
//! comment (in the same transaction as every change), and the service recorded on its `version` column.
//!
//! The fleet's survey, the CLI's schema listing and `verify`'s reading of applied versions all read this one query.

use migrate_runtime::catalog::{clean_digest_comment, SERVICE_PREFIX};
use migrate_runtime::{MigrationSet, SchemaName};
use postgres::types::Type;

/// One schema as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surveyed {
    /// The schema's name.
    pub schema: String,
    /// It holds the history table.
    pub has_history: bool,
    /// The history table's comment: the digest of its rows (`migrate-digest:...`) when the trigger keeps it.
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
}

impl Catalog {
    /// Read the catalog: every schema but PostgreSQL's own, or only those of `only`, with what they hold of the
    /// history table `history_table`. One query, however many schemas.
    pub fn read(
        client: &mut impl postgres::GenericClient,
        history_table: &str,
        only: Option<&[SchemaName]>,
    ) -> Result<Catalog, postgres::Error> {
        let only: Option<Vec<&str>> = only.map(|schemas| schemas.iter().map(SchemaName::as_str).collect());
        // An unnamed statement, typed here: no prepared statement outlives the query, so the survey works through a
        // transaction pooler too (PgBouncer 1.18 does not track named ones across clients).
        let rows = client.query_typed(
            "SELECT n.nspname::text, c.oid IS NOT NULL, digest.description, service.description \
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
            &[(&history_table, Type::TEXT), (&only, Type::TEXT_ARRAY)],
        )?;
        let schemas = rows
            .into_iter()
            .map(|row| Surveyed {
                schema: row.get(0),
                has_history: row.get(1),
                digest: row.get(2),
                service: row
                    .get::<_, Option<String>>(3)
                    .and_then(|comment| comment.strip_prefix(SERVICE_PREFIX).map(str::to_owned)),
            })
            .collect();
        Ok(Catalog { schemas })
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
