//! Read a migrations folder, check it, and return the migrations or every problem found.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use crate::file_name::{DieselName, Direction, FileName, FileNameError};
use crate::layout::Layout;
use crate::migration::{allow_marker_rules, is_marker_line, looks_like_marker};
use crate::migration::{Migration, Script, ALLOW_MARKER, NO_TRANSACTION_MARKER};

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
    /// A file `revision` wrote that still holds only its template: nothing was written into it yet.
    #[error("{file}: migration file still holds only the revision template: write the migration's SQL first (or delete the file)")]
    Unwritten {
        /// The file.
        file: String,
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
    #[error("{file}:{line}: `{text}` is not a valid directive here: the directives are `{marker}`, alone on the first line, and `{allow} <rule>` on any line", marker = NO_TRANSACTION_MARKER, allow = ALLOW_MARKER)]
    MisplacedMarker {
        /// The file.
        file: String,
        /// One-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// A migration of one layout in a folder holding another layout's migrations.
    #[error("{file}: {layout} migration in a folder of {folder_layout} migrations (such as {example}): keep one layout per folder: move it out, or rewrite it as {pattern}", pattern = folder_layout.pattern())]
    MixedLayouts {
        /// The file (or diesel sub-folder) of the other layout.
        file: String,
        /// Its layout.
        layout: Layout,
        /// The layout most of the folder follows.
        folder_layout: Layout,
        /// A file (or sub-folder) of that layout.
        example: String,
    },
    /// A diesel migration folder whose name is not `{version}_{name}`.
    #[error("{folder}: diesel migration folder name fits no pattern: {source}")]
    BadFolderName {
        /// The sub-folder.
        folder: String,
        /// What is wrong with the name.
        source: FileNameError,
    },
    /// A diesel migration folder without `up.sql`.
    #[error(
        "{folder}: diesel migration folder has no up.sql: add one, or move the folder out of the migrations folder"
    )]
    MissingUpSql {
        /// The sub-folder.
        folder: String,
    },
    /// A diesel `metadata.toml` that cannot be read or understood.
    #[error(
        "{file}: unreadable diesel metadata: {reason}: fix it (diesel reads `run_in_transaction = false`) or remove it"
    )]
    BadMetadata {
        /// The metadata file.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

/// What [`resolve`] found in a migrations folder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resolved {
    /// The folder's layout ([`Layout::Flat`] for an empty folder).
    pub layout: Layout,
    /// The migrations, in the layout's order: numeric for flat and refinery folders, diesel's text order of the
    /// version digits for diesel folders.
    pub migrations: Vec<Migration>,
    /// Every file that was read (scripts and diesel's `metadata.toml`), relative to the crate, `/`-separated: what a
    /// build must watch.
    pub files: Vec<String>,
}

/// Resolve the migrations folder `folder`, given relative to `crate_root` (the directory of the crate's
/// `Cargo.toml`). Returns the migrations in the layout's order, or every problem found, in file-name order.
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
    resolve(crate_root, folder).map(|resolved| resolved.migrations)
}

/// [`resolve_folder`], also telling the folder's [`Layout`] and every file read. The one code path of the macro
/// and the runtime: read the folder, detect its layout, read each migration by that layout's rules, then check
/// the set as a whole.
///
/// ```
/// use migrate_core::Layout;
///
/// let dir = std::env::temp_dir().join(format!("migrate-core-doc-diesel-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("migrations/2019-02-26-002946_create_users")).unwrap();
/// std::fs::write(dir.join("migrations/2019-02-26-002946_create_users/up.sql"), "CREATE TABLE users (id int);").unwrap();
///
/// let resolved = migrate_core::resolve(&dir, "migrations").unwrap();
/// assert_eq!(resolved.layout, Layout::Diesel);
/// assert_eq!(resolved.migrations[0].version, 20190226002946);
/// assert_eq!(resolved.migrations[0].up.file, "migrations/2019-02-26-002946_create_users/up.sql");
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn resolve(crate_root: &Path, folder: &str) -> Result<Resolved, Vec<ResolveError>> {
    if Path::new(folder).is_absolute() {
        return Err(vec![ResolveError::AbsolutePath { folder: folder.to_owned() }]);
    }
    let dir = crate_root.join(folder);
    if !dir.exists() {
        let looked_in = dir.display().to_string();
        return Err(vec![ResolveError::MissingFolder { folder: folder.to_owned(), looked_in }]);
    }
    let listing = Listing::read(&dir, folder).map_err(|e| vec![unreadable(folder, &e)])?;
    let (layout, mut errors) = detect_layout(&listing);
    let found = match layout {
        Layout::Flat | Layout::Refinery => read_files(&listing, layout, &mut errors),
        Layout::Diesel => read_diesel_folders(&listing, &mut errors),
    };
    let migrations = match layout {
        Layout::Flat | Layout::Refinery => pair_by_version(found, &mut errors),
        Layout::Diesel => order_as_diesel(found, &mut errors),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let files = found_files(&migrations, &listing, layout);
    Ok(Resolved { layout, migrations, files })
}

/// Step 1: what the folder holds. Hidden entries are left out; names are sorted so errors come out in a stable
/// order.
struct Listing {
    /// Files at the top of the folder.
    files: Vec<Entry>,
    /// Its sub-folders.
    folders: Vec<Entry>,
}

/// A file or sub-folder of the migrations folder.
struct Entry {
    /// Its name in the folder.
    name: String,
    /// Where to read it.
    path: PathBuf,
    /// Its path relative to the crate, `/`-separated, as messages and `Script::file` show it.
    shown: String,
}

impl Listing {
    fn read(dir: &Path, folder: &str) -> std::io::Result<Listing> {
        let mut files = Vec::new();
        let mut folders = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            // A non-UTF-8 name cannot be a migration name; keep it (lossily) so the name check reports it.
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let shown = display_path(folder, &name);
            let file_type = entry.file_type()?;
            if file_type.is_file() || (file_type.is_symlink() && path.is_file()) {
                files.push(Entry { name, path, shown });
            } else if file_type.is_dir() || (file_type.is_symlink() && path.is_dir()) {
                folders.push(Entry { name, path, shown });
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        folders.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Listing { files, folders })
    }
}

/// The files diesel reads in a migration folder.
const DIESEL_UP: &str = "up.sql";
const DIESEL_DOWN: &str = "down.sql";
const DIESEL_METADATA: &str = "metadata.toml";

/// A sub-folder holding any file diesel reads is a diesel migration (a stray folder of other files is not).
fn looks_like_diesel(folder: &Entry) -> bool {
    [DIESEL_UP, DIESEL_DOWN, DIESEL_METADATA].iter().any(|file| folder.path.join(file).is_file())
}

/// Step 2: the layout most of the folder's migrations follow (ties go to the earlier of [`Layout::ALL`]), and one
/// error for each migration of another layout.
fn detect_layout(listing: &Listing) -> (Layout, Vec<ResolveError>) {
    let mut seen: Vec<(Layout, &str)> = Vec::new();
    for file in &listing.files {
        if let Ok(Some(parsed)) = FileName::parse(&file.name) {
            seen.push((parsed.layout, &file.shown));
        }
    }
    for folder in listing.folders.iter().filter(|f| looks_like_diesel(f)) {
        seen.push((Layout::Diesel, &folder.shown));
    }
    let count = |layout: Layout| seen.iter().filter(|(l, _)| *l == layout).count();
    let layout = Layout::ALL.into_iter().rev().max_by_key(|l| count(*l)).unwrap_or(Layout::Flat);
    let Some(&(_, example)) = seen.iter().find(|(l, _)| *l == layout) else {
        return (Layout::Flat, Vec::new());
    };
    let errors = seen
        .iter()
        .filter(|(l, _)| *l != layout)
        .map(|&(l, file)| ResolveError::MixedLayouts {
            file: file.to_owned(),
            layout: l,
            folder_layout: layout,
            example: example.to_owned(),
        })
        .collect();
    (layout, errors)
}

/// One migration as read, before the set is checked as a whole.
struct Found {
    version: i64,
    name: String,
    /// Diesel's ordering key (the version's digits); empty for the other layouts.
    digits: String,
    /// Where the migration was found (its up file, or its diesel folder), for messages.
    origin: String,
    direction: Direction,
    script: Script,
}

/// Step 3, flat and refinery: each file at the top of `layout` (files of other layouts were reported by
/// [`detect_layout`]; sub-folders are not read).
fn read_files(listing: &Listing, layout: Layout, errors: &mut Vec<ResolveError>) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    // Where each (version, direction) was first found: a folder of thousands of files is read in one pass.
    let mut seen: HashMap<(i64, Direction), usize> = HashMap::new();
    for file in &listing.files {
        let parsed = match FileName::parse(&file.name) {
            Ok(Some(parsed)) if parsed.layout == layout => parsed,
            Ok(_) => continue,
            Err(source) => {
                errors.push(ResolveError::BadFileName { file: file.shown.clone(), source });
                continue;
            }
        };
        let script = match read_script(&file.path, file.shown.clone(), layout, Emptiness::Refused) {
            Ok(script) => script,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        if let Some(&first) = seen.get(&(parsed.version, parsed.direction)) {
            let (first, second) = (found[first].origin.clone(), file.shown.clone());
            errors.push(ResolveError::DuplicateVersion { version: parsed.version, first, second });
            continue;
        }
        seen.insert((parsed.version, parsed.direction), found.len());
        found.push(Found {
            version: parsed.version,
            name: parsed.name,
            digits: String::new(),
            origin: file.shown.clone(),
            direction: parsed.direction,
            script,
        });
    }
    found
}

/// Step 3, diesel: every sub-folder is a migration, as diesel has it; files at the top are ignored, as diesel
/// ignores them. `up.sql` is required, `down.sql` may be empty, `metadata.toml`'s `run_in_transaction = false`
/// runs both scripts outside a transaction.
fn read_diesel_folders(listing: &Listing, errors: &mut Vec<ResolveError>) -> Vec<Found> {
    let mut found = Vec::new();
    for folder in &listing.folders {
        let name = match DieselName::parse(&folder.name) {
            Ok(name) => name,
            Err(source) => {
                errors.push(ResolveError::BadFolderName { folder: folder.shown.clone(), source });
                continue;
            }
        };
        let in_transaction = match read_diesel_metadata(folder) {
            Ok(in_transaction) => in_transaction,
            Err(error) => {
                errors.push(error);
                true
            }
        };
        let mut read = |file: &str, direction: Direction, emptiness: Emptiness| {
            let shown = format!("{}/{file}", folder.shown);
            match read_script(&folder.path.join(file), shown, Layout::Diesel, emptiness) {
                Ok(mut script) => {
                    script.no_transaction |= !in_transaction;
                    found.push(Found {
                        version: name.version,
                        name: name.name.clone(),
                        digits: name.digits.clone(),
                        origin: folder.shown.clone(),
                        direction,
                        script,
                    });
                }
                Err(error) => errors.push(error),
            }
        };
        let has_up = folder.path.join(DIESEL_UP).is_file();
        if has_up {
            read(DIESEL_UP, Direction::Up, Emptiness::Refused);
        }
        if folder.path.join(DIESEL_DOWN).is_file() {
            read(DIESEL_DOWN, Direction::Down, Emptiness::Allowed);
        }
        if !has_up {
            errors.push(ResolveError::MissingUpSql { folder: folder.shown.clone() });
        }
    }
    found
}

/// `run_in_transaction` from the folder's `metadata.toml` (true when there is none, as in diesel).
fn read_diesel_metadata(folder: &Entry) -> Result<bool, ResolveError> {
    let path = folder.path.join(DIESEL_METADATA);
    if !path.is_file() {
        return Ok(true);
    }
    let file = format!("{}/{DIESEL_METADATA}", folder.shown);
    let bad = |reason: String| ResolveError::BadMetadata { file: file.clone(), reason };
    let text = fs::read(&path).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8(text).map_err(|_| bad("not valid UTF-8".to_owned()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(1, |span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        bad(format!("line {line}: {}", e.message()))
    })?;
    match table.get("run_in_transaction") {
        None => Ok(true),
        Some(toml::Value::Boolean(value)) => Ok(*value),
        Some(other) => Err(bad(format!("`run_in_transaction` is {}, not true or false", other.type_str()))),
    }
}

/// Step 4, flat and refinery: each down file beside the up file of its version and name (duplicates were refused
/// while reading); ordered numerically.
fn pair_by_version(found: Vec<Found>, errors: &mut Vec<ResolveError>) -> Vec<Migration> {
    let mut ups: BTreeMap<i64, Found> = BTreeMap::new();
    let mut downs: BTreeMap<i64, Found> = BTreeMap::new();
    for item in found {
        match item.direction {
            Direction::Up => ups.insert(item.version, item),
            Direction::Down => downs.insert(item.version, item),
        };
    }
    for (version, down) in &downs {
        match ups.get(version) {
            None => errors.push(ResolveError::DownWithoutUp {
                file: down.origin.clone(),
                version: *version,
                name: down.name.clone(),
            }),
            Some(up) if up.name != down.name => {
                errors.push(ResolveError::DownNameMismatch { down: down.origin.clone(), up: up.origin.clone() })
            }
            Some(_) => {}
        }
    }
    ups.into_iter()
        .map(|(version, up)| Migration {
            version,
            name: up.name.into(),
            up: up.script,
            down: downs.remove(&version).map(|down| down.script),
        })
        .collect()
}

/// Step 4, diesel: ordered by the version's digits as text, as diesel orders them (`20260527120000` before
/// `202605271200000000`, and `202605271200000000` before `20270101000000`). Two folders with the same digits, or
/// with digits that differ as text but are the same number (`01_a`, `1_b`), are a duplicate.
fn order_as_diesel(found: Vec<Found>, errors: &mut Vec<ResolveError>) -> Vec<Migration> {
    let mut ups: BTreeMap<String, (Found, Option<Found>)> = BTreeMap::new();
    let mut downs = Vec::new();
    for item in found {
        match item.direction {
            Direction::Up => {
                if let Some((first, _)) = ups.get(&item.digits) {
                    errors.push(duplicate_folder(first, &item));
                } else {
                    ups.insert(item.digits.clone(), (item, None));
                }
            }
            Direction::Down => downs.push(item),
        }
    }
    // A down file belongs to its own folder's up file; a folder refused above has no up file to join.
    for down in downs {
        if let Some((up, slot)) = ups.get_mut(&down.digits) {
            if up.origin == down.origin {
                *slot = Some(down);
            }
        }
    }
    let mut by_number: BTreeMap<i64, &Found> = BTreeMap::new();
    for (up, _) in ups.values() {
        if let Some(first) = by_number.get(&up.version) {
            errors.push(duplicate_folder(first, up));
        } else {
            by_number.insert(up.version, up);
        }
    }
    ups.into_values()
        .map(|(up, down)| Migration {
            version: up.version,
            name: up.name.into(),
            up: up.script,
            down: down.map(|down| down.script),
        })
        .collect()
}

fn duplicate_folder(first: &Found, second: &Found) -> ResolveError {
    ResolveError::DuplicateVersion {
        version: second.version,
        first: first.origin.clone(),
        second: second.origin.clone(),
    }
}

/// Every file the migrations were read from, and each diesel folder's `metadata.toml`.
fn found_files(migrations: &[Migration], listing: &Listing, layout: Layout) -> Vec<String> {
    let mut files: Vec<String> = migrations
        .iter()
        .flat_map(|m| std::iter::once(&m.up).chain(m.down.as_ref()))
        .map(|script| script.file.to_string())
        .collect();
    if layout == Layout::Diesel {
        let metadata = listing.folders.iter().filter(|f| f.path.join(DIESEL_METADATA).is_file());
        files.extend(metadata.map(|f| format!("{}/{DIESEL_METADATA}", f.shown)));
    }
    files
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

/// Whether a script with no SQL is refused (ours, and diesel's `up.sql`) or allowed (diesel's `down.sql`, which
/// diesel lets be empty: reverting runs nothing).
#[derive(Clone, Copy, PartialEq)]
enum Emptiness {
    Refused,
    Allowed,
}

fn read_script(path: &Path, file: String, layout: Layout, emptiness: Emptiness) -> Result<Script, ResolveError> {
    let bytes = fs::read(path).map_err(|e| unreadable(&file, &e))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Err(ResolveError::NotUtf8 { file, offset: e.utf8_error().valid_up_to() }),
    };
    let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let refuse_empty = emptiness == Emptiness::Refused;
    if refuse_empty && body.trim().is_empty() {
        return Err(ResolveError::Empty { file });
    }
    for (index, line) in body.lines().enumerate() {
        let allowed = (index == 0 && is_marker_line(line)) || allow_marker_rules(line).is_some_and(|r| !r.is_empty());
        if looks_like_marker(line) && !allowed {
            return Err(ResolveError::MisplacedMarker { file, line: index + 1, text: line.trim().to_owned() });
        }
    }
    if refuse_empty && body.lines().skip_while(|l| is_marker_line(l)).all(|l| l.trim().is_empty()) {
        return Err(ResolveError::Empty { file });
    }
    if is_unwritten_template(body) {
        return Err(ResolveError::Unwritten { file });
    }
    let tool_marker = layout.no_transaction_marker().is_some_and(|marker| body.starts_with(marker));
    let mut script = Script::new(file, text);
    script.no_transaction |= tool_marker;
    Ok(script)
}

/// A file that holds a revision template's placeholder and nothing else but comments: an empty migration that would
/// be applied, recorded, and then edited into drift.
fn is_unwritten_template(body: &str) -> bool {
    let mut placeholder = false;
    for line in body.lines().map(str::trim) {
        if REVISION_PLACEHOLDERS.contains(&line) {
            placeholder = true;
        } else if !(line.is_empty() || line.starts_with("--")) {
            return false;
        }
    }
    placeholder
}

/// The placeholder lines `revision` writes into a new up and down file.
pub const REVISION_PLACEHOLDERS: [&str; 2] = ["-- Write the migration here.", "-- Write what undoes it here."];

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_revision_template_not_written_into_is_refused() {
        assert!(is_unwritten_template("-- add user preferences\n-- Write the migration here.\n"));
        assert!(is_unwritten_template("-- Write what undoes it here.\n\n"));
        assert!(!is_unwritten_template("-- Write the migration here.\nCREATE TABLE t (id int);\n"));
        assert!(!is_unwritten_template("-- just a comment\nSELECT 1;\n"));
    }

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
                let path = root.join("migrations").join(name);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            Fixture(root)
        }

        fn resolve(&self) -> Result<Vec<Migration>, Vec<ResolveError>> {
            resolve_folder(&self.0, "migrations")
        }

        fn layout(&self) -> Layout {
            resolve(&self.0, "migrations").unwrap().layout
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
            ("3_three.sql", b"SELECT 3;"),
            ("README.md", b"not a migration"),
            ("seeds/1_seed.up.sql", b"not read: sub-folders of a flat folder are not migrations"),
        ]);
        let migrations = fixture.resolve().unwrap();
        let versions: Vec<i64> = migrations.iter().map(|m| m.version).collect();
        assert_eq!(versions, [2, 3, 10]);
        assert_eq!(migrations[0].down.as_ref().unwrap().file, "migrations/2_two.down.sql");
        assert!(migrations[1].down.is_none());
        assert_eq!(migrations[1].name, "three");
        assert_eq!(fixture.layout(), Layout::Flat);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let fixture = Fixture::new(&[
            ("1_a.up.sql", b"SELECT 1;"),
            ("1_b.up.sql", b"SELECT 1;"),
            ("2_orphan.down.sql", b"SELECT 2;"),
            ("3_empty.up.sql", b"  \n"),
            ("4_latin1.up.sql", b"SELECT '\xe9';"),
            ("5-bad.sql", b"SELECT 5;"),
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
                ResolveError::BadFileName { file: "migrations/5-bad.sql".into(), source: FileNameError::NoPattern },
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

    fn versions(migrations: &[Migration]) -> Vec<i64> {
        migrations.iter().map(|m| m.version).collect()
    }

    #[test]
    fn sqlx_simple_and_reversible_files_and_its_no_transaction_marker() {
        let fixture = Fixture::new(&[
            ("20240101000000_users.sql", b"CREATE TABLE users (id int);"),
            ("20240102000000_idx.sql", b"-- no-transaction\nCREATE INDEX CONCURRENTLY i ON users (id);"),
            ("20240103000000_orders.up.sql", b"CREATE TABLE orders (id int);"),
            ("20240103000000_orders.down.sql", b"-- no-transaction\nDROP TABLE orders;"),
            ("20240104000000_bom.sql", b"\xef\xbb\xbf-- no-transaction\nSELECT 1;"),
            ("20240105000000_late.sql", b"SELECT 1;\n-- no-transaction\n"),
        ]);
        assert_eq!(fixture.layout(), Layout::Flat);
        let migrations = fixture.resolve().unwrap();
        assert_eq!(
            versions(&migrations),
            [20240101000000, 20240102000000, 20240103000000, 20240104000000, 20240105000000]
        );
        assert_eq!(migrations[0].name, "users");
        let no_transaction: Vec<bool> = migrations.iter().map(|m| m.up.no_transaction).collect();
        // sqlx reads the marker only as the file's first bytes (a BOM aside).
        assert_eq!(no_transaction, [false, true, false, true, false]);
        assert!(migrations[2].down.as_ref().unwrap().no_transaction);
        // A simple and a reversible up file of one version are a duplicate.
        let duplicate = Fixture::new(&[("1_a.sql", b"SELECT 1;"), ("1_a.up.sql", b"SELECT 1;")]);
        assert!(matches!(&duplicate.resolve().unwrap_err()[..], [ResolveError::DuplicateVersion { version: 1, .. }]));
    }

    #[test]
    fn refinery_files_in_numeric_order() {
        let fixture = Fixture::new(&[
            ("V10__ten.sql", b"SELECT 10;"),
            ("V2__two.sql", b"-- migrate:no-transaction\nSELECT 2;"),
            ("V1__one.sql", b"SELECT 1;"),
            ("README.md", b"not a migration"),
        ]);
        assert_eq!(fixture.layout(), Layout::Refinery);
        let migrations = fixture.resolve().unwrap();
        assert_eq!(versions(&migrations), [1, 2, 10]);
        assert_eq!(migrations[2].name, "ten");
        assert_eq!(migrations[2].up.file, "migrations/V10__ten.sql");
        assert!(migrations[1].up.no_transaction);
        // sqlx's marker means nothing to refinery.
        let sqlx_marker = Fixture::new(&[("V1__one.sql", b"-- no-transaction\nSELECT 1;")]);
        assert!(!sqlx_marker.resolve().unwrap()[0].up.no_transaction);
    }

    #[test]
    fn diesel_folders_versions_names_files_and_metadata() {
        let fixture = Fixture::new(&[
            (
                "00000000000000_diesel_initial_setup/up.sql",
                b"CREATE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE sql;",
            ),
            ("00000000000000_diesel_initial_setup/down.sql", b"DROP FUNCTION f();"),
            ("2019-02-26-002946_create_users/up.sql", b"CREATE TABLE users (id int);"),
            ("2019-02-26-002946_create_users/down.sql", b"DROP TABLE users;"),
            ("2019-03-01-000000_idx/up.sql", b"CREATE INDEX CONCURRENTLY i ON users (id);"),
            ("2019-03-01-000000_idx/down.sql", b"DROP INDEX CONCURRENTLY i;"),
            ("2019-03-01-000000_idx/metadata.toml", b"run_in_transaction = false\n"),
            ("2019-03-02-000000_in_tx/up.sql", b"SELECT 1;"),
            ("2019-03-02-000000_in_tx/metadata.toml", b"run_in_transaction = true\nother = 'ignored'\n"),
            ("2019-03-03-000000_Add email to owners/up.sql", b"SELECT 1;"),
            ("2019-03-03-000000_Add email to owners/down.sql", b""),
            ("2019-03-03-000000_Add email to owners/notes.txt", b"ignored"),
            // Ignored, as diesel ignores files at the top of its folder, .sql or not.
            ("README.md", b"ignored"),
            ("data_seed.sql", b"ignored"),
            (".hidden/up.sql", b"ignored"),
        ]);
        let resolved = resolve(&fixture.0, "migrations").unwrap();
        assert_eq!(resolved.layout, Layout::Diesel);
        let migrations = resolved.migrations;
        assert_eq!(versions(&migrations), [0, 20190226002946, 20190301000000, 20190302000000, 20190303000000]);
        assert_eq!(migrations[0].name, "diesel_initial_setup");
        assert_eq!(migrations[1].name, "create_users");
        assert_eq!(migrations[1].up.file, "migrations/2019-02-26-002946_create_users/up.sql");
        assert_eq!(migrations[1].down.as_ref().unwrap().file, "migrations/2019-02-26-002946_create_users/down.sql");
        assert_eq!(migrations[1].up.checksum, crate::Checksum::of("CREATE TABLE users (id int);"));
        // run_in_transaction = false: both scripts run outside a transaction.
        assert!(migrations[2].up.no_transaction && migrations[2].down.as_ref().unwrap().no_transaction);
        assert!(!migrations[3].up.no_transaction && migrations[3].down.is_none());
        assert!(!migrations[1].up.no_transaction);
        // An empty down.sql is allowed, as diesel allows it: reverting runs nothing.
        assert_eq!(migrations[4].name, "Add email to owners");
        assert_eq!(migrations[4].down.as_ref().unwrap().sql, "");
        assert!(resolved.files.contains(&"migrations/2019-03-01-000000_idx/metadata.toml".to_owned()));
        assert!(resolved.files.contains(&"migrations/2019-03-03-000000_Add email to owners/down.sql".to_owned()));
        assert_eq!(resolved.files.len(), 11);
    }

    #[test]
    fn diesel_orders_version_digits_as_text() {
        let up: &[u8] = b"SELECT 1;";
        let fixture = Fixture::new(&[
            ("2027-01-01-000000_later_year_shorter/up.sql", up),
            ("2026-06-03-220228-0000_long/up.sql", up),
            ("2026-05-27-120000-0000_long_twin/up.sql", up),
            ("2026-05-27-120000_short_twin/up.sql", up),
            ("2019-02-26-002946_old/up.sql", up),
        ]);
        let names: Vec<String> = fixture.resolve().unwrap().iter().map(|m| m.name.to_string()).collect();
        // Exactly diesel's order: the digits compared as text, so a shorter version is before its own extension
        // and an 18-digit 2026 is before a 14-digit 2027 (which is numerically smaller).
        assert_eq!(names, ["old", "short_twin", "long_twin", "long", "later_year_shorter"]);
        let versions = versions(&fixture.resolve().unwrap());
        assert_eq!(versions, [20190226002946, 20260527120000, 202605271200000000, 202606032202280000, 20270101000000]);
    }

    #[test]
    fn diesel_problems_are_all_reported() {
        let fixture = Fixture::new(&[
            ("2019-01-01-000000_ok/up.sql", b"SELECT 1;"),
            ("2019-01-01-000000_twin/up.sql", b"SELECT 1;"),
            ("01_a/up.sql", b"SELECT 1;"),
            ("1_b/up.sql", b"SELECT 1;"),
            ("2019-01-02-000000_no_up/down.sql", b"SELECT 1;"),
            ("create_users/up.sql", b"SELECT 1;"),
            ("99999999999999999999_huge/up.sql", b"SELECT 1;"),
            ("2019-01-03-000000_bad_meta/up.sql", b"SELECT 1;"),
            ("2019-01-03-000000_bad_meta/metadata.toml", b"run_in_transaction = \"no\"\n"),
            ("2019-01-04-000000_bad_toml/up.sql", b"SELECT 1;"),
            ("2019-01-04-000000_bad_toml/metadata.toml", b"run_in_transaction = \n"),
            ("2019-01-05-000000_empty_up/up.sql", b"\n"),
        ]);
        let errors = fixture.resolve().unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 8, "{shown:#?}");
        assert!(errors.contains(&ResolveError::DuplicateVersion {
            version: 1,
            first: "migrations/01_a".into(),
            second: "migrations/1_b".into()
        }));
        assert!(errors.contains(&ResolveError::DuplicateVersion {
            version: 20190101000000,
            first: "migrations/2019-01-01-000000_ok".into(),
            second: "migrations/2019-01-01-000000_twin".into()
        }));
        assert!(errors.contains(&ResolveError::MissingUpSql { folder: "migrations/2019-01-02-000000_no_up".into() }));
        assert!(errors.contains(&ResolveError::BadFolderName {
            folder: "migrations/create_users".into(),
            source: FileNameError::NoDieselPattern
        }));
        assert!(errors.contains(&ResolveError::BadFolderName {
            folder: "migrations/99999999999999999999_huge".into(),
            source: FileNameError::VersionTooLong { digits: "99999999999999999999".into() }
        }));
        assert!(errors.contains(&ResolveError::BadMetadata {
            file: "migrations/2019-01-03-000000_bad_meta/metadata.toml".into(),
            reason: "`run_in_transaction` is string, not true or false".into()
        }));
        assert!(
            shown.iter().any(|m| m.starts_with(
                "migrations/2019-01-04-000000_bad_toml/metadata.toml: unreadable diesel metadata: line 1: "
            )),
            "{shown:#?}"
        );
        assert!(errors.contains(&ResolveError::Empty { file: "migrations/2019-01-05-000000_empty_up/up.sql".into() }));
    }

    #[test]
    fn mixed_layouts_name_every_file_of_the_minority() {
        let fixture = Fixture::new(&[
            ("1_a.up.sql", b"SELECT 1;"),
            ("2_b.sql", b"SELECT 2;"),
            ("V3__c.sql", b"SELECT 3;"),
            ("2019-01-01-000000_d/up.sql", b"SELECT 4;"),
        ]);
        assert_eq!(
            fixture.resolve().unwrap_err(),
            vec![
                ResolveError::MixedLayouts {
                    file: "migrations/V3__c.sql".into(),
                    layout: Layout::Refinery,
                    folder_layout: Layout::Flat,
                    example: "migrations/1_a.up.sql".into()
                },
                ResolveError::MixedLayouts {
                    file: "migrations/2019-01-01-000000_d".into(),
                    layout: Layout::Diesel,
                    folder_layout: Layout::Flat,
                    example: "migrations/1_a.up.sql".into()
                },
            ]
        );
        // A flat migration at the top of a diesel folder is a mix too, not silently ignored.
        let in_diesel = Fixture::new(&[
            ("2019-01-01-000000_a/up.sql", b"SELECT 1;"),
            ("2019-01-02-000000_b/up.sql", b"SELECT 1;"),
            ("3_c.up.sql", b"SELECT 1;"),
        ]);
        assert!(matches!(
            &in_diesel.resolve().unwrap_err()[..],
            [ResolveError::MixedLayouts { layout: Layout::Flat, folder_layout: Layout::Diesel, .. }]
        ));
        let message = in_diesel.resolve().unwrap_err()[0].to_string();
        assert_eq!(
            message,
            "migrations/3_c.up.sql: flat migration in a folder of diesel migrations (such as migrations/2019-01-01-000000_a): keep one layout per folder: move it out, or rewrite it as a `{version}_{name}/up.sql` folder"
        );
    }

    #[test]
    fn version_zero_only_in_diesel() {
        let flat = Fixture::new(&[("0_init.up.sql", b"SELECT 1;")]);
        assert_eq!(
            flat.resolve().unwrap_err(),
            vec![ResolveError::BadFileName {
                file: "migrations/0_init.up.sql".into(),
                source: FileNameError::ZeroVersion { version: "0".into() }
            }]
        );
        let refinery = Fixture::new(&[("V0__init.sql", b"SELECT 1;")]);
        assert!(matches!(
            &refinery.resolve().unwrap_err()[..],
            [ResolveError::BadFileName { source: FileNameError::ZeroVersion { .. }, .. }]
        ));
    }
}
