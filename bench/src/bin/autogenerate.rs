//! Benchmark of `revision --autogenerate` on a long history: the time to generate and prove a revision for a
//! project of N migrations (default 300, built here: tables with keys, foreign keys, indexes, enums, views,
//! functions and triggers, added and altered over time), from a dev schema with a few hand changes; and the round
//! trip of the whole schema generated from nothing as one migration; and a new tenant by replay against one built
//! from a template kept at head (`upgrade --create --template`). `--folder` takes a real project's folder instead
//! (resolved at run time by the same resolver as the build).
//!
//! ```sh
//! cargo run --release -p bench --bin autogenerate                      # 300 generated migrations
//! cargo run --release -p bench --bin autogenerate -- --migrations 1000
//! cargo run --release -p bench --bin autogenerate -- --folder /path/to/project/migrations --extra-search-path public
//! ```
//!
//! Works in a database of its own (`autogenerate_bench_<pid>`), dropped at the end.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use migrate_core::Migration;
use migrate_ops::{autogenerate, read_structures, reference_structure, Desired, Qualifier, Source, Template};
use migrate_runtime::{MigrationSet, Migrator, SchemaName, Script, Target};

#[derive(Debug, Parser)]
struct Args {
    /// Migrations of the generated project.
    #[arg(long, default_value_t = 300)]
    migrations: usize,
    /// A real project's migrations folder instead of the generated one.
    #[arg(long)]
    folder: Option<std::path::PathBuf>,
    /// Shared schemas after each schema on the migrations' search path (`public` for projects that expect their
    /// extensions there).
    #[arg(long, value_delimiter = ',')]
    extra_search_path: Vec<String>,
    /// The history table (crates.io's migrations drop a `schema_migrations` of their own: give ours another name).
    #[arg(long, default_value = "schema_migrations")]
    history_table: String,
    /// New tenants made each way (by replay, from the template).
    #[arg(long, default_value_t = 11)]
    tenants: usize,
    /// Timed runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The server (any database on it; the benchmark creates its own).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database = format!("autogenerate_bench_{}", std::process::id());
    let url = format!("{}/{database}", args.database_url.rsplit_once('/').context("a URL with a database")?.0);
    let mut admin = postgres::Client::connect(&args.database_url, postgres::NoTls).context("connect")?;
    admin.batch_execute(&format!("CREATE DATABASE \"{database}\""))?;
    let result = run(&args, &url);
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))?;
    admin.batch_execute("VACUUM pg_catalog.pg_database")?;
    result
}

fn run(args: &Args, url: &str) -> anyhow::Result<()> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let migrations = match &args.folder {
        Some(folder) => {
            let (parent, name) = (folder.parent().context("folder")?, folder.file_name().context("folder")?);
            migrate_core::resolve_folder(parent, &name.to_string_lossy()).map_err(|errors| {
                anyhow::anyhow!("{}", errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))
            })?
        }
        None => project(args.migrations),
    };
    let count = migrations.len();
    let set = MigrationSet::from_migrations(migrations);
    let shared = SchemaName::parse_list(&args.extra_search_path.join(","))?;
    if !shared.is_empty() {
        client.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE EXTENSION IF NOT EXISTS citext").ok();
    }
    let migrator = Migrator::new(&set).extra_search_path(shared.clone()).history_table(args.history_table.as_str());
    let head = set.head().unwrap_or(0);
    println!("project: {count} migrations, head {head}");

    // What the reference build alone costs (the replay in a scratch schema, read back).
    let replay = median(args.runs, || {
        let started = Instant::now();
        let structure = reference_structure(&mut client, &migrator, head)?;
        anyhow::ensure!(!structure.is_empty(), "the project builds nothing");
        Ok(started.elapsed())
    })?;

    // dev at head, with hand changes of a few kinds.
    let dev = SchemaName::new("dev")?;
    migrator.migrate(&mut client, dev.as_str())?;
    client.batch_execute(&format!(
        "SET search_path TO {};
         CREATE TABLE bench_reviews (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL,
                                     stars smallint NOT NULL DEFAULT 5 CHECK (stars BETWEEN 1 AND 5));
         CREATE INDEX bench_reviews_stars ON bench_reviews (stars);
         CREATE VIEW bench_five_stars AS SELECT id, body FROM bench_reviews WHERE stars = 5;
         RESET search_path;",
        dev.quoted()
    ))?;
    let desired = Desired::Schema(dev.clone());
    let mut statements = 0;
    let generate = median(args.runs, || {
        let started = Instant::now();
        let generated = autogenerate(&mut client, &migrator, &desired, &[]).map_err(|e| anyhow::anyhow!("{e}"))?;
        statements = generated.up.len();
        Ok(started.elapsed())
    })?;

    // The whole schema from nothing as one migration, applied to a fresh schema and back.
    let whole = SchemaName::new("whole")?;
    migrator.migrate(&mut client, whole.as_str())?;
    client.batch_execute(&format!(
        "DROP TABLE {}.{}",
        whole.quoted(),
        migrate_runtime::quote_ident(&args.history_table)
    ))?;
    let empty = MigrationSet::from_migrations(Vec::new());
    let from_nothing =
        Migrator::new(&empty).extra_search_path(shared.clone()).history_table(args.history_table.as_str());
    let mut whole_statements = 0;
    let mut script = (String::new(), String::new());
    let generate_whole = median(args.runs, || {
        let started = Instant::now();
        let generated = autogenerate(&mut client, &from_nothing, &Desired::Schema(whole.clone()), &[])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        whole_statements = generated.up.len();
        script = (generated.up.script(Qualifier::SearchPath), generated.down.script(Qualifier::SearchPath));
        Ok(started.elapsed())
    })?;
    let one = MigrationSet::from_migrations(vec![Migration {
        version: 1,
        name: "everything".into(),
        up: Script::new("generated/1_everything.up.sql", script.0.clone()),
        down: Some(Script::new("generated/1_everything.down.sql", script.1.clone())),
    }]);
    let applied = SchemaName::new("applied")?;
    let history = args.history_table.as_str();
    Migrator::new(&one)
        .extra_search_path(shared.clone())
        .history_table(history)
        .migrate(&mut client, applied.as_str())?;
    let structures = read_structures(&mut client, &[whole.clone(), applied.clone()], history)?;
    if structures[&whole].fingerprint() != structures[&applied].fingerprint() {
        bail!("the generated migration does not build what the history builds");
    }
    Migrator::new(&one).extra_search_path(shared).history_table(history).downgrade(
        &mut client,
        applied.as_str(),
        Target::Base,
    )?;

    let new = new_tenants(&mut client, &migrator, args.tenants)?;

    println!("reference build (replay {count} migrations in a scratch schema, read it): {}", ms(replay));
    println!(
        "revision --autogenerate --from dev (a table, an index, a view by hand; {statements} statement(s), proven up \
         and down): {}  (goal: under 2 s)",
        ms(generate)
    );
    println!(
        "the whole schema from nothing as one migration ({whole_statements} statement(s), proven): {}; applied to a \
         fresh schema it equals the replayed history, and its down empties it",
        ms(generate_whole)
    );
    let ratio = |d: Duration| d.as_secs_f64() / new.replay.as_secs_f64();
    println!(
        "a new tenant (median of {}): by replay {}; from the template {} (ratio {:.2}); a spare claimed {} (ratio \
         {:.2}; goal at most 0.20); preparing the template once: {}",
        args.tenants,
        ms(new.replay),
        ms(new.template),
        ratio(new.template),
        ms(new.spare),
        ratio(new.spare),
        ms(new.prepare)
    );
    Ok(())
}

/// New tenants by replay (`Migrator::migrate` of a schema that does not exist) and from a template kept at head,
/// interleaved; each built from the template is checked equal to the template by `create` itself. Returns the
/// medians, and what preparing the template took the first time (the replay that proves it).
fn new_tenants(client: &mut postgres::Client, migrator: &Migrator<'_>, tenants: usize) -> anyhow::Result<NewTenants> {
    let template = SchemaName::new("template")?;
    migrator.migrate(client, template.as_str())?;
    let started = Instant::now();
    let prepared = Template::prepare(client, migrator, &template).map_err(|e| anyhow::anyhow!("{e}"))?;
    let prepare = started.elapsed();
    let (mut replayed, mut copied) = (Vec::new(), Vec::new());
    for i in 0..tenants.max(1) {
        let schema = SchemaName::new(&format!("replayed_{i}"))?;
        let started = Instant::now();
        migrator.migrate(client, schema.as_str())?;
        replayed.push(started.elapsed());
        let schema = SchemaName::new(&format!("copied_{i}"))?;
        let started = Instant::now();
        prepared.create(client, migrator, &schema).map_err(|e| anyhow::anyhow!("{e}"))?;
        copied.push(started.elapsed());
    }
    // Spares built ahead (not timed: that is done before sign-ups), then claimed: a proven rename each.
    prepared.stock_spares(client, migrator, tenants.max(1)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut claimed = Vec::new();
    for i in 0..tenants.max(1) {
        let schema = SchemaName::new(&format!("claimed_{i}"))?;
        let started = Instant::now();
        let created = prepared.claim(client, migrator, &schema).map_err(|e| anyhow::anyhow!("{e}"))?;
        claimed.push(started.elapsed());
        anyhow::ensure!(matches!(created.from, Source::Spare(_)), "{schema} was not made from a spare");
    }
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    Ok(NewTenants { replay: median(replayed), template: median(copied), spare: median(claimed), prepare })
}

/// Medians of a new tenant made each way, and what preparing the template took.
struct NewTenants {
    replay: Duration,
    template: Duration,
    spare: Duration,
    prepare: Duration,
}

/// The median of `runs` timed runs.
fn median(runs: usize, mut run: impl FnMut() -> anyhow::Result<Duration>) -> anyhow::Result<Duration> {
    let mut times = (0..runs.max(1)).map(|_| run()).collect::<anyhow::Result<Vec<_>>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

/// A project of `count` migrations as a team writes them over years: every tenth creates a table referencing the
/// one before, the others add columns, indexes, defaults, checks, enum values, views, functions and triggers.
fn project(count: usize) -> Vec<Migration> {
    let mut migrations = Vec::with_capacity(count);
    let mut tables = 0;
    for version in 1..=count {
        let t = tables.max(1);
        let (name, up) = match version % 10 {
            1 => {
                tables += 1;
                let t = tables;
                let reference = if t > 1 { format!(", parent_id bigint REFERENCES t{} (id)", t - 1) } else { String::new() };
                (
                    format!("create_t{t}"),
                    format!(
                        "CREATE TABLE t{t} (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT \
                         NULL DEFAULT now(){reference});\nCOMMENT ON TABLE t{t} IS 'table {t}';"
                    ),
                )
            }
            2 => (format!("t{t}_note"), format!("ALTER TABLE t{t} ADD COLUMN note text;")),
            3 => (format!("t{t}_name_idx"), format!("CREATE INDEX t{t}_name_idx ON t{t} (lower(name));")),
            4 => (format!("t{t}_status"), format!(
                "CREATE TYPE t{t}_status AS ENUM ('new', 'open');\nALTER TABLE t{t} ADD COLUMN status t{t}_status NOT NULL DEFAULT 'new';"
            )),
            5 => (format!("t{t}_status_closed"), format!("ALTER TYPE t{t}_status ADD VALUE 'closed';")),
            6 => (format!("t{t}_check"), format!("ALTER TABLE t{t} ADD CONSTRAINT t{t}_name_len CHECK (length(name) < 200);")),
            7 => (format!("t{t}_view"), format!("CREATE VIEW t{t}_open AS SELECT id, name FROM t{t} WHERE status = 'open';")),
            8 => (format!("t{t}_touch"), format!(
                "CREATE FUNCTION t{t}_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created_at := now(); RETURN NEW; END $$;\n\
                 CREATE TRIGGER t{t}_touch BEFORE UPDATE ON t{t} FOR EACH ROW EXECUTE FUNCTION t{t}_touch();"
            )),
            9 => (format!("t{t}_default"), format!("ALTER TABLE t{t} ALTER COLUMN note SET DEFAULT '';")),
            _ => (format!("t{t}_amount"), format!("ALTER TABLE t{t} ADD COLUMN amount numeric(12,2) NOT NULL DEFAULT 0;")),
        };
        let file = format!("generated/{version}_{name}.up.sql");
        migrations.push(Migration {
            version: version as i64,
            name: name.into(),
            up: Script::new(file, up),
            down: None,
        });
    }
    migrations
}
