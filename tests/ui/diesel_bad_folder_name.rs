use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_diesel_bad_folder_name");

fn main() {
    let _ = &MIGRATIONS;
}
