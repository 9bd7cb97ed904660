//! Schema names and SQL quoting: the one place where user-supplied names meet SQL text.

use std::fmt;

/// A validated PostgreSQL schema name, used exactly as given (case and punctuation kept) and always quoted.
///
/// Refused: empty names, names over 63 bytes (PostgreSQL would silently truncate them), the reserved `pg_` prefix
/// (any case) and `information_schema`, control characters (NUL, newline, ...) and leading or trailing white space.
///
/// ```
/// use migrate_runtime::SchemaName;
///
/// let tenant = SchemaName::new("tenant-1").unwrap();
/// assert_eq!(tenant.quoted(), r#""tenant-1""#);
/// let hostile = SchemaName::new(r#"x"; DROP SCHEMA public; --"#).unwrap();
/// assert_eq!(hostile.quoted(), r#""x""; DROP SCHEMA public; --""#);
/// assert!(SchemaName::new("pg_temp").is_err());
/// assert!(SchemaName::new(&"a".repeat(64)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaName(String);

/// Why a schema (or history table) name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} name {name:?}: {problem}")]
pub struct InvalidName {
    /// `schema` or `history table`.
    pub what: &'static str,
    /// The name as given.
    pub name: String,
    /// What is wrong and what to do.
    pub problem: NameProblem,
}

/// What is wrong with a refused name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// Zero bytes long.
    #[error("it is empty")]
    Empty,
    /// Longer than PostgreSQL's 63-byte identifier limit.
    #[error("it is {0} bytes long; PostgreSQL names hold at most 63 bytes and longer ones would be truncated")]
    TooLong(usize),
    /// Starts with `pg_`, which PostgreSQL reserves for system schemas.
    #[error("the prefix `pg_` is reserved for PostgreSQL's system schemas")]
    ReservedPrefix,
    /// `information_schema`.
    #[error("it is a reserved system schema")]
    Reserved,
    /// Holds a control character such as NUL or a newline.
    #[error("it contains a control character; use printable characters only")]
    ControlCharacter,
    /// Starts or ends with white space.
    #[error("it starts or ends with white space")]
    SurroundingWhitespace,
}

impl SchemaName {
    /// Validate `name` as a schema name.
    pub fn new(name: &str) -> Result<SchemaName, InvalidName> {
        validate_identifier(name, "schema")?;
        let problem = if name.len() >= 3 && name.as_bytes()[..3].eq_ignore_ascii_case(b"pg_") {
            Some(NameProblem::ReservedPrefix)
        } else if name.eq_ignore_ascii_case("information_schema") {
            Some(NameProblem::Reserved)
        } else {
            None
        };
        match problem {
            Some(problem) => Err(InvalidName { what: "schema", name: name.to_owned(), problem }),
            None => Ok(SchemaName(name.to_owned())),
        }
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier.
    pub fn quoted(&self) -> String {
        quote_ident(&self.0)
    }

    /// A startup `options` value that sets `search_path` to this schema, for the application's own connections.
    ///
    /// Which way to put the application's queries in its schema:
    ///
    /// - **Direct connection, or a pooler in session mode**: this startup option. The setting lasts for the whole
    ///   session, so every query of the connection resolves unqualified names in the schema.
    /// - **A pooler in transaction mode (PgBouncer `pool_mode = transaction`)**: the startup option does not
    ///   work. PgBouncer refuses it (`unsupported startup parameter: options`) or, with
    ///   `ignore_startup_parameters = options`, drops it silently, and the queries resolve in whatever
    ///   `search_path` the server connection has (usually `public`). Run each transaction through
    ///   [`in_schema`](crate::in_schema) (or [`begin_in_schema`](crate::begin_in_schema)), which opens it with
    ///   [`SchemaName::set_local_search_path_sql`], and check at boot with [`check_schema`](crate::check_schema).
    ///
    /// Either way, [`check_session_schema`](crate::check_session_schema) (startup option) or
    /// [`check_schema`](crate::check_schema) (per transaction) tells at boot whether names really resolve in the
    /// schema.
    ///
    /// ```
    /// use migrate_runtime::SchemaName;
    ///
    /// let schema = SchemaName::new("tenant 1").unwrap();
    /// assert_eq!(schema.search_path_option(), r#"-c search_path="tenant\ 1""#);
    /// let mut config: postgres::Config = "host=127.0.0.1 user=postgres".parse().unwrap();
    /// config.options(&schema.search_path_option());
    /// ```
    pub fn search_path_option(&self) -> String {
        self.search_path_option_with(&[])
    }

    /// [`SchemaName::search_path_option`] with shared schemas after this one
    /// (`-c search_path="tenant-1","extensions"`), so extension types and functions installed once in a shared
    /// schema resolve while objects are still created in this schema, the first in the path.
    ///
    /// ```
    /// use migrate_runtime::SchemaName;
    ///
    /// let schema = SchemaName::new("tenant-1").unwrap();
    /// let shared = [SchemaName::new("extensions").unwrap()];
    /// assert_eq!(schema.search_path_option_with(&shared), r#"-c search_path="tenant-1","extensions""#);
    /// ```
    pub fn search_path_option_with(&self, extra: &[SchemaName]) -> String {
        // The server splits `options` on white space; a backslash escapes the next character.
        let mut option = String::from("-c search_path=");
        for c in self.search_path_list(extra, ",").chars() {
            if c.is_whitespace() || c == '\\' {
                option.push('\\');
            }
            option.push(c);
        }
        option
    }

    /// `SET LOCAL search_path = "schema"`: sets `search_path` to this schema until the end of the current
    /// transaction, so it holds for exactly the transaction a transaction-pooling proxy keeps on one server
    /// connection, and leaves nothing behind for the next client of that connection. See
    /// [`SchemaName::search_path_option`] for when to use which.
    ///
    /// ```
    /// use migrate_runtime::SchemaName;
    ///
    /// let schema = SchemaName::new(r#"tenant "1""#).unwrap();
    /// assert_eq!(schema.set_local_search_path_sql(), r#"SET LOCAL search_path = "tenant ""1""""#);
    /// ```
    pub fn set_local_search_path_sql(&self) -> String {
        self.set_local_search_path_sql_with(&[])
    }

    /// [`SchemaName::set_local_search_path_sql`] with shared schemas after this one.
    ///
    /// ```
    /// use migrate_runtime::SchemaName;
    ///
    /// let schema = SchemaName::new("tenant-1").unwrap();
    /// let shared = [SchemaName::new("public").unwrap()];
    /// assert_eq!(schema.set_local_search_path_sql_with(&shared), r#"SET LOCAL search_path = "tenant-1", "public""#);
    /// ```
    pub fn set_local_search_path_sql_with(&self, extra: &[SchemaName]) -> String {
        format!("SET LOCAL search_path = {}", self.search_path_list(extra, ", "))
    }

    /// This schema, then `extra` (without repeating this one), quoted and joined with `separator`.
    pub(crate) fn search_path_list(&self, extra: &[SchemaName], separator: &str) -> String {
        std::iter::once(self)
            .chain(extra.iter().filter(|e| *e != self))
            .map(SchemaName::quoted)
            .collect::<Vec<_>>()
            .join(separator)
    }

    /// Parse a comma-separated list of schema names (`public,extensions`), each validated; empty items are skipped.
    ///
    /// ```
    /// use migrate_runtime::SchemaName;
    ///
    /// let list = SchemaName::parse_list("public, extensions").unwrap();
    /// assert_eq!(list.iter().map(SchemaName::as_str).collect::<Vec<_>>(), ["public", "extensions"]);
    /// assert!(SchemaName::parse_list("public,pg_catalog").is_err());
    /// ```
    pub fn parse_list(list: &str) -> Result<Vec<SchemaName>, InvalidName> {
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(SchemaName::new).collect()
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SchemaName {
    type Err = InvalidName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        SchemaName::new(name)
    }
}

impl AsRef<str> for SchemaName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The checks every identifier we create must pass (schema names and the history table name).
pub fn validate_identifier(name: &str, what: &'static str) -> Result<(), InvalidName> {
    let problem = if name.is_empty() {
        Some(NameProblem::Empty)
    } else if name.len() > 63 {
        Some(NameProblem::TooLong(name.len()))
    } else if name.chars().any(char::is_control) {
        Some(NameProblem::ControlCharacter)
    } else if name.trim() != name {
        Some(NameProblem::SurroundingWhitespace)
    } else {
        None
    };
    match problem {
        Some(problem) => Err(InvalidName { what, name: name.to_owned(), problem }),
        None => Ok(()),
    }
}

/// Quote an identifier for SQL: wrap in double quotes, double any double quote.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote a string literal for SQL, safe whatever `standard_conforming_strings` is: text with a backslash uses the
/// `E'...'` form with backslashes doubled, as PostgreSQL's own `quote_literal` does.
pub fn quote_literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    if quoted.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(name: &str) -> NameProblem {
        SchemaName::new(name).unwrap_err().problem
    }

    #[test]
    fn accepts_names_exactly_as_given() {
        for name in ["dev", "tenant-1", "Tenant", "a b", "x'y", "x\"y", "x;y", "ünïcødé", "public", &"a".repeat(63)]
        {
            assert_eq!(SchemaName::new(name).unwrap().as_str(), name);
        }
        // 21 three-byte characters are 63 bytes: allowed; one more byte is not.
        assert!(SchemaName::new(&"€".repeat(21)).is_ok());
        assert_eq!(problem(&format!("{}a", "€".repeat(21))), NameProblem::TooLong(64));
    }

    #[test]
    fn refuses_bad_names_with_a_reason() {
        assert_eq!(problem(""), NameProblem::Empty);
        assert_eq!(problem(&"a".repeat(64)), NameProblem::TooLong(64));
        assert_eq!(problem("pg_catalog"), NameProblem::ReservedPrefix);
        assert_eq!(problem("PG_x"), NameProblem::ReservedPrefix);
        assert_eq!(problem("information_schema"), NameProblem::Reserved);
        assert_eq!(problem("a\0b"), NameProblem::ControlCharacter);
        assert_eq!(problem("a\nb"), NameProblem::ControlCharacter);
        assert_eq!(problem(" dev"), NameProblem::SurroundingWhitespace);
        assert_eq!(
            SchemaName::new("pg_x").unwrap_err().to_string(),
            "invalid schema name \"pg_x\": the prefix `pg_` is reserved for PostgreSQL's system schemas"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\'b"), r"E'a\\''b'");
    }
}
