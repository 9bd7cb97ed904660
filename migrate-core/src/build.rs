//! The build-script helper.
//!
//! A stable proc macro cannot ask cargo to watch a folder, so a migration file *added* to the folder would not
//! rebuild the service on its own (edits are covered by the `include_bytes!` the macro emits for every file it
//! read, diesel's `metadata.toml` included). One line in the
//! service's `build.rs` closes that gap:
//!
//! ```no_run
//! // build.rs
//! fn main() {
//!     migrate_core::build::rerun_if_migrations_change("migrations");
//! }
//! ```
// The example is a whole build script, `fn main` included.
#![allow(clippy::needless_doctest_main)]

use std::path::Path;

/// Tell cargo to re-run the build script, and so rebuild the crate and re-expand `embed_migrations!`, whenever a
/// file in `folder` (relative to the crate's `Cargo.toml`) or in one of its sub-folders (diesel's one folder per
/// migration) is added, removed or changed.
///
/// Cargo compares the newest modification time found under a path named in `rerun-if-changed`, walking a folder's
/// entries; adding or removing an entry changes the modification time of the folder holding it. The folder is
/// named, and each of its sub-folders as well, so that a file added to a diesel migration's folder is noticed
/// even by a cargo that only looks at the named folder's own time; a new sub-folder changes the folder itself,
/// and the re-run build script then names it too.
///
/// ```no_run
/// migrate_core::build::rerun_if_migrations_change("migrations");
/// ```
pub fn rerun_if_migrations_change(folder: impl AsRef<Path>) {
    for directive in rerun_directives(folder.as_ref()) {
        println!("{directive}");
    }
}

fn rerun_directives(folder: &Path) -> Vec<String> {
    let mut paths = vec![folder.to_path_buf()];
    // A folder that cannot be listed is still named: the macro reports what is wrong with it.
    if let Ok(entries) = std::fs::read_dir(folder) {
        let mut folders: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().is_dir() && !entry.file_name().to_string_lossy().starts_with('.'))
            .map(|entry| entry.path())
            .collect();
        folders.sort();
        paths.extend(folders);
    }
    paths.iter().map(|path| format!("cargo:rerun-if-changed={}", path.display())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_name_the_folder_and_its_sub_folders() {
        assert_eq!(rerun_directives(Path::new("does-not-exist")), ["cargo:rerun-if-changed=does-not-exist"]);
        let dir = std::env::temp_dir().join(format!("migrate-core-build-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("2019-01-01-000000_b")).unwrap();
        std::fs::create_dir_all(dir.join("00000000000000_a")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join("README.md"), "").unwrap();
        let shown = dir.display();
        assert_eq!(
            rerun_directives(&dir),
            [
                format!("cargo:rerun-if-changed={shown}"),
                format!("cargo:rerun-if-changed={shown}/00000000000000_a"),
                format!("cargo:rerun-if-changed={shown}/2019-01-01-000000_b"),
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
