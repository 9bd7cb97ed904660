//! Turn `--schema`, `--schemas`, `--schemas-file` and `--all-schemas` into validated schema names.

use migrate_ops::survey::Catalog;
use migrate_runtime::{InvalidName, SchemaName};

use super::args::SchemaSelection;

/// A selection that could not be turned into schema names.
#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    /// A name that is not a valid schema name.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// The schemas file could not be read.
    #[error("could not read schemas file {path}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Listing the database's schemas failed.
    #[error("could not list the database's schemas")]
    Database(#[source] postgres::Error),
    /// Connecting to list the database's schemas failed.
    #[error("could not connect to list the database's schemas")]
    Connect(#[source] migrate_runtime::ConnectError),
    /// The selection matched nothing.
    #[error("{0} matched no schema")]
    NoMatch(String),
}

/// Does the selection need the database's list of schemas (globs or `--all-schemas`)?
pub(super) fn needs_catalog(selection: &SchemaSelection) -> bool {
    selection.all_schemas || selection.schemas.iter().flatten().any(|p| is_pattern(p))
}

fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?'])
}

/// The schemas to work on, in the order given (globs expand sorted), without duplicates. `existing` lists the
/// database's schemas (all user schemas, and those holding the history table), needed only when
/// [`needs_catalog`] says so.
pub(super) fn select(selection: &SchemaSelection, existing: &Existing) -> Result<Vec<SchemaName>, SelectionError> {
    let mut names: Vec<String> = Vec::new();
    if let Some(schema) = &selection.schema {
        names.push(schema.clone());
    } else if let Some(list) = &selection.schemas {
        for item in list {
            // `--schemas 'dev, prod'`: the space after a comma is not part of a name.
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if is_pattern(item) {
                let matched: Vec<&String> = existing.all.iter().filter(|s| glob_match(item, s)).collect();
                if matched.is_empty() {
                    return Err(SelectionError::NoMatch(format!("pattern {item:?}")));
                }
                names.extend(matched.into_iter().cloned());
            } else {
                names.push(item.trim().to_owned());
            }
        }
    } else if let Some(path) = &selection.schemas_file {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SelectionError::File { path: path.display().to_string(), source })?;
        // One name a line; `#` starts a comment (a schema name with `#` in it is written in `--schemas`); blank
        // lines and the white space around a name are dropped.
        names.extend(
            text.lines()
                .map(|line| line.split('#').next().unwrap_or_default().trim())
                .filter(|line| !line.is_empty())
                .map(str::to_owned),
        );
        if names.is_empty() {
            return Err(SelectionError::NoMatch(format!("schemas file {}", path.display())));
        }
    } else if selection.all_schemas {
        if existing.managed.is_empty() {
            return Err(SelectionError::NoMatch("--all-schemas".to_owned()));
        }
        names.extend(existing.managed.iter().cloned());
    } else {
        names.push(std::env::var("DEFAULT_SCHEMA_NAME").unwrap_or_else(|_| "dev".to_owned()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut schemas = Vec::with_capacity(names.len());
    for name in names {
        if seen.insert(name.clone()) {
            schemas.push(SchemaName::new(&name)?);
        }
    }
    Ok(schemas)
}

/// The database's schemas, when the selection or the command needs them.
#[derive(Debug, Default)]
pub(super) struct Existing {
    /// Every schema but PostgreSQL's own.
    pub all: Vec<String>,
    /// Schemas holding this service's history table, and those whose history table names no service.
    pub managed: Vec<String>,
    /// Of `managed`, those whose history table names no service (created before service names were recorded).
    pub unmarked: Vec<String>,
    /// Schemas holding a history table of the same name that another service owns.
    pub others: Vec<String>,
}

impl Existing {
    /// Sort the database's schemas, as the one catalog query ([`Catalog`]) found them, by who owns their history
    /// table.
    pub(super) fn load(
        client: &mut postgres::Client,
        history_table: &str,
        service: &str,
    ) -> Result<Existing, SelectionError> {
        let catalog = Catalog::read(client, history_table, None).map_err(SelectionError::Database)?;
        let mut existing = Existing::default();
        for found in catalog.schemas() {
            let name = &found.schema;
            if found.has_history {
                match &found.service {
                    Some(owner) if owner == service => existing.managed.push(name.clone()),
                    Some(_) => existing.others.push(name.clone()),
                    None => {
                        existing.managed.push(name.clone());
                        existing.unmarked.push(name.clone());
                    }
                }
            }
            existing.all.push(name.clone());
        }
        Ok(existing)
    }

    /// Whether `schema` exists.
    pub(super) fn has(&self, schema: &str) -> bool {
        self.all.iter().any(|s| s == schema)
    }

    /// The existing schemas nearest to `name` by edit distance (a typo, a transposition), best first, at most
    /// three.
    pub(super) fn nearest(&self, name: &str) -> Vec<String> {
        nearest(name, &self.all)
    }
}

/// The `names` nearest to `name` by edit distance (a typo, a transposition, another case), best first, at most
/// three.
pub(super) fn nearest<S: AsRef<str>>(name: &str, names: &[S]) -> Vec<String> {
    let limit = (name.chars().count() / 3).max(2);
    let mut near: Vec<(usize, &str)> = names
        .iter()
        .map(|s| s.as_ref())
        .map(|s| (edit_distance(&name.to_lowercase(), &s.to_lowercase()).min(edit_distance(name, s)), s))
        .filter(|(d, s)| *d <= limit && *s != name)
        .collect();
    near.sort();
    near.into_iter().take(3).map(|(_, s)| s.to_owned()).collect()
}

/// Edit distance with adjacent transpositions (optimal string alignment): `prdo` is one edit from `prod`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d: Vec<Vec<usize>> = (0..=a.len()).map(|i| vec![i; b.len() + 1]).collect();
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Shell-style match: `*` any run of characters, `?` one character; everything else literal.
pub(super) fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("tenant-*", "tenant-1"));
        assert!(glob_match("tenant-*", "tenant-"));
        assert!(!glob_match("tenant-*", "tenants"));
        assert!(glob_match("t?n*-1", "tenant-1"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("dev", "dev2"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
    }

    #[test]
    fn selection_expands_globs_in_order_and_dedupes() {
        let existing = Existing {
            all: vec!["dev".into(), "prod".into(), "tenant-1".into(), "tenant-2".into()],
            managed: vec!["dev".into()],
            ..Existing::default()
        };
        let selection = SchemaSelection {
            schemas: Some(vec!["prod".into(), "tenant-*".into(), "dev".into(), "prod".into()]),
            ..SchemaSelection::default()
        };
        let names: Vec<String> = select(&selection, &existing).unwrap().iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["prod", "tenant-1", "tenant-2", "dev"]);
        let none = SchemaSelection { schemas: Some(vec!["x-*".into()]), ..SchemaSelection::default() };
        assert!(matches!(select(&none, &existing), Err(SelectionError::NoMatch(_))));
        let bad = SchemaSelection { schema: Some("pg_x".into()), ..SchemaSelection::default() };
        assert!(matches!(select(&bad, &existing), Err(SelectionError::InvalidName(_))));
    }

    #[test]
    fn nearest_names() {
        assert_eq!(edit_distance("prdo", "prod"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("tenant-1", "tenant-12"), 1);
        let existing = Existing {
            all: vec!["dev".into(), "prod".into(), "prod-eu".into(), "tenant-1".into()],
            ..Existing::default()
        };
        assert_eq!(existing.nearest("prdo"), ["prod"]);
        assert_eq!(existing.nearest("tenant1"), ["tenant-1"]);
        assert!(existing.nearest("zzzzzzzz").is_empty());
        assert!(existing.has("prod-eu") && !existing.has("prdo"));
    }
}
