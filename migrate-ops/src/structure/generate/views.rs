//! Views and materialized views, and what hangs off a table or view: triggers, policies and rules.

use super::change::{Change, Phase};
use super::{of_kind, own, parse, table_of, Generator};
use crate::structure::object::{Definition, ObjectKind, ObjectName, Structure};
use migrate_runtime::quote_ident;

impl Generator<'_> {
    pub(super) fn view(
        &mut self,
        kind: ObjectKind,
        name: &ObjectName,
        current: Option<&Definition>,
        desired: Option<&Definition>,
    ) {
        let rebuilt = match (current, desired) {
            (Some(current), Some(desired)) => {
                ["definition", "options"].iter().any(|a| current.get(a) != desired.get(a))
            }
            _ => true,
        };
        if rebuilt {
            self.views_handled.insert((kind, name.name.clone()));
            self.reshaped.insert(name.name.clone());
            if current.is_some() {
                self.drop_view(kind, name);
            }
            if let Some(desired) = desired {
                self.create_view(kind, name, desired, current.is_some());
            }
        } else if let (Some(current), Some(desired)) = (current, desired) {
            self.view_comments(kind, name, Some(current), desired);
        }
    }

    fn drop_view(&mut self, kind: ObjectKind, name: &ObjectName) {
        let word = view_keyword(kind);
        let rank = usize::MAX - view_depth(self.current, &name.name);
        self.push_ranked(Change::new(Phase::DropView, format!("DROP {word} {};", own(&name.name))), rank);
    }

    /// `CREATE VIEW`, its comments, and, when it replaces one that was dropped, what the drop took with it: its
    /// indexes, triggers and rules.
    fn create_view(&mut self, kind: ObjectKind, name: &ObjectName, desired: &Definition, replaces: bool) {
        let word = view_keyword(kind);
        let options = desired.get("options").map(|o| format!(" WITH ({o})")).unwrap_or_default();
        let query = desired.get("definition").unwrap_or_default().trim_end().trim_end_matches(';');
        let data = if kind == ObjectKind::MaterializedView { " WITH DATA" } else { "" };
        let sql = format!("CREATE {word} {}{options} AS\n{query}{data};", own(&name.name));
        self.push_ranked(Change::new(Phase::CreateView, sql), view_depth(self.desired, &name.name));
        self.view_comments(kind, name, None, desired);
        if !replaces {
            return;
        }
        let desired_structure = self.desired;
        for (index, definition) in of_kind(desired_structure, ObjectKind::Index) {
            if parse::index_table(definition.get("definition").unwrap_or_default()).as_deref()
                == Some(name.name.as_str())
                && self.current.get(ObjectKind::Index, index).is_some()
            {
                self.index(index, None, Some(definition));
            }
        }
        for dependent_kind in [ObjectKind::Trigger, ObjectKind::Rule] {
            for (dependent, definition) in of_kind(desired_structure, dependent_kind) {
                if dependent.table.as_deref() == Some(name.name.as_str())
                    && self.current.get(dependent_kind, dependent).is_some()
                {
                    self.table_dependent(dependent_kind, dependent, None, Some(definition));
                }
            }
        }
    }

    fn view_comments(
        &mut self,
        kind: ObjectKind,
        name: &ObjectName,
        current: Option<&Definition>,
        desired: &Definition,
    ) {
        let view = own(&name.name);
        self.comment(format!("{} {view}", view_keyword(kind)), current, desired);
        let comments = |d: Option<&Definition>| {
            parse::column_comments(d.and_then(|d| d.get("column comments")).unwrap_or_default())
        };
        let (before, after) = (comments(current), comments(Some(desired)));
        for (column, _) in before.iter().filter(|(c, _)| !after.iter().any(|(a, _)| a == c)) {
            self.push(Change::new(
                Phase::Comment,
                format!("COMMENT ON COLUMN {view}.{} IS NULL;", quote_ident(column)),
            ));
        }
        for (column, comment) in after.iter().filter(|c| !before.contains(c)) {
            let sql = format!(
                "COMMENT ON COLUMN {view}.{} IS {};",
                quote_ident(column),
                migrate_runtime::quote_literal(comment)
            );
            self.push(Change::new(Phase::Comment, sql));
        }
    }

    /// Views that read a table, type or view this script reshapes are dropped before and created after, as
    /// PostgreSQL refuses to change what a view depends on.
    pub(super) fn recreate_affected_views(&mut self) {
        loop {
            let affected: Vec<(ObjectKind, ObjectName, Definition)> = [ObjectKind::View, ObjectKind::MaterializedView]
                .into_iter()
                .flat_map(|kind| of_kind(self.current, kind).into_iter().map(move |(n, d)| (kind, n, d)))
                .filter(|(kind, name, definition)| {
                    !self.views_handled.contains(&(*kind, name.name.clone()))
                        && self.desired.get(*kind, name).is_some()
                        && self
                            .reshaped
                            .iter()
                            .any(|r| parse::mentions(definition.get("definition").unwrap_or_default(), r))
                })
                .map(|(kind, name, _)| {
                    let desired = self.desired.get(kind, name).map(|o| o.definition.clone()).unwrap_or_default();
                    (kind, name.clone(), desired)
                })
                .collect();
            if affected.is_empty() {
                break;
            }
            for (kind, name, desired) in affected {
                self.views_handled.insert((kind, name.name.clone()));
                self.reshaped.insert(name.name.clone());
                self.drop_view(kind, &name);
                self.create_view(kind, &name, &desired, true);
            }
        }
    }

    pub(super) fn table_dependent(
        &mut self,
        kind: ObjectKind,
        name: &ObjectName,
        current: Option<&Definition>,
        desired: Option<&Definition>,
    ) {
        let target = format!("{} {} ON {}", dependent_keyword(kind), quote_ident(&name.name), table_of(name));
        let rebuilt = match (current, desired) {
            (Some(current), Some(desired)) => current
                .attributes()
                .chain(desired.attributes())
                .any(|(a, _)| a != "comment" && a != "firing" && current.get(a) != desired.get(a)),
            _ => true,
        };
        // Dropped even when its table or view is dropped too: a routine it calls may be dropped before the table.
        if current.is_some() && rebuilt {
            self.push(Change::new(Phase::DropDependent, format!("DROP {target};")));
        }
        let Some(desired) = desired else { return };
        if rebuilt {
            let sql = match kind {
                ObjectKind::Policy => create_policy(name, desired),
                _ => format!("{};", desired.get("definition").unwrap_or_default().trim_end().trim_end_matches(';')),
            };
            self.push(Change::new(Phase::CreateDependent, sql));
        }
        let firing_before = current.filter(|_| !rebuilt).and_then(|c| c.get("firing"));
        if desired.get("firing") != firing_before && kind != ObjectKind::Policy {
            let word = if kind == ObjectKind::Trigger { "TRIGGER" } else { "RULE" };
            let action = match desired.get("firing") {
                Some("disabled") => "DISABLE",
                Some("replica only") => "ENABLE REPLICA",
                Some("always") => "ENABLE ALWAYS",
                _ => "ENABLE",
            };
            let sql = format!("ALTER TABLE {} {action} {word} {};", table_of(name), quote_ident(&name.name));
            self.push(Change::new(Phase::CreateDependent, sql));
        }
        self.comment(target, current.filter(|_| !rebuilt), desired);
    }
}

fn create_policy(name: &ObjectName, definition: &Definition) -> String {
    let mut sql = format!("CREATE POLICY {} ON {}", quote_ident(&name.name), table_of(name));
    if definition.has("restrictive") {
        sql.push_str(" AS RESTRICTIVE");
    }
    sql.push_str(&format!(" FOR {}", definition.get("for").unwrap_or("ALL")));
    if let Some(roles) = definition.get("to") {
        sql.push_str(&format!(" TO {roles}"));
    }
    if let Some(using) = definition.get("using") {
        sql.push_str(&format!(" USING ({using})"));
    }
    if let Some(check) = definition.get("with check") {
        sql.push_str(&format!(" WITH CHECK ({check})"));
    }
    sql.push(';');
    sql
}

fn view_keyword(kind: ObjectKind) -> &'static str {
    if kind == ObjectKind::MaterializedView {
        "MATERIALIZED VIEW"
    } else {
        "VIEW"
    }
}

fn dependent_keyword(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Trigger => "TRIGGER",
        ObjectKind::Policy => "POLICY",
        _ => "RULE",
    }
}

/// How many views a view reads through, at most, in `structure`: views are created in this order, and dropped in
/// the reverse.
fn view_depth(structure: &Structure, view: &str) -> usize {
    let views: Vec<(&ObjectName, &Definition)> = [ObjectKind::View, ObjectKind::MaterializedView]
        .into_iter()
        .flat_map(|kind| of_kind(structure, kind))
        .collect();
    depth_among(&views, view, 0)
}

fn depth_among(views: &[(&ObjectName, &Definition)], view: &str, level: usize) -> usize {
    // A view cannot read itself through others; the bound only keeps a malformed structure from looping.
    if level > 64 {
        return level;
    }
    let definition = views.iter().find(|(name, _)| name.name == view).and_then(|(_, d)| d.get("definition"));
    let Some(definition) = definition else { return 0 };
    views
        .iter()
        .filter(|(other, _)| other.name != view && parse::mentions(definition, &other.name))
        .map(|(other, _)| 1 + depth_among(views, &other.name, level + 1))
        .max()
        .unwrap_or(0)
}
