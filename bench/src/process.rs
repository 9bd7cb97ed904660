//! The fan-outs and boots as processes, exec to exit (or to the first healthy `/health`), interleaved.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::databases::Databases;
use crate::{vacuum_catalogs, Args, Results, Set};

/// The server's certificate on Debian (`ssl = on`), issued to `localhost`.
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// The binaries and the server.
pub struct Tools {
    pub app_example: PathBuf,
    pub database_url: String,
}

/// Build `app-example` in release (what operators run for the example set) and return its path, beside this
/// binary.
pub fn build_app_example() -> anyhow::Result<PathBuf> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "app-example"])
        .current_dir(&workspace)
        .status()
        .context("run cargo build -p app-example")?;
    anyhow::ensure!(status.success(), "cargo build --release -p app-example failed");
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("app-example");
    anyhow::ensure!(path.exists(), "{} not found: run the benchmark with --release", path.display());
    Ok(path)
}

/// Run a command to exit, output discarded (stderr kept for the error), and time it.
pub fn run_timed(command: &mut Command) -> anyhow::Result<Duration> {
    command.stdout(Stdio::null()).stderr(Stdio::piped()).stdin(Stdio::null());
    let started = Instant::now();
    let output = command.output().with_context(|| format!("spawn {command:?}"))?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        output.status.success(),
        "{command:?} exited with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(elapsed)
}

pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The SQL of the raw floor: per schema one transaction (`CREATE SCHEMA`, `SET LOCAL search_path`, the files),
/// split only around a migration that must run outside a transaction; no bookkeeping at all.
pub fn raw_sql(set: Set, schemas: &[String]) -> String {
    let mut sql = String::new();
    for schema in schemas {
        let local = format!("SET LOCAL search_path TO \"{schema}\";\n");
        sql.push_str(&format!("BEGIN;\nCREATE SCHEMA \"{schema}\";\n{local}"));
        for m in set.migrations().iter() {
            if m.up.no_transaction {
                sql.push_str(&format!("COMMIT;\nSET search_path TO \"{schema}\";\n{}\n;\nBEGIN;\n{local}", m.up.sql));
            } else {
                sql.push_str(&format!("{}\n;\n", m.up.sql));
            }
        }
        sql.push_str("COMMIT;\n");
    }
    sql
}

pub fn temp_file(name: &str, contents: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("bench-{}-{name}", std::process::id()));
    std::fs::write(&path, contents)?;
    Ok(path)
}

impl Tools {
    /// Our CLI as an operator runs it: `app-example migrate upgrade` (example set) or `bench migrate upgrade`.
    fn ours(&self, set: Set, schemas_file: &Path, url: &str) -> anyhow::Result<Command> {
        let mut command = match set {
            Set::Example => Command::new(&self.app_example),
            Set::Bench => Command::new(std::env::current_exe()?),
        };
        // `--create`: the fresh fan-outs make their schemas, as refinery's loop does with its own `--create`.
        command
            .args(["migrate", "upgrade", "--create", "--schemas-file"])
            .arg(schemas_file)
            .args(["--database-url", url]);
        Ok(command)
    }

    fn refinery(&self, set: Set, schemas_file: &Path, url: &str, create: bool) -> anyhow::Result<Command> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["refinery-upgrade", set.label()]).arg(schemas_file).env("DATABASE_URL", url);
        if create {
            command.arg("--create");
        }
        Ok(command)
    }

    fn psql(&self, sql_file: &Path, url: &str) -> Command {
        let mut command = Command::new("psql");
        command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"]).arg(sql_file);
        command
    }
}

/// What the last fresh round left up to date, for the no-op runs: ours' and refinery's schemas, each in the
/// database that tool's run built them in.
pub struct Built {
    ours_url: String,
    ours_file: PathBuf,
    refinery_url: String,
    refinery_file: PathBuf,
}

/// Fresh fan-outs: rounds on new schemas, tools interleaved in rotating order, every run in a pristine database
/// ([`Databases`]).
pub fn fresh_rounds(
    tools: &Tools,
    databases: &mut Databases,
    set: Set,
    prefix: &str,
    args: &Args,
    results: &mut Results,
) -> anyhow::Result<Built> {
    let n = args.schemas;
    let tag = set.label();
    let mut fresh: [Vec<Duration>; 3] = Default::default();
    let names = |tool: &str| -> Vec<String> { (0..n).map(|i| format!("{prefix}{tag}_{tool}_{i}")).collect() };
    let ours_file = temp_file(&format!("{tag}-ours.txt"), &names("ours").join("\n"))?;
    let refinery_file = temp_file(&format!("{tag}-refinery.txt"), &names("refinery").join("\n"))?;
    let raw_file = temp_file(&format!("{tag}-raw.sql"), &raw_sql(set, &names("raw")))?;
    let (mut ours_url, mut refinery_url) = (String::new(), String::new());
    for round in 0..args.rounds.max(1) {
        for k in 0..3 {
            let tool = (k + round) % 3;
            let url = databases.take_pristine()?;
            let time = match tool {
                0 => run_timed(&mut tools.ours(set, &ours_file, &url)?)?,
                1 => run_timed(&mut tools.refinery(set, &refinery_file, &url, true)?)?,
                _ => run_timed(&mut tools.psql(&raw_file, &url))?,
            };
            eprintln!("  fresh {tag} round {round} {}: {time:.3?}", ["ours", "refinery", "raw"][tool]);
            fresh[tool].push(time);
            match tool {
                0 => ours_url = url,
                1 => refinery_url = url,
                _ => {}
            }
        }
    }
    std::fs::remove_file(&raw_file)?;
    let scenario = format!("fresh {n}, {tag} set");
    for (tool, times) in ["ours", "refinery", "raw"].into_iter().zip(fresh) {
        results.add(&scenario, tool, median(times));
    }
    Ok(Built { ours_url, ours_file, refinery_url, refinery_file })
}

/// No-op fan-outs over what the last fresh round built (interleaved): ours, refinery's loop, and ours over TLS.
pub fn no_ops(tools: &Tools, set: Set, built: Built, args: &Args, results: &mut Results) -> anyhow::Result<()> {
    let Built { ours_url, ours_file, refinery_url, refinery_file } = built;
    // Catalog statistics that cover the schemas just built, for both tools' catalog look-ups (autovacuum is off).
    for url in [&ours_url, &refinery_url] {
        vacuum_catalogs(&mut postgres::Client::connect(url, postgres::NoTls)?)?;
    }
    let n = args.schemas;
    let tag = set.label();
    // The comparison runs every tool on plain TCP (refinery's loop connects with `NoTls`); these rows show what
    // TLS adds to ours: `prefer` (encrypted, no trust roots read) and `verify-full` (native-tls reads the
    // system's trust store and the given root).
    let tls = with_sslmode(&ours_url, "prefer");
    let verified = (Path::new(SNAKEOIL).exists() && ours_url.contains("@127.0.0.1:")).then(|| {
        format!(
            "{}&sslrootcert={SNAKEOIL}",
            with_sslmode(&ours_url, "verify-full").replace("@127.0.0.1:", "@localhost:")
        )
    });
    let (mut ours, mut theirs, mut plain, mut verifying) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.noop_runs.max(1) {
        ours.push(run_timed(&mut tools.ours(set, &ours_file, &ours_url)?)?);
        theirs.push(run_timed(&mut tools.refinery(set, &refinery_file, &refinery_url, false)?)?);
        plain.push(run_timed(&mut tools.ours(set, &ours_file, &tls)?)?);
        if let Some(url) = &verified {
            verifying.push(run_timed(&mut tools.ours(set, &ours_file, url)?)?);
        }
    }
    let scenario = format!("no-op {n}, {tag} set");
    results.add(&scenario, "ours", median(ours));
    results.add(&scenario, "refinery", median(theirs));
    results.add(&format!("no-op {n}, {tag} set, ours with sslmode=prefer (TLS)"), "ours", median(plain));
    if !verifying.is_empty() {
        results.add(
            &format!("no-op {n}, {tag} set, ours with sslmode=verify-full (trust roots read)"),
            "ours",
            median(verifying),
        );
    }
    std::fs::remove_file(ours_file)?;
    std::fs::remove_file(refinery_file)?;
    Ok(())
}

/// What the fresh runs would measure if each followed the deletion of a run's files, as they did when the
/// benchmark dropped the previous run's schemas before each run: ours and the raw floor, each right after as
/// many schemas of the set as it builds were built (untimed), dropped, and their files unlinked by a `CHECKPOINT`.
pub fn after_deletions(
    tools: &Tools,
    databases: &mut Databases,
    set: Set,
    prefix: &str,
    args: &Args,
    results: &mut Results,
) -> anyhow::Result<()> {
    let url = databases.create("deletions")?;
    let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
    let n = args.schemas;
    let tag = set.label();
    let names = |kind: &str| -> Vec<String> { (0..n).map(|i| format!("{prefix}{kind}_{i}")).collect() };
    for tool in ["ours", "raw"] {
        let doomed = temp_file("doomed.sql", &raw_sql(set, &names(&format!("doomed_{tool}"))))?;
        run_timed(&mut tools.psql(&doomed, &url))?;
        std::fs::remove_file(doomed)?;
        crate::drop_schemas(&mut client, &format!("{prefix}doomed_{tool}_"))?;
        databases.checkpoint()?;
        let (file, mut command) = if tool == "ours" {
            let file = temp_file("after-deletions.txt", &names("after_ours").join("\n"))?;
            let command = tools.ours(set, &file, &url)?;
            (file, command)
        } else {
            let file = temp_file("after-deletions.sql", &raw_sql(set, &names("after_raw")))?;
            let command = tools.psql(&file, &url);
            (file, command)
        };
        let time = run_timed(&mut command)?;
        std::fs::remove_file(file)?;
        results.breakdown(
            format!("as processes, fresh {n}, {tag} set, right after {n} schemas were dropped: {tool}"),
            time,
        );
    }
    Ok(())
}

/// `url` with its `sslmode` set to `mode`.
pub fn with_sslmode(url: &str, mode: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty() && !p.starts_with("sslmode=")).collect();
    let mode = format!("sslmode={mode}");
    pairs.push(&mode);
    format!("{base}?{}", pairs.join("&"))
}

/// Exec to the first `200` from `/health`, then stop the service.
fn boot_once(mut command: Command) -> anyhow::Result<Duration> {
    command.env("PORT", "0").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().with_context(|| format!("spawn {command:?}"))?;
    let result = (|| -> anyhow::Result<Duration> {
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let port: u16 = loop {
            let line = lines.next().context("the service exited before listening")??;
            if let Some(rest) = line.strip_prefix("listening on http://127.0.0.1:") {
                break rest.trim().parse()?;
            }
        };
        loop {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
            stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
                return Ok(started.elapsed());
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "never healthy: {response}");
        }
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Service boot on an up-to-date schema: `app-example` against a service on refinery, interleaved.
pub fn boots(
    tools: &Tools,
    client: &mut postgres::Client,
    prefix: &str,
    args: &Args,
    results: &mut Results,
) -> anyhow::Result<()> {
    let ours_schema = format!("{prefix}boot_ours");
    let their_schema = format!("{prefix}boot_refinery");
    let ours = || {
        let mut c = Command::new(&tools.app_example);
        c.env("DATABASE_URL", &tools.database_url).env("DEFAULT_SCHEMA_NAME", &ours_schema);
        c
    };
    let theirs = || -> anyhow::Result<Command> {
        let mut c = Command::new(std::env::current_exe()?);
        c.arg("refinery-serve").env("DATABASE_URL", &tools.database_url).env("DEFAULT_SCHEMA_NAME", &their_schema);
        Ok(c)
    };
    // The first boot of each migrates its schema; it is not counted.
    boot_once(ours())?;
    boot_once(theirs()?)?;
    vacuum_catalogs(client)?;
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    let tls = with_sslmode(&tools.database_url, "prefer");
    for _ in 0..args.boots.max(1) {
        a.push(boot_once(ours())?);
        b.push(boot_once(theirs()?)?);
        let mut with_tls = ours();
        with_tls.env("DATABASE_URL", &tls);
        c.push(boot_once(with_tls)?);
    }
    results.add("boot to healthy", "ours", median(a));
    results.add("boot to healthy", "refinery", median(b));
    results.add("boot to healthy, ours with sslmode=prefer (TLS)", "ours", median(c));
    Ok(())
}
