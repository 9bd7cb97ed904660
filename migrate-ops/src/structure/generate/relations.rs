//! Tables, columns, constraints, indexes and sequences.

use super::change::{Change, Phase, ReviewReason};
use super::{columns_of, of_kind, own, parse, table_of, Generator};
use crate::structure::object::{Definition, ObjectKind, ObjectName, Structure};
use migrate_runtime::quote_ident;

impl Generator<'_> {
    pub(super) fn table(&mut self, name: &ObjectName, current: Option<&Definition>, desired: Option<&Definition>) {
        match (current, desired) {
            (None, Some(desired)) => self.create_table(name, desired),
            (Some(_), None) => self.drop_table(name),
            (Some(current), Some(desired)) => self.alter_table(name, current, desired),
            (None, None) => {}
        }
    }

    fn create_table(&mut self, name: &ObjectName, desired: &Definition) {
        if desired.get("kind") == Some("foreign") {
            return self.cannot(ObjectKind::Table, name, "a foreign table needs its server: create it by hand");
        }
        let table = own(&name.name);
        let unlogged = if desired.get("persistence") == Some("unlogged") { "UNLOGGED " } else { "" };
        let mut sql = match (desired.get("partition bound"), desired.get("of type")) {
            (Some(bound), _) => {
                let parent = desired.get("inherits").unwrap_or_default();
                format!("CREATE {unlogged}TABLE {table} PARTITION OF {parent} {bound}")
            }
            (None, Some(of_type)) => format!("CREATE {unlogged}TABLE {table} OF {of_type}"),
            (None, None) => {
                let columns: Vec<String> = columns_of(self.desired, &name.name)
                    .into_iter()
                    .map(|(column, definition)| {
                        format!("    {}", self.column_definition(&name.name, &column, definition))
                    })
                    .collect();
                let mut sql = format!("CREATE {unlogged}TABLE {table} (\n{}\n)", columns.join(",\n"));
                if let Some(parents) = desired.get("inherits") {
                    sql.push_str(&format!(" INHERITS ({parents})"));
                }
                sql
            }
        };
        if let Some(key) = desired.get("partition by") {
            sql.push_str(&format!(" PARTITION BY {key}"));
        }
        if let Some(options) = desired.get("options") {
            sql.push_str(&format!(" WITH ({options})"));
        }
        sql.push(';');
        for flag in row_security(None, desired) {
            sql.push_str(&format!("\nALTER TABLE {table} {flag};"));
        }
        let rank = inheritance_depth(self.desired, &name.name);
        self.push_ranked(Change::new(Phase::CreateTable, sql), rank);
        self.comment(format!("TABLE {table}"), None, desired);
        for (column, definition) in columns_of(self.desired, &name.name) {
            self.comment(format!("COLUMN {table}.{}", quote_ident(&column)), None, definition);
        }
    }

    fn drop_table(&mut self, name: &ObjectName) {
        let table = own(&name.name);
        let rank = usize::MAX - inheritance_depth(self.current, &name.name);
        let renamed = self.created_tables.iter().find(|created| {
            same_columns(self.current, &name.name, self.desired, created)
                && self.desired.get(ObjectKind::Table, &ObjectName::new(created.as_str())).is_some()
        });
        let change = Change::new(Phase::DropTable, format!("DROP TABLE {table};"));
        let change = match renamed {
            Some(created) => change.reviewed(
                ReviewReason::LooksRenamed,
                format!(
                    "table {0} is dropped and {1} created with the same columns. If it was renamed, generate again \
                     with --rename {0}={1} to keep its rows; as written, its rows are lost.",
                    name.name, created
                ),
            ),
            None => change.reviewed(ReviewReason::LosesData, format!("drops table {} and every row in it.", name.name)),
        };
        self.push_ranked(change, rank);
    }

    fn alter_table(&mut self, name: &ObjectName, current: &Definition, desired: &Definition) {
        for attribute in ["kind", "of type", "partition by", "inherits", "partition bound"] {
            if current.get(attribute) != desired.get(attribute) {
                let reason = format!(
                    "its {attribute} changes, which ALTER TABLE cannot do in place: create the new table, move the \
                     rows and drop the old one by hand"
                );
                return self.cannot(ObjectKind::Table, name, reason);
            }
        }
        let table = own(&name.name);
        let (before, after) = (
            parse::columns(current.get("columns").unwrap_or_default()),
            parse::columns(desired.get("columns").unwrap_or_default()),
        );
        let mut reachable: Vec<&String> = before.iter().filter(|c| after.contains(c)).collect();
        reachable.extend(after.iter().filter(|c| !before.contains(c)));
        if reachable != after.iter().collect::<Vec<_>>() {
            self.cannot(
                ObjectKind::Table,
                name,
                format!(
                    "its columns are ordered ({}) where ALTER TABLE can only add at the end ({}): PostgreSQL \
                     cannot reorder columns; recreate the table by hand or accept the order",
                    after.join(", "),
                    reachable.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
                ),
            );
        }
        if current.get("persistence") != desired.get("persistence") {
            let logged = if desired.has("persistence") { "UNLOGGED" } else { "LOGGED" };
            let change = Change::new(Phase::AlterTable, format!("ALTER TABLE {table} SET {logged};"));
            let text = format!("SET {logged} rewrites table {} under an ACCESS EXCLUSIVE lock.", name.name);
            self.push(change.reviewed(ReviewReason::RewritesTable, text));
        }
        if current.get("options") != desired.get("options") {
            self.table_options(&table, current.get("options"), desired.get("options"));
        }
        for flag in row_security(Some(current), desired) {
            self.push(Change::new(Phase::CreateDependent, format!("ALTER TABLE {table} {flag};")));
        }
        self.comment(format!("TABLE {table}"), Some(current), desired);
    }

    fn table_options(&mut self, table: &str, current: Option<&str>, desired: Option<&str>) {
        let keys = |options: Option<&str>| -> Vec<String> {
            parse::split_list(options.unwrap_or_default(), ", ")
                .into_iter()
                .map(|o| o.split('=').next().unwrap_or_default().to_owned())
                .collect()
        };
        let kept = keys(desired);
        let reset: Vec<String> = keys(current).into_iter().filter(|k| !kept.contains(k)).collect();
        if !reset.is_empty() {
            self.push(Change::new(Phase::AlterTable, format!("ALTER TABLE {table} RESET ({});", reset.join(", "))));
        }
        if let Some(options) = desired {
            self.push(Change::new(Phase::AlterTable, format!("ALTER TABLE {table} SET ({options});")));
        }
    }

    /// A column as in `CREATE TABLE` or `ADD COLUMN`: name, type, collation, generation or identity, default, `NOT
    /// NULL`.
    pub(super) fn column_definition(&self, table: &str, column: &str, definition: &Definition) -> String {
        let mut sql = format!("{} {}", quote_ident(column), definition.get("type").unwrap_or_default());
        if let Some(collation) = definition.get("collation") {
            sql.push_str(&format!(" COLLATE {collation}"));
        }
        if let Some(expression) = definition.get("generated") {
            sql.push_str(&format!(" GENERATED ALWAYS AS ({expression}) STORED"));
        } else if let Some(identity) = definition.get("identity") {
            sql.push_str(&format!(" {}", self.identity(table, column, identity)));
        } else if let Some(default) = definition.get("default") {
            sql.push_str(&format!(" DEFAULT {default}"));
        }
        if definition.has("not null") {
            sql.push_str(" NOT NULL");
        }
        sql
    }

    /// `GENERATED ... AS IDENTITY (SEQUENCE NAME ... )`, with the options of its sequence in the desired structure.
    fn identity(&self, table: &str, column: &str, identity: &str) -> String {
        let when = if identity == "always" { "ALWAYS" } else { "BY DEFAULT" };
        let sequence = of_kind(self.desired, ObjectKind::Sequence).into_iter().find(|(_, definition)| {
            definition.get("owned by").and_then(parse::owned_by) == Some((table.to_owned(), column.to_owned()))
        });
        match sequence {
            Some((name, definition)) => {
                format!(
                    "GENERATED {when} AS IDENTITY (SEQUENCE NAME {} {})",
                    own(&name.name),
                    sequence_options(definition)
                )
            }
            None => format!("GENERATED {when} AS IDENTITY"),
        }
    }

    pub(super) fn column(&mut self, name: &ObjectName, current: Option<&Definition>, desired: Option<&Definition>) {
        let table_name = name.table.clone().unwrap_or_default();
        if !self.existing_table(&table_name) {
            return;
        }
        let (table, column) = (table_of(name), quote_ident(&name.name));
        match (current, desired) {
            (None, Some(desired)) => {
                let sql = format!(
                    "ALTER TABLE {table} ADD COLUMN {};",
                    self.column_definition(&table_name, &name.name, desired)
                );
                let mut change = Change::new(Phase::AlterTable, sql);
                if desired.has("not null")
                    && !desired.has("default")
                    && !desired.has("identity")
                    && !desired.has("generated")
                {
                    let text =
                        format!("{name} is NOT NULL without a default: adding it fails if {table_name} has rows.");
                    change = change.linted(ReviewReason::MayFailOnRows, "not-null-column-without-default", text);
                } else if desired.has("generated") {
                    let text = format!(
                        "a stored generated column rewrites table {table_name} under an ACCESS EXCLUSIVE lock."
                    );
                    change = change.reviewed(ReviewReason::RewritesTable, text);
                }
                self.push(change);
                self.comment(format!("COLUMN {table}.{column}"), None, desired);
            }
            (Some(current), None) => {
                self.reshaped.insert(table_name.clone());
                let renamed = self.added_alike(name, current);
                let change = Change::new(Phase::DropColumn, format!("ALTER TABLE {table} DROP COLUMN {column};"));
                let change = match renamed {
                    Some(added) => change.reviewed(
                        ReviewReason::LooksRenamed,
                        format!(
                            "column {name} is dropped and {table_name}.{added} added with the same type. If it was \
                             renamed, generate again with --rename {table_name}.{}={added} to keep its values; as \
                             written, they are lost.",
                            name.name
                        ),
                    ),
                    None => change.reviewed(ReviewReason::LosesData, format!("drops column {name} and its values.")),
                };
                self.push(change);
            }
            (Some(current), Some(desired)) => self.alter_column(name, current, desired),
            (None, None) => {}
        }
    }

    /// A column added to the same table with the same type as the dropped one: a rename, perhaps.
    fn added_alike(&self, dropped: &ObjectName, definition: &Definition) -> Option<String> {
        let table = dropped.table.as_deref()?;
        columns_of(self.desired, table).into_iter().find_map(|(column, added)| {
            let new = self.current.get(ObjectKind::Column, &ObjectName::of_table(table, column.as_str())).is_none();
            (new && added.get("type") == definition.get("type")).then_some(column)
        })
    }

    fn alter_column(&mut self, name: &ObjectName, current: &Definition, desired: &Definition) {
        let table_name = name.table.as_deref().unwrap_or_default();
        let alter = format!("ALTER TABLE {} ALTER COLUMN {}", table_of(name), quote_ident(&name.name));
        if current.get("generated") != desired.get("generated") {
            if current.has("generated") && !desired.has("generated") {
                self.push(Change::new(Phase::AlterTable, format!("{alter} DROP EXPRESSION;")));
            } else {
                let reason = "PostgreSQL 15 cannot change a stored generated column's expression or make a column \
                              generated: drop the column and add it again by hand (it moves to the end of the table)";
                return self.cannot(ObjectKind::Column, name, reason);
            }
        }
        let retyped =
            current.get("type") != desired.get("type") || current.get("collation") != desired.get("collation");
        if retyped && current.has("default") {
            self.push(Change::new(Phase::AlterTable, format!("{alter} DROP DEFAULT;")));
        }
        if retyped {
            self.reshaped.insert(table_name.to_owned());
            let new_type = desired.get("type").unwrap_or_default();
            let collate = desired.get("collation").map(|c| format!(" COLLATE {c}")).unwrap_or_default();
            let sql = format!("{alter} TYPE {new_type}{collate} USING {}::{new_type};", quote_ident(&name.name));
            let text = format!(
                "changing the type of {name} rewrites table {table_name} under an ACCESS EXCLUSIVE lock, and fails on \
                 values that do not convert."
            );
            self.push(Change::new(Phase::AlterTable, sql).linted(
                ReviewReason::RewritesTable,
                "column-type-change",
                text,
            ));
        }
        let default_changed = current.get("default") != desired.get("default");
        if retyped || default_changed {
            match desired.get("default") {
                Some(default) => self.push(Change::new(Phase::AlterTable, format!("{alter} SET DEFAULT {default};"))),
                None if !retyped => self.push(Change::new(Phase::AlterTable, format!("{alter} DROP DEFAULT;"))),
                None => {}
            }
        }
        match (current.get("identity"), desired.get("identity")) {
            (None, Some(identity)) => {
                let identity = self.identity(table_name, &name.name, identity);
                self.push(Change::new(Phase::AlterTable, format!("{alter} ADD {identity};")));
            }
            (Some(_), None) => self.push(Change::new(Phase::AlterTable, format!("{alter} DROP IDENTITY;"))),
            (Some(a), Some(b)) if a != b => {
                let when = if b == "always" { "ALWAYS" } else { "BY DEFAULT" };
                self.push(Change::new(Phase::AlterTable, format!("{alter} SET GENERATED {when};")));
            }
            _ => {}
        }
        match (current.has("not null"), desired.has("not null")) {
            (false, true) => {
                let text = format!(
                    "SET NOT NULL scans all of {table_name} under an ACCESS EXCLUSIVE lock; on a large table add a \
                     CHECK ({} IS NOT NULL) NOT VALID constraint and validate it first.",
                    quote_ident(&name.name)
                );
                let change = Change::new(Phase::AlterTable, format!("{alter} SET NOT NULL;"));
                self.push(change.linted(ReviewReason::ScansTable, "set-not-null", text));
            }
            (true, false) => self.push(Change::new(Phase::AlterTable, format!("{alter} DROP NOT NULL;"))),
            _ => {}
        }
        let target = format!("COLUMN {}.{}", table_of(name), quote_ident(&name.name));
        self.comment(target, Some(current), desired);
    }

    pub(super) fn constraint(&mut self, name: &ObjectName, current: Option<&Definition>, desired: Option<&Definition>) {
        let table_name = name.table.as_deref().unwrap_or_default();
        let definition_of = |d: Option<&Definition>| d.and_then(|d| d.get("definition")).unwrap_or_default().to_owned();
        let (before, after) = (definition_of(current), definition_of(desired));
        // A constraint trigger's constraint comes with its trigger; an inherited constraint with its parent's.
        if before.starts_with("TRIGGER") || after.starts_with("TRIGGER") {
            return;
        }
        let (table, constraint) = (table_of(name), quote_ident(&name.name));
        let validated = current.is_some() && before == format!("{after} NOT VALID");
        let replaced = before != after && !validated;
        if validated {
            let sql = format!("ALTER TABLE {table} VALIDATE CONSTRAINT {constraint};");
            self.push(Change::new(Phase::AddForeignKey, sql));
        }
        // A foreign key is dropped even with its table: the table it references may be dropped first.
        let foreign = before.starts_with("FOREIGN KEY");
        if current.is_some()
            && replaced
            && (foreign || !self.dropped_tables.contains(table_name))
            && !inherited(self.current, name, &before)
        {
            let phase = if foreign { Phase::DropForeignKey } else { Phase::DropConstraint };
            self.push(Change::new(phase, format!("ALTER TABLE {table} DROP CONSTRAINT {constraint};")));
        }
        if let Some(desired) = desired {
            if replaced && !inherited(self.desired, name, &after) {
                self.add_constraint(name, &after);
            }
            let target = format!("CONSTRAINT {constraint} ON {table}");
            self.comment(target, current.filter(|_| !replaced), desired);
        }
    }

    fn add_constraint(&mut self, name: &ObjectName, definition: &str) {
        let table_name = name.table.as_deref().unwrap_or_default();
        let sql = format!("ALTER TABLE {} ADD CONSTRAINT {} {definition};", table_of(name), quote_ident(&name.name));
        let on_partition = self
            .desired
            .get(ObjectKind::Table, &ObjectName::new(table_name))
            .is_some_and(|t| t.definition.has("partition bound"));
        let foreign = definition.starts_with("FOREIGN KEY");
        let phase = match (foreign, on_partition) {
            (true, _) => Phase::AddForeignKey,
            (false, true) => Phase::AddPartitionConstraint,
            (false, false) => Phase::AddConstraint,
        };
        let mut change = Change::new(phase, sql);
        if self.existing_table(table_name) {
            if (foreign || definition.starts_with("CHECK")) && !definition.ends_with("NOT VALID") {
                let text = format!(
                    "adding {} checks every row of {table_name} under a lock; on a large table add it NOT VALID \
                     and VALIDATE CONSTRAINT in a later migration.",
                    name.name
                );
                change = change.linted(ReviewReason::ScansTable, "constraint-without-not-valid", text);
            } else if definition.starts_with("UNIQUE") || definition.starts_with("PRIMARY KEY") {
                let text = format!(
                    "adding {} builds its index on {table_name} while blocking writes; on a large table build a unique \
                     index CONCURRENTLY first and add the constraint USING INDEX.",
                    name.name
                );
                change = change.linted(ReviewReason::BlocksWrites, "unique-constraint-without-index", text);
            }
        }
        self.push(change);
    }

    pub(super) fn index(&mut self, name: &ObjectName, current: Option<&Definition>, desired: Option<&Definition>) {
        let (before, after) = (definition_text(current), definition_text(desired));
        let (old_table, table) =
            (parse::index_table(before).unwrap_or_default(), parse::index_table(after).unwrap_or_default());
        let rebuilt = before != after || current.map(|c| c.has("invalid")) != desired.map(|d| d.has("invalid"));
        if current.is_some()
            && rebuilt
            && self.relation_kept(&old_table)
            && !backs_constraint(self.current, name, &old_table)
        {
            self.push(Change::new(Phase::DropIndex, format!("DROP INDEX {};", own(&name.name))));
        }
        let Some(desired) = desired else { return };
        if desired.has("invalid") || desired.has("not ready") {
            let reason =
                "the index is invalid (a failed CREATE INDEX CONCURRENTLY): not generated; drop it, or build it again";
            return self.cannot(ObjectKind::Index, name, reason);
        }
        if rebuilt && !backs_constraint(self.desired, name, &table) {
            self.create_index(name, after, &table);
        }
        if current.map(|c| c.has("clustered")) != Some(desired.has("clustered")) && desired.has("clustered") {
            let sql = format!("ALTER TABLE {} CLUSTER ON {};", own(&table), quote_ident(&name.name));
            self.push(Change::new(Phase::CreateDependent, sql));
        }
        self.comment(format!("INDEX {}", own(&name.name)), current.filter(|_| !rebuilt), desired);
    }

    fn create_index(&mut self, name: &ObjectName, definition: &str, table: &str) {
        let relation = ObjectName::new(table);
        let on_view = self.desired.get(ObjectKind::MaterializedView, &relation).is_some();
        let table_definition = self.desired.get(ObjectKind::Table, &relation).map(|t| &t.definition);
        let partitioned = table_definition.is_some_and(|t| t.get("kind") == Some("partitioned"));
        let on_partition = table_definition.is_some_and(|t| t.has("partition bound"));
        // `ON ONLY` builds no index on the partitions: without it, the partitions' matching indexes are attached.
        let sql = format!(
            "{};",
            if partitioned { definition.replacen(" ON ONLY ", " ON ", 1) } else { definition.to_owned() }
        );
        let phase = match (on_view, on_partition) {
            (true, _) => Phase::CreateViewIndex,
            (false, true) => Phase::CreatePartitionIndex,
            (false, false) => Phase::CreateIndex,
        };
        let mut change = Change::new(phase, sql);
        if !on_view && self.existing_table(table) {
            let text = format!(
                "building {} blocks writes to {table} until it is done; on a large table build it CONCURRENTLY in a \
                 migration of its own that starts with -- migrate:no-transaction.",
                name.name
            );
            change = change.linted(ReviewReason::BlocksWrites, "index-without-concurrently", text);
        }
        self.push(change);
    }

    /// The table or materialized view stays: its indexes are not dropped with it.
    fn relation_kept(&self, relation: &str) -> bool {
        let name = ObjectName::new(relation);
        [ObjectKind::Table, ObjectKind::MaterializedView]
            .into_iter()
            .any(|kind| self.desired.get(kind, &name).is_some())
    }

    pub(super) fn sequence(&mut self, name: &ObjectName, current: Option<&Definition>, desired: Option<&Definition>) {
        let sequence = own(&name.name);
        let owner = |d: Option<&Definition>| d.and_then(|d| d.get("owned by")).and_then(parse::owned_by);
        let identity = |structure: &Structure, owner: &Option<(String, String)>| {
            owner.as_ref().is_some_and(|(t, c)| {
                structure
                    .get(ObjectKind::Column, &ObjectName::of_table(t.as_str(), c.as_str()))
                    .is_some_and(|c| c.definition.has("identity"))
            })
        };
        let (owner_before, owner_after) = (owner(current), owner(desired));
        let (identity_before, identity_after) =
            (identity(self.current, &owner_before), identity(self.desired, &owner_after));
        // A sequence owned by a column that is dropped goes with it: one that must stay is created anew.
        let goes_with_owner = owner_before.as_ref().is_some_and(|(table, column)| {
            self.dropped_tables.contains(table)
                || self
                    .desired
                    .get(ObjectKind::Column, &ObjectName::of_table(table.as_str(), column.as_str()))
                    .is_none()
        });
        let current = current.filter(|_| !goes_with_owner || identity_before);
        match (current, desired) {
            (None, Some(desired)) if !identity_after => {
                let sql = format!(
                    "CREATE SEQUENCE {sequence} AS {} {};",
                    desired.get("type").unwrap_or("bigint"),
                    sequence_options(desired)
                );
                self.push(Change::new(Phase::CreateSequence, sql));
                self.own_sequence(&sequence, None, owner_after.as_ref());
                self.comment(format!("SEQUENCE {sequence}"), None, desired);
            }
            (Some(_), None) if !identity_before && !goes_with_owner => {
                self.push(Change::new(Phase::DropSequence, format!("DROP SEQUENCE {sequence};")));
            }
            (Some(current), Some(desired)) => {
                let parameters = ["type", "start", "increment", "minimum", "maximum", "cache", "cycle"];
                if parameters.iter().any(|p| current.get(p) != desired.get(p)) {
                    let sql = format!(
                        "ALTER SEQUENCE {sequence} AS {} {};",
                        desired.get("type").unwrap_or("bigint"),
                        sequence_options(desired)
                    );
                    self.push(Change::new(Phase::AlterTable, sql));
                }
                if owner_before != owner_after && !identity_after {
                    self.own_sequence(&sequence, owner_before.as_ref(), owner_after.as_ref());
                }
                self.comment(format!("SEQUENCE {sequence}"), Some(current), desired);
            }
            _ => {}
        }
    }

    fn own_sequence(&mut self, sequence: &str, before: Option<&(String, String)>, after: Option<&(String, String)>) {
        let owner = match after {
            Some((table, column)) => format!("{}.{}", own(table), quote_ident(column)),
            None if before.is_some() => "NONE".to_owned(),
            None => return,
        };
        self.push(Change::new(Phase::OwnSequence, format!("ALTER SEQUENCE {sequence} OWNED BY {owner};")));
    }
}

/// A definition's `definition` attribute, empty when there is no definition.
fn definition_text(definition: Option<&Definition>) -> &str {
    definition.and_then(|d| d.get("definition")).unwrap_or_default()
}

/// `START WITH ... CYCLE`: a sequence's parameters, every one stated.
fn sequence_options(definition: &Definition) -> String {
    let value = |attribute: &str| definition.get(attribute).unwrap_or("1").to_owned();
    format!(
        "START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{}",
        value("start"),
        value("increment"),
        value("minimum"),
        value("maximum"),
        value("cache"),
        if definition.has("cycle") { " CYCLE" } else { " NO CYCLE" }
    )
}

/// `ENABLE ROW LEVEL SECURITY` and the like, for the flags that differ.
fn row_security(current: Option<&Definition>, desired: &Definition) -> Vec<&'static str> {
    let mut flags = Vec::new();
    let had = |flag: &str| current.is_some_and(|c| c.has(flag));
    match (had("row level security"), desired.has("row level security")) {
        (false, true) => flags.push("ENABLE ROW LEVEL SECURITY"),
        (true, false) => flags.push("DISABLE ROW LEVEL SECURITY"),
        _ => {}
    }
    match (had("force row level security"), desired.has("force row level security")) {
        (false, true) => flags.push("FORCE ROW LEVEL SECURITY"),
        (true, false) => flags.push("NO FORCE ROW LEVEL SECURITY"),
        _ => {}
    }
    flags
}

/// How many parents a table has above it in `structure` (so parents are created first and dropped last).
fn inheritance_depth(structure: &Structure, table: &str) -> usize {
    let mut depth = 0;
    let mut name = table.to_owned();
    while depth < 32 {
        let parent = structure
            .get(ObjectKind::Table, &ObjectName::new(name.as_str()))
            .and_then(|t| t.definition.get("inherits"))
            .and_then(parse::own_name)
            .map(|(parent, _)| parent);
        match parent {
            Some(parent) => {
                depth += 1;
                name = parent;
            }
            None => break,
        }
    }
    depth
}

/// Two tables with the same column names and types, in order.
fn same_columns(a: &Structure, table_a: &str, b: &Structure, table_b: &str) -> bool {
    let shape = |s: &Structure, t: &str| -> Vec<(String, Option<String>)> {
        columns_of(s, t).into_iter().map(|(c, d)| (c, d.get("type").map(str::to_owned))).collect()
    };
    let (left, right) = (shape(a, table_a), shape(b, table_b));
    !left.is_empty() && left == right
}

/// A constraint its table has through its parent (a partition's, or an inheriting table's): same name and
/// definition on the parent.
fn inherited(structure: &Structure, name: &ObjectName, definition: &str) -> bool {
    let table = name.table.as_deref().unwrap_or_default();
    let parent = structure
        .get(ObjectKind::Table, &ObjectName::new(table))
        .and_then(|t| t.definition.get("inherits"))
        .and_then(parse::own_name)
        .map(|(parent, _)| parent);
    parent.is_some_and(|parent| {
        structure
            .get(ObjectKind::Constraint, &ObjectName::of_table(parent, name.name.as_str()))
            .is_some_and(|c| c.definition.get("definition") == Some(definition))
    })
}

/// The index is the one a primary key, unique or exclusion constraint of the same name builds.
fn backs_constraint(structure: &Structure, index: &ObjectName, table: &str) -> bool {
    structure.get(ObjectKind::Constraint, &ObjectName::of_table(table, index.name.as_str())).is_some_and(|c| {
        let definition = c.definition.get("definition").unwrap_or_default();
        ["PRIMARY KEY", "UNIQUE", "EXCLUDE"].iter().any(|kind| definition.starts_with(kind))
    })
}
