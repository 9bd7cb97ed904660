use migrate_runtime::{embed_migrations, MigrationSet};

// Rules opted out of by name, a table the file creates, and a concurrent build in a no-transaction file: no finding.
static ALLOWED: MigrationSet = embed_migrations!("ui/pass/migrations_lint_allowed");

// Every file of this folder breaks a rule, but none is at or above version 13: files that ran everywhere already
// are not linted.
static OLD: MigrationSet = embed_migrations!("ui/migrations_lint_rules", lint_since = 13);

fn main() {
    assert_eq!(ALLOWED.head(), Some(3));
    assert_eq!(OLD.head(), Some(12));
}
