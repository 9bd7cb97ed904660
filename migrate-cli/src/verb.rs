//! What a command does to a schema, in the words its messages use.

use migrate_runtime::Operation;

/// What a command does to a schema, in messages: the verb, and whether it changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Changes schemas with this operation.
    Change(Operation),
    /// `verify`.
    Verify,
    /// `current`, `status`.
    Status,
    /// `history`.
    History,
    /// `diff`.
    Diff,
    /// `revision --autogenerate --from`.
    Generate,
}

impl Verb {
    /// The words for it in a message: `upgrade`, `show the status of`, ...
    pub fn words(self) -> &'static str {
        match self {
            Verb::Change(Operation::Upgrade(_)) => "upgrade",
            Verb::Change(Operation::Downgrade(_)) => "downgrade",
            Verb::Change(Operation::Reset) => "reset",
            Verb::Change(Operation::Repair) => "repair",
            Verb::Change(Operation::Resolve { .. }) => "resolve",
            Verb::Change(Operation::Baseline { .. }) => "baseline",
            Verb::Change(Operation::Adopt(_)) => "adopt",
            Verb::Verify => "verify",
            Verb::Status => "show status",
            Verb::History => "show history",
            Verb::Diff => "diff",
            Verb::Generate => "generate a revision from",
        }
    }

    /// It changes schemas (so a refusal says that nothing was changed).
    pub fn changes(self) -> bool {
        matches!(self, Verb::Change(_))
    }
}
