//! Verifying tenants against the binary, and diffing two live schemas.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::catalog::{query_failed, snapshot};
use super::diff::{diff, Difference};
use super::object::Structure;
use super::{catalog, reference};
use crate::error::StructureError;
use crate::survey::Catalog;
use migrate_runtime::catalog::clean_digest_comment;
use migrate_runtime::{quote_ident, quote_literal, validate_identifier, MigrationSet, Migrator, SchemaName};

/// How one schema compares with what the binary's migrations build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The schema.
    pub schema: SchemaName,
    /// Its newest applied version; `None` when nothing is applied.
    pub version: Option<i64>,
    /// What was found.
    pub outcome: Outcome,
}

/// The result of verifying one schema.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Its structure is exactly what its applied migrations build.
    Equal,
    /// Its structure differs from what its applied migrations build: `Missing` is what the schema lacks, `Extra`
    /// what it has besides, `Changed` what it has defined otherwise.
    Differs(Vec<Difference>),
    /// No history table, or an empty one (this includes a schema that does not exist).
    NotMigrated,
    /// Versions are applied that this binary does not have, so what they built is unknown here.
    Ahead {
        /// The applied versions missing from the binary.
        versions: Vec<i64>,
    },
}

impl Outcome {
    /// `equal`, `differs`, `not migrated` or `ahead`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Equal => "equal",
            Outcome::Differs(_) => "differs",
            Outcome::NotMigrated => "not migrated",
            Outcome::Ahead { .. } => "ahead",
        }
    }

    /// The structure does not match: what the CLI reports with exit code 5.
    pub fn is_drift(&self) -> bool {
        matches!(self, Outcome::Differs(_))
    }
}

/// Compare each of `schemas` with the structure the migrator's migrations build for the versions it has applied,
/// each run with the migrator's `search_path` (its shared schemas after the scratch schema, as at boot).
///
/// Reads every schema's applied versions (from the digest the migrator's history table carries in its
/// comment, opening the table only when the digest is not that of a clean prefix of the set), then every
/// structure, in one read-only snapshot and a fixed number of queries however many schemas there are. Builds one reference per
/// distinct list of applied versions (usually one: every tenant at head), each in a scratch schema that is rolled
/// back ([`reference_structure`](crate::reference_structure)), so the role needs `CREATE` on the database.
/// Fingerprints are compared first; the object-level diff is computed only for schemas whose fingerprint differs.
/// Results come in the order of `schemas` (duplicates once). Data in tables is not compared, nor are ownership
/// and grants; a dirty (part-applied) version counts as applied.
///
/// ```no_run
/// # use migrate_runtime::{embed_migrations, MigrationSet, Migrator, SchemaName};
/// use migrate_ops::Outcome;
/// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
/// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
/// let schemas = [SchemaName::new("tenant-1").unwrap(), SchemaName::new("tenant-2").unwrap()];
/// let migrator = Migrator::new(&MIGRATIONS).with_env().unwrap(); // MIGRATE_EXTRA_SEARCH_PATH, as at boot
/// for verification in migrate_ops::verify_schemas(&mut client, &migrator, &schemas)? {
///     println!("{}: {}", verification.schema, verification.outcome.label());
///     if let Outcome::Differs(differences) = &verification.outcome {
///         differences.iter().for_each(|d| println!("  {d}"));
///     }
/// }
/// # Ok::<(), migrate_ops::StructureError>(())
/// ```
pub fn verify_schemas(
    client: &mut postgres::Client,
    migrator: &Migrator<'_>,
    schemas: &[SchemaName],
) -> Result<Vec<Verification>, StructureError> {
    let (set, history_table) = (migrator.set(), migrator.history_table_name());
    validate_identifier(history_table, "history table")?;
    let mut seen = BTreeSet::new();
    let schemas: Vec<SchemaName> = schemas.iter().filter(|s| seen.insert(*s)).cloned().collect();

    let failed = |action, source| query_failed(&schemas, action, source);
    let mut transaction = snapshot(client).map_err(|e| failed("begin a read-only snapshot", e))?;
    let applied = applied_versions(&mut transaction, set, &schemas, history_table)
        .map_err(|e| failed("read the history tables", e))?;
    let migrated: Vec<SchemaName> = applied.keys().cloned().collect();
    let structures =
        catalog::read(&mut transaction, &migrated, history_table).map_err(|e| failed("read the structure", e))?;
    transaction.commit().map_err(|e| failed("end the read-only snapshot", e))?;

    let mut references: BTreeMap<&[i64], Structure> = BTreeMap::new();
    for versions in applied.values() {
        if references.contains_key(&versions[..]) || versions.iter().any(|v| set.get(*v).is_none()) {
            continue;
        }
        let migrations: Vec<_> = set.iter().filter(|m| versions.binary_search(&m.version).is_ok()).collect();
        references.insert(versions, reference::build(client, &migrations, migrator)?);
    }

    Ok(schemas
        .into_iter()
        .map(|schema| {
            let versions = applied.get(&schema).map(Vec::as_slice).unwrap_or_default();
            let version = versions.last().copied();
            let unknown: Vec<i64> = versions.iter().copied().filter(|v| set.get(*v).is_none()).collect();
            let outcome = match (structures.get(&schema), references.get(versions)) {
                _ if versions.is_empty() => Outcome::NotMigrated,
                _ if !unknown.is_empty() => Outcome::Ahead { versions: unknown },
                (Some(found), Some(expected)) if found.fingerprint() == expected.fingerprint() => Outcome::Equal,
                (Some(found), Some(expected)) => Outcome::Differs(diff(expected, found)),
                // The schema was dropped between reading its history and its catalogs.
                _ => Outcome::NotMigrated,
            };
            Verification { schema, version, outcome }
        })
        .collect())
}

/// Every difference between two live schemas: `Missing` is in `a` and not in `b`, `Extra` in `b` and not in `a`,
/// `Changed` carries both definitions. Both are read in one snapshot; their history table `history_table` is left
/// out. Refused with [`StructureError::NoSuchSchema`] when either does not exist.
///
/// ```no_run
/// # use migrate_runtime::SchemaName;
/// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
/// let (a, b) = (SchemaName::new("prod").unwrap(), SchemaName::new("staging").unwrap());
/// let differences = migrate_ops::diff_schemas(&mut client, &a, &b, "schema_migrations")?;
/// differences.iter().for_each(|difference| println!("{difference}"));
/// # Ok::<(), migrate_ops::StructureError>(())
/// ```
pub fn diff_schemas(
    client: &mut postgres::Client,
    a: &SchemaName,
    b: &SchemaName,
    history_table: &str,
) -> Result<Vec<Difference>, StructureError> {
    let structures = catalog::read_structures(client, &[a.clone(), b.clone()], history_table)?;
    let structure = |schema: &SchemaName| {
        structures.get(schema).ok_or_else(|| StructureError::NoSuchSchema { schema: schema.to_string() })
    };
    Ok(diff(structure(a)?, structure(b)?))
}

/// How many history tables one query reads.
const HISTORY_TABLES_PER_QUERY: usize = 500;

/// Where a schema stands against the migrator's head, by its history.
pub(crate) enum HeadStanding {
    /// It has applied exactly the set's migrations.
    AtHead,
    /// It has no history table (or an empty one).
    NoHistory,
    /// It has applied others: what, in words (`6 migration(s), the newest 6`).
    Elsewhere(String),
}

/// Where `schema` stands against the migrator's head, read in the caller's transaction.
pub(crate) fn head_standing(
    transaction: &mut postgres::Transaction<'_>,
    migrator: &Migrator<'_>,
    schema: &SchemaName,
) -> Result<HeadStanding, StructureError> {
    let set = migrator.set();
    let applied = applied_versions(transaction, set, std::slice::from_ref(schema), migrator.history_table_name())
        .map_err(|e| query_failed(std::slice::from_ref(schema), "read the history table", e))?;
    let Some(versions) = applied.get(schema) else { return Ok(HeadStanding::NoHistory) };
    if versions.iter().copied().eq(set.iter().map(|m| m.version)) {
        return Ok(HeadStanding::AtHead);
    }
    Ok(HeadStanding::Elsewhere(match versions.last() {
        Some(last) => format!("{} migration(s), the newest {last}", versions.len()),
        None => "no migration".to_owned(),
    }))
}

/// Applied versions, ascending, of every schema of `schemas` that has a history table.
///
/// One catalog query ([`Catalog`]) finds the history tables with their comments: a trigger keeps a digest of each
/// table's rows in its comment, in the same transaction as every change (on Citus the survey digests the rows of
/// distributed history tables on their workers), so a schema whose digest is that of a clean prefix of the set
/// (every tenant migrated by this binary or an older one) is known without opening its table. Only the others (dirty, edited, out of order, ahead, or older than the digest) have their table read,
/// with one `UNION ALL` query per few hundred tables, every name quoted. Opening thousands of tables in one
/// transaction would also take thousands of locks.
pub(crate) fn applied_versions(
    client: &mut postgres::Transaction<'_>,
    set: &MigrationSet,
    schemas: &[SchemaName],
    history_table: &str,
) -> Result<BTreeMap<SchemaName, Vec<i64>>, postgres::Error> {
    let by_name: HashMap<&str, &SchemaName> = schemas.iter().map(|s| (s.as_str(), s)).collect();
    let prefixes = prefix_comments(set);
    let mut applied: BTreeMap<SchemaName, Vec<i64>> = BTreeMap::new();
    let mut unknown: Vec<&SchemaName> = Vec::new();
    let catalog = Catalog::read(client, history_table, Some(schemas))?;
    for found in catalog.schemas().iter().filter(|found| found.has_history) {
        let Some(schema) = by_name.get(found.schema.as_str()) else { continue };
        match found.digest.as_deref().and_then(|comment| prefixes.get(comment)) {
            Some(versions) if versions.is_empty() => {}
            Some(versions) => {
                applied.insert((*schema).clone(), versions.clone());
            }
            None => unknown.push(schema),
        }
    }
    for chunk in unknown.chunks(HISTORY_TABLES_PER_QUERY) {
        let sql = chunk
            .iter()
            .map(|schema| {
                format!(
                    "SELECT {}::text, version FROM {}.{}",
                    quote_literal(schema.as_str()),
                    schema.quoted(),
                    quote_ident(history_table)
                )
            })
            .collect::<Vec<_>>()
            .join("\nUNION ALL ");
        for row in client.query_typed(&sql, &[])? {
            if let Some(schema) = by_name.get(row.get::<_, &str>(0)) {
                applied.entry((*schema).clone()).or_default().push(row.get(1));
            }
        }
    }
    for versions in applied.values_mut() {
        versions.sort_unstable();
        versions.dedup();
    }
    Ok(applied)
}

/// The digest comment of a history table holding exactly the first `k` migrations of the set, clean, for every
/// `k`, with those versions: what the runtime's trigger writes for them.
fn prefix_comments(set: &MigrationSet) -> HashMap<String, Vec<i64>> {
    let migrations: Vec<_> = set.iter().collect();
    (0..=migrations.len())
        .map(|k| {
            (clean_digest_comment(migrations[..k].iter().copied()), migrations[..k].iter().map(|m| m.version).collect())
        })
        .collect()
}
