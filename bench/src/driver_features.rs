//! What each driver feature adds to a service's build and binary. Five tiny crates, each a `main` that migrates one
//! schema through one driver with the feature it needs on top of migrate-runtime's default features: base
//! (postgres), +tokio (tokio-postgres), +sqlx, +diesel, +diesel-async. They build a snapshot of the workspace
//! (taken once, so every variant compiles the same sources while the workspace is edited), all under the target
//! folder and removed afterwards, in release, `--offline` from the registry already on disk:
//!
//! - base from nothing, in a fresh target folder (its whole crate graph);
//! - every other variant in a copy of base's built target folder: what the feature adds to a clean build (its own
//!   crates, and those rebuilt with other features); with `--clean-builds`, from nothing as well;
//! - then, in each variant's folder, the two rebuilds a developer waits for: after a change to migrate-runtime
//!   (its fingerprint removed, so cargo rebuilds it and what depends on it exactly as after an edit of its
//!   `lib.rs`) and after touching the crate's own `main.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::process::median;

/// One variant: its name, the migrate-runtime features on top of the defaults, its other dependencies, and what
/// its `main` does with `url` and `schema`.
struct Variant {
    name: &'static str,
    features: &'static [&'static str],
    dependencies: &'static str,
    body: &'static str,
}

const TOKIO: &str = "tokio = { version = \"1\", features = [\"rt\"] }\n";
const RUNTIME: &str = "let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;\n    ";

const VARIANTS: [Variant; 5] = [
    Variant {
        name: "base",
        features: &[],
        dependencies: "postgres = \"0.19\"\n",
        body: "let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
    Migrator::new(&SET).migrate(&mut client, &schema)?;",
    },
    Variant {
        name: "tokio",
        features: &["tokio"],
        dependencies: "tokio-postgres = \"0.7\"\n",
        body: "runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Migrator::new(&SET).migrate_async(&client, &schema).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;",
    },
    Variant {
        name: "sqlx",
        features: &["sqlx"],
        dependencies:
            "sqlx = { version = \"0.9\", default-features = false, features = [\"postgres\", \"runtime-tokio\"] }\n",
        body: "runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&url).await?;
        Migrator::new(&SET).migrate_sqlx(&pool, &schema).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;",
    },
    Variant {
        name: "diesel",
        features: &["diesel"],
        dependencies: "diesel = { version = \"2.4\", default-features = false, features = [\"postgres\"] }\n",
        body: "use diesel::Connection;
    let mut connection = diesel::PgConnection::establish(&url)?;
    Migrator::new(&SET).migrate_diesel(&mut connection, &schema)?;",
    },
    Variant {
        name: "diesel-async",
        features: &["diesel-async"],
        dependencies: "diesel-async = { version = \"0.10\", features = [\"postgres\"] }\n",
        body: "use diesel_async::AsyncConnection;
    runtime.block_on(async {
        let mut connection = diesel_async::AsyncPgConnection::establish(&url).await?;
        Migrator::new(&SET).migrate_diesel_async(&mut connection, &schema).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;",
    },
];

impl Variant {
    fn is_async(&self) -> bool {
        self.body.contains("runtime.block_on")
    }

    fn label(&self) -> String {
        if self.features.is_empty() {
            "base (default features: postgres)".to_owned()
        } else {
            format!("+{}", self.features.join(" +"))
        }
    }

    fn crate_name(&self) -> String {
        format!("driver-feature-{}", self.name)
    }

    fn manifest(&self, workspace: &Path) -> String {
        let features = self.features.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>().join(", ");
        format!(
            "[package]\nname = \"{}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n\
             migrate-runtime = {{ path = {:?}, features = [{features}] }}\n{}{}\n[workspace]\n",
            self.crate_name(),
            workspace.join("migrate-runtime"),
            self.dependencies,
            if self.is_async() { TOKIO } else { "" },
        )
    }

    fn main(&self) -> String {
        format!(
            "//! Migrate one schema through one driver: {}.\nuse migrate_runtime::{{MigrationSet, Migrator}};\n\n\
             static SET: MigrationSet = migrate_runtime::embed_migrations!(\"migrations\");\n\n\
             fn main() -> Result<(), Box<dyn std::error::Error>> {{\n    let mut args = std::env::args().skip(1);\n    \
             let (Some(url), Some(schema)) = (args.next(), args.next()) else {{\n        \
             return Err(\"usage: URL SCHEMA\".into());\n    }};\n    {}{}\n    Ok(())\n}}\n",
            self.label(),
            if self.is_async() { RUNTIME } else { "" },
            self.body,
        )
    }
}

/// The figures of one variant.
pub struct Build {
    label: String,
    /// (crates compiled, wall time) of a build from nothing.
    clean: Option<(usize, Duration)>,
    /// (crates compiled, wall time) of the build in a copy of base's target folder: what the feature adds to a
    /// clean build.
    on_base: Option<(usize, Duration)>,
    after_runtime_change: Duration,
    after_main_touched: Duration,
    binary_bytes: u64,
}

/// Build base clean, then every other variant in a copy of base's built target folder (and clean too when
/// `clean_all`), then time `rebuild_runs` of each rebuild in each variant's folder.
pub fn measure(clean_all: bool, rebuild_runs: usize, builds: &mut Vec<Build>) -> anyhow::Result<()> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize()?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let root = target.join(format!("driver-features-{}", std::process::id()));
    let outcome = (|| -> anyhow::Result<()> {
        // Every variant builds the same sources, whatever is edited in the workspace meanwhile.
        let snapshot = root.join("workspace");
        snapshot_workspace(&workspace, &snapshot)?;
        let base_target = root.join("target-base");
        for variant in &VARIANTS {
            let dir = root.join(variant.name);
            write_crate(variant, &dir, &snapshot)?;
            let is_base = variant.features.is_empty();
            let target = if is_base { base_target.clone() } else { root.join(format!("target-{}", variant.name)) };
            let clean = if is_base || clean_all {
                eprintln!("building variant {} from nothing...", variant.name);
                let clean = cargo_build(&dir, &target)?;
                if !is_base {
                    std::fs::remove_dir_all(&target)?;
                }
                Some(clean)
            } else {
                None
            };
            let on_base = if is_base {
                None
            } else {
                eprintln!("building variant {} on a copy of base's target folder...", variant.name);
                copy_preserving_times(&base_target, &target)?;
                Some(cargo_build(&dir, &target)?)
            };
            let mut after_runtime_change = Vec::new();
            let mut after_main_touched = Vec::new();
            for _ in 0..rebuild_runs.max(1) {
                forget_migrate_runtime(&target)?;
                after_runtime_change.push(cargo_build(&dir, &target)?.1);
                touch(&dir.join("src/main.rs"))?;
                after_main_touched.push(cargo_build(&dir, &target)?.1);
            }
            let binary = target.join("release").join(variant.crate_name());
            let binary_bytes = std::fs::metadata(&binary).with_context(|| format!("{}", binary.display()))?.len();
            let build = Build {
                label: variant.label(),
                clean,
                on_base,
                after_runtime_change: median(after_runtime_change),
                after_main_touched: median(after_main_touched),
                binary_bytes,
            };
            eprintln!(
                "  {}: clean {:.1?}, on base {:.1?}, after a migrate-runtime change {:.1?}, after touching main \
                 {:.1?}, binary {} KiB",
                variant.name,
                build.clean,
                build.on_base,
                build.after_runtime_change,
                build.after_main_touched,
                binary_bytes / 1024
            );
            builds.push(build);
            if !is_base {
                // Each target folder is hundreds of MB: gone as soon as it is measured.
                std::fs::remove_dir_all(&target)?;
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&root);
    outcome
}

/// The workspace's files without its build output and history: `cp -a` of every top-level entry but `target`
/// and `.git`.
fn snapshot_workspace(workspace: &Path, snapshot: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(snapshot)?;
    for entry in std::fs::read_dir(workspace)? {
        let entry = entry?;
        if matches!(entry.file_name().to_str(), Some("target" | ".git")) {
            continue;
        }
        copy_preserving_times(&entry.path(), &snapshot.join(entry.file_name()))?;
    }
    Ok(())
}

/// `cp -a`: cargo decides what is fresh by modification times, so a copied target folder must keep them.
fn copy_preserving_times(from: &Path, to: &Path) -> anyhow::Result<()> {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status().context("run cp -a")?;
    anyhow::ensure!(status.success(), "cp -a {} {} failed", from.display(), to.display());
    Ok(())
}

fn write_crate(variant: &Variant, dir: &Path, workspace: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("Cargo.toml"), variant.manifest(workspace))?;
    std::fs::write(dir.join("src/main.rs"), variant.main())?;
    // The workspace's lock file: the same versions as the workspace builds, all of them already downloaded.
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).context("copy Cargo.lock")?;
    // `embed_migrations!` takes a path relative to the crate: a copy of the example service's set.
    let migrations = dir.join("migrations");
    std::fs::create_dir_all(&migrations)?;
    for entry in std::fs::read_dir(workspace.join("migrations"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), migrations.join(entry.file_name()))?;
    }
    Ok(())
}

/// `cargo build --release --offline` of the crate in `dir` into `target`: the crates compiled and the wall time.
fn cargo_build(dir: &Path, target: &Path) -> anyhow::Result<(usize, Duration)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--offline"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_TERM_COLOR", "never")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let output = command.output().with_context(|| format!("run cargo build in {}", dir.display()))?;
    let elapsed = started.elapsed();
    let log = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.success(), "cargo build in {} failed:\n{log}", dir.display());
    let compiled = log.lines().filter(|line| line.trim_start().starts_with("Compiling ")).count();
    Ok((compiled, elapsed))
}

/// Remove migrate-runtime's fingerprint from `target`: the next build rebuilds it and everything that depends on
/// it, as after an edit of its `lib.rs`, while the workspace's files stay untouched (another build may be using
/// them).
fn forget_migrate_runtime(target: &Path) -> anyhow::Result<()> {
    let fingerprints = target.join("release/.fingerprint");
    let mut removed = 0;
    for entry in std::fs::read_dir(&fingerprints).with_context(|| format!("read {}", fingerprints.display()))? {
        let path = entry?.path();
        if path.join("lib-migrate_runtime").exists() {
            std::fs::remove_dir_all(&path)?;
            removed += 1;
        }
    }
    anyhow::ensure!(removed > 0, "no fingerprint of migrate-runtime in {}", fingerprints.display());
    Ok(())
}

fn touch(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read(path)?;
    std::fs::write(path, text)?;
    Ok(())
}

pub fn print(builds: &[Build]) {
    let base = builds.first();
    let seconds = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    let added = |value: f64, base: Option<f64>, unit: &str| match base {
        Some(base) => format!("{:+.1}{unit}", value - base),
        None => "n/a".to_owned(),
    };
    let build = |measured: Option<(usize, Duration)>| {
        measured.map_or("not measured".to_owned(), |(n, t)| format!("{n} crates, {}", seconds(t)))
    };
    let kib = |bytes: u64| bytes as f64 / 1024.0;
    println!("\n## What each feature adds to a build (release, cargo's default jobs)\n");
    println!(
        "| variant | clean build | on a built base | rebuild after a migrate-runtime change | added | rebuild after \
         touching main.rs | added | binary | added |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (index, b) in builds.iter().enumerate() {
        let clean = match (b.clean, base.and_then(|base| base.clean)) {
            (Some((_, t)), Some((_, base_time))) if index > 0 => {
                format!("{} ({:+.1} s)", build(b.clean), t.as_secs_f64() - base_time.as_secs_f64())
            }
            _ => build(b.clean),
        };
        println!(
            "| {} | {clean} | {} | {} | {} | {} | {} | {:.0} KiB | {} |",
            b.label,
            if b.on_base.is_some() { build(b.on_base) } else { "—".to_owned() },
            seconds(b.after_runtime_change),
            added(b.after_runtime_change.as_secs_f64(), base.map(|x| x.after_runtime_change.as_secs_f64()), " s"),
            seconds(b.after_main_touched),
            added(b.after_main_touched.as_secs_f64(), base.map(|x| x.after_main_touched.as_secs_f64()), " s"),
            kib(b.binary_bytes),
            added(kib(b.binary_bytes), base.map(|x| kib(x.binary_bytes)), " KiB"),
        );
    }
}
