//! The catalog reader: the structure of many schemas in a fixed number of queries (one per object kind, each over
//! `= ANY($1)` of the schemas' OIDs), however many schemas there are.
//!
//! Every query returns the same leading columns: the schema's OID, the [`ObjectKind`] label, the owning table (or
//! NULL), the object's name and its identity arguments (or NULL); then one column per attribute, named after the
//! attribute, NULL when unset and `''` for a flag that is set. The reader turns the rows into [`Definition`]s
//! without knowing which query they came from.
//!
//! The queries run with `search_path` set to `pg_catalog` alone, so `pg_get_*def`, `format_type` and `regclass`
//! output qualify every object of the schema with the schema's name; the reader then replaces that name with
//! [`SCHEMA_PLACEHOLDER`]. Reading with the tenant's own `search_path` would leave its objects unqualified but
//! qualify those of other schemas differently per tenant; one fixed path makes the text deterministic.

use std::collections::{BTreeMap, HashMap};

use postgres::types::Type;
use postgres::GenericClient;

use super::object::{Definition, ObjectKind, ObjectName, Structure, SCHEMA_PLACEHOLDER};
use crate::error::StructureError;
use migrate_runtime::catalog::DIGEST_FUNCTION;
use migrate_runtime::{quote_ident, validate_identifier, SchemaName};

/// Which second parameter a query takes: the history table's name (to leave it, and what hangs off it, out), the
/// name of the history table's trigger function, or none (the history table's row type is not a composite type).
#[derive(Clone, Copy)]
enum Exclude {
    HistoryTable,
    DigestFunction,
    Nothing,
}

/// Tables (plain, partitioned, foreign), with their columns' order. Column order is part of a table's structure in
/// PostgreSQL (`SELECT *`, `INSERT` without a column list, `COPY`), so it is compared; dropped columns, which keep
/// their slot in `pg_attribute`, are skipped, so a column added and dropped again leaves no trace.
const TABLES: &str = "
SELECT c.relnamespace, 'table', NULL::text, c.relname::text, NULL::text,
       CASE c.relkind WHEN 'p' THEN 'partitioned' WHEN 'f' THEN 'foreign' END AS \"kind\",
       CASE c.relpersistence WHEN 'u' THEN 'unlogged' END AS \"persistence\",
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS \"columns\",
       CASE WHEN c.reloftype <> 0 THEN c.reloftype::regtype::text END AS \"of type\",
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS \"partition by\",
       (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno) FROM pg_inherits i
         WHERE i.inhrelid = c.oid) AS \"inherits\",
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS \"partition bound\",
       array_to_string(c.reloptions, ', ') AS \"options\",
       CASE WHEN c.relrowsecurity THEN '' END AS \"row level security\",
       CASE WHEN c.relforcerowsecurity THEN '' END AS \"force row level security\",
       d.description AS \"comment\"
  FROM pg_class c
  LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
 WHERE c.relnamespace = ANY($1) AND c.relkind IN ('r', 'p', 'f') AND c.relname <> ALL($2)";

/// Columns of those tables. The default of an identity or generated column is not a default, so it is shown
/// under `generated` (or not at all for identity, whose sequence is an object of its own).
const COLUMNS: &str = "
SELECT c.relnamespace, 'column', c.relname::text, a.attname::text, NULL::text,
       format_type(a.atttypid, a.atttypmod) AS \"type\",
       CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END AS \"collation\",
       CASE WHEN a.attnotnull THEN '' END AS \"not null\",
       CASE WHEN a.attidentity NOT IN ('a', 'd') AND a.attgenerated <> 's' THEN pg_get_expr(ad.adbin, ad.adrelid) END
         AS \"default\",
       CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END AS \"identity\",
       CASE WHEN a.attgenerated = 's' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS \"generated\",
       d.description AS \"comment\"
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
 WHERE c.relnamespace = ANY($1) AND c.relkind IN ('r', 'p', 'f') AND c.relname <> ALL($2)
   AND a.attnum > 0 AND NOT a.attisdropped";

/// Table constraints. `pg_get_constraintdef` says the type (PRIMARY KEY, UNIQUE, FOREIGN KEY, CHECK, EXCLUDE),
/// deferrability and `NOT VALID`.
const CONSTRAINTS: &str = "
SELECT c.relnamespace, 'constraint', c.relname::text, co.conname::text, NULL::text,
       pg_get_constraintdef(co.oid) AS \"definition\",
       d.description AS \"comment\"
  FROM pg_constraint co
  JOIN pg_class c ON c.oid = co.conrelid
  LEFT JOIN pg_description d ON d.objoid = co.oid AND d.classoid = 'pg_constraint'::regclass AND d.objsubid = 0
 WHERE c.relnamespace = ANY($1) AND c.relname <> ALL($2)";

/// Indexes, with validity: a failed `CREATE INDEX CONCURRENTLY` leaves an index that exists but is `invalid`, and
/// is never used by the planner, while the history table says the migration ran.
const INDEXES: &str = "
SELECT c.relnamespace, 'index', NULL::text, ic.relname::text, NULL::text,
       pg_get_indexdef(i.indexrelid) AS \"definition\",
       CASE WHEN NOT i.indisvalid THEN '' END AS \"invalid\",
       CASE WHEN NOT i.indisready THEN '' END AS \"not ready\",
       CASE WHEN i.indisclustered THEN '' END AS \"clustered\",
       d.description AS \"comment\"
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class c ON c.oid = i.indrelid
  LEFT JOIN pg_description d ON d.objoid = ic.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
 WHERE c.relnamespace = ANY($1) AND c.relname <> ALL($2)";

const VIEWS: &str = "
SELECT c.relnamespace, CASE c.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END, NULL::text,
       c.relname::text, NULL::text,
       pg_get_viewdef(c.oid) AS \"definition\",
       array_to_string(c.reloptions, ', ') AS \"options\",
       d.description AS \"comment\",
       (SELECT string_agg(quote_ident(a.attname) || ': ' || cd.description, E'\\n' ORDER BY a.attnum)
          FROM pg_attribute a
          JOIN pg_description cd ON cd.objoid = a.attrelid AND cd.classoid = 'pg_class'::regclass
                                AND cd.objsubid = a.attnum
         WHERE a.attrelid = c.oid) AS \"column comments\"
  FROM pg_class c
  LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
 WHERE c.relnamespace = ANY($1) AND c.relkind IN ('v', 'm') AND c.relname <> ALL($2)";

/// Sequences with their parameters, not their current value (that is data).
const SEQUENCES: &str = "
SELECT c.relnamespace, 'sequence', NULL::text, c.relname::text, NULL::text,
       format_type(s.seqtypid, NULL) AS \"type\",
       s.seqstart::text AS \"start\",
       s.seqincrement::text AS \"increment\",
       s.seqmin::text AS \"minimum\",
       s.seqmax::text AS \"maximum\",
       s.seqcache::text AS \"cache\",
       CASE WHEN s.seqcycle THEN '' END AS \"cycle\",
       (SELECT dep.refobjid::regclass::text || '.' || quote_ident(a.attname)
          FROM pg_depend dep
          JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
         WHERE dep.classid = 'pg_class'::regclass AND dep.objid = c.oid AND dep.refclassid = 'pg_class'::regclass
           AND dep.deptype IN ('a', 'i')
         LIMIT 1) AS \"owned by\",
       d.description AS \"comment\"
  FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
 WHERE c.relnamespace = ANY($1) AND c.relname <> ALL($2)";

/// Enum (labels in order), composite (not a table's row type), domain and range types. Domain defaults come from
/// `typdefaultbin` through `pg_get_expr`: `typdefault` is text deparsed with whatever `search_path` was set when
/// the domain was created.
const TYPES: &str = "
SELECT t.typnamespace,
       CASE t.typtype WHEN 'e' THEN 'enum type' WHEN 'c' THEN 'composite type' WHEN 'd' THEN 'domain'
                      ELSE 'range type' END,
       NULL::text, t.typname::text, NULL::text,
       CASE WHEN t.typtype = 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                         FROM pg_enum e WHERE e.enumtypid = t.oid) END AS \"labels\",
       CASE WHEN t.typtype = 'c' THEN (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod),
                                                         ', ' ORDER BY a.attnum)
                                         FROM pg_attribute a
                                        WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
       END AS \"attributes\",
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS \"base type\",
       CASE WHEN t.typtype = 'd' AND t.typnotnull THEN '' END AS \"not null\",
       pg_get_expr(t.typdefaultbin, 0) AS \"default\",
       CASE WHEN t.typtype = 'd' THEN (SELECT string_agg(quote_ident(co.conname) || ' ' || pg_get_constraintdef(co.oid),
                                                         E'\\n' ORDER BY co.conname)
                                         FROM pg_constraint co WHERE co.contypid = t.oid) END AS \"constraints\",
       CASE WHEN t.typtype = 'r' THEN (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r
                                        WHERE r.rngtypid = t.oid) END AS \"subtype\",
       d.description AS \"comment\"
  FROM pg_type t
  LEFT JOIN pg_class rc ON rc.oid = t.typrelid
  LEFT JOIN pg_description d ON d.objoid = t.oid AND d.classoid = 'pg_type'::regclass AND d.objsubid = 0
 WHERE t.typnamespace = ANY($1) AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND rc.relkind = 'c'))";

/// Functions, procedures and aggregates, keyed on name and identity arguments. The body is `prosrc`, or the
/// deparsed SQL-standard body (`BEGIN ATOMIC ...`) when there is one. The history table's trigger function is left
/// out.
const ROUTINES: &str = "
SELECT p.pronamespace,
       CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       NULL::text, p.proname::text, pg_get_function_identity_arguments(p.oid),
       pg_get_function_arguments(p.oid) AS \"arguments\",
       pg_get_function_result(p.oid) AS \"returns\",
       l.lanname::text AS \"language\",
       CASE WHEN p.prokind = 'w' THEN '' END AS \"window\",
       CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END AS \"volatility\",
       CASE WHEN p.proisstrict THEN '' END AS \"strict\",
       CASE WHEN p.prosecdef THEN '' END AS \"security definer\",
       CASE WHEN p.proleakproof THEN '' END AS \"leakproof\",
       CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' END AS \"parallel\",
       p.procost::text AS \"cost\",
       CASE WHEN p.proretset THEN p.prorows::text END AS \"rows\",
       array_to_string(p.proconfig, E'\\n') AS \"set\",
       CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) ELSE p.prosrc END AS \"body\",
       p.probin AS \"object file\",
       d.description AS \"comment\"
  FROM pg_proc p
  JOIN pg_language l ON l.oid = p.prolang
  LEFT JOIN pg_description d ON d.objoid = p.oid AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0
 WHERE p.pronamespace = ANY($1) AND NOT (p.proname = $2 AND p.pronargs = 0)";

/// User triggers (not the internal ones behind foreign keys) and whether they fire.
const TRIGGERS: &str = "
SELECT c.relnamespace, 'trigger', c.relname::text, t.tgname::text, NULL::text,
       pg_get_triggerdef(t.oid) AS \"definition\",
       CASE t.tgenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica only' WHEN 'A' THEN 'always' END
         AS \"firing\",
       d.description AS \"comment\"
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  LEFT JOIN pg_description d ON d.objoid = t.oid AND d.classoid = 'pg_trigger'::regclass AND d.objsubid = 0
 WHERE c.relnamespace = ANY($1) AND NOT t.tgisinternal AND c.relname <> ALL($2)";

/// Row-level security policies. The roles a policy applies to are part of it (by name).
const POLICIES: &str = "
SELECT c.relnamespace, 'policy', c.relname::text, p.polname::text, NULL::text,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE'
                     ELSE 'ALL' END AS \"for\",
       CASE WHEN NOT p.polpermissive THEN '' END AS \"restrictive\",
       (SELECT string_agg(role, ', ' ORDER BY role)
          FROM (SELECT CASE WHEN r.oid = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.oid)) END AS role
                  FROM unnest(p.polroles) AS r(oid)) AS roles) AS \"to\",
       pg_get_expr(p.polqual, p.polrelid) AS \"using\",
       pg_get_expr(p.polwithcheck, p.polrelid) AS \"with check\",
       d.description AS \"comment\"
  FROM pg_policy p
  JOIN pg_class c ON c.oid = p.polrelid
  LEFT JOIN pg_description d ON d.objoid = p.oid AND d.classoid = 'pg_policy'::regclass AND d.objsubid = 0
 WHERE c.relnamespace = ANY($1) AND c.relname <> ALL($2)";

/// Rewrite rules other than the `_RETURN` rule every view has (the view's definition covers it).
const RULES: &str = "
SELECT c.relnamespace, 'rule', c.relname::text, r.rulename::text, NULL::text,
       pg_get_ruledef(r.oid) AS \"definition\",
       CASE r.ev_enabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica only' WHEN 'A' THEN 'always' END
         AS \"firing\",
       d.description AS \"comment\"
  FROM pg_rewrite r
  JOIN pg_class c ON c.oid = r.ev_class
  LEFT JOIN pg_description d ON d.objoid = r.oid AND d.classoid = 'pg_rewrite'::regclass AND d.objsubid = 0
 WHERE c.relnamespace = ANY($1) AND r.rulename <> '_RETURN' AND c.relname <> ALL($2)";

const QUERIES: [(&str, Exclude); 11] = [
    (TABLES, Exclude::HistoryTable),
    (COLUMNS, Exclude::HistoryTable),
    (CONSTRAINTS, Exclude::HistoryTable),
    (INDEXES, Exclude::HistoryTable),
    (VIEWS, Exclude::HistoryTable),
    (SEQUENCES, Exclude::HistoryTable),
    (TYPES, Exclude::Nothing),
    (ROUTINES, Exclude::DigestFunction),
    (TRIGGERS, Exclude::HistoryTable),
    (POLICIES, Exclude::HistoryTable),
    (RULES, Exclude::HistoryTable),
];

/// The columns every query starts with, before the attributes.
const LEADING_COLUMNS: usize = 5;

/// A schema being read: its name in the forms it can take inside definitions.
struct Namespace {
    schema: SchemaName,
    normaliser: Normaliser,
}

/// Read the structure of each of `schemas` that exists, in one read-only snapshot: one query per object kind for
/// all of them. Schemas that do not exist are absent from the result. The history table `history_table` (and its
/// trigger and trigger function) is left out of every schema. Rows in tables are not read.
///
/// ```no_run
/// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
/// use migrate_ops::read_structures;
/// use migrate_runtime::{SchemaName, DEFAULT_HISTORY_TABLE};
///
/// let schemas = [SchemaName::new("tenant-1").unwrap(), SchemaName::new("tenant-2").unwrap()];
/// let structures = read_structures(&mut client, &schemas, DEFAULT_HISTORY_TABLE)?;
/// let same = structures[&schemas[0]].fingerprint() == structures[&schemas[1]].fingerprint();
/// # Ok::<(), migrate_ops::StructureError>(())
/// ```
pub fn read_structures(
    client: &mut postgres::Client,
    schemas: &[SchemaName],
    history_table: &str,
) -> Result<BTreeMap<SchemaName, Structure>, StructureError> {
    validate_identifier(history_table, "history table")?;
    let failed = |source| query_failed(schemas, "read the structure", source);
    let mut transaction = snapshot(client).map_err(failed)?;
    let structures = read(&mut transaction, schemas, history_table).map_err(failed)?;
    transaction.commit().map_err(failed)?;
    Ok(structures)
}

/// A read-only transaction at `REPEATABLE READ`: history tables and catalogs read as of one moment.
pub(crate) fn snapshot(client: &mut postgres::Client) -> Result<postgres::Transaction<'_>, postgres::Error> {
    client.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).read_only(true).start()
}

pub(crate) fn query_failed(schemas: &[SchemaName], action: &'static str, source: postgres::Error) -> StructureError {
    StructureError::Query { schemas: schemas.iter().map(ToString::to_string).collect(), action, source }
}

/// The history tables of other migration tools, left out of every structure as this tool's own is: a schema moved
/// from Alembic, sqlx, diesel, refinery or Flyway keeps the old tool's table (as docs/moving-from-alembic.md
/// advises), and it is no part of what the migrations build.
pub const OTHER_TOOLS_HISTORY_TABLES: [&str; 5] = [
    "alembic_version",
    "_sqlx_migrations",
    "__diesel_schema_migrations",
    "refinery_schema_history",
    "flyway_schema_history",
];

/// The tables no structure holds: this tool's history table and [`OTHER_TOOLS_HISTORY_TABLES`].
fn excluded_tables(history_table: &str) -> Vec<&str> {
    std::iter::once(history_table).chain(OTHER_TOOLS_HISTORY_TABLES).collect()
}

/// [`read_structures`] inside a transaction the caller opened (the reference build reads its scratch schema before
/// rolling back). Sets `search_path` to `pg_catalog` for the rest of the transaction.
pub(crate) fn read(
    client: &mut impl GenericClient,
    schemas: &[SchemaName],
    history_table: &str,
) -> Result<BTreeMap<SchemaName, Structure>, postgres::Error> {
    client.batch_execute("SET LOCAL search_path TO pg_catalog")?;
    let names: Vec<&str> = schemas.iter().map(SchemaName::as_str).collect();
    let by_name: HashMap<&str, &SchemaName> = schemas.iter().map(|s| (s.as_str(), s)).collect();
    let mut namespaces: HashMap<u32, Namespace> = HashMap::new();
    // Unnamed statements, typed here (`query_typed`): no prepared statement outlives its query, so the structure
    // reads through a transaction pooler too.
    for row in client.query_typed(
        "SELECT n.oid, n.nspname::text, quote_ident(n.nspname) FROM pg_namespace n WHERE n.nspname::text = ANY($1)",
        &[(&names, Type::TEXT_ARRAY)],
    )? {
        let name: &str = row.get(1);
        let Some(schema) = by_name.get(name) else { continue };
        let normaliser = Normaliser::new(name, row.get(2));
        namespaces.insert(row.get(0), Namespace { schema: (*schema).clone(), normaliser });
    }
    let oids: Vec<u32> = namespaces.keys().copied().collect();
    let excluded = excluded_tables(history_table);
    let mut objects: HashMap<u32, Vec<(ObjectKind, ObjectName, Definition)>> = HashMap::new();
    if !oids.is_empty() {
        for (sql, exclude) in QUERIES {
            let rows = match exclude {
                Exclude::HistoryTable => {
                    client.query_typed(sql, &[(&oids, Type::OID_ARRAY), (&excluded, Type::TEXT_ARRAY)])?
                }
                Exclude::DigestFunction => {
                    client.query_typed(sql, &[(&oids, Type::OID_ARRAY), (&DIGEST_FUNCTION, Type::TEXT)])?
                }
                Exclude::Nothing => client.query_typed(sql, &[(&oids, Type::OID_ARRAY)])?,
            };
            for row in rows {
                let oid: u32 = row.get(0);
                let Some(namespace) = namespaces.get(&oid) else { continue };
                if let Some(object) = object_of(&row, &namespace.normaliser) {
                    objects.entry(oid).or_default().push(object);
                }
            }
        }
    }
    Ok(namespaces
        .into_iter()
        .map(|(oid, namespace)| (namespace.schema, Structure::new(objects.remove(&oid).unwrap_or_default())))
        .collect())
}

/// One row of any of the queries as an object, its text normalised.
fn object_of(row: &postgres::Row, normaliser: &Normaliser) -> Option<(ObjectKind, ObjectName, Definition)> {
    let kind = ObjectKind::from_label(row.get(1))?;
    let name = ObjectName {
        table: row.get::<_, Option<String>>(2),
        name: row.get(3),
        arguments: row.get::<_, Option<&str>>(4).map(|a| normaliser.qualified(a)),
    };
    let attributes = row.columns().iter().enumerate().skip(LEADING_COLUMNS).filter_map(|(i, column)| {
        let value: Option<&str> = row.get(i);
        let value = match column.name() {
            // `SET search_path = "tenant-1", public`: the schema's name stands alone, not before a dot.
            "set" => value.map(|v| normaliser.words(v)),
            _ => value.map(|v| normaliser.qualified(v)),
        };
        value.map(|v| (column.name().to_owned(), v))
    });
    Some((kind, name, Definition::new(attributes)))
}

/// Replaces a schema's own name in definitions by [`SCHEMA_PLACEHOLDER`]: in the form PostgreSQL prints it
/// (`quote_ident`: bare when it can be, quoted otherwise) and always-quoted (as a hand-written function body may
/// spell it).
pub(crate) struct Normaliser {
    forms: Vec<String>,
}

impl Normaliser {
    /// `name` is the schema's name; `printed` is `quote_ident(name)` as the server computes it (it knows its
    /// keywords).
    pub(crate) fn new(name: &str, printed: &str) -> Normaliser {
        let mut forms = vec![printed.to_owned()];
        let quoted = quote_ident(name);
        if quoted != printed {
            forms.push(quoted);
        }
        Normaliser { forms }
    }

    /// Replace the schema's name where it qualifies another name (followed by `.`).
    pub(crate) fn qualified(&self, text: &str) -> String {
        self.replace(text, |next| next == Some('.'))
    }

    /// Replace the schema's name wherever it stands as a whole word.
    pub(crate) fn words(&self, text: &str) -> String {
        self.replace(text, |next| !next.is_some_and(|c| is_ident_char(c) || c == '"'))
    }

    fn replace(&self, text: &str, accept_next: impl Fn(Option<char>) -> bool) -> String {
        if !self.forms.iter().any(|form| text.contains(form.as_str())) {
            return text.to_owned();
        }
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut i = 0;
        while i < text.len() {
            let found = self.forms.iter().find(|form| {
                text[i..].starts_with(form.as_str())
                    && !text[..i].chars().next_back().is_some_and(|c| is_ident_char(c) || c == '"' || c == '.')
                    && accept_next(text[i + form.len()..].chars().next())
            });
            match found {
                Some(form) => {
                    let out = out.get_or_insert_with(String::new);
                    out.push_str(&text[copied..i]);
                    out.push_str(SCHEMA_PLACEHOLDER);
                    i += form.len();
                    copied = i;
                }
                None => i += text[i..].chars().next().map_or(1, char::len_utf8),
            }
        }
        match out {
            Some(mut out) => {
                out.push_str(&text[copied..]);
                out
            }
            None => text.to_owned(),
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_name_is_replaced_where_it_qualifies_a_name_and_nowhere_else() {
        let plain = Normaliser::new("dev", "dev");
        assert_eq!(
            plain.qualified("CREATE INDEX i ON dev.orders USING btree (dev, devx.a, xdev.b, \"dev\".c)"),
            "CREATE INDEX i ON <schema>.orders USING btree (dev, devx.a, xdev.b, <schema>.c)"
        );
        assert_eq!(
            plain.qualified("nextval('dev.orders_id_seq'::regclass)"),
            "nextval('<schema>.orders_id_seq'::regclass)"
        );
        let quoted = Normaliser::new("tenant-1", "\"tenant-1\"");
        assert_eq!(
            quoted.qualified("'pending'::\"tenant-1\".order_status, \"x\"\"tenant-1\".y"),
            "'pending'::<schema>.order_status, \"x\"\"tenant-1\".y"
        );
        assert_eq!(plain.words("search_path=dev, public"), "search_path=<schema>, public");
        assert_eq!(plain.words("search_path=devel"), "search_path=devel");
        assert_eq!(plain.qualified("no mention"), "no mention");
    }
}
