//! `bench citus`: the same fan-outs on a Citus cluster (a coordinator and two workers of the benchmark's own, on
//! free loopback ports, schema-based sharding on) and on the single local server, in process through the CLI's
//! code (and the no-ops also as a process, `bench citus-migrate upgrade`, exec to exit), over the set the Citus
//! tests use (`tests/fixtures/citus`: six migrations, one of them a no-transaction
//! `CREATE INDEX CONCURRENTLY`; app-example's own set is refused by Citus at migration 4). Fresh fan-outs of
//! `--schemas` tenants, no-op fan-outs over them, and a no-op fan-out over `--many` tenants on Citus.
//!
//! ```sh
//! cargo run --release -p bench -- citus     # needs Citus installed (bash ../shared/citus/install.sh)
//! ```

use std::time::Duration;

use integration_tests::citus::CitusCluster;
use migrate_runtime::MigrationSet;

use crate::databases::Databases;
use crate::timed;

/// The set the Citus tests use.
pub(crate) static CITUS_SET: MigrationSet = migrate_runtime::embed_migrations!("../tests/fixtures/citus");

#[derive(Debug, clap::Args)]
pub struct CitusArgs {
    /// Tenants of the fresh and no-op fan-outs, on each side.
    #[arg(long, default_value_t = 200)]
    schemas: usize,
    /// Tenants of the large no-op fan-out on Citus.
    #[arg(long, default_value_t = 1000)]
    many: usize,
    /// Runs of each no-op fan-out (median).
    #[arg(long, default_value_t = 5)]
    noop_runs: usize,
    /// Connections per database (`--jobs`); the CLI's default when not given.
    #[arg(long)]
    jobs: Option<usize>,
    /// The single server to compare with (a database of the benchmark's own is made on it).
    #[arg(long, env = "DATABASE_URL", default_value = crate::DEFAULT_DATABASE_URL)]
    database_url: String,
}

pub fn run(args: CitusArgs) -> anyhow::Result<()> {
    if let Some(reason) = integration_tests::citus::missing() {
        anyhow::bail!("{reason}");
    }
    let mut databases = Databases::new(&args.database_url)?;
    let outcome = measure(&args, &mut databases);
    databases.drop_all()?;
    outcome
}

fn measure(args: &CitusArgs, databases: &mut Databases) -> anyhow::Result<()> {
    let single = databases.create("citus_compare")?;
    let cluster = CitusCluster::start();
    let names = |count: usize| -> Vec<String> { (0..count).map(|i| format!("tenant_{i}")).collect() };
    let tenants = names(args.schemas);
    let mut rows = Vec::new();
    for (side, url) in [("single server", single.as_str()), ("Citus, 2 workers", cluster.url().as_str())] {
        let fresh = timed(|| upgrade(url, &tenants, args.jobs))?;
        let noop = median(args.noop_runs, || timed(|| upgrade(url, &tenants, args.jobs)))?;
        let process = median(args.noop_runs, || timed(|| upgrade_process(url, &tenants, args.jobs)))?;
        eprintln!("{side}: fresh {fresh:.3?}, no-op {noop:.3?}, no-op as a process {process:.3?}");
        rows.push(Row { side, fresh, noop, process });
    }
    let many = names(args.many);
    upgrade(&cluster.url(), &many, args.jobs)?;
    let many_noop = median(args.noop_runs, || timed(|| upgrade(&cluster.url(), &many, args.jobs)))?;
    let many_process = median(args.noop_runs, || timed(|| upgrade_process(&cluster.url(), &many, args.jobs)))?;
    eprintln!("Citus no-op over {}: {many_noop:.3?}, as a process {many_process:.3?}", args.many);
    print(args, &rows, many_noop, many_process);
    Ok(())
}

/// One side's fan-outs: fresh and no-op in process, no-op as a process.
struct Row {
    side: &'static str,
    fresh: Duration,
    noop: Duration,
    process: Duration,
}

fn print(args: &CitusArgs, rows: &[Row], many_noop: Duration, many_process: Duration) {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!("\n## Citus (schema-based sharding) against one server, {} tenants\n", args.schemas);
    println!(
        "| where | fresh fan-out, in process | no-op fan-out, in process | no-op fan-out, as a process |\n\
         | --- | --- | --- | --- |"
    );
    for row in rows {
        println!("| {} | {} | {} | {} |", row.side, ms(row.fresh), ms(row.noop), ms(row.process));
    }
    if let [single, citus] = rows {
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "| Citus / single server | {:.2}x | {:.2}x | {:.2}x |",
            ratio(citus.fresh, single.fresh),
            ratio(citus.noop, single.noop),
            ratio(citus.process, single.process)
        );
    }
    println!("\nNo-ops: median of {} runs.\n", args.noop_runs);
    println!("| target | measured | result |\n| --- | --- | --- |");
    for (how, time) in [("in process", many_noop), ("as a process", many_process)] {
        let verdict = if time < Duration::from_secs(1) { "PASS" } else { "FAIL" };
        println!("| no-op over {} tenants on Citus, {how}: < 1 s | {} | {verdict} |", args.many, ms(time));
    }
}

fn median(runs: usize, mut run: impl FnMut() -> anyhow::Result<Duration>) -> anyhow::Result<Duration> {
    let mut times = (0..runs.max(1)).map(|_| run()).collect::<anyhow::Result<Vec<_>>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

/// `migrate upgrade --create --schemas-file F` over the Citus set, through the CLI code in this process.
fn upgrade(database_url: &str, schemas: &[String], jobs: Option<usize>) -> anyhow::Result<()> {
    crate::cli_upgrade_with(&CITUS_SET, database_url, schemas, jobs)
}

/// The same as an operator runs it: `bench citus-migrate upgrade --create --schemas-file F`, exec to exit.
fn upgrade_process(database_url: &str, schemas: &[String], jobs: Option<usize>) -> anyhow::Result<()> {
    let file = std::env::temp_dir().join(format!("bench-citus-schemas-{}.txt", std::process::id()));
    std::fs::write(&file, schemas.join("\n"))?;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.args(["citus-migrate", "upgrade", "--create", "--schemas-file"]).arg(&file);
    command.args(["--database-url", database_url]).stdout(std::process::Stdio::null());
    if let Some(jobs) = jobs {
        command.args(["--jobs", &jobs.to_string()]);
    }
    let status = command.status()?;
    std::fs::remove_file(&file)?;
    anyhow::ensure!(status.success(), "bench citus-migrate upgrade exited with {status}");
    Ok(())
}
