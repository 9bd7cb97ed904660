//! How the engine runs: the options a [`Migrator`](crate::Migrator) gathers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::waiting::Waiting;
use crate::compile::history::Timeouts;
use crate::plan::PlanOptions;
use crate::schema::SchemaName;

/// How the engine runs: the history table's name, what the planner accepts, how long to wait for the lock, the
/// session limits for migration SQL, and who hears about waiting.
#[derive(Clone)]
pub(crate) struct EngineOptions {
    pub history_table: String,
    /// Shared schemas after the schema in every migration's `search_path`.
    pub extra_search_path: Vec<SchemaName>,
    pub plan: PlanOptions,
    pub lock_wait: Duration,
    pub timeouts: Timeouts,
    /// How many more times a step that ran out of `lock_timeout` is tried, after a pause that doubles.
    pub lock_retries: u32,
    pub on_wait: Arc<dyn Fn(&Waiting) + Send + Sync>,
    /// Set from outside (a signal handler) to stop: no more waiting, nothing new started.
    pub interrupted: Option<Arc<AtomicBool>>,
    /// The service recorded as the owner of a history table the engine creates.
    pub service: String,
}

impl EngineOptions {
    /// The run was asked to stop.
    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.as_ref().is_some_and(|flag| flag.load(Ordering::SeqCst))
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("history_table", &self.history_table)
            .field("extra_search_path", &self.extra_search_path)
            .field("plan", &self.plan)
            .field("lock_wait", &self.lock_wait)
            .field("timeouts", &self.timeouts)
            .field("lock_retries", &self.lock_retries)
            .finish_non_exhaustive()
    }
}
