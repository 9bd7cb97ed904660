//! The benchmark: what operators run, as processes, exec to exit. This project's CLI (`app-example migrate` over
//! the example set, `bench migrate` over the bench set), a refinery 0.10 CLI-like loop (`bench refinery-upgrade`)
//! and the raw floor (one `psql` process applying the same SQL, no bookkeeping), interleaved on the same local
//! server; then service boot (exec to the first healthy `/health`), an in-process breakdown of the fresh fan-out
//! (`--jobs`, the history digest trigger, round trips), and what embedding 1,000 migrations adds to a rebuild.
//!
//! ```sh
//! cargo run --release -p bench              # builds app-example (release) itself, then everything
//! cargo run --release -p bench -- --help
//! cargo run --release -p bench -- drivers   # each driver against tokio-postgres, and each feature's build cost
//! cargo run --release -p bench -- citus     # fan-outs on a Citus cluster of its own against the single server
//! ```
//!
//! Every timed fresh run gets a database of its own, made before the first timed run (`databases.rs` says why).
//! Everything created is dropped at the end (databases `bench_<pid>_*`, the temporary crate of the embedding
//! measurement and its binaries), and the churned shared catalogs are vacuumed (the server runs with autovacuum
//! off).

mod blocked;
mod child;
mod citus;
mod databases;
mod drive;
mod driver_features;
mod drivers;
mod embed;
mod process;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use migrate_cli::{Cli, MigrateCommand};
use migrate_runtime::{MigrationSet, Migrator};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The bench set: 13 migrations in refinery's `V{n}__{name}.sql` form.
pub static BENCH_SET: MigrationSet = migrate_runtime::embed_migrations!("migrations");
/// The example service's set (8 migrations, one of them `CREATE INDEX CONCURRENTLY` outside a transaction).
pub static EXAMPLE_SET: MigrationSet = migrate_runtime::embed_migrations!("../migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    Example,
    Bench,
}

impl Set {
    pub fn migrations(self) -> &'static MigrationSet {
        match self {
            Set::Example => &EXAMPLE_SET,
            Set::Bench => &BENCH_SET,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Set::Example => "example",
            Set::Bench => "bench",
        }
    }
}

impl std::str::FromStr for Set {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Set> {
        match s {
            "example" => Ok(Set::Example),
            "bench" => Ok(Set::Bench),
            other => anyhow::bail!("no set {other:?}: example or bench"),
        }
    }
}

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Schemas for the fresh and no-op fan-outs.
    #[arg(long, default_value_t = 200)]
    schemas: usize,
    /// Rounds of the fresh fan-outs (each on new schemas; the median is reported). Five: a round's raw floor
    /// varies by up to a half from one round to the next on this machine (commit latency).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Runs of each no-op fan-out (median).
    #[arg(long, default_value_t = 7)]
    noop_runs: usize,
    /// Boots timed for each service (median).
    #[arg(long, default_value_t = 21)]
    boots: usize,
    /// Skip the in-process breakdown of the fresh fan-out.
    #[arg(long)]
    no_breakdown: bool,
    /// Skip the 1,000-migration embedding measurement (a release build of a temporary crate).
    #[arg(long)]
    no_embed: bool,
    /// Rebuilds timed for each side of the embedding measurement (median).
    #[arg(long, default_value_t = 5)]
    embed_runs: usize,
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Migrating on each driver (postgres, tokio-postgres, sqlx, diesel, diesel-async): boot and no-op as
    /// processes and in process, against the tokio-postgres path; and what each feature adds to a build.
    Drivers(drivers::DriversArgs),
    /// A fan-out with one tenant's table held by a long reader: the others reach head, that one fails cleanly.
    Blocked(blocked::BlockedArgs),
    /// Only the embedding measurement: what embedding (and linting) 1,000 migrations adds to a rebuild.
    Embed {
        /// Rebuilds timed for each binary (median).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Fresh and no-op fan-outs on a Citus cluster of its own (schema-based sharding) against the single server,
    /// and a no-op over many tenants on Citus. Needs Citus installed.
    Citus(citus::CitusArgs),
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = child::dispatch(&argv) {
        std::process::exit(code);
    }
    let mut args = Args::parse();
    let outcome = match args.mode.take() {
        Some(Mode::Drivers(drivers)) => drivers::run(drivers),
        Some(Mode::Blocked(blocked)) => blocked::run(blocked),
        Some(Mode::Embed { runs }) => embed::measure(runs, &mut Results::default()),
        Some(Mode::Citus(citus)) => citus::run(citus),
        None => run(args),
    };
    if let Err(error) = outcome {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut databases = databases::Databases::new(&args.database_url)?;
    let outcome = run_in(&args, &mut databases);
    databases.drop_all()?;
    let results = outcome?;
    results.print(args.schemas);
    Ok(())
}

fn run_in(args: &Args, databases: &mut databases::Databases) -> anyhow::Result<Results> {
    // A database of this run's own for the boots and the round trip: other sessions on the server neither wait on
    // it nor make it wait (`CREATE INDEX CONCURRENTLY` waits for older transactions of its database only).
    let scratch_url = databases.create("scratch")?;
    let mut client = postgres::Client::connect(&scratch_url, postgres::NoTls).context("connect")?;
    let prefix = format!("bench_{}_", std::process::id());
    let app_example = process::build_app_example()?;
    println!("server: {}", client.query_one("SELECT version()", &[])?.get::<_, String>(0));
    println!(
        "machine: {} cores, load average {} at the start",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    let mut results = Results::default();
    let tools = process::Tools { app_example, database_url: scratch_url };
    // Every timed fresh run in a database of its own, all made now, before the benchmark deletes anything.
    let sets = [Set::Example, Set::Bench];
    let breakdown_runs = if args.no_breakdown { 0 } else { BREAKDOWN_FRESH_RUNS };
    databases.create_pristine(sets.len() * 3 * args.rounds.max(1) + breakdown_runs)?;
    let mut built = Vec::new();
    for set in sets {
        built.push(process::fresh_rounds(&tools, databases, set, &prefix, args, &mut results)?);
    }
    if !args.no_breakdown {
        breakdown(args, databases, &prefix, &mut results)?;
    }
    for (set, built) in sets.into_iter().zip(built) {
        process::no_ops(&tools, set, built, args, &mut results)?;
    }
    process::boots(&tools, &mut client, &prefix, args, &mut results)?;
    if !args.no_breakdown {
        // Last of the database work: these runs follow deletions on purpose.
        process::after_deletions(&tools, databases, Set::Example, &prefix, args, &mut results)?;
        round_trip(&mut client, &mut results)?;
    }
    if !args.no_embed {
        embed::measure(args.embed_runs, &mut results)?;
    }
    println!(
        "load average {} at the end",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    Ok(results)
}

/// The timed fresh runs of [`breakdown`], each in a pristine database.
const BREAKDOWN_FRESH_RUNS: usize = 8;

/// In-process, bench set: where the fresh fan-out's time goes. Each run in a pristine database.
fn breakdown(
    args: &Args,
    databases: &mut databases::Databases,
    prefix: &str,
    results: &mut Results,
) -> anyhow::Result<()> {
    let names = |kind: &str| -> Vec<String> { (0..args.schemas).map(|i| format!("{prefix}in_{kind}_{i}")).collect() };
    let default_jobs = migrate_ops::default_jobs();
    for jobs in [2, 4, 8] {
        let url = databases.take_pristine()?;
        let time = timed(|| cli_upgrade(&url, &names("ours"), Some(jobs)))?;
        let note = if jobs == default_jobs { " (default here)" } else { "" };
        results.breakdown(format!("in-process fresh, ours, --jobs {jobs}{note}"), time);
    }
    // The digest trigger: the same run with triggers off for the session (session_replication_role = replica
    // skips ordinary triggers). Foreign-key checks of the seed rows are skipped too, so the raw floor is run both
    // ways as well and its difference taken out.
    for (label, option) in [("", None), (", triggers off (replica role)", Some("-c session_replication_role=replica"))]
    {
        let with = |url: String| match option {
            Some(option) => with_option(&url, option),
            None => url,
        };
        let url = with(databases.take_pristine()?);
        let time = timed(|| cli_upgrade(&url, &names("ours"), Some(default_jobs)))?;
        results.breakdown(format!("in-process fresh, ours, --jobs {default_jobs}{label}"), time);
        let mut raw_client = postgres::Client::connect(&with(databases.take_pristine()?), postgres::NoTls)?;
        let time = timed(|| raw_upgrade(&mut raw_client, &names("raw")))?;
        results.breakdown(format!("in-process fresh, raw floor (one session){label}"), time);
    }
    let mut refinery_client = postgres::Client::connect(&databases.take_pristine()?, postgres::NoTls)?;
    let time = timed(|| refinery_upgrade(&mut refinery_client, &names("refinery")))?;
    results.breakdown("in-process fresh, refinery (one session)".to_owned(), time);
    Ok(())
}

/// One round trip on an open connection (the median of 500 `SELECT 1`).
fn round_trip(client: &mut postgres::Client, results: &mut Results) -> anyhow::Result<()> {
    let mut rtts: Vec<Duration> = (0..500)
        .map(|_| timed(|| client.simple_query("SELECT 1").map(drop).map_err(Into::into)))
        .collect::<anyhow::Result<_>>()?;
    rtts.sort();
    results.breakdown("one round trip (SELECT 1, median of 500)".to_owned(), rtts[rtts.len() / 2]);
    Ok(())
}

/// `url` with a libpq `options` value added.
fn with_option(url: &str, option: &str) -> String {
    let encoded = option.replace(' ', "%20").replace('=', "%3D");
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}options={encoded}")
}

pub fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

/// `migrate upgrade --schemas-file F` over the bench set through the CLI code in this process, output discarded.
fn cli_upgrade(database_url: &str, schemas: &[String], jobs: Option<usize>) -> anyhow::Result<()> {
    cli_upgrade_with(&BENCH_SET, database_url, schemas, jobs)
}

/// `migrate upgrade --create --schemas-file F` over `set` through the CLI code in this process, output discarded.
pub fn cli_upgrade_with(
    set: &MigrationSet,
    database_url: &str,
    schemas: &[String],
    jobs: Option<usize>,
) -> anyhow::Result<()> {
    let file = std::env::temp_dir().join(format!("bench-schemas-{}.txt", std::process::id()));
    std::fs::write(&file, schemas.join("\n"))?;
    let mut argv = vec![
        "upgrade".to_owned(),
        "--create".to_owned(),
        "--schemas-file".to_owned(),
        file.display().to_string(),
        "--database-url".to_owned(),
        database_url.to_owned(),
    ];
    if let Some(jobs) = jobs {
        argv.extend(["--jobs".to_owned(), jobs.to_string()]);
    }
    let command = MigrateCommand::try_parse_from_args(&argv)?;
    let code = Cli::new(Migrator::new(set)).run_to(&command, &mut std::io::sink());
    std::fs::remove_file(&file)?;
    anyhow::ensure!(code == migrate_cli::ExitCode::Success, "migrate upgrade exited with {code:?}");
    Ok(())
}

/// refinery's usual multi-schema loop in this process: one connection; per schema create, `SET search_path`, run.
fn refinery_upgrade(client: &mut postgres::Client, schemas: &[String]) -> anyhow::Result<()> {
    let runner = child::refinery_runner(Set::Bench)?;
    for schema in schemas {
        client.batch_execute(&format!("CREATE SCHEMA \"{schema}\"; SET search_path TO \"{schema}\""))?;
        runner.run(client)?;
    }
    client.batch_execute("RESET search_path")?;
    Ok(())
}

/// The floor in this process: the same SQL as `process::raw_sql`, one session, no bookkeeping.
fn raw_upgrade(client: &mut postgres::Client, schemas: &[String]) -> anyhow::Result<()> {
    for schema in schemas {
        client.batch_execute(&process::raw_sql(Set::Bench, std::slice::from_ref(schema)))?;
    }
    Ok(())
}

/// Creating thousands of schemas leaves catalogs whose statistics predate them, and dropping them dead rows, that a
/// server with autovacuum off (as this workplace's is) never analyzes or reclaims. Vacuum what the benchmark
/// churned before the runs that read those catalogs.
pub fn vacuum_catalogs(client: &mut postgres::Client) -> anyhow::Result<()> {
    client.batch_execute(
        "VACUUM (ANALYZE) pg_catalog.pg_attribute, pg_catalog.pg_depend, pg_catalog.pg_class, pg_catalog.pg_type, \
         pg_catalog.pg_namespace, pg_catalog.pg_description, pg_catalog.pg_index, pg_catalog.pg_constraint, \
         pg_catalog.pg_attrdef, pg_catalog.pg_trigger, pg_catalog.pg_proc, pg_catalog.pg_rewrite, \
         pg_catalog.pg_sequence, pg_catalog.pg_shdepend, pg_catalog.pg_init_privs, pg_catalog.pg_enum, \
         pg_catalog.pg_statistic",
    )?;
    Ok(())
}

pub fn drop_schemas(client: &mut postgres::Client, prefix: &str) -> anyhow::Result<()> {
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    let names: Vec<String> = client
        .query("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", &[&pattern])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for chunk in names.chunks(50) {
        let sql: String = chunk.iter().map(|n| format!("DROP SCHEMA \"{n}\" CASCADE;\n")).collect();
        client.batch_execute(&sql)?;
    }
    Ok(())
}

/// Every figure of the run.
#[derive(Default)]
pub struct Results {
    /// (scenario, tool, time)
    rows: Vec<(String, &'static str, Duration)>,
    breakdown: Vec<(String, Duration)>,
    /// (what, value, unit)
    embed: Vec<(String, f64, &'static str)>,
}

impl Results {
    pub fn add(&mut self, scenario: &str, tool: &'static str, time: Duration) {
        eprintln!("{scenario:>28} {tool:>9}: {time:.3?}");
        self.rows.push((scenario.to_owned(), tool, time));
    }

    pub fn breakdown(&mut self, what: String, time: Duration) {
        eprintln!("{what}: {time:.3?}");
        self.breakdown.push((what, time));
    }

    pub fn embed(&mut self, what: &str, value: f64, unit: &'static str) {
        eprintln!("{what}: {value:.2} {unit}");
        self.embed.push((what.to_owned(), value, unit));
    }

    fn get(&self, scenario: &str, tool: &str) -> Option<Duration> {
        self.rows.iter().find(|(s, t, _)| s == scenario && *t == tool).map(|r| r.2)
    }

    fn ratio(&self, scenario: &str, other: &str) -> Option<f64> {
        Some(self.get(scenario, "ours")?.as_secs_f64() / self.get(scenario, other)?.as_secs_f64())
    }

    fn embed_value(&self, what: &str) -> Option<f64> {
        self.embed.iter().find(|(w, _, _)| w == what).map(|e| e.1)
    }

    fn print(&self, schemas: usize) {
        let ms = |d: Option<Duration>| d.map_or("n/a".to_owned(), |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0));
        let x = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{r:.2}x"));
        println!("\n## As processes, exec to exit (medians)\n");
        println!("| scenario | ours | refinery 0.10 | raw floor (psql) | ours / refinery | ours / raw |");
        println!("| --- | --- | --- | --- | --- | --- |");
        let mut scenarios: Vec<&String> = Vec::new();
        for (s, _, _) in &self.rows {
            if !scenarios.contains(&s) {
                scenarios.push(s);
            }
        }
        for s in scenarios {
            println!(
                "| {s} | {} | {} | {} | {} | {} |",
                ms(self.get(s, "ours")),
                ms(self.get(s, "refinery")),
                ms(self.get(s, "raw")),
                x(self.ratio(s, "refinery")),
                x(self.ratio(s, "raw"))
            );
        }
        if !self.breakdown.is_empty() {
            println!("\n## Breakdown of the fresh fan-out ({schemas} schemas, bench set, in-process)\n");
            println!("| what | time |");
            println!("| --- | --- |");
            for (what, time) in &self.breakdown {
                println!("| {what} | {:.2} ms |", time.as_secs_f64() * 1000.0);
            }
        }
        if !self.embed.is_empty() {
            println!("\n## Embedding 1,000 migrations\n");
            println!("| what | value |");
            println!("| --- | --- |");
            for (what, value, unit) in &self.embed {
                println!("| {what} | {value:.2} {unit} |");
            }
        }
        println!("\n## Targets\n");
        println!("| target | measured | result |");
        println!("| --- | --- | --- |");
        let target = |name: String, value: Option<f64>, limit: f64, unit: &str| {
            let (measured, verdict) = match value {
                Some(v) => (format!("{v:.2}{unit}"), if v <= limit { "PASS" } else { "FAIL" }),
                None => ("n/a".to_owned(), "not measured"),
            };
            println!("| {name} | {measured} | {verdict} |");
        };
        for set in ["example", "bench"] {
            target(
                format!("no-op, {schemas} schemas, {set} set: ≤ 0.30x refinery"),
                self.ratio(&format!("no-op {schemas}, {set} set"), "refinery"),
                0.30,
                "x",
            );
        }
        for set in ["example", "bench"] {
            target(
                format!("fresh, {schemas} schemas, {set} set: ≤ 0.60x raw floor"),
                self.ratio(&format!("fresh {schemas}, {set} set"), "raw"),
                0.60,
                "x",
            );
        }
        target(
            "boot to healthy, up to date: ≤ 1.20x refinery".to_owned(),
            self.ratio("boot to healthy", "refinery"),
            1.20,
            "x",
        );
        target(
            "1,000 migrations add to a rebuild: ≤ 1.00 s".to_owned(),
            self.embed_value("rebuild added by the 1,000-migration embed"),
            1.0,
            " s",
        );
    }
}
