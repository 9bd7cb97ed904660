//! A draft script for the simple differences, for a person to review: the tool itself never runs it.

use std::collections::BTreeSet;

use super::diff::Difference;
use super::object::{Definition, ObjectKind, ObjectName, SCHEMA_PLACEHOLDER};
use migrate_runtime::{quote_ident, quote_literal, SchemaName};

/// A SQL script that would bring schema B (`target`) towards A for the simple differences, given those between A
/// and B (from [`diff_schemas`](crate::diff_schemas), or one schema's [`Outcome::Differs`](crate::Outcome)).
///
/// Handled: a missing index (its definition re-targeted at `target`), a missing constraint (`ALTER TABLE ... ADD
/// CONSTRAINT`, which also builds its index), a missing column (`ALTER TABLE ... ADD COLUMN` with its type,
/// default, identity or generation and `NOT NULL`; appended last, so the table's column order matches only when
/// it was the last column), a changed column default (`SET DEFAULT` / `DROP DEFAULT`) and an index left invalid
/// (`REINDEX INDEX`). Every other difference is listed as a comment. Every identifier is quoted; definitions come
/// from the server's own `pg_get_*def` output.
///
/// ```
/// use migrate_ops::{suggest_sql, Definition, Difference, ObjectKind, ObjectName};
/// use migrate_runtime::SchemaName;
///
/// let missing = Difference::Missing {
///     kind: ObjectKind::Index,
///     name: ObjectName::new("orders_customer_id_idx"),
///     definition: Definition::new([("definition", "CREATE INDEX orders_customer_id_idx ON <schema>.orders USING btree (customer_id)")]),
/// };
/// let sql = suggest_sql(&[missing], &SchemaName::new("tenant-1").unwrap());
/// assert!(sql.contains("CREATE INDEX orders_customer_id_idx ON \"tenant-1\".orders USING btree (customer_id);"));
/// ```
pub fn suggest_sql(differences: &[Difference], target: &SchemaName) -> String {
    let suggester = Suggester::new(target, differences);
    let (mut statements, mut notes) = (Vec::new(), Vec::new());
    for difference in differences {
        match suggester.draft(difference) {
            Some(Draft { statement, note }) => {
                statements.extend(statement);
                notes.extend(note);
            }
            None => notes.push(describe(difference)),
        }
    }
    script(&suggester.schema, &statements, &notes)
}

/// The script: a warning that it is a suggestion, the statements, then what was left for a person.
fn script(schema: &str, statements: &[String], notes: &[String]) -> String {
    let mut script = format!(
        "-- SUGGESTION ONLY: review before running. Drafted by migrate-runtime to bring schema {} towards the\n\
         -- reference; the tool never runs it. Better still, write a migration.\n",
        comment_text(schema)
    );
    if statements.is_empty() {
        script.push_str("-- No statement could be drafted for these differences.\n");
    }
    for statement in statements {
        script.push('\n');
        script.push_str(statement);
        script.push('\n');
    }
    if !notes.is_empty() {
        script.push_str("\n-- Not handled; fix by hand:\n");
        for note in notes {
            for line in note.split(['\n', '\r']) {
                script.push_str("-- ");
                script.push_str(line);
                script.push('\n');
            }
        }
    }
    script
}

/// What one difference is drafted as: a statement (none when another statement covers it), and a note on what
/// the statement leaves out.
struct Draft {
    statement: Option<String>,
    note: Option<String>,
}

impl Draft {
    fn statement(statement: String) -> Option<Draft> {
        Some(Draft { statement: Some(statement), note: None })
    }
}

struct Suggester {
    /// The target schema, quoted.
    schema: String,
    /// Tables the target lacks: what is missing inside them cannot be added on its own.
    missing_tables: BTreeSet<String>,
    /// Constraints drafted: a primary key, unique or exclusion constraint and its index share a name, and adding
    /// the constraint builds the index.
    added_constraints: BTreeSet<String>,
}

impl Suggester {
    fn new(target: &SchemaName, differences: &[Difference]) -> Suggester {
        let missing = |kind: ObjectKind| {
            differences.iter().filter_map(move |d| match d {
                Difference::Missing { kind: k, name, .. } if *k == kind => Some(name),
                _ => None,
            })
        };
        let missing_tables: BTreeSet<String> = missing(ObjectKind::Table).map(|n| n.name.clone()).collect();
        let mut suggester = Suggester { schema: target.quoted(), missing_tables, added_constraints: BTreeSet::new() };
        suggester.added_constraints = missing(ObjectKind::Constraint)
            .filter(|name| suggester.table_present(name))
            .map(|name| name.name.clone())
            .collect();
        suggester
    }

    /// The object belongs to a table that the target has.
    fn table_present(&self, name: &ObjectName) -> bool {
        name.table.as_deref().is_some_and(|t| !self.missing_tables.contains(t))
    }

    /// The draft for one difference; `None` when it is not one of the simple cases.
    fn draft(&self, difference: &Difference) -> Option<Draft> {
        match difference {
            Difference::Missing { kind: ObjectKind::Index, name, definition }
                if !definition.has("invalid") && definition.has("definition") =>
            {
                let covered = self.added_constraints.contains(name.name.as_str());
                Some(Draft { statement: (!covered).then(|| self.create_index(name, definition)), note: None })
            }
            Difference::Missing { kind: ObjectKind::Constraint, name, definition }
                if self.table_present(name) && definition.has("definition") =>
            {
                Draft::statement(self.add_constraint(name, definition))
            }
            Difference::Missing { kind: ObjectKind::Column, name, definition }
                if self.table_present(name) && definition.has("type") =>
            {
                Draft::statement(self.add_column(name, definition))
            }
            Difference::Changed { kind: ObjectKind::Column, name, expected, found }
                if self.table_present(name) && expected.get("default") != found.get("default") =>
            {
                let rest: Vec<&str> =
                    expected.changed_attributes(found).into_iter().filter(|a| *a != "default").collect();
                let note = (!rest.is_empty())
                    .then(|| format!("{difference}: only the default is handled above, not {}", rest.join(", ")));
                Some(Draft { statement: Some(self.set_default(name, expected)), note })
            }
            Difference::Changed { kind: ObjectKind::Index, name, expected, found }
                if expected.changed_attributes(found) == ["invalid"] && found.has("invalid") =>
            {
                Draft::statement(format!("REINDEX INDEX {}.{};", self.schema, quote_ident(&name.name)))
            }
            _ => None,
        }
    }

    /// Catalog text with the placeholder replaced by the target schema.
    fn retarget(&self, text: &str) -> String {
        text.replace(&format!("{SCHEMA_PLACEHOLDER}."), &format!("{}.", self.schema))
    }

    fn table(&self, name: &ObjectName) -> String {
        format!("{}.{}", self.schema, quote_ident(name.table.as_deref().unwrap_or_default()))
    }

    fn comment(&self, what: &str, definition: &Definition) -> String {
        definition
            .get("comment")
            .map(|comment| format!("\nCOMMENT ON {what} IS {};", quote_literal(comment)))
            .unwrap_or_default()
    }

    fn create_index(&self, name: &ObjectName, definition: &Definition) -> String {
        let index = format!("{}.{}", self.schema, quote_ident(&name.name));
        format!(
            "{};{}",
            self.retarget(definition.get("definition").unwrap_or_default()),
            self.comment(&format!("INDEX {index}"), definition)
        )
    }

    fn add_constraint(&self, name: &ObjectName, definition: &Definition) -> String {
        let table = self.table(name);
        let constraint = quote_ident(&name.name);
        format!(
            "ALTER TABLE {table} ADD CONSTRAINT {constraint} {};{}",
            self.retarget(definition.get("definition").unwrap_or_default()),
            self.comment(&format!("CONSTRAINT {constraint} ON {table}"), definition)
        )
    }

    fn add_column(&self, name: &ObjectName, definition: &Definition) -> String {
        let table = self.table(name);
        let column = quote_ident(&name.name);
        let mut sql = format!(
            "ALTER TABLE {table} ADD COLUMN {column} {}",
            self.retarget(definition.get("type").unwrap_or_default())
        );
        if let Some(collation) = definition.get("collation") {
            sql.push_str(&format!(" COLLATE {}", self.retarget(collation)));
        }
        if let Some(expression) = definition.get("generated") {
            sql.push_str(&format!(" GENERATED ALWAYS AS ({}) STORED", self.retarget(expression)));
        } else if let Some(identity) = definition.get("identity") {
            let identity = if identity == "always" { "ALWAYS" } else { "BY DEFAULT" };
            sql.push_str(&format!(" GENERATED {identity} AS IDENTITY"));
        } else if let Some(default) = definition.get("default") {
            sql.push_str(&format!(" DEFAULT {}", self.retarget(default)));
        }
        if definition.has("not null") {
            sql.push_str(" NOT NULL");
        }
        sql.push(';');
        sql.push_str(&self.comment(&format!("COLUMN {table}.{column}"), definition));
        sql
    }

    fn set_default(&self, name: &ObjectName, expected: &Definition) -> String {
        let change = match expected.get("default") {
            Some(default) => format!("SET DEFAULT {}", self.retarget(default)),
            None => "DROP DEFAULT".to_owned(),
        };
        format!("ALTER TABLE {} ALTER COLUMN {} {change};", self.table(name), quote_ident(&name.name))
    }
}

/// A difference with the definitions that matter, for a comment.
fn describe(difference: &Difference) -> String {
    match difference {
        Difference::Missing { definition, .. } | Difference::Extra { definition, .. } => {
            format!("{difference}:\n{}", indent(&definition.to_string()))
        }
        Difference::Changed { expected, found, .. } => {
            let mut text = difference.to_string();
            for attribute in expected.changed_attributes(found) {
                for (side, definition) in [("expected", expected), ("found", found)] {
                    let value = match definition.get(attribute) {
                        None => "(not set)",
                        Some("") => "(set)",
                        Some(value) => value,
                    };
                    text.push_str(&format!("\n  {attribute} {side}: {value}"));
                }
            }
            text
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}")).collect::<Vec<_>>().join("\n")
}

/// A schema name inside a `--` comment: a line break would end the comment.
fn comment_text(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SchemaName {
        SchemaName::new("tenant \"1\"").unwrap()
    }

    #[test]
    fn simple_differences_become_statements_with_every_identifier_quoted() {
        let differences = [
            Difference::Missing {
                kind: ObjectKind::Column,
                name: ObjectName::of_table("My Table", "status"),
                definition: Definition::new([
                    ("type", "<schema>.order_status"),
                    ("not null", ""),
                    ("default", "'pending'::<schema>.order_status"),
                    ("comment", "it's"),
                ]),
            },
            Difference::Changed {
                kind: ObjectKind::Column,
                name: ObjectName::of_table("orders", "created_at"),
                expected: Definition::new([("type", "timestamptz"), ("default", "now()")]),
                found: Definition::new([("type", "timestamptz")]),
            },
            Difference::Changed {
                kind: ObjectKind::Column,
                name: ObjectName::of_table("orders", "note"),
                expected: Definition::new([("type", "text")]),
                found: Definition::new([("type", "text"), ("default", "''::text")]),
            },
            Difference::Missing {
                kind: ObjectKind::Index,
                name: ObjectName::new("i"),
                definition: Definition::new([("definition", "CREATE INDEX i ON <schema>.orders USING btree (a)")]),
            },
            Difference::Changed {
                kind: ObjectKind::Index,
                name: ObjectName::new("j"),
                expected: Definition::new([("definition", "CREATE INDEX j ON <schema>.t USING btree (a)")]),
                found: Definition::new([
                    ("definition", "CREATE INDEX j ON <schema>.t USING btree (a)"),
                    ("invalid", ""),
                ]),
            },
        ];
        let sql = suggest_sql(&differences, &target());
        assert!(sql.starts_with("-- SUGGESTION ONLY: review before running."), "{sql}");
        for statement in [
            r#"ALTER TABLE "tenant ""1"""."My Table" ADD COLUMN "status" "tenant ""1""".order_status DEFAULT 'pending'::"tenant ""1""".order_status NOT NULL;"#,
            r#"COMMENT ON COLUMN "tenant ""1"""."My Table"."status" IS 'it''s';"#,
            r#"ALTER TABLE "tenant ""1"""."orders" ALTER COLUMN "created_at" SET DEFAULT now();"#,
            r#"ALTER TABLE "tenant ""1"""."orders" ALTER COLUMN "note" DROP DEFAULT;"#,
            r#"CREATE INDEX i ON "tenant ""1""".orders USING btree (a);"#,
            r#"REINDEX INDEX "tenant ""1"""."j";"#,
        ] {
            assert!(sql.contains(statement), "{statement}\nnot in\n{sql}");
        }
        assert!(!sql.contains("Not handled"), "{sql}");
    }

    #[test]
    fn other_differences_are_comments_and_a_constraint_builds_its_own_index() {
        let differences = [
            Difference::Missing {
                kind: ObjectKind::Constraint,
                name: ObjectName::of_table("t", "t_pkey"),
                definition: Definition::new([("definition", "PRIMARY KEY (id)")]),
            },
            Difference::Missing {
                kind: ObjectKind::Index,
                name: ObjectName::new("t_pkey"),
                definition: Definition::new([(
                    "definition",
                    "CREATE UNIQUE INDEX t_pkey ON <schema>.t USING btree (id)",
                )]),
            },
            Difference::Extra {
                kind: ObjectKind::Trigger,
                name: ObjectName::of_table("t", "x"),
                definition: Definition::new([("definition", "CREATE TRIGGER x\nBEFORE UPDATE ON <schema>.t")]),
            },
        ];
        let sql = suggest_sql(&differences, &target());
        assert!(sql.contains(r#"ALTER TABLE "tenant ""1"""."t" ADD CONSTRAINT "t_pkey" PRIMARY KEY (id);"#), "{sql}");
        assert!(!sql.contains("CREATE UNIQUE INDEX"), "{sql}");
        assert!(sql.contains("-- Not handled; fix by hand:\n-- extra trigger t.x:\n--   definition: CREATE TRIGGER x\n--       BEFORE"), "{sql}");
        // Every line of the script is a comment, a statement, or blank: no text escapes a comment.
        for line in sql.lines() {
            assert!(
                line.is_empty() || line.starts_with("--") || line.starts_with("ALTER TABLE"),
                "unexpected line {line:?}"
            );
        }
    }
}
