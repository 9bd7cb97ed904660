//! `bench drivers`: what migrating on each of the runtime's drivers costs at boot, against the tokio-postgres path.
//!
//! In a database of its own (`bench_<pid>_drivers`), 200 schemas of the example set are built once with the
//! postgres driver and the catalogs vacuumed; then `driver-probe` is timed as a process, exec to exit, for every
//! driver in rotating order: an up-to-date boot (one schema) and a no-op over the 200 schemas. The same work is
//! timed in this process too, without exec and (for the no-op) without connecting. Last, unless `--no-compile`,
//! what each feature adds to a build and to the binary (`driver_features.rs`). The database is dropped whatever
//! happens, and `pg_database`/`pg_shdepend` vacuumed.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::databases::Databases;
use crate::drive::{Connection, Driver};
use crate::driver_features::{self, Build};
use crate::process::{median, run_timed, temp_file};
use crate::{vacuum_catalogs, EXAMPLE_SET};

#[derive(Debug, clap::Args)]
pub struct DriversArgs {
    /// Up-to-date schemas of the no-op (each run migrates all of them, one after the other).
    #[arg(long, default_value_t = 200)]
    schemas: usize,
    /// Up-to-date boots timed per driver, as processes (median).
    #[arg(long, default_value_t = 15)]
    boots: usize,
    /// No-op runs over all the schemas timed per driver, as processes (median).
    #[arg(long, default_value_t = 7)]
    noop_runs: usize,
    /// Runs of each in-process figure per driver (median): cheap, and this machine's spread is wide.
    #[arg(long, default_value_t = 31)]
    in_process_runs: usize,
    /// Skip what each feature adds to a build and to the binary (five release builds of a temporary crate).
    #[arg(long)]
    no_compile: bool,
    /// Also build every driver variant from nothing, each in a fresh target folder (base always is): minutes each.
    #[arg(long)]
    clean_builds: bool,
    /// Rebuilds timed per variant and kind (median); one by default to keep the run near ten minutes here.
    #[arg(long, default_value_t = 1)]
    rebuild_runs: usize,
    #[arg(long, env = "DATABASE_URL", default_value = crate::DEFAULT_DATABASE_URL)]
    database_url: String,
}

/// The drivers timed as processes, the reference first: a service picks one of these.
const PROCESS_DRIVERS: [Driver; 5] =
    [Driver::TokioPostgres, Driver::Postgres, Driver::Sqlx, Driver::Diesel, Driver::DieselAsync];
/// In process, also sqlx through the pool for every schema (`migrate_sqlx`), to show what the pool's acquire costs.
const IN_PROCESS_DRIVERS: [Driver; 6] =
    [Driver::TokioPostgres, Driver::Postgres, Driver::Sqlx, Driver::SqlxPool, Driver::Diesel, Driver::DieselAsync];
const REFERENCE: Driver = Driver::TokioPostgres;
/// The target: every driver within this factor of the tokio-postgres path.
const TARGET_RATIO: f64 = 1.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    ProcessBoot,
    ProcessNoOp,
    InProcessBoot,
    InProcessNoOp,
}

#[derive(Default)]
struct Figures {
    timings: Vec<(Scenario, Driver, Vec<Duration>)>,
    builds: Vec<Build>,
}

impl Figures {
    fn add(&mut self, scenario: Scenario, driver: Driver, times: Vec<Duration>) {
        eprintln!("{scenario:?} {}: median {:.2?}", driver.name(), median(times.clone()));
        self.timings.push((scenario, driver, times));
    }

    fn times(&self, scenario: Scenario, driver: Driver) -> Option<&[Duration]> {
        self.timings.iter().find(|(s, d, _)| *s == scenario && *d == driver).map(|t| t.2.as_slice())
    }

    fn median(&self, scenario: Scenario, driver: Driver) -> Option<Duration> {
        self.times(scenario, driver).map(|times| median(times.to_vec()))
    }

    fn ratio(&self, scenario: Scenario, driver: Driver) -> Option<f64> {
        Some(self.median(scenario, driver)?.as_secs_f64() / self.median(scenario, REFERENCE)?.as_secs_f64())
    }
}

pub fn run(args: DriversArgs) -> anyhow::Result<()> {
    let probe = build_probe()?;
    let mut databases = Databases::new(&args.database_url)?;
    let mut figures = Figures::default();
    let outcome = time_drivers(&args, &probe, &mut databases, &mut figures);
    let dropped = databases.drop_all();
    outcome?;
    dropped?;
    // After the database work, so that no timed run shares the machine with a compiler.
    let built = if args.no_compile {
        Ok(())
    } else {
        driver_features::measure(args.clean_builds, args.rebuild_runs, &mut figures.builds)
    };
    println!("load average {} at the end", load_average());
    print(&args, &figures);
    built
}

/// Build `driver-probe` in release (`cargo run -p bench` builds only `bench`) and return its path, beside this
/// binary.
fn build_probe() -> anyhow::Result<PathBuf> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "bench", "--bin", "driver-probe"])
        .current_dir(&workspace)
        .status()
        .context("run cargo build --bin driver-probe")?;
    anyhow::ensure!(status.success(), "cargo build --release -p bench --bin driver-probe failed");
    let path = std::env::current_exe()?.with_file_name("driver-probe");
    anyhow::ensure!(path.exists(), "{} not found: run the benchmark with --release", path.display());
    Ok(path)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
}

fn time_drivers(
    args: &DriversArgs,
    probe: &PathBuf,
    databases: &mut Databases,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let url = databases.create("drivers")?;
    let mut client = postgres::Client::connect(&url, postgres::NoTls).context("connect to the drivers database")?;
    println!("server: {}", client.query_one("SELECT version()", &[])?.get::<_, String>(0));
    println!(
        "machine: {} cores, load average {} at the start",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    let schemas: Vec<String> = (0..args.schemas.max(1)).map(|i| format!("tenant_{i:04}")).collect();
    eprintln!("building {} schemas with the postgres driver (untimed)...", schemas.len());
    Connection::open(Driver::Postgres, &url)?.migrate_all(&EXAMPLE_SET, &schemas)?;
    // Statistics that cover the new schemas, and no dead rows, for every driver's look-ups (autovacuum is off).
    vacuum_catalogs(&mut client)?;
    drop(client);

    let boot_file = temp_file("drivers-boot.txt", &schemas[0])?;
    let noop_file = temp_file("drivers-noop.txt", &schemas.join("\n"))?;
    let outcome = (|| -> anyhow::Result<()> {
        let probe_run = |driver: Driver, file: &PathBuf| {
            let mut command = Command::new(probe);
            command.args(["--driver", driver.name(), "--database-url", &url, "--schemas-file"]).arg(file);
            run_timed(&mut command)
        };
        // One untimed run of each first: the binary in the page cache, the catalogs in the server's buffers.
        for driver in PROCESS_DRIVERS {
            probe_run(driver, &noop_file)?;
        }
        for (scenario, file, runs) in
            [(Scenario::ProcessBoot, &boot_file, args.boots), (Scenario::ProcessNoOp, &noop_file, args.noop_runs)]
        {
            let times = rotating(&PROCESS_DRIVERS, runs, |driver| probe_run(driver, file))?;
            for (driver, times) in PROCESS_DRIVERS.into_iter().zip(times) {
                figures.add(scenario, driver, times);
            }
        }
        in_process(args, &url, &schemas, figures)
    })();
    let _ = std::fs::remove_file(&boot_file);
    let _ = std::fs::remove_file(&noop_file);
    outcome
}

/// `runs` rounds of `time(driver)` for every driver, the order rotating from round to round so that no driver
/// always follows the same one; the times per driver, in `drivers`' order.
fn rotating(
    drivers: &[Driver],
    runs: usize,
    mut time: impl FnMut(Driver) -> anyhow::Result<Duration>,
) -> anyhow::Result<Vec<Vec<Duration>>> {
    let mut times = vec![Vec::new(); drivers.len()];
    for round in 0..runs.max(1) {
        for k in 0..drivers.len() {
            let index = (k + round) % drivers.len();
            times[index].push(time(drivers[index])?);
        }
    }
    Ok(times)
}

/// The same work in this process, timed with `Instant`: connect and migrate one up-to-date schema (no exec), and
/// the no-op over every schema on a connection opened beforehand (no exec, no connect).
fn in_process(args: &DriversArgs, url: &str, schemas: &[String], figures: &mut Figures) -> anyhow::Result<()> {
    let boot = std::slice::from_ref(&schemas[0]);
    let times = rotating(&IN_PROCESS_DRIVERS, args.in_process_runs, |driver| {
        let started = Instant::now();
        Connection::open(driver, url)?.migrate_all(&EXAMPLE_SET, boot)?;
        Ok(started.elapsed())
    })?;
    for (driver, times) in IN_PROCESS_DRIVERS.into_iter().zip(times) {
        figures.add(Scenario::InProcessBoot, driver, times);
    }
    let mut connections = IN_PROCESS_DRIVERS
        .iter()
        .map(|&driver| {
            let mut connection = Connection::open(driver, url)?;
            // Untimed first pass: whatever a driver caches per connection is warm, as on a long-lived one.
            connection.migrate_all(&EXAMPLE_SET, schemas)?;
            Ok(connection)
        })
        .collect::<anyhow::Result<Vec<Connection>>>()?;
    let times = rotating(&IN_PROCESS_DRIVERS, args.in_process_runs, |driver| {
        let index = IN_PROCESS_DRIVERS.iter().position(|&d| d == driver).unwrap_or_default();
        let started = Instant::now();
        connections[index].migrate_all(&EXAMPLE_SET, schemas)?;
        Ok(started.elapsed())
    })?;
    for (driver, times) in IN_PROCESS_DRIVERS.into_iter().zip(times) {
        figures.add(Scenario::InProcessNoOp, driver, times);
    }
    Ok(())
}

fn ms(time: Option<Duration>) -> String {
    time.map_or("n/a".to_owned(), |t| format!("{:.2} ms", t.as_secs_f64() * 1000.0))
}

fn times_x(ratio: Option<f64>) -> String {
    ratio.map_or("n/a".to_owned(), |r| format!("{r:.2}x"))
}

/// `median (min–max)`.
fn spread(times: Option<&[Duration]>) -> String {
    let Some(times) = times else { return "n/a".to_owned() };
    let (min, max) = (times.iter().min().copied(), times.iter().max().copied());
    format!("{} ({}–{})", ms(Some(median(times.to_vec()))), ms(min).trim_end_matches(" ms"), ms(max))
}

fn print(args: &DriversArgs, figures: &Figures) {
    let n = args.schemas.max(1);
    println!("\n## Drivers as processes, exec to exit (median (min–max))\n");
    println!(
        "`driver-probe --driver D`: boot = 1 up-to-date schema ({} runs each), no-op = {n} up-to-date schemas \
         ({} runs each); interleaved, rotating order.\n",
        args.boots.max(1),
        args.noop_runs.max(1)
    );
    println!("| driver | up-to-date boot | ÷ tokio-postgres | no-op, {n} schemas | ÷ tokio-postgres |");
    println!("| --- | --- | --- | --- | --- |");
    for driver in PROCESS_DRIVERS {
        println!(
            "| {} | {} | {} | {} | {} |",
            driver.name(),
            spread(figures.times(Scenario::ProcessBoot, driver)),
            times_x(figures.ratio(Scenario::ProcessBoot, driver)),
            spread(figures.times(Scenario::ProcessNoOp, driver)),
            times_x(figures.ratio(Scenario::ProcessNoOp, driver)),
        );
    }
    println!("\n## Drivers in process (median (min–max) of {} runs each)\n", args.in_process_runs.max(1));
    println!(
        "| driver | connect + 1 up-to-date schema | ÷ tokio-postgres | no-op, {n} schemas, open connection | \
         ÷ tokio-postgres | per schema |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for driver in IN_PROCESS_DRIVERS {
        let per_schema = figures.median(Scenario::InProcessNoOp, driver).map(|t| t / n as u32);
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            driver.name(),
            spread(figures.times(Scenario::InProcessBoot, driver)),
            times_x(figures.ratio(Scenario::InProcessBoot, driver)),
            spread(figures.times(Scenario::InProcessNoOp, driver)),
            times_x(figures.ratio(Scenario::InProcessNoOp, driver)),
            per_schema.map_or("n/a".to_owned(), |t| format!("{:.1} µs", t.as_secs_f64() * 1e6)),
        );
    }
    if !figures.builds.is_empty() {
        driver_features::print(&figures.builds);
    }
    println!("\n## Targets\n");
    println!("| target | measured | result |");
    println!("| --- | --- | --- |");
    let scenarios = [
        (Scenario::ProcessBoot, "up-to-date boot, as a process".to_owned()),
        (Scenario::ProcessNoOp, format!("no-op over {n} schemas, as a process")),
        (Scenario::InProcessNoOp, format!("no-op over {n} schemas, in process")),
    ];
    for driver in [Driver::Postgres, Driver::Sqlx, Driver::Diesel, Driver::DieselAsync] {
        for (scenario, what) in &scenarios {
            let (measured, verdict) = match figures.ratio(*scenario, driver) {
                Some(r) => (format!("{r:.2}x"), if r <= TARGET_RATIO { "PASS" } else { "FAIL" }),
                None => ("n/a".to_owned(), "not measured"),
            };
            println!(
                "| {}, {what}: within {TARGET_RATIO}x of tokio-postgres | {measured} | {verdict} |",
                driver.name()
            );
        }
    }
}
