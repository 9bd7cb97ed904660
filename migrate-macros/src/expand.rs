//! Resolve the folder with `migrate_core` and turn the result into a `MigrationSet` expression, or into one
//! `compile_error!` per problem plus an empty placeholder set, so the user sees the real errors and no cascade.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use migrate_core::{resolve, Migration, Script};
use proc_macro2::TokenStream;
use quote::quote;
use syn::LitStr;

/// Overrides `CARGO_MANIFEST_DIR` as the base of the folder path. trybuild compiles its cases inside
/// `target/tests/trybuild/`, so compile-fail tests point this at the real test crate (see trybuild issue #202).
const CRATE_ROOT_OVERRIDE: &str = "EMBED_MIGRATIONS_CRATE_ROOT";

pub fn expand(folder: &LitStr) -> TokenStream {
    let Some(crate_root) = crate_root() else {
        return errors_with_placeholder(folder, ["CARGO_MANIFEST_DIR is not set: build with cargo".to_owned()]);
    };
    match resolve(&crate_root, &folder.value()) {
        Ok(resolved) => {
            // Every file read is named to rustc, so cargo rebuilds the crate when one is edited: the scripts through
            // the `include_str!` that embeds them, other files read (diesel's metadata.toml) through an unused
            // `include_bytes!`.
            let scripts: HashSet<&str> = resolved
                .migrations
                .iter()
                .flat_map(|m| std::iter::once(&m.up).chain(&m.down))
                .map(|script| script.file.as_ref())
                .collect();
            let watched = resolved
                .files
                .iter()
                .filter(|file| !scripts.contains(file.as_str()))
                .map(|file| crate_root.join(file).display().to_string());
            let migrations = resolved.migrations.iter().map(|migration| migration_tokens(&crate_root, migration));
            let source_folder = crate_root.join(folder.value()).display().to_string();
            // A `const` item, not a promoted temporary: a constant's `&[...]` is `'static` whatever it holds.
            quote! {{
                #(const _: &[u8] = ::core::include_bytes!(#watched);)*
                const MIGRATIONS: &[::migrate_runtime::Migration] = &[#(#migrations),*];
                ::migrate_runtime::MigrationSet::from_static(MIGRATIONS, #source_folder)
            }}
        }
        Err(errors) => errors_with_placeholder(folder, errors.iter().map(ToString::to_string)),
    }
}

fn crate_root() -> Option<PathBuf> {
    std::env::var_os(CRATE_ROOT_OVERRIDE).or_else(|| std::env::var_os("CARGO_MANIFEST_DIR")).map(PathBuf::from)
}

fn errors_with_placeholder(folder: &LitStr, messages: impl IntoIterator<Item = String>) -> TokenStream {
    let errors = messages.into_iter().map(|message| syn::Error::new(folder.span(), message).to_compile_error());
    quote! {{
        #(#errors)*
        ::migrate_runtime::MigrationSet::from_static(&[], "")
    }}
}

fn migration_tokens(crate_root: &Path, migration: &Migration) -> TokenStream {
    let version = migration.version;
    let name = migration.name.as_ref();
    let up = script_tokens(crate_root, &migration.up);
    let down = match &migration.down {
        Some(down) => {
            let down = script_tokens(crate_root, down);
            quote!(::core::option::Option::Some(#down))
        }
        None => quote!(::core::option::Option::None),
    };
    quote!(::migrate_runtime::Migration::embedded(#version, #name, #up, #down))
}

/// A script as a constant: the SQL through `include_str!` (rustc reads the file, exactly the text the resolver
/// checksummed, and the expansion stays small), the checksum as one byte-string literal, all in one `const fn` call.
fn script_tokens(crate_root: &Path, script: &Script) -> TokenStream {
    let file = script.file.as_ref();
    let path = crate_root.join(file).display().to_string();
    let checksum = proc_macro2::Literal::byte_string(&script.checksum.0);
    let no_transaction = script.no_transaction;
    quote!(::migrate_runtime::Script::embedded(#file, ::core::include_str!(#path), *#checksum, #no_transaction))
}
