//! Read a migrations folder, check it, and return the migrations or every problem found.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::file_name::{Direction, FileName, FileNameError};
use crate::migration::{is_marker_line, looks_like_marker};
use crate::{Migration, Script, NO_TRANSACTION_MARKER};

/// A problem in a migrations folder. Every variant names the file(s) involved, relative to the crate root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The folder was given as an absolute path; it must be relative to the crate's `Cargo.toml`.
    #[error("migrations folder `{folder}` is absolute: give a path relative to the crate's Cargo.toml")]
    AbsolutePath {
        /// The folder as given.
        folder: String,
    },
    /// The folder does not exist.
    #[error("migrations folder `{folder}` does not exist (looked in `{looked_in}`): create it or fix the path")]
    MissingFolder {
        /// The folder as given.
        folder: String,
        /// The absolute path that was tried.
        looked_in: String,
    },
    /// The path exists but is not a folder, or could not be read.
    #[error("migrations folder `{folder}` could not be read: {reason}")]
    Unreadable {
        /// The folder or file as given.
        folder: String,
        /// The operating system's message.
        reason: String,
    },
    /// A `.sql` file whose name fits no accepted pattern.
    #[error("{file}: file name fits no migration pattern: {source}")]
    BadFileName {
        /// The file.
        file: String,
        /// What is wrong with the name.
        source: FileNameError,
    },
    /// Two files claim the same version (and direction).
    #[error("{second}: duplicate version {version}, already used by {first}: give one of them a new version")]
    DuplicateVersion {
        /// The version both files claim.
        version: i64,
        /// The file met first, in name order.
        first: String,
        /// The other file.
        second: String,
    },
    /// A down file with no up file of the same version.
    #[error("{file}: down migration {version} has no up file: add `{version}_{name}.up.sql` or remove it")]
    DownWithoutUp {
        /// The down file.
        file: String,
        /// Its version.
        version: i64,
        /// Its name.
        name: String,
    },
    /// A down file whose name differs from its up file's.
    #[error("{down}: name differs from its up file {up}: rename one so both say the same")]
    DownNameMismatch {
        /// The down file.
        down: String,
        /// The up file.
        up: String,
    },
    /// A file with no SQL in it.
    #[error("{file}: migration file is empty")]
    Empty {
        /// The file.
        file: String,
    },
    /// A file that is not valid UTF-8.
    #[error("{file}: migration file is not valid UTF-8 (invalid byte at offset {offset}): save it as UTF-8")]
    NotUtf8 {
        /// The file.
        file: String,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The no-transaction marker (or a line that looks like a directive) somewhere other than exactly the first line.
    #[error("{file}:{line}: `{text}` is not a valid directive here: the only directive is `{marker}`, alone on the first line", marker = NO_TRANSACTION_MARKER)]
    MisplacedMarker {
        /// The file.
        file: String,
        /// One-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
}

/// Resolve the migrations folder `folder`, given relative to `crate_root` (the directory of the crate's
/// `Cargo.toml`). Returns the migrations ordered by version, or every problem found, in file-name order.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("migrate-core-doc-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("migrations")).unwrap();
/// std::fs::write(dir.join("migrations/1_init.up.sql"), "CREATE TABLE t (id int);").unwrap();
/// std::fs::write(dir.join("migrations/1_init.down.sql"), "DROP TABLE t;").unwrap();
///
/// let migrations = migrate_core::resolve_folder(&dir, "migrations").unwrap();
/// assert_eq!(migrations.len(), 1);
/// assert_eq!(migrations[0].up.file, "migrations/1_init.up.sql");
/// assert!(migrations[0].down.is_some());
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn resolve_folder(crate_root: &Path, folder: &str) -> Result<Vec<Migration>, Vec<ResolveError>> {
    if Path::new(folder).is_absolute() {
        return Err(vec![ResolveError::AbsolutePath { folder: folder.to_owned() }]);
    }
    let dir = crate_root.join(folder);
    if !dir.exists() {
        let looked_in = dir.display().to_string();
        return Err(vec![ResolveError::MissingFolder { folder: folder.to_owned(), looked_in }]);
    }
    let files = list_files(&dir).map_err(|e| vec![unreadable(folder, &e)])?;

    let mut errors = Vec::new();
    let mut ups: BTreeMap<i64, (FileName, Script)> = BTreeMap::new();
    let mut downs: BTreeMap<i64, (FileName, Script)> = BTreeMap::new();
    for (file_name, path) in files {
        let file = display_path(folder, &file_name);
        let parsed = match FileName::parse(&file_name) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => continue,
            Err(source) => {
                errors.push(ResolveError::BadFileName { file, source });
                continue;
            }
        };
        let script = match read_script(&path, file) {
            Ok(script) => script,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let same_direction = match parsed.direction {
            Direction::Up => &mut ups,
            Direction::Down => &mut downs,
        };
        if let Some((_, first)) = same_direction.get(&parsed.version) {
            errors.push(ResolveError::DuplicateVersion {
                version: parsed.version,
                first: first.file.to_string(),
                second: script.file.to_string(),
            });
            continue;
        }
        same_direction.insert(parsed.version, (parsed, script));
    }

    for (version, (down_name, down)) in &downs {
        match ups.get(version) {
            None => errors.push(ResolveError::DownWithoutUp {
                file: down.file.to_string(),
                version: *version,
                name: down_name.name.clone(),
            }),
            Some((up_name, up)) if up_name.name != down_name.name => {
                errors.push(ResolveError::DownNameMismatch { down: down.file.to_string(), up: up.file.to_string() })
            }
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    Ok(ups
        .into_iter()
        .map(|(version, (name, up))| Migration {
            version,
            name: name.name.into(),
            up,
            down: downs.remove(&version).map(|(_, down)| down),
        })
        .collect())
}

/// The folder's regular files, sorted by name so that errors come out in a stable order.
fn list_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() && !entry.path().is_file() {
            continue;
        }
        // A non-UTF-8 file name cannot be a migration name; keep it (lossily) so the name check reports it.
        files.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
    }
    files.sort();
    Ok(files)
}

fn display_path(folder: &str, file_name: &str) -> String {
    let folder = folder.trim_end_matches(['/', '\\']).replace('\\', "/");
    if folder.is_empty() || folder == "." {
        file_name.to_owned()
    } else {
        format!("{folder}/{file_name}")
    }
}

fn unreadable(folder: &str, error: &std::io::Error) -> ResolveError {
    ResolveError::Unreadable { folder: folder.to_owned(), reason: error.to_string() }
}

fn read_script(path: &Path, file: String) -> Result<Script, ResolveError> {
    let bytes = fs::read(path).map_err(|e| unreadable(&file, &e))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Err(ResolveError::NotUtf8 { file, offset: e.utf8_error().valid_up_to() }),
    };
    let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if body.trim().is_empty() {
        return Err(ResolveError::Empty { file });
    }
    for (index, line) in body.lines().enumerate() {
        let allowed = index == 0 && is_marker_line(line);
        if looks_like_marker(line) && !allowed {
            return Err(ResolveError::MisplacedMarker { file, line: index + 1, text: line.trim().to_owned() });
        }
    }
    if body.lines().skip_while(|l| is_marker_line(l)).all(|l| l.trim().is_empty()) {
        return Err(ResolveError::Empty { file });
    }
    Ok(Script::new(file, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch crate root holding a `migrations/` folder with the given files.
    struct Fixture(PathBuf);

    impl Fixture {
        fn new(files: &[(&str, &[u8])]) -> Fixture {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let root = std::env::temp_dir().join(format!(
                "migrate-core-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(root.join("migrations")).unwrap();
            for (name, text) in files {
                fs::write(root.join("migrations").join(name), text).unwrap();
            }
            Fixture(root)
        }

        fn resolve(&self) -> Result<Vec<Migration>, Vec<ResolveError>> {
            resolve_folder(&self.0, "migrations")
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn orders_numerically_and_pairs_down_files() {
        let fixture = Fixture::new(&[
            ("10_ten.up.sql", b"SELECT 10;"),
            ("2_two.up.sql", b"SELECT 2;"),
            ("2_two.down.sql", b"SELECT -2;"),
            ("V3__three.sql", b"SELECT 3;"),
            ("README.md", b"not a migration"),
        ]);
        let migrations = fixture.resolve().unwrap();
        let versions: Vec<i64> = migrations.iter().map(|m| m.version).collect();
        assert_eq!(versions, [2, 3, 10]);
        assert_eq!(migrations[0].down.as_ref().unwrap().file, "migrations/2_two.down.sql");
        assert!(migrations[1].down.is_none());
        assert_eq!(migrations[1].name, "three");
    }

    #[test]
    fn reports_every_problem_at_once() {
        let fixture = Fixture::new(&[
            ("1_a.up.sql", b"SELECT 1;"),
            ("1_b.up.sql", b"SELECT 1;"),
            ("2_orphan.down.sql", b"SELECT 2;"),
            ("3_empty.up.sql", b"  \n"),
            ("4_latin1.up.sql", b"SELECT '\xe9';"),
            ("5_bad.sql", b"SELECT 5;"),
            ("6_late.up.sql", b"SELECT 6;\n-- migrate:no-transaction\n"),
            ("7_x.up.sql", b"SELECT 7;"),
            ("7_y.down.sql", b"SELECT 7;"),
        ]);
        let errors = fixture.resolve().unwrap_err();
        assert_eq!(
            errors,
            vec![
                ResolveError::DuplicateVersion {
                    version: 1,
                    first: "migrations/1_a.up.sql".into(),
                    second: "migrations/1_b.up.sql".into()
                },
                ResolveError::Empty { file: "migrations/3_empty.up.sql".into() },
                ResolveError::NotUtf8 { file: "migrations/4_latin1.up.sql".into(), offset: 8 },
                ResolveError::BadFileName { file: "migrations/5_bad.sql".into(), source: FileNameError::NoPattern },
                ResolveError::MisplacedMarker {
                    file: "migrations/6_late.up.sql".into(),
                    line: 2,
                    text: "-- migrate:no-transaction".into()
                },
                ResolveError::DownWithoutUp {
                    file: "migrations/2_orphan.down.sql".into(),
                    version: 2,
                    name: "orphan".into()
                },
                ResolveError::DownNameMismatch {
                    down: "migrations/7_y.down.sql".into(),
                    up: "migrations/7_x.up.sql".into()
                },
            ]
        );
    }

    #[test]
    fn marker_on_first_line_marks_no_transaction() {
        let fixture = Fixture::new(&[
            ("1_idx.up.sql", b"\xef\xbb\xbf-- migrate:no-transaction\r\nCREATE INDEX CONCURRENTLY i ON t (id);\r\n"),
            ("1_idx.down.sql", b"DROP INDEX i;"),
        ]);
        let migrations = fixture.resolve().unwrap();
        assert!(migrations[0].up.no_transaction);
        assert!(!migrations[0].down.as_ref().unwrap().no_transaction);
    }

    #[test]
    fn marker_typos_and_marker_only_files_are_rejected() {
        let typo = Fixture::new(&[("1_a.up.sql", b"--migrate:no-transactions\nSELECT 1;")]);
        assert!(matches!(&typo.resolve().unwrap_err()[..], [ResolveError::MisplacedMarker { line: 1, .. }]));
        let only_marker = Fixture::new(&[("1_a.up.sql", b"-- migrate:no-transaction\n\n")]);
        assert_eq!(
            only_marker.resolve().unwrap_err(),
            vec![ResolveError::Empty { file: "migrations/1_a.up.sql".into() }]
        );
    }

    #[test]
    fn folder_problems() {
        let fixture = Fixture::new(&[]);
        assert!(fixture.resolve().unwrap().is_empty());
        assert!(matches!(
            &resolve_folder(&fixture.0, "nope").unwrap_err()[..],
            [ResolveError::MissingFolder { folder, .. }] if folder == "nope"
        ));
        assert_eq!(
            resolve_folder(&fixture.0, "/abs").unwrap_err(),
            vec![ResolveError::AbsolutePath { folder: "/abs".into() }]
        );
    }
}
