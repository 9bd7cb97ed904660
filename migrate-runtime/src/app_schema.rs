//! The application's own queries in its schema, whatever sits between the service and the server.
//!
//! A `search_path` set at connection time ([`SchemaName::search_path_option`]) lasts for the session. Behind a
//! pooler in transaction mode (PgBouncer `pool_mode = transaction`) a client has no session of its own: each
//! transaction may run on another server connection, and the startup option is refused or, with
//! `ignore_startup_parameters = options`, silently dropped. Queries then resolve unqualified names in whatever the
//! server connection's `search_path` is, usually `public`, and a tenant can be answered from another schema.
//!
//! The helpers here set `search_path` for one transaction at a time (`SET LOCAL`), which a transaction pooler keeps
//! on one server connection from `BEGIN` to `COMMIT`, and check at boot that names really resolve in the schema:
//!
//! ```no_run
//! use migrate_runtime::{check_schema, in_schema, SchemaName};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let schema = SchemaName::new("tenant-1")?;
//! // For example through PgBouncer in transaction mode.
//! let mut client = postgres::Client::connect("host=127.0.0.1 port=6432 user=app dbname=main", postgres::NoTls)?;
//! check_schema(&mut client, &schema)?; // once at boot: refuse to serve from anywhere else
//! let names = in_schema(&mut client, &schema, |tx| -> Result<Vec<String>, postgres::Error> {
//!     // An unnamed statement: nothing is left on the pooled server connection.
//!     Ok(tx.query_typed("SELECT name FROM products", &[])?.iter().map(|row| row.get(0)).collect())
//! })?;
//! # Ok(()) }
//! ```

use std::fmt;

use crate::schema::{quote_ident, SchemaName};
use crate::session::{Answer, QueryError};

/// Run `body` in one transaction whose `search_path` is `schema`, then commit; roll back if `body` fails.
///
/// Safe behind a pooler in transaction mode: the setting is made with `SET LOCAL` inside the transaction, so it
/// holds on the server connection that runs the transaction and ends with it. Costs a round trip for `BEGIN`, one
/// for the `SET LOCAL` and one for `COMMIT`, besides `body`'s own.
///
/// Behind PgBouncer older than 1.21 (or without `max_prepared_statements`), send unnamed statements in `body`:
/// `query_typed`, `query_typed_one`, `simple_query`, `batch_execute`. `query("...")` prepares a *named* statement
/// (`s0`, `s1`, ...) that stays on the server connection until the driver closes it, possibly after the
/// transaction, and another client of the pool preparing its own `s0` there then fails with `prepared statement
/// "s0" already exists`.
pub fn in_schema<T, E>(
    client: &mut postgres::Client,
    schema: &SchemaName,
    body: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<postgres::Error>,
{
    let mut transaction = begin_in_schema(client, schema)?;
    // On an error the transaction is dropped, which rolls it back.
    let value = body(&mut transaction)?;
    transaction.commit()?;
    Ok(value)
}

/// Open a transaction whose `search_path` is `schema` (`BEGIN`, then `SET LOCAL search_path`); commit it
/// yourself. Dropping it rolls it back. See [`in_schema`].
pub fn begin_in_schema<'c>(
    client: &'c mut postgres::Client,
    schema: &SchemaName,
) -> Result<postgres::Transaction<'c>, postgres::Error> {
    let mut transaction = client.transaction()?;
    transaction.batch_execute(&schema.set_local_search_path_sql())?;
    Ok(transaction)
}

/// [`in_schema`] with shared schemas after `schema` in the transaction's `search_path` (`SET LOCAL search_path =
/// "tenant-1", "extensions"`): extension types and functions installed once in a shared schema resolve, while
/// unqualified names the tenant has still resolve in the tenant's schema first. Pass the same list as
/// [`Migrator::extra_search_path`](crate::Migrator::extra_search_path).
///
/// A name the tenant lacks resolves in the shared schema: keep the shared schemas free of tables.
pub fn in_schema_with<T, E>(
    client: &mut postgres::Client,
    schema: &SchemaName,
    extra: &[SchemaName],
    body: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<postgres::Error>,
{
    let mut transaction = begin_in_schema_with(client, schema, extra)?;
    let value = body(&mut transaction)?;
    transaction.commit()?;
    Ok(value)
}

/// [`begin_in_schema`] with shared schemas after `schema` in `search_path`; see [`in_schema_with`].
pub fn begin_in_schema_with<'c>(
    client: &'c mut postgres::Client,
    schema: &SchemaName,
    extra: &[SchemaName],
) -> Result<postgres::Transaction<'c>, postgres::Error> {
    let mut transaction = client.transaction()?;
    transaction.batch_execute(&schema.set_local_search_path_sql_with(extra))?;
    Ok(transaction)
}

/// Check, in one round trip, that a transaction opened as [`in_schema`] opens it resolves unqualified names in
/// `schema`: `current_schema()` must be `schema`. Call it once at boot on the application's connection and refuse
/// to serve on an error.
///
/// Fails with [`SchemaCheckError::WrongSchema`] when the schema does not exist in the database the connection
/// reaches, or the connection's role lacks `USAGE` on it (PostgreSQL then skips it in `search_path`).
pub fn check_schema(client: &mut postgres::Client, schema: &SchemaName) -> Result<(), SchemaCheckError> {
    let answer = client.simple_query(&check_sql(schema, SearchPathScope::Transaction));
    judge_answer(schema, SearchPathScope::Transaction, postgres_answer(answer))
}

/// Check, in one round trip, that the connection's session resolves unqualified names in `schema`, as it does
/// when connected with [`SchemaName::search_path_option`]: `current_schema()` must be `schema` without setting
/// anything.
///
/// This catches a pooler that dropped the startup option (PgBouncer with `ignore_startup_parameters = options`).
/// Behind a pooler in transaction mode a pass proves nothing about later transactions: use [`in_schema`] and
/// [`check_schema`] there.
pub fn check_session_schema(client: &mut postgres::Client, schema: &SchemaName) -> Result<(), SchemaCheckError> {
    let answer = client.simple_query(&check_sql(schema, SearchPathScope::Session));
    judge_answer(schema, SearchPathScope::Session, postgres_answer(answer))
}

/// [`in_schema`] on a `tokio-postgres` client.
///
/// ```no_run
/// # async fn example(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use migrate_runtime::{in_schema_async, SchemaName};
///
/// let schema = SchemaName::new("tenant-1")?;
/// let count: i64 = in_schema_async(client, &schema, async |tx| -> Result<i64, tokio_postgres::Error> {
///     Ok(tx.query_typed_one("SELECT count(*) FROM products", &[]).await?.get(0))
/// })
/// .await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub async fn in_schema_async<T, E, F>(client: &mut tokio_postgres::Client, schema: &SchemaName, body: F) -> Result<T, E>
where
    F: AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> Result<T, E>,
    E: From<tokio_postgres::Error>,
{
    let transaction = begin_in_schema_async(client, schema).await?;
    let value = body(&transaction).await?;
    transaction.commit().await?;
    Ok(value)
}

/// [`begin_in_schema`] on a `tokio-postgres` client.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub async fn begin_in_schema_async<'c>(
    client: &'c mut tokio_postgres::Client,
    schema: &SchemaName,
) -> Result<tokio_postgres::Transaction<'c>, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction.batch_execute(&schema.set_local_search_path_sql()).await?;
    Ok(transaction)
}

/// [`in_schema_with`] on a `tokio-postgres` client.
#[cfg(feature = "tokio")]
pub async fn in_schema_with_async<T, E, F>(
    client: &mut tokio_postgres::Client,
    schema: &SchemaName,
    extra: &[SchemaName],
    body: F,
) -> Result<T, E>
where
    F: AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> Result<T, E>,
    E: From<tokio_postgres::Error>,
{
    let transaction = begin_in_schema_with_async(client, schema, extra).await?;
    let value = body(&transaction).await?;
    transaction.commit().await?;
    Ok(value)
}

/// [`begin_in_schema_with`] on a `tokio-postgres` client.
#[cfg(feature = "tokio")]
pub async fn begin_in_schema_with_async<'c>(
    client: &'c mut tokio_postgres::Client,
    schema: &SchemaName,
    extra: &[SchemaName],
) -> Result<tokio_postgres::Transaction<'c>, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction.batch_execute(&schema.set_local_search_path_sql_with(extra)).await?;
    Ok(transaction)
}

/// [`check_schema`] on a `tokio-postgres` client.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub async fn check_schema_async(client: &tokio_postgres::Client, schema: &SchemaName) -> Result<(), SchemaCheckError> {
    let answer = client.simple_query(&check_sql(schema, SearchPathScope::Transaction)).await;
    judge_answer(schema, SearchPathScope::Transaction, postgres_answer(answer))
}

/// [`check_session_schema`] on a `tokio-postgres` client.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub async fn check_session_schema_async(
    client: &tokio_postgres::Client,
    schema: &SchemaName,
) -> Result<(), SchemaCheckError> {
    let answer = client.simple_query(&check_sql(schema, SearchPathScope::Session)).await;
    judge_answer(schema, SearchPathScope::Session, postgres_answer(answer))
}

/// How `search_path` was set when a check was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchPathScope {
    /// `SET LOCAL` in the transaction, as [`in_schema`] does.
    Transaction,
    /// Nothing set: the session's own, from [`SchemaName::search_path_option`] at connection time.
    Session,
}

impl fmt::Display for SearchPathScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SearchPathScope::Transaction => "with search_path set to it for the transaction",
            SearchPathScope::Session => "with the connection's own search_path",
        })
    }
}

/// The application's connection does not resolve unqualified names in its schema, or could not be asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaCheckError {
    /// `current_schema()` is not the configured schema.
    #[error(
        "schema {schema:?}: as role {role:?} in database {database:?}, {scope}, {found}; {advice}",
        found = found_text(current_schema.as_deref()),
        advice = advice(schema, current_schema.as_deref(), role, *scope)
    )]
    WrongSchema {
        /// The configured schema.
        schema: String,
        /// What `current_schema()` returned: `None` when no schema of `search_path` exists or is usable.
        current_schema: Option<String>,
        /// How `search_path` was set.
        scope: SearchPathScope,
        /// `current_user` of the connection.
        role: String,
        /// `current_database()` of the connection.
        database: String,
    },
    /// The query asking the server failed.
    #[error("schema {schema:?}: could not ask the server which schema the application's connection uses")]
    Database {
        /// The configured schema.
        schema: String,
        /// What the server (or the driver) said.
        #[source]
        source: QueryError,
    },
}

fn found_text(current_schema: Option<&str>) -> String {
    match current_schema {
        Some(current) => format!("current_schema() is {current:?}: unqualified names resolve there, not in the schema"),
        None => "current_schema() is null: unqualified names resolve in no schema".to_owned(),
    }
}

fn advice(schema: &str, current_schema: Option<&str>, role: &str, scope: SearchPathScope) -> String {
    let grant = format!("GRANT USAGE ON SCHEMA {} TO {}", quote_ident(schema), quote_ident(role));
    match (scope, current_schema) {
        (SearchPathScope::Transaction, None) => format!(
            "the schema does not exist in this database, or the role lacks USAGE on it: migrate this database's \
             schema, or {grant} (and the table privileges the service needs)"
        ),
        (SearchPathScope::Transaction, Some(_)) => "something between the service and the server changes \
             search_path inside the transaction (a proxy, or a function with its own search_path); connect \
             directly to the server to find out"
            .to_owned(),
        (SearchPathScope::Session, _) => format!(
            "the search_path startup option did not take effect: a pooler in transaction mode, or one set with \
             ignore_startup_parameters = options, drops it: set search_path per transaction (in_schema) and check \
             with check_schema, or connect directly or through session pooling; if the option did arrive, the \
             schema is missing or the role lacks USAGE on it ({grant})"
        ),
    }
}

/// One simple-protocol query string, so one round trip. In the transaction scope the statements form an implicit
/// transaction, so `SET LOCAL` ends with it and nothing is left on a pooled server connection.
pub(crate) fn check_sql(schema: &SchemaName, scope: SearchPathScope) -> String {
    let ask = "SELECT current_schema(), current_user, current_database()";
    match scope {
        SearchPathScope::Transaction => format!("{}; {ask}", schema.set_local_search_path_sql()),
        SearchPathScope::Session => ask.to_owned(),
    }
}

/// What the check's query string returned, whatever the driver.
pub(crate) fn judge_answer(
    schema: &SchemaName,
    scope: SearchPathScope,
    answer: Result<Answer, QueryError>,
) -> Result<(), SchemaCheckError> {
    let database_error = |source| SchemaCheckError::Database { schema: schema.to_string(), source };
    let answer = answer.map_err(database_error)?;
    // The SELECT always returns one row; a missing one would be a broken server or proxy: treat it as no schema.
    let (current, role, database) = match answer.first() {
        Some(row) => (
            row.get("current_schema"),
            row.get("current_user").unwrap_or_default(),
            row.get("current_database").unwrap_or_default(),
        ),
        None => (None, "", ""),
    };
    judge(schema, scope, current, role, database)
}

/// A postgres answer as the crate's own.
fn postgres_answer(answer: Result<Vec<postgres::SimpleQueryMessage>, postgres::Error>) -> Result<Answer, QueryError> {
    answer.map(crate::session::answer).map_err(QueryError::from)
}

fn judge(
    schema: &SchemaName,
    scope: SearchPathScope,
    current_schema: Option<&str>,
    role: &str,
    database: &str,
) -> Result<(), SchemaCheckError> {
    if current_schema == Some(schema.as_str()) {
        return Ok(());
    }
    Err(SchemaCheckError::WrongSchema {
        schema: schema.to_string(),
        current_schema: current_schema.map(str::to_owned),
        scope,
        role: role.to_owned(),
        database: database.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(name: &str) -> SchemaName {
        SchemaName::new(name).unwrap()
    }

    #[test]
    fn the_check_is_one_query_string_that_sets_search_path_only_for_its_own_transaction() {
        assert_eq!(
            check_sql(&schema("tenant-1"), SearchPathScope::Transaction),
            r#"SET LOCAL search_path = "tenant-1"; SELECT current_schema(), current_user, current_database()"#
        );
        assert_eq!(
            check_sql(&schema("tenant-1"), SearchPathScope::Session),
            "SELECT current_schema(), current_user, current_database()"
        );
        // A hostile name stays one quoted identifier.
        assert_eq!(
            check_sql(&schema(r#"x"; RESET search_path; --"#), SearchPathScope::Transaction),
            r#"SET LOCAL search_path = "x""; RESET search_path; --"; SELECT current_schema(), current_user, current_database()"#
        );
    }

    #[test]
    fn only_the_configured_schema_passes() {
        let tenant = schema("Tenant-1");
        assert!(judge(&tenant, SearchPathScope::Transaction, Some("Tenant-1"), "app", "main").is_ok());
        for found in [Some("tenant-1"), Some("public"), None] {
            let error = judge(&tenant, SearchPathScope::Transaction, found, "app", "main").unwrap_err();
            assert!(
                matches!(&error, SchemaCheckError::WrongSchema { current_schema, .. } if current_schema.as_deref() == found),
                "{error:?}"
            );
        }
    }

    #[test]
    fn messages_say_what_was_found_and_what_to_do() {
        let tenant = schema("tenant-1");
        let no_usage = judge(&tenant, SearchPathScope::Transaction, None, "app role", "main").unwrap_err();
        assert_eq!(
            no_usage.to_string(),
            "schema \"tenant-1\": as role \"app role\" in database \"main\", with search_path set to it for the \
             transaction, current_schema() is null: unqualified names resolve in no schema; the schema does not \
             exist in this database, or the role lacks USAGE on it: migrate this database's schema, or GRANT USAGE \
             ON SCHEMA \"tenant-1\" TO \"app role\" (and the table privileges the service needs)"
        );
        let dropped = judge(&tenant, SearchPathScope::Session, Some("public"), "app", "main").unwrap_err().to_string();
        assert!(
            dropped.starts_with(
                "schema \"tenant-1\": as role \"app\" in database \"main\", with the connection's own search_path, \
                 current_schema() is \"public\": unqualified names resolve there, not in the schema; the \
                 search_path startup option did not take effect: a pooler in transaction mode, or one set with \
                 ignore_startup_parameters = options, drops it"
            ),
            "{dropped}"
        );
        let rewritten = judge(&tenant, SearchPathScope::Transaction, Some("other"), "app", "main").unwrap_err();
        assert!(
            rewritten.to_string().contains("current_schema() is \"other\": unqualified names resolve there"),
            "{rewritten}"
        );
    }
}
