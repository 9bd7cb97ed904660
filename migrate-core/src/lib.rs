//! Resolve and validate a folder of SQL migrations.
//!
//! This crate is the single code path that turns a migrations folder into a list of [`Migration`]s. The
//! `embed_migrations!` macro calls [`resolve`] at compile time and embeds the result; anything that reads a folder
//! at run time (the tests, tools) calls the same function or [`resolve_folder`], its shorthand, so both agree on
//! versions, names, SQL and checksums.
//!
//! A folder may be laid out as this project's or sqlx's flat files, refinery's `V{n}__` files or diesel's folder
//! per migration; [`resolve`] detects the [`Layout`] and reads the folder by that tool's rules and in its order.
//!
//! ```
//! use migrate_core::{FileName, Direction};
//!
//! let parsed = FileName::parse("0003_add_orders.up.sql").unwrap().unwrap();
//! assert_eq!(parsed.version, 3);
//! assert_eq!(parsed.name, "add_orders");
//! assert_eq!(parsed.direction, Direction::Up);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod build;
mod checksum;
pub mod civil;
mod direction;
mod file_name;
mod layout;
mod migration;
mod resolve;

pub use checksum::{Checksum, ChecksumParseError, CHECKSUM_ALGORITHM};
pub use file_name::{DieselName, Direction, FileName, FileNameError};
pub use layout::{Layout, SQLX_NO_TRANSACTION_MARKER};
pub use migration::{Migration, Script, ALLOW_MARKER, NO_TRANSACTION_MARKER};
pub use resolve::{resolve, resolve_folder, ResolveError, Resolved, REVISION_PLACEHOLDERS};
