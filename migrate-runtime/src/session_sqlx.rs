//! The sqlx driver: the engine's [`Session`] over a sqlx 0.9 `PgConnection`, so a service migrates with its own
//! pool. Query strings go through `sqlx::raw_sql` (the simple protocol: one round trip, several statements, text
//! values, no prepared statement left on the connection), as with the other drivers.

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::{Column, Row as _, ValueRef};

use crate::app_schema::{check_sql, judge_answer, SchemaCheckError, SearchPathScope};
use crate::schema::SchemaName;
use crate::session::{shared_columns, Answer, QueryError, Row, ServerError, Session, SqlState};

/// [`begin_in_schema_with`](crate::begin_in_schema_with) on sqlx: a transaction of the pool's (or the
/// connection's) whose `search_path` is `schema`, then `extra`, set with `SET LOCAL`, so it holds behind a
/// transaction pooler and ends with the transaction.
pub async fn begin_in_schema_sqlx<'c>(
    connection: impl sqlx::Acquire<'c, Database = sqlx::Postgres>,
    schema: &SchemaName,
    extra: &[SchemaName],
) -> Result<sqlx::Transaction<'c, sqlx::Postgres>, sqlx::Error> {
    let mut transaction = connection.begin().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(schema.set_local_search_path_sql_with(extra))).execute(&mut *transaction).await?;
    Ok(transaction)
}

/// [`check_schema`](crate::check_schema) on a sqlx connection: in one round trip, that a transaction opened as
/// [`begin_in_schema_sqlx`] opens it resolves unqualified names in `schema`. Call it once at boot and refuse to
/// serve on an error.
pub async fn check_schema_sqlx(
    connection: &mut sqlx::PgConnection,
    schema: &SchemaName,
) -> Result<(), SchemaCheckError> {
    let mut session = connection;
    let answer = session.batch(&check_sql(schema, SearchPathScope::Transaction)).await;
    judge_answer(schema, SearchPathScope::Transaction, answer)
}

impl Session for &mut sqlx::PgConnection {
    async fn batch(&mut self, sql: &str) -> Result<Answer, QueryError> {
        tracing::trace!(sql, "query");
        let mut stream = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).fetch(&mut **self);
        let mut rows = Vec::new();
        let mut columns: Option<Arc<[String]>> = None;
        while let Some(row) = stream.try_next().await.map_err(QueryError::from)? {
            let names = shared_columns(&mut columns, row.columns().iter().map(|c| c.name()));
            let values = (0..row.len())
                .map(|i| {
                    let value = row.try_get_raw(i).ok()?;
                    if value.is_null() {
                        return None;
                    }
                    value.as_str().ok().map(str::to_owned)
                })
                .collect();
            rows.push(Row::new(names, values));
        }
        Ok(Answer::new(rows))
    }

    async fn pause(&mut self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

impl From<sqlx::Error> for QueryError {
    fn from(error: sqlx::Error) -> QueryError {
        let sqlx::Error::Database(database) = &error else {
            return QueryError::Connection { message: error.to_string() };
        };
        let Some(pg) = database.try_downcast_ref::<PgDatabaseError>() else {
            return QueryError::Connection { message: error.to_string() };
        };
        let position = match pg.position() {
            Some(PgErrorPosition::Original(position)) => Some(position),
            _ => None,
        };
        QueryError::Server(ServerError {
            code: Some(SqlState::new(pg.code()).unwrap_or(SqlState::INTERNAL_ERROR)),
            message: pg.message().to_owned(),
            detail: pg.detail().map(str::to_owned),
            hint: pg.hint().map(str::to_owned),
            position,
        })
    }
}
