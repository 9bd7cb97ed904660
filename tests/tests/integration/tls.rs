//! TLS against the local server (Debian's cluster runs with `ssl = on` and the snakeoil certificate, issued to
//! `localhost`): `sslmode=require` encrypts, `verify-full` checks the chain and the host name, and a failure to
//! verify is a clear error that never shows the password.

use migrate_runtime::{ConnectError, Database, Migrator, SslMode};

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// The test server's URL with `host` swapped and TLS options appended.
fn url(host: &str, tls: &str) -> String {
    let base: postgres::Config = integration_tests::database_url().parse().unwrap();
    let user = base.get_user().unwrap_or("postgres");
    let password = base.get_password().map(|p| format!(":{}", String::from_utf8_lossy(p))).unwrap_or_default();
    let port = base.get_ports().first().copied().unwrap_or(5432);
    let dbname = base.get_dbname().unwrap_or("postgres");
    format!("postgres://{user}{password}@{host}:{port}/{dbname}?{tls}")
}

fn server_has_tls() -> bool {
    let ssl: String = integration_tests::connect().query_one("SHOW ssl", &[]).unwrap().get(0);
    ssl == "on" && std::path::Path::new(SNAKEOIL).exists()
}

fn encrypted(client: &mut postgres::Client) -> bool {
    client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).unwrap().get(0)
}

#[test]
fn require_encrypts_and_verify_full_checks_chain_and_host() {
    assert!(server_has_tls(), "the test server must run with ssl = on and the snakeoil certificate");
    let required: Database = url("127.0.0.1", "sslmode=require").parse().unwrap();
    assert_eq!(required.ssl_mode(), SslMode::Require);
    assert!(encrypted(&mut required.connect().unwrap()));

    let verified: Database = url("localhost", &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}")).parse().unwrap();
    let mut client = verified.connect().unwrap();
    assert!(encrypted(&mut client));
    // Migrating over the verified connection works like any other.
    let schema = integration_tests::TestSchema::new("tls");
    let set = integration_tests::set(vec![integration_tests::migration(1, "t", "CREATE TABLE t (id int);", None)]);
    assert_eq!(Migrator::new(&set).migrate(&mut client, &schema.name).unwrap().steps.len(), 1);

    let disabled: Database = url("127.0.0.1", "sslmode=disable").parse().unwrap();
    assert!(!encrypted(&mut disabled.connect().unwrap()));
}

#[test]
fn verification_failures_are_clear_and_never_show_the_password() {
    assert!(server_has_tls());
    // Trust authentication ignores the password; it is there to be kept out of every message.
    let with_secret = |host: &str, tls: &str| {
        let base: postgres::Config = integration_tests::database_url().parse().unwrap();
        let port = base.get_ports().first().copied().unwrap_or(5432);
        format!(
            "postgres://{}:tls-s3cret@{host}:{port}/{}?{tls}",
            base.get_user().unwrap_or("postgres"),
            base.get_dbname().unwrap_or("postgres")
        )
    };
    // The certificate names localhost, not 127.0.0.1.
    let wrong_host: Database =
        with_secret("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}")).parse().unwrap();
    // Another CA given as the only root: the server's certificate does not chain to it.
    let other_ca = other_ca_file();
    let untrusted: Database =
        with_secret("localhost", &format!("sslmode=verify-ca&sslrootcert={}", other_ca.display())).parse().unwrap();
    let missing_root: Database =
        with_secret("localhost", "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem").parse().unwrap();
    // A handshake the server's certificate fails is the driver's error; a root file that cannot be read fails
    // while setting up TLS, before any connection.
    for (database, expected, during_setup) in [
        (wrong_host, "certificate", false),
        (untrusted, "certificate", false),
        (missing_root, "/nonexistent/ca.pem", true),
    ] {
        let error = database.connect().map(|_| ()).unwrap_err();
        let message = integration_tests::chain(&error);
        assert_eq!(matches!(error, ConnectError::Setup(_)), during_setup, "{message}");
        assert!(message.to_lowercase().contains(expected), "{message}");
        assert!(
            !message.contains("tls-s3cret") && !format!("{database:?} {database}").contains("tls-s3cret"),
            "{message}"
        );
    }
    std::fs::remove_file(other_ca).unwrap();
}

/// A self-signed CA certificate that signed nothing the server has, as a PEM file.
fn other_ca_file() -> std::path::PathBuf {
    use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509::X509NameBuilder, x509::X509};
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "Some Other CA").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let path = std::env::temp_dir().join(format!("other-ca-{}.pem", std::process::id()));
    std::fs::write(&path, cert.build().to_pem().unwrap()).unwrap();
    path
}
