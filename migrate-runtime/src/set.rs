use std::borrow::Cow;
use std::path::Path;

use migrate_core::{resolve_folder, Migration, ResolveError};

/// An ordered set of migrations: what `embed_migrations!` expands to.
///
/// The order is the folder layout's (see `migrate_core::Layout`): numeric for flat and refinery folders, diesel's
/// text order of the version digits for a diesel folder, where it can differ from numeric order
/// (`202605271200000000` before `20270101000000`). Compare migrations by [`MigrationSet::position`], not by version.
///
/// ```
/// use migrate_runtime::{embed_migrations, MigrationSet};
///
/// static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
/// assert!(MIGRATIONS.head().is_some());
/// assert!(MIGRATIONS.iter().all(|m| m.version > 0));
/// ```
#[derive(Debug, Clone)]
pub struct MigrationSet {
    migrations: Cow<'static, [Migration]>,
    source_folder: Option<Cow<'static, str>>,
}

impl MigrationSet {
    /// Wrap migrations already in their layout's order, kept as given, and the absolute path of the folder they
    /// came from (what the macro emits).
    #[doc(hidden)]
    pub const fn from_static(migrations: &'static [Migration], source_folder: &'static str) -> MigrationSet {
        MigrationSet { migrations: Cow::Borrowed(migrations), source_folder: Some(Cow::Borrowed(source_folder)) }
    }

    /// The absolute path of the folder the set was built from, on the machine that built it. `revision` writes
    /// there; on a deployed machine the folder is usually absent.
    pub fn source_folder(&self) -> Option<&Path> {
        self.source_folder.as_deref().map(Path::new)
    }

    /// Resolve a folder at run time with the same resolver the macro uses at compile time; `folder` is relative
    /// to `crate_root`.
    ///
    /// ```
    /// let set = migrate_runtime::MigrationSet::from_folder(env!("CARGO_MANIFEST_DIR").as_ref(), "../migrations").unwrap();
    /// assert!(!set.is_empty());
    /// ```
    pub fn from_folder(crate_root: &Path, folder: &str) -> Result<MigrationSet, Vec<ResolveError>> {
        let migrations = resolve_folder(crate_root, folder)?;
        let source_folder = crate_root.join(folder).display().to_string();
        Ok(MigrationSet { migrations: Cow::Owned(migrations), source_folder: Some(Cow::Owned(source_folder)) })
    }

    /// Build a set from migrations in any order, sorted by version *numerically*; duplicates keep the first. Meant
    /// for tests and tools; a diesel folder's text order comes only from [`MigrationSet::from_folder`] or the macro.
    ///
    /// ```
    /// use migrate_runtime::{Migration, MigrationSet, Script};
    ///
    /// let m = |v: i64| Migration { version: v, name: "m".into(), up: Script::new("m.up.sql", "SELECT 1"), down: None };
    /// let set = MigrationSet::from_migrations(vec![m(10), m(2)]);
    /// assert_eq!(set.head(), Some(10));
    /// ```
    pub fn from_migrations(mut migrations: Vec<Migration>) -> MigrationSet {
        migrations.sort_by_key(|m| m.version);
        migrations.dedup_by_key(|m| m.version);
        MigrationSet { migrations: Cow::Owned(migrations), source_folder: None }
    }

    /// Build a set from migrations already in the order they run (the resolver's order: numeric for most layouts,
    /// as strings for diesel's); duplicates keep the first.
    pub fn from_ordered(migrations: Vec<Migration>) -> MigrationSet {
        let mut seen = std::collections::HashSet::new();
        let migrations = migrations.into_iter().filter(|m| seen.insert(m.version)).collect();
        MigrationSet { migrations: Cow::Owned(migrations), source_folder: None }
    }

    /// The migrations, in the order they run.
    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.migrations.iter()
    }

    /// The migrations as a slice, in the order they run.
    pub fn as_slice(&self) -> &[Migration] {
        &self.migrations
    }

    /// The migration with this version.
    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.position(version).map(|i| &self.migrations[i])
    }

    /// Where the migration with this version stands in the set's order (0 for the first), or `None` when the set
    /// lacks it. The planner compares migrations by this, since a diesel set is not in numeric order.
    ///
    /// ```
    /// use migrate_runtime::{Migration, MigrationSet, Script};
    ///
    /// let m = |v: i64| Migration { version: v, name: "m".into(), up: Script::new("m.up.sql", "SELECT 1"), down: None };
    /// let set = MigrationSet::from_migrations(vec![m(10), m(2)]);
    /// assert_eq!((set.position(2), set.position(10), set.position(3)), (Some(0), Some(1), None));
    /// ```
    pub fn position(&self, version: i64) -> Option<usize> {
        // Most sets are ordered numerically, where a binary search finds it; a set ordered otherwise (diesel's
        // string order) is searched in full when the binary search misses.
        match self.migrations.binary_search_by_key(&version, |m| m.version) {
            Ok(i) => Some(i),
            Err(_) => self.migrations.iter().position(|m| m.version == version),
        }
    }

    /// Where a version sorts: by the set's order, then versions the set lacks (applied by a newer binary), after
    /// all of the set's and numerically among themselves. Versions are never ordered by their numbers alone.
    pub fn order_key(&self, version: i64) -> (usize, i64) {
        (self.position(version).unwrap_or(usize::MAX), version)
    }

    /// The newest of `versions` in the set's order.
    pub fn newest(&self, versions: impl IntoIterator<Item = i64>) -> Option<i64> {
        versions.into_iter().max_by_key(|&v| self.order_key(v))
    }

    /// The last version in the set's order, or `None` for an empty set.
    pub fn head(&self) -> Option<i64> {
        self.migrations.last().map(|m| m.version)
    }

    /// Number of migrations.
    pub fn len(&self) -> usize {
        self.migrations.len()
    }

    /// The set has no migrations.
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }
}

/// Two sets are equal when their migrations are; where they were read from does not matter.
impl PartialEq for MigrationSet {
    fn eq(&self, other: &Self) -> bool {
        self.migrations == other.migrations
    }
}

impl Eq for MigrationSet {}

impl<'a> IntoIterator for &'a MigrationSet {
    type Item = &'a Migration;
    type IntoIter = std::slice::Iter<'a, Migration>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
