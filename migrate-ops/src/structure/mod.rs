//! Structural drift: what a schema *is*, as opposed to what its history table says ran.
//!
//! The history table records which migrations were applied; it cannot tell that someone dropped an index by hand,
//! that a `CREATE INDEX CONCURRENTLY` left an invalid index behind, or that a hot fix replaced a function body in
//! one tenant. This module reads the catalogs of many schemas at once, reduces each schema to a map of object →
//! definition with fingerprints ([`Structure`]), compares two such maps ([`diff`]), builds the structure the binary
//! expects by replaying the embedded migrations in a scratch schema that is rolled back ([`reference_structure`]),
//! and puts it together: [`verify_schemas`] and [`diff_schemas`]. [`generate`] writes the statements that turn one
//! structure into another, and [`autogenerate`] proves them to write a revision.
//!
//! Compared: tables (columns in order, partitioning, row-level security flags, options), columns (type,
//! collation, nullability, default, identity, generation), constraints, indexes (definition and validity), views
//! and materialized views, sequences, enum, composite and range types, domains, functions, procedures and
//! aggregates, triggers (and whether they are enabled), policies, rules, and the comments on all of these. Not
//! compared: the rows in tables (seed data), ownership and grants, statistics objects, extensions, operators and
//! text-search objects, the migrator's own history table, its trigger and its trigger function, and the history
//! tables of other migration tools ([`OTHER_TOOLS_HISTORY_TABLES`]: Alembic's `alembic_version`, sqlx's, diesel's,
//! refinery's, Flyway's).

mod autogenerate;
mod catalog;
mod diff;
mod generate;
mod object;
mod reference;
mod template;
mod verify;

pub use autogenerate::{autogenerate, BadRename, Desired, GenerateError, Generated, Rename, Trial, Unproven};
pub use catalog::{read_structures, OTHER_TOOLS_HISTORY_TABLES};
pub use diff::{diff, Difference};
pub use generate::{generate, Changes, Qualifier, Review, ReviewReason, Unexpressed};
pub use object::{Definition, Fingerprint, Object, ObjectKind, ObjectName, Structure, SCHEMA_PLACEHOLDER};
pub use reference::reference_structure;
pub use template::{Created, Source, Template, TemplateError};
pub use verify::{diff_schemas, verify_schemas, Outcome, Verification};
