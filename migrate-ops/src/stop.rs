//! Stopping a fleet's work from outside, as an operator's Ctrl-C does: nothing new is started, and the queries in
//! flight are canceled on the server (PostgreSQL's cancel request), so no query runs on after the client has gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use migrate_runtime::Database;

/// The stop switch of a fleet's run, and the connections it would cancel: [`Fleet::stop_with`] registers every
/// connection it opens; [`Stop::stop`] (from a signal handler's thread) cancels what they run.
///
/// [`Fleet::stop_with`]: crate::Fleet::stop_with
#[derive(Default)]
pub struct Stop {
    stopped: Arc<AtomicBool>,
    in_flight: Mutex<Vec<(u64, Database, postgres::CancelToken)>>,
    next: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let watched = self.in_flight.lock().map_or(0, |list| list.len());
        f.debug_struct("Stop").field("stopped", &self.is_stopped()).field("watched", &watched).finish()
    }
}

impl Stop {
    /// A switch not yet thrown.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// The flag a [`Migrator`](migrate_runtime::Migrator) watches (`interrupted_by`), set by [`Stop::stop`].
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.stopped.clone()
    }

    /// It was thrown.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Throw it: start nothing new, and cancel every query in flight on the registered connections. Returns how
    /// many cancel requests the servers accepted.
    pub fn stop(&self) -> usize {
        self.stopped.store(true, Ordering::SeqCst);
        let in_flight = self.in_flight.lock().map(|list| list.clone()).unwrap_or_default();
        in_flight.iter().filter(|(_, database, token)| database.cancel(token).is_ok()).count()
    }

    /// Watch a connection until [`Stop::forget`] with the returned key.
    pub(crate) fn watch(&self, database: &Database, client: &postgres::Client) -> u64 {
        let key = self.next.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut list) = self.in_flight.lock() {
            list.push((key, database.clone(), client.cancel_token()));
        }
        key
    }

    /// Stop watching a connection (it is closed, or its worker is done).
    pub(crate) fn forget(&self, key: u64) {
        if let Ok(mut list) = self.in_flight.lock() {
            list.retain(|(k, _, _)| *k != key);
        }
    }
}
