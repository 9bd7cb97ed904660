//! app-example's tests, one binary: the service as a process, its `migrate` CLI, the service behind PgBouncer, and
//! the seed guides end to end.
//! Shared helpers (the test server, unique schemas, test databases) come from the `integration-tests` library.

mod adopt;
mod boot;
mod cli;
mod fleet_pooler;
mod generate;
mod last_failure;
mod lock_wait;
mod names;
mod operator;
mod pooler;
mod rollout;
mod seed_guides;
mod template;
