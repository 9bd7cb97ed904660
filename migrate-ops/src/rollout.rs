//! Rolling a change out over a fleet in steps: canaries first, then waves. Pure: the waves are a plan value, which
//! the CLI executes (a wave in which a schema failed starts no later wave) and reports.

use migrate_runtime::SchemaName;

/// Which schemas go first, on their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canary {
    /// The first `n` schemas that need work, in the selection's order.
    First(usize),
    /// These schemas (each must be among the selected ones).
    Named(Vec<SchemaName>),
}

impl std::str::FromStr for Canary {
    type Err = String;

    /// `3`, or `tenant-7,tenant-12`.
    fn from_str(text: &str) -> Result<Canary, String> {
        if let Ok(count) = text.trim().parse::<usize>() {
            return match count {
                0 => Err("--canary 0 runs no canary: give a count of at least 1, or schema names".to_owned()),
                n => Ok(Canary::First(n)),
            };
        }
        let names: Result<Vec<SchemaName>, String> = text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| SchemaName::new(name).map_err(|invalid| invalid.to_string()))
            .collect();
        match names? {
            names if names.is_empty() => Err("--canary takes a count or comma-separated schema names".to_owned()),
            names => Ok(Canary::Named(names)),
        }
    }
}

/// What the rollout is: an optional canary, then waves of a size (all at once without one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollout {
    /// Migrated first, on their own.
    pub canary: Option<Canary>,
    /// How many schemas a wave holds after the canary; `None`: all the rest in one.
    pub wave_size: Option<usize>,
}

/// One wave: the indices of its schemas (into the schemas given to [`Rollout::waves`]), and whether it is the canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    /// The schemas, as indices.
    pub schemas: Vec<usize>,
    /// The canary wave.
    pub canary: bool,
}

/// A named canary that is not among the selected schemas.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("canary schema {schema:?} is not among the selected schemas: select it too, or name another")]
pub struct CanaryNotSelected {
    /// The schema.
    pub schema: String,
}

impl Rollout {
    /// The waves over `pending` (indices of the schemas that need work, into `schemas`, in order): the canary,
    /// then the rest in waves of `wave_size`. Every pending schema is in exactly one wave. `schemas` are all the
    /// selected ones, so that a named canary already at head is no error.
    pub fn waves(&self, schemas: &[SchemaName], pending: &[usize]) -> Result<Vec<Wave>, CanaryNotSelected> {
        let canary: Vec<usize> = match &self.canary {
            None => Vec::new(),
            Some(Canary::First(n)) => pending.iter().copied().take(*n).collect(),
            Some(Canary::Named(names)) => {
                if let Some(missing) = names.iter().find(|name| !schemas.contains(name)) {
                    return Err(CanaryNotSelected { schema: missing.to_string() });
                }
                pending.iter().copied().filter(|&i| names.contains(&schemas[i])).collect()
            }
        };
        let rest: Vec<usize> = pending.iter().copied().filter(|i| !canary.contains(i)).collect();
        let mut waves = Vec::new();
        if !canary.is_empty() {
            waves.push(Wave { schemas: canary, canary: true });
        }
        let size = self.wave_size.unwrap_or(rest.len()).max(1);
        waves.extend(rest.chunks(size).map(|chunk| Wave { schemas: chunk.to_vec(), canary: false }));
        Ok(waves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(count: usize) -> Vec<SchemaName> {
        (0..count).map(|i| SchemaName::new(&format!("t{i}")).unwrap()).collect()
    }

    fn shape(waves: &[Wave]) -> Vec<(bool, Vec<usize>)> {
        waves.iter().map(|wave| (wave.canary, wave.schemas.clone())).collect()
    }

    #[test]
    fn a_canary_then_waves_cover_every_pending_schema_once() {
        let schemas = names(10);
        let pending = [0, 2, 3, 5, 6, 7, 9];
        let rollout = Rollout { canary: Some(Canary::First(2)), wave_size: Some(2) };
        let waves = rollout.waves(&schemas, &pending).unwrap();
        assert_eq!(shape(&waves), [(true, vec![0, 2]), (false, vec![3, 5]), (false, vec![6, 7]), (false, vec![9])]);
        let all = Rollout::default().waves(&schemas, &pending).unwrap();
        assert_eq!(shape(&all), [(false, pending.to_vec())]);
    }

    #[test]
    fn named_canaries_must_be_selected_and_go_first_when_they_need_work() {
        let schemas = names(5);
        let named = |list: &str| Rollout { canary: Some(list.parse().unwrap()), wave_size: None };
        let waves = named("t3,t1").waves(&schemas, &[0, 1, 3, 4]).unwrap();
        assert_eq!(shape(&waves), [(true, vec![1, 3]), (false, vec![0, 4])]);
        // t2 is selected but at head already: no canary wave, and no error.
        assert_eq!(shape(&named("t2").waves(&schemas, &[0, 1]).unwrap()), [(false, vec![0, 1])]);
        let error = named("t9").waves(&schemas, &[0]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "canary schema \"t9\" is not among the selected schemas: select it too, or name another"
        );
    }

    #[test]
    fn canary_text() {
        assert_eq!("3".parse::<Canary>(), Ok(Canary::First(3)));
        assert!("0".parse::<Canary>().unwrap_err().contains("at least 1"));
        assert!(" , ".parse::<Canary>().is_err());
        assert!("pg_x".parse::<Canary>().unwrap_err().contains("pg_x"));
    }
}
