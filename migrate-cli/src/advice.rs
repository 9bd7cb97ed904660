//! What an operator can do next, in the CLI's own commands. The library's messages say what happened; the CLI adds
//! the command that settles it.

use migrate_runtime::{Error, ErrorKind, Refusal};

/// The CLI command that settles `error`, to follow its message; `None` when the message says all there is.
pub fn advice(error: &Error) -> Option<String> {
    match error.kind() {
        ErrorKind::Refused(refusal) => refusal_advice(refusal),
        ErrorKind::MigrationFailed { version, left_dirty: true, .. } => Some(format!(
            " with `migrate resolve --version {version} --applied` (its effects are in place) or `--not-applied`"
        )),
        _ => None,
    }
}

/// The CLI command that settles a refusal, to follow its message.
pub fn refusal_advice(refusal: &Refusal) -> Option<String> {
    match refusal {
        Refusal::Dirty { version, .. } => Some(format!(
            " with `migrate resolve --version {version} --applied` (its effects are in place) or `--not-applied` (the \
             next upgrade runs it again; add --allow-out-of-order if newer versions are applied)"
        )),
        Refusal::Interrupted { version, .. } => {
            Some(format!(" with `migrate resolve --version {version} --applied` or `--not-applied`"))
        }
        _ => None,
    }
}

/// A schema's error as the CLI says it: the message, its causes, and the command that settles it.
pub(crate) fn error_text(error: &migrate_ops::Error) -> String {
    let mut text = chain(error);
    if let migrate_ops::Error::Migrate(error) = error {
        text.push_str(&advice(error).unwrap_or_default());
    }
    text
}

/// A status's problem as the CLI says it: the refusal, naming the schema, and the command that settles it.
pub(crate) fn problem_text(schema: &str, refusal: &Refusal) -> String {
    let error = Error::new(schema, refusal.clone());
    format!("{error}{}", refusal_advice(refusal).unwrap_or_default())
}

/// An error with its causes, `: `-separated.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
