use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_lint_syntax");

fn main() {
    let _ = &MIGRATIONS;
}
