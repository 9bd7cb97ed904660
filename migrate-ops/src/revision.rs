//! `revision`: write the next migration pair into the source folder.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use migrate_core::{FileName, REVISION_PLACEHOLDERS};

/// Why a revision could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevisionError {
    /// The binary's source folder is not on this machine (a deployed binary).
    #[error("migrations folder {folder} is not here: run `revision` from the checkout the binary was built from")]
    NoSourceFolder {
        /// The folder recorded at build time.
        folder: String,
    },
    /// The message yields no file name.
    #[error("message {message:?} has no letters or digits to name the migration with")]
    EmptyMessage {
        /// The message as given.
        message: String,
    },
    /// Writing a file failed.
    #[error("could not write {path}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The files a revision wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The new version: one above the newest in the folder.
    pub version: i64,
    /// The up file.
    pub up: PathBuf,
    /// The down file.
    pub down: PathBuf,
}

/// Write `{next}_{slug}.up.sql` and `.down.sql` into `folder`, never overwriting a file.
///
/// ```
/// let folder = std::env::temp_dir().join(format!("revision-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&folder).unwrap();
/// std::fs::write(folder.join("7_init.up.sql"), "SELECT 1;").unwrap();
/// let revision = migrate_ops::write_revision(&folder, "Add user preferences table").unwrap();
/// assert_eq!(revision.version, 8);
/// assert!(revision.up.ends_with("8_add_user_preferences_table.up.sql"));
/// # std::fs::remove_dir_all(folder).unwrap();
/// ```
pub fn write_revision(folder: &Path, message: &str) -> Result<Revision, RevisionError> {
    if !folder.is_dir() {
        return Err(RevisionError::NoSourceFolder { folder: folder.display().to_string() });
    }
    let slug = slug(message).ok_or_else(|| RevisionError::EmptyMessage { message: message.to_owned() })?;
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RevisionError::Io { path, source }
    };
    let newest = std::fs::read_dir(folder)
        .map_err(io(folder))?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| FileName::parse(&entry.file_name().to_string_lossy()).ok().flatten())
        .map(|name| name.version)
        .max()
        .unwrap_or(0);
    let version = newest + 1;
    let up = folder.join(format!("{version}_{slug}.up.sql"));
    let down = folder.join(format!("{version}_{slug}.down.sql"));
    let header = message.lines().map(|line| format!("-- {line}\n")).collect::<String>();
    // The placeholders make the build refuse the files until SQL is written into them.
    for (path, placeholder) in [(&up, REVISION_PLACEHOLDERS[0]), (&down, REVISION_PLACEHOLDERS[1])] {
        let mut file = OpenOptions::new().write(true).create_new(true).open(path).map_err(io(path))?;
        file.write_all(format!("{header}{placeholder}\n").as_bytes()).map_err(io(path))?;
    }
    Ok(Revision { version, up, down })
}

/// `"Add user preferences table"` → `add_user_preferences_table`.
fn slug(message: &str) -> Option<String> {
    let words: Vec<String> = message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    (!words.is_empty()).then(|| words.join("_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("add user preferences table").as_deref(), Some("add_user_preferences_table"));
        assert_eq!(slug("  Fix: café's index!! ").as_deref(), Some("fix_caf_s_index"));
        assert_eq!(slug("¿¡"), None);
    }
}
