//! SIGINT and SIGTERM during a run: the first stops it (the queries in flight are canceled on the server, no new
//! schema is started, and the report says what was done and not started); a second one, or one outside a run,
//! ends the process at once with exit code 130.

use std::sync::{Arc, Mutex, OnceLock};

use migrate_ops::Stop;

/// The run in progress, if any: what a signal stops.
static CURRENT: Mutex<Option<Arc<Stop>>> = Mutex::new(None);

/// A new stop switch for the run that starts now, thrown by SIGINT or SIGTERM.
pub(crate) fn watch() -> Arc<Stop> {
    install();
    let stop = Arc::new(Stop::new());
    if let Ok(mut current) = CURRENT.lock() {
        *current = Some(stop.clone());
    }
    stop
}

/// The run is over: a signal now ends the process.
pub(crate) fn done() {
    if let Ok(mut current) = CURRENT.lock() {
        *current = None;
    }
}

/// The handler, once per process.
fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // A process that cannot take the handler (another one is installed) keeps the default: the signal ends it.
        let _ = ctrlc::set_handler(on_signal);
    });
}

fn on_signal() {
    let current = CURRENT.lock().ok().and_then(|current| current.clone());
    match current {
        Some(stop) if !stop.is_stopped() => {
            eprintln!("interrupted: canceling the queries in flight; no new schema is started (again to quit at once)");
            stop.stop();
        }
        _ => std::process::exit(130),
    }
}
