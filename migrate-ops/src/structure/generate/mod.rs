//! The DDL generator: the statements that turn one structure into another, for every kind of object the structure
//! compares, in dependency order, every identifier quoted. Pure: structures in, a script out; what it writes is
//! proven elsewhere ([`crate::autogenerate`]) by running it.
//!
//! Order: drops first (what depends on an object before the object: triggers and policies, views, foreign keys,
//! constraints and indexes, columns, tables, sequences, routines, types), then changes, then creations (types,
//! sequences, routines that tables use, tables, columns, constraints, foreign keys, indexes, the other routines,
//! views, triggers and policies), then comments. Views that read a table whose columns change are dropped and
//! created again around the change.

mod change;
mod parse;
mod relations;
mod routines;
mod types;
mod views;

use std::collections::{BTreeMap, BTreeSet};

pub use change::{Changes, Qualifier, Review, ReviewReason, Unexpressed};

use self::change::{Change, Phase};
use super::diff::{diff, Difference};
use super::object::{Definition, ObjectKind, ObjectName, Structure, SCHEMA_PLACEHOLDER};
use migrate_runtime::{quote_ident, quote_literal};

/// The statements that turn `current` into `desired`, with review notes and what could not be expressed.
///
/// ```
/// use migrate_ops::{generate, Definition, ObjectKind, ObjectName, Qualifier, Structure};
///
/// let table = (ObjectKind::Table, ObjectName::new("t"), Definition::new([("columns", "id")]));
/// let id = (ObjectKind::Column, ObjectName::of_table("t", "id"), Definition::new([("type", "integer")]));
/// let changes = generate(&Structure::new([]), &Structure::new([table, id]));
/// assert_eq!(changes.script(Qualifier::SearchPath), "CREATE TABLE \"t\" (\n    \"id\" integer\n);\n");
/// ```
pub fn generate(current: &Structure, desired: &Structure) -> Changes {
    let mut generator = Generator::new(current, desired);
    for difference in diff(desired, current) {
        generator.difference(&difference);
    }
    generator.recreate_affected_views();
    generator.finish()
}

/// One generation: the two structures, what is being created or dropped whole, and the statements so far.
pub(crate) struct Generator<'s> {
    current: &'s Structure,
    desired: &'s Structure,
    /// Tables created by this script: their columns, constraints and indexes need no review.
    created_tables: BTreeSet<String>,
    /// Tables dropped by this script: what belongs to them goes with them.
    dropped_tables: BTreeSet<String>,
    /// Tables and types whose change makes the views that read them be dropped and created again.
    reshaped: BTreeSet<String>,
    /// Views already dropped and created by their own difference.
    views_handled: BTreeSet<(ObjectKind, String)>,
    changes: Vec<(Change, usize)>,
    unexpressed: Vec<Unexpressed>,
    no_transaction_labels: Vec<String>,
}

impl<'s> Generator<'s> {
    fn new(current: &'s Structure, desired: &'s Structure) -> Generator<'s> {
        let tables = |structure: &Structure| -> BTreeSet<String> {
            structure.objects().filter(|(k, _, _)| *k == ObjectKind::Table).map(|(_, n, _)| n.name.clone()).collect()
        };
        let (now, wanted) = (tables(current), tables(desired));
        Generator {
            current,
            desired,
            created_tables: wanted.difference(&now).cloned().collect(),
            dropped_tables: now.difference(&wanted).cloned().collect(),
            reshaped: BTreeSet::new(),
            views_handled: BTreeSet::new(),
            changes: Vec::new(),
            unexpressed: Vec::new(),
            no_transaction_labels: Vec::new(),
        }
    }

    fn difference(&mut self, difference: &Difference) {
        let (kind, name) = (difference.kind(), difference.name());
        let (desired, current) = match difference {
            Difference::Missing { definition, .. } => (Some(definition), None),
            Difference::Extra { definition, .. } => (None, Some(definition)),
            Difference::Changed { expected, found, .. } => (Some(expected), Some(found)),
        };
        match kind {
            ObjectKind::Table => self.table(name, current, desired),
            ObjectKind::Column => self.column(name, current, desired),
            ObjectKind::Constraint => self.constraint(name, current, desired),
            ObjectKind::Index => self.index(name, current, desired),
            ObjectKind::Sequence => self.sequence(name, current, desired),
            ObjectKind::View | ObjectKind::MaterializedView => self.view(kind, name, current, desired),
            ObjectKind::EnumType => self.enum_type(name, current, desired),
            ObjectKind::CompositeType => self.composite_type(name, current, desired),
            ObjectKind::Domain => self.domain(name, current, desired),
            ObjectKind::RangeType => self.range_type(name, current, desired),
            ObjectKind::Function | ObjectKind::Procedure | ObjectKind::Aggregate => {
                self.routine(kind, name, current, desired)
            }
            ObjectKind::Trigger | ObjectKind::Policy | ObjectKind::Rule => {
                self.table_dependent(kind, name, current, desired)
            }
        }
    }

    fn push(&mut self, change: Change) {
        self.changes.push((change, 0));
    }

    /// A change ordered among those of its phase by `rank` (views after the views they read, tables after their
    /// parents).
    fn push_ranked(&mut self, change: Change, rank: usize) {
        self.changes.push((change, rank));
    }

    fn cannot(&mut self, kind: ObjectKind, name: &ObjectName, reason: impl Into<String>) {
        self.unexpressed.push(Unexpressed { kind, name: name.clone(), reason: reason.into() });
    }

    /// `COMMENT ON ...` when the comment differs: after the object is created, or in place of nothing else.
    fn comment(&mut self, target: String, current: Option<&Definition>, desired: &Definition) {
        let (before, after) = (current.and_then(|d| d.get("comment")), desired.get("comment"));
        if before == after {
            return;
        }
        let value = after.map_or_else(|| "NULL".to_owned(), quote_literal);
        self.push(Change::new(Phase::Comment, format!("COMMENT ON {target} IS {value};")));
    }

    /// Whether a table exists before the script runs and is kept (its changes lock and may rewrite it).
    fn existing_table(&self, table: &str) -> bool {
        !self.created_tables.contains(table) && !self.dropped_tables.contains(table)
    }

    fn finish(mut self) -> Changes {
        self.changes.sort_by_key(|(change, rank)| (change.phase, *rank));
        let changes: Vec<Change> = self.changes.into_iter().map(|(change, _)| change).collect();
        let no_transaction = self.no_transaction_labels.iter().any(|label| {
            changes.iter().filter(|c| c.phase != Phase::AlterType).any(|c| c.sql.contains(label.as_str()))
        });
        Changes { changes, unexpressed: self.unexpressed, no_transaction }
    }
}

/// `<schema>."name"`: an object of the schema, for the script's qualifier to render.
pub(crate) fn own(name: &str) -> String {
    format!("{SCHEMA_PLACEHOLDER}.{}", quote_ident(name))
}

/// The table an object belongs to, qualified.
pub(crate) fn table_of(name: &ObjectName) -> String {
    own(name.table.as_deref().unwrap_or_default())
}

/// The definitions of the columns of `table` in `structure`, in the table's column order.
pub(crate) fn columns_of<'s>(structure: &'s Structure, table: &str) -> Vec<(String, &'s Definition)> {
    let Some(order) = structure.get(ObjectKind::Table, &ObjectName::new(table)) else { return Vec::new() };
    let order = parse::columns(order.definition.get("columns").unwrap_or_default());
    order
        .into_iter()
        .filter_map(|column| {
            let object = structure.get(ObjectKind::Column, &ObjectName::of_table(table, column.as_str()))?;
            Some((column, &object.definition))
        })
        .collect()
}

/// Objects of one kind in a structure, by name.
pub(crate) fn of_kind(structure: &Structure, kind: ObjectKind) -> BTreeMap<&ObjectName, &Definition> {
    structure.objects().filter(|(k, _, _)| *k == kind).map(|(_, name, object)| (name, &object.definition)).collect()
}

#[cfg(test)]
mod tests;
