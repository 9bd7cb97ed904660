fn main() {
    migrate_core::build::rerun_if_migrations_change("migrations");
    migrate_core::build::rerun_if_migrations_change("../migrations");
    migrate_core::build::rerun_if_migrations_change("../tests/fixtures/citus");
}
