//! The history table: its DDL, the SQL that reads and writes it, and the parsing of its rows. Every identifier is
//! quoted with `quote_ident` and every text value with `quote_literal`.

use std::time::Duration;

use migrate_core::{Checksum, Migration, Script};
use postgres::SimpleQueryMessage;

use crate::plan::AppliedMigration;
use crate::schema::{quote_ident, quote_literal, validate_identifier, InvalidName};
use crate::{Error, SchemaName};

/// The column in which each step returns its duration, so a batch of steps can be told apart from the rows a
/// migration's own statements return.
pub(crate) const ELAPSED_COLUMN: &str = "migrate_step_elapsed_ms";

/// The trigger function (and trigger) that keeps a digest of the history table in the table's comment, so a
/// survey of thousands of schemas reads one catalog query instead of opening every history table.
pub(crate) const DIGEST_FUNCTION: &str = "migrate_history_digest";

/// What the digest comment starts with.
pub(crate) const DIGEST_PREFIX: &str = "migrate-digest:";

/// The trigger function's body: after any change to a history table, in the same transaction, write a digest of
/// its rows into its comment. It names no schema or table (they come from `TG_TABLE_*` through `%I`), so the body
/// is the same constant text for every schema. One row's text is `concat_ws(':', version, checksum,
/// down_checksum, dirty)`; see [`history_digest`].
const DIGEST_BODY: &str = "$digest$
DECLARE
    digest text;
BEGIN
    EXECUTE format(
        'SELECT encode(sha256(convert_to(coalesce(string_agg(concat_ws('':'', version, checksum, down_checksum, dirty), '','' ORDER BY version), ''''), ''UTF8'')), ''hex'') FROM %I.%I',
        TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO digest;
    EXECUTE format('COMMENT ON TABLE %I.%I IS %L', TG_TABLE_SCHEMA, TG_TABLE_NAME, 'migrate-digest:' || digest);
    RETURN NULL;
END
$digest$";

/// The digest the trigger computes, from each row's text in version order.
pub(crate) fn history_digest<I: IntoIterator<Item = S>, S: AsRef<str>>(rows: I) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (i, row) in rows.into_iter().enumerate() {
        if i > 0 {
            hasher.update(b",");
        }
        hasher.update(row.as_ref().as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Default name of the history table, created inside each migrated schema.
pub const DEFAULT_HISTORY_TABLE: &str = "schema_migrations";

/// The history table of one schema.
#[derive(Debug, Clone)]
pub(crate) struct HistoryTable {
    pub schema: SchemaName,
    /// `"schema"."table"`.
    qualified: String,
    name: String,
}

const COLUMNS: &str = "version, name, checksum, down_checksum, applied_at, execution_ms, applied_by, dirty";

/// Session settings a migration runs under.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timeouts {
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
}

/// A query string that embeds a script, and where the script starts in it (in characters), so PostgreSQL's error
/// position can be mapped back to the file.
pub(crate) struct Batch {
    pub sql: String,
    pub script_start: usize,
}

impl HistoryTable {
    pub fn new(schema: &SchemaName, table: &str) -> Result<HistoryTable, InvalidName> {
        validate_identifier(table, "history table")?;
        Ok(HistoryTable {
            schema: schema.clone(),
            qualified: format!("{}.{}", schema.quoted(), quote_ident(table)),
            name: table.to_owned(),
        })
    }

    pub fn qualified(&self) -> &str {
        &self.qualified
    }

    /// A 64-bit advisory-lock key for this schema and table. PostgreSQL scopes advisory locks to the current
    /// database, so the lock is keyed on database and schema; hashing here keeps the SQL free of any name.
    pub fn lock_key(&self) -> i64 {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"migrate-runtime lock\0")
            .chain_update(self.schema.as_str())
            .chain_update(b"\0")
            .chain_update(&self.name)
            .finalize();
        i64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
    }

    pub fn select_sql(&self) -> String {
        format!("SELECT {COLUMNS} FROM {} ORDER BY version", self.qualified)
    }

    /// DDL for what is missing: the schema (only when it is, so a role without CREATE on the database can still
    /// migrate a schema it owns) and the table.
    pub fn create_sql(&self, with_schema: bool) -> String {
        let schema = if with_schema { format!("CREATE SCHEMA {};\n", self.schema.quoted()) } else { String::new() };
        let function = format!("{}.{}", self.schema.quoted(), quote_ident(DIGEST_FUNCTION));
        format!(
            "{schema}CREATE TABLE IF NOT EXISTS {table} (\n\
             \x20   version bigint PRIMARY KEY,\n\
             \x20   name text NOT NULL,\n\
             \x20   checksum text NOT NULL,\n\
             \x20   down_checksum text,\n\
             \x20   applied_at timestamptz NOT NULL DEFAULT now(),\n\
             \x20   execution_ms bigint NOT NULL DEFAULT 0,\n\
             \x20   applied_by text NOT NULL DEFAULT current_user,\n\
             \x20   dirty boolean NOT NULL DEFAULT false\n\
             );\n\
             CREATE OR REPLACE FUNCTION {function}() RETURNS trigger\n\
             LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS {DIGEST_BODY};\n\
             CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}\n\
             FOR EACH STATEMENT EXECUTE FUNCTION {function}();\n\
             COMMENT ON TABLE {table} IS {empty}",
            table = self.qualified,
            trigger = quote_ident(DIGEST_FUNCTION),
            empty = quote_literal(&format!("{DIGEST_PREFIX}{}", history_digest(std::iter::empty::<String>()))),
        )
    }

    fn settings_sql(&self, scope: &str, timeouts: Timeouts) -> String {
        let mut sql = format!("SET {scope}search_path TO {};\n", self.schema.quoted());
        for (name, value) in
            [("lock_timeout", timeouts.lock_timeout), ("statement_timeout", timeouts.statement_timeout)]
        {
            if let Some(value) = value {
                sql.push_str(&format!("SET {scope}{name} = {};\n", value.as_millis()));
            }
        }
        sql
    }

    fn insert_sql(&self, migration: &Migration, dirty: bool, execution_ms: &str) -> String {
        let down = migration.down.as_ref().map_or("NULL".to_owned(), |d| quote_literal(&d.checksum.to_string()));
        format!(
            "INSERT INTO {} (version, name, checksum, down_checksum, execution_ms, dirty) VALUES ({}, {}, {}, {}, {}, {})",
            self.qualified,
            migration.version,
            quote_literal(&migration.name),
            quote_literal(&migration.up.checksum.to_string()),
            down,
            execution_ms,
            dirty,
        )
    }

    fn delete_sql(&self, version: i64) -> String {
        format!("DELETE FROM {} WHERE version = {version}", self.qualified)
    }

    /// `BEGIN` and the transaction's settings: `search_path` to the schema and the configured timeouts.
    pub fn open_sql(&self, timeouts: Timeouts) -> String {
        format!("BEGIN;\n{}", self.settings_sql("LOCAL ", timeouts))
    }

    /// One step inside an open transaction: set `search_path` and the timeouts again (an earlier script in the same
    /// transaction may have changed them), note the start time, run the script, record (apply) or delete (revert)
    /// the history row, and return the step's duration in a column named [`ELAPSED_COLUMN`].
    pub fn step_sql(&self, migration: &Migration, apply: bool, script: &Script, timeouts: Timeouts) -> Batch {
        let mut sql = self.settings_sql("LOCAL ", timeouts);
        sql.push_str("SELECT set_config('migrate.step_started', clock_timestamp()::text, true);\n");
        let script_start = sql.chars().count();
        sql.push_str(&script.sql);
        // A newline ends a trailing `--` comment; the semicolon ends the script's last statement.
        sql.push_str("\n;\n");
        let elapsed = "(extract(epoch FROM clock_timestamp() - current_setting('migrate.step_started')::timestamptz) * 1000)::bigint";
        if apply {
            sql.push_str(&self.insert_sql(migration, false, elapsed));
            sql.push_str(&format!(" RETURNING execution_ms AS {ELAPSED_COLUMN};\n"));
        } else {
            sql.push_str(&self.delete_sql(migration.version));
            sql.push_str(&format!(";\nSELECT {elapsed} AS {ELAPSED_COLUMN};\n"));
        }
        Batch { sql, script_start }
    }

    /// The reset prologue, inside an open transaction: drop the schema with everything in it and recreate it with
    /// an empty history table.
    pub fn reset_sql(&self) -> String {
        format!("DROP SCHEMA IF EXISTS {} CASCADE;\n{};\n", self.schema.quoted(), self.create_sql(true))
    }

    /// The SQL a step sends, for dry runs: a transactional step in its own transaction, or a no-transaction
    /// script's statements one after another (each its own round trip, its recorded time shown as zero).
    pub fn render_step(&self, migration: &Migration, apply: bool, script: &Script, timeouts: Timeouts) -> String {
        if !script.no_transaction {
            return format!("BEGIN;\n{}COMMIT;\n", self.step_sql(migration, apply, script, timeouts).sql);
        }
        let mut sql = self.begin_untransacted(migration, apply, timeouts);
        for (_, statement) in crate::sql::split_statements(&script.sql) {
            sql.push_str(statement.trim());
            sql.push_str(";\n");
        }
        sql.push_str(&self.finish_untransacted(migration, apply, Duration::ZERO));
        sql.push_str(";\n");
        sql
    }

    /// Take the lock without waiting, and say whether the schema and the history table exist, in one statement.
    pub fn try_lock_sql(&self) -> String {
        format!(
            "SELECT pg_try_advisory_lock({}), \
             EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = {}), \
             to_regclass({}) IS NOT NULL",
            self.lock_key(),
            quote_literal(self.schema.as_str()),
            quote_literal(&self.qualified)
        )
    }

    /// Record the binary's checksums and name for an applied migration.
    pub fn repair_sql(&self, migration: &Migration) -> String {
        let down = migration.down.as_ref().map_or("NULL".to_owned(), |d| quote_literal(&d.checksum.to_string()));
        format!(
            "UPDATE {} SET checksum = {}, down_checksum = {down}, name = {} WHERE version = {};\n",
            self.qualified,
            quote_literal(&migration.up.checksum.to_string()),
            quote_literal(&migration.name),
            migration.version
        )
    }

    /// Settle a dirty record: keep it clean (`applied`) or remove it.
    pub fn resolve_sql(&self, version: i64, applied: bool) -> String {
        if applied {
            format!("UPDATE {} SET dirty = false WHERE version = {version};\n", self.qualified)
        } else {
            format!("{};\n", self.delete_sql(version))
        }
    }

    /// Before a no-transaction script: mark the version dirty and switch the session to the schema; the first
    /// statement returns the settings to restore afterwards.
    pub fn begin_untransacted(&self, migration: &Migration, apply: bool, timeouts: Timeouts) -> String {
        let mark = if apply {
            self.insert_sql(migration, true, "0")
        } else {
            format!("UPDATE {} SET dirty = true WHERE version = {}", self.qualified, migration.version)
        };
        format!(
            "SELECT current_setting('search_path'), current_setting('lock_timeout'), current_setting('statement_timeout');\n\
             {mark};\n{}",
            self.settings_sql("", timeouts)
        )
    }

    /// After a no-transaction script succeeded: record it clean (apply) or delete its row (revert).
    pub fn finish_untransacted(&self, migration: &Migration, apply: bool, elapsed: Duration) -> String {
        if apply {
            format!(
                "UPDATE {} SET dirty = false, applied_at = now(), execution_ms = {} WHERE version = {}",
                self.qualified,
                elapsed.as_millis(),
                migration.version
            )
        } else {
            self.delete_sql(migration.version)
        }
    }
}

/// SQL that puts back the session settings read by [`HistoryTable::begin_untransacted`].
pub(crate) fn restore_settings_sql(saved: &[String; 3]) -> String {
    ["search_path", "lock_timeout", "statement_timeout"]
        .iter()
        .zip(saved)
        .map(|(name, value)| format!("SELECT set_config('{name}', {}, false);", quote_literal(value)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of each row's columns, in order.
pub(crate) fn rows(messages: &[SimpleQueryMessage]) -> impl Iterator<Item = Vec<Option<&str>>> {
    messages.iter().filter_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i)).collect()),
        _ => None,
    })
}

pub(crate) fn parse_history(
    table: &HistoryTable,
    messages: &[SimpleQueryMessage],
) -> Result<Vec<AppliedMigration>, Error> {
    rows(messages)
        .map(|row| {
            parse_row(&row).map_err(|problem| Error::CorruptHistory {
                schema: table.schema.to_string(),
                table: table.qualified.clone(),
                problem,
            })
        })
        .collect()
}

fn parse_row(row: &[Option<&str>]) -> Result<AppliedMigration, String> {
    let text = |i: usize, column: &str| -> Result<String, String> {
        row.get(i).copied().flatten().map(str::to_owned).ok_or_else(|| format!("{column} is null"))
    };
    let number = |i: usize, column: &str| -> Result<i64, String> {
        let value = text(i, column)?;
        value.parse().map_err(|_| format!("{column} {value:?} is not an integer"))
    };
    let checksum = |value: String| value.parse::<Checksum>().map_err(|e| e.to_string());
    Ok(AppliedMigration {
        version: number(0, "version")?,
        name: text(1, "name")?,
        checksum: checksum(text(2, "checksum")?)?,
        down_checksum: row.get(3).copied().flatten().map(|v| checksum(v.to_owned())).transpose()?,
        applied_at: text(4, "applied_at")?,
        execution_ms: number(5, "execution_ms")?,
        applied_by: text(6, "applied_by")?,
        dirty: text(7, "dirty")? == "t",
    })
}
