//! What the generator produces: statements in the order they must run, each with what a reviewer must know, and
//! what it could not express.

use std::fmt;

use crate::structure::object::{ObjectKind, ObjectName, SCHEMA_PLACEHOLDER};

/// When a statement runs relative to the others: the order of the variants is the order of the script. Drops come
/// first, dependents before what they depend on; then changes; then creations, what is depended on first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Phase {
    DropDependent,
    DropView,
    DropLateRoutine,
    DropForeignKey,
    DropConstraint,
    DropIndex,
    DropColumn,
    DropTable,
    DropSequence,
    DropRoutine,
    DropCompositeType,
    DropDomain,
    DropType,
    AlterType,
    CreateType,
    CreateDomain,
    CreateCompositeType,
    CreateSequence,
    CreateRoutine,
    CreateTable,
    AlterTable,
    OwnSequence,
    AddPartitionConstraint,
    AddConstraint,
    AddForeignKey,
    CreatePartitionIndex,
    CreateIndex,
    CreateLateRoutine,
    CreateView,
    CreateViewIndex,
    CreateDependent,
    Comment,
}

/// Why a statement needs a person's eyes before it runs on a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReviewReason {
    /// It drops a table, a column or rows' values.
    LosesData,
    /// It rewrites a whole table under an `ACCESS EXCLUSIVE` lock (a column's type, a stored generated column).
    RewritesTable,
    /// It scans a whole table under an `ACCESS EXCLUSIVE` lock (`SET NOT NULL`, a constraint validated at once).
    ScansTable,
    /// It builds an index on an existing table without `CONCURRENTLY`, blocking writes while it builds.
    BlocksWrites,
    /// A dropped object and an added one look like one object renamed.
    LooksRenamed,
    /// It fails on existing rows that do not fit (a `NOT NULL` column without a default, an enum value removed).
    MayFailOnRows,
    /// It renames a table or column the running code may use.
    Renames,
    /// It captures the search path the migration runs with.
    SearchPathFromCurrent,
}

/// A note on one statement for the reviewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// Why.
    pub reason: ReviewReason,
    /// What to know, one sentence.
    pub text: String,
    /// The compile-time lint's rule that refuses the statement until the file says `-- migrate:allow <rule>`.
    pub lint_rule: Option<&'static str>,
}

/// One statement of a generated script (a few for one object, such as a table and its comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) phase: Phase,
    /// Statements, each ending with `;`, objects of the schema written `<schema>."name"`.
    pub(crate) sql: String,
    pub(crate) review: Option<Review>,
}

impl Change {
    pub(crate) fn new(phase: Phase, sql: impl Into<String>) -> Change {
        Change { phase, sql: sql.into(), review: None }
    }

    pub(crate) fn reviewed(mut self, reason: ReviewReason, text: impl Into<String>) -> Change {
        self.review = Some(Review { reason, text: text.into(), lint_rule: None });
        self
    }

    /// A review note for a statement the build's lint refuses as `rule`.
    pub(crate) fn linted(mut self, reason: ReviewReason, rule: &'static str, text: impl Into<String>) -> Change {
        self.review = Some(Review { reason, text: text.into(), lint_rule: Some(rule) });
        self
    }
}

/// A difference the generator cannot write as SQL, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexpressed {
    /// The kind of object.
    pub kind: ObjectKind,
    /// Which.
    pub name: ObjectName,
    /// Why it cannot be generated, and what to do instead.
    pub reason: String,
}

impl fmt::Display for Unexpressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.name, self.reason)
    }
}

/// How the schema's own objects are named in the rendered script.
#[derive(Debug, Clone, Copy)]
pub enum Qualifier<'a> {
    /// Unqualified, for a migration file: it runs with `search_path` set to whichever schema it migrates.
    SearchPath,
    /// Qualified with this schema (already quoted), for a script a person runs against one schema.
    Schema(&'a str),
}

impl Qualifier<'_> {
    pub(crate) fn apply(self, sql: &str) -> String {
        let placeholder = format!("{SCHEMA_PLACEHOLDER}.");
        match self {
            Qualifier::SearchPath => sql.replace(&placeholder, ""),
            Qualifier::Schema(quoted) => sql.replace(&placeholder, &format!("{quoted}.")),
        }
    }
}

/// A generated script: statements in dependency order, with their review notes, and what could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub(crate) changes: Vec<Change>,
    /// What could not be expressed as SQL.
    pub unexpressed: Vec<Unexpressed>,
    /// The script must run outside a transaction (an enum value added and used in it).
    pub no_transaction: bool,
}

impl Changes {
    /// Nothing to do and nothing left out.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.unexpressed.is_empty()
    }

    /// Number of statements (an object's comment counts with it).
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// The review notes, in script order.
    pub fn reviews(&self) -> impl Iterator<Item = &Review> {
        self.changes.iter().filter_map(|change| change.review.as_ref())
    }

    /// The script in two parts: what creates types, sequences, routines and tables with their columns, and the
    /// rest (constraints, indexes, views, triggers, policies, comments): rows can be loaded between the two with
    /// no key, index or trigger yet in their way.
    pub(crate) fn scripts_around_rows(&self, qualifier: Qualifier<'_>) -> (String, String) {
        let (before, after): (Vec<Change>, Vec<Change>) =
            self.changes.iter().cloned().partition(|change| change.phase <= Phase::AlterTable);
        let script = |changes: Vec<Change>| Changes { changes, ..Changes::default() }.script(qualifier);
        (script(before), script(after))
    }

    /// Put renames (`(statement, is a column's)`) before every other statement: the up script renames first.
    pub(crate) fn prepend_renames(&mut self, renames: impl IntoIterator<Item = (String, bool)>) {
        let renames: Vec<Change> = renames.into_iter().map(|(sql, column)| rename_change(sql, column)).collect();
        self.changes.splice(0..0, renames);
    }

    /// Put renames after every other statement: the down script renames back last.
    pub(crate) fn append_renames(&mut self, renames: impl IntoIterator<Item = (String, bool)>) {
        self.changes.extend(renames.into_iter().map(|(sql, column)| rename_change(sql, column)));
    }

    /// The statements as a script: each preceded by its review note (`-- REVIEW (reason): ...`, with the lint rule
    /// that will refuse it), separated by blank lines.
    pub fn script(&self, qualifier: Qualifier<'_>) -> String {
        let mut script = String::new();
        for change in &self.changes {
            if !script.is_empty() {
                script.push('\n');
            }
            let sql = qualifier.apply(&change.sql);
            if let Some(review) = &change.review {
                script.push_str(&review_comment(review));
            }
            script.push_str(&sql);
            script.push('\n');
        }
        script
    }
}

fn rename_change(sql: String, column: bool) -> Change {
    let (rule, what) = if column { ("rename-column", "a column") } else { ("rename-table", "a table") };
    let text = format!(
        "renaming {what} breaks the running code that still uses the old name while the fleet migrates: deploy code \
         that reads both names first, or add the new name and drop the old one in a later revision."
    );
    Change::new(Phase::DropDependent, sql).linted(ReviewReason::Renames, rule, text)
}

/// `-- REVIEW: ...` lines for one statement.
fn review_comment(review: &Review) -> String {
    let mut text = format!("REVIEW: {}", review.text);
    if let Some(rule) = review.lint_rule {
        text.push_str(&format!(
            " The build's lint refuses it as `{rule}` until you rewrite it or add `-- migrate:allow {rule}` to this file."
        ));
    }
    comment_lines(&text)
}

/// Text as `-- ` lines of at most about 110 characters.
pub(crate) fn comment_lines(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("--");
    for word in text.split_whitespace() {
        if line.len() + word.len() > 110 && line.len() > 2 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("--");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}
