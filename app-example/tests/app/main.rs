//! app-example's tests, one binary: the service as a process, its `migrate` CLI, and the seed guides end to end.
//! Shared helpers (the test server, unique schemas, test databases) come from the `integration-tests` library.

mod boot;
mod cli;
mod seed_guides;
