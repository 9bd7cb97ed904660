//! What embedding 1,000 migrations adds to a rebuild and to the binary: a temporary crate (in the system's temp
//! folder, removed afterwards) with two binaries that differ only in the folder they embed, 1,000 generated
//! migrations (up and down files) or one (and a third: the 1,000 with the lint skipped, for the lint's cost), built
//! in release into the workspace's target folder (so the
//! dependencies are built once); then, several times, touch one binary's file and time `cargo build --release`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::Results;

const MAIN: &str = r#"use migrate_cli::{Cli, MigrateCommand};
use migrate_runtime::{MigrationSet, Migrator};

static MIGRATIONS: MigrationSet = migrate_runtime::embed_migrations!("FOLDER");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match MigrateCommand::try_parse_from_args(&args) {
        Ok(command) => std::process::exit(Cli::new(Migrator::new(&MIGRATIONS)).run(&command).code()),
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    }
}
"#;

pub fn measure(runs: usize, results: &mut Results) -> anyhow::Result<()> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize()?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let dir = std::env::temp_dir().join(format!("bench-embed-{}", std::process::id()));
    let outcome = (|| -> anyhow::Result<()> {
        write_crate(&dir, &workspace)?;
        let build = |bin: &str| -> anyhow::Result<Duration> {
            let started = Instant::now();
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
                .args(["build", "--release", "--quiet", "--bin", bin])
                .current_dir(&dir)
                .env("CARGO_TARGET_DIR", &target)
                .status()?;
            anyhow::ensure!(status.success(), "cargo build --bin {bin} failed");
            Ok(started.elapsed())
        };
        eprintln!("building the embedding crate (dependencies once, not timed)...");
        build("embed-with")?;
        build("embed-without")?;
        build("embed-unlinted")?;
        let (mut with, mut without, mut unlinted) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs.max(1) {
            touch(&dir.join("src/bin/embed-with.rs"))?;
            with.push(build("embed-with")?);
            touch(&dir.join("src/bin/embed-without.rs"))?;
            without.push(build("embed-without")?);
            touch(&dir.join("src/bin/embed-unlinted.rs"))?;
            unlinted.push(build("embed-unlinted")?);
        }
        let median = |mut times: Vec<Duration>| {
            times.sort();
            times[times.len() / 2].as_secs_f64()
        };
        let (with, without, unlinted) = (median(with), median(without), median(unlinted));
        results.embed("rebuild after touching main, 1,000 migrations embedded, none linted (median)", unlinted, "s");
        results.embed("compile-time lint of 1,000 up files (rebuild, linted minus not)", with - unlinted, "s");
        results.embed("rebuild after touching main, 1,000 migrations embedded (median)", with, "s");
        results.embed("rebuild after touching main, 1 migration embedded (median)", without, "s");
        results.embed("rebuild added by the 1,000-migration embed", with - without, "s");
        let size = |bin: &str| std::fs::metadata(target.join("release").join(bin)).map(|m| m.len() as f64 / 1024.0);
        let (a, b) = (size("embed-with")?, size("embed-without")?);
        results.embed("binary, 1,000 migrations embedded", a, "KiB");
        results.embed("binary, 1 migration embedded", b, "KiB");
        results.embed("binary size added by the 1,000-migration embed", a - b, "KiB");
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    for bin in ["embed-with", "embed-without", "embed-unlinted"] {
        let _ = std::fs::remove_file(target.join("release").join(bin));
        let _ = std::fs::remove_file(target.join("release").join(format!("{bin}.d")));
    }
    outcome
}

fn touch(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read(path)?;
    std::fs::write(path, text)?;
    Ok(())
}

fn write_crate(dir: &Path, workspace: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("src/bin"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"bench-embed\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nmigrate-runtime = {{ path = {:?} }}\nmigrate-cli = {{ path = {:?} }}\n\n[workspace]\n",
            workspace.join("migrate-runtime"),
            workspace.join("migrate-cli")
        ),
    )?;
    // The workspace's lock file, so the same dependency versions (and their build artifacts) are used.
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).context("copy Cargo.lock")?;
    std::fs::write(dir.join("src/bin/embed-with.rs"), MAIN.replace("FOLDER", "migrations-1000"))?;
    std::fs::write(dir.join("src/bin/embed-without.rs"), MAIN.replace("FOLDER", "migrations-1"))?;
    // The same 1,000 files with the lint skipped for all of them (`lint_since` past the newest): the difference is
    // what linting them costs at compile time.
    let unlinted = MAIN.replace("\"FOLDER\"", "\"migrations-1000\", lint_since = 1001");
    std::fs::write(dir.join("src/bin/embed-unlinted.rs"), unlinted)?;
    for (folder, count) in [("migrations-1000", 1000), ("migrations-1", 1)] {
        let folder = dir.join(folder);
        std::fs::create_dir_all(&folder)?;
        for v in 1..=count {
            std::fs::write(
                folder.join(format!("{v}_create_table_{v}.up.sql")),
                format!(
                    "-- Migration {v}: a table, an index and a comment, the size of a typical migration.\n\
                     CREATE TABLE table_{v} (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    \
                     name text NOT NULL,\n    created_at timestamptz NOT NULL DEFAULT now()\n);\n\
                     CREATE INDEX table_{v}_name_idx ON table_{v} (name);\n\
                     COMMENT ON TABLE table_{v} IS 'generated by the benchmark';\n"
                ),
            )?;
            std::fs::write(folder.join(format!("{v}_create_table_{v}.down.sql")), format!("DROP TABLE table_{v};\n"))?;
        }
    }
    Ok(())
}
