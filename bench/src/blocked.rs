//! A fan-out with one tenant's table held: N tenants (default 200) at version 7 of the example set, one of which
//! has a reader holding `customers` in a long transaction; then `app-example migrate upgrade --keep-going` as an
//! operator runs it, whose migration 8 (`ALTER TABLE customers ADD COLUMN ...`) needs that table's
//! `ACCESS EXCLUSIVE` lock. Every other tenant must reach head; that one must fail cleanly (SQLSTATE 55P03, nothing
//! of migration 8 applied) within its lock timeout and retries; and the reader must never wait.
//!
//! ```sh
//! cargo run --release -p bench -- blocked               # 200 tenants, --jobs 4
//! cargo run --release -p bench -- blocked --schemas 1000
//! ```

use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use crate::databases::Databases;

/// `bench blocked`'s options.
#[derive(Debug, clap::Args)]
pub struct BlockedArgs {
    /// Tenants in the fan-out.
    #[arg(long, default_value_t = 200)]
    schemas: usize,
    /// Schemas at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    #[arg(long, env = "DATABASE_URL", default_value = crate::DEFAULT_DATABASE_URL)]
    database_url: String,
}

pub fn run(args: BlockedArgs) -> anyhow::Result<()> {
    let app = crate::process::build_app_example()?;
    let mut databases = Databases::new(&args.database_url)?;
    let outcome = run_in(&args, &app, &mut databases);
    databases.drop_all()?;
    outcome
}

fn run_in(args: &BlockedArgs, app: &std::path::Path, databases: &mut Databases) -> anyhow::Result<()> {
    let url = databases.create("blocked")?;
    let names: Vec<String> = (0..args.schemas).map(|i| format!("tenant_{i:05}")).collect();
    let file = std::env::temp_dir().join(format!("bench-blocked-{}.txt", std::process::id()));
    std::fs::write(&file, names.join("\n"))?;
    let outcome = fan_out(args, app, &url, &names, &file);
    let _ = std::fs::remove_file(&file);
    outcome
}

fn fan_out(
    args: &BlockedArgs,
    app: &std::path::Path,
    url: &str,
    names: &[String],
    file: &std::path::Path,
) -> anyhow::Result<()> {
    let migrate = |extra: &[&str]| {
        let mut command = Command::new(app);
        command
            .args(["migrate", "upgrade", "--schemas-file", file.to_str().unwrap_or_default(), "--jobs"])
            .arg(args.jobs.to_string())
            .args(extra)
            .env("DATABASE_URL", url)
            .env_remove("MIGRATE_PROTECTED_SCHEMAS");
        command
    };
    let status = migrate(&["--create", "--target", "7", "--format", "json"]).output()?.status;
    anyhow::ensure!(status.success(), "preparing {} tenants at version 7 failed", args.schemas);

    // A reader in the middle of the fleet holds customers for the whole run.
    let held = &names[names.len() / 2];
    let mut reader = postgres::Client::connect(url, postgres::NoTls)?;
    reader.batch_execute(&format!("BEGIN; SELECT count(*) FROM \"{held}\".customers"))?;

    let started = Instant::now();
    let output = migrate(&["--keep-going", "--format", "json"]).output()?;
    let elapsed = started.elapsed();
    let reader_started = Instant::now();
    reader.batch_execute(&format!("SELECT count(*) FROM \"{held}\".customers; ROLLBACK"))?;
    let reader_wait = reader_started.elapsed();

    let document: serde_json::Value = serde_json::from_slice(&output.stdout).context("the run's JSON")?;
    let summary = &document["summary"];
    let entry = document["schemas"]
        .as_array()
        .and_then(|schemas| schemas.iter().find(|s| s["schema"] == held.as_str()))
        .context("the held tenant's entry")?;
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let at_head: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = 'customers' AND a.attname = 'updated_at' AND n.nspname LIKE 'tenant\\_%'",
            &[],
        )?
        .get(0);

    println!("fan-out of {} tenants, --jobs {}, one tenant's customers held by a reader:", args.schemas, args.jobs);
    println!("  exit code {:?}, wall time {:.2} s", output.status.code(), elapsed.as_secs_f64());
    println!("  summary: {summary}");
    println!(
        "  held tenant {held}: outcome {}, sqlstate {}, version after {}",
        entry["outcome"], entry["sqlstate"], entry["version_after"]
    );
    println!("  tenants with migration 8's column: {at_head} of {} (all but the held one)", args.schemas);
    println!("  the reader's next query after the run: {:.1} ms (it never waited)", reader_wait.as_secs_f64() * 1000.0);
    anyhow::ensure!(at_head as usize == args.schemas - 1, "expected every tenant but the held one at head");
    anyhow::ensure!(entry["sqlstate"] == "55P03", "the held tenant did not fail with 55P03: {entry}");
    Ok(())
}
