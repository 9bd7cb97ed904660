//! The lint `embed_migrations!` runs on every up file: statements that take a lock a running service waits on
//! (or rewrite a table under it) on a table the migration did not create, found with PostgreSQL's own parser
//! (libpg_query) rather than patterns. A file opts out of one rule with a line `-- migrate:allow <rule>`; a file
//! that does not parse is an error with its line and column.
//!
//! One step a module: `syntax` parses, `rules` judges the statements, this module ties them to a script.

mod rules;
mod syntax;

pub use rules::Rule;

use migrate_core::Script;

/// What is wrong with a script, at its line and column (one-based, in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A statement breaks a rule and the file does not allow it.
    #[error(
        "{file}:{line}:{column}: {rule}: {what}; {fix}, or if the table is small or unused, add `-- migrate:allow \
         {rule}` to the file",
        what = rule.what(),
        fix = rule.fix()
    )]
    Breaks {
        /// The file.
        file: String,
        /// Where the statement starts.
        line: usize,
        /// Where the statement starts.
        column: usize,
        /// The rule.
        rule: Rule,
    },
    /// PostgreSQL's parser rejects the file.
    #[error("{file}:{line}:{column}: {message} (PostgreSQL's parser)")]
    Syntax {
        /// The file.
        file: String,
        /// Where the parser stopped.
        line: usize,
        /// Where the parser stopped.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A `-- migrate:allow` line names no rule of this lint.
    #[error("{file}:{line}: `-- migrate:allow {name}` names no lint rule; the rules are: {}", Rule::names().join(", "))]
    UnknownRule {
        /// The file.
        file: String,
        /// The marker's line.
        line: usize,
        /// The name given.
        name: String,
    },
}

/// Lint one script: every statement that breaks a rule the file does not allow, in order; or why it cannot be
/// read.
pub fn lint(script: &Script) -> Vec<Problem> {
    let file = script.file.to_string();
    let mut allowed = Vec::new();
    let mut problems = Vec::new();
    for (line, name) in script.allowed_rules() {
        match Rule::from_name(name) {
            Some(rule) => allowed.push(rule),
            None => problems.push(Problem::UnknownRule { file: file.clone(), line, name: name.to_owned() }),
        }
    }
    let sql = script.sql.as_ref();
    match syntax::parse(sql) {
        Ok(statements) => {
            for (offset, rule) in rules::judge(&statements) {
                if !allowed.contains(&rule) {
                    let (line, column) = line_and_column(sql, statement_start(sql, offset));
                    problems.push(Problem::Breaks { file: file.clone(), line, column, rule });
                }
            }
        }
        Err(syntax::SyntaxError { message, byte_offset }) => {
            let (line, column) = line_and_column(sql, byte_offset);
            problems.push(Problem::Syntax { file, line, column, message });
        }
    }
    problems
}

/// Where the statement whose text begins at `offset` really starts: past white space and comments, which the
/// parser counts as part of it.
fn statement_start(sql: &str, mut offset: usize) -> usize {
    loop {
        let rest = &sql[offset..];
        let trimmed = rest.trim_start();
        offset += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            offset += trimmed.find('\n').map_or(trimmed.len(), |n| n + 1);
        } else if trimmed.starts_with("/*") {
            offset += trimmed.find("*/").map_or(trimmed.len(), |n| n + 2);
        } else {
            return offset;
        }
    }
}

/// The one-based line and column (in characters) of byte `offset` of `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(sql: &str) -> Vec<String> {
        lint(&Script::new("m/2_x.up.sql", sql.to_owned())).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_finding_names_file_line_column_rule_and_the_way_out() {
        let found = problems("-- index the orders\nCREATE INDEX orders_by_day ON orders (day);\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("m/2_x.up.sql:2:1: index-without-concurrently: "), "{}", found[0]);
        assert!(found[0].contains("add `-- migrate:allow index-without-concurrently` to the file"), "{}", found[0]);
    }

    #[test]
    fn an_allow_line_opts_out_of_its_rule_only() {
        let sql = "-- migrate:allow index-without-concurrently\nCREATE INDEX i ON t (x);\nALTER TABLE t ALTER COLUMN x SET NOT NULL;";
        let found = problems(sql);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("m/2_x.up.sql:3:1: set-not-null: "), "{}", found[0]);
        let typo = problems("-- migrate:allow index-without-concurency\nSELECT 1;");
        assert_eq!(typo.len(), 1);
        assert!(typo[0].starts_with("m/2_x.up.sql:1: `-- migrate:allow index-without-concurency` names no lint rule"));
    }

    #[test]
    fn a_syntax_error_is_placed_where_the_parser_stopped() {
        let found = problems("CREATE TABLE t (id int);\n\nSELEC 1;\n");
        assert_eq!(found, ["m/2_x.up.sql:3:1: syntax error at or near \"SELEC\" (PostgreSQL's parser)"]);
        let found = problems("CREATE TABLE t (\n  id int,\n  name text,,\n);");
        assert_eq!(found, ["m/2_x.up.sql:3:13: syntax error at or near \",\" (PostgreSQL's parser)"]);
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(line_and_column("é\nçã x", "é\nçã ".len()), (2, 4));
        assert_eq!(statement_start("  -- c\n /* d */ SELECT 1", 0), "  -- c\n /* d */ ".len());
    }
}
