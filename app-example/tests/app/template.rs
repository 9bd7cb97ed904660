//! `upgrade --create --template`, run as the real binary: new tenants built from a template kept at head, then
//! found at head by the run; refusals exit with their code and create nothing.

use integration_tests::{connect, TestSchema};

use crate::cli::{migrate, stderr, stdout};

fn exists(schema: &TestSchema) -> bool {
    connect().query_one("SELECT count(*) = 1 FROM pg_namespace WHERE nspname = $1", &[&schema.name]).unwrap().get(0)
}

#[test]
fn new_tenants_are_built_from_the_template_and_verify_equal() {
    let template = TestSchema::new("cli-tpl");
    stdout(migrate(&["upgrade", "--create", "-s", &template.name]), 0);
    let (a, b) = (TestSchema::new("cli-tpl-a"), TestSchema::new("cli-tpl-b"));
    let schemas = format!("{},{}", a.name, b.name);
    let mut command = migrate(&["upgrade", "--create", "--template", &template.name, "--schemas", &schemas]);
    let output = command.output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{out}\n{err}");
    for schema in [&a, &b] {
        assert!(
            err.contains(&format!(
                "note: {}: created from template {:?} at version 8 (4 table(s); structure and row counts equal to the template's)",
                schema.name, template.name
            )),
            "{err}"
        );
        assert!(out.contains(&format!("{}: already at version 8, nothing to do", schema.name)), "{out}");
    }
    let verified = stdout(migrate(&["verify", "--schemas", &schemas]), 0);
    assert!(
        verified.contains(&format!("{}: equal", a.name)) && verified.contains(&format!("{}: equal", b.name)),
        "{verified}"
    );

    // The same through the environment; a schema that exists is upgraded as usual, not rebuilt.
    let c = TestSchema::new("cli-tpl-c");
    let mut command = migrate(&["upgrade", "--create", "--schemas", &format!("{},{}", a.name, c.name)]);
    command.env("MIGRATE_TEMPLATE_SCHEMA", &template.name);
    let err = stderr(command, 0);
    assert!(err.contains(&format!("note: {}: created from template", c.name)), "{err}");
    assert!(!err.contains(&format!("note: {}: created", a.name)), "{err}");
}

#[test]
fn spares_built_ahead_make_a_new_tenant_a_proven_rename() {
    let template = TestSchema::new("cli-spr");
    stdout(migrate(&["upgrade", "--create", "-s", &template.name]), 0);
    let first = TestSchema::new("cli-spr-a");
    // Handles for the spares, made before them (a handle drops its schema when made, and when dropped).
    let spare = TestSchema::named(format!("{}__spare_0001", template.name));
    let spare_two = TestSchema::named(format!("{}__spare_0002", template.name));
    let err =
        stderr(migrate(&["upgrade", "--create", "--template", &template.name, "--spares", "2", "-s", &first.name]), 0);
    assert!(err.contains(&format!("note: {}: created from template", first.name)), "{err}");
    assert!(err.contains(&format!("built 2 spare(s) of template {:?} (2 wanted)", template.name)), "{err}");
    assert!(exists(&spare) && exists(&spare_two));

    // The first spare was changed by hand: it is skipped (left as it was), the second is renamed.
    connect().batch_execute(&format!("CREATE INDEX stray ON {}.products (name)", spare.quoted())).unwrap();
    let second = TestSchema::new("cli-spr-b");
    let err = stderr(migrate(&["upgrade", "--create", "--template", &template.name, "-s", &second.name]), 0);
    assert!(
        err.contains(&format!(
            "note: {}: created from spare {:?} of template {:?}, renamed at version 8",
            second.name, spare_two.name, template.name
        )),
        "{err}"
    );
    assert!(exists(&spare) && !exists(&spare_two));
    let verified = stdout(migrate(&["verify", "-s", &second.name]), 0);
    assert!(verified.contains(&format!("{}: equal", second.name)), "{verified}");
    // The service at boot, and later runs, see it at head with its history.
    let out = stdout(migrate(&["upgrade", "-s", &second.name]), 0);
    assert!(out.contains("already at version 8"), "{out}");
}

#[test]
fn a_template_that_cannot_serve_is_refused_and_nothing_is_created() {
    let tenant = TestSchema::new("cli-tpl-refused");
    let absent = TestSchema::new("cli-tpl-absent");
    let error = stderr(migrate(&["upgrade", "--create", "--template", &absent.name, "-s", &tenant.name]), 3);
    assert!(error.contains(&format!("template schema {:?} is not migrated", absent.name)), "{error}");
    assert!(!exists(&tenant));
    // --template without --create is a usage error.
    stderr(migrate(&["upgrade", "--template", &absent.name, "-s", &tenant.name]), 2);
}
