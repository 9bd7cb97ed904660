//! Other migration tools' history tables, for `adopt`: which table each tool keeps, how its rows are read, and how
//! its checksums are recomputed from the embedded files. Reading is SQL built here; judging the rows is pure
//! (the planner's job, with [`ForeignRow::checksum_mismatch`]).
//!
//! - sqlx: `_sqlx_migrations`, `bigint` versions; its checksum, SHA-384 of the up file's bytes exactly as read
//!   (sqlx's default, without `ignored-chars`), is verified.
//! - diesel: `__diesel_schema_migrations`, `varchar` versions (the folder's digits, `-` removed); no checksum kept.
//! - refinery: `refinery_schema_history`, `int4` versions (`int8` with refinery's `int8-versions`); its checksum,
//!   SipHash-1-3 with zero keys over name, version and SQL as `refinery_core::Migration::unapplied` computes it, is
//!   verified for either version width.

use std::hash::{Hash, Hasher};

use migrate_core::Migration;

use crate::schema::{quote_ident, quote_literal, SchemaName};
use crate::session::Answer;

/// A migration tool whose history `adopt` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    /// sqlx (`sqlx migrate run`, `sqlx::migrate!`).
    Sqlx,
    /// diesel (`diesel migration run`, `diesel_migrations`).
    Diesel,
    /// refinery (`refinery migrate`, `embed_migrations!`).
    Refinery,
}

impl Tool {
    /// `sqlx`, `diesel` or `refinery`.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Sqlx => "sqlx",
            Tool::Diesel => "diesel",
            Tool::Refinery => "refinery",
        }
    }

    /// The history table the tool keeps in the schema.
    pub fn table(self) -> &'static str {
        match self {
            Tool::Sqlx => "_sqlx_migrations",
            Tool::Diesel => "__diesel_schema_migrations",
            Tool::Refinery => "refinery_schema_history",
        }
    }

    /// `"schema"."table"`.
    pub(crate) fn qualified(self, schema: &SchemaName) -> String {
        format!("{}.{}", schema.quoted(), quote_ident(self.table()))
    }

    /// Whether the tool's table exists in the schema (column `exists`): read back by [`Tool::exists_in`].
    pub(crate) fn exists_sql(self, schema: &SchemaName) -> String {
        format!("SELECT to_regclass({}) IS NOT NULL AS exists", quote_literal(&self.qualified(schema)))
    }

    /// What [`Tool::exists_sql`] found.
    pub(crate) fn exists_in(self, answer: &Answer) -> bool {
        answer.flag("exists")
    }

    /// The tool's rows as text columns `version`, `name`, `success` and `checksum`.
    pub(crate) fn select_sql(self, schema: &SchemaName) -> String {
        let columns = match self {
            Tool::Sqlx => "version::text AS version, description AS name, success, encode(checksum, 'hex') AS checksum",
            Tool::Diesel => "version::text AS version, NULL::text AS name, true AS success, NULL::text AS checksum",
            Tool::Refinery => "version::text AS version, name, true AS success, checksum::text AS checksum",
        };
        format!("SELECT {columns} FROM {} ORDER BY 1", self.qualified(schema))
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Another tool's history as read from its table (under the migration lock): the planning input of
/// [`crate::Operation::Adopt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignHistory {
    /// Whose table.
    pub tool: Tool,
    /// Its rows, in the order read.
    pub rows: Vec<ForeignRow>,
}

/// One row of another tool's history table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignRow {
    /// The version, as a number (diesel's text with `-` removed).
    pub version: i64,
    /// The name the tool recorded (sqlx's description, refinery's name; none for diesel).
    pub name: Option<String>,
    /// False for a sqlx row whose migration failed.
    pub success: bool,
    /// The checksum the tool recorded, as text (sqlx: hex SHA-384; refinery: a decimal `u64`).
    pub checksum: Option<String>,
}

impl ForeignRow {
    /// The row's name for messages: the recorded name, else the version.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.version.to_string())
    }

    /// Recompute the tool's checksum from the embedded migration; `Some((recorded, embedded))` when they differ,
    /// `None` when they agree or the tool keeps none.
    pub fn checksum_mismatch(&self, tool: Tool, migration: &Migration) -> Option<(String, String)> {
        let recorded = self.checksum.as_deref()?;
        let candidates = match tool {
            Tool::Sqlx => vec![sqlx_checksum(&migration.up.sql)],
            Tool::Refinery => refinery_checksums(&migration.name, migration.version, &migration.up.sql),
            Tool::Diesel => return None,
        };
        if candidates.iter().any(|c| c.eq_ignore_ascii_case(recorded)) {
            return None;
        }
        Some((recorded.to_owned(), candidates[0].clone()))
    }
}

/// sqlx's checksum: SHA-384 of the file's text exactly as read, as hex.
pub fn sqlx_checksum(sql: &str) -> String {
    use sha2::{Digest, Sha384};
    Sha384::digest(sql.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// refinery's checksum (`refinery_core::Migration::unapplied`): SipHash-1-3 with zero keys over `name`, `version`
/// and `sql` through `Hash`, printed as a decimal `u64`; once with the default `i32` versions, once with
/// `int8-versions`' `i64`.
pub fn refinery_checksums(name: &str, version: i64, sql: &str) -> Vec<String> {
    let hash = |write_version: &dyn Fn(&mut siphasher::sip::SipHasher13)| {
        let mut hasher = siphasher::sip::SipHasher13::new();
        name.hash(&mut hasher);
        write_version(&mut hasher);
        sql.hash(&mut hasher);
        hasher.finish().to_string()
    };
    let mut sums = vec![hash(&|h| version.hash(h))];
    if let Ok(narrow) = i32::try_from(version) {
        sums.insert(0, hash(&|h| narrow.hash(h)));
    }
    sums
}

/// The rows a [`Tool::select_sql`] query returned; `Err` names the first row that cannot be read.
pub(crate) fn parse_rows(answer: &Answer) -> Result<Vec<ForeignRow>, String> {
    answer
        .rows()
        .iter()
        .map(|row| {
            let text = |column: &str| row.get(column).map(str::to_owned);
            let raw = text("version").ok_or("version is null")?;
            let digits: String = raw.chars().filter(|c| *c != '-').collect();
            let version = digits.parse::<i64>().map_err(|_| format!("version {raw:?} is not a number"))?;
            Ok(ForeignRow {
                version,
                name: text("name"),
                success: text("success").as_deref() != Some("f"),
                checksum: text("checksum"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrate_core::Script;

    #[test]
    fn sqlx_hashes_the_bytes_as_read() {
        // sha384("") is well known.
        assert!(sqlx_checksum("").starts_with("38b060a751ac96384cd9327eb1b1e36a"));
        assert_ne!(sqlx_checksum("a\r\n"), sqlx_checksum("a\n"), "no normalisation: sqlx hashes what it read");
    }

    #[test]
    fn refinery_checksum_matches_its_definition() {
        let mut hasher = siphasher::sip::SipHasher13::new();
        "init".to_owned().hash(&mut hasher);
        1_i32.hash(&mut hasher);
        "CREATE TABLE t ();".hash(&mut hasher);
        let expected = hasher.finish().to_string();
        let sums = refinery_checksums("init", 1, "CREATE TABLE t ();");
        assert_eq!(sums[0], expected);
        assert_eq!(sums.len(), 2, "i32 and i64 versions");
        let m = Migration {
            version: 1,
            name: "init".into(),
            up: Script::new("V1__init.sql", "CREATE TABLE t ();"),
            down: None,
        };
        let row = ForeignRow { version: 1, name: Some("init".into()), success: true, checksum: Some(sums[1].clone()) };
        assert_eq!(row.checksum_mismatch(Tool::Refinery, &m), None);
        let edited = ForeignRow { checksum: Some("12".into()), ..row };
        assert_eq!(edited.checksum_mismatch(Tool::Refinery, &m), Some(("12".into(), expected)));
    }

    #[test]
    fn names_are_quoted() {
        let schema = SchemaName::new("tenant\"1").unwrap();
        assert_eq!(Tool::Diesel.qualified(&schema), r#""tenant""1"."__diesel_schema_migrations""#);
        assert!(Tool::Sqlx.exists_sql(&schema).contains(r#"'"tenant""1"."_sqlx_migrations"'"#));
    }
}
