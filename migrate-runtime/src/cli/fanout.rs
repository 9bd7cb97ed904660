//! Run one operation over many schemas on a bounded pool of connections. Each worker owns one connection and takes
//! the next schema from a shared counter; results come back to the caller's thread in completion order, so
//! nothing per schema is kept here beyond what the caller keeps.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::{Error, SchemaName};

/// How to fan out.
pub(super) struct FanOut<'a> {
    pub config: &'a postgres::Config,
    pub jobs: usize,
    pub keep_going: bool,
}

impl FanOut<'_> {
    /// Call `work` for every schema, `on_result` as each finishes. Returns how many schemas were not started
    /// because an earlier one failed (fail-fast).
    pub fn run<T: Send>(
        &self,
        schemas: &[SchemaName],
        work: impl Fn(&mut postgres::Client, &SchemaName) -> Result<T, Error> + Sync,
        mut on_result: impl FnMut(usize, &SchemaName, Result<T, Error>),
    ) -> usize {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let workers = self.jobs.clamp(1, schemas.len().max(1));
        let (sender, receiver) = mpsc::channel::<(usize, Result<T, Error>)>();
        let mut finished = 0;
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let sender = sender.clone();
                let (next, stop, work) = (&next, &stop, &work);
                scope.spawn(move || {
                    let mut client: Option<postgres::Client> = None;
                    while !stop.load(Ordering::SeqCst) {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        let Some(schema) = schemas.get(index) else { break };
                        let result = match &mut client {
                            Some(client) => work(client, schema),
                            None => match self.config.connect(postgres::NoTls) {
                                Ok(connected) => work(client.insert(connected), schema),
                                Err(source) => Err(Error::Database { schema: schema.to_string(), action: "connect to the database", source }),
                            },
                        };
                        // A broken connection is replaced before the next schema.
                        if client.as_ref().is_some_and(|c| c.is_closed()) {
                            client = None;
                        }
                        if result.is_err() && !self.keep_going {
                            stop.store(true, Ordering::SeqCst);
                        }
                        if sender.send((index, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            for (index, result) in receiver {
                finished += 1;
                on_result(index, &schemas[index], result);
            }
        });
        schemas.len() - finished
    }
}

/// Default `--jobs`: two per core (the work is mostly waiting on the server), at most 16.
pub(super) fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2).min(16)
}
