//! The `embed_migrations!` proc macro. Use it through `migrate_runtime::embed_migrations!`, which documents it;
//! this crate only parses the macro input and hands it to [`expand`](crate::expand).
#![forbid(unsafe_code)]

mod expand;

/// Embed a folder of SQL migrations into the binary, checked at compile time.
///
/// See `migrate_runtime::embed_migrations!` for the full documentation.
#[proc_macro]
pub fn embed_migrations(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as expand::Input);
    expand::expand(&input).into()
}
