//! What a run says while it waits for another process.

use std::time::Duration;

use crate::error::LockHolder;

/// A run is waiting for another process: for the schema's migration lock, or for the runner of a no-transaction
/// migration. Reported about a second into the wait and then every ten seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The schema.
    pub schema: String,
    /// How long we have waited.
    pub waited: Duration,
    /// The no-transaction migration being run by another process, when that is what we wait for.
    pub running_version: Option<i64>,
    /// Who we wait for, when it could be seen.
    pub holder: Option<LockHolder>,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let holder = self.holder.as_ref().map_or("another process".to_owned(), ToString::to_string);
        match (self.running_version, &self.holder) {
            (Some(version), Some(_)) => {
                write!(f, "schema {:?}: waiting for {holder}, which is running migration {version}", self.schema)?
            }
            // No backend of the runner's is there: it may be gone, and only its lease says otherwise.
            (Some(version), None) => write!(
                f,
                "schema {:?}: migration {version} was claimed by a runner that shows no backend now; waiting for its \
                 claim to expire ({} after its last statement) before taking it over",
                self.schema,
                crate::error::human_duration(crate::compile::history::CLAIM_LEASE)
            )?,
            (None, _) => write!(f, "schema {:?}: waiting for the migration lock held by {holder}", self.schema)?,
        }
        write!(f, " (waited {})", crate::error::human_duration(self.waited))
    }
}

/// The default report of a wait: a warning in the service's log.
pub(crate) fn log_waiting(waiting: &Waiting) {
    tracing::warn!(schema = waiting.schema.as_str(), "{waiting}");
}
