use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_bad_file_name");

fn main() {
    let _ = &MIGRATIONS;
}
