use crate::layout::Layout;

/// Which way a migration file moves the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `{version}_{name}.up.sql`, sqlx's `{version}_{name}.sql`, refinery's `V{version}__{name}.sql` or diesel's
    /// `up.sql`.
    Up,
    /// `{version}_{name}.down.sql` or diesel's `down.sql`.
    Down,
}

/// A parsed migration file name, of a file at the top of a migrations folder.
///
/// Accepted forms: `{version}_{name}.up.sql`, `{version}_{name}.down.sql`, sqlx's up-only `{version}_{name}.sql`
/// (all [`Layout::Flat`]) and refinery's `V{version}__{name}.sql` ([`Layout::Refinery`]). The version is a positive
/// integer (leading zeros allowed, so `0002` is version 2); the name is made of ASCII letters, digits, `_` and `-`.
/// Diesel's sub-folders are parsed by [`DieselName`].
///
/// ```
/// use migrate_core::{Direction, FileName, Layout};
///
/// let refinery = FileName::parse("V12__add_index.sql").unwrap().unwrap();
/// assert_eq!((refinery.version, refinery.name.as_str(), refinery.direction), (12, "add_index", Direction::Up));
/// assert_eq!(refinery.layout, Layout::Refinery);
/// let sqlx = FileName::parse("20240101120000_users.sql").unwrap().unwrap();
/// assert_eq!((sqlx.version, sqlx.layout), (20240101120000, Layout::Flat));
/// // Files that are not SQL, and hidden files, are not migrations.
/// assert_eq!(FileName::parse("README.md").unwrap(), None);
/// assert!(FileName::parse("1_add users.up.sql").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    /// The version, which orders the set numerically.
    pub version: i64,
    /// The descriptive part of the name.
    pub name: String,
    /// Up or down.
    pub direction: Direction,
    /// The layout this form of name belongs to.
    pub layout: Layout,
}

/// Why a `.sql` file name, or a diesel migration folder's name, fits no accepted pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileNameError {
    /// No pattern matched at all.
    #[error(
        "expected `{{version}}_{{name}}.up.sql`, `{{version}}_{{name}}.down.sql`, `{{version}}_{{name}}.sql` or `V{{version}}__{{name}}.sql`"
    )]
    NoPattern,
    /// The version is not a positive integer that fits in a bigint.
    #[error("version `{version}` is not a positive integer below 2^63")]
    BadVersion {
        /// The version text as written.
        version: String,
    },
    /// Version 0, which only diesel's layout allows (for its `00000000000000_diesel_initial_setup`).
    #[error("version `{version}` is zero: versions start at 1 (only a diesel folder may hold version 0)")]
    ZeroVersion {
        /// The version text as written.
        version: String,
    },
    /// The name part is empty or holds characters other than ASCII letters, digits, `_` and `-`.
    #[error("name `{name}` must be non-empty ASCII letters, digits, `_` or `-`")]
    BadName {
        /// The name text as written.
        name: String,
    },
    /// A diesel folder name that is not `{version}_{name}` with a version of digits and `-`.
    #[error("expected a diesel folder `{{version}}_{{name}}`, the version made of digits and `-` (`2019-02-26-002946_create_users`)")]
    NoDieselPattern,
    /// A diesel version whose digits do not fit in a bigint.
    #[error("version `{digits}` has too many digits for a bigint (at most 9223372036854775807)")]
    VersionTooLong {
        /// The version's digits, `-` removed.
        digits: String,
    },
    /// A diesel folder's name part is empty or holds control characters.
    #[error("name `{name}` must be non-empty and free of control characters")]
    BadDieselName {
        /// The name text as written.
        name: String,
    },
}

impl FileName {
    /// Parse a file name. `Ok(None)` means the file is not a migration at all (not `.sql`, or hidden) and is
    /// ignored; `Err` means it looks like a migration but fits no pattern.
    pub fn parse(file_name: &str) -> Result<Option<FileName>, FileNameError> {
        if file_name.starts_with('.') {
            return Ok(None);
        }
        let Some(stem) = file_name.strip_suffix(".sql") else {
            return Ok(None);
        };
        let (version, name, direction, layout) = if let Some(stem) = stem.strip_suffix(".up") {
            let (version, name) = stem.split_once('_').ok_or(FileNameError::NoPattern)?;
            (version, name, Direction::Up, Layout::Flat)
        } else if let Some(stem) = stem.strip_suffix(".down") {
            let (version, name) = stem.split_once('_').ok_or(FileNameError::NoPattern)?;
            (version, name, Direction::Down, Layout::Flat)
        } else if let Some(stem) = stem.strip_prefix('V') {
            let (version, name) = stem.split_once("__").ok_or(FileNameError::NoPattern)?;
            (version, name, Direction::Up, Layout::Refinery)
        } else {
            // sqlx's simple (up-only) migration.
            let (version, name) = stem.split_once('_').ok_or(FileNameError::NoPattern)?;
            (version, name, Direction::Up, Layout::Flat)
        };
        Ok(Some(FileName { version: parse_version(version)?, name: parse_name(name)?, direction, layout }))
    }
}

/// A parsed diesel migration folder name, `{version}_{name}`.
///
/// The version is the text before the first `_` with every `-` removed (diesel's rule), so
/// `2019-02-26-002946_create_users` has version digits `20190226002946`. Diesel orders migrations by those digits
/// *as text*; [`DieselName::digits`] keeps them for that, [`DieselName::version`] is the same digits as a number
/// (the history table's key). Version 0 is allowed (`00000000000000_diesel_initial_setup`).
///
/// ```
/// use migrate_core::DieselName;
///
/// let name = DieselName::parse("2026-06-03-220228-0000_add_index").unwrap();
/// assert_eq!((name.digits.as_str(), name.version, name.name.as_str()), ("202606032202280000", 202606032202280000, "add_index"));
/// assert_eq!(DieselName::parse("00000000000000_diesel_initial_setup").unwrap().version, 0);
/// assert!(DieselName::parse("create_users").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DieselName {
    /// The version's digits, `-` removed: diesel's ordering key.
    pub digits: String,
    /// The digits as a number.
    pub version: i64,
    /// The part after the first `_`.
    pub name: String,
}

impl DieselName {
    /// Parse a diesel migration folder's name.
    pub fn parse(folder_name: &str) -> Result<DieselName, FileNameError> {
        let (version, name) = folder_name.split_once('_').ok_or(FileNameError::NoDieselPattern)?;
        let valid_version = version.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        let digits: String = version.chars().filter(|c| *c != '-').collect();
        if !valid_version || digits.is_empty() {
            return Err(FileNameError::NoDieselPattern);
        }
        let version = digits.parse::<i64>().map_err(|_| FileNameError::VersionTooLong { digits: digits.clone() })?;
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(FileNameError::BadDieselName { name: name.to_owned() });
        }
        Ok(DieselName { digits, version, name: name.to_owned() })
    }
}

fn parse_version(text: &str) -> Result<i64, FileNameError> {
    let bad = || FileNameError::BadVersion { version: text.to_owned() };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<i64>() {
        Ok(0) => Err(FileNameError::ZeroVersion { version: text.to_owned() }),
        Ok(version) => Ok(version),
        Err(_) => Err(bad()),
    }
}

fn parse_name(text: &str) -> Result<String, FileNameError> {
    let valid = !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(FileNameError::BadName { name: text.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(name: &str) -> (i64, String, Direction, Layout) {
        let f = FileName::parse(name).unwrap().unwrap();
        (f.version, f.name, f.direction, f.layout)
    }

    #[test]
    fn accepts_every_pattern() {
        assert_eq!(parsed("1_init.up.sql"), (1, "init".into(), Direction::Up, Layout::Flat));
        assert_eq!(parsed("0010_add-orders.down.sql"), (10, "add-orders".into(), Direction::Down, Layout::Flat));
        assert_eq!(parsed("V3__seed_rows.sql"), (3, "seed_rows".into(), Direction::Up, Layout::Refinery));
        assert_eq!(parsed("20240101_users.sql"), (20240101, "users".into(), Direction::Up, Layout::Flat));
        // The first underscore ends the version; later ones belong to the name.
        assert_eq!(parsed("20240101_create_users_table.up.sql").1, "create_users_table");
    }

    #[test]
    fn ignores_files_that_are_not_migrations() {
        for name in ["README.md", ".gitkeep", ".1_x.up.sql", "notes.txt"] {
            assert_eq!(FileName::parse(name), Ok(None), "{name}");
        }
    }

    #[test]
    fn rejects_sql_files_that_fit_no_pattern() {
        assert_eq!(FileName::parse("init.up.sql"), Err(FileNameError::NoPattern));
        assert_eq!(FileName::parse("init.sql"), Err(FileNameError::NoPattern));
        assert_eq!(FileName::parse("V1_init.sql"), Err(FileNameError::NoPattern));
        assert_eq!(FileName::parse("U1__init.sql"), Err(FileNameError::BadVersion { version: "U1".into() }));
    }

    #[test]
    fn rejects_bad_versions_and_names() {
        for version in ["-1", "+1", "1a", "9223372036854775808"] {
            assert_eq!(
                FileName::parse(&format!("{version}_x.up.sql")),
                Err(FileNameError::BadVersion { version: version.into() }),
            );
        }
        for name in ["0_x.up.sql", "000_x.sql", "V0__x.sql"] {
            assert!(matches!(FileName::parse(name), Err(FileNameError::ZeroVersion { .. })), "{name}");
        }
        assert_eq!(FileName::parse("1_.up.sql"), Err(FileNameError::BadName { name: String::new() }));
        assert_eq!(FileName::parse("1_add users.up.sql"), Err(FileNameError::BadName { name: "add users".into() }));
        assert_eq!(parsed("9223372036854775807_max.up.sql").0, i64::MAX);
    }

    #[test]
    fn diesel_folder_names() {
        let name = DieselName::parse("2019-02-26-002946_create_users").unwrap();
        assert_eq!(
            (name.digits.as_str(), name.version, name.name.as_str()),
            ("20190226002946", 20190226002946, "create_users")
        );
        // diesel's names may hold spaces (crates.io has one); only control characters are refused.
        assert_eq!(DieselName::parse("2019-11-15-182353_Add email to owners").unwrap().name, "Add email to owners");
        assert_eq!(DieselName::parse("00000000000000_diesel_initial_setup").unwrap().version, 0);
        assert_eq!(DieselName::parse("9223372036854775807_max").unwrap().version, i64::MAX);
        assert_eq!(
            DieselName::parse("9223372036854775808_x"),
            Err(FileNameError::VersionTooLong { digits: "9223372036854775808".into() })
        );
        for bad in ["create_users", "20190226", "_x", "--_x", "2019.02_x", "v1_x"] {
            assert_eq!(DieselName::parse(bad), Err(FileNameError::NoDieselPattern), "{bad}");
        }
        assert_eq!(DieselName::parse("1_"), Err(FileNameError::BadDieselName { name: String::new() }));
        assert_eq!(DieselName::parse("1_a\tb"), Err(FileNameError::BadDieselName { name: "a\tb".into() }));
    }
}
