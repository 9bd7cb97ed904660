//! `revision`: write the next migration pair into the source folder.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use migrate_core::{DieselName, FileName, Layout, NO_TRANSACTION_MARKER, REVISION_PLACEHOLDERS};
use migrate_runtime::MigrationSet;

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
    /// The folder does not resolve (an unfilled template, a bad name, ...): what the build would refuse.
    #[error("migrations folder {folder} does not build: {problems}; fix it first")]
    FolderDoesNotBuild {
        /// The folder.
        folder: String,
        /// The resolver's problems, one after another.
        problems: String,
    },
    /// The folder holds other migrations than the binary embeds, so the binary's head is not the folder's.
    #[error(
        "migrations folder {folder} differs from the migrations this binary embeds ({difference}): rebuild the \
         service from this folder, then generate"
    )]
    FolderDiffers {
        /// The folder.
        folder: String,
        /// The first difference, in words.
        difference: String,
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
    /// The new version: one above the newest in the folder, or the current UTC time where the folder's versions
    /// are timestamps.
    pub version: i64,
    /// The folder's layout, which the files follow.
    pub layout: Layout,
    /// The up file.
    pub up: PathBuf,
    /// The down file; `None` where the folder keeps no down files (refinery's, sqlx's up-only form).
    pub down: Option<PathBuf>,
}

/// What a revision's files hold: the up and down scripts (each with its header), and whether the up script must
/// run outside a transaction.
#[derive(Debug, Clone, Copy)]
pub struct RevisionText<'a> {
    /// The up script.
    pub up: &'a str,
    /// The down script (not written where the folder keeps no down files).
    pub down: &'a str,
    /// The up script runs outside a transaction: the file starts with the marker (diesel: `metadata.toml`).
    pub no_transaction: bool,
}

/// Write the next migration into `folder` as a template to fill in (placeholders the build refuses until SQL is
/// written), in the folder's own layout, never overwriting a file.
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
    let header = message.lines().map(|line| format!("-- {line}\n")).collect::<String>();
    // The placeholders make the build refuse the files until SQL is written into them.
    let up = format!("{header}{}\n", REVISION_PLACEHOLDERS[0]);
    let down = format!("{header}{}\n", REVISION_PLACEHOLDERS[1]);
    write_revision_text(folder, message, RevisionText { up: &up, down: &down, no_transaction: false })
}

/// Write the next migration into `folder` with the given scripts, in the folder's own layout: flat
/// (`{version}_{name}.up.sql` and `.down.sql`), sqlx's up-only (`{version}_{name}.sql`), refinery's
/// (`V{version}__{name}.sql`) or diesel's (`{timestamp}_{name}/up.sql`, `down.sql`). Never overwrites a file.
pub fn write_revision_text(folder: &Path, message: &str, text: RevisionText<'_>) -> Result<Revision, RevisionError> {
    if !folder.is_dir() {
        return Err(RevisionError::NoSourceFolder { folder: folder.display().to_string() });
    }
    let slug = slug(message)?;
    let found = Found::read(folder)?;
    if let Some(file) = found.named(&slug) {
        return Err(RevisionError::NameTaken { name: slug, file: file.to_owned() });
    }
    let version = found.next_version();
    let (up, down) = match found.form {
        Form::Flat => {
            (folder.join(format!("{version}_{slug}.up.sql")), Some(folder.join(format!("{version}_{slug}.down.sql"))))
        }
        Form::FlatUpOnly => (folder.join(format!("{version}_{slug}.sql")), None),
        Form::Refinery => (folder.join(format!("V{version}__{slug}.sql")), None),
        Form::Diesel => {
            let dir = folder.join(format!("{}_{slug}", diesel_version(version)));
            std::fs::create_dir(&dir).map_err(io_error(&dir))?;
            if text.no_transaction {
                create_new(&dir.join("metadata.toml"), "run_in_transaction = false\n")?;
            }
            (dir.join("up.sql"), Some(dir.join("down.sql")))
        }
    };
    let marker = if text.no_transaction && found.form != Form::Diesel {
        format!("{NO_TRANSACTION_MARKER}\n")
    } else {
        String::new()
    };
    create_new(&up, &format!("{marker}{}", text.up))?;
    if let Some(down) = &down {
        create_new(down, text.down)?;
    }
    Ok(Revision { version, layout: found.form.layout(), up, down })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RevisionError {
    let path = path.display().to_string();
    move |source| RevisionError::Io { path, source }
}

fn create_new(path: &Path, text: &str) -> Result<(), RevisionError> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path).map_err(io_error(path))?;
    file.write_all(text.as_bytes()).map_err(io_error(path))
}

/// The shape of a folder's migrations, which a new one follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Flat,
    FlatUpOnly,
    Refinery,
    Diesel,
}

impl Form {
    fn layout(self) -> Layout {
        match self {
            Form::Flat | Form::FlatUpOnly => Layout::Flat,
            Form::Refinery => Layout::Refinery,
            Form::Diesel => Layout::Diesel,
        }
    }
}

/// The migrations a folder holds, by name: enough to name the next one.
struct Found {
    form: Form,
    /// `(file or folder name, migration name, version)`.
    migrations: Vec<(String, String, i64)>,
}

impl Found {
    fn read(folder: &Path) -> Result<Found, RevisionError> {
        let mut migrations = Vec::new();
        let (mut diesel, mut refinery, mut reversible) = (false, false, false);
        for entry in std::fs::read_dir(folder).map_err(io_error(folder))?.filter_map(Result::ok) {
            let file = entry.file_name().to_string_lossy().into_owned();
            if entry.path().join("up.sql").is_file() {
                if let Ok(name) = DieselName::parse(&file) {
                    diesel = true;
                    migrations.push((file, name.name, name.version));
                }
            } else if let Ok(Some(name)) = FileName::parse(&file) {
                refinery |= name.layout == Layout::Refinery;
                reversible |= file.ends_with(".up.sql") || file.ends_with(".down.sql");
                migrations.push((file, name.name, name.version));
            }
        }
        let form = match (diesel, refinery, reversible || migrations.is_empty()) {
            (true, _, _) => Form::Diesel,
            (false, true, _) => Form::Refinery,
            (false, false, true) => Form::Flat,
            (false, false, false) => Form::FlatUpOnly,
        };
        Ok(Found { form, migrations })
    }

    fn named(&self, name: &str) -> Option<&str> {
        self.migrations.iter().find(|(_, n, _)| n == name).map(|(file, _, _)| file.as_str())
    }

    /// One above the newest; where versions are timestamps (`20240101120000`, as sqlx and diesel write them),
    /// the current UTC time, or one above the newest should that be later.
    fn next_version(&self) -> i64 {
        let newest = self.migrations.iter().map(|(_, _, v)| *v).max().unwrap_or(0);
        if (10_000_000_000_000..100_000_000_000_000).contains(&newest) {
            utc_timestamp().max(newest + 1)
        } else {
            newest + 1
        }
    }
}

/// diesel's folder prefix for a version: `2026-12-04-203519` for a 14-digit timestamp, the digits otherwise.
fn diesel_version(version: i64) -> String {
    let digits = version.to_string();
    match digits.len() {
        14 => format!("{}-{}-{}-{}", &digits[..4], &digits[4..6], &digits[6..8], &digits[8..]),
        _ => digits,
    }
}

/// The current UTC time as `YYYYMMDDHHMMSS`.
fn utc_timestamp() -> i64 {
    let now = migrate_core::civil::date_time(migrate_core::civil::now_seconds());
    ((now.year * 100 + now.month) * 100 + now.day) * 1_000_000 + now.hour * 10_000 + now.minute * 100 + now.second
}

/// Refuse a folder whose migrations are not exactly those `set` embeds (same versions, same scripts): a revision
/// generated against the binary's head must follow the folder's newest migration.
pub fn check_folder_matches(folder: &Path, set: &MigrationSet) -> Result<(), RevisionError> {
    let shown = folder.display().to_string();
    let (Some(parent), Some(name)) = (folder.parent(), folder.file_name().and_then(|n| n.to_str())) else {
        return Err(RevisionError::NoSourceFolder { folder: shown });
    };
    let resolved = migrate_core::resolve(parent, name).map_err(|problems| RevisionError::FolderDoesNotBuild {
        folder: shown.clone(),
        problems: problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
    })?;
    let differs = |difference: String| Err(RevisionError::FolderDiffers { folder: shown.clone(), difference });
    for migration in &resolved.migrations {
        match set.get(migration.version) {
            None => return differs(format!("{} is not in the binary", migration.file())),
            Some(embedded) if embedded.up.checksum != migration.up.checksum => {
                return differs(format!("{} was edited since the build", migration.file()))
            }
            Some(_) => {}
        }
    }
    match set.iter().find(|m| !resolved.migrations.iter().any(|f| f.version == m.version)) {
        Some(missing) => differs(format!("the binary's {} is not in the folder", missing.file())),
        None => Ok(()),
    }
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

    /// A folder with `files` (`name` -> text; a name with `/` makes its sub-folder).
    fn folder(label: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("revision-layout-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const TEXT: RevisionText<'static> =
        RevisionText { up: "CREATE TABLE t (id int);\n", down: "DROP TABLE t;\n", no_transaction: false };

    /// The folder read back by the resolver the build uses: its layout and its newest migration's version and name.
    fn resolved(dir: &Path) -> (Layout, i64, String) {
        let resolved =
            migrate_core::resolve(dir.parent().unwrap(), dir.file_name().unwrap().to_str().unwrap()).unwrap();
        let newest = resolved.migrations.last().unwrap();
        (resolved.layout, newest.version, newest.name.to_string())
    }

    #[test]
    fn each_layout_gets_its_own_files_and_the_build_reads_them_back() {
        let flat = folder("flat", &[("1_a.up.sql", "SELECT 1;"), ("1_a.down.sql", "SELECT 1;")]);
        let written = write_revision_text(&flat, "add t", TEXT).unwrap();
        assert_eq!(
            (written.up.file_name().unwrap(), written.down.as_ref().unwrap().file_name().unwrap()),
            ("2_add_t.up.sql".as_ref(), "2_add_t.down.sql".as_ref())
        );
        assert_eq!(resolved(&flat), (Layout::Flat, 2, "add_t".to_owned()));

        let sqlx = folder("sqlx", &[("20240101120000_init.sql", "SELECT 1;")]);
        let written = write_revision_text(&sqlx, "add t", TEXT).unwrap();
        assert!(written.version > 20260101000000 && written.down.is_none(), "{written:?}");
        assert_eq!(written.up.file_name().unwrap().to_str().unwrap(), format!("{}_add_t.sql", written.version));
        assert_eq!(resolved(&sqlx), (Layout::Flat, written.version, "add_t".to_owned()));

        let refinery = folder("refinery", &[("V1__init.sql", "SELECT 1;"), ("V2__more.sql", "SELECT 1;")]);
        let no_transaction = RevisionText { no_transaction: true, ..TEXT };
        let written = write_revision_text(&refinery, "add t", no_transaction).unwrap();
        assert_eq!((written.version, written.layout, written.down.is_none()), (3, Layout::Refinery, true));
        assert!(std::fs::read_to_string(&written.up).unwrap().starts_with("-- migrate:no-transaction\nCREATE TABLE"));
        assert_eq!(resolved(&refinery), (Layout::Refinery, 3, "add_t".to_owned()));

        let diesel = folder(
            "diesel",
            &[
                ("2019-02-26-002946_create_users/up.sql", "SELECT 1;"),
                ("2019-02-26-002946_create_users/down.sql", "SELECT 1;"),
            ],
        );
        let written = write_revision_text(&diesel, "add t", no_transaction).unwrap();
        let dir = written.up.parent().unwrap();
        assert_eq!(dir.file_name().unwrap().to_str().unwrap(), format!("{}_add_t", diesel_version(written.version)));
        assert_eq!(std::fs::read_to_string(dir.join("metadata.toml")).unwrap(), "run_in_transaction = false\n");
        assert_eq!(std::fs::read_to_string(written.down.as_ref().unwrap()).unwrap(), TEXT.down);
        let (layout, version, name) = resolved(&diesel);
        assert_eq!((layout, version, name.as_str()), (Layout::Diesel, written.version, "add_t"));
        for dir in [flat, sqlx, refinery, diesel] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn timestamps_are_utc_and_diesel_names_them_with_dashes() {
        let now = utc_timestamp();
        assert!((20_260_101_000_000..21_000_000_000_000).contains(&now), "{now}");
        assert_eq!(diesel_version(20261204203519), "2026-12-04-203519");
        assert_eq!(diesel_version(42), "42");
    }

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
