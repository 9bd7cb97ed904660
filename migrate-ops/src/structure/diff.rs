//! Comparing two structures: a pure function over two maps, so it is tested without a database.

use std::cmp::Ordering;
use std::fmt;

use super::object::{Definition, ObjectKind, ObjectName, Structure};

/// One way in which schema B differs from schema A. In [`verify_schemas`](crate::verify_schemas) A is the reference
/// (what the binary's migrations build) and B the tenant, so `Missing` is something the tenant lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// In A, not in B.
    Missing {
        /// What kind of object.
        kind: ObjectKind,
        /// Which.
        name: ObjectName,
        /// Its definition in A.
        definition: Definition,
    },
    /// In B, not in A.
    Extra {
        /// What kind of object.
        kind: ObjectKind,
        /// Which.
        name: ObjectName,
        /// Its definition in B.
        definition: Definition,
    },
    /// In both, defined differently.
    Changed {
        /// What kind of object.
        kind: ObjectKind,
        /// Which.
        name: ObjectName,
        /// Its definition in A (the reference).
        expected: Definition,
        /// Its definition in B.
        found: Definition,
    },
}

impl Difference {
    /// The kind of object.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Difference::Missing { kind, .. } | Difference::Extra { kind, .. } | Difference::Changed { kind, .. } => {
                *kind
            }
        }
    }

    /// Which object.
    pub fn name(&self) -> &ObjectName {
        match self {
            Difference::Missing { name, .. } | Difference::Extra { name, .. } | Difference::Changed { name, .. } => {
                name
            }
        }
    }

    /// `missing`, `extra` or `changed`.
    pub fn label(&self) -> &'static str {
        match self {
            Difference::Missing { .. } => "missing",
            Difference::Extra { .. } => "extra",
            Difference::Changed { .. } => "changed",
        }
    }
}

/// One line: `missing index orders_customer_id_idx`, `changed column orders.status (default)`.
impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.label(), self.kind(), self.name())?;
        if let Difference::Changed { expected, found, .. } = self {
            write!(f, " ({})", expected.changed_attributes(found).join(", "))?;
        }
        Ok(())
    }
}

/// Every difference between A and B, ordered by kind and name. Objects are matched on kind and name and compared
/// by fingerprint; two structures with equal fingerprints have no differences.
///
/// ```
/// use migrate_ops::{diff, Definition, Difference, ObjectKind, ObjectName, Structure};
///
/// let index = |def: &str| (ObjectKind::Index, ObjectName::new("i"), Definition::new([("definition", def)]));
/// let a = Structure::new([index("CREATE INDEX i ON <schema>.t USING btree (a)")]);
/// let b = Structure::new([index("CREATE INDEX i ON <schema>.t USING btree (b)")]);
/// assert!(matches!(&diff(&a, &b)[..], [Difference::Changed { kind: ObjectKind::Index, .. }]));
/// assert!(diff(&a, &a).is_empty());
/// ```
pub fn diff(a: &Structure, b: &Structure) -> Vec<Difference> {
    let mut differences = Vec::new();
    if a.fingerprint == b.fingerprint {
        return differences;
    }
    let mut left = a.objects.iter().peekable();
    let mut right = b.objects.iter().peekable();
    loop {
        let order = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((l, _)), Some((r, _))) => l.cmp(r),
        };
        match order {
            Ordering::Less => {
                let ((kind, name), object) = left.next().expect("peeked");
                differences.push(Difference::Missing {
                    kind: *kind,
                    name: name.clone(),
                    definition: object.definition.clone(),
                });
            }
            Ordering::Greater => {
                let ((kind, name), object) = right.next().expect("peeked");
                differences.push(Difference::Extra {
                    kind: *kind,
                    name: name.clone(),
                    definition: object.definition.clone(),
                });
            }
            Ordering::Equal => {
                let ((kind, name), expected) = left.next().expect("peeked");
                let (_, found) = right.next().expect("peeked");
                if expected.fingerprint != found.fingerprint {
                    differences.push(Difference::Changed {
                        kind: *kind,
                        name: name.clone(),
                        expected: expected.definition.clone(),
                        found: found.definition.clone(),
                    });
                }
            }
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(table: &str, name: &str, default: Option<&str>) -> (ObjectKind, ObjectName, Definition) {
        let mut attributes = vec![("type", "text")];
        attributes.extend(default.map(|d| ("default", d)));
        (ObjectKind::Column, ObjectName::of_table(table, name), Definition::new(attributes))
    }

    fn index(name: &str, invalid: bool) -> (ObjectKind, ObjectName, Definition) {
        let mut attributes = vec![("definition", format!("CREATE INDEX {name} ON <schema>.t USING btree (a)"))];
        if invalid {
            attributes.push(("invalid", String::new()));
        }
        (ObjectKind::Index, ObjectName::new(name), Definition::new(attributes))
    }

    #[test]
    fn equal_structures_have_no_differences() {
        let a = Structure::new([column("t", "a", None), index("i", false)]);
        let b = Structure::new([index("i", false), column("t", "a", None)]);
        assert!(diff(&a, &b).is_empty());
        assert!(diff(&Structure::new([]), &Structure::new([])).is_empty());
    }

    #[test]
    fn missing_extra_and_changed_objects_are_named_with_their_definitions() {
        let a = Structure::new([column("t", "a", Some("1")), index("i", false), index("j", false)]);
        let b = Structure::new([column("t", "a", None), column("t", "b", None), index("j", true)]);
        let differences = diff(&a, &b);
        assert_eq!(
            differences,
            [
                Difference::Changed {
                    kind: ObjectKind::Column,
                    name: ObjectName::of_table("t", "a"),
                    expected: column("t", "a", Some("1")).2,
                    found: column("t", "a", None).2,
                },
                Difference::Extra {
                    kind: ObjectKind::Column,
                    name: ObjectName::of_table("t", "b"),
                    definition: column("t", "b", None).2,
                },
                Difference::Missing {
                    kind: ObjectKind::Index,
                    name: ObjectName::new("i"),
                    definition: index("i", false).2
                },
                Difference::Changed {
                    kind: ObjectKind::Index,
                    name: ObjectName::new("j"),
                    expected: index("j", false).2,
                    found: index("j", true).2,
                },
            ]
        );
        let lines: Vec<String> = differences.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            ["changed column t.a (default)", "extra column t.b", "missing index i", "changed index j (invalid)"]
        );
    }

    #[test]
    fn diff_is_symmetric_up_to_the_direction() {
        let a = Structure::new([index("i", false)]);
        let b = Structure::new([index("k", false)]);
        let there: Vec<_> = diff(&a, &b).iter().map(|d| (d.label(), d.name().name.clone())).collect();
        let back: Vec<_> = diff(&b, &a).iter().map(|d| (d.label(), d.name().name.clone())).collect();
        assert_eq!(there, [("missing", "i".to_owned()), ("extra", "k".to_owned())]);
        assert_eq!(back, [("extra", "i".to_owned()), ("missing", "k".to_owned())]);
    }

    #[test]
    fn same_name_different_kind_are_different_objects() {
        let a = Structure::new([(ObjectKind::View, ObjectName::new("x"), Definition::default())]);
        let b = Structure::new([(ObjectKind::Table, ObjectName::new("x"), Definition::default())]);
        let labels: Vec<String> = diff(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(labels, ["extra table x", "missing view x"]);
    }
}
