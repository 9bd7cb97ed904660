use std::borrow::Cow;
use std::path::Path;

use migrate_core::{resolve_folder, Migration, ResolveError};

/// An ordered set of migrations: what `embed_migrations!` expands to.
///
/// ```
/// use migrate_runtime::{embed_migrations, MigrationSet};
///
/// static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
/// assert!(MIGRATIONS.head().is_some());
/// assert!(MIGRATIONS.iter().all(|m| m.version > 0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSet {
    migrations: Cow<'static, [Migration]>,
}

impl MigrationSet {
    /// Wrap migrations already ordered by version (what the macro emits).
    #[doc(hidden)]
    pub const fn from_static(migrations: &'static [Migration]) -> MigrationSet {
        MigrationSet { migrations: Cow::Borrowed(migrations) }
    }

    /// Resolve a folder at run time with the same resolver the macro uses at compile time; `folder` is relative
    /// to `crate_root`.
    ///
    /// ```
    /// let set = migrate_runtime::MigrationSet::from_folder(env!("CARGO_MANIFEST_DIR").as_ref(), "../migrations").unwrap();
    /// assert!(!set.is_empty());
    /// ```
    pub fn from_folder(crate_root: &Path, folder: &str) -> Result<MigrationSet, Vec<ResolveError>> {
        Ok(MigrationSet { migrations: Cow::Owned(resolve_folder(crate_root, folder)?) })
    }

    /// Build a set from migrations in any order; duplicates keep the first. Meant for tests and tools.
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
        MigrationSet { migrations: Cow::Owned(migrations) }
    }

    /// The migrations, ordered by version.
    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.migrations.iter()
    }

    /// The migrations as a slice, ordered by version.
    pub fn as_slice(&self) -> &[Migration] {
        &self.migrations
    }

    /// The migration with this version.
    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations.binary_search_by_key(&version, |m| m.version).ok().map(|i| &self.migrations[i])
    }

    /// The newest version, or `None` for an empty set.
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

impl<'a> IntoIterator for &'a MigrationSet {
    type Item = &'a Migration;
    type IntoIter = std::slice::Iter<'a, Migration>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
