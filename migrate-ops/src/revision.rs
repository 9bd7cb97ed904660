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
    #[error("message {message:?} has no letters or digits to name the migration with: say what the migration does")]
    EmptyMessage {
        /// The message as given.
        message: String,
    },
    /// The message has letters that a file name here cannot hold (ASCII letters, digits, `_`), even with their
    /// accents taken off.
    #[error(
        "message {message:?} has letters that cannot be written in a migration's file name ({letters}): write the \
         message in Latin letters"
    )]
    NotLatin {
        /// The message as given.
        message: String,
        /// The letters that could not be written.
        letters: String,
    },
    /// A migration of the folder already has the name the message gives.
    #[error("the folder already has a migration named {name:?} ({file}): give the new one another message")]
    NameTaken {
        /// The name.
        name: String,
        /// The existing migration's file.
        file: String,
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
    let slug = slug(message)?;
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RevisionError::Io { path, source }
    };
    let existing: Vec<(String, FileName)> = std::fs::read_dir(folder)
        .map_err(io(folder))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter_map(|file| FileName::parse(&file).ok().flatten().map(|name| (file, name)))
        .collect();
    if let Some((file, _)) = existing.iter().find(|(_, name)| name.name == slug) {
        return Err(RevisionError::NameTaken { name: slug, file: file.clone() });
    }
    let newest = existing.iter().map(|(_, name)| name.version).max().unwrap_or(0);
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

/// `"Add user preferences table"` → `add_user_preferences_table`; accents are taken off (`Ünïcode` → `unicode`), and
/// a letter that has no Latin form refuses the message rather than being dropped.
fn slug(message: &str) -> Result<String, RevisionError> {
    let mut latin = String::with_capacity(message.len());
    let mut lost = String::new();
    for c in message.chars() {
        match (c.is_ascii(), fold(c)) {
            (true, _) => latin.push(c),
            (false, Some(folded)) => latin.push_str(folded),
            (false, None) if c.is_alphanumeric() => lost.push(c),
            (false, None) => latin.push(' '),
        }
    }
    if !lost.is_empty() {
        return Err(RevisionError::NotLatin { message: message.to_owned(), letters: lost });
    }
    let words: Vec<String> = latin
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    match words.is_empty() {
        true => Err(RevisionError::EmptyMessage { message: message.to_owned() }),
        false => Ok(words.join("_")),
    }
}

/// A Latin letter with its accent taken off (Latin-1 and Latin Extended-A), or `None`.
fn fold(c: char) -> Option<&'static str> {
    const FOLDS: [(&str, &str); 33] = [
        ("ÀÁÂÃÄÅĀĂĄ", "A"),
        ("àáâãäåāăą", "a"),
        ("ÇĆĈĊČ", "C"),
        ("çćĉċč", "c"),
        ("ĎĐ", "D"),
        ("ďđ", "d"),
        ("ÈÉÊËĒĔĖĘĚ", "E"),
        ("èéêëēĕėęě", "e"),
        ("ĜĞĠĢ", "G"),
        ("ĝğġģ", "g"),
        ("ÌÍÎÏĨĪĬĮİ", "I"),
        ("ìíîïĩīĭįı", "i"),
        ("ŁĹĻĽ", "L"),
        ("łĺļľ", "l"),
        ("ÑŃŅŇ", "N"),
        ("ñńņň", "n"),
        ("ÒÓÔÕÖØŌŎŐ", "O"),
        ("òóôõöøōŏő", "o"),
        ("ŔŖŘ", "R"),
        ("ŕŗř", "r"),
        ("ŚŜŞŠ", "S"),
        ("śŝşš", "s"),
        ("ŢŤ", "T"),
        ("ţť", "t"),
        ("ÙÚÛÜŨŪŬŮŰŲ", "U"),
        ("ùúûüũūŭůűų", "u"),
        ("ÝŸ", "Y"),
        ("ýÿ", "y"),
        ("ŹŻŽ", "Z"),
        ("źżž", "z"),
        ("ß", "ss"),
        ("Ææ", "ae"),
        ("Œœ", "oe"),
    ];

    FOLDS.iter().find(|(from, _)| from.contains(c)).map(|(_, to)| *to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("add user preferences table").unwrap(), "add_user_preferences_table");
        assert_eq!(slug("  Fix: café's index!! ").unwrap(), "fix_cafe_s_index");
        assert_eq!(slug("Ünïcode Straße").unwrap(), "unicode_strasse");
        assert!(matches!(slug("¿¡"), Err(RevisionError::EmptyMessage { .. })));
        assert!(matches!(slug(""), Err(RevisionError::EmptyMessage { .. })));
        assert!(
            matches!(slug("добавить users"), Err(RevisionError::NotLatin { letters, .. }) if letters == "добавить")
        );
    }
}
