//! The rules: what a statement does to a table that a running service is using, judged from its parse tree. A
//! table the same file creates is exempt from all of them: nothing else uses it yet.

use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};
use pg_query::NodeEnum;

/// A lint rule. Its name is what `-- migrate:allow` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `CREATE INDEX` without `CONCURRENTLY` on an existing table.
    IndexWithoutConcurrently,
    /// `DROP INDEX` without `CONCURRENTLY`.
    DropIndexWithoutConcurrently,
    /// `ADD COLUMN ... NOT NULL` without a default on an existing table.
    NotNullColumnWithoutDefault,
    /// `ALTER COLUMN ... TYPE` on an existing table.
    ColumnTypeChange,
    /// `ALTER COLUMN ... SET NOT NULL` on an existing table.
    SetNotNull,
    /// `ADD CONSTRAINT ... FOREIGN KEY` or `CHECK` without `NOT VALID` on an existing table.
    ConstraintWithoutNotValid,
    /// `ADD CONSTRAINT ... UNIQUE` or `PRIMARY KEY` that builds its index in place on an existing table.
    UniqueConstraintWithoutIndex,
    /// `VACUUM FULL`.
    VacuumFull,
    /// `CLUSTER`.
    Cluster,
    /// `ALTER TABLE ... RENAME TO`.
    RenameTable,
    /// `ALTER TABLE ... RENAME COLUMN`.
    RenameColumn,
}

const ALL: [Rule; 11] = [
    Rule::IndexWithoutConcurrently,
    Rule::DropIndexWithoutConcurrently,
    Rule::NotNullColumnWithoutDefault,
    Rule::ColumnTypeChange,
    Rule::SetNotNull,
    Rule::ConstraintWithoutNotValid,
    Rule::UniqueConstraintWithoutIndex,
    Rule::VacuumFull,
    Rule::Cluster,
    Rule::RenameTable,
    Rule::RenameColumn,
];

impl Rule {
    /// The name `-- migrate:allow` takes.
    pub fn name(self) -> &'static str {
        match self {
            Rule::IndexWithoutConcurrently => "index-without-concurrently",
            Rule::DropIndexWithoutConcurrently => "drop-index-without-concurrently",
            Rule::NotNullColumnWithoutDefault => "not-null-column-without-default",
            Rule::ColumnTypeChange => "column-type-change",
            Rule::SetNotNull => "set-not-null",
            Rule::ConstraintWithoutNotValid => "constraint-without-not-valid",
            Rule::UniqueConstraintWithoutIndex => "unique-constraint-without-index",
            Rule::VacuumFull => "vacuum-full",
            Rule::Cluster => "cluster",
            Rule::RenameTable => "rename-table",
            Rule::RenameColumn => "rename-column",
        }
    }

    /// The rule of that name.
    pub fn from_name(name: &str) -> Option<Rule> {
        ALL.into_iter().find(|rule| rule.name().eq_ignore_ascii_case(name))
    }

    /// Every rule's name.
    pub fn names() -> Vec<&'static str> {
        ALL.iter().map(|rule| rule.name()).collect()
    }

    /// What the statement does to the service.
    pub fn what(self) -> &'static str {
        match self {
            Rule::IndexWithoutConcurrently => {
                "CREATE INDEX without CONCURRENTLY blocks every write to the table while the index builds"
            }
            Rule::DropIndexWithoutConcurrently => "DROP INDEX without CONCURRENTLY blocks every query of the table",
            Rule::NotNullColumnWithoutDefault => {
                "ADD COLUMN ... NOT NULL without a default fails on a table that has rows"
            }
            Rule::ColumnTypeChange => {
                "ALTER COLUMN ... TYPE rewrites the table (and its indexes) while every query of it waits"
            }
            Rule::SetNotNull => "SET NOT NULL scans the whole table while every query of it waits",
            Rule::ConstraintWithoutNotValid => {
                "a FOREIGN KEY or CHECK constraint added without NOT VALID checks every row while writes to the table \
                 wait"
            }
            Rule::UniqueConstraintWithoutIndex => {
                "ADD UNIQUE or PRIMARY KEY builds its index while every query of the table waits"
            }
            Rule::VacuumFull => "VACUUM FULL rewrites the table while every query of it waits",
            Rule::Cluster => "CLUSTER rewrites the table while every query of it waits",
            Rule::RenameTable => "renaming a table breaks the running code that still uses the old name",
            Rule::RenameColumn => "renaming a column breaks the running code that still uses the old name",
        }
    }

    /// What to write instead.
    pub fn fix(self) -> &'static str {
        match self {
            Rule::IndexWithoutConcurrently => {
                "use CREATE INDEX CONCURRENTLY in a file of its own that starts with `-- migrate:no-transaction`"
            }
            Rule::DropIndexWithoutConcurrently => {
                "use DROP INDEX CONCURRENTLY in a file of its own that starts with `-- migrate:no-transaction`"
            }
            Rule::NotNullColumnWithoutDefault => {
                "give it a constant DEFAULT, or add it nullable, backfill, then SET NOT NULL through a NOT VALID CHECK"
            }
            Rule::ColumnTypeChange => "add a column of the new type, backfill it, and switch the code over to it",
            Rule::SetNotNull => {
                "add CHECK (column IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it in a later migration, then SET NOT \
                 NULL (PostgreSQL 12+ then skips the scan)"
            }
            Rule::ConstraintWithoutNotValid => {
                "add it NOT VALID, then VALIDATE CONSTRAINT in a later migration (that takes a lighter lock)"
            }
            Rule::UniqueConstraintWithoutIndex => {
                "CREATE UNIQUE INDEX CONCURRENTLY first (a no-transaction file), then ADD CONSTRAINT ... USING INDEX"
            }
            Rule::VacuumFull | Rule::Cluster => "leave it to maintenance outside migrations (pg_repack does it online)",
            Rule::RenameTable | Rule::RenameColumn => {
                "add the new name beside the old one (a view, or a column kept in step), deploy, then drop the old"
            }
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The rules the statements break, each with the byte offset of its statement. Tables created by an earlier
/// statement of the same list are exempt.
pub(crate) fn judge(statements: &[(usize, NodeEnum)]) -> Vec<(usize, Rule)> {
    let mut created: Vec<String> = Vec::new();
    let mut broken = Vec::new();
    for (offset, statement) in statements {
        let is_new = |relation: &Option<pg_query::protobuf::RangeVar>| {
            relation.as_ref().is_some_and(|r| created.contains(&r.relname))
        };
        let mut found: Vec<Rule> = Vec::new();
        match statement {
            NodeEnum::CreateStmt(create) => created.extend(create.relation.iter().map(|r| r.relname.clone())),
            NodeEnum::CreateTableAsStmt(create) => {
                created.extend(create.into.iter().filter_map(|into| into.rel.as_ref()).map(|r| r.relname.clone()))
            }
            NodeEnum::IndexStmt(index) if !index.concurrent && !is_new(&index.relation) => {
                found.push(Rule::IndexWithoutConcurrently)
            }
            NodeEnum::DropStmt(drop) if drop.remove_type == ObjectType::ObjectIndex as i32 && !drop.concurrent => {
                found.push(Rule::DropIndexWithoutConcurrently)
            }
            NodeEnum::AlterTableStmt(alter) if !is_new(&alter.relation) => {
                for command in &alter.cmds {
                    if let Some(NodeEnum::AlterTableCmd(command)) = &command.node {
                        found.extend(alter_table_rule(command));
                    }
                }
            }
            NodeEnum::VacuumStmt(vacuum) if vacuum.is_vacuumcmd && is_full(vacuum) => found.push(Rule::VacuumFull),
            NodeEnum::ClusterStmt(_) => found.push(Rule::Cluster),
            NodeEnum::RenameStmt(rename) if !is_new(&rename.relation) => {
                if rename.rename_type == ObjectType::ObjectTable as i32 {
                    found.push(Rule::RenameTable);
                } else if rename.rename_type == ObjectType::ObjectColumn as i32
                    && rename.relation_type == ObjectType::ObjectTable as i32
                {
                    found.push(Rule::RenameColumn);
                }
            }
            _ => {}
        }
        found.dedup();
        broken.extend(found.into_iter().map(|rule| (*offset, rule)));
    }
    broken
}

/// The rule one `ALTER TABLE` command on an existing table breaks.
fn alter_table_rule(command: &pg_query::protobuf::AlterTableCmd) -> Option<Rule> {
    let definition = command.def.as_ref().and_then(|def| def.node.as_ref());
    match AlterTableType::try_from(command.subtype).ok()? {
        AlterTableType::AtAlterColumnType => Some(Rule::ColumnTypeChange),
        AlterTableType::AtSetNotNull => Some(Rule::SetNotNull),
        AlterTableType::AtAddColumn => {
            let Some(NodeEnum::ColumnDef(column)) = definition else { return None };
            let kinds: Vec<i32> = column
                .constraints
                .iter()
                .filter_map(|c| match &c.node {
                    Some(NodeEnum::Constraint(c)) => Some(c.contype),
                    _ => None,
                })
                .collect();
            let has = |kind: ConstrType| kinds.contains(&(kind as i32));
            let filled =
                has(ConstrType::ConstrDefault) || has(ConstrType::ConstrIdentity) || has(ConstrType::ConstrGenerated);
            (has(ConstrType::ConstrNotnull) && !filled).then_some(Rule::NotNullColumnWithoutDefault)
        }
        AlterTableType::AtAddConstraint => {
            let Some(NodeEnum::Constraint(constraint)) = definition else { return None };
            match ConstrType::try_from(constraint.contype).ok()? {
                ConstrType::ConstrForeign | ConstrType::ConstrCheck if !constraint.skip_validation => {
                    Some(Rule::ConstraintWithoutNotValid)
                }
                ConstrType::ConstrUnique | ConstrType::ConstrPrimary if constraint.indexname.is_empty() => {
                    Some(Rule::UniqueConstraintWithoutIndex)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `VACUUM (FULL)` or `VACUUM FULL`.
fn is_full(vacuum: &pg_query::protobuf::VacuumStmt) -> bool {
    vacuum.options.iter().any(|option| match &option.node {
        Some(NodeEnum::DefElem(element)) => element.defname.eq_ignore_ascii_case("full"),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sql: &str) -> Vec<&'static str> {
        let statements = crate::syntax::parse(sql).unwrap_or_else(|e| panic!("{}", e.message));
        judge(&statements).into_iter().map(|(_, rule)| rule.name()).collect()
    }

    #[test]
    fn each_rule_on_an_existing_table() {
        let cases = [
            ("CREATE INDEX i ON t (x)", "index-without-concurrently"),
            ("CREATE UNIQUE INDEX i ON s.t (x)", "index-without-concurrently"),
            ("DROP INDEX i", "drop-index-without-concurrently"),
            ("ALTER TABLE t ADD COLUMN c int NOT NULL", "not-null-column-without-default"),
            ("ALTER TABLE t ALTER COLUMN c TYPE bigint", "column-type-change"),
            ("ALTER TABLE t ALTER COLUMN c SET NOT NULL", "set-not-null"),
            ("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)", "constraint-without-not-valid"),
            ("ALTER TABLE t ADD CHECK (a > 0)", "constraint-without-not-valid"),
            ("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a)", "unique-constraint-without-index"),
            ("ALTER TABLE t ADD PRIMARY KEY (id)", "unique-constraint-without-index"),
            ("VACUUM FULL t", "vacuum-full"),
            ("VACUUM (FULL, ANALYZE) t", "vacuum-full"),
            ("CLUSTER t USING i", "cluster"),
            ("ALTER TABLE t RENAME TO u", "rename-table"),
            ("ALTER TABLE t RENAME COLUMN a TO b", "rename-column"),
        ];
        for (sql, rule) in cases {
            assert_eq!(rules(sql), [rule], "{sql}");
        }
    }

    #[test]
    fn the_safe_forms_pass() {
        for sql in [
            "CREATE INDEX CONCURRENTLY i ON t (x)",
            "DROP INDEX CONCURRENTLY i",
            "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0",
            "ALTER TABLE t ADD COLUMN c int",
            "ALTER TABLE t ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY NOT NULL",
            "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) NOT VALID",
            "ALTER TABLE t VALIDATE CONSTRAINT f",
            "ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX i",
            "VACUUM ANALYZE t",
            "ALTER TABLE t RENAME CONSTRAINT a TO b",
            "ALTER INDEX i RENAME TO j",
            "SELECT 1",
        ] {
            assert!(rules(sql).is_empty(), "{sql}: {:?}", rules(sql));
        }
    }

    #[test]
    fn a_table_the_file_creates_is_exempt() {
        let sql =
            "CREATE TABLE t (id int, a int);\nCREATE INDEX i ON t (a);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\n\
                   ALTER TABLE t ADD CONSTRAINT f CHECK (a > 0);\nCREATE INDEX j ON other (a);";
        assert_eq!(rules(sql), ["index-without-concurrently"], "only the index on a table the file did not create");
    }
}
