//! Query strings sent one statement at a time, for Citus. A Citus coordinator passes some DDL on to its workers as
//! the client's whole query string (`CREATE INDEX`, `ALTER TABLE ... RENAME`, `CREATE TRIGGER`, ...) through the
//! extended protocol, which takes one statement: any such DDL in a query string of several statements fails with
//! `cannot insert multiple commands into a prepared statement`. On a database with the `citus` extension the
//! engine therefore sends each statement of a query string as a query string of its own, in order, on the same
//! connection (so in the same transaction): more round trips, the same effect. Elsewhere it sends the query
//! string whole, as before.

use std::time::Duration;

use crate::session::{Answer, QueryError, Session};
use crate::sql::split_statements;

/// A session that sends query strings whole, or statement by statement once told the database is Citus.
pub(crate) struct Sender<'s, S> {
    inner: &'s mut S,
    one_statement_at_a_time: bool,
}

impl<'s, S: Session> Sender<'s, S> {
    /// Sends query strings whole until [`one_statement_at_a_time`](Self::one_statement_at_a_time) is set.
    pub fn new(inner: &'s mut S) -> Sender<'s, S> {
        Sender { inner, one_statement_at_a_time: false }
    }

    /// From now on, send each statement of a query string on its own (`on`), or query strings whole.
    pub fn one_statement_at_a_time(&mut self, on: bool) {
        self.one_statement_at_a_time = on;
    }

    /// Each statement of `sql` in order, their rows concatenated; the first failure ends it, its error position
    /// counted in `sql` as if the string had been sent whole.
    async fn statement_by_statement(&mut self, sql: &str) -> Result<Answer, QueryError> {
        let mut rows = Vec::new();
        for (offset, statement) in split_statements(sql) {
            match self.inner.batch(statement).await {
                Ok(answer) => rows.extend(answer.rows().iter().cloned()),
                Err(error) => return Err(shifted(error, sql[..offset].chars().count())),
            }
        }
        Ok(Answer::new(rows))
    }
}

/// `error` with its position moved on by `chars` characters.
fn shifted(error: QueryError, chars: usize) -> QueryError {
    match error {
        QueryError::Server(mut server) => {
            server.position = server.position.map(|position| position + chars);
            QueryError::Server(server)
        }
        other => other,
    }
}

impl<S: Session> Session for Sender<'_, S> {
    async fn batch(&mut self, sql: &str) -> Result<Answer, QueryError> {
        match self.one_statement_at_a_time {
            true => self.statement_by_statement(sql).await,
            false => self.inner.batch(sql).await,
        }
    }

    async fn pause(&mut self, duration: Duration) {
        self.inner.pause(duration).await;
    }
}
