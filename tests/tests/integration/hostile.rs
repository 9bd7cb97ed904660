//! Hostile input: whatever a user types as a schema name, target or file name is either used exactly as given or
//! refused with a clear error; it never reaches SQL unquoted, is never truncated or case-folded, and never panics.

use crate::probe;
use integration_tests::{connect, migration, set, tables, TestSchema};
use migrate_runtime::{Migrator, NameProblem, SchemaName, Target};
use proptest::prelude::*;

fn quoted_round_trip(quoted: &str) -> String {
    // Undo quote_ident: strip the outer quotes, un-double the inner ones.
    quoted[1..quoted.len() - 1].replace("\"\"", "\"")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn schema_names_are_kept_exactly_or_refused_for_a_stated_reason(name in "\\PC{0,70}|[a-z\"'; \\n\\t$-]{0,70}") {
        match SchemaName::new(&name) {
            Ok(schema) => {
                prop_assert_eq!(schema.as_str(), name.as_str());
                prop_assert!(name.len() <= 63 && !name.is_empty());
                prop_assert!(!name.chars().any(char::is_control));
                prop_assert!(!name.to_ascii_lowercase().starts_with("pg_"));
                prop_assert_eq!(quoted_round_trip(&schema.quoted()), name.clone());
            }
            Err(error) => {
                let expected = match error.problem {
                    NameProblem::Empty => name.is_empty(),
                    NameProblem::TooLong(n) => n == name.len() && n > 63,
                    NameProblem::ReservedPrefix => name.to_ascii_lowercase().starts_with("pg_"),
                    NameProblem::Reserved => name.eq_ignore_ascii_case("information_schema"),
                    NameProblem::ControlCharacter => name.chars().any(char::is_control),
                    NameProblem::SurroundingWhitespace => name.trim() != name,
                    _ => false,
                };
                prop_assert!(expected, "{} for {:?}", error, name);
                prop_assert!(error.to_string().starts_with("invalid schema name"));
            }
        }
    }

    #[test]
    fn targets_parse_to_what_they_print_or_are_refused(text in "\\PC{0,24}|[+-]?[0-9]{1,20}|head|base") {
        match text.parse::<Target>() {
            Ok(target) => {
                let printed = target.to_string();
                prop_assert_eq!(printed.parse::<Target>().ok(), Some(target));
                prop_assert!(!matches!(target, Target::Version(v) | Target::Relative(v) if v == 0));
            }
            Err(error) => {
                let quoted = format!("{:?}", text);
                prop_assert!(error.to_string().contains(&quoted));
            }
        }
    }

    #[test]
    fn file_names_parse_consistently(name in "\\PC{0,40}|[0-9]{1,20}_[a-z_-]{0,10}\\.(up|down)\\.sql|V[0-9]{1,5}__[a-z]{1,8}\\.sql") {
        if let Ok(Some(parsed)) = migrate_runtime::FileName::parse(&name) {
            prop_assert!(parsed.version > 0);
            let rebuilt = match parsed.direction {
                migrate_runtime::Direction::Up => format!("{}_{}.up.sql", parsed.version, parsed.name),
                migrate_runtime::Direction::Down => format!("{}_{}.down.sql", parsed.version, parsed.name),
            };
            // Rebuilt in the flat form, so the layout may differ (refinery's and sqlx's forms); the rest may not.
            let again = migrate_runtime::FileName::parse(&rebuilt).unwrap().unwrap();
            let kept = (parsed.version, parsed.name, parsed.direction);
            prop_assert_eq!((again.version, again.name, again.direction), kept);
        }
    }
}

/// Names PostgreSQL can keep, used exactly: the catalog holds each name as typed and nothing leaks elsewhere.
#[test]
fn hostile_but_valid_names_are_used_exactly_as_given() {
    let pid = std::process::id();
    let names = [
        format!("quote\"{pid}"),
        format!("apos'trophe;{pid}"),
        format!("semi;colon; DROP SCHEMA public CASCADE; --{pid}"),
        format!("spaces in name {pid}"),
        format!("ünïcødé-名前-{pid}"),
        format!("Mixed-Case-{pid}"),
        format!("dollar$$quote{pid}"),
        format!("back\\slash{pid}"),
        {
            let prefix = format!("max{pid}-");
            format!("{prefix}{}", "x".repeat(63 - prefix.len()))
        },
    ];
    let migrations = set(vec![migration(1, "t", "CREATE TABLE t (id int);", None)]);
    let mut client = connect();
    for name in names {
        assert!(name.len() <= 63, "{name}");
        let schema = TestSchema::named(name.clone());
        Migrator::new(&migrations).migrate(&mut client, &name).unwrap();
        assert_eq!(tables(&mut client, &name), ["schema_migrations", "t"], "{name:?}");
        assert!(client.query_one("SELECT to_regclass('public.t') IS NULL", &[]).unwrap().get::<_, bool>(0));
        assert!(client
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public')", &[])
            .unwrap()
            .get::<_, bool>(0));
        drop(schema);
    }
}

/// Names PostgreSQL could not keep as typed are refused, through the real binary, with exit code 2.
#[test]
fn names_and_flags_that_cannot_be_kept_are_refused_by_the_cli() {
    let cases: [(&str, &str); 8] = [
        ("", "it is empty"),
        (&"x".repeat(64), "it is 64 bytes long"),
        ("pg_toast", "the prefix `pg_` is reserved"),
        ("PG_Admin", "the prefix `pg_` is reserved"),
        ("information_schema", "it is a reserved system schema"),
        ("new\nline", "it contains a control character"),
        ("nul\0byte", "it contains a control character"),
        (" padded", "it starts or ends with white space"),
    ];
    for (name, reason) in cases {
        // A NUL cannot travel in a process argument: hand it over through a schemas file instead.
        let file = integration_tests::SchemasFile::new(&[name.to_owned()]);
        let args: Vec<&str> = if name.contains('\0') {
            vec!["status", "--schemas-file", file.path()]
        } else {
            vec!["status", "--schema", name]
        };
        let output = probe(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name:?}: {stderr}");
        assert!(stderr.contains(reason), "{name:?}: {stderr}");
    }
    for (args, message) in [
        (vec!["upgrade", "-s", "dev", "--target", "-1"], "cannot upgrade to `-1`"),
        (vec!["upgrade", "-s", "dev", "--target", "1e3"], "invalid target \"1e3\""),
        (vec!["downgrade", "-s", "dev", "--target", "head"], "cannot downgrade to `head`"),
        (vec!["upgrade", "-s", "dev", "--jobs", "0"], "--jobs"),
        (vec!["upgrade", "-s", "dev", "--format", "yaml"], "--format"),
        (vec!["upgrade", "-s", "dev", "--lock-timeout=-5s"], "invalid duration"),
    ] {
        let output = probe(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// A password in the connection string never shows in errors or output.
#[test]
fn passwords_never_appear_in_errors_or_output() {
    let secret = "s3cr3t-Pa55word";
    for url in [
        format!("postgres://postgres:{secret}@127.0.0.1:1/postgres"),
        format!("postgres://nobody_{}:{secret}@127.0.0.1:5432/postgres", std::process::id()),
        format!("postgres://postgres:{secret}@127.0.0.1:5432/postgres?sslmode=bogus"),
    ] {
        for args in [
            vec!["status", "-s", "dev"],
            vec!["upgrade", "--all-schemas"],
            vec!["upgrade", "-s", "a", "--format", "json"],
        ] {
            let output = probe(&args).env("DATABASE_URL", &url).output().unwrap();
            let text =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            assert_ne!(output.status.code(), Some(0), "{args:?} {text}");
            assert!(!text.contains(secret), "{args:?} leaked the password: {text}");
        }
    }
}
