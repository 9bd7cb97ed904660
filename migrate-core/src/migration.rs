use std::borrow::Cow;

use crate::checksum::Checksum;

/// The first-line marker of a script that must run outside a transaction (`CREATE INDEX CONCURRENTLY`, ...).
pub const NO_TRANSACTION_MARKER: &str = "-- migrate:no-transaction";

/// What a line that opts its file out of a lint rule starts with: `-- migrate:allow set-not-null` (several rules,
/// separated by spaces or commas, may follow). It may stand on any line.
pub const ALLOW_MARKER: &str = "-- migrate:allow";

/// One migration: a version, a name, its up script and its optional down script.
///
/// `embed_migrations!` builds these as `static` data (every field borrowed); [`crate::resolve_folder`] builds them
/// owned at run time. Both come from the same resolver, so they compare equal.
///
/// ```
/// use migrate_core::{Checksum, Migration, Script};
///
/// let up = Script::new("migrations/1_init.up.sql", "CREATE TABLE t (id int);\n");
/// let migration = Migration { version: 1, name: "init".into(), up, down: None };
/// assert_eq!(migration.up.checksum, Checksum::of("CREATE TABLE t (id int);\n"));
/// assert!(!migration.up.no_transaction);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Positive version; the set is ordered by it numerically.
    pub version: i64,
    /// The descriptive part of the file name.
    pub name: Cow<'static, str>,
    /// The script that applies the migration.
    pub up: Script,
    /// The script that reverts it, when there is one.
    pub down: Option<Script>,
}

/// One SQL file of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Path of the file relative to the crate that embeds it, with `/` separators (`migrations/1_init.up.sql`).
    pub file: Cow<'static, str>,
    /// The SQL, as written in the file.
    pub sql: Cow<'static, str>,
    /// SHA-256 of the normalised SQL; see [`Checksum`].
    pub checksum: Checksum,
    /// The file starts with [`NO_TRANSACTION_MARKER`].
    pub no_transaction: bool,
}

impl Script {
    /// Build a script from its file path and text, computing the checksum and reading the marker. Validation of the
    /// text (emptiness, marker placement) is the resolver's job.
    ///
    /// ```
    /// let script = migrate_core::Script::new("m/2_idx.up.sql", "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (id);");
    /// assert!(script.no_transaction);
    /// ```
    pub fn new(file: impl Into<Cow<'static, str>>, sql: impl Into<Cow<'static, str>>) -> Script {
        let sql = sql.into();
        Script { file: file.into(), checksum: Checksum::of(&sql), no_transaction: has_marker_on_first_line(&sql), sql }
    }

    /// A script as `embed_migrations!` writes it, every field given (the checksum computed at compile time): one
    /// call instead of a struct expression with two `Cow` constructors, less for rustc to check in each of
    /// thousands of scripts.
    #[doc(hidden)]
    pub const fn embedded(file: &'static str, sql: &'static str, checksum: [u8; 32], no_transaction: bool) -> Script {
        Script { file: Cow::Borrowed(file), sql: Cow::Borrowed(sql), checksum: Checksum(checksum), no_transaction }
    }
}

impl Migration {
    /// A migration as `embed_migrations!` writes it (see [`Script::embedded`]).
    #[doc(hidden)]
    pub const fn embedded(version: i64, name: &'static str, up: Script, down: Option<Script>) -> Migration {
        Migration { version, name: Cow::Borrowed(name), up, down }
    }

    /// The file name a person recognises the migration by: its up file.
    pub fn file(&self) -> &str {
        &self.up.file
    }
}

pub(crate) fn has_marker_on_first_line(sql: &str) -> bool {
    let sql = sql.strip_prefix('\u{feff}').unwrap_or(sql);
    sql.lines().next().is_some_and(is_marker_line)
}

/// A line that is, or tries to be, the marker (`--migrate:no-transaction` and `-- MIGRATE:no-transaction` count, so
/// a typo is reported rather than silently running the script in a transaction).
pub(crate) fn looks_like_marker(line: &str) -> bool {
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    compact.to_ascii_lowercase().starts_with("--migrate:")
}

pub(crate) fn is_marker_line(line: &str) -> bool {
    line.trim_end() == NO_TRANSACTION_MARKER
}

/// The rule names of a `-- migrate:allow ...` line; `None` for any other line.
pub(crate) fn allow_marker_rules(line: &str) -> Option<Vec<&str>> {
    let rest = line.trim().strip_prefix(ALLOW_MARKER)?;
    // `-- migrate:allowed` is not the marker.
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(rest.split(|c: char| c.is_whitespace() || c == ',').filter(|rule| !rule.is_empty()).collect())
}

impl Script {
    /// The lint rules the script opts out of with `-- migrate:allow ...` lines, each with its one-based line, in
    /// the order written (names unchecked: the lint knows its rules).
    pub fn allowed_rules(&self) -> Vec<(usize, &str)> {
        self.sql
            .lines()
            .enumerate()
            .filter_map(|(index, line)| Some((index + 1, allow_marker_rules(line)?)))
            .flat_map(|(line, rules)| rules.into_iter().map(move |rule| (line, rule)))
            .collect()
    }
}
