//! The build-script helper.
//!
//! A stable proc macro cannot ask cargo to watch a folder, so a migration file *added* to the folder would not
//! rebuild the service on its own (edits are covered by the `include_bytes!` the macro emits for every file it
//! read, diesel's `metadata.toml` included). One line in the service's `build.rs` closes that gap:
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
/// For a folder named in `rerun-if-changed`, cargo walks everything under it and compares the newest modification
/// time it finds (files and folders, at any depth) with the last run, so one line covers a file added inside a
/// diesel migration's folder as well as a new folder (checked with cargo 1.95, and by this workspace's rebuild
/// tests).
///
/// ```no_run
/// migrate_core::build::rerun_if_migrations_change("migrations");
/// ```
pub fn rerun_if_migrations_change(folder: impl AsRef<Path>) {
    println!("{}", rerun_directive(folder.as_ref()));
}

fn rerun_directive(folder: &Path) -> String {
    format!("cargo:rerun-if-changed={}", folder.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_names_the_folder() {
        assert_eq!(rerun_directive(Path::new("migrations")), "cargo:rerun-if-changed=migrations");
    }
}
