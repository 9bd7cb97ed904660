//! The sqlx driver: the engine's [`Session`] over a sqlx 0.9 `PgConnection`, so a service migrates with its own
//! pool. Query strings go through `sqlx::raw_sql` (the simple protocol: one round trip, several statements, text
//! values, no prepared statement left on the connection), as with the other drivers.

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::{Column, Row as _, ValueRef};

use crate::session::{Answer, QueryError, Row, ServerError, Session, SqlState};

impl Session for &mut sqlx::PgConnection {
    async fn batch(&mut self, sql: &str) -> Result<Answer, QueryError> {
        tracing::trace!(sql, "query");
        let mut stream = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).fetch(&mut **self);
        let mut rows = Vec::new();
        let mut columns: Option<Arc<[String]>> = None;
        while let Some(row) = stream.try_next().await.map_err(QueryError::from)? {
            let names = match &columns {
                Some(names)
                    if names.len() == row.len() && names.iter().zip(row.columns()).all(|(n, c)| n == c.name()) =>
                {
                    names.clone()
                }
                _ => {
                    let names: Arc<[String]> = row.columns().iter().map(|c| c.name().to_owned()).collect();
                    columns = Some(names.clone());
                    names
                }
            };
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
            code: SqlState::new(pg.code()).unwrap_or(SqlState::INTERNAL_ERROR),
            message: pg.message().to_owned(),
            detail: pg.detail().map(str::to_owned),
            hint: pg.hint().map(str::to_owned),
            position,
        })
    }
}
