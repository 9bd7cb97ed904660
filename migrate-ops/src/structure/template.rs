//! Fast new tenants: a schema created at head from a template schema kept at head (its structure generated as one
//! script, its rows copied, its sequences set), instead of replaying every migration; proven equal to the
//! template, structure and row counts, before the one transaction that creates it commits.
//!
//! The template is a schema of its own, migrated like any tenant (`upgrade --create -s _template`) and never
//! written to by the application, so its rows are exactly the seed rows its migrations inserted. That it builds
//! what the binary's migrations build is proven once, by a replay, and recorded in its comment with the set it
//! was proven for; later runs check its structure against the recorded fingerprint, a catalog read.

use super::catalog::{self, query_failed};
use super::generate::{generate, Qualifier};
use super::object::{Fingerprint, ObjectKind, Structure, SCHEMA_PLACEHOLDER};
use super::reference::reference_structure;
use super::verify::{head_standing, HeadStanding};
use crate::error::StructureError;
use migrate_runtime::catalog::clean_digest_comment;
use migrate_runtime::{quote_ident, quote_literal, Migrator, SchemaName};

/// What the template's comment starts with once it is proven: then the reference fingerprint and the set's digest.
const PROVEN_PREFIX: &str = "migrate template proven: ";

/// Why a tenant could not be created from the template. Nothing is created in any case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// Reading a structure, or replaying the migrations to prove the template, failed.
    #[error(transparent)]
    Structure(#[from] StructureError),

    /// The database runs Citus, where a schema is built by its migrations, one statement at a time.
    #[error(
        "building schemas from template {schema:?} is not supported on Citus: drop --template, and new schemas are \
         replayed"
    )]
    Citus {
        /// The template.
        schema: String,
    },

    /// The template schema does not exist or has no history.
    #[error("template schema {schema:?} is not migrated: create it with `upgrade --create -s {schema}` first")]
    NotMigrated {
        /// The template.
        schema: String,
    },

    /// The template has applied other migrations than the binary has.
    #[error(
        "template schema {schema:?} has applied {applied} but the binary's migrations end at {head}: upgrade it first"
    )]
    NotAtHead {
        /// The template.
        schema: String,
        /// What it applied, in words.
        applied: String,
        /// The binary's newest version.
        head: i64,
    },

    /// The template's structure is not what the binary's migrations build (someone changed it by hand).
    #[error(
        "template schema {schema:?} differs from what the binary's migrations build ({differences} difference(s); \
         `verify -s {schema}` lists them): reset it"
    )]
    TemplateDiffers {
        /// The template.
        schema: String,
        /// How many differences.
        differences: usize,
    },

    /// The template holds what the generator cannot write.
    #[error("template schema {schema:?} holds what cannot be generated ({what}): create tenants by replay")]
    Unexpressed {
        /// The template.
        schema: String,
        /// What, in words.
        what: String,
    },

    /// The new schema exists already.
    #[error("schema {schema:?} exists already: it is upgraded, not created from the template")]
    Exists {
        /// The schema.
        schema: String,
    },

    /// What was built did not equal the template: rolled back.
    #[error("schema {schema:?} built from template {template:?} did not equal it ({what}); rolled back, nothing was created")]
    NotEqual {
        /// The new schema.
        schema: String,
        /// The template.
        template: String,
        /// What differed.
        what: String,
    },

    /// A statement failed while the schema was being created: rolled back.
    #[error(
        "schema {schema:?}: could not {action} from template {template:?}: {message}; rolled back, nothing was created"
    )]
    Failed {
        /// The new schema.
        schema: String,
        /// The template.
        template: String,
        /// What we were doing.
        action: &'static str,
        /// PostgreSQL's message.
        message: String,
    },
}

/// A template ready to create tenants from: its structure (proven to be what the migrations build), the script
/// that builds it in two parts around the rows, and what to copy.
#[derive(Debug, Clone)]
pub struct Template {
    schema: SchemaName,
    fingerprint: Fingerprint,
    before_rows: String,
    after_rows: String,
    copies: Vec<String>,
    counted: Vec<String>,
}

/// A tenant created from a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The new schema.
    pub schema: SchemaName,
    /// The version it was created at (the set's head).
    pub version: i64,
    /// Tables whose rows were copied (all of the template's, partitioned parents aside).
    pub tables: usize,
    /// How it was made.
    pub from: Source,
}

/// How a tenant was made from the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built now: the template's script, its rows copied.
    Built,
    /// A spare built ahead from the template, renamed.
    Spare(SchemaName),
}

impl Template {
    /// Check that `schema` is at the migrator's head and builds what the migrations build (a replay the first time
    /// for a set, recorded in the template's comment; a catalog read after that), and prepare its script.
    pub fn prepare(
        client: &mut postgres::Client,
        migrator: &Migrator<'_>,
        schema: &SchemaName,
    ) -> Result<Template, TemplateError> {
        let failed =
            |action| move |source| TemplateError::from(query_failed(std::slice::from_ref(schema), action, source));
        if crate::survey::has_citus(client).map_err(failed("look for the citus extension"))? {
            return Err(TemplateError::Citus { schema: schema.to_string() });
        }
        let mut transaction = client.transaction().map_err(failed("begin"))?;
        let head = migrator.set().head().unwrap_or(0);
        match head_standing(&mut transaction, migrator, schema)? {
            HeadStanding::AtHead => {}
            HeadStanding::NoHistory => return Err(TemplateError::NotMigrated { schema: schema.to_string() }),
            HeadStanding::Elsewhere(applied) => {
                return Err(TemplateError::NotAtHead { schema: schema.to_string(), applied, head })
            }
        }
        let mut structures =
            catalog::read(&mut transaction, std::slice::from_ref(schema), migrator.history_table_name())
                .map_err(failed("read the template's structure"))?;
        let structure =
            structures.remove(schema).ok_or_else(|| TemplateError::NotMigrated { schema: schema.to_string() })?;
        let recorded: Option<String> = transaction
            .query_one("SELECT obj_description(to_regnamespace($1), 'pg_namespace')", &[&schema.as_str()])
            .map_err(failed("read the template's comment"))?
            .get(0);
        transaction.commit().map_err(failed("end the read"))?;

        let proof =
            format!("{PROVEN_PREFIX}{} {}", structure.fingerprint(), clean_digest_comment(migrator.set().iter()));
        if recorded.as_deref() != Some(proof.as_str()) {
            let reference = reference_structure(client, migrator, head)?;
            if reference.fingerprint() != structure.fingerprint() {
                let differences = super::diff::diff(&reference, &structure).len();
                return Err(TemplateError::TemplateDiffers { schema: schema.to_string(), differences });
            }
            let sql = format!("COMMENT ON SCHEMA {} IS {}", schema.quoted(), quote_literal(&proof));
            client.batch_execute(&sql).map_err(failed("record the template's proof"))?;
        }
        Template::of(schema, &structure)
    }

    fn of(schema: &SchemaName, structure: &Structure) -> Result<Template, TemplateError> {
        let changes = generate(&Structure::new([]), structure);
        if let Some(unexpressed) = changes.unexpressed.first() {
            return Err(TemplateError::Unexpressed { schema: schema.to_string(), what: unexpressed.to_string() });
        }
        let (before_rows, after_rows) = changes.scripts_around_rows(Qualifier::SearchPath);
        let mut copies = Vec::new();
        let mut counted = Vec::new();
        for (kind, name, object) in structure.objects() {
            match kind {
                ObjectKind::Table if object.definition.get("kind").is_none() => {
                    let columns = super::generate::columns_of(structure, &name.name);
                    let copied: Vec<_> = columns.iter().filter(|(_, column)| !column.has("generated")).collect();
                    let targets: Vec<String> = copied.iter().map(|(column, _)| quote_ident(column)).collect();
                    // A value of one of the schema's own types (an enum, a domain) is of the template's type:
                    // through text to the new schema's.
                    let values: Vec<String> = copied
                        .iter()
                        .map(|(column, definition)| match definition.get("type") {
                            Some(own) if own.contains(SCHEMA_PLACEHOLDER) => {
                                format!("{}::text::{}", quote_ident(column), Qualifier::SearchPath.apply(own))
                            }
                            _ => quote_ident(column),
                        })
                        .collect();
                    let always = columns.iter().any(|(_, column)| column.get("identity") == Some("always"));
                    let overriding = if always { " OVERRIDING SYSTEM VALUE" } else { "" };
                    copies.push(format!(
                        "INSERT INTO {} ({}){overriding} SELECT {} FROM ONLY {}.{};",
                        quote_ident(&name.name),
                        targets.join(", "),
                        values.join(", "),
                        schema.quoted(),
                        quote_ident(&name.name)
                    ));
                    counted.push(name.name.clone());
                }
                ObjectKind::Sequence => copies.push(format!(
                    "SELECT pg_catalog.setval({}, last_value, is_called) FROM {}.{};",
                    quote_literal(&quote_ident(&name.name)),
                    schema.quoted(),
                    quote_ident(&name.name)
                )),
                _ => {}
            }
        }
        Ok(Template {
            schema: schema.clone(),
            fingerprint: structure.fingerprint(),
            before_rows,
            after_rows,
            copies,
            counted,
        })
    }

    /// The template schema.
    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    /// Create `schema` at head from the template, in one transaction that commits only when the new schema's
    /// structure has the template's fingerprint and each table as many rows as the template's.
    pub fn create(
        &self,
        client: &mut postgres::Client,
        migrator: &Migrator<'_>,
        schema: &SchemaName,
    ) -> Result<Created, TemplateError> {
        let (open, close) = migrator.created_at_head_sql(schema).map_err(|e| TemplateError::Failed {
            schema: schema.to_string(),
            template: self.schema.to_string(),
            action: "name the history table",
            message: e.to_string(),
        })?;
        let result = self.build(client, migrator, schema, &open, &close);
        if result.is_err() {
            let _ = client.batch_execute("ROLLBACK");
        }
        result
    }

    fn build(
        &self,
        client: &mut postgres::Client,
        migrator: &Migrator<'_>,
        schema: &SchemaName,
        open: &str,
        close: &str,
    ) -> Result<Created, TemplateError> {
        let failed = |action| self.failed(schema, action);
        client.batch_execute(open).map_err(|e| self.creating_failed(schema, "create the schema", e))?;
        client.batch_execute(&self.before_rows).map_err(failed("create the tables"))?;
        client.batch_execute(&self.copies.join("\n")).map_err(failed("copy the rows"))?;
        client.batch_execute(&self.after_rows).map_err(failed("create the keys, indexes, views and triggers"))?;
        if let Some(what) = self.difference(client, migrator, schema)? {
            return Err(TemplateError::NotEqual {
                schema: schema.to_string(),
                template: self.schema.to_string(),
                what,
            });
        }
        client.batch_execute(close).map_err(failed("record the history"))?;
        Ok(self.created(migrator, schema, Source::Built))
    }

    fn created(&self, migrator: &Migrator<'_>, schema: &SchemaName, from: Source) -> Created {
        let version = migrator.set().head().unwrap_or(0);
        Created { schema: schema.clone(), version, tables: self.counted.len(), from }
    }

    /// The name of the template's `n`th spare: `{template}__spare_{n}`, or `None` when that is too long a name.
    fn spare(&self, n: usize) -> Option<SchemaName> {
        SchemaName::new(&format!("{}__spare_{n:04}", self.schema.as_str())).ok()
    }

    /// The template's spares that exist, in order.
    fn spares(&self, client: &mut postgres::Client) -> Result<Vec<SchemaName>, TemplateError> {
        let pattern = format!(
            "{}\\_\\_spare\\_%",
            self.schema.as_str().replace('\\', "\\\\").replace('_', "\\_").replace('%', "\\%")
        );
        let rows = client
            .query(
                "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname LIKE $1 ORDER BY nspname",
                &[&pattern],
            )
            .map_err(|e| TemplateError::from(query_failed(std::slice::from_ref(&self.schema), "list the spares", e)))?;
        Ok(rows.iter().filter_map(|row| SchemaName::new(row.get::<_, &str>(0)).ok()).collect())
    }

    /// Build spares from the template until `count` exist: tenants made ahead of demand, so that a sign-up is a
    /// rename ([`claim`](Self::claim)). They are schemas at head like any other: upgrade them with the fleet.
    /// Returns how many were built.
    pub fn stock_spares(
        &self,
        client: &mut postgres::Client,
        migrator: &Migrator<'_>,
        count: usize,
    ) -> Result<usize, TemplateError> {
        let existing = self.spares(client)?;
        let mut built = 0;
        let mut n = 0;
        while existing.len() + built < count {
            n += 1;
            let Some(spare) = self.spare(n) else { break };
            if existing.contains(&spare) {
                continue;
            }
            self.create(client, migrator, &spare)?;
            built += 1;
        }
        Ok(built)
    }

    /// Make `schema` from a spare if one can be claimed, else build it ([`create`](Self::create)). A spare is
    /// renamed in a transaction that takes its migration lock, and commits only when the renamed schema is at head
    /// with the template's fingerprint and row counts; a spare that fails that (it fell behind, or something in it
    /// named its old schema) is left as it was and the next is tried.
    pub fn claim(
        &self,
        client: &mut postgres::Client,
        migrator: &Migrator<'_>,
        schema: &SchemaName,
    ) -> Result<Created, TemplateError> {
        for spare in self.spares(client)? {
            if let Some(created) = self.claim_spare(client, migrator, &spare, schema)? {
                return Ok(created);
            }
        }
        self.create(client, migrator, schema)
    }

    /// Rename `spare` to `schema` if it proves equal to the template; `None` when it does not (rolled back).
    fn claim_spare(
        &self,
        client: &mut postgres::Client,
        migrator: &Migrator<'_>,
        spare: &SchemaName,
        schema: &SchemaName,
    ) -> Result<Option<Created>, TemplateError> {
        let failed = |action| self.failed(schema, action);
        let key =
            migrate_runtime::migration_lock_key(spare, migrator.history_table_name()).map_err(StructureError::from)?;
        let mut transaction = client.transaction().map_err(failed("begin"))?;
        transaction.batch_execute(&format!("SELECT pg_advisory_xact_lock({key})")).map_err(failed("lock a spare"))?;
        // Another process may have claimed it while this one waited for the lock.
        let still_there: bool = transaction
            .query_one("SELECT to_regnamespace($1) IS NOT NULL", &[&spare.as_str()])
            .map_err(failed("find a spare"))?
            .get(0);
        if !still_there {
            return Ok(None);
        }
        let rename = format!("ALTER SCHEMA {} RENAME TO {}", spare.quoted(), schema.quoted());
        transaction.batch_execute(&rename).map_err(|e| self.creating_failed(schema, "rename a spare", e))?;
        if !matches!(head_standing(&mut transaction, migrator, schema)?, HeadStanding::AtHead) {
            return Ok(None);
        }
        if self.difference(&mut transaction, migrator, schema)?.is_some() {
            return Ok(None);
        }
        transaction.commit().map_err(failed("commit the claim"))?;
        Ok(Some(self.created(migrator, schema, Source::Spare(spare.clone()))))
    }

    /// The first table whose rows in `schema` are not as many as in the template, in one query.
    fn row_count_mismatch(
        &self,
        client: &mut impl postgres::GenericClient,
        schema: &SchemaName,
    ) -> Result<Option<String>, postgres::Error> {
        if self.counted.is_empty() {
            return Ok(None);
        }
        let rows: Vec<String> = self
            .counted
            .iter()
            .map(|table| {
                format!(
                    "({}, (SELECT count(*) FROM ONLY {}.{t}), (SELECT count(*) FROM ONLY {}.{t}))",
                    quote_literal(table),
                    schema.quoted(),
                    self.schema.quoted(),
                    t = quote_ident(table)
                )
            })
            .collect();
        let sql = format!(
            "SELECT name FROM (VALUES {}) AS c(name, built, template) WHERE built <> template LIMIT 1",
            rows.join(", ")
        );
        Ok(client.query_typed(&sql, &[])?.first().map(|row| row.get(0)))
    }

    /// The proof that `schema` is the template's: what differs (its structure, or a table's rows), or `None`.
    fn difference(
        &self,
        client: &mut impl postgres::GenericClient,
        migrator: &Migrator<'_>,
        schema: &SchemaName,
    ) -> Result<Option<String>, TemplateError> {
        let mut built = catalog::read(client, std::slice::from_ref(schema), migrator.history_table_name())
            .map_err(self.failed(schema, "read the new structure"))?;
        if built.remove(schema).map(|s| s.fingerprint()) != Some(self.fingerprint) {
            return Ok(Some("its structure".to_owned()));
        }
        let table = self.row_count_mismatch(client, schema).map_err(self.failed(schema, "count the rows"))?;
        Ok(table.map(|table| format!("the rows of table {table}")))
    }

    /// What a failed statement means while `schema` is made from the template.
    fn failed<'a>(
        &'a self,
        schema: &'a SchemaName,
        action: &'static str,
    ) -> impl FnOnce(postgres::Error) -> TemplateError + 'a {
        move |error| {
            let message = migrate_runtime::QueryError::from(error).describe().1;
            TemplateError::Failed { schema: schema.to_string(), template: self.schema.to_string(), action, message }
        }
    }

    /// The statement that makes `schema` (creating or renaming one to it) failed: it exists already, or `failed`.
    fn creating_failed(&self, schema: &SchemaName, action: &'static str, error: postgres::Error) -> TemplateError {
        match error.code() {
            Some(&postgres::error::SqlState::DUPLICATE_SCHEMA) => TemplateError::Exists { schema: schema.to_string() },
            _ => self.failed(schema, action)(error),
        }
    }
}
