//! What the CLI prints: lines as schemas finish, aligned tables, or one JSON document; a progress bar on a
//! terminal; and the exit code that sums it all up. [`Report`] counts and picks the exit code from what happened;
//! it hands each schema's outcome to one of two sinks: [`text`] for people, [`json`] for scripts (typed outcomes
//! that derive `Serialize`).

pub(crate) mod json;
pub(crate) mod text;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use super::args::Format;
use super::exit::{self, ExitCode};
use json::{Changed, Document, Entry, Failed, History, Planned, SchemaOutcome, Status, Summary, Verified};
use migrate_ops::{Error, HistoryEntry, Outcome, SchemaStatus, Task, Verification};
use migrate_runtime::{Preview, Report as RunReport};

/// Accumulates per-schema results: streamed lines for changes, rows for tables, entries for JSON.
pub(super) struct Report<'d> {
    format: Format,
    /// Labels of the databases, when there is more than one: lines and JSON then say which database.
    databases: Option<&'d [String]>,
    total: usize,
    exit_code: ExitCode,
    /// Schemas changed, or (a dry run) that would be.
    changed: usize,
    unchanged: usize,
    /// Refused before anything was changed (the planner's refusals): not failures of the run.
    refused: usize,
    /// Schemas another process changed while this run worked on them.
    by_others: usize,
    failed: usize,
    /// (schema index, entry) for the JSON document, or (index, table rows) for tables; sorted before printing.
    entries: Vec<(usize, Entry)>,
    rows: Vec<(usize, Vec<Vec<String>>)>,
    /// What the command does, which says what the summary counts.
    mode: Mode,
    /// `--only-problems`: schemas that need no look are counted, not listed.
    only_problems: bool,
    /// The run was interrupted (SIGINT, SIGTERM): the schemas not started are counted as such.
    interrupted: bool,
    /// Schemas read, by state (`at head`, `behind`, ...; `read` for history), for the read-only summary.
    states: BTreeMap<&'static str, usize>,
}

/// What a command does to the schemas, for the summary: states for reads, changes for changes, what would change
/// for a dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// `current`, `status`, `history`, `verify`: nothing is changed, so the summary counts states.
    Read,
    /// A change, for real.
    Change,
    /// A change's dry run: nothing is changed; the summary counts what would be.
    DryRun,
}

impl<'d> Report<'d> {
    pub fn new(format: Format, total: usize, databases: Option<&'d [String]>, mode: Mode) -> Report<'d> {
        Report {
            format,
            databases,
            total,
            exit_code: ExitCode::Success,
            changed: 0,
            unchanged: 0,
            refused: 0,
            by_others: 0,
            failed: 0,
            entries: Vec::new(),
            rows: Vec::new(),
            mode,
            only_problems: false,
            interrupted: false,
            states: BTreeMap::new(),
        }
    }

    /// How a task is named in lines: its schema, after its database when there are several.
    fn label(&self, task: &Task) -> String {
        match self.databases {
            Some(labels) => format!("{} {}", labels[task.database], task.schema),
            None => task.schema.to_string(),
        }
    }

    fn raise(&mut self, code: ExitCode) {
        self.exit_code = self.exit_code.max(code);
    }

    /// Count a failure, or a refusal, and raise the exit code to its own; returns its JSON outcome.
    fn failure(&mut self, task: &Task, error: &Error) -> SchemaOutcome {
        self.raise(exit::code_of(error));
        match exit::Failure::of(error) {
            exit::Failure::Refused => self.refused += 1,
            exit::Failure::Interrupted | exit::Failure::Failed => self.failed += 1,
        }
        SchemaOutcome::Failed(Failed::of(&task.schema, error))
    }

    /// A line for people, as a schema finishes (text only).
    fn line(&self, out: &mut dyn Write, text: &str) {
        if self.format == Format::Table {
            let _ = writeln!(out, "{text}");
        }
    }

    /// The schema's entry for the document (JSON only), with its database when there are several.
    fn keep(&mut self, index: usize, task: &Task, outcome: SchemaOutcome) {
        if self.format == Format::Json {
            let database = self.databases.map(|labels| labels[task.database].clone());
            self.entries.push((index, Entry { outcome, database }));
        }
    }

    /// An upgrade, downgrade, reset, repair, resolve, baseline or adopt finished on one schema.
    pub fn change(&mut self, out: &mut dyn Write, index: usize, task: &Task, result: Result<RunReport, Error>) {
        let label = self.label(task);
        let outcome = match result {
            Ok(report) => {
                if report.is_unchanged() {
                    self.unchanged += 1;
                } else {
                    self.changed += 1;
                }
                if !report.by_others.is_empty() {
                    self.by_others += 1;
                }
                self.line(out, &text::change_line(&label, &report));
                SchemaOutcome::Changed(Changed::of(&report))
            }
            Err(error) => {
                self.line(out, &text::failed_change_line(&label, &error));
                self.failure(task, &error)
            }
        };
        self.keep(index, task, outcome);
    }

    /// A dry run finished on one schema.
    pub fn preview(&mut self, out: &mut dyn Write, index: usize, task: &Task, result: Result<Preview, Error>) {
        let label = self.label(task);
        let outcome = match result {
            Ok(preview) => {
                if preview.would_change() {
                    self.changed += 1;
                } else {
                    self.unchanged += 1;
                }
                self.line(out, &text::preview_text(&label, &preview));
                SchemaOutcome::Planned(Planned::of(&preview))
            }
            Err(error) => {
                self.line(out, &text::failed_preview_line(&label, &error));
                self.failure(task, &error)
            }
        };
        self.keep(index, task, outcome);
    }

    /// The run was interrupted: the summary says so and the exit code is 130.
    pub fn interrupted(&mut self) {
        self.interrupted = true;
        self.raise(ExitCode::Interrupted);
    }

    /// List only the schemas that need a look (`--only-problems`); the summary still counts them all.
    pub fn only_problems(&mut self, yes: bool) {
        self.only_problems = yes;
    }

    /// `current` or `status` finished on one schema.
    pub fn status(&mut self, index: usize, task: &Task, result: Result<SchemaStatus, Error>) {
        let label = self.label(task);
        let listed = match &result {
            Ok(status) => !self.only_problems || status.state.is_problem() || status.pending > 0,
            Err(_) => true,
        };
        let (outcome, row) = match result {
            Ok(status) => {
                if status.state.is_problem() {
                    self.raise(ExitCode::Drift);
                }
                *self.states.entry(status.state.label()).or_default() += 1;
                (SchemaOutcome::Status(Status::of(&status)), text::status_row(&label, &status))
            }
            Err(error) => (self.failure(task, &error), text::failed_status_row(&label, &error)),
        };
        if listed {
            self.keep(index, task, outcome);
            self.rows.push((index, vec![row]));
        }
    }

    /// `history` finished on one schema.
    pub fn history(&mut self, index: usize, task: &Task, result: Result<Vec<HistoryEntry>, Error>) {
        let label = self.label(task);
        let (outcome, rows) = match result {
            Ok(entries) => {
                if entries.iter().any(|e| e.state().is_problem()) {
                    self.raise(ExitCode::Drift);
                    *self.states.entry("with problems").or_default() += 1;
                } else {
                    *self.states.entry("read").or_default() += 1;
                }
                (SchemaOutcome::History(History::of(&task.schema, &entries)), text::history_rows(&label, &entries))
            }
            Err(error) => (self.failure(task, &error), vec![text::failed_history_row(&label, &error)]),
        };
        self.keep(index, task, outcome);
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
        if matches!(verification.outcome, Outcome::Differs(_) | Outcome::Ahead { .. }) {
            self.raise(ExitCode::Drift);
        }
        *self.states.entry(verification.outcome.label()).or_default() += 1;
        self.line(out, &text::verification_text(&self.label(task), &verification));
        self.keep(index, task, SchemaOutcome::Verified(Verified::of(&verification)));
    }

    /// `verify` could not read the database one schema is on.
    pub fn verification_failed(&mut self, out: &mut dyn Write, index: usize, task: &Task, error: &Error) {
        let outcome = self.failure(task, error);
        self.line(out, &text::failed_line(&self.label(task), error));
        self.keep(index, task, outcome);
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
        let _ = out.write_all(text::table(headers, &picked).as_bytes());
    }

    pub fn print_histories(&mut self, out: &mut dyn Write) {
        if self.format != Format::Table {
            return;
        }
        let rows = self.sorted_rows();
        let headers = ["SCHEMA", "VERSION", "NAME", "STATE", "APPLIED AT", "MS", "BY"];
        let _ = out.write_all(text::table(&headers, &rows).as_bytes());
    }

    /// Print the summary (tables) or the JSON document, and return the exit code.
    pub fn finish(mut self, out: &mut dyn Write, not_started: usize) -> ExitCode {
        match self.format {
            Format::Json => {
                self.entries.sort_by_key(|(index, _)| *index);
                let schemas = self.entries.drain(..).map(|(_, entry)| entry).collect();
                let summary = self.summary(not_started);
                let document = Document { schemas, summary, exit_code: self.exit_code };
                let _ = writeln!(out, "{}", json::print(&document));
            }
            Format::Table => {
                if let Some(line) = self.summary_line(not_started) {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        self.exit_code
    }

    /// The counts, for the JSON document.
    fn summary(&mut self, not_started: usize) -> Summary {
        let (schemas, refused, failed) = (self.total, self.refused, self.failed);
        let (changed, unchanged) = (self.changed, self.unchanged);
        match self.mode {
            Mode::Read => {
                Summary::Read { schemas, states: std::mem::take(&mut self.states), refused, failed, not_started }
            }
            Mode::Change => Summary::Changed {
                schemas,
                changed,
                unchanged,
                by_others: self.by_others,
                refused,
                failed,
                not_started,
            },
            Mode::DryRun => {
                Summary::Planned { schemas, would_change: changed, unchanged, refused, failed, not_started }
            }
        }
    }

    /// The summary line for people, when there is more than one schema or something went wrong.
    fn summary_line(&self, not_started: usize) -> Option<String> {
        let stopped = match (not_started, self.interrupted) {
            (0, false) => String::new(),
            (n, true) => format!(", {n} not started (interrupted)"),
            (n, false) => format!(", {n} not started (stopped at the first failure; --keep-going goes on)"),
        };
        let troubles = self.refused + self.failed + not_started + usize::from(self.interrupted);
        let mut counts: Vec<String> = match self.mode {
            // What was read, counted by state; the table above says the rest.
            Mode::Read => self.states.iter().map(|(state, n)| format!("{n} {state}")).collect(),
            Mode::Change => vec![format!("{} changed", self.changed), format!("{} already current", self.unchanged)],
            Mode::DryRun => {
                vec![format!("{} would change", self.changed), format!("{} already current", self.unchanged)]
            }
        };
        let worth_saying = match self.mode {
            Mode::Read => self.total > 1 || troubles > 0,
            Mode::Change | Mode::DryRun => self.changed + self.unchanged > 0 && self.total > 1 || troubles > 0,
        };
        if !worth_saying {
            return None;
        }
        if self.refused > 0 {
            counts.push(format!("{} refused", self.refused));
        }
        if self.mode != Mode::Read || self.failed > 0 {
            counts.push(format!("{} failed", self.failed));
        }
        let dry = if self.mode == Mode::DryRun { " (dry run: nothing was changed)" } else { "" };
        let others = match self.by_others {
            0 => String::new(),
            n => format!("; another process changed {n} of them meanwhile"),
        };
        Some(format!("{} schema(s): {}{stopped}{others}{dry}", self.total, counts.join(", ")))
    }
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

/// A changed function and a missing index: the differences both sinks' tests render.
#[cfg(test)]
pub(crate) fn sample_differences() -> (migrate_ops::Difference, migrate_ops::Difference) {
    use migrate_ops::{Definition, Difference, ObjectKind, ObjectName};
    let changed = Difference::Changed {
        kind: ObjectKind::Function,
        name: ObjectName::routine("touch", ""),
        expected: Definition::new([("body", "BEGIN\n  x;\nEND"), ("strict", "")]),
        found: Definition::new([("body", "BEGIN\n  y;\nEND")]),
    };
    let missing = Difference::Missing {
        kind: ObjectKind::Index,
        name: ObjectName::new("i"),
        definition: Definition::new([("definition", "CREATE INDEX i ON <schema>.t USING btree (a)")]),
    };
    (changed, missing)
}
