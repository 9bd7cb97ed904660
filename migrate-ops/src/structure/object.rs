//! What a schema is, reduced to compare: objects by kind and name, each a definition with a fingerprint.

use std::collections::BTreeMap;
use std::fmt;

/// What stands for a schema's own name inside definitions, so that two tenants built alike compare equal:
/// `"tenant-1".orders` and `tenant2.orders` both read `<schema>.orders`.
pub const SCHEMA_PLACEHOLDER: &str = "<schema>";

/// The kinds of object compared. The order of the variants is the order in which differences are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A table (plain, partitioned or foreign): its column order, partitioning, row-level security flags, options.
    Table,
    /// A column of a table.
    Column,
    /// A table constraint: primary key, unique, foreign key, check, exclusion, constraint trigger.
    Constraint,
    /// An index, including those backing constraints.
    Index,
    /// A view.
    View,
    /// A materialized view.
    MaterializedView,
    /// A sequence, including those behind serial and identity columns.
    Sequence,
    /// An enum type, its labels in order.
    EnumType,
    /// A composite type made with `CREATE TYPE ... AS (...)`.
    CompositeType,
    /// A domain.
    Domain,
    /// A range type.
    RangeType,
    /// A function.
    Function,
    /// A procedure.
    Procedure,
    /// An aggregate.
    Aggregate,
    /// A trigger.
    Trigger,
    /// A row-level security policy.
    Policy,
    /// A rewrite rule (other than a view's own).
    Rule,
}

impl ObjectKind {
    /// Every kind, in report order.
    pub const ALL: [ObjectKind; 17] = [
        ObjectKind::Table,
        ObjectKind::Column,
        ObjectKind::Constraint,
        ObjectKind::Index,
        ObjectKind::View,
        ObjectKind::MaterializedView,
        ObjectKind::Sequence,
        ObjectKind::EnumType,
        ObjectKind::CompositeType,
        ObjectKind::Domain,
        ObjectKind::RangeType,
        ObjectKind::Function,
        ObjectKind::Procedure,
        ObjectKind::Aggregate,
        ObjectKind::Trigger,
        ObjectKind::Policy,
        ObjectKind::Rule,
    ];

    /// The kind in words, as the catalog queries also spell it: `table`, `materialized view`, `enum type`, ...
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::Column => "column",
            ObjectKind::Constraint => "constraint",
            ObjectKind::Index => "index",
            ObjectKind::View => "view",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::Sequence => "sequence",
            ObjectKind::EnumType => "enum type",
            ObjectKind::CompositeType => "composite type",
            ObjectKind::Domain => "domain",
            ObjectKind::RangeType => "range type",
            ObjectKind::Function => "function",
            ObjectKind::Procedure => "procedure",
            ObjectKind::Aggregate => "aggregate",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Policy => "policy",
            ObjectKind::Rule => "rule",
        }
    }

    /// The kind with this [`label`](ObjectKind::label).
    pub fn from_label(label: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|kind| kind.label() == label)
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Which object: its name as in the catalog, never an OID, so that schemas built in a different order compare
/// equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectName {
    /// The table (or view) the object belongs to: set for columns, constraints, triggers, policies and rules.
    pub table: Option<String>,
    /// The object's own name, unquoted.
    pub name: String,
    /// For functions, procedures and aggregates: the identity arguments (overloads are different objects), with
    /// the schema's own name replaced by [`SCHEMA_PLACEHOLDER`].
    pub arguments: Option<String>,
}

impl ObjectName {
    /// A schema-level object (table, index, type, ...).
    pub fn new(name: impl Into<String>) -> ObjectName {
        ObjectName { table: None, name: name.into(), arguments: None }
    }

    /// An object that belongs to a table (column, constraint, trigger, policy, rule).
    pub fn of_table(table: impl Into<String>, name: impl Into<String>) -> ObjectName {
        ObjectName { table: Some(table.into()), name: name.into(), arguments: None }
    }

    /// A function, procedure or aggregate with its identity arguments.
    pub fn routine(name: impl Into<String>, arguments: impl Into<String>) -> ObjectName {
        ObjectName { table: None, name: name.into(), arguments: Some(arguments.into()) }
    }
}

/// `table.name` or `name(arguments)`, each part quoted only when it needs to be, for people to read.
impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(table) = &self.table {
            write!(f, "{}.", display_ident(table))?;
        }
        f.write_str(&display_ident(&self.name))?;
        if let Some(arguments) = &self.arguments {
            write!(f, "({arguments})")?;
        }
        Ok(())
    }
}

/// An identifier as a person would type it: bare when it is lower-case ASCII, quoted otherwise.
fn display_ident(name: &str) -> String {
    let plain = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'$');
    if plain {
        name.to_owned()
    } else {
        migrate_runtime::quote_ident(name)
    }
}

/// An object's definition: named attributes in a fixed order (`type`, `default`, `definition`, `comment`, ...),
/// only those that are set. Kept as attributes rather than one text so a difference can say *what* changed and
/// [`generate`](crate::generate) can build a statement from the parts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Definition {
    attributes: Vec<(String, String)>,
}

impl Definition {
    /// A definition from `(attribute, value)` pairs; an empty value is a flag (`not null`, `invalid`, ...).
    pub fn new<N: Into<String>, V: Into<String>>(attributes: impl IntoIterator<Item = (N, V)>) -> Definition {
        Definition { attributes: attributes.into_iter().map(|(n, v)| (n.into(), v.into())).collect() }
    }

    /// The value of an attribute, `Some("")` for a flag that is set, `None` when the attribute is not set.
    pub fn get(&self, attribute: &str) -> Option<&str> {
        self.attributes.iter().find(|(name, _)| name == attribute).map(|(_, value)| value.as_str())
    }

    /// Whether a flag (or any attribute) is set.
    pub fn has(&self, attribute: &str) -> bool {
        self.get(attribute).is_some()
    }

    /// The attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Names of the attributes that differ between `self` and `other` (set in one only, or with other values), in
    /// the order of `self` then of `other`.
    pub fn changed_attributes<'a>(&'a self, other: &'a Definition) -> Vec<&'a str> {
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in self.attributes().chain(other.attributes()) {
            if !names.contains(&name) && self.get(name) != other.get(name) {
                names.push(name);
            }
        }
        names
    }
}

/// One line per attribute, `name: value` (a flag alone), continuation lines of a long value indented.
impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.attributes().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if value.is_empty() {
                f.write_str(name)?;
            } else {
                write!(f, "{name}: {}", value.replace('\n', "\n    "))?;
            }
        }
        Ok(())
    }
}

/// A SHA-256 digest of an object's definition or of a whole schema's structure.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The fingerprint of one object. Every field is length-prefixed, so no two different objects hash the same
    /// text.
    fn of_object(kind: ObjectKind, name: &ObjectName, definition: &Definition) -> Fingerprint {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let mut field = |text: &str| {
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        };
        field(kind.label());
        field(name.table.as_deref().unwrap_or("\0none"));
        field(&name.name);
        field(name.arguments.as_deref().unwrap_or("\0none"));
        for (attribute, value) in definition.attributes() {
            field(attribute);
            field(value);
        }
        Fingerprint(hasher.finalize().into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// One object of a structure: its definition and that definition's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The definition, with the schema's own name replaced by [`SCHEMA_PLACEHOLDER`].
    pub definition: Definition,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
}

/// The structure of one schema: every compared object by kind and name, and a fingerprint of the whole. Two
/// schemas with the same structure have the same fingerprint, whatever their names and whatever order their
/// objects were created in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    pub(super) objects: BTreeMap<(ObjectKind, ObjectName), Object>,
    pub(super) fingerprint: Fingerprint,
}

impl Structure {
    /// A structure from its objects; computes the fingerprints.
    pub fn new(objects: impl IntoIterator<Item = (ObjectKind, ObjectName, Definition)>) -> Structure {
        let objects: BTreeMap<_, _> = objects
            .into_iter()
            .map(|(kind, name, definition)| {
                let fingerprint = Fingerprint::of_object(kind, &name, &definition);
                ((kind, name), Object { definition, fingerprint })
            })
            .collect();
        Structure::from_objects(objects)
    }

    fn from_objects(objects: BTreeMap<(ObjectKind, ObjectName), Object>) -> Structure {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        // The map is ordered by kind and name, so the order objects were read (or created) in does not matter.
        for object in objects.values() {
            hasher.update(object.fingerprint.0);
        }
        Structure { objects, fingerprint: Fingerprint(hasher.finalize().into()) }
    }

    /// The fingerprint of the whole structure.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The objects, ordered by kind and name.
    pub fn objects(&self) -> impl Iterator<Item = (ObjectKind, &ObjectName, &Object)> {
        self.objects.iter().map(|((kind, name), object)| (*kind, name, object))
    }

    /// One object.
    pub fn get(&self, kind: ObjectKind, name: &ObjectName) -> Option<&Object> {
        self.objects.get(&(kind, name.clone()))
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// No objects at all.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_owns_its_label_and_reads_it_back() {
        for kind in ObjectKind::ALL {
            assert_eq!(ObjectKind::from_label(kind.label()), Some(kind));
        }
        assert_eq!(ObjectKind::from_label("tablespace"), None);
        let mut sorted = ObjectKind::ALL;
        sorted.sort();
        assert_eq!(sorted, ObjectKind::ALL, "ALL is in report order");
    }

    #[test]
    fn names_are_shown_quoted_only_when_needed() {
        assert_eq!(ObjectName::of_table("customers", "email").to_string(), "customers.email");
        assert_eq!(ObjectName::of_table("My Table", "a\"b").to_string(), r#""My Table"."a""b""#);
        assert_eq!(ObjectName::routine("touch", "x <schema>.status").to_string(), "touch(x <schema>.status)");
    }

    #[test]
    fn fingerprints_ignore_creation_order_and_see_every_attribute() {
        let a = (ObjectKind::Table, ObjectName::new("a"), Definition::new([("columns", "id")]));
        let b = (ObjectKind::Index, ObjectName::new("b"), Definition::new([("definition", "CREATE INDEX b")]));
        let one = Structure::new([a.clone(), b.clone()]);
        let two = Structure::new([b.clone(), a.clone()]);
        assert_eq!(one.fingerprint(), two.fingerprint());
        let changed =
            Structure::new([a, (b.0, b.1, Definition::new([("definition", "CREATE INDEX b"), ("invalid", "")]))]);
        assert_ne!(one.fingerprint(), changed.fingerprint());
        // Moving text between fields changes the fingerprint: fields are length-prefixed.
        let x = Fingerprint::of_object(ObjectKind::Column, &ObjectName::of_table("ab", "c"), &Definition::default());
        let y = Fingerprint::of_object(ObjectKind::Column, &ObjectName::of_table("a", "bc"), &Definition::default());
        assert_ne!(x, y);
    }

    #[test]
    fn definitions_render_one_attribute_a_line_and_name_what_changed() {
        let before = Definition::new([("type", "text"), ("not null", ""), ("default", "'a'::text")]);
        let after = Definition::new([("type", "text"), ("comment", "two\nlines")]);
        assert_eq!(before.to_string(), "type: text\nnot null\ndefault: 'a'::text");
        assert_eq!(after.to_string(), "type: text\ncomment: two\n    lines");
        assert_eq!(before.changed_attributes(&after), ["not null", "default", "comment"]);
        assert_eq!(before.get("not null"), Some(""));
        assert!(!after.has("not null"));
    }
}
