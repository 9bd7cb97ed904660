//! Benchmark of structural verification: `verify_schemas` over N tenants against a loop of
//! `pg_dump --schema-only -n <schema>`, the usual way of checking what a schema is.
//!
//! ```sh
//! cargo run --release -p bench --bin verify                  # 1000 tenants
//! cargo run --release -p bench --bin verify -- --schemas 200 --jobs 4
//! ```
//!
//! Works in a database of its own (`verify_bench_<pid>`), created at the start and dropped at the end; the
//! tenants are migrated with the example service's set (`migrations/`, eight migrations, one of them a
//! no-transaction `CREATE INDEX CONCURRENTLY`) by the library, in parallel threads.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use migrate_ops::{verify_schemas, Outcome};
use migrate_runtime::{MigrationSet, Migrator, SchemaName, DEFAULT_HISTORY_TABLE};

static MIGRATIONS: MigrationSet = migrate_runtime::embed_migrations!("../migrations");

#[derive(Debug, Parser)]
struct Args {
    /// Tenants to create and verify.
    #[arg(long, default_value_t = 1000)]
    schemas: usize,
    /// Threads migrating the tenants.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Run pg_dump for only this many schemas and extrapolate (the full loop takes minutes).
    #[arg(long)]
    pg_dump_sample: Option<usize>,
    /// The server (any database on it; the benchmark creates its own).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database = format!("verify_bench_{}", std::process::id());
    let url = url_for(&args.database_url, &database)?;
    let mut admin = postgres::Client::connect(&args.database_url, postgres::NoTls).context("connect")?;
    admin.batch_execute(&format!("CREATE DATABASE \"{database}\""))?;
    let result = run(&args, &url);
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))?;
    // Everything the run churned lived in the dropped database; only the shared catalog saw a row come and go.
    admin.batch_execute("VACUUM pg_catalog.pg_database")?;
    result
}

fn run(args: &Args, url: &str) -> anyhow::Result<()> {
    let names: Vec<String> = (0..args.schemas).map(|i| format!("tenant_{i:05}")).collect();
    let schemas: Vec<SchemaName> = names.iter().map(|n| SchemaName::new(n)).collect::<Result<_, _>>()?;

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..args.jobs.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
                    let migrator = Migrator::new(&MIGRATIONS);
                    while let Some(name) = names.get(next.fetch_add(1, Ordering::Relaxed)) {
                        migrator.migrate(&mut client, name)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().expect("worker panicked"))
    })?;
    println!("migrated {} tenants with {} jobs in {:.1?}", args.schemas, args.jobs, started.elapsed());

    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let mut timings = Vec::new();
    for run in ["first", "second"] {
        let started = Instant::now();
        let verifications = verify_schemas(&mut client, &Migrator::new(&MIGRATIONS), &schemas)?;
        let elapsed = started.elapsed();
        let equal = verifications.iter().filter(|v| v.outcome == Outcome::Equal).count();
        if equal != schemas.len() {
            bail!("{} of {} tenants differ from the reference", schemas.len() - equal, schemas.len());
        }
        println!("verify_schemas, {run} run: {} tenants, all equal, in {elapsed:.2?}", schemas.len());
        timings.push(elapsed);
    }
    let verify = timings[0];
    let started = Instant::now();
    migrate_ops::read_structures(&mut client, &schemas, DEFAULT_HISTORY_TABLE)?;
    println!("of which reading the {} structures alone: {:.2?}", schemas.len(), started.elapsed());
    let started = Instant::now();
    migrate_ops::reference_structure(&mut client, &Migrator::new(&MIGRATIONS), MIGRATIONS.head().unwrap_or(0))?;
    println!("and building the reference alone: {:.2?}", started.elapsed());

    let sample = args.pg_dump_sample.unwrap_or(names.len()).clamp(1, names.len());
    let started = Instant::now();
    for name in &names[..sample] {
        let status = Command::new("pg_dump")
            .args(["--schema-only", "--no-owner", "--no-privileges", "-n", name, "-d", url])
            .stdout(Stdio::null())
            .status()
            .context("run pg_dump")?;
        if !status.success() {
            bail!("pg_dump -n {name} failed: {status}");
        }
    }
    let dumped = started.elapsed();
    let pg_dump = dumped.mul_f64(names.len() as f64 / sample as f64);
    let how = if sample == names.len() { String::new() } else { format!(" (extrapolated from {sample})") };
    println!("pg_dump --schema-only loop: {} schemas in {pg_dump:.1?}{how}", names.len());
    println!(
        "ratio: verify_schemas is {:.0}x faster than the pg_dump loop ({:.2} ms per tenant against {:.1} ms)",
        pg_dump.as_secs_f64() / verify.as_secs_f64(),
        per(verify, names.len()),
        per(pg_dump, names.len())
    );
    Ok(())
}

fn per(total: Duration, count: usize) -> f64 {
    total.as_secs_f64() * 1000.0 / count as f64
}

/// `url` with its database replaced by `database`.
fn url_for(url: &str, database: &str) -> anyhow::Result<String> {
    let (path, query) = url.split_once('?').map_or((url, None), |(p, q)| (p, Some(q)));
    let Some(slash) = path.rfind('/').filter(|&i| !path[..i].ends_with('/')) else {
        bail!("DATABASE_URL must be a URL with a database path, such as postgres://user@host:5432/postgres");
    };
    let base = &path[..slash];
    Ok(match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    })
}
