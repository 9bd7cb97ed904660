/// sqlx's marker for a migration that runs outside a transaction: the file's first bytes.
pub const SQLX_NO_TRANSACTION_MARKER: &str = "-- no-transaction";

/// How a migrations folder is laid out: which tool's file rules it follows. The resolver detects it from the
/// folder's contents; every migration of a folder follows one layout.
///
/// ```
/// use migrate_core::Layout;
///
/// assert_eq!(Layout::Diesel.label(), "diesel");
/// assert_eq!(Layout::Refinery.to_string(), "refinery");
/// assert!(Layout::Diesel.orders_versions_as_text());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Layout {
    /// Files at the top of the folder: `{version}_{name}.up.sql` with an optional `{version}_{name}.down.sql`
    /// (this project's and sqlx's reversible form), or sqlx's up-only `{version}_{name}.sql`. Ordered numerically.
    Flat,
    /// refinery's `V{version}__{name}.sql` files, up-only. Ordered numerically.
    Refinery,
    /// One sub-folder per migration, `{version}_{name}/up.sql` with optional `down.sql` and `metadata.toml`, as
    /// diesel writes them. The version is the folder name up to the first `_` with `-` removed; ordered as text,
    /// as diesel orders it.
    Diesel,
}

impl Layout {
    /// Every layout, in the order the resolver prefers them when a folder mixes them.
    pub const ALL: [Layout; 3] = [Layout::Flat, Layout::Refinery, Layout::Diesel];

    /// The layout's short name, used in messages.
    pub fn label(self) -> &'static str {
        match self {
            Layout::Flat => "flat",
            Layout::Refinery => "refinery",
            Layout::Diesel => "diesel",
        }
    }

    /// The shapes of a migration in this layout, for messages.
    pub fn pattern(self) -> &'static str {
        match self {
            Layout::Flat => "`{version}_{name}.up.sql` (and `.down.sql`) or `{version}_{name}.sql`",
            Layout::Refinery => "`V{version}__{name}.sql`",
            Layout::Diesel => "a `{version}_{name}/up.sql` folder",
        }
    }

    /// The first-line marker this layout's tool reads as "run outside a transaction", besides this project's own
    /// [`crate::NO_TRANSACTION_MARKER`] (read in every layout): sqlx's `-- no-transaction`, which sqlx detects as
    /// the text's first bytes. Diesel says it in `metadata.toml` instead; refinery has none here.
    pub fn no_transaction_marker(self) -> Option<&'static str> {
        match self {
            Layout::Flat => Some(SQLX_NO_TRANSACTION_MARKER),
            Layout::Refinery | Layout::Diesel => None,
        }
    }

    /// The layout's tool orders versions as text (diesel) rather than as numbers.
    pub fn orders_versions_as_text(self) -> bool {
        matches!(self, Layout::Diesel)
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}
