//! The build-script helper.
//!
//! A stable proc macro cannot ask cargo to watch a folder, so a migration file *added* to the folder would not
//! rebuild the service on its own (edits are covered by the `include_str!` the macro emits). One line in the
//! service's `build.rs` closes that gap:
//!
//! ```no_run
//! // build.rs
//! fn main() {
//!     migrate_core::build::rerun_if_migrations_change("migrations");
//! }
//! ```

// The example above is a build script, whose `fn main` is the point.
#![allow(clippy::needless_doctest_main)]

use std::path::Path;

/// Tell cargo to re-run the build script, and so rebuild the crate and re-expand `embed_migrations!`, whenever a
/// file in `folder` (relative to the crate's `Cargo.toml`) is added, removed or changed.
///
/// Cargo scans a directory named in `rerun-if-changed` for any modified entry, and a file's addition or removal
/// changes the folder itself, so one line per folder is enough.
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
