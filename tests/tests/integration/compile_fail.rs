//! Compile-time checks of `embed_migrations!`: each rejected migrations folder in `ui/` must fail to build with
//! exactly the errors recorded in its `.stderr`, and a valid folder must build and embed the right migrations.

#[test]
fn embed_migrations_ui() {
    // trybuild builds the cases in a scratch crate under target/, so point the macro back at this crate, where
    // the `ui/migrations_*` fixture folders live.
    std::env::set_var("EMBED_MIGRATIONS_CRATE_ROOT", env!("CARGO_MANIFEST_DIR"));
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    t.pass("ui/pass/*.rs");
}
