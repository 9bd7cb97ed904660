//! One engine for every driver. The engine is written once, as async code over [`Session`]: a driver is a small
//! adapter that sends a query string and hands back the rows as text ([`Answer`]) or what the server said went
//! wrong ([`QueryError`]). The sync driver implements it with blocking calls whose futures are always ready, and
//! [`block_on_ready`] drives them without an async runtime.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// What the engine needs from a connection: simple-protocol query strings (one round trip each, every value sent
/// back as text) and a way to wait.
pub(crate) trait Session {
    fn batch(&mut self, sql: &str) -> impl Future<Output = Result<Answer, QueryError>>;
    fn pause(&mut self, duration: Duration) -> impl Future<Output = ()>;
}

/// What one query string returned: the rows of all its statements, in order, every value as text or `NULL`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    rows: Vec<Row>,
}

impl Answer {
    /// An answer of these rows.
    pub fn new(rows: Vec<Row>) -> Answer {
        Answer { rows }
    }

    /// Every row, in the order the server sent them.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The first row, of whichever statement returned one.
    pub fn first(&self) -> Option<&Row> {
        self.rows.first()
    }

    /// Whether a row has `column` true (`t`); false when none has it.
    pub fn flag(&self, column: &str) -> bool {
        self.rows.iter().any(|row| row.get(column) == Some("t"))
    }
}

/// One row of an [`Answer`]: its columns' names (shared by the rows of one statement) and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Option<String>>,
}

impl Row {
    /// A row with `values` under `columns`, in the same order.
    pub fn new(columns: Arc<[String]>, values: Vec<Option<String>>) -> Row {
        Row { columns, values }
    }

    /// The value of `column`; `None` when it is `NULL` or the row has no such column.
    pub fn get(&self, column: &str) -> Option<&str> {
        let index = self.columns.iter().position(|c| c == column)?;
        self.values.get(index)?.as_deref()
    }

    /// Whether the row has a column named `column`.
    pub fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }

    /// The name of its first column.
    pub fn first_column(&self) -> Option<&str> {
        self.columns.first().map(String::as_str)
    }

    /// The value of its first column.
    pub fn first_value(&self) -> Option<&str> {
        self.values.first()?.as_deref()
    }
}

/// A SQLSTATE code, five characters (`42P01`, `25001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// `undefined_table`: a relation (or its schema) does not exist.
    pub const UNDEFINED_TABLE: SqlState = SqlState(*b"42P01");
    /// `active_sql_transaction`: the statement cannot run inside a transaction block.
    pub const ACTIVE_SQL_TRANSACTION: SqlState = SqlState(*b"25001");
    /// `undefined_column`: a column named in the query does not exist.
    pub const UNDEFINED_COLUMN: SqlState = SqlState(*b"42703");
    /// `internal_error`: what an odd code from a driver reads as.
    pub const INTERNAL_ERROR: SqlState = SqlState(*b"XX000");
    /// `lock_not_available`: `lock_timeout` ran out.
    pub const LOCK_NOT_AVAILABLE: SqlState = SqlState(*b"55P03");
    /// Raised by the guard that opens every transaction of a run after the first: another process took the
    /// schema's migration lock between two of the run's transactions (a code of this crate's own, class `MG`).
    pub const LOST_LOCK: SqlState = SqlState(*b"MGLCK");

    /// The code from its text, when it is five ASCII letters and digits.
    pub fn new(code: &str) -> Option<SqlState> {
        let bytes: [u8; 5] = code.as_bytes().try_into().ok()?;
        bytes.iter().all(u8::is_ascii_alphanumeric).then_some(SqlState(bytes))
    }

    /// The five characters.
    pub fn as_str(&self) -> &str {
        // Checked ASCII in `new`, and the constants are ASCII.
        std::str::from_utf8(&self.0).unwrap_or("?????")
    }
}

impl PartialEq<str> for SqlState {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl std::fmt::Display for SqlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the server said about a query string that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// Its SQLSTATE; `None` when the driver does not pass it on (diesel keeps it to itself, see the diesel
    /// driver for what it recovers).
    pub code: Option<SqlState>,
    /// Its message.
    pub message: String,
    /// Its detail, if any.
    pub detail: Option<String>,
    /// Its hint, if any.
    pub hint: Option<String>,
    /// Where in the query string it happened: a one-based position in characters.
    pub position: Option<usize>,
}

/// A query string that failed, whatever the driver: what the server said, or the driver's words when the server
/// said nothing (the connection broke).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The server refused or failed the query.
    #[error("{}", .0.message_with_detail())]
    Server(ServerError),
    /// No answer: the connection failed or closed.
    #[error("{message}")]
    Connection {
        /// The driver's description.
        message: String,
    },
}

impl ServerError {
    /// The message with its detail and hint: `relation "x" does not exist (hint: ...)`.
    pub fn message_with_detail(&self) -> String {
        let mut message = self.message.clone();
        for (label, extra) in [("detail", &self.detail), ("hint", &self.hint)] {
            if let Some(extra) = extra {
                message.push_str(&format!(" ({label}: {extra})"));
            }
        }
        message
    }
}

impl QueryError {
    /// What the server said; `None` when the connection failed.
    pub fn server(&self) -> Option<&ServerError> {
        match self {
            QueryError::Server(server) => Some(server),
            QueryError::Connection { .. } => None,
        }
    }

    /// The server's SQLSTATE.
    pub fn code(&self) -> Option<SqlState> {
        self.server().and_then(|server| server.code)
    }

    /// The server's SQLSTATE and its message with detail and hint; or no code and the driver's words.
    pub fn describe(&self) -> (Option<SqlState>, String) {
        (self.code(), self.to_string())
    }
}

impl From<postgres::Error> for QueryError {
    fn from(error: postgres::Error) -> QueryError {
        let Some(db) = error.as_db_error() else { return QueryError::Connection { message: error.to_string() } };
        let position = match db.position() {
            Some(postgres::error::ErrorPosition::Original(position)) => Some(*position as usize),
            _ => None,
        };
        QueryError::Server(ServerError {
            // PostgreSQL's codes are always five characters; an odd one reads as a generic internal error.
            code: Some(SqlState::new(db.code().code()).unwrap_or(SqlState::INTERNAL_ERROR)),
            message: db.message().to_owned(),
            detail: db.detail().map(str::to_owned),
            hint: db.hint().map(str::to_owned),
            position,
        })
    }
}

/// The column names for a row whose columns are `names`: the previous row's, shared, when they are the same
/// (consecutive rows of one statement), else a fresh list that the next rows then share.
#[cfg(any(feature = "sqlx", feature = "diesel", feature = "diesel-async"))]
pub(crate) fn shared_columns<'a>(
    cache: &mut Option<Arc<[String]>>,
    names: impl Iterator<Item = &'a str> + Clone,
) -> Arc<[String]> {
    if let Some(cached) = cache.as_ref().filter(|cached| cached.iter().map(String::as_str).eq(names.clone())) {
        return cached.clone();
    }
    let fresh: Arc<[String]> = names.map(str::to_owned).collect();
    *cache = Some(fresh.clone());
    fresh
}

/// The rows of a `simple_query` answer, as an [`Answer`].
pub(crate) fn answer(messages: Vec<postgres::SimpleQueryMessage>) -> Answer {
    let mut rows = Vec::new();
    let mut columns: Option<Arc<[String]>> = None;
    for message in messages {
        match message {
            postgres::SimpleQueryMessage::RowDescription(description) => {
                columns = Some(description.iter().map(|c| c.name().to_owned()).collect());
            }
            postgres::SimpleQueryMessage::Row(row) => {
                let names = match &columns {
                    Some(names) if names.len() == row.len() => names.clone(),
                    _ => row.columns().iter().map(|c| c.name().to_owned()).collect(),
                };
                let values = (0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect();
                rows.push(Row::new(names, values));
            }
            postgres::SimpleQueryMessage::CommandComplete(_) => columns = None,
            _ => {}
        }
    }
    Answer::new(rows)
}

impl Session for postgres::Client {
    async fn batch(&mut self, sql: &str) -> Result<Answer, QueryError> {
        tracing::trace!(sql, "query");
        Ok(answer(self.simple_query(sql)?))
    }

    async fn pause(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[cfg(feature = "tokio")]
impl Session for &tokio_postgres::Client {
    async fn batch(&mut self, sql: &str) -> Result<Answer, QueryError> {
        tracing::trace!(sql, "query");
        Ok(answer(self.simple_query(sql).await?))
    }

    async fn pause(&mut self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Drive a future whose every await completes at once (the sync session's). Should one ever pend, it is polled
/// again after yielding the thread rather than trusted to be ready.
pub(crate) fn block_on_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}
