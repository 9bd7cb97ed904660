//! What the CLI prints: lines as schemas finish, aligned tables, or one JSON document; a progress bar on a
//! terminal; and the exit code that sums it all up.

use std::io::{IsTerminal, Write};

use serde_json::{json, Value};

use super::advice::{error_text, problem_text};
use super::args::Format;
use super::exit::{self, ExitCode};
use migrate_ops::{Definition, Difference, Error, HistoryEntry, Outcome, SchemaStatus, Task, Verification};
use migrate_runtime::{Execution, Fix, FixKind, Preview, Report as RunReport, SchemaName, SqlState, StepReport};

/// Accumulates per-schema results: streamed lines for changes, rows for tables, values for JSON.
pub(super) struct Report<'d> {
    format: Format,
    /// Labels of the databases, when there is more than one: lines and JSON then say which database.
    databases: Option<&'d [String]>,
    total: usize,
    exit_code: ExitCode,
    changed: usize,
    unchanged: usize,
    failed: usize,
    /// (schema index, JSON) for the JSON document, or (index, table rows) for tables; sorted before printing.
    values: Vec<(usize, Value)>,
    rows: Vec<(usize, Vec<Vec<String>>)>,
    /// `current`, `status`, `history`: nothing is changed, so the summary counts states, not changes.
    read_only: bool,
    /// Schemas read, by state (`at head`, `behind`, ...; `read` for history), for the read-only summary.
    states: std::collections::BTreeMap<&'static str, usize>,
}

impl<'d> Report<'d> {
    pub fn new(format: Format, total: usize, databases: Option<&'d [String]>, read_only: bool) -> Report<'d> {
        Report {
            format,
            databases,
            total,
            exit_code: ExitCode::Success,
            changed: 0,
            unchanged: 0,
            failed: 0,
            values: Vec::new(),
            rows: Vec::new(),
            read_only,
            states: std::collections::BTreeMap::new(),
        }
    }

    /// How a task is named in lines: its schema, after its database when there are several.
    fn label(&self, task: &Task) -> String {
        match self.databases {
            Some(labels) => format!("{} {}", labels[task.database], task.schema),
            None => task.schema.to_string(),
        }
    }

    /// The JSON object for a task, with `database` when there are several.
    fn object(&self, task: &Task, mut value: Value) -> Value {
        if let (Some(labels), Some(object)) = (self.databases, value.as_object_mut()) {
            object.insert("database".to_owned(), json!(labels[task.database]));
        }
        value
    }

    fn raise(&mut self, code: ExitCode) {
        self.exit_code = self.exit_code.max(code);
    }

    /// Record a failure; returns its JSON, with the steps that committed before it.
    fn failure(&mut self, task: &Task, error: &Error) -> Value {
        let code = exit::code_of(error);
        self.raise(code);
        self.failed += 1;
        let committed: Vec<Value> = error.committed().iter().map(step_json).collect();
        json!({
            "schema": task.schema.as_str(),
            "outcome": "failed",
            "error": error_text(error),
            "sqlstate": sqlstate(error),
            "exit_code": code,
            "committed": committed,
        })
    }

    fn line(&self, out: &mut dyn Write, text: &str) {
        if self.format == Format::Table {
            let _ = writeln!(out, "{text}");
        }
    }

    /// An upgrade, downgrade or reset finished on one schema.
    pub fn change(&mut self, out: &mut dyn Write, index: usize, task: &Task, result: Result<RunReport, Error>) {
        let schema = self.label(task);
        let value = match result {
            Ok(report) => {
                let text = if let Some(recorded) = recorded_text(&report.fixes) {
                    self.changed += 1;
                    format!(
                        "{}: {recorded}, version {} -> {}",
                        schema,
                        version(report.version_before),
                        version(report.version_after)
                    )
                } else if !report.fixes.is_empty() {
                    self.changed += 1;
                    let fixes: Vec<String> = report.fixes.iter().map(fix_text).collect();
                    format!("{}: {}", schema, fixes.join(", "))
                } else if report.steps.is_empty() {
                    self.unchanged += 1;
                    format!("{}: already at version {}, nothing to do", schema, version(report.version_after))
                } else {
                    self.changed += 1;
                    format!(
                        "{}: {}, version {} -> {}",
                        schema,
                        steps_text(&report.steps),
                        version(report.version_before),
                        version(report.version_after)
                    )
                };
                self.line(out, &text);
                let steps: Vec<Value> = report.steps.iter().map(step_json).collect();
                let fixes: Vec<Value> = report.fixes.iter().map(fix_json).collect();
                json!({
                    "schema": task.schema.as_str(),
                    "outcome": if report.is_unchanged() { "unchanged" } else { "changed" },
                    "fixes": fixes,
                    "version_before": report.version_before,
                    "version_after": report.version_after,
                    "steps": steps,
                })
            }
            Err(error) => {
                let value = self.failure(task, &error);
                let committed = match error.committed() {
                    [] => String::new(),
                    steps => format!("{} before the failure, then ", steps_text(steps)),
                };
                let code = sqlstate(&error).map(|code| format!(" (SQLSTATE {code})")).unwrap_or_default();
                self.line(out, &format!("{schema}: {committed}FAILED: {}{code}", error_text(&error)));
                value
            }
        };
        self.keep_value(index, task, value);
    }

    /// A dry run finished on one schema.
    pub fn preview(&mut self, out: &mut dyn Write, index: usize, task: &Task, result: Result<Preview, Error>) {
        let schema = self.label(task);
        let value = match result {
            Ok(preview) => {
                self.unchanged += 1;
                let mut text = format!(
                    "-- schema {:?}: version {} -> {}, {} step(s) (dry run: nothing was changed)\n",
                    schema,
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
                        Execution::InCreatingTransaction => {
                            ", in the transaction that creates the schema, without CONCURRENTLY"
                        }
                    };
                    text.push_str(&format!(
                        "-- {} {} {} ({}{transaction})\n{}",
                        step.direction.verb(),
                        step.version,
                        step.name,
                        step.file,
                        step.sql
                    ));
                }
                text.push_str(preview.epilogue.as_deref().unwrap_or(""));
                self.line(out, &text);
                let steps: Vec<Value> = preview
                    .steps
                    .iter()
                    .map(|s| {
                        json!({
                            "version": s.version,
                            "name": s.name,
                            "kind": s.direction.verb(),
                            "file": s.file,
                            "no_transaction": s.execution == Execution::Untransacted,
                            "execution": s.execution.label(),
                            "sql": s.sql,
                        })
                    })
                    .collect();
                let fixes: Vec<Value> = preview.fixes.iter().map(fix_json).collect();
                json!({
                    "schema": task.schema.as_str(),
                    "outcome": "planned",
                    "version_before": preview.version_before,
                    "version_after": preview.version_after,
                    "prologue": preview.prologue,
                    "steps": steps,
                    "fixes": fixes,
                    "epilogue": preview.epilogue,
                })
            }
            Err(error) => {
                let value = self.failure(task, &error);
                self.line(out, &format!("-- schema {:?}: FAILED: {}", schema, error_text(&error)));
                value
            }
        };
        self.keep_value(index, task, value);
    }

    /// `current` or `status` finished on one schema.
    pub fn status(&mut self, index: usize, task: &Task, result: Result<SchemaStatus, Error>) {
        let schema = self.label(task);
        let (value, row) = match result {
            Ok(status) => {
                if status.state.is_problem() {
                    self.raise(ExitCode::Drift);
                }
                *self.states.entry(status.state.label()).or_default() += 1;
                let value = json!({
                    "schema": status.schema,
                    "version": status.current.as_ref().map(|c| c.0),
                    "name": status.current.as_ref().map(|c| c.1.clone()),
                    "head": status.head,
                    "pending": status.pending,
                    "state": status.state.label(),
                    "problem": status.problem.as_ref().map(|p| problem_text(&status.schema, p)),
                    "migrating_now": status.migrating_now.as_ref().map(ToString::to_string),
                });
                let row = vec![
                    schema.clone(),
                    status.current.as_ref().map_or("-".to_owned(), |c| c.0.to_string()),
                    status.current.as_ref().map_or("-".to_owned(), |c| c.1.clone()),
                    status.head.map_or("-".to_owned(), |h| h.to_string()),
                    status.pending.to_string(),
                    status.state.label().to_owned(),
                    match (&status.migrating_now, status.problem.as_ref().map(|p| problem_text(&status.schema, p))) {
                        (Some(holder), Some(problem)) => format!("being migrated now by {holder}; {problem}"),
                        (Some(holder), None) => format!("being migrated now by {holder}"),
                        (None, problem) => problem.unwrap_or_default(),
                    },
                ];
                (value, row)
            }
            Err(error) => {
                let row = vec![
                    schema.to_string(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "error".into(),
                    error_text(&error),
                ];
                (self.failure(task, &error), row)
            }
        };
        self.keep_value(index, task, value);
        self.rows.push((index, vec![row]));
    }

    /// `history` finished on one schema.
    pub fn history(&mut self, index: usize, task: &Task, result: Result<Vec<HistoryEntry>, Error>) {
        let schema = self.label(task);
        let (value, rows) = match result {
            Ok(entries) => {
                if entries.iter().any(|e| e.state().is_problem()) {
                    self.raise(ExitCode::Drift);
                    *self.states.entry("with problems").or_default() += 1;
                } else {
                    *self.states.entry("read").or_default() += 1;
                }
                let rows = entries
                    .iter()
                    .map(|e| {
                        let applied = e.applied.as_ref();
                        vec![
                            schema.to_string(),
                            e.version.to_string(),
                            e.name.clone(),
                            e.state().label().to_owned(),
                            applied.map_or(String::new(), |a| a.applied_at.clone()),
                            applied.map_or(String::new(), |a| a.execution_ms.to_string()),
                            applied.map_or(String::new(), |a| a.applied_by.clone()),
                        ]
                    })
                    .collect();
                let migrations: Vec<Value> = entries
                    .iter()
                    .map(|e| {
                        json!({
                            "version": e.version,
                            "name": e.name,
                            "state": e.state().label(),
                            "applied_at": e.applied.as_ref().map(|a| a.applied_at.clone()),
                            "execution_ms": e.applied.as_ref().map(|a| a.execution_ms),
                            "applied_by": e.applied.as_ref().map(|a| a.applied_by.clone()),
                        })
                    })
                    .collect();
                (json!({ "schema": task.schema.as_str(), "migrations": migrations }), rows)
            }
            Err(error) => {
                let row = vec![
                    schema.to_string(),
                    "-".into(),
                    "-".into(),
                    "error".into(),
                    error_text(&error),
                    String::new(),
                    String::new(),
                ];
                (self.failure(task, &error), vec![row])
            }
        };
        self.keep_value(index, task, value);
        self.rows.push((index, rows));
    }

    /// `verify` finished on one schema: one line with its outcome, each difference indented below it.
    pub fn verification(
        &mut self,
        out: &mut dyn Write,
        index: usize,
        task: &Task,
        result: Result<Verification, Error>,
    ) {
        let verification = match result {
            Ok(verification) => verification,
            Err(error) => return self.verification_failed(out, index, task, &error),
        };
        let schema = self.label(task);
        let outcome = &verification.outcome;
        if matches!(outcome, Outcome::Differs(_) | Outcome::Ahead { .. }) {
            self.raise(ExitCode::Drift);
        }
        *self.states.entry(outcome.label()).or_default() += 1;
        let mut text = format!("{schema}: {}", outcome.label());
        let mut value = json!({
            "schema": task.schema.as_str(),
            "version": verification.version,
            "outcome": outcome.label(),
            "differences": [],
        });
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
                value["differences"] = differences.iter().map(difference_json).collect();
            }
            Outcome::Ahead { versions } => {
                let list: Vec<String> = versions.iter().map(ToString::to_string).collect();
                text.push_str(&format!(" (applied version(s) {} that this binary does not have)", list.join(", ")));
                value["ahead_versions"] = json!(versions);
            }
            _ => {}
        }
        self.line(out, &text);
        self.keep_value(index, task, value);
    }

    /// `verify` could not read the database one schema is on.
    pub fn verification_failed(&mut self, out: &mut dyn Write, index: usize, task: &Task, error: &Error) {
        let schema = self.label(task);
        let value = self.failure(task, error);
        self.line(out, &format!("{schema}: FAILED: {}", error_text(error)));
        self.keep_value(index, task, value);
    }

    fn keep_value(&mut self, index: usize, task: &Task, value: Value) {
        if self.format == Format::Json {
            let value = self.object(task, value);
            self.values.push((index, value));
        }
    }

    fn sorted_rows(&mut self) -> Vec<Vec<String>> {
        self.rows.sort_by_key(|(index, _)| *index);
        std::mem::take(&mut self.rows).into_iter().flat_map(|(_, rows)| rows).collect()
    }

    pub fn print_statuses(&mut self, out: &mut dyn Write, full: bool) {
        if self.format != Format::Table {
            return;
        }
        let rows = self.sorted_rows();
        let (headers, columns): (&[&str], &[usize]) = if full {
            (&["SCHEMA", "VERSION", "NAME", "HEAD", "PENDING", "STATE", "PROBLEM"], &[0, 1, 2, 3, 4, 5, 6])
        } else {
            (&["SCHEMA", "VERSION", "NAME", "STATE", "PROBLEM"], &[0, 1, 2, 5, 6])
        };
        let picked: Vec<Vec<String>> = rows.iter().map(|r| columns.iter().map(|&c| r[c].clone()).collect()).collect();
        let _ = out.write_all(table(headers, &picked).as_bytes());
    }

    pub fn print_histories(&mut self, out: &mut dyn Write) {
        if self.format != Format::Table {
            return;
        }
        let rows = self.sorted_rows();
        let headers = ["SCHEMA", "VERSION", "NAME", "STATE", "APPLIED AT", "MS", "BY"];
        let _ = out.write_all(table(&headers, &rows).as_bytes());
    }

    /// Print the summary (tables) or the JSON document, and return the exit code.
    pub fn finish(mut self, out: &mut dyn Write, not_started: usize) -> ExitCode {
        let stopped = match not_started {
            0 => String::new(),
            n => format!(", {n} not started (stopped at the first failure; --keep-going goes on)"),
        };
        match self.format {
            Format::Json => {
                self.values.sort_by_key(|(index, _)| *index);
                let schemas: Vec<Value> = self.values.drain(..).map(|(_, v)| v).collect();
                let summary = if self.read_only {
                    json!({ "schemas": self.total, "states": self.states, "failed": self.failed, "not_started": not_started })
                } else {
                    json!({ "schemas": self.total, "changed": self.changed, "unchanged": self.unchanged, "failed": self.failed, "not_started": not_started })
                };
                let document = json!({ "schemas": schemas, "summary": summary, "exit_code": self.exit_code });
                let _ = writeln!(out, "{document:#}");
            }
            // What was read, counted by state; the table above says the rest.
            Format::Table if self.read_only && (self.total > 1 || self.failed > 0 || not_started > 0) => {
                let mut counts: Vec<String> = self.states.iter().map(|(state, n)| format!("{n} {state}")).collect();
                if self.failed > 0 {
                    counts.push(format!("{} failed", self.failed));
                }
                let _ = writeln!(out, "{} schema(s): {}{stopped}", self.total, counts.join(", "));
            }
            Format::Table if self.read_only => {}
            Format::Table
                if self.changed + self.unchanged > 0 && self.total > 1 || self.failed > 0 || not_started > 0 =>
            {
                let _ = writeln!(
                    out,
                    "{} schema(s): {} changed, {} already current, {} failed{stopped}",
                    self.total, self.changed, self.unchanged, self.failed
                );
            }
            Format::Table => {}
        }
        self.exit_code
    }
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

/// A definition's attributes as a JSON object; a flag (`not null`, `invalid`) is an empty string.
fn attributes_json(definition: &Definition) -> Value {
    Value::Object(definition.attributes().map(|(name, value)| (name.to_owned(), json!(value))).collect())
}

/// One difference for scripts: `label` (`missing`, `extra`, `changed`), `kind`, `object`, `text` (the line people
/// read), and the attributes: `expected` (the reference, or A) and `found` (the schema, or B), `changed` naming
/// the attributes that differ.
fn difference_json(difference: &Difference) -> Value {
    let name = difference.name();
    let mut value = json!({
        "label": difference.label(),
        "kind": difference.kind().label(),
        "object": name.to_string(),
        "table": name.table,
        "name": name.name,
        "arguments": name.arguments,
        "text": difference.to_string(),
    });
    match difference {
        Difference::Missing { definition, .. } => value["expected"] = attributes_json(definition),
        Difference::Extra { definition, .. } => value["found"] = attributes_json(definition),
        Difference::Changed { expected, found, .. } => {
            value["expected"] = attributes_json(expected);
            value["found"] = attributes_json(found);
            value["changed"] = json!(expected.changed_attributes(found));
        }
    }
    value
}

/// `diff A B` for people: what is only in A, only in B, and changed (with both sides of each changed attribute),
/// then one line that sums it up.
pub(super) fn diff_text(a: &SchemaName, b: &SchemaName, differences: &[Difference]) -> String {
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

/// `diff A B --format json`: the two schemas, every difference, counts, the suggested SQL with `--sql`.
pub(super) fn diff_json(
    a: &SchemaName,
    b: &SchemaName,
    differences: &[Difference],
    sql: Option<&str>,
    exit_code: ExitCode,
) -> Value {
    let count = |label: &str| differences.iter().filter(|d| d.label() == label).count();
    json!({
        "a": a.as_str(),
        "b": b.as_str(),
        "equal": differences.is_empty(),
        "differences": differences.iter().map(difference_json).collect::<Vec<_>>(),
        "summary": { "only_in_a": count("missing"), "only_in_b": count("extra"), "changed": count("changed") },
        "sql": sql,
        "exit_code": exit_code,
    })
}

/// `diff A B --sql` when there is nothing to suggest: still a script, all comment.
pub(super) fn same_structure_sql(a: &SchemaName, b: &SchemaName) -> String {
    let line = format!("-- {a} and {b} have the same structure: nothing to suggest.");
    format!("{}\n", line.replace(['\n', '\r'], " "))
}

/// PostgreSQL's SQLSTATE of a failed migration (`42P07`, `55P03`), when the server reported one.
fn sqlstate(error: &Error) -> Option<&str> {
    match error {
        Error::Migrate(error) => match error.kind() {
            migrate_runtime::ErrorKind::MigrationFailed { code, .. } => code.as_ref().map(SqlState::as_str),
            _ => None,
        },
        _ => None,
    }
}

/// A version for people: the number, or `none` before the first migration.
fn version(version: Option<i64>) -> String {
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

fn step_json(step: &StepReport) -> Value {
    json!({
        "version": step.version,
        "name": step.name,
        "kind": step.direction.verb(),
        "duration_ms": step.duration.map(|d| d.as_millis() as u64),
    })
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

fn fix_json(fix: &Fix) -> Value {
    let mut value = json!({ "version": fix.version, "fix": fix.kind.label() });
    if let (FixKind::Recorded { source: migrate_runtime::RecordSource::Adopted(tool) }, Some(object)) =
        (&fix.kind, value.as_object_mut())
    {
        object.insert("from".to_owned(), json!(tool.label()));
    }
    if let (FixKind::Repaired { before, after }, Some(object)) = (&fix.kind, value.as_object_mut()) {
        for (key, recorded) in [("before", before), ("after", after)] {
            object.insert(
                key.to_owned(),
                json!({
                    "name": recorded.name,
                    "checksum": recorded.checksum.to_string(),
                    "down_checksum": recorded.down_checksum.map(|c| c.to_string()),
                }),
            );
        }
    }
    value
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

/// A one-line progress bar on stderr, only when stderr is a terminal and there is more than one schema; plain
/// output elsewhere is the per-schema lines themselves.
pub(super) struct Progress {
    total: usize,
    done: usize,
    enabled: bool,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        Progress { total, done: 0, enabled: total > 1 && std::io::stderr().is_terminal() }
    }

    /// Clear the bar, run `print` (which may write lines), count one schema done and redraw.
    pub fn tick(&mut self, print: impl FnOnce()) {
        if self.enabled {
            eprint!("\r\x1b[2K");
        }
        print();
        self.done += 1;
        if self.enabled {
            let filled = self.done * 30 / self.total.max(1);
            eprint!("\r[{}{}] {}/{} schemas", "#".repeat(filled), ".".repeat(30 - filled), self.done, self.total);
        }
    }

    pub fn finish(&self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
        }
    }
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
        use migrate_ops::{ObjectKind, ObjectName};
        let changed = Difference::Changed {
            kind: ObjectKind::Function,
            name: ObjectName::routine("touch", ""),
            expected: Definition::new([("body", "BEGIN\n  x;\nEND"), ("strict", "")]),
            found: Definition::new([("body", "BEGIN\n  y;\nEND")]),
        };
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
        let missing = Difference::Missing {
            kind: ObjectKind::Index,
            name: ObjectName::new("i"),
            definition: Definition::new([("definition", "CREATE INDEX i ON <schema>.t USING btree (a)")]),
        };
        let (a, b) = (SchemaName::new("dev").unwrap(), SchemaName::new("prod").unwrap());
        assert_eq!(
            diff_text(&a, &b, &[missing.clone(), changed.clone()]),
            "only in dev:\n  index i\n      definition: CREATE INDEX i ON <schema>.t USING btree (a)\nchanged:\n  \
             function touch() (body, strict)\n      body in dev: BEGIN\n            x;\n          END\n      body in \
             prod: BEGIN\n            y;\n          END\n      strict in dev: (set)\n      strict in prod: (not set)\n\
             dev and prod differ: 1 only in dev, 1 changed\n"
        );
        assert_eq!(diff_text(&a, &b, &[]), "dev and prod have the same structure\n");
        let json = difference_json(&changed);
        assert_eq!(json["label"], "changed");
        assert_eq!(json["object"], "touch()");
        assert_eq!(json["changed"], json!(["body", "strict"]));
        assert_eq!(json["expected"]["strict"], "");
        assert!(json["found"].get("strict").is_none());
        assert!(difference_json(&missing).get("found").is_none());
    }
}
