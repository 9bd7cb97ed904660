/// Which way a migration file moves the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `{version}_{name}.up.sql` or refinery's `V{version}__{name}.sql`.
    Up,
    /// `{version}_{name}.down.sql`.
    Down,
}

/// A parsed migration file name.
///
/// Accepted forms: `{version}_{name}.up.sql`, `{version}_{name}.down.sql` and refinery's `V{version}__{name}.sql`.
/// The version is a positive integer (leading zeros allowed, so `0002` is version 2); the name is made of ASCII
/// letters, digits, `_` and `-`.
///
/// ```
/// use migrate_core::{Direction, FileName};
///
/// let refinery = FileName::parse("V12__add_index.sql").unwrap().unwrap();
/// assert_eq!((refinery.version, refinery.name.as_str(), refinery.direction), (12, "add_index", Direction::Up));
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
}

/// Why a `.sql` file name fits no accepted pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileNameError {
    /// No pattern matched at all.
    #[error("expected `{{version}}_{{name}}.up.sql`, `{{version}}_{{name}}.down.sql` or `V{{version}}__{{name}}.sql`")]
    NoPattern,
    /// The version is not a positive integer that fits in a bigint.
    #[error("version `{version}` is not a positive integer below 2^63")]
    BadVersion {
        /// The version text as written.
        version: String,
    },
    /// The name part is empty or holds characters other than ASCII letters, digits, `_` and `-`.
    #[error("name `{name}` must be non-empty ASCII letters, digits, `_` or `-`")]
    BadName {
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
        let (version, name, direction) = if let Some(stem) = stem.strip_suffix(".up") {
            let (version, name) = stem.split_once('_').ok_or(FileNameError::NoPattern)?;
            (version, name, Direction::Up)
        } else if let Some(stem) = stem.strip_suffix(".down") {
            let (version, name) = stem.split_once('_').ok_or(FileNameError::NoPattern)?;
            (version, name, Direction::Down)
        } else if let Some(stem) = stem.strip_prefix('V') {
            let (version, name) = stem.split_once("__").ok_or(FileNameError::NoPattern)?;
            (version, name, Direction::Up)
        } else {
            return Err(FileNameError::NoPattern);
        };
        Ok(Some(FileName { version: parse_version(version)?, name: parse_name(name)?, direction }))
    }
}

fn parse_version(text: &str) -> Result<i64, FileNameError> {
    let bad = || FileNameError::BadVersion { version: text.to_owned() };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<i64>() {
        Ok(version) if version > 0 => Ok(version),
        _ => Err(bad()),
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

    fn parsed(name: &str) -> (i64, String, Direction) {
        let f = FileName::parse(name).unwrap().unwrap();
        (f.version, f.name, f.direction)
    }

    #[test]
    fn accepts_every_pattern() {
        assert_eq!(parsed("1_init.up.sql"), (1, "init".into(), Direction::Up));
        assert_eq!(parsed("0010_add-orders.down.sql"), (10, "add-orders".into(), Direction::Down));
        assert_eq!(parsed("V3__seed_rows.sql"), (3, "seed_rows".into(), Direction::Up));
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
        assert_eq!(FileName::parse("1_init.sql"), Err(FileNameError::NoPattern));
        assert_eq!(FileName::parse("init.up.sql"), Err(FileNameError::NoPattern));
        assert_eq!(FileName::parse("V1_init.sql"), Err(FileNameError::NoPattern));
        assert_eq!(FileName::parse("U1__init.sql"), Err(FileNameError::NoPattern));
    }

    #[test]
    fn rejects_bad_versions_and_names() {
        for version in ["0", "-1", "+1", "1a", "9223372036854775808"] {
            assert_eq!(
                FileName::parse(&format!("{version}_x.up.sql")),
                Err(FileNameError::BadVersion { version: version.into() }),
            );
        }
        assert_eq!(FileName::parse("1_.up.sql"), Err(FileNameError::BadName { name: String::new() }));
        assert_eq!(FileName::parse("1_add users.up.sql"), Err(FileNameError::BadName { name: "add users".into() }));
        assert_eq!(parsed("9223372036854775807_max.up.sql").0, i64::MAX);
    }
}
