//! Enum, composite and range types, and domains.

use super::change::{Change, Phase, ReviewReason};
use super::{columns_of, own, parse, Generator};
use crate::structure::object::{Definition, ObjectKind, ObjectName, SCHEMA_PLACEHOLDER};
use migrate_runtime::quote_ident;

impl Generator<'_> {
    pub(super) fn enum_type(&mut self, name: &ObjectName, current: Option<&Definition>, desired: Option<&Definition>) {
        let type_name = own(&name.name);
        match (current, desired) {
            (None, Some(desired)) => {
                let labels = desired.get("labels").unwrap_or_default();
                self.push(Change::new(Phase::CreateType, format!("CREATE TYPE {type_name} AS ENUM ({labels});")));
                self.comment(format!("TYPE {type_name}"), None, desired);
            }
            (Some(_), None) => self.push(Change::new(Phase::DropType, format!("DROP TYPE {type_name};"))),
            (Some(current), Some(desired)) => {
                let before = parse::labels(current.get("labels").unwrap_or_default());
                let after = parse::labels(desired.get("labels").unwrap_or_default());
                if before != after {
                    match is_ordered_subset(&before, &after) {
                        true => self.add_enum_labels(&type_name, &before, &after),
                        false => self.recreate_enum(name, desired),
                    }
                }
                self.comment(format!("TYPE {type_name}"), Some(current), desired);
            }
            (None, None) => {}
        }
    }

    /// `ALTER TYPE ... ADD VALUE`, each placed before the label that follows it or after the one before it.
    fn add_enum_labels(&mut self, type_name: &str, before: &[&str], after: &[&str]) {
        for (i, label) in after.iter().enumerate() {
            if before.contains(label) {
                continue;
            }
            let place = match (i.checked_sub(1).map(|p| after[p]), after.get(i + 1)) {
                (Some(previous), _) => format!(" AFTER {previous}"),
                (None, Some(next)) => format!(" BEFORE {next}"),
                (None, None) => String::new(),
            };
            let sql = format!("ALTER TYPE {type_name} ADD VALUE {label}{place};");
            self.push(Change::new(Phase::AlterType, sql));
            self.no_transaction_labels.push((*label).to_owned());
        }
    }

    /// PostgreSQL cannot drop or reorder an enum's labels: rename the type away, create it anew, convert every
    /// column that uses it through text, drop the old one.
    fn recreate_enum(&mut self, name: &ObjectName, desired: &Definition) {
        let type_name = own(&name.name);
        let old = own(&format!("{}__replaced", name.name));
        let mut sql = format!(
            "ALTER TYPE {type_name} RENAME TO {};\nCREATE TYPE {type_name} AS ENUM ({});",
            quote_ident(&format!("{}__replaced", name.name)),
            desired.get("labels").unwrap_or_default()
        );
        let used_as = [
            format!("{SCHEMA_PLACEHOLDER}.{}", display_name(&name.name)),
            format!("{SCHEMA_PLACEHOLDER}.{}[]", display_name(&name.name)),
        ];
        let tables: Vec<String> = super::of_kind(self.current, ObjectKind::Table)
            .keys()
            .map(|n| n.name.clone())
            .filter(|t| self.existing_table(t))
            .collect();
        for table in &tables {
            for (column, definition) in columns_of(self.current, table) {
                let Some(array) = used_as.iter().position(|t| definition.get("type") == Some(t.as_str())) else {
                    continue;
                };
                self.reshaped.insert(table.clone());
                let alter = format!("\nALTER TABLE {} ALTER COLUMN {}", own(table), quote_ident(&column));
                let (text_type, new_type) =
                    if array == 1 { ("text[]", format!("{type_name}[]")) } else { ("text", type_name.clone()) };
                if definition.has("default") {
                    sql.push_str(&format!("{alter} DROP DEFAULT;"));
                }
                sql.push_str(&format!(
                    "{alter} TYPE {new_type} USING {}::{text_type}::{new_type};",
                    quote_ident(&column)
                ));
                let desired_column =
                    self.desired.get(ObjectKind::Column, &ObjectName::of_table(table.as_str(), column.as_str()));
                if let Some(default) = desired_column.and_then(|c| c.definition.get("default")) {
                    sql.push_str(&format!("{alter} SET DEFAULT {default};"));
                }
            }
        }
        sql.push_str(&format!("\nDROP TYPE {old};"));
        let text = format!(
            "PostgreSQL cannot remove or reorder an enum's values, so type {} is created anew and its columns \
             converted through text: this rewrites those tables, and fails if a row holds a value that is gone.",
            name.name
        );
        self.push(Change::new(Phase::AlterType, sql).reviewed(ReviewReason::MayFailOnRows, text));
    }

    pub(super) fn composite_type(
        &mut self,
        name: &ObjectName,
        current: Option<&Definition>,
        desired: Option<&Definition>,
    ) {
        let type_name = own(&name.name);
        match (current, desired) {
            (None, Some(desired)) => {
                let attributes = desired.get("attributes").unwrap_or_default();
                self.push(Change::new(
                    Phase::CreateCompositeType,
                    format!("CREATE TYPE {type_name} AS ({attributes});"),
                ));
                self.comment(format!("TYPE {type_name}"), None, desired);
            }
            (Some(_), None) => self.push(Change::new(Phase::DropCompositeType, format!("DROP TYPE {type_name};"))),
            (Some(current), Some(desired)) => {
                let before = parse::attributes(current.get("attributes").unwrap_or_default());
                let after = parse::attributes(desired.get("attributes").unwrap_or_default());
                let mut kept: Vec<&str> =
                    before.iter().filter(|(n, _)| after.iter().any(|(m, _)| m == n)).map(|(n, _)| n.as_str()).collect();
                kept.extend(after.iter().filter(|(n, _)| !before.iter().any(|(m, _)| m == n)).map(|(n, _)| n.as_str()));
                if kept != after.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>() {
                    let reason =
                        "its attributes are reordered, which ALTER TYPE cannot do: drop and create the type by hand";
                    return self.cannot(ObjectKind::CompositeType, name, reason);
                }
                let mut actions = Vec::new();
                for (attribute, _) in before.iter().filter(|(n, _)| !after.iter().any(|(m, _)| m == n)) {
                    actions.push(format!("DROP ATTRIBUTE {}", quote_ident(attribute)));
                }
                for (attribute, new_type) in &after {
                    match before.iter().find(|(n, _)| n == attribute) {
                        Some((_, old_type)) if old_type != new_type => {
                            actions.push(format!("ALTER ATTRIBUTE {} TYPE {new_type}", quote_ident(attribute)))
                        }
                        Some(_) => {}
                        None => actions.push(format!("ADD ATTRIBUTE {} {new_type}", quote_ident(attribute))),
                    }
                }
                if !actions.is_empty() {
                    self.push(Change::new(Phase::AlterType, format!("ALTER TYPE {type_name} {};", actions.join(", "))));
                }
                self.comment(format!("TYPE {type_name}"), Some(current), desired);
            }
            (None, None) => {}
        }
    }

    pub(super) fn domain(&mut self, name: &ObjectName, current: Option<&Definition>, desired: Option<&Definition>) {
        let domain = own(&name.name);
        match (current, desired) {
            (None, Some(desired)) => {
                let mut sql = format!("CREATE DOMAIN {domain} AS {}", desired.get("base type").unwrap_or_default());
                if let Some(default) = desired.get("default") {
                    sql.push_str(&format!(" DEFAULT {default}"));
                }
                if desired.has("not null") {
                    sql.push_str(" NOT NULL");
                }
                for (constraint, definition) in
                    parse::domain_constraints(desired.get("constraints").unwrap_or_default())
                {
                    sql.push_str(&format!(" CONSTRAINT {} {definition}", quote_ident(&constraint)));
                }
                sql.push(';');
                self.push(Change::new(Phase::CreateDomain, sql));
                self.comment(format!("DOMAIN {domain}"), None, desired);
            }
            (Some(_), None) => self.push(Change::new(Phase::DropDomain, format!("DROP DOMAIN {domain};"))),
            (Some(current), Some(desired)) => self.alter_domain(name, current, desired),
            (None, None) => {}
        }
    }

    fn alter_domain(&mut self, name: &ObjectName, current: &Definition, desired: &Definition) {
        let domain = own(&name.name);
        if current.get("base type") != desired.get("base type") {
            let reason = "its base type changes, which ALTER DOMAIN cannot do: create a new domain and convert the columns by hand";
            return self.cannot(ObjectKind::Domain, name, reason);
        }
        let alter = |action: String| Change::new(Phase::AlterType, format!("ALTER DOMAIN {domain} {action};"));
        if current.get("default") != desired.get("default") {
            let action =
                desired.get("default").map_or_else(|| "DROP DEFAULT".to_owned(), |d| format!("SET DEFAULT {d}"));
            self.push(alter(action));
        }
        if current.has("not null") != desired.has("not null") {
            let action = if desired.has("not null") { "SET NOT NULL" } else { "DROP NOT NULL" };
            self.push(alter(action.to_owned()));
        }
        let before = parse::domain_constraints(current.get("constraints").unwrap_or_default());
        let after = parse::domain_constraints(desired.get("constraints").unwrap_or_default());
        for (constraint, _) in before.iter().filter(|c| !after.contains(c)) {
            self.push(alter(format!("DROP CONSTRAINT {}", quote_ident(constraint))));
        }
        for (constraint, definition) in after.iter().filter(|c| !before.contains(c)) {
            let text =
                format!("adding constraint {constraint} to domain {} checks every column of that domain.", name.name);
            let change = alter(format!("ADD CONSTRAINT {} {definition}", quote_ident(constraint)));
            self.push(change.reviewed(ReviewReason::ScansTable, text));
        }
        self.comment(format!("DOMAIN {domain}"), Some(current), desired);
    }

    pub(super) fn range_type(&mut self, name: &ObjectName, current: Option<&Definition>, desired: Option<&Definition>) {
        let type_name = own(&name.name);
        match (current, desired) {
            (None, Some(desired)) => {
                let subtype = desired.get("subtype").unwrap_or_default();
                self.push(Change::new(
                    Phase::CreateType,
                    format!("CREATE TYPE {type_name} AS RANGE (SUBTYPE = {subtype});"),
                ));
                self.comment(format!("TYPE {type_name}"), None, desired);
            }
            (Some(_), None) => self.push(Change::new(Phase::DropType, format!("DROP TYPE {type_name};"))),
            (Some(current), Some(desired)) => {
                if current.get("subtype") != desired.get("subtype") {
                    let reason = "its subtype changes, which ALTER TYPE cannot do: drop and create the type by hand";
                    return self.cannot(ObjectKind::RangeType, name, reason);
                }
                self.comment(format!("TYPE {type_name}"), Some(current), desired);
            }
            (None, None) => {}
        }
    }
}

/// A name as `format_type` prints it: bare when it can be, quoted otherwise (keywords aside).
fn display_name(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        quote_ident(name)
    }
}

/// Every element of `before` is in `after`, in the same order.
fn is_ordered_subset(before: &[&str], after: &[&str]) -> bool {
    let mut rest = after.iter();
    before.iter().all(|label| rest.any(|l| l == label))
}
