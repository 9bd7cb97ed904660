//! app-axum's tests, one binary: the axum + sqlx service as a process (boot, replicas racing, a tenant per
//! request) and behind PgBouncer 1.18 in transaction mode. Shared helpers come from the `integration-tests`
//! library.

mod boot;
mod pooler;
mod tenants;

use integration_tests::service::ServiceProcess;

/// Start app-axum for `schema` with `env` on top of the test server's.
pub(crate) fn start(schema: &str, env: &[(&str, &str)]) -> Result<ServiceProcess, (Option<i32>, String)> {
    ServiceProcess::start(env!("CARGO_BIN_EXE_app-axum"), schema, env)
}

/// `app-axum migrate ARGS` against `database_url`, which must succeed.
pub(crate) fn migrate(database_url: &str, args: &[&str]) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_app-axum"))
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("DEFAULT_SCHEMA_NAME")
        .env_remove("MIGRATE_HISTORY_TABLE")
        .env_remove("MIGRATE_EXTRA_SEARCH_PATH")
        .output()
        .unwrap();
    integration_tests::succeeded(&output);
}

/// The skus a products answer lists.
pub(crate) fn skus(answer: &serde_json::Value) -> Vec<String> {
    answer["products"].as_array().unwrap().iter().map(|p| p["sku"].as_str().unwrap().to_owned()).collect()
}
