//! Connection strings with libpq's TLS modes. tokio-postgres knows `sslmode` `disable`, `prefer` and `require`
//! and leaves certificate checks to the connector; operators write `sslmode=verify-full` and `sslrootcert=...` as
//! they would for psql. This module reads those, hands the rest to the driver, and builds only the connector a
//! connection needs: none for `disable` or a Unix socket; for `prefer` and `require`, an OpenSSL context that
//! checks nothing and so reads no trust store (reading the system's, every CA certificate parsed, costs tens of
//! milliseconds, most of a short CLI run); for the verifying modes, native-tls with the trust roots, once per process.

use std::fmt;
use std::str::FromStr;

/// How a connection is secured, as libpq's `sslmode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, without certificate checks (libpq's default).
    Prefer,
    /// TLS, without certificate checks (with `sslrootcert`, the chain is checked as for `verify-ca`).
    Require,
    /// TLS, certificate chain checked against the trusted roots: `sslrootcert` alone when given (as in libpq),
    /// the system's trust store otherwise.
    VerifyCa,
    /// TLS, certificate chain and host name checked.
    VerifyFull,
}

/// A database to connect to: the driver's configuration and how to secure the connection.
///
/// ```
/// use migrate_runtime::{Database, SslMode};
///
/// let db: Database = "postgres://app:secret@db.internal:5432/main?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem".parse().unwrap();
/// assert_eq!(db.ssl_mode(), SslMode::VerifyFull);
/// assert_eq!(db.to_string(), "db.internal:5432/main"); // never the password
/// assert!("host=localhost sslmode=sometimes".parse::<Database>().is_err());
/// ```
#[derive(Clone)]
pub struct Database {
    config: postgres::Config,
    ssl_mode: SslMode,
    root_cert: Option<String>,
}

/// A connection string that could not be used. The message never repeats the string, which may hold a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseError {
    /// The driver refused the connection string. Its own message is not kept: it may quote the string, password
    /// and all.
    #[error(
        "not a valid connection string: expected postgres://user:password@host:port/database?option=value or \
         key=value pairs such as host=... user=... dbname=..."
    )]
    Invalid,
    /// An `sslmode` libpq does not know.
    #[error("sslmode {0:?} is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    /// `sslrootcert` could not be read or parsed.
    #[error("sslrootcert {path}: {reason}")]
    RootCert {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// TLS was asked for but this build has no TLS support.
    #[error("sslmode {0:?} needs TLS, and this binary was built without the `tls` feature")]
    NoTls(String),
    /// Setting up TLS failed.
    #[error("could not set up TLS: {0}")]
    Tls(String),
}

impl FromStr for Database {
    type Err = DatabaseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (rest, ssl_mode, root_cert) = take_tls_options(text)?;
        let mut config: postgres::Config = rest.parse().map_err(|_| DatabaseError::Invalid)?;
        config.ssl_mode(match ssl_mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => postgres::config::SslMode::Require,
        });
        Ok(Database { config, ssl_mode, root_cert })
    }
}

impl Database {
    /// The driver's configuration (host, user, database, ...).
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The TLS mode.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// Use `name` as the connection's `application_name` unless the URL set one, so that `pg_stat_activity` and
    /// the migrator's waiting messages say who a connection is.
    pub fn default_application_name(mut self, name: &str) -> Database {
        if self.config.get_application_name().is_none() {
            self.config.application_name(name);
        }
        self
    }

    /// Connect with the configured TLS mode.
    pub fn connect(&self) -> Result<postgres::Client, ConnectError> {
        self.connect_with(&self.config)
    }

    /// Connect to the same server with another configuration (another user, `options`, ...), with this TLS mode.
    ///
    /// TLS is set up only when this connection can use it, and trust roots are read only when a certificate will
    /// be checked: `disable`, or a configuration whose hosts are all Unix sockets (PostgreSQL has no TLS there and
    /// libpq does not ask), connect in plain; `prefer` and `require` encrypt with a connector that checks nothing
    /// and so reads no trust store; `verify-ca`, `verify-full` (and `require` with `sslrootcert`) build their
    /// connector, trust roots and all, once per process.
    pub fn connect_with(&self, config: &postgres::Config) -> Result<postgres::Client, ConnectError> {
        let plan = self.tls_plan(config);
        #[cfg(test)]
        count(plan);
        match plan {
            TlsPlan::Plain => {
                if config.get_ssl_mode() == postgres::config::SslMode::Disable {
                    return config.connect(postgres::NoTls).map_err(ConnectError::Postgres);
                }
                // Sockets only: `require` would otherwise ask the server for TLS it never offers on a socket.
                let mut plain = config.clone();
                plain.ssl_mode(postgres::config::SslMode::Disable);
                plain.connect(postgres::NoTls).map_err(ConnectError::Postgres)
            }
            #[cfg(feature = "tls")]
            TlsPlan::Unverified => {
                let connector = tls::unverified().map_err(ConnectError::Setup)?;
                config.connect(connector).map_err(ConnectError::Postgres)
            }
            #[cfg(feature = "tls")]
            TlsPlan::Verified => {
                let connector = tls::verified(self.ssl_mode, self.root_cert.as_deref()).map_err(ConnectError::Setup)?;
                config.connect(postgres_native_tls::MakeTlsConnector::new(connector)).map_err(ConnectError::Postgres)
            }
            // Without TLS support, `prefer` falls back to plain TCP as libpq's would without OpenSSL.
            #[cfg(not(feature = "tls"))]
            TlsPlan::Unverified if self.ssl_mode == SslMode::Prefer => {
                config.connect(postgres::NoTls).map_err(ConnectError::Postgres)
            }
            #[cfg(not(feature = "tls"))]
            _ => Err(ConnectError::Setup(DatabaseError::NoTls(format!("{:?}", self.ssl_mode).to_lowercase()))),
        }
    }

    /// Ask the server to cancel the query that the connection `token` came from is running (PostgreSQL's cancel
    /// request, what `pg_cancel_backend` does), over TLS when this database's connections use it. The request
    /// carries only the backend's key, so the certificate is not checked for it.
    pub fn cancel(&self, token: &postgres::CancelToken) -> Result<(), ConnectError> {
        match self.tls_plan(&self.config) {
            TlsPlan::Plain => token.cancel_query(postgres::NoTls).map_err(ConnectError::Postgres),
            #[cfg(feature = "tls")]
            TlsPlan::Unverified | TlsPlan::Verified => {
                let connector = tls::unverified().map_err(ConnectError::Setup)?;
                token.cancel_query(connector).map_err(ConnectError::Postgres)
            }
            #[cfg(not(feature = "tls"))]
            _ => token.cancel_query(postgres::NoTls).map_err(ConnectError::Postgres),
        }
    }

    /// What a connection with `config` needs, from the mode and the hosts alone: nothing is built here.
    pub(crate) fn tls_plan(&self, config: &postgres::Config) -> TlsPlan {
        #[cfg(unix)]
        let sockets_only = !config.get_hosts().is_empty()
            && config.get_hosts().iter().all(|host| matches!(host, postgres::config::Host::Unix(_)));
        #[cfg(not(unix))]
        let sockets_only = false;
        match self.ssl_mode {
            SslMode::Disable => TlsPlan::Plain,
            _ if sockets_only => TlsPlan::Plain,
            SslMode::VerifyCa | SslMode::VerifyFull => TlsPlan::Verified,
            // As in libpq, `require` with a root file checks the chain against it.
            SslMode::Require if self.root_cert.is_some() => TlsPlan::Verified,
            SslMode::Prefer | SslMode::Require => TlsPlan::Unverified,
        }
    }
}

/// How one connection is secured, decided before anything is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsPlan {
    /// No TLS: `sslmode=disable`, or only Unix-socket hosts.
    Plain,
    /// Encrypted, nothing checked (`prefer`, `require`): no trust roots are read.
    Unverified,
    /// Encrypted and the certificate checked: trust roots read once per process.
    Verified,
}

/// The connectors, each built at most once per process (per mode and root file for the verifying ones).
#[cfg(feature = "tls")]
mod tls {
    use std::collections::HashMap;
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::sync::{Mutex, OnceLock};
    use std::task::{Context, Poll};

    use openssl::ssl::{Ssl, SslContext, SslMethod, SslMode as OpenSslMode, SslOptions, SslVerifyMode};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

    use super::{DatabaseError, SslMode};

    /// An OpenSSL client context that verifies nothing, so it loads no trust store: what libpq does for
    /// `prefer` and `require`. Building it takes microseconds; it is still built once and shared.
    pub(super) fn unverified() -> Result<Unverified, DatabaseError> {
        static CONTEXT: OnceLock<SslContext> = OnceLock::new();
        if let Some(context) = CONTEXT.get() {
            return Ok(Unverified(context.clone()));
        }
        let tls = |e: openssl::error::ErrorStack| DatabaseError::Tls(e.to_string());
        let mut builder = SslContext::builder(SslMethod::tls_client()).map_err(tls)?;
        builder.set_verify(SslVerifyMode::NONE);
        builder.set_options(SslOptions::NO_COMPRESSION | SslOptions::NO_SSLV2 | SslOptions::NO_SSLV3);
        // As openssl's own connector: a non-blocking write may be retried with another buffer.
        builder.set_mode(
            OpenSslMode::AUTO_RETRY | OpenSslMode::ACCEPT_MOVING_WRITE_BUFFER | OpenSslMode::ENABLE_PARTIAL_WRITE,
        );
        Ok(Unverified(CONTEXT.get_or_init(|| builder.build()).clone()))
    }

    /// The native-tls connector for a verifying mode, built (trust roots read and parsed) once per process for
    /// each mode and root file; concurrent first connections wait for the one build instead of each doing it.
    pub(super) fn verified(mode: SslMode, root_cert: Option<&str>) -> Result<native_tls::TlsConnector, DatabaseError> {
        type Key = (bool, bool, Option<String>);
        static CONNECTORS: OnceLock<Mutex<HashMap<Key, native_tls::TlsConnector>>> = OnceLock::new();
        let verify_chain = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) || root_cert.is_some();
        let verify_host = mode == SslMode::VerifyFull;
        let key = (verify_chain, verify_host, root_cert.map(str::to_owned));
        let mut connectors = CONNECTORS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(connector) = connectors.get(&key) {
            return Ok(connector.clone());
        }
        let mut builder = native_tls::TlsConnector::builder();
        // As with libpq, a given sslrootcert is the only trusted root; without one, the system's store is used.
        builder.disable_built_in_roots(root_cert.is_some());
        if let Some(path) = root_cert {
            let root = |reason: String| DatabaseError::RootCert { path: path.to_owned(), reason };
            let pem = std::fs::read(path).map_err(|e| root(e.to_string()))?;
            builder.add_root_certificate(native_tls::Certificate::from_pem(&pem).map_err(|e| root(e.to_string()))?);
        }
        builder.danger_accept_invalid_certs(!verify_chain);
        builder.danger_accept_invalid_hostnames(!verify_host);
        let connector = builder.build().map_err(|e| DatabaseError::Tls(e.to_string()))?;
        #[cfg(test)]
        super::ROOT_LOADS.with(|n| n.set(n.get() + 1));
        connectors.insert(key, connector.clone());
        Ok(connector)
    }

    /// Encrypts without checking the certificate.
    #[derive(Clone)]
    pub(super) struct Unverified(SslContext);

    impl<S> MakeTlsConnect<S> for Unverified
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        type Stream = UnverifiedStream<S>;
        type TlsConnect = UnverifiedConnect;
        type Error = openssl::error::ErrorStack;

        fn make_tls_connect(&mut self, host: &str) -> Result<UnverifiedConnect, Self::Error> {
            let mut ssl = Ssl::new(&self.0)?;
            // SNI for a host name, as libpq sends it (never for an address).
            if !host.is_empty() && host.parse::<std::net::IpAddr>().is_err() {
                ssl.set_hostname(host)?;
            }
            Ok(UnverifiedConnect(ssl))
        }
    }

    pub(super) struct UnverifiedConnect(Ssl);

    impl<S> TlsConnect<S> for UnverifiedConnect
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        type Stream = UnverifiedStream<S>;
        type Error = Box<dyn std::error::Error + Send + Sync>;
        type Future = Pin<Box<dyn Future<Output = Result<UnverifiedStream<S>, Self::Error>> + Send>>;

        fn connect(self, stream: S) -> Self::Future {
            Box::pin(async move {
                let mut stream = tokio_openssl::SslStream::new(self.0, stream)?;
                Pin::new(&mut stream).connect().await?;
                Ok(UnverifiedStream(stream))
            })
        }
    }

    pub(super) struct UnverifiedStream<S>(tokio_openssl::SslStream<S>);

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for UnverifiedStream<S> {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for UnverifiedStream<S> {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for UnverifiedStream<S> {
        fn channel_binding(&self) -> ChannelBinding {
            // Binding to a certificate nobody checked proves nothing; SCRAM runs without it, as with libpq's
            // `prefer` against a server whose certificate it does not verify.
            ChannelBinding::none()
        }
    }
}

// Per thread, for tests (a connection is set up on the calling thread): connections planned as plain,
// unverified and verified TLS, and connectors built with trust roots.
#[cfg(test)]
thread_local! {
    static PLANNED: std::cell::Cell<[usize; 3]> = const { std::cell::Cell::new([0; 3]) };
    static ROOT_LOADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn count(plan: TlsPlan) {
    PLANNED.with(|n| {
        let mut counts = n.get();
        counts[plan as usize] += 1;
        n.set(counts);
    });
}

/// Connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TLS could not be set up.
    #[error(transparent)]
    Setup(DatabaseError),
    /// The server or the network said no.
    #[error(transparent)]
    Postgres(postgres::Error),
}

/// `host:port/database`, never the password.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        write!(f, "{host}:{port}/{}", self.config.get_dbname().or(self.config.get_user()).unwrap_or("postgres"))
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database").field("at", &self.to_string()).field("ssl_mode", &self.ssl_mode).finish()
    }
}

/// Split `sslmode` and `sslrootcert` off a URL (`?a=b&c=d`) or key/value (`a=b c=d`) connection string.
fn take_tls_options(text: &str) -> Result<(String, SslMode, Option<String>), DatabaseError> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> Result<bool, DatabaseError> {
        match key {
            "sslmode" => {
                mode = Some(match value {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => return Err(DatabaseError::SslMode(other.to_owned())),
                });
                Ok(true)
            }
            "sslrootcert" => {
                root_cert = Some(value.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let rest = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        match text.split_once('?') {
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(key, &percent_decode(value))? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => text.to_owned(),
        }
    } else {
        let mut kept = Vec::new();
        for word in text.split_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            if !take(key.trim(), value.trim_matches('\''))? {
                kept.push(word);
            }
        }
        kept.join(" ")
    };
    // Without an sslmode, libpq prefers TLS when the server offers it.
    Ok((rest, mode.unwrap_or(SslMode::Prefer), root_cert))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_come_off_urls_and_key_values() {
        let (rest, mode, root) =
            take_tls_options("postgres://u:p@h:1/d?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem")
                .unwrap();
        assert_eq!(
            (rest.as_str(), mode, root.as_deref()),
            ("postgres://u:p@h:1/d?application_name=x", SslMode::VerifyFull, Some("/ca.pem"))
        );
        let (rest, mode, _) = take_tls_options("host=h user=u sslmode=require dbname=d").unwrap();
        assert_eq!((rest.as_str(), mode), ("host=h user=u dbname=d", SslMode::Require));
        assert_eq!(take_tls_options("postgres://h/d").unwrap().1, SslMode::Prefer);
        assert!(
            matches!(take_tls_options("postgres://h/d?sslmode=bogus"), Err(DatabaseError::SslMode(m)) if m == "bogus")
        );
    }

    #[test]
    fn display_hides_the_password() {
        let db: Database = "postgres://user:hunter2@example.org:6543/app".parse().unwrap();
        assert_eq!(db.to_string(), "example.org:6543/app");
        assert!(!format!("{db:?}").contains("hunter2"));
    }
}

#[cfg(test)]
mod redaction {
    use super::*;

    #[test]
    fn an_invalid_string_is_not_repeated() {
        let error = "postgres//user:hunter2@host/db?x=1".parse::<Database>().unwrap_err();
        assert!(matches!(error, DatabaseError::Invalid));
        assert!(!error.to_string().contains("hunter2"));
    }
}

/// Which connector a connection gets, observed on the test's own thread (connections are set up on the calling
/// thread, so parallel tests do not disturb each other's counts). These connect to the test server
/// (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`), as every test of the workspace does.
#[cfg(test)]
mod laziness {
    use super::*;

    fn server() -> postgres::Config {
        std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
            .parse()
            .unwrap()
    }

    /// The test server as a key/value string with `host` and extra options.
    fn database(host: &str, options: &str) -> Database {
        let base = server();
        let port = base.get_ports().first().copied().unwrap_or(5432);
        format!(
            "host={host} port={port} user={} dbname={} {options}",
            base.get_user().unwrap_or("postgres"),
            base.get_dbname().unwrap_or("postgres")
        )
        .parse()
        .unwrap()
    }

    fn tcp_host() -> String {
        match server().get_hosts().first() {
            Some(postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        }
    }

    fn counts() -> ([usize; 3], usize) {
        (PLANNED.with(|n| n.get()), ROOT_LOADS.with(|n| n.get()))
    }

    fn encrypted(client: &mut postgres::Client) -> bool {
        client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).unwrap().get(0)
    }

    #[test]
    fn the_plan_follows_the_mode_and_the_hosts() {
        let plan = |text: &str| {
            let db: Database = text.parse().unwrap();
            db.tls_plan(db.config())
        };
        assert_eq!(plan("host=db sslmode=disable"), TlsPlan::Plain);
        assert_eq!(plan("host=db"), TlsPlan::Unverified); // libpq's default, prefer
        assert_eq!(plan("host=db sslmode=require"), TlsPlan::Unverified);
        assert_eq!(plan("host=db sslmode=require sslrootcert=/ca.pem"), TlsPlan::Verified);
        assert_eq!(plan("host=db sslmode=verify-ca"), TlsPlan::Verified);
        assert_eq!(plan("postgres://db/x?sslmode=verify-full"), TlsPlan::Verified);
        // PostgreSQL has no TLS on a Unix socket: whatever the mode, nothing is set up.
        assert_eq!(plan("host=/var/run/postgresql sslmode=require"), TlsPlan::Plain);
        assert_eq!(plan("host=/var/run/postgresql sslmode=verify-full"), TlsPlan::Plain);
        assert_eq!(plan("host=/var/run/postgresql,db sslmode=prefer"), TlsPlan::Unverified);
    }

    #[test]
    fn disable_builds_no_connector() {
        let before = counts();
        let mut client = database(&tcp_host(), "sslmode=disable").connect().unwrap();
        assert!(!encrypted(&mut client));
        let (planned, loads) = counts();
        assert_eq!((planned[0] - before.0[0], planned[1..] == before.0[1..], loads), (1, true, before.1));
    }

    #[test]
    fn a_socket_builds_no_connector_even_with_require() {
        let socket = "/var/run/postgresql";
        if !std::path::Path::new(socket).join(".s.PGSQL.5432").exists() {
            // No local socket on this machine: the plan test above covers the decision.
            return;
        }
        let before = counts();
        let mut client = database(socket, "sslmode=require").connect().unwrap();
        assert!(!encrypted(&mut client));
        let (planned, loads) = counts();
        assert_eq!((planned[0] - before.0[0], planned[1..] == before.0[1..], loads), (1, true, before.1));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn prefer_and_require_encrypt_without_loading_trust_roots() {
        let ssl_on: String =
            database(&tcp_host(), "sslmode=disable").connect().unwrap().query_one("SHOW ssl", &[]).unwrap().get(0);
        assert_eq!(ssl_on, "on", "the test server must run with ssl = on");
        let before = counts();
        for mode in ["prefer", "require"] {
            let mut client = database(&tcp_host(), &format!("sslmode={mode}")).connect().unwrap();
            assert!(encrypted(&mut client), "{mode}");
        }
        let (planned, loads) = counts();
        assert_eq!((planned[1] - before.0[1], loads - before.1), (2, 0));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn verifying_modes_load_their_roots_once() {
        const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
        // A root file of this test's own, so no other test has loaded it already.
        let root = std::env::temp_dir().join(format!("laziness-root-{}.pem", std::process::id()));
        std::fs::copy(SNAKEOIL, &root).unwrap();
        let verified = database("localhost", &format!("sslmode=verify-full sslrootcert={}", root.display()));
        let before = counts();
        for _ in 0..3 {
            assert!(encrypted(&mut verified.connect().unwrap()));
        }
        let (planned, loads) = counts();
        std::fs::remove_file(&root).unwrap();
        assert_eq!((planned[2] - before.0[2], loads - before.1), (3, 1));
    }
}
