//! Connection strings with libpq's TLS modes. tokio-postgres knows `sslmode` `disable`, `prefer` and `require`
//! and leaves certificate checks to the connector; operators write `sslmode=verify-full` and `sslrootcert=...` as
//! they would for psql. This module reads those, hands the rest to the driver, and builds the matching
//! connector (native-tls, so the system's OpenSSL and trust store).

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
    pub fn connect_with(&self, config: &postgres::Config) -> Result<postgres::Client, ConnectError> {
        if self.ssl_mode == SslMode::Disable {
            return config.connect(postgres::NoTls).map_err(ConnectError::Postgres);
        }
        #[cfg(feature = "tls")]
        {
            let connector = self.tls_connector().map_err(ConnectError::Setup)?;
            config.connect(connector).map_err(ConnectError::Postgres)
        }
        #[cfg(not(feature = "tls"))]
        {
            // Without TLS support, `prefer` falls back to plain TCP as libpq's would without OpenSSL.
            match self.ssl_mode {
                SslMode::Prefer => config.connect(postgres::NoTls).map_err(ConnectError::Postgres),
                mode => Err(ConnectError::Setup(DatabaseError::NoTls(format!("{mode:?}").to_lowercase()))),
            }
        }
    }

    #[cfg(feature = "tls")]
    fn tls_connector(&self) -> Result<postgres_native_tls::MakeTlsConnector, DatabaseError> {
        let mut builder = native_tls::TlsConnector::builder();
        // As with libpq, a given sslrootcert is the only trusted root; without one, the system's store is used.
        builder.disable_built_in_roots(self.root_cert.is_some());
        if let Some(path) = &self.root_cert {
            let root = |reason: String| DatabaseError::RootCert { path: path.clone(), reason };
            let pem = std::fs::read(path).map_err(|e| root(e.to_string()))?;
            builder.add_root_certificate(native_tls::Certificate::from_pem(&pem).map_err(|e| root(e.to_string()))?);
        }
        let verify_chain = matches!(self.ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull)
            || (self.ssl_mode == SslMode::Require && self.root_cert.is_some());
        builder.danger_accept_invalid_certs(!verify_chain);
        builder.danger_accept_invalid_hostnames(self.ssl_mode != SslMode::VerifyFull);
        let connector = builder.build().map_err(|e| DatabaseError::Tls(e.to_string()))?;
        Ok(postgres_native_tls::MakeTlsConnector::new(connector))
    }
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
