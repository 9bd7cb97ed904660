//! The history table: its DDL, the SQL that reads and writes it, and the parsing of its rows. Every identifier is
//! quoted with `quote_ident` and every text value with `quote_literal`.

use std::borrow::Cow;
use std::time::Duration;

use migrate_core::{Checksum, Direction, Migration};

use crate::error::{Error, ErrorKind, LockHolder};
use crate::model::{AppliedMigration, Execution, RowState};
use crate::plan::{HistoryFix, Prologue, Step};
use crate::schema::{quote_ident, quote_literal, validate_identifier, InvalidName, SchemaName};
use crate::session::{Answer, Row, SqlState};
use crate::sql::{ends_with_semicolon, in_creating_transaction, Rewritten};

/// The column in which each step returns its duration, so a batch of steps can be told apart from the rows a
/// migration's own statements return.
pub(crate) const ELAPSED_COLUMN: &str = "migrate_step_elapsed_ms";

/// The trigger function (and trigger) that keeps a digest of the history table in the table's comment, so a
/// survey of thousands of schemas reads one catalog query instead of opening every history table.
pub const DIGEST_FUNCTION: &str = "migrate_history_digest";

/// The transaction-local setting by which the engine defers the digest: while it is `deferred` the trigger does
/// nothing, and the engine writes the digest once before each `COMMIT` ([`HistoryTable::commit_sql`]). Any other
/// writer (a person with `psql`, an older binary) leaves it unset and the trigger digests after every statement.
const DIGEST_SETTING: &str = "migrate.digest";

/// What the digest comment starts with.
pub const DIGEST_PREFIX: &str = "migrate-digest:";

/// The columns of one row's digest text, joined with `:` by `concat_ws` (which skips a NULL `down_checksum`). The
/// trigger's SQL is generated from this list and [`digest_row`] writes the same text in Rust: one definition.
const DIGEST_COLUMNS: [&str; 4] = ["version", "checksum", "down_checksum", "dirty"];

/// One row's digest text, exactly as the trigger's `concat_ws(':', ...)` over [`DIGEST_COLUMNS`] writes it.
pub(crate) fn digest_row(version: i64, checksum: Checksum, down_checksum: Option<Checksum>, dirty: bool) -> String {
    let dirty = if dirty { "t" } else { "f" };
    match down_checksum {
        Some(down) => format!("{version}:{checksum}:{down}:{dirty}"),
        None => format!("{version}:{checksum}:{dirty}"),
    }
}

/// The digest comment of a history table that holds exactly `migrations`, applied and clean: what the trigger
/// writes for those rows, computed here.
pub fn clean_digest_comment<'m>(migrations: impl IntoIterator<Item = &'m Migration>) -> String {
    let mut migrations: Vec<&Migration> = migrations.into_iter().collect();
    // The trigger digests rows `ORDER BY version`: numerically, whatever order the set runs in.
    migrations.sort_by_key(|m| m.version);
    let rows =
        migrations.iter().map(|m| digest_row(m.version, m.up.checksum, m.down.as_ref().map(|d| d.checksum), false));
    format!("{DIGEST_PREFIX}{}", history_digest(rows))
}

/// A query whose one column is the digest of `from`'s rows, as hex: what the trigger writes after the prefix, and
/// what a survey computes from the rows of a table without the trigger. `from` is SQL (a quoted name, or `%I.%I`
/// inside `format`).
fn digest_select(from: &str) -> String {
    let row = format!("concat_ws(':', {})", DIGEST_COLUMNS.join(", "));
    format!(
        "SELECT encode(sha256(convert_to(coalesce(string_agg({row}, ',' ORDER BY version), ''), 'UTF8')), 'hex') \
         FROM {from}"
    )
}

/// A query of one row, columns `schema` (text) and `digest` (the digest comment the trigger would write,
/// `migrate-digest:...`), computed from the rows of `schema`'s history table `table`: how a survey reads a table
/// that has no digest trigger (the history table of a Citus distributed schema, which Citus keeps from having one).
pub fn digest_of_rows_sql(schema: &SchemaName, table: &str) -> String {
    let qualified = format!("{}.{}", schema.quoted(), quote_ident(table));
    format!(
        "SELECT {}::text AS schema, {} || ({}) AS digest",
        quote_literal(schema.as_str()),
        quote_literal(DIGEST_PREFIX),
        digest_select(&qualified)
    )
}

/// A query of one row, column `digest` (hex: what the trigger writes after the prefix), over the rows of the
/// table that `%s` stands for: for `format(query, table)` where the table's name is data, not SQL text (a Citus
/// shard, read on its worker by a survey).
pub fn digest_query_for_format() -> String {
    format!("SELECT ({}) AS digest", digest_select("%s"))
}

/// The trigger function's body: after any change to a history table, in the same transaction, write a digest of
/// its rows into its comment, unless the engine deferred that to the end of the transaction ([`DIGEST_SETTING`]).
/// It names no schema or table (they come from `TG_TABLE_*` through `%I`), so the body is the same text for every
/// schema. Tables made since the trigger has a `WHEN` clause never call it while the digest is deferred; the check
/// in the body serves the triggers of tables made before that, which call the same body.
fn digest_body() -> String {
    format!(
        "$digest$
DECLARE
    digest text;
BEGIN
    IF current_setting('{DIGEST_SETTING}', true) = 'deferred' THEN
        RETURN NULL;
    END IF;
    EXECUTE format(
        {select},
        TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO digest;
    EXECUTE format('COMMENT ON TABLE %I.%I IS %L', TG_TABLE_SCHEMA, TG_TABLE_NAME, '{DIGEST_PREFIX}' || digest);
    RETURN NULL;
END
$digest$",
        select = quote_literal(&digest_select("%I.%I"))
    )
}

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

/// The key of a schema's migration lock (a transaction-level advisory lock), for tools that watch `pg_locks` or
/// must hold the lock themselves.
pub fn migration_lock_key(schema: &SchemaName, history_table: &str) -> Result<i64, InvalidName> {
    Ok(HistoryTable::new(schema, history_table)?.lock_key())
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
    /// The service that owns the table, recorded in the `version` column's comment ([`SERVICE_PREFIX`]).
    service: String,
    /// Shared schemas after the schema in every migration's `search_path`.
    extra_search_path: Vec<SchemaName>,
}

/// The columns that record a no-transaction migration's progress, added to history tables made before them.
const PROGRESS_COLUMNS: &str =
    "runner text, claim_expires_at timestamptz, statements_done integer NOT NULL DEFAULT 0, \
     claim_direction text, failure text, runner_backend integer, runner_backend_start timestamptz";

/// The newest of [`PROGRESS_COLUMNS`]: a table that has it has them all.
const NEWEST_PROGRESS_COLUMN: &str = "runner_backend_start";

/// The backend a runner's statement was recorded from, with its start time (a pid alone may be reused): set with
/// every renewal of the lease.
const RUNNER_BACKEND: &str = "runner_backend = pg_backend_pid(), runner_backend_start = \
     (SELECT backend_start FROM pg_catalog.pg_stat_activity WHERE pid = pg_backend_pid())";

/// `applied_at` as RFC 3339 in UTC whatever the session's `DateStyle` and `TimeZone`, read beside every column.
const APPLIED_AT_UTC: &str =
    "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS applied_at_utc";

/// How long a claim on a no-transaction migration lasts without news from its runner. A runner renews it after
/// every statement, and a runner whose backend is at work (seen by its application name) is alive however long
/// one statement takes.
pub(crate) const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// The SQLSTATE of the guard that opens every transaction of a run after the first: another process took the
/// migration lock between two of our transactions.
pub(crate) const LOST_LOCK_SQLSTATE: SqlState = SqlState::LOST_LOCK;

/// The lost-lock guard's message (how a driver that does not pass on SQLSTATE codes recognises it).
pub(crate) const LOST_LOCK_MESSAGE: &str = "another process took the migration lock";

/// What the lost-lock guard's detail starts with; the number of steps of its query string committed before it
/// follows.
pub(crate) const LOST_LOCK_DETAIL: &str = "steps committed before it: ";

/// What the comment on a history table's `version` column starts with; the owning service's name follows, so
/// `--all-schemas` tells this service's schemas from another's in the same catalog query that lists them.
pub const SERVICE_PREFIX: &str = "migrate-service:";

/// The running binary's file name (`app-example`), else `migrate`: the default service name, and how this process
/// names its connections and its runs of no-transaction migrations.
pub fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "migrate".to_owned())
}

/// Session settings a migration runs under.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timeouts {
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
}

impl Timeouts {
    /// The settings around a statement PostgreSQL runs only outside a transaction, sent on its own: `(before,
    /// after)`. A `CONCURRENTLY` statement (index builds and drops, `REINDEX`, `DETACH PARTITION`) runs without
    /// `lock_timeout`: it never blocks the tenant's reads and writes, and PostgreSQL waits for older transactions
    /// as it waits for locks (for an index build, every transaction of the database that is older than it), so a
    /// timeout would fail it, dirty, whenever any transaction anywhere in the database ran longer than the
    /// timeout. `statement_timeout` still bounds it. Both `None` for any other statement.
    pub fn around_outside_transaction(self, statement: &str) -> (Option<String>, Option<String>) {
        if matches!(crate::sql::without_concurrently(statement), Cow::Borrowed(_)) {
            return (None, None);
        }
        let after = self.lock_timeout.map(|timeout| format!("SET lock_timeout = {}", timeout.as_millis()));
        (Some("SET lock_timeout = 0".to_owned()), after)
    }
}

/// A query string that embeds a script, and where the script starts in it (in characters), so PostgreSQL's error
/// position can be mapped back to the file.
pub(crate) struct StepSql {
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
            service: "migrate".to_owned(),
            extra_search_path: Vec::new(),
        })
    }

    /// `"schema"."table"`.
    pub fn qualified(&self) -> &str {
        &self.qualified
    }

    /// The service recorded as the table's owner when it is created.
    pub fn with_service(mut self, service: &str) -> HistoryTable {
        service.clone_into(&mut self.service);
        self
    }

    /// Put `extra` after the schema in every migration's `search_path`: extension types and functions in a shared
    /// schema resolve, objects are still created in the schema (the first in the path).
    pub fn with_extra_search_path(mut self, extra: &[SchemaName]) -> HistoryTable {
        self.extra_search_path = extra.to_vec();
        self
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

    /// The rows, read without the lock: every column there is, so a table made by an older version reads too.
    pub fn select_sql(&self) -> String {
        format!("SELECT *, {APPLIED_AT_UTC} FROM {} ORDER BY version", self.qualified)
    }

    /// The rows, read under the lock, with whether each no-transaction runner is still there. `backend` is this
    /// session's backend ([`LockAttempt::backend`], read in the same transaction), left out of the runners seen:
    /// as a literal, because Citus runs a query that names a distributed table on its worker, where
    /// `pg_backend_pid()` is another backend's.
    pub fn locked_select_sql(&self, backend: Option<i32>) -> String {
        let ours = backend.map_or_else(|| "pg_backend_pid()".to_owned(), |pid| pid.to_string());
        format!(
            // Alive: a backend has the runner's name; or the lease holds and the backend that last renewed it is
            // still there. Behind a transaction pooler that backend is a pooled server connection, which outlives
            // its client (it may even be serving this very read), so the lease is what counts between two
            // statements; over a direct connection it is the runner's own, gone with it, so a runner that died is
            // seen as dead at once.
            "SELECT *, {APPLIED_AT_UTC}, runner IS NOT NULL AND (EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a \
             WHERE a.application_name = runner AND a.pid <> {ours}) OR (claim_expires_at > now() AND \
             (runner_backend IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = runner_backend \
             AND a.backend_start = runner_backend_start)))) AS runner_alive FROM {} ORDER BY version",
            self.qualified
        )
    }

    /// Add the progress columns to a history table made before them (under the lock).
    pub fn add_progress_columns_sql(&self) -> String {
        let columns: Vec<String> =
            PROGRESS_COLUMNS.split(", ").map(|column| format!("ADD COLUMN IF NOT EXISTS {column}")).collect();
        format!("ALTER TABLE {} {};\n", self.qualified, columns.join(", "))
    }

    /// DDL for what is missing: the schema (only when it is, so a role without CREATE on the database can still
    /// migrate a schema it owns) and the table. Its first digest is written by [`commit_sql`](Self::commit_sql),
    /// which ends every transaction that creates it.
    ///
    /// The digest trigger and its function are made only for a table Citus does not distribute: Citus refuses
    /// triggers on distributed tables, and a schema created on a Citus coordinator with schema-based sharding on is
    /// distributed, its tables on one worker. Such a table has no digest comment; a survey reads its rows instead
    /// ([`digest_of_rows_sql`]).
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
             \x20   dirty boolean NOT NULL DEFAULT false,\n\
             \x20   {progress}\n\
             );\n\
             DO $history$\n\
             DECLARE\n\
             \x20   distributed boolean := false;\n\
             BEGIN\n\
             \x20   IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN\n\
             \x20       EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1::regclass)'\n\
             \x20       INTO distributed USING {table_literal};\n\
             \x20   END IF;\n\
             \x20   IF NOT distributed THEN\n\
             \x20       CREATE OR REPLACE FUNCTION {function}() RETURNS trigger\n\
             \x20       LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS {body};\n\
             \x20       CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}\n\
             \x20       FOR EACH STATEMENT WHEN (pg_catalog.current_setting('{DIGEST_SETTING}', true) IS DISTINCT FROM 'deferred')\n\
             \x20       EXECUTE FUNCTION {function}();\n\
             \x20   END IF;\n\
             END\n\
             $history$;\n\
             COMMENT ON COLUMN {table}.version IS {service}",
            table = self.qualified,
            table_literal = quote_literal(&self.qualified),
            body = digest_body(),
            progress = PROGRESS_COLUMNS,
            trigger = quote_ident(DIGEST_FUNCTION),
            service = quote_literal(&format!("{SERVICE_PREFIX}{}", self.service)),
        )
    }

    fn settings_sql(&self, scope: &str, timeouts: Timeouts) -> String {
        let mut sql =
            format!("SET {scope}search_path TO {};\n", self.schema.search_path_list(&self.extra_search_path, ", "));
        for (name, value) in
            [("lock_timeout", timeouts.lock_timeout), ("statement_timeout", timeouts.statement_timeout)]
        {
            if let Some(value) = value {
                sql.push_str(&format!("SET {scope}{name} = {};\n", value.as_millis()));
            }
        }
        sql
    }

    /// `applied_by` is SQL: `current_user`, or an expression built from it.
    fn insert_sql(&self, migration: &Migration, dirty: bool, execution_ms: &str, applied_by: &str) -> String {
        let down = migration.down.as_ref().map_or("NULL".to_owned(), |d| quote_literal(&d.checksum.to_string()));
        format!(
            "INSERT INTO {} (version, name, checksum, down_checksum, execution_ms, dirty, applied_by) VALUES ({}, {}, {}, {}, {}, {}, {})",
            self.qualified,
            migration.version,
            quote_literal(&migration.name),
            quote_literal(&migration.up.checksum.to_string()),
            down,
            execution_ms,
            dirty,
            applied_by,
        )
    }

    fn delete_sql(&self, version: i64) -> String {
        format!("DELETE FROM {} WHERE version = {version}", self.qualified)
    }

    /// `BEGIN` and the transaction's settings: `search_path` to the schema, the configured timeouts, and the
    /// digest deferred to [`commit_sql`](Self::commit_sql), which must end the transaction if it commits.
    pub fn open_sql(&self, timeouts: Timeouts) -> String {
        format!("BEGIN;\n{}SET LOCAL {DIGEST_SETTING} = 'deferred';\n", self.settings_sql("LOCAL ", timeouts))
    }

    /// End a transaction opened by [`open_sql`](Self::open_sql): write the digest once for all of the
    /// transaction's changes to the table (a statement trigger fires even for a statement that changes no row),
    /// then commit.
    pub fn commit_sql(&self) -> String {
        format!(
            "SET LOCAL {DIGEST_SETTING} = 'now';\nUPDATE {} SET version = version WHERE false;\nCOMMIT;\n",
            self.qualified
        )
    }

    /// End the transaction that creates the schema (opened by [`open_sql`](Self::open_sql)) whose history table
    /// then holds exactly `applied`, clean: the digest is known without reading the rows (nobody else can see the
    /// table before this commit), so it is written as a literal and the trigger function is never called.
    /// A table without the trigger (distributed by Citus, see [`create_sql`](Self::create_sql)) gets no comment:
    /// nothing would keep it true.
    pub fn commit_creating_sql<'m>(&self, applied: impl IntoIterator<Item = &'m Migration>) -> String {
        format!(
            "DO $digest$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = {}::regclass \
             AND tgname = {}) THEN COMMENT ON TABLE {} IS {}; END IF; END $digest$;\nCOMMIT;\n",
            quote_literal(&self.qualified),
            quote_literal(DIGEST_FUNCTION),
            self.qualified,
            quote_literal(&clean_digest_comment(applied))
        )
    }

    /// The transaction that creates the schema already at the head of `set`, around statements the caller runs in
    /// it (a template's structure and rows): `open` begins it, takes the schema's migration lock (waiting for a
    /// run in progress), creates the schema and the history table, and sets `search_path` to it; `close` records
    /// every migration of the set as applied (clean, in no time) and commits with the digest written as a literal.
    /// A schema that exists already fails `open` (`CREATE SCHEMA`), so nothing is created twice.
    pub fn created_at_head_sql<'m>(&self, set: impl IntoIterator<Item = &'m Migration> + Clone) -> (String, String) {
        let open = format!(
            "{}SELECT pg_advisory_xact_lock({});
{};
",
            self.open_sql(Timeouts::default()),
            self.lock_key(),
            self.prologue_sql(Prologue::Create { schema: true })
        );
        let mut close: String = set
            .clone()
            .into_iter()
            .map(|migration| format!("{};\n", self.insert_sql(migration, false, "0", "current_user")))
            .collect();
        close.push_str(&self.commit_creating_sql(set));
        (open, close)
    }

    /// One statement of a no-transaction script in a transaction of its own, with the record that it is done.
    pub fn statement_in_transaction_sql(
        &self,
        timeouts: Timeouts,
        statement: &str,
        step: &Step<'_>,
        runner: &str,
        done: usize,
    ) -> String {
        format!(
            "{}{statement};\n{};\n{}",
            self.open_sql(timeouts),
            self.progress_sql(step, runner, done),
            self.commit_sql()
        )
    }

    /// One step inside an open transaction: set `search_path` and the timeouts again (an earlier script in the same
    /// transaction may have changed them), note the start time, run the script, record (apply) or delete (revert)
    /// the history row, and return the step's duration in a column named [`ELAPSED_COLUMN`].
    pub fn step_sql(&self, step: &Step<'_>, timeouts: Timeouts) -> StepSql {
        let migration = step.migration;
        let mut sql = self.settings_sql("LOCAL ", timeouts);
        sql.push_str("SELECT set_config('migrate.step_started', clock_timestamp()::text, true);\n");
        let script_start = sql.chars().count();
        let script = self.script_text(step);
        sql.push_str(&script);
        // A newline ends a trailing `--` comment; a semicolon ends the script's last statement when the script did
        // not (the dry run shows no lone `;` line for the scripts that end their own).
        sql.push_str(if ends_with_semicolon(&script) { "\n" } else { "\n;\n" });
        let elapsed = "(extract(epoch FROM clock_timestamp() - current_setting('migrate.step_started')::timestamptz) * 1000)::bigint";
        match step.direction {
            Direction::Up => {
                sql.push_str(&self.insert_sql(migration, false, elapsed, "current_user"));
                sql.push_str(&format!(" RETURNING execution_ms AS {ELAPSED_COLUMN};\n"));
            }
            Direction::Down => {
                sql.push_str(&self.delete_sql(migration.version));
                sql.push_str(&format!(";\nSELECT {elapsed} AS {ELAPSED_COLUMN};\n"));
            }
        }
        StepSql { sql, script_start }
    }

    /// The text of a step's script as it runs in a transaction: as written, or as it runs in the transaction that
    /// creates the schema ([`Execution::InCreatingTransaction`]), whose lines are the file's lines.
    pub fn script_text<'s>(&self, step: &Step<'s>) -> Cow<'s, str> {
        match step.execution {
            Execution::InCreatingTransaction => Cow::Owned(self.rewritten(step).text),
            Execution::InTransaction | Execution::Untransacted => Cow::Borrowed(&step.script.sql),
        }
    }

    /// Where one-based position `position` of the script's text as it ran ([`script_text`](Self::script_text))
    /// is in the file; `None` past its end.
    pub fn file_position(&self, step: &Step<'_>, position: usize) -> Option<usize> {
        match step.execution {
            Execution::InCreatingTransaction => {
                let rewritten = self.rewritten(step);
                (position <= rewritten.text.chars().count()).then(|| rewritten.file_position(position))
            }
            Execution::InTransaction | Execution::Untransacted => {
                (position <= step.script.sql.chars().count()).then_some(position)
            }
        }
    }

    /// A step's script as it runs in the transaction that creates the schema.
    fn rewritten(&self, step: &Step<'_>) -> Rewritten {
        in_creating_transaction(&step.script.sql, &self.schema.quoted())
    }

    /// The prologue's SQL, inside an open transaction: create what is missing, or drop the schema with everything
    /// in it and recreate it with an empty history table.
    pub fn prologue_sql(&self, prologue: Prologue) -> String {
        match prologue {
            // A schema this transaction creates is locked by no one else: no lock_timeout for its migrations.
            Prologue::Create { schema: true } => format!("SET LOCAL lock_timeout = 0;\n{};\n", self.create_sql(true)),
            Prologue::Create { schema: false } => format!("{};\n", self.create_sql(false)),
            Prologue::Reset => {
                format!("DROP SCHEMA IF EXISTS {} CASCADE;\n{};\n", self.schema.quoted(), self.create_sql(true))
            }
        }
    }

    /// Whether the schema and the history table exist, whether the table has the progress columns, and whether
    /// the database has Citus, as columns `schema_exists`, `table_exists`, `has_progress` and `citus`: read back
    /// by [`Exists::of`].
    pub fn exists_sql(&self) -> String {
        format!(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = {}) AS schema_exists, \
             to_regclass({table}) IS NOT NULL AS table_exists, \
             EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass({table}) \
             AND attname = '{NEWEST_PROGRESS_COLUMN}' AND NOT attisdropped) AS has_progress, \
             EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') AS citus",
            quote_literal(self.schema.as_str()),
            table = quote_literal(&self.qualified)
        )
    }

    /// Open a transaction and take the schema's migration lock in it without waiting (column `locked`), saying what
    /// exists in the same query string: read back by [`LockAttempt::of`]. The lock is a transaction lock: `COMMIT` or `ROLLBACK` releases it, so nothing
    /// outlives the transaction, not even on a pooled server connection.
    pub fn lock_sql(&self, timeouts: Timeouts) -> String {
        // Two statements: in READ COMMITTED each takes its own snapshot, so what the second sees includes whatever
        // the lock's previous holder committed; read in the locking statement itself, it could predate that.
        format!(
            "{}SELECT pg_try_advisory_xact_lock({}) AS locked, pg_backend_pid() AS backend;\n{};\n",
            self.open_sql(timeouts),
            self.lock_key(),
            self.exists_sql()
        )
    }

    /// Open a later transaction of a run: take the lock again or fail with [`LOST_LOCK_SQLSTATE`], so the statements
    /// after it in the same query string do not run without it.
    pub fn guarded_open_sql(&self, timeouts: Timeouts, committed_before: usize, step: Option<&Step<'_>>) -> String {
        // The detail says how many steps of the same query string committed before this transaction: after a
        // rollback, reading the history could not tell ours from those the other process has committed since.
        // Holding the lock is not enough: another process may have taken and released it in between, running this
        // very step; so the step's own row is checked too (a resumed step's claim checks its row itself).
        let version = step.filter(|step| step.resume_from.is_none()).map(|step| step.migration.version);
        let stale = match (step.map(|s| s.direction), version) {
            (Some(Direction::Up), Some(v)) => {
                format!(
                    " IF NOT lost THEN lost := EXISTS (SELECT 1 FROM {} WHERE version = {v}); END IF;",
                    self.qualified
                )
            }
            (Some(Direction::Down), Some(v)) => format!(
                " IF NOT lost THEN lost := NOT EXISTS (SELECT 1 FROM {} WHERE version = {v} AND NOT dirty); END IF;",
                self.qualified
            ),
            _ => String::new(),
        };
        // The lock is taken in an expression that names no table: Citus runs a query that names a distributed table
        // on the table's worker, functions and all, where the lock would be another server's.
        format!(
            "{}DO $guard$ DECLARE lost boolean := NOT pg_try_advisory_xact_lock({}); BEGIN{stale} IF lost THEN \
             RAISE EXCEPTION USING ERRCODE = '{LOST_LOCK_SQLSTATE}', MESSAGE = '{LOST_LOCK_MESSAGE}', \
             DETAIL = '{LOST_LOCK_DETAIL}{committed_before}'; END IF; END $guard$;\n",
            self.open_sql(timeouts),
            self.lock_key()
        )
    }

    /// Who holds the schema's migration lock: application name, client address, backend pid, and seconds since its
    /// transaction began; read back by [`LockHolder::of`].
    pub fn lock_holder_sql(&self) -> String {
        let key = self.lock_key() as u64;
        format!(
            "SELECT a.application_name, host(a.client_addr) AS client_addr, a.pid::text AS pid, \
             extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start))::bigint::text AS seconds \
             FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {} AND l.objid = {} AND l.objsubid = 1 \
             AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())",
            key >> 32,
            key & 0xffff_ffff
        )
    }

    /// Who runs a no-transaction migration: the backend with the runner's application name, if it is connected.
    pub fn runner_sql(&self, runner: &str) -> String {
        format!(
            "SELECT a.application_name, host(a.client_addr) AS client_addr, a.pid::text AS pid, \
             extract(epoch FROM now() - coalesce(a.query_start, a.backend_start))::bigint::text AS seconds \
             FROM pg_catalog.pg_stat_activity a WHERE a.application_name = {} LIMIT 1",
            quote_literal(runner)
        )
    }

    /// The SQL of one history fix, inside an open transaction.
    pub fn fix_sql(&self, fix: &HistoryFix<'_>) -> String {
        match fix {
            HistoryFix::Repair { migration, .. } => {
                let down =
                    migration.down.as_ref().map_or("NULL".to_owned(), |d| quote_literal(&d.checksum.to_string()));
                format!(
                    "UPDATE {} SET checksum = {}, down_checksum = {down}, name = {} WHERE version = {};\n",
                    self.qualified,
                    quote_literal(&migration.up.checksum.to_string()),
                    quote_literal(&migration.name),
                    migration.version
                )
            }
            HistoryFix::MarkApplied(version) => {
                format!("UPDATE {} SET dirty = false WHERE version = {version};\n", self.qualified)
            }
            HistoryFix::MarkNotApplied(version) => format!("{};\n", self.delete_sql(*version)),
            // Who recorded it, and why: `postgres (baseline)`, `postgres (adopted from sqlx)`.
            HistoryFix::Record { migration, source } => {
                let by = format!("current_user || {}", quote_literal(&format!(" ({})", source.label())));
                format!("{};\n", self.insert_sql(migration, false, "0", &by))
            }
        }
    }

    /// Claim a no-transaction step for `runner`, inside a locked transaction: record it dirty, who runs it, which
    /// way, and a lease. A resumed step keeps its count of statements done.
    pub fn claim_sql(&self, step: &Step<'_>, runner: &str, committed_before: usize) -> String {
        let claim = format!(
            "runner = {}, claim_expires_at = now() + interval '{} seconds', claim_direction = {}, failure = NULL, \
             {RUNNER_BACKEND}",
            quote_literal(runner),
            CLAIM_LEASE.as_secs(),
            quote_literal(step.direction.label()),
        );
        let version = step.migration.version;
        // A row a runner outside the lock changed since it was read (it finished, or went on) is not claimed: the
        // guard's SQLSTATE makes the engine read and plan again.
        let claimed_only_if = |update: String| {
            format!(
                "DO $claim$ BEGIN {update}; IF NOT FOUND THEN RAISE EXCEPTION USING ERRCODE = '{LOST_LOCK_SQLSTATE}', \
                 MESSAGE = 'the history changed since it was read', DETAIL = '{LOST_LOCK_DETAIL}{committed_before}'; \
                 END IF; END $claim$;\n"
            )
        };
        match (step.direction, step.resume_from) {
            (Direction::Up, None) => format!(
                "{};\nUPDATE {} SET {claim} WHERE version = {version};\n",
                self.insert_sql(step.migration, true, "0", "current_user"),
                self.qualified,
            ),
            (_, Some(done)) => claimed_only_if(format!(
                "UPDATE {} SET {claim} WHERE version = {version} AND dirty AND statements_done = {done}",
                self.qualified
            )),
            (Direction::Down, None) => claimed_only_if(format!(
                "UPDATE {} SET dirty = true, statements_done = 0, {claim} WHERE version = {version} AND NOT dirty",
                self.qualified
            )),
        }
    }

    /// Session settings for one statement of a no-transaction script (there is no transaction to scope them to),
    /// returning the values to put back, named as in [`SAVED_SETTINGS`].
    pub fn untransacted_settings_sql(&self, runner: &str, timeouts: Timeouts) -> String {
        let saved: Vec<String> =
            SAVED_SETTINGS.iter().map(|name| format!("current_setting('{name}') AS {name}")).collect();
        format!(
            "SELECT {};\n{}SET application_name = {};\n",
            saved.join(", "),
            self.settings_sql("", timeouts),
            quote_literal(runner)
        )
    }

    /// After statement `done` of a claimed script: record it and renew the lease.
    pub fn progress_sql(&self, step: &Step<'_>, runner: &str, done: usize) -> String {
        format!(
            "UPDATE {} SET statements_done = {done}, claim_expires_at = now() + interval '{} seconds', \
             {RUNNER_BACKEND} WHERE version = {} AND runner = {}",
            self.qualified,
            CLAIM_LEASE.as_secs(),
            step.migration.version,
            quote_literal(runner)
        )
    }

    /// The run that claimed a script was stopped between or during its statements: end the claim's lease now (the
    /// row stays dirty with what was done), so the next run resumes it without waiting the lease out.
    pub fn release_sql(&self, step: &Step<'_>, runner: &str) -> String {
        format!(
            "UPDATE {} SET claim_expires_at = now() WHERE version = {} AND runner = {}",
            self.qualified,
            step.migration.version,
            quote_literal(runner)
        )
    }

    /// A statement of a claimed script failed: record PostgreSQL's message, so later runs refuse instead of resuming.
    pub fn failed_sql(&self, step: &Step<'_>, runner: &str, message: &str) -> String {
        format!(
            "UPDATE {} SET failure = {}, runner = NULL, claim_expires_at = NULL WHERE version = {} AND runner = {}",
            self.qualified,
            quote_literal(message),
            step.migration.version,
            quote_literal(runner)
        )
    }

    /// After a claimed script succeeded: record it clean (up) or delete its row (down), if the claim is still ours.
    pub fn finish_untransacted(&self, step: &Step<'_>, runner: &str, elapsed: Duration) -> String {
        match step.direction {
            Direction::Up => format!(
                "UPDATE {} SET dirty = false, applied_at = now(), execution_ms = {}, runner = NULL, \
                 claim_expires_at = NULL, claim_direction = NULL, statements_done = 0 WHERE version = {} AND runner = {} \
                 RETURNING version",
                self.qualified,
                elapsed.as_millis(),
                step.migration.version,
                quote_literal(runner)
            ),
            Direction::Down => format!(
                "DELETE FROM {} WHERE version = {} AND runner = {} RETURNING version",
                self.qualified,
                step.migration.version,
                quote_literal(runner)
            ),
        }
    }

    /// The INVALID indexes of the schema, left by an interrupted concurrent build, as qualified names.
    pub fn invalid_indexes_sql(&self) -> String {
        format!(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS index FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = {} AND NOT i.indisvalid",
            quote_literal(self.schema.as_str())
        )
    }

    /// Whether the schema has a valid index of this name (column `valid`): read back by [`index_is_valid`].
    pub fn valid_index_sql(&self, name: &str) -> String {
        format!(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relname = {} \
             AND i.indisvalid) AS valid",
            quote_literal(self.schema.as_str()),
            quote_literal(name)
        )
    }
}

/// What [`HistoryTable::exists_sql`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exists {
    pub schema: bool,
    pub table: bool,
    /// The table has the columns that record a no-transaction migration's progress.
    pub progress_columns: bool,
    /// The database has the `citus` extension: query strings go one statement at a time (see the engine's
    /// `statements`).
    pub citus: bool,
}

impl Exists {
    pub fn of(answer: &Answer) -> Exists {
        Exists {
            schema: answer.flag("schema_exists"),
            table: answer.flag("table_exists"),
            progress_columns: answer.flag("has_progress"),
            citus: answer.flag("citus"),
        }
    }
}

/// What [`HistoryTable::lock_sql`] found: whether the lock was taken, and what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockAttempt {
    pub locked: bool,
    /// The session's backend (`pg_backend_pid()`), for [`HistoryTable::locked_select_sql`].
    pub backend: Option<i32>,
    pub exists: Exists,
}

impl LockAttempt {
    pub fn of(answer: &Answer) -> LockAttempt {
        let backend = answer.rows().iter().find_map(|row| row.get("backend")?.parse().ok());
        LockAttempt { locked: answer.flag("locked"), backend, exists: Exists::of(answer) }
    }
}

impl LockHolder {
    /// The holder [`HistoryTable::lock_holder_sql`] or [`HistoryTable::runner_sql`] found, if any.
    pub(crate) fn of(answer: &Answer) -> Option<LockHolder> {
        let row = answer.first()?;
        Some(LockHolder {
            application_name: row.get("application_name").unwrap_or_default().to_owned(),
            client_addr: row.get("client_addr").map(str::to_owned),
            pid: row.get("pid")?.parse().ok()?,
            held_for: Duration::from_secs(row.get("seconds").and_then(|s| s.parse().ok()).unwrap_or(0)),
        })
    }
}

/// What [`HistoryTable::valid_index_sql`] found.
pub(crate) fn index_is_valid(answer: &Answer) -> bool {
    answer.flag("valid")
}

/// The session settings a no-transaction script changes, read before it and put back after it.
const SAVED_SETTINGS: [&str; 4] = ["search_path", "lock_timeout", "statement_timeout", "application_name"];

/// SQL that puts back the session settings that [`HistoryTable::untransacted_settings_sql`] returned, read by name.
pub(crate) fn restore_settings_sql(saved: &Answer) -> String {
    let saved = saved.first();
    SAVED_SETTINGS
        .iter()
        .map(|name| {
            let value = saved.and_then(|row| row.get(name)).unwrap_or_default();
            format!("SELECT set_config('{name}', {}, false);", quote_literal(value))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn parse_history(table: &HistoryTable, answer: &Answer) -> Result<Vec<AppliedMigration>, Error> {
    answer
        .rows()
        .iter()
        .map(parse_row)
        .map(|row| {
            row.map_err(|problem| {
                Error::new(table.schema.as_str(), ErrorKind::CorruptHistory { table: table.qualified.clone(), problem })
            })
        })
        .collect()
}

/// One history row, read by column name.
fn parse_row(row: &Row) -> Result<AppliedMigration, String> {
    let optional = |column: &str| row.has(column).then(|| row.get(column)).ok_or(format!("column {column} is missing"));
    let text = |column: &str| -> Result<String, String> {
        optional(column)?.map(str::to_owned).ok_or_else(|| format!("{column} is null"))
    };
    let number = |column: &str| -> Result<i64, String> {
        let value = text(column)?;
        value.parse().map_err(|_| format!("{column} {value:?} is not an integer"))
    };
    let checksum = |value: &str| value.parse::<Checksum>().map_err(|e| e.to_string());
    Ok(AppliedMigration {
        version: number("version")?,
        name: text("name")?,
        checksum: checksum(&text("checksum")?)?,
        down_checksum: optional("down_checksum")?.map(checksum).transpose()?,
        applied_at: text("applied_at_utc")?,
        execution_ms: number("execution_ms")?,
        applied_by: text("applied_by")?,
        state: row_state(row, text("dirty")? == "t"),
    })
}

/// Where a row stands, from its `dirty` column and the columns that record a no-transaction migration's progress
/// (absent from tables made before them): a failure recorded means failed; a runner seen alive (`runner_alive`,
/// read under the lock) running; a runner and a direction recorded, interrupted; a dirty row with neither was left
/// by an older version of this tool, which could not tell, and counts as failed.
fn row_state(row: &Row, dirty: bool) -> RowState {
    if !dirty {
        return RowState::Clean;
    }
    let statements_done = row.get("statements_done").and_then(|n| n.parse().ok()).unwrap_or(0);
    let direction = match row.get("claim_direction") {
        Some("up") => Some(Direction::Up),
        Some("down") => Some(Direction::Down),
        _ => None,
    };
    match (row.get("failure"), row.get("runner"), direction) {
        (Some(failure), _, _) => RowState::Failed { failure: Some(failure.to_owned()) },
        (None, Some(runner), Some(direction)) => {
            let runner = runner.to_owned();
            match row.get("runner_alive") == Some("t") {
                true => RowState::Running { runner, statements_done, direction },
                false => RowState::Interrupted { runner, statements_done, direction },
            }
        }
        _ => RowState::Failed { failure: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn row(values: &[(&str, Option<&str>)]) -> Row {
        let columns: Arc<[String]> = values.iter().map(|(c, _)| c.to_string()).collect();
        Row::new(columns, values.iter().map(|(_, v)| v.map(str::to_owned)).collect())
    }

    #[test]
    fn a_rows_state_is_read_from_its_progress_columns() {
        let claimed = |alive, failure| {
            row(&[
                ("runner", Some("svc migrate 7")),
                ("runner_alive", Some(alive)),
                ("statements_done", Some("1")),
                ("claim_direction", Some("up")),
                ("failure", failure),
            ])
        };
        let (runner, statements_done, direction) = ("svc migrate 7".to_owned(), 1, Direction::Up);
        assert_eq!(row_state(&claimed("t", None), false), RowState::Clean);
        assert_eq!(
            row_state(&claimed("t", None), true),
            RowState::Running { runner: runner.clone(), statements_done, direction }
        );
        assert_eq!(row_state(&claimed("f", None), true), RowState::Interrupted { runner, statements_done, direction });
        let failure = Some("deadlock detected".to_owned());
        assert_eq!(row_state(&claimed("f", Some("deadlock detected")), true), RowState::Failed { failure });
        // A table made before the progress columns: dirty, and nothing else to go by.
        assert_eq!(row_state(&row(&[]), true), RowState::Failed { failure: None });
    }
}
