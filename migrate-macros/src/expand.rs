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

/// The macro's input: the folder, then optionally `lint_since = VERSION` (files of older versions, which ran
/// everywhere already, are not linted).
pub struct Input {
    folder: LitStr,
    lint_since: Option<i64>,
}

impl syn::parse::Parse for Input {
    fn parse(input: syn::parse::ParseStream) -> syn::Result<Input> {
        let folder: LitStr = input.parse()?;
        let mut lint_since = None;
        if input.parse::<Option<syn::Token![,]>>()?.is_some() && !input.is_empty() {
            let key: syn::Ident = input.parse()?;
            if key != "lint_since" {
                return Err(syn::Error::new(key.span(), "expected `lint_since = VERSION` after the folder"));
            }
            input.parse::<syn::Token![=]>()?;
            lint_since = Some(input.parse::<syn::LitInt>()?.base10_parse()?);
            input.parse::<Option<syn::Token![,]>>()?;
        }
        Ok(Input { folder, lint_since })
    }
}

pub fn expand(input: &Input) -> TokenStream {
    let folder = &input.folder;
    let Some(crate_root) = crate_root() else {
        return errors_with_placeholder(folder, ["CARGO_MANIFEST_DIR is not set: build with cargo".to_owned()]);
    };
    match resolve(&crate_root, &folder.value()) {
        Ok(resolved) => {
            let problems = lint(&resolved.migrations, input.lint_since);
            if !problems.is_empty() {
                return errors_with_placeholder(folder, problems);
            }
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

/// The lint's findings on the up files of `migrations` from `since` on, as messages.
#[cfg(feature = "lint")]
fn lint(migrations: &[Migration], since: Option<i64>) -> Vec<String> {
    migrations
        .iter()
        .filter(|migration| since.is_none_or(|since| migration.version >= since))
        .flat_map(|migration| migrate_lint::lint(&migration.up))
        .map(|problem| problem.to_string())
        .collect()
}

#[cfg(not(feature = "lint"))]
fn lint(_: &[Migration], _: Option<i64>) -> Vec<String> {
    Vec::new()
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
