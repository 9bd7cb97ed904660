//! Functions, procedures and aggregates.

use super::change::{Change, Phase, ReviewReason};
use super::{own, parse, Generator};
use crate::structure::object::{Definition, ObjectKind, ObjectName, Structure, SCHEMA_PLACEHOLDER};
use migrate_runtime::quote_literal;

impl Generator<'_> {
    pub(super) fn routine(
        &mut self,
        kind: ObjectKind,
        name: &ObjectName,
        current: Option<&Definition>,
        desired: Option<&Definition>,
    ) {
        let defined_by_range = |structure: &Structure, definition: Option<&Definition>| {
            definition.is_some_and(|d| d.get("language") == Some("internal") && range_support(structure, &name.name))
        };
        if defined_by_range(self.current, current) || defined_by_range(self.desired, desired) {
            return;
        }
        let word = keyword(kind);
        let signature = format!("{}({})", own(&name.name), name.arguments.as_deref().unwrap_or_default());
        let replaced = match (current, desired) {
            (Some(current), Some(desired)) => ["arguments", "returns"].iter().any(|a| current.get(a) != desired.get(a)),
            _ => true,
        };
        if current.is_some() && replaced {
            let phase =
                if used_by_tables(self.current, &name.name) { Phase::DropRoutine } else { Phase::DropLateRoutine };
            self.push(Change::new(phase, format!("DROP {word} {signature};")));
        }
        let Some(desired) = desired else { return };
        if kind == ObjectKind::Aggregate {
            let reason =
                "an aggregate's state function and type are not read from the catalog: write CREATE AGGREGATE by hand";
            return self.cannot(kind, name, reason);
        }
        let body_changed = current.is_none_or(|current| {
            current
                .attributes()
                .chain(desired.attributes())
                .any(|(a, _)| a != "comment" && current.get(a) != desired.get(a))
        });
        if replaced || body_changed {
            let phase =
                if used_by_tables(self.desired, &name.name) { Phase::CreateRoutine } else { Phase::CreateLateRoutine };
            let or_replace = if replaced { "" } else { "OR REPLACE " };
            let (sql, from_current) = create_routine(kind, &name.name, desired, or_replace);
            let mut change = Change::new(phase, sql);
            if from_current {
                let text = format!(
                    "{} {} sets its search_path FROM CURRENT: the search path the migration runs with (the tenant's \
                     schema first), which is what the schema it was read from had.",
                    kind, name.name
                );
                change = change.reviewed(ReviewReason::SearchPathFromCurrent, text);
            }
            self.push(change);
        }
        self.comment(format!("{word} {signature}"), current.filter(|_| !replaced), desired);
    }
}

fn keyword(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Procedure => "PROCEDURE",
        ObjectKind::Aggregate => "AGGREGATE",
        _ => "FUNCTION",
    }
}

/// `CREATE FUNCTION ...` from the catalog's attributes, and whether its search path is taken `FROM CURRENT`.
fn create_routine(kind: ObjectKind, name: &str, definition: &Definition, or_replace: &str) -> (String, bool) {
    let get = |attribute: &str| definition.get(attribute);
    let function = kind == ObjectKind::Function;
    let mut sql =
        format!("CREATE {or_replace}{} {}({})", keyword(kind), own(name), get("arguments").unwrap_or_default());
    if let Some(returns) = get("returns").filter(|_| function) {
        sql.push_str(&format!("\n    RETURNS {returns}"));
    }
    let language = get("language").unwrap_or("sql");
    sql.push_str(&format!("\n    LANGUAGE {}", bare_or_quoted(language)));
    if function {
        let mut traits = Vec::new();
        if definition.has("window") {
            traits.push("WINDOW".to_owned());
        }
        traits.push(get("volatility").unwrap_or("volatile").to_uppercase());
        if definition.has("strict") {
            traits.push("STRICT".to_owned());
        }
        if definition.has("leakproof") {
            traits.push("LEAKPROOF".to_owned());
        }
        if let Some(parallel) = get("parallel") {
            traits.push(format!("PARALLEL {}", parallel.to_uppercase()));
        }
        if let Some(cost) = get("cost") {
            traits.push(format!("COST {cost}"));
        }
        if let Some(rows) = get("rows") {
            traits.push(format!("ROWS {rows}"));
        }
        sql.push_str(&format!("\n    {}", traits.join(" ")));
    }
    if definition.has("security definer") {
        sql.push_str("\n    SECURITY DEFINER");
    }
    let mut from_current = false;
    for setting in get("set").unwrap_or_default().lines() {
        let (parameter, value) = setting.split_once('=').unwrap_or((setting, ""));
        let value = match parameter {
            "search_path" if value.contains(SCHEMA_PLACEHOLDER) => {
                from_current = true;
                "FROM CURRENT".to_owned()
            }
            "search_path" => format!("= {value}"),
            _ => format!("= {}", quote_literal(value)),
        };
        sql.push_str(&format!("\n    SET {} {value}", bare_or_quoted(parameter)));
    }
    let body = get("body").unwrap_or_default();
    let standard = language == "sql" && (body.starts_with("BEGIN ATOMIC") || body.starts_with("RETURN "));
    match (get("object file"), standard) {
        (Some(file), _) => sql.push_str(&format!("\nAS {}, {};", quote_literal(file), quote_literal(body))),
        (None, true) => sql.push_str(&format!("\n{body};")),
        (None, false) if language == "internal" => sql.push_str(&format!("\nAS {};", quote_literal(body))),
        (None, false) => {
            let tag = dollar_tag(body);
            sql.push_str(&format!("\nAS {tag}{body}{tag};"));
        }
    }
    (sql, from_current)
}

/// A dollar-quote tag that the body does not contain.
fn dollar_tag(body: &str) -> String {
    (0..)
        .map(|n| if n == 0 { "$body$".to_owned() } else { format!("$body{n}$") })
        .find(|tag| !body.contains(tag.as_str()))
        .expect("some tag is free")
}

/// A language or parameter name as the catalog holds it: only letters, digits and `_` and `.` are let through.
fn bare_or_quoted(word: &str) -> String {
    match word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
        true => word.to_owned(),
        false => migrate_runtime::quote_ident(word),
    }
}

/// Whether a table, column default, constraint, index or domain of `structure` calls the routine: it must then
/// exist before tables are created.
fn used_by_tables(structure: &Structure, routine: &str) -> bool {
    structure.objects().any(|(kind, _, object)| {
        matches!(kind, ObjectKind::Column | ObjectKind::Constraint | ObjectKind::Index | ObjectKind::Domain)
            && object.definition.attributes().any(|(_, value)| parse::mentions(value, routine))
    })
}

/// The routine is one PostgreSQL made for a range type of the structure: its constructor, or its multirange's.
fn range_support(structure: &Structure, routine: &str) -> bool {
    structure.objects().any(|(kind, name, _)| {
        kind == ObjectKind::RangeType
            && (name.name == routine
                || name.name.replacen("range", "multirange", 1) == routine
                || format!("{}_multirange", name.name) == routine)
    })
}
