//! The text sink: a line per schema as it finishes (changes, dry runs, `verify`), aligned tables (`current`,
//! `status`, `history`), and the summary line; built from the same outcomes as the JSON document.

use migrate_ops::{
    Changes, Difference, Generated, HistoryEntry, Outcome, Qualifier, Revision, SchemaStatus, Trial, Unproven,
    Verification,
};
use migrate_runtime::{Execution, Fix, FixKind, Preview, Report as RunReport, SchemaName, StepReport};

use super::json::sqlstate;
use crate::advice::{error_text, problem_text};
use migrate_ops::Error;

/// A finished change for people: `tenant-1: applied 2 migration(s), version 3 -> 5`, or what was recorded or fixed,
/// or `already at version 5, nothing to do`.
pub(super) fn change_line(label: &str, report: &RunReport) -> String {
    format!("{}{}", own_change(label, report), others_text(report))
}

/// `; another process applied 6, 7 meanwhile`: what this run did not do itself.
fn others_text(report: &RunReport) -> String {
    if report.by_others.is_empty() {
        return String::new();
    }
    let list = |direction| {
        let versions: Vec<String> =
            report.by_others.iter().filter(|o| o.direction == direction).map(|o| o.version.to_string()).collect();
        versions.join(", ")
    };
    let mut did = Vec::new();
    for (direction, verb) in [(migrate_core::Direction::Up, "applied"), (migrate_core::Direction::Down, "reverted")] {
        let versions = list(direction);
        if !versions.is_empty() {
            did.push(format!("{verb} {versions}"));
        }
    }
    format!("; another process {} meanwhile", did.join(" and "))
}

/// What this run itself did.
fn own_change(label: &str, report: &RunReport) -> String {
    if let Some(recorded) = recorded_text(&report.fixes) {
        format!("{label}: {recorded}, version {} -> {}", version(report.version_before), version(report.version_after))
    } else if !report.fixes.is_empty() {
        let fixes: Vec<String> = report.fixes.iter().map(fix_text).collect();
        format!("{label}: {}", fixes.join(", "))
    } else if report.steps.is_empty() {
        format!("{label}: already at version {}, nothing to do", version(report.version_after))
    } else {
        format!(
            "{label}: {}, version {} -> {}",
            steps_text(&report.steps),
            version(report.version_before),
            version(report.version_after)
        )
    }
}

/// `REFUSED` for a refusal (nothing was changed), `INTERRUPTED`, `FAILED` for the rest.
fn failure_word(error: &Error) -> &'static str {
    crate::exit::Failure::of(error).word()
}

/// A failed change: what committed first, the error with the command that settles it, and the SQLSTATE.
pub(super) fn failed_change_line(label: &str, error: &Error) -> String {
    let committed = match error.committed() {
        [] => String::new(),
        steps => format!("{} before the failure, then ", steps_text(steps)),
    };
    let code = sqlstate(error).map(|code| format!(" (SQLSTATE {code})")).unwrap_or_default();
    format!("{label}: {committed}{}: {}{code}", failure_word(error), error_text(error))
}

/// A dry run: a comment line, what would be recorded or fixed, then the SQL exactly as it would be sent, each step
/// under a comment naming it.
pub(super) fn preview_text(label: &str, preview: &Preview) -> String {
    let mut text = format!(
        "-- schema {:?}: version {} -> {}, {} step(s) (dry run: nothing was changed)\n",
        label,
        version(preview.version_before),
        version(preview.version_after),
        preview.steps.len()
    );
    match recorded_text(&preview.fixes) {
        Some(recorded) => text.push_str(&format!("-- would have {recorded}\n")),
        None => {
            for fix in &preview.fixes {
                text.push_str(&format!("-- {}\n", fix_text(fix)));
            }
        }
    }
    text.push_str(preview.prologue.as_deref().unwrap_or(""));
    for step in &preview.steps {
        let transaction = match step.execution {
            Execution::InTransaction => "",
            Execution::Untransacted => ", outside a transaction",
            Execution::InCreatingTransaction => ", in the transaction that creates the schema, without CONCURRENTLY",
        };
        text.push_str(&format!(
            "-- {} {} {} ({}{transaction})\n{}",
            step.direction.verb(),
            step.version,
            step.name,
            display_file(&step.file),
            step.sql
        ));
    }
    text.push_str(preview.epilogue.as_deref().unwrap_or(""));
    text
}

/// A migration's file for people: the path the binary recorded, relative to the crate that embedded the folder
/// (`../migrations/2_x.up.sql`), without the climb out of that crate (`migrations/2_x.up.sql`).
fn display_file(file: &str) -> &str {
    let mut file = file;
    while let Some(rest) = file.strip_prefix("../").or_else(|| file.strip_prefix("./")) {
        file = rest;
    }
    file
}

/// What a plan would change, for a confirmation prompt: `apply 2 migration(s) (version 6 -> 8)`, `drop the
/// schema with everything in it, then apply 8 migration(s)`, `record 4 migration(s) as applied`, `change nothing`.
pub(crate) fn would_change(preview: &Preview, reset: bool) -> String {
    let applied = preview.steps.iter().filter(|s| s.direction == migrate_core::Direction::Up).count();
    let reverted = preview.steps.len() - applied;
    let mut did = Vec::new();
    if reset {
        did.push("drop the schema with everything in it, then".to_owned());
    }
    if reverted > 0 {
        did.push(format!("revert {reverted} migration(s)"));
    }
    if applied > 0 {
        did.push(format!("apply {applied} migration(s)"));
    }
    if !preview.fixes.is_empty() {
        did.push(match recorded_text(&preview.fixes) {
            Some(recorded) => recorded,
            None => preview.fixes.iter().map(fix_text).collect::<Vec<_>>().join(", "),
        });
    }
    if did.is_empty() {
        return "change nothing".to_owned();
    }
    format!("{} (version {} -> {})", did.join(" "), version(preview.version_before), version(preview.version_after))
}

/// A failed dry run.
pub(super) fn failed_preview_line(label: &str, error: &Error) -> String {
    format!("-- schema {:?}: {}: {}", label, failure_word(error), error_text(error))
}

/// A status as a table row: schema, version, name, head, pending, state, problem.
pub(super) fn status_row(label: &str, status: &SchemaStatus) -> Vec<String> {
    vec![
        label.to_owned(),
        status.current.as_ref().map_or("-".to_owned(), |c| c.0.to_string()),
        status.current.as_ref().map_or("-".to_owned(), |c| c.1.clone()),
        status.head.map_or("-".to_owned(), |h| h.to_string()),
        status.pending.to_string(),
        status.state.label().to_owned(),
        [
            status.migrating_now.as_ref().map(|holder| format!("being migrated now by {holder}")),
            status.problem.as_ref().map(|p| problem_text(&status.schema, p)),
            status.last_failure.as_ref().map(ToString::to_string),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; "),
    ]
}

/// A schema whose status could not be read, as a table row.
pub(super) fn failed_status_row(label: &str, error: &Error) -> Vec<String> {
    vec![label.to_owned(), "-".into(), "-".into(), "-".into(), "-".into(), "error".into(), error_text(error)]
}

/// A schema's history as table rows: schema, version, name, state, applied at, milliseconds, by.
pub(super) fn history_rows(label: &str, entries: &[HistoryEntry]) -> Vec<Vec<String>> {
    entries
        .iter()
        .map(|e| {
            let applied = e.applied.as_ref();
            vec![
                label.to_owned(),
                e.version.to_string(),
                e.name.clone(),
                e.state().label().to_owned(),
                applied.map_or(String::new(), |a| a.applied_at.clone()),
                applied.map_or(String::new(), |a| a.execution_ms.to_string()),
                applied.map_or(String::new(), |a| a.applied_by.clone()),
            ]
        })
        .collect()
}

/// A schema whose history could not be read, as a table row.
pub(super) fn failed_history_row(label: &str, error: &Error) -> Vec<String> {
    vec![label.to_owned(), "-".into(), "-".into(), "error".into(), error_text(error), String::new(), String::new()]
}

/// `verify` of one schema: its outcome, each difference indented below it with both sides of what changed.
pub(super) fn verification_text(label: &str, verification: &Verification) -> String {
    let outcome = &verification.outcome;
    let mut text = format!("{label}: {}", outcome.label());
    match outcome {
        Outcome::Differs(differences) => {
            text.push_str(&format!(
                " ({} difference(s) at version {})",
                differences.len(),
                version(verification.version)
            ));
            for difference in differences {
                text.push_str(&format!("\n  {difference}"));
                for line in difference_detail(difference, "expected", "found") {
                    text.push_str(&format!("\n      {line}"));
                }
            }
        }
        Outcome::Ahead { versions } => {
            let list: Vec<String> = versions.iter().map(ToString::to_string).collect();
            text.push_str(&format!(" (applied version(s) {} that this binary does not have)", list.join(", ")));
        }
        _ => {}
    }
    text
}

/// A schema that could not be verified or changed: `FAILED` and why.
pub(super) fn failed_line(label: &str, error: &Error) -> String {
    format!("{label}: {}: {}", failure_word(error), error_text(error))
}

/// What a difference is in detail, one line each (continuation lines of a long value indented): the definition of
/// a missing or extra object; for a changed one, each changed attribute as `{attribute} {side}: {value}` for both
/// sides (`expected`/`found`, or the two schemas' names).
fn difference_detail(difference: &Difference, a: &str, b: &str) -> Vec<String> {
    let lines = |text: String| -> Vec<String> { text.lines().map(str::to_owned).collect() };
    match difference {
        Difference::Missing { definition, .. } | Difference::Extra { definition, .. } => lines(definition.to_string()),
        Difference::Changed { expected, found, .. } => {
            let mut detail = Vec::new();
            for attribute in expected.changed_attributes(found) {
                for (side, definition) in [(a, expected), (b, found)] {
                    let value = match definition.get(attribute) {
                        None => "(not set)",
                        Some("") => "(set)",
                        Some(value) => value,
                    };
                    detail.extend(lines(format!("{attribute} {side}: {}", value.replace('\n', "\n    "))));
                }
            }
            detail
        }
    }
}

/// `diff A B` for people: what is only in A, only in B, and changed (with both sides of each changed attribute),
/// then one line that sums it up.
pub(crate) fn diff_text(a: &SchemaName, b: &SchemaName, differences: &[Difference]) -> String {
    if differences.is_empty() {
        return format!("{a} and {b} have the same structure\n");
    }
    let mut text = String::new();
    let mut counts = Vec::new();
    for (label, heading) in
        [("missing", format!("only in {a}")), ("extra", format!("only in {b}")), ("changed", "changed".to_owned())]
    {
        let group: Vec<&Difference> = differences.iter().filter(|d| d.label() == label).collect();
        if group.is_empty() {
            continue;
        }
        counts.push(format!("{} {heading}", group.len()));
        text.push_str(&format!("{heading}:\n"));
        for difference in group {
            text.push_str(&format!("  {} {}", difference.kind(), difference.name()));
            if let Difference::Changed { expected, found, .. } = difference {
                text.push_str(&format!(" ({})", expected.changed_attributes(found).join(", ")));
            }
            text.push('\n');
            for line in difference_detail(difference, &format!("in {a}"), &format!("in {b}")) {
                text.push_str(&format!("      {line}\n"));
            }
        }
    }
    text.push_str(&format!("{a} and {b} differ: {}\n", counts.join(", ")));
    text
}

/// `diff A B --sql` when there is nothing to suggest: still a script, all comment.
pub(crate) fn same_structure_sql(a: &SchemaName, b: &SchemaName) -> String {
    let line = format!("-- {a} and {b} have the same structure: nothing to suggest.");
    format!("{}\n", line.replace(['\n', '\r'], " "))
}

/// `diff A B --sql`: the generator's script that brings B to A, qualified with B's name, headed as a suggestion,
/// with what it could not express as comments after it.
pub(crate) fn suggestion_sql(b: &SchemaName, changes: &Changes) -> String {
    let mut script = format!(
        "-- SUGGESTION ONLY: review before running. Generated to bring schema {} to the structure of the reference;\n\
         -- this command never runs it, and it is not proven here. Better still, generate a migration with\n\
         -- `revision --autogenerate`, which proves its script before writing it.\n",
        b.as_str().replace(['\n', '\r'], " ")
    );
    let statements = changes.script(Qualifier::Schema(&b.quoted()));
    if !statements.is_empty() {
        script.push('\n');
        script.push_str(&statements);
    }
    if !changes.unexpressed.is_empty() {
        script.push_str("\n-- Not expressible as SQL here; fix by hand:\n");
        for unexpressed in &changes.unexpressed {
            for line in unexpressed.to_string().lines() {
                script.push_str(&format!("-- {line}\n"));
            }
        }
    }
    script
}

/// What `revision` wrote, and for a generated one, that it was proven and what to review.
pub(crate) fn revision_text(revision: &Revision, generated: Option<&Generated>) -> String {
    let mut text = format!("created {}\n", revision.up.display());
    if let Some(down) = &revision.down {
        text.push_str(&format!("created {}\n", down.display()));
    }
    if let Some(generated) = generated {
        text.push_str(&format!(
            "generated {} up and {} down statement(s) after version {}; proven: the up script builds the desired \
             structure exactly and the down script brings it back\n",
            generated.up.len(),
            generated.down.len(),
            generated.head
        ));
        if revision.down.is_none() {
            text.push_str(&format!(
                "the folder's layout ({}) keeps no down files: the down script was not written\n",
                revision.layout
            ));
        }
        for review in generated.up.reviews() {
            text.push_str(&format!("review: {}\n", review.text));
        }
    }
    text.push_str("rebuild the service to embed them\n");
    text
}

/// Why a generated revision was not written, in detail, for stderr.
pub(crate) fn unproven_text(unproven: &Unproven) -> String {
    let mut text = String::new();
    for unexpressed in &unproven.unexpressed {
        text.push_str(&format!("cannot express: {unexpressed}\n"));
    }
    for (direction, trial) in [("up", &unproven.up), ("down", &unproven.down)] {
        match trial {
            Trial::Differs(differences) => {
                for difference in differences {
                    text.push_str(&format!("after the {direction} script: {difference}\n"));
                }
            }
            Trial::Failed { message } => text.push_str(&format!("the {direction} script failed: {message}\n")),
            _ => {}
        }
    }
    text
}

/// A version for people: the number, or `none` before the first migration.
pub(super) fn version(version: Option<i64>) -> String {
    version.map_or("none".to_owned(), |v| v.to_string())
}

/// `applied 2`, `reverted 1, applied 3`: what a list of steps did, counted by direction.
fn steps_text(steps: &[StepReport]) -> String {
    let applied = steps.iter().filter(|s| s.direction == migrate_core::Direction::Up).count();
    let reverted = steps.len() - applied;
    let mut did = Vec::new();
    if reverted > 0 {
        did.push(format!("reverted {reverted}"));
    }
    if applied > 0 {
        did.push(format!("applied {applied}"));
    }
    format!("{} migration(s)", did.join(", "))
}

/// A fix for people: `repaired 3: checksum 1a2b3c4d5e6f -> 9f8e7d6c5b4a, name "a" -> "b"`.
fn fix_text(fix: &Fix) -> String {
    match &fix.kind {
        FixKind::Repaired { before, after } => {
            let mut changes = Vec::new();
            let short = |c: &migrate_runtime::Checksum| c.to_string().chars().take(12).collect::<String>();
            if before.checksum != after.checksum {
                changes.push(format!("checksum {} -> {}", short(&before.checksum), short(&after.checksum)));
            }
            if before.down_checksum != after.down_checksum {
                let down = |c: &Option<migrate_runtime::Checksum>| c.as_ref().map_or("none".to_owned(), short);
                changes.push(format!(
                    "down checksum {} -> {}",
                    down(&before.down_checksum),
                    down(&after.down_checksum)
                ));
            }
            if before.name != after.name {
                changes.push(format!("name {:?} -> {:?}", before.name, after.name));
            }
            format!("repaired {}: {}", fix.version, changes.join(", "))
        }
        FixKind::MarkedApplied | FixKind::MarkedNotApplied => format!("{} {}", fix.kind.label(), fix.version),
        FixKind::Recorded { source } => format!("recorded {} as applied ({})", fix.version, source.label()),
    }
}

/// `baseline` and `adopt` for people, when every fix records a migration for the same reason: `recorded 1, 2, 3
/// as applied without running them (baseline)`.
fn recorded_text(fixes: &[Fix]) -> Option<String> {
    let FixKind::Recorded { source } = fixes.first()?.kind else { return None };
    if fixes.iter().any(|f| f.kind != (FixKind::Recorded { source })) {
        return None;
    }
    let versions: Vec<String> = fixes.iter().map(|f| f.version.to_string()).collect();
    Some(format!("recorded {} as applied without running them ({})", versions.join(", "), source.label()))
}

/// Left-aligned columns separated by two spaces; trailing blanks trimmed.
pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let text = table(&["A", "LONGER"], &[vec!["xyz".into(), "1".into()], vec!["é".into(), "".into()]]);
        assert_eq!(text, "A    LONGER\nxyz  1\né\n");
    }

    #[test]
    fn differences_show_both_sides_of_each_changed_attribute() {
        let (changed, missing) = crate::render::sample_differences();
        assert_eq!(
            difference_detail(&changed, "expected", "found"),
            [
                "body expected: BEGIN",
                "      x;",
                "    END",
                "body found: BEGIN",
                "      y;",
                "    END",
                "strict expected: (set)",
                "strict found: (not set)"
            ]
        );
        let (a, b) = (SchemaName::new("dev").unwrap(), SchemaName::new("prod").unwrap());
        assert_eq!(
            diff_text(&a, &b, &[missing.clone(), changed.clone()]),
            "only in dev:\n  index i\n      definition: CREATE INDEX i ON <schema>.t USING btree (a)\nchanged:\n  \
             function touch() (body, strict)\n      body in dev: BEGIN\n            x;\n          END\n      body in \
             prod: BEGIN\n            y;\n          END\n      strict in dev: (set)\n      strict in prod: (not set)\n\
             dev and prod differ: 1 only in dev, 1 changed\n"
        );
        assert_eq!(diff_text(&a, &b, &[]), "dev and prod have the same structure\n");
    }
}
