//! Operations beyond the boot path, for operators and their tools: many schemas on one server or several
//! ([`Fleet`]), where schemas stand in one catalog query ([`survey`]), status and history of a schema
//! ([`Inspect`]; the last failed run on it, [`LastFailure`]), what a schema *is* against what its migrations build ([`verify_schemas`], [`diff_schemas`]), and
//! new revisions in the source folder ([`write_revision`]).
//!
//! A service that only migrates at boot needs none of this: `migrate-runtime` is the boot path. This crate builds
//! on it (dependencies one way: `migrate-cli` -> `migrate-ops` -> `migrate-runtime` -> `migrate-core`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// An `Error` is returned at most once per schema, after at least one round trip: its size does not matter.
#![allow(clippy::result_large_err)]

mod error;
mod fleet;
mod inspect;
mod last_failure;
mod pool;
mod revision;
mod rollout;
mod stop;
mod structure;
pub mod survey;

pub use error::{Error, StructureError};
pub use fleet::{default_jobs, Fleet, Task};
pub use inspect::{history_of, status_of, EntryState, HistoryEntry, Inspect, SchemaState, SchemaStatus};
pub use last_failure::{read_last_failure, record_failure, LastFailure, FAILURE_PREFIX, RECORD_LOCK_TIMEOUT};
pub use revision::{check_folder_matches, write_revision, write_revision_text, Revision, RevisionError, RevisionText};
pub use rollout::{Canary, CanaryNotSelected, Rollout, Wave};
pub use stop::Stop;
pub use structure::{
    autogenerate, diff, diff_schemas, generate, read_structures, reference_structure, verify_schemas, BadRename,
    Changes, Created, Definition, Desired, Difference, Fingerprint, GenerateError, Generated, Object, ObjectKind,
    ObjectName, Outcome, Qualifier, Rename, Review, ReviewReason, Source, Structure, Template, TemplateError, Trial,
    Unexpressed, Unproven, Verification, OTHER_TOOLS_HISTORY_TABLES, SCHEMA_PLACEHOLDER,
};
pub use survey::{digests_on_workers, has_citus, Catalog, Standing, Surveyed};
