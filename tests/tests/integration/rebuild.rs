//! Adding or removing a migration file must rebuild a service and re-expand `embed_migrations!`.
//!
//! The macro emits `include_bytes!` for every file it embeds, so cargo notices an *edited* or *deleted* file on its
//! own, but a stable proc macro cannot tell cargo to watch the folder, so an *added* file goes unnoticed unless the
//! service's `build.rs` calls `migrate_core::build::rerun_if_migrations_change`. These tests build a scratch crate
//! with real `cargo`, change its migrations folder between runs and read the embedded versions back from its output.
//!
//! No sleeps between steps: cargo compares a watched path's mtime with a timestamp file it writes just *before* it
//! runs the build script, and every change below happens after a whole `cargo run` has finished, so it is always
//! newer (the file system keeps sub-millisecond mtimes).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// The probes share one target dir, so the dependencies are compiled once; cargo serializes builds in it itself, but
/// `cargo run` starts the binary after releasing its lock, so whole runs are serialized here as well.
static TARGET_DIR_IN_USE: Mutex<()> = Mutex::new(());

#[test]
fn with_the_helper_adding_or_removing_a_migration_rebuilds() {
    let _target_dir = lock_target_dir();
    let probe = Probe::new("rebuild-probe", Helper::Called);

    probe.add_migration("1_a.up.sql");
    assert_eq!(probe.run(), "[1]");

    probe.add_migration("2_b.up.sql");
    assert_eq!(probe.run(), "[1, 2]", "adding a migration must rebuild and re-expand embed_migrations!");

    probe.remove_migration("1_a.up.sql");
    assert_eq!(probe.run(), "[2]", "removing a migration must rebuild and re-expand embed_migrations!");
}

/// The negative control: the same crate without a build script keeps the stale set when a file is added, so the
/// helper is what makes the test above pass (and that test can fail).
#[test]
fn without_the_helper_an_added_migration_goes_unnoticed() {
    let _target_dir = lock_target_dir();
    // Another package name, so that the two probes' binaries (`<target>/debug/<name>`) never overwrite each other.
    let probe = Probe::new("rebuild-probe-no-helper", Helper::Missing);

    probe.add_migration("1_a.up.sql");
    assert_eq!(probe.run(), "[1]");

    probe.add_migration("2_b.up.sql");
    assert_eq!(probe.run(), "[1]", "without the helper cargo has no reason to rebuild on an added file");

    // Any other reason to rebuild picks the new file up: it was valid, only the trigger was missing.
    probe.touch("src/main.rs");
    assert_eq!(probe.run(), "[1, 2]");
}

/// A diesel folder: a migration folder added, and a file added inside an existing migration folder (which changes
/// that sub-folder, not the migrations folder itself), both rebuild.
#[test]
fn with_the_helper_adding_a_diesel_folder_or_a_file_in_one_rebuilds() {
    let _target_dir = lock_target_dir();
    let probe = Probe::new("rebuild-probe-diesel", Helper::Called);
    probe.write(
        "src/main.rs",
        "static MIGRATIONS: migrate_runtime::MigrationSet = migrate_runtime::embed_migrations!(\"migrations\");\n\n\
         fn main() {\n    \
             println!(\"{:?}\", MIGRATIONS.iter().map(|m| (m.version, m.down.is_some())).collect::<Vec<_>>());\n\
         }\n",
    );

    probe.add_migration("2019-01-01-000000_a/up.sql");
    assert_eq!(probe.run(), "[(20190101000000, false)]");

    probe.add_migration("2019-01-01-000000_a/down.sql");
    assert_eq!(probe.run(), "[(20190101000000, true)]", "a file added in a migration's folder must rebuild");

    probe.add_migration("2019-01-02-000000_b/up.sql");
    assert_eq!(probe.run(), "[(20190101000000, true), (20190102000000, false)]", "a new migration folder must rebuild");
}

fn lock_target_dir() -> MutexGuard<'static, ()> {
    // A failed test poisons the mutex; the other test can still use the target dir.
    TARGET_DIR_IN_USE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone, Copy, PartialEq)]
enum Helper {
    Called,
    Missing,
}

/// A scratch crate embedding its `migrations/` folder, deleted on drop.
struct Probe {
    dir: PathBuf,
}

impl Probe {
    fn new(name: &str, helper: Helper) -> Probe {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("{name}-{}-{nanos}", std::process::id()));
        // Built right away, so the directory is removed even if writing the files below fails.
        let probe = Probe { dir };
        fs::create_dir_all(probe.dir.join("src")).unwrap();
        fs::create_dir_all(probe.dir.join("migrations")).unwrap();

        let dependency = |krate: &str| format!("{{ path = {:?} }}", workspace.join(krate).display().to_string());
        let mut manifest = format!(
            "[workspace]\n\n\
             [package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nmigrate-runtime = {}\n",
            dependency("migrate-runtime"),
        );
        if helper == Helper::Called {
            manifest.push_str(&format!("\n[build-dependencies]\nmigrate-core = {}\n", dependency("migrate-core")));
            probe.write(
                "build.rs",
                "fn main() {\n    migrate_core::build::rerun_if_migrations_change(\"migrations\");\n}\n",
            );
        }
        probe.write("Cargo.toml", &manifest);
        probe.write(
            "src/main.rs",
            "static MIGRATIONS: migrate_runtime::MigrationSet = migrate_runtime::embed_migrations!(\"migrations\");\n\n\
             fn main() {\n    \
                 println!(\"{:?}\", MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>());\n\
             }\n",
        );
        // The workspace's lock file pins the same versions as the compiled workspace, so cargo resolves offline.
        fs::copy(workspace.join("Cargo.lock"), probe.dir.join("Cargo.lock")).unwrap();
        probe
    }

    fn add_migration(&self, file: &str) {
        self.write(&format!("migrations/{file}"), "SELECT 1;\n");
    }

    fn remove_migration(&self, file: &str) {
        fs::remove_file(self.dir.join("migrations").join(file)).unwrap();
    }

    /// Rewrite a file with the same content, which makes it newer than the last build.
    fn touch(&self, file: &str) {
        let content = fs::read_to_string(self.dir.join(file)).unwrap();
        self.write(file, &content);
    }

    fn write(&self, file: &str, content: &str) {
        let path = self.dir.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// `cargo run` the probe and return what it printed: the embedded versions.
    fn run(&self) -> String {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let output = Command::new(cargo)
            .args(["run", "--quiet"])
            .current_dir(&self.dir)
            // A folder of the workspace's target dir, kept between test runs, so only the probe itself is rebuilt.
            .env("CARGO_TARGET_DIR", workspace.join("target").join("rebuild-probe"))
            // The compile-fail tests' override would point the macro away from the probe.
            .env_remove("EMBED_MIGRATIONS_CRATE_ROOT")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "cargo run failed in {}: {}\nstdout:\n{stdout}\nstderr:\n{}",
            self.dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr),
        );
        stdout.trim().to_owned()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Best effort: a leftover scratch dir in the temp dir is harmless.
        let _ = fs::remove_dir_all(&self.dir);
    }
}
