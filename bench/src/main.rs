//! The benchmark: this project against refinery 0.10 (its usual loop: set `search_path`, run the runner) and the
//! raw floor (the same SQL through one session, one transaction per schema, no bookkeeping), on the same local
//! server and the same 13-migration set (`bench/migrations`, refinery-style names that both embed).
//!
//! ```sh
//! cargo run --release -p bench              # all scenarios, 200 fresh schemas, 10,000 for the no-op
//! cargo run --release -p bench -- --help
//! ```
//!
//! The 10,000 schemas of the no-op scenario (`bench_noop_*`) are kept between runs, since building them takes
//! minutes; `--drop-noop` removes them. Everything else is dropped at the end.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use migrate_runtime::cli::{Cli, MigrateCommand};
use migrate_runtime::{MigrationSet, Migrator};

static MIGRATIONS: MigrationSet = migrate_runtime::embed_migrations!("migrations");

mod refinery_set {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, Parser)]
struct Args {
    /// Schemas for the fresh and the small no-op scenario.
    #[arg(long, default_value_t = 200)]
    schemas: usize,
    /// Schemas for the large no-op scenario.
    #[arg(long, default_value_t = 10_000)]
    noop_schemas: usize,
    /// Boots timed for the up-to-date boot scenario (the median is reported).
    #[arg(long, default_value_t = 50)]
    boots: usize,
    /// Drop the kept no-op schemas and exit.
    #[arg(long)]
    drop_noop: bool,
    /// Internal: run the CLI in this process with these arguments and print its peak memory.
    #[arg(long, hide = true, num_args = 1.., allow_hyphen_values = true)]
    cli: Option<Vec<String>>,
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(cli_args) = &args.cli {
        return run_cli_and_report_memory(cli_args);
    }
    let mut client =
        postgres::Client::connect(&args.database_url, postgres::NoTls).context("connect to DATABASE_URL")?;
    if args.drop_noop {
        drop_schemas(&mut client, "bench_noop_")?;
        vacuum_catalogs(&mut client)?;
        return Ok(());
    }
    let run = format!("bench_{}_", std::process::id());
    vacuum_catalogs(&mut client)?;
    println!(
        "benchmark: {} migrations, {} schemas fresh / no-op, {} schemas no-op, {} boots",
        MIGRATIONS.len(),
        args.schemas,
        args.noop_schemas,
        args.boots
    );
    println!("server: {}", client.query_one("SELECT version()", &[])?.get::<_, String>(0));
    println!("machine: {} cores", std::thread::available_parallelism().map_or(1, |n| n.get()));

    let mut results = Results::default();
    let names = |kind: &str, n: usize| -> Vec<String> { (0..n).map(|i| format!("{run}{kind}_{i}")).collect() };

    // Fresh and no-op over `schemas` schemas.
    let ours = names("ours", args.schemas);
    let theirs = names("refinery", args.schemas);
    let raw = names("raw", args.schemas);
    results.add("fresh", "ours", timed(|| cli_upgrade(&args.database_url, &ours))?);
    results.add("fresh", "refinery", timed(|| refinery_upgrade(&mut client, &theirs, true))?);
    results.add("fresh", "raw", timed(|| raw_upgrade(&mut client, &raw))?);
    results.add("no-op", "ours", median(3, || cli_upgrade(&args.database_url, &ours))?);
    results.add("no-op", "refinery", median(3, || refinery_upgrade(&mut client, &theirs, false))?);

    // No-op over many schemas: built once (by us, with refinery's history copied in) and kept.
    let noop: Vec<String> = (0..args.noop_schemas).map(|i| format!("bench_noop_{i}")).collect();
    prepare_noop(&args.database_url, &mut client, &noop)?;
    vacuum_catalogs(&mut client)?;
    results.add("no-op large", "ours", median(3, || cli_upgrade(&args.database_url, &noop))?);
    results.add("no-op large", "refinery", median(3, || refinery_upgrade(&mut client, &noop, false))?);

    // One up-to-date schema at boot: connect and migrate, the median of `boots`.
    results.add(
        "boot",
        "ours",
        median(args.boots, || {
            let mut c = postgres::Client::connect(&args.database_url, postgres::NoTls)?;
            Migrator::new(&MIGRATIONS).migrate(&mut c, &ours[0])?;
            Ok(())
        })?,
    );
    results.add(
        "boot",
        "refinery",
        median(args.boots, || {
            let mut c = postgres::Client::connect(&args.database_url, postgres::NoTls)?;
            c.batch_execute(&format!("SET search_path TO \"{}\"", theirs[0]))?;
            refinery_set::migrations::runner().run(&mut c)?;
            Ok(())
        })?,
    );
    results.add(
        "boot",
        "raw",
        median(args.boots, || {
            postgres::Client::connect(&args.database_url, postgres::NoTls)?;
            Ok(())
        })?,
    );

    // Peak memory of the CLI over few and many up-to-date schemas.
    let small = peak_memory_kib(&args.database_url, &noop[..100.min(noop.len())])?;
    let large = peak_memory_kib(&args.database_url, &noop)?;

    drop_schemas(&mut client, &run)?;
    vacuum_catalogs(&mut client)?;
    results.print(args.schemas, args.noop_schemas);
    println!(
        "peak memory of `migrate upgrade` (no-op): {small} KiB at {} schemas, {large} KiB at {} schemas: {:.2}x",
        100.min(noop.len()),
        noop.len(),
        large as f64 / small as f64
    );
    Ok(())
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

/// The median of `runs` timings: repeatable scenarios (no-op upgrades, boots) are run several times, so that one
/// run disturbed by the server's background work (autovacuum of the catalogs, checkpoints) does not decide.
fn median(runs: usize, mut scenario: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        times.push(timed(&mut scenario)?);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// What an operator runs: `migrate upgrade --schemas-file F`, through the CLI, output discarded.
fn cli_upgrade(database_url: &str, schemas: &[String]) -> anyhow::Result<()> {
    let file = std::env::temp_dir().join(format!("bench-schemas-{}.txt", std::process::id()));
    std::fs::write(&file, schemas.join("\n"))?;
    let command = MigrateCommand::try_parse_from_args([
        "upgrade",
        "--schemas-file",
        file.to_str().unwrap_or_default(),
        "--database-url",
        database_url,
    ])?;
    let code = Cli::new(Migrator::new(&MIGRATIONS)).run_to(&command, &mut std::io::sink());
    std::fs::remove_file(&file)?;
    anyhow::ensure!(code == 0, "migrate upgrade exited with {code}");
    Ok(())
}

/// refinery's usual multi-schema loop: one connection; per schema, create it if needed, set `search_path`, run.
fn refinery_upgrade(client: &mut postgres::Client, schemas: &[String], create: bool) -> anyhow::Result<()> {
    for schema in schemas {
        if create {
            client.batch_execute(&format!("CREATE SCHEMA \"{schema}\""))?;
        }
        client.batch_execute(&format!("SET search_path TO \"{schema}\""))?;
        refinery_set::migrations::runner().run(client)?;
    }
    client.batch_execute("RESET search_path")?;
    Ok(())
}

/// The floor: the same SQL, one session, one transaction per schema, no bookkeeping.
fn raw_upgrade(client: &mut postgres::Client, schemas: &[String]) -> anyhow::Result<()> {
    let body: String = MIGRATIONS.iter().map(|m| format!("{}\n;\n", m.up.sql)).collect();
    for schema in schemas {
        client.batch_execute(&format!(
            "BEGIN;\nCREATE SCHEMA \"{schema}\";\nSET LOCAL search_path TO \"{schema}\";\n{body}COMMIT;"
        ))?;
    }
    Ok(())
}

/// Build the kept no-op schemas if they are not all there: migrated by us, and refinery's history copied from one
/// schema refinery migrated, so both tools find them up to date.
fn prepare_noop(database_url: &str, client: &mut postgres::Client, schemas: &[String]) -> anyhow::Result<()> {
    let ready: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname LIKE 'bench\\_noop\\_%' AND c.relname = 'refinery_schema_history'",
            &[],
        )?
        .get(0);
    if ready as usize >= schemas.len() {
        return Ok(());
    }
    eprintln!("building {} no-op schemas (kept for later runs; --drop-noop removes them)...", schemas.len());
    let started = Instant::now();
    cli_upgrade(database_url, schemas)?;
    client.batch_execute("DROP SCHEMA IF EXISTS bench_noop_template CASCADE; CREATE SCHEMA bench_noop_template")?;
    refinery_upgrade(client, &["bench_noop_template".to_owned()], false)?;
    for chunk in schemas.chunks(200) {
        let sql: String = chunk
            .iter()
            .map(|s| {
                format!(
                    "CREATE TABLE IF NOT EXISTS \"{s}\".refinery_schema_history (LIKE bench_noop_template.refinery_schema_history INCLUDING ALL);\n\
                     INSERT INTO \"{s}\".refinery_schema_history SELECT * FROM bench_noop_template.refinery_schema_history ON CONFLICT DO NOTHING;\n"
                )
            })
            .collect();
        client.batch_execute(&format!("BEGIN;\n{sql}COMMIT;"))?;
    }
    eprintln!("built in {:.1?}", started.elapsed());
    Ok(())
}

/// Creating and dropping thousands of schemas leaves millions of dead catalog rows, and a server with autovacuum
/// off (as this workplace's is) never reclaims them: DDL then slows down several times over. Vacuum the catalogs
/// the benchmark churns before measuring, so each run starts from the same footing.
fn vacuum_catalogs(client: &mut postgres::Client) -> anyhow::Result<()> {
    let started = Instant::now();
    client.batch_execute(
        "VACUUM (ANALYZE) pg_catalog.pg_attribute, pg_catalog.pg_depend, pg_catalog.pg_class, pg_catalog.pg_type, \
         pg_catalog.pg_namespace, pg_catalog.pg_description, pg_catalog.pg_index, pg_catalog.pg_constraint, \
         pg_catalog.pg_attrdef, pg_catalog.pg_trigger, pg_catalog.pg_proc, pg_catalog.pg_rewrite, \
         pg_catalog.pg_sequence, pg_catalog.pg_shdepend, pg_catalog.pg_init_privs, pg_catalog.pg_enum",
    )?;
    eprintln!("vacuumed the catalogs in {:.1?}", started.elapsed());
    Ok(())
}

fn drop_schemas(client: &mut postgres::Client, prefix: &str) -> anyhow::Result<()> {
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    let names: Vec<String> = client
        .query("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 OR ($1 = 'bench\\_noop\\_%' AND nspname = 'bench_noop_template')", &[&pattern])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for chunk in names.chunks(50) {
        let sql: String = chunk.iter().map(|n| format!("DROP SCHEMA \"{n}\" CASCADE;\n")).collect();
        client.batch_execute(&sql)?;
    }
    Ok(())
}

/// Run `bench --cli ARGS` as a child process and read the peak resident memory it reports.
fn peak_memory_kib(database_url: &str, schemas: &[String]) -> anyhow::Result<u64> {
    let file = std::env::temp_dir().join(format!("bench-memory-{}-{}.txt", std::process::id(), schemas.len()));
    std::fs::write(&file, schemas.join("\n"))?;
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(["--database-url", database_url, "--cli", "upgrade", "--schemas-file", file.to_str().unwrap_or_default()])
        .output()?;
    std::fs::remove_file(&file)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "child failed: {}", String::from_utf8_lossy(&output.stderr));
    stdout.trim().parse().with_context(|| format!("unexpected child output {stdout:?}"))
}

fn run_cli_and_report_memory(args: &[String]) -> anyhow::Result<()> {
    let command = MigrateCommand::try_parse_from_args(args)?;
    let code = Cli::new(Migrator::new(&MIGRATIONS)).run_to(&command, &mut std::io::sink());
    anyhow::ensure!(code == 0, "migrate exited with {code}");
    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).context("no VmHWM in /proc/self/status")?;
    println!("{}", peak.trim().trim_end_matches("kB").trim());
    std::io::stdout().flush()?;
    Ok(())
}

#[derive(Default)]
struct Results(Vec<(&'static str, &'static str, Duration)>);

impl Results {
    fn add(&mut self, scenario: &'static str, tool: &'static str, time: Duration) {
        eprintln!("{scenario:>12} {tool:>9}: {time:.3?}");
        self.0.push((scenario, tool, time));
    }

    fn get(&self, scenario: &str, tool: &str) -> Option<Duration> {
        self.0.iter().find(|(s, t, _)| *s == scenario && *t == tool).map(|r| r.2)
    }

    fn print(&self, schemas: usize, noop_schemas: usize) {
        println!();
        println!("| scenario | ours | refinery 0.10 | raw floor | ours / refinery | ours / raw |");
        println!("| --- | --- | --- | --- | --- | --- |");
        for (scenario, label) in [
            ("fresh", format!("fresh upgrade, {schemas} schemas")),
            ("no-op", format!("no-op upgrade, {schemas} schemas (median of 3)")),
            ("no-op large", format!("no-op upgrade, {noop_schemas} schemas (median of 3)")),
            ("boot", "boot, one up-to-date schema (median)".to_owned()),
        ] {
            let cell = |tool| {
                self.get(scenario, tool).map_or("n/a".to_owned(), |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
            };
            let ratio = |tool| match (self.get(scenario, "ours"), self.get(scenario, tool)) {
                (Some(ours), Some(other)) => format!("{:.2}x", ours.as_secs_f64() / other.as_secs_f64()),
                _ => "n/a".to_owned(),
            };
            println!(
                "| {label} | {} | {} | {} | {} | {} |",
                cell("ours"),
                cell("refinery"),
                cell("raw"),
                ratio("refinery"),
                ratio("raw")
            );
        }
    }
}
