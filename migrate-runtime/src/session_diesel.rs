//! The diesel drivers: the engine's [`Session`] over diesel's `PgConnection` (feature `diesel`) and diesel-async's
//! `AsyncPgConnection` (feature `diesel-async`), so a diesel service migrates on its own connection.
//!
//! diesel has no simple-protocol query that returns rows, so this adapter does what the simple protocol would
//! have done:
//! - a query string is split into statements; each run of statements that return nothing goes through
//!   `batch_execute` verbatim (the simple protocol: a migration's own text reaches the server as written), each
//!   statement that returns rows through `sql_query` (one unnamed, uncached statement), its binary values read back
//!   as the text PostgreSQL would have sent;
//! - a string of several statements sent outside a transaction is wrapped in `BEGIN`/`COMMIT`, as atomic as the
//!   simple protocol makes it;
//! - errors keep their SQLSTATE (diesel 2.4 passes it on) and their position, moved to where the piece starts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel::pg::Pg;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::row::{Field, NamedRow};

use crate::app_schema::{check_sql, judge_answer, SchemaCheckError, SearchPathScope};
use crate::schema::SchemaName;
use crate::session::{shared_columns, Answer, QueryError, Row, ServerError, Session, SqlState};
use crate::sql::{split_statements, words};

/// What a diesel connection does for the adapter: send statements that return nothing, load the rows of one
/// statement, wait.
pub(crate) trait Link {
    fn execute(&mut self, sql: &str) -> impl Future<Output = Result<(), DieselError>>;
    fn load(&mut self, sql: &str) -> impl Future<Output = Result<Vec<TextRow>, DieselError>>;
    fn pause(&mut self, duration: Duration) -> impl Future<Output = ()>;
}

/// A diesel connection as the engine's session.
pub(crate) struct DieselSession<L> {
    link: L,
    /// Inside a transaction that a statement of an earlier (or this) query string opened.
    in_transaction: bool,
}

impl<L: Link> DieselSession<L> {
    /// The session over a connection that is not inside a transaction.
    pub(crate) fn new(link: L) -> DieselSession<L> {
        DieselSession { link, in_transaction: false }
    }

    /// Send the pieces in order, stopping at the first error as the simple protocol does.
    async fn send(&mut self, sql: &str, pieces: &[Piece]) -> Result<Answer, QueryError> {
        let mut rows = Vec::new();
        let mut columns: Option<Arc<[String]>> = None;
        for piece in pieces {
            let text = &sql[piece.start..piece.end];
            let offset = sql[..piece.start].chars().count();
            if piece.returns_rows {
                let loaded = self.link.load(text).await.map_err(|e| query_error(e, offset))?;
                for row in loaded {
                    let names = shared_columns(&mut columns, row.names.iter().map(String::as_str));
                    rows.push(Row::new(names, row.values));
                }
            } else {
                let executed = self.link.execute(text).await;
                // A COMMIT or ROLLBACK ends the transaction even when it fails.
                match piece.control {
                    Some(TransactionControl::Opens) if executed.is_ok() => self.in_transaction = true,
                    Some(TransactionControl::Closes) => self.in_transaction = false,
                    _ => {}
                }
                executed.map_err(|e| query_error(e, offset))?;
            }
        }
        Ok(Answer::new(rows))
    }
}

impl<L: Link> Session for DieselSession<L> {
    async fn batch(&mut self, sql: &str) -> Result<Answer, QueryError> {
        tracing::trace!(sql, "query");
        let pieces = pieces(sql);
        let controls = pieces.iter().any(|piece| piece.control.is_some());
        // Several pieces outside a transaction: one implicit transaction, as one simple-protocol string.
        if self.in_transaction || controls || pieces.len() < 2 {
            return self.send(sql, &pieces).await;
        }
        self.link.execute("BEGIN").await.map_err(|e| query_error(e, 0))?;
        match self.send(sql, &pieces).await {
            Ok(answer) => {
                self.link.execute("COMMIT").await.map_err(|e| query_error(e, 0))?;
                Ok(answer)
            }
            Err(error) => {
                let _ = self.link.execute("ROLLBACK").await;
                Err(error)
            }
        }
    }

    async fn pause(&mut self, duration: Duration) {
        self.link.pause(duration).await;
    }
}

/// A stretch of a query string sent in one call: byte offsets, whether it returns rows, and whether it opens or
/// closes a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    start: usize,
    end: usize,
    returns_rows: bool,
    control: Option<TransactionControl>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransactionControl {
    Opens,
    Closes,
}

/// The query string in pieces: each statement that returns rows or controls the transaction on its own, the
/// statements between them joined (their text as written, semicolons and comments included).
fn pieces(sql: &str) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    for (offset, statement) in split_statements(sql) {
        let words = words(statement);
        let upper: Vec<String> = words.iter().take(2).map(|w| w.to_ascii_uppercase()).collect();
        let first = upper.first().map(String::as_str).unwrap_or_default();
        let second = upper.get(1).map(String::as_str).unwrap_or_default();
        let control = match (first, second) {
            ("BEGIN" | "START", _) => Some(TransactionControl::Opens),
            ("ROLLBACK" | "ABORT", "TO") => None,
            ("COMMIT" | "END" | "ROLLBACK" | "ABORT", _) | ("PREPARE", "TRANSACTION") => {
                Some(TransactionControl::Closes)
            }
            _ => None,
        };
        let returns_rows = match first {
            "SELECT" | "VALUES" | "TABLE" | "SHOW" | "EXPLAIN" | "FETCH" => true,
            "WITH" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" => {
                first == "WITH" || words.iter().any(|w| w.eq_ignore_ascii_case("returning"))
            }
            _ => false,
        };
        let end = offset + statement.len();
        match pieces.last_mut() {
            Some(last) if !returns_rows && control.is_none() && !last.returns_rows && last.control.is_none() => {
                last.end = end;
            }
            _ => pieces.push(Piece { start: offset, end, returns_rows, control }),
        }
    }
    pieces
}

/// One row as diesel loaded it, its values turned back into PostgreSQL's text.
pub(crate) struct TextRow {
    names: Vec<String>,
    values: Vec<Option<String>>,
}

impl diesel::deserialize::QueryableByName<Pg> for TextRow {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> diesel::deserialize::Result<TextRow> {
        let count = row.field_count();
        let (mut names, mut values) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for index in 0..count {
            let field = diesel::row::Row::get(row, index).ok_or("a column went missing from its row")?;
            let name = field.field_name().unwrap_or("?column?").to_owned();
            let value = match field.value() {
                None => None,
                Some(raw) => Some(
                    text_of(raw.get_oid().get(), raw.as_bytes())
                        .map_err(|problem| format!("the diesel driver cannot read column {name}: {problem}"))?,
                ),
            };
            names.push(name);
            values.push(value);
        }
        Ok(TextRow { names, values })
    }
}

/// A value in PostgreSQL's binary format as its text format, for the types the engine's queries return; any
/// other type is an error naming it rather than a guess.
fn text_of(oid: u32, bytes: &[u8]) -> Result<String, String> {
    let fixed = |n: usize| -> Result<&[u8], String> {
        (bytes.len() == n).then_some(bytes).ok_or_else(|| format!("a value of type oid {oid} is not {n} bytes"))
    };
    let utf8 = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| format!("type oid {oid}: not UTF-8"));
    Ok(match oid {
        16 => (if fixed(1)?[0] != 0 { "t" } else { "f" }).to_owned(),
        21 => i16::from_be_bytes(fixed(2)?.try_into().unwrap_or_default()).to_string(),
        23 => i32::from_be_bytes(fixed(4)?.try_into().unwrap_or_default()).to_string(),
        20 => i64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default()).to_string(),
        26 | 28 => u32::from_be_bytes(fixed(4)?.try_into().unwrap_or_default()).to_string(),
        // text, varchar, name, bpchar, "char", unknown, json
        25 | 1043 | 19 | 1042 | 18 | 705 | 114 => utf8(bytes)?,
        // jsonb: a version byte, then the text
        3802 => utf8(bytes.get(1..).unwrap_or_default())?,
        17 => bytes.iter().fold(String::from("\\x"), |mut hex, b| {
            hex.push_str(&format!("{b:02x}"));
            hex
        }),
        // timestamptz and timestamp: microseconds since 2000-01-01, shown in UTC
        1184 | 1114 => {
            let micros = i64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default());
            timestamp_text(micros, oid == 1184)
        }
        other => return Err(format!("values of type oid {other} are not supported; cast the column to text")),
    })
}

/// PostgreSQL's ISO text of a timestamp given in microseconds since 2000-01-01 00:00 UTC.
fn timestamp_text(micros: i64, with_zone: bool) -> String {
    let (seconds, fraction) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    // 2000-01-01 is 10,957 days after 1970-01-01.
    let t = migrate_core::civil::date_time(seconds + 10_957 * 86_400);
    let mut text = format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second);
    if fraction != 0 {
        text.push_str(format!(".{fraction:06}").trim_end_matches('0'));
    }
    if with_zone {
        text.push_str("+00");
    }
    text
}

/// diesel's error as the engine's, its position moved by `offset` characters (where the piece starts in the
/// query string).
fn query_error(error: DieselError, offset: usize) -> QueryError {
    let DieselError::DatabaseError(kind, information) = error else {
        return QueryError::Connection { message: error.to_string() };
    };
    if matches!(kind, DatabaseErrorKind::ClosedConnection) {
        return QueryError::Connection { message: information.message().to_owned() };
    }
    QueryError::Server(ServerError {
        code: information.sqlstate().and_then(|code| SqlState::new(code.as_str())),
        message: information.message().to_owned(),
        detail: information.details().map(str::to_owned),
        hint: information.hint().map(str::to_owned),
        position: information.statement_position().and_then(|p| usize::try_from(p).ok()).map(|p| p + offset),
    })
}

/// The schema check on a diesel connection, sync or async.
pub(crate) async fn check_schema_on<L: Link>(link: L, schema: &SchemaName) -> Result<(), SchemaCheckError> {
    let mut session = DieselSession::new(link);
    let answer = session.batch(&check_sql(schema, SearchPathScope::Transaction)).await;
    judge_answer(schema, SearchPathScope::Transaction, answer)
}

#[cfg(feature = "diesel")]
mod sync {
    use super::*;
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection, RunQueryDsl};

    impl Link for &mut PgConnection {
        async fn execute(&mut self, sql: &str) -> Result<(), DieselError> {
            self.batch_execute(sql)
        }

        async fn load(&mut self, sql: &str) -> Result<Vec<TextRow>, DieselError> {
            diesel::sql_query(sql).load(&mut **self)
        }

        async fn pause(&mut self, duration: Duration) {
            std::thread::sleep(duration);
        }
    }

    /// [`in_schema_with`](crate::in_schema_with) on diesel: `work` in a diesel transaction whose `search_path` is
    /// `schema`, then `extra`, set with `SET LOCAL`, so it holds behind a transaction pooler and ends with the
    /// transaction; committed when `work` returns `Ok`, rolled back otherwise.
    pub fn in_schema_diesel<T, E>(
        connection: &mut PgConnection,
        schema: &SchemaName,
        extra: &[SchemaName],
        work: impl FnOnce(&mut PgConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DieselError>,
    {
        let set = schema.set_local_search_path_sql_with(extra);
        connection.transaction(|connection| {
            connection.batch_execute(&set)?;
            work(connection)
        })
    }

    /// [`check_schema`](crate::check_schema) on a diesel connection: in one round trip, that a transaction opened
    /// as [`in_schema_diesel`] opens it resolves unqualified names in `schema`.
    pub fn check_schema_diesel(connection: &mut PgConnection, schema: &SchemaName) -> Result<(), SchemaCheckError> {
        crate::session::block_on_ready(check_schema_on(connection, schema))
    }
}

#[cfg(feature = "diesel")]
pub use sync::{check_schema_diesel, in_schema_diesel};

#[cfg(feature = "diesel-async")]
mod non_blocking {
    use super::*;
    use diesel_async::{
        AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection, TransactionManager,
    };

    impl Link for &mut AsyncPgConnection {
        async fn execute(&mut self, sql: &str) -> Result<(), DieselError> {
            self.batch_execute(sql).await
        }

        async fn load(&mut self, sql: &str) -> Result<Vec<TextRow>, DieselError> {
            diesel::sql_query(sql).load(&mut **self).await
        }

        async fn pause(&mut self, duration: Duration) {
            tokio::time::sleep(duration).await;
        }
    }

    /// [`in_schema_diesel`](crate::in_schema_diesel) on diesel-async: `work` (an async closure) in a diesel-async
    /// transaction whose `search_path` is `schema`, then `extra`, set with `SET LOCAL`; committed when `work`
    /// returns `Ok`, rolled back otherwise.
    pub async fn in_schema_diesel_async<T, E>(
        connection: &mut AsyncPgConnection,
        schema: &SchemaName,
        extra: &[SchemaName],
        work: impl for<'r> AsyncFnOnce(&'r mut AsyncPgConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DieselError>,
    {
        type Manager = AnsiTransactionManager;
        Manager::begin_transaction(connection).await?;
        let outcome = match connection.batch_execute(&schema.set_local_search_path_sql_with(extra)).await {
            Ok(()) => work(connection).await,
            Err(error) => Err(error.into()),
        };
        match outcome {
            Ok(value) => {
                Manager::commit_transaction(connection).await?;
                Ok(value)
            }
            Err(error) => {
                // What went wrong is `work`'s error; a failed rollback leaves diesel-async's state broken, and it
                // says so on the connection's next use.
                let _ = Manager::rollback_transaction(connection).await;
                Err(error)
            }
        }
    }

    /// [`check_schema_diesel`](crate::check_schema_diesel) on diesel-async.
    pub async fn check_schema_diesel_async(
        connection: &mut AsyncPgConnection,
        schema: &SchemaName,
    ) -> Result<(), SchemaCheckError> {
        check_schema_on(connection, schema).await
    }
}

#[cfg(feature = "diesel-async")]
pub use non_blocking::{check_schema_diesel_async, in_schema_diesel_async};

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(sql: &str) -> Vec<(&str, bool, Option<TransactionControl>)> {
        pieces(sql).into_iter().map(|p| (sql[p.start..p.end].trim(), p.returns_rows, p.control)).collect()
    }

    #[test]
    fn statements_that_return_nothing_travel_together_as_written() {
        let sql =
            "SELECT set_config('a', 'b', true);\nCREATE TABLE t (id int);\n-- note\nCREATE INDEX i ON t (id);\n;\n\
                   INSERT INTO h VALUES (1) RETURNING ms;\nINSERT INTO h VALUES (2);";
        assert_eq!(
            shapes(sql),
            [
                ("SELECT set_config('a', 'b', true)", true, None),
                ("CREATE TABLE t (id int);\n-- note\nCREATE INDEX i ON t (id)", false, None),
                ("INSERT INTO h VALUES (1) RETURNING ms", true, None),
                ("INSERT INTO h VALUES (2)", false, None),
            ]
        );
    }

    #[test]
    fn transaction_control_stands_alone() {
        let sql = "BEGIN; SET LOCAL x = 1; ROLLBACK TO SAVEPOINT s; COMMIT; START TRANSACTION; END";
        assert_eq!(
            shapes(sql),
            [
                ("BEGIN", false, Some(TransactionControl::Opens)),
                ("SET LOCAL x = 1; ROLLBACK TO SAVEPOINT s", false, None),
                ("COMMIT", false, Some(TransactionControl::Closes)),
                ("START TRANSACTION", false, Some(TransactionControl::Opens)),
                ("END", false, Some(TransactionControl::Closes)),
            ]
        );
    }

    #[test]
    fn binary_values_read_as_postgres_text() {
        assert_eq!(text_of(16, &[1]).unwrap(), "t");
        assert_eq!(text_of(20, &(-42i64).to_be_bytes()).unwrap(), "-42");
        assert_eq!(text_of(19, b"tenant-1").unwrap(), "tenant-1");
        assert_eq!(text_of(3802, b"\x01{\"a\": 1}").unwrap(), "{\"a\": 1}");
        assert_eq!(text_of(17, &[0xde, 0xad]).unwrap(), "\\xdead");
        // 2026-12-03 18:23:34.5 UTC, and the epoch itself.
        let micros: i64 = (9_833 * 86_400 + 18 * 3_600 + 23 * 60 + 34) * 1_000_000 + 500_000;
        assert_eq!(text_of(1184, &micros.to_be_bytes()).unwrap(), "2026-12-03 18:23:34.5+00");
        assert_eq!(text_of(1114, &0i64.to_be_bytes()).unwrap(), "2000-01-01 00:00:00");
        assert_eq!(text_of(1114, &(-86_400_000_000i64).to_be_bytes()).unwrap(), "1999-12-31 00:00:00");
        let error = text_of(1700, &[0, 0]).unwrap_err();
        assert!(error.contains("oid 1700") && error.contains("cast the column to text"), "{error}");
        assert!(text_of(23, &[0, 1]).is_err(), "a value of the wrong length is an error, not a panic");
    }
}
