//! A PgBouncer of the test's own in front of the test server (or another: [`PgBouncerConfig::server`]): its own
//! ini file and user list in a temporary directory, a free loopback port, the `pgbouncer` binary as a child
//! process, stopped by its pid when dropped.
//!
//! ```no_run
//! use integration_tests::pgbouncer::{PgBouncer, PoolMode};
//!
//! let bouncer = PgBouncer::start(PoolMode::Transaction, 2, &[("ignore_startup_parameters", "options")]);
//! let mut client = postgres::Client::connect(&bouncer.url("postgres"), postgres::NoTls).unwrap();
//! client.simple_query("SELECT 1").unwrap();
//! let servers = bouncer.servers(); // SHOW SERVERS on the admin console
//! ```
//!
//! Needs `/usr/sbin/pgbouncer` (Debian package `pgbouncer`; `.ci/run` installs it) or `PGBOUNCER` set to the
//! binary. PgBouncer refuses to run as root, so when the tests run as root it is started with `-u postgres` and
//! its directory is readable by everyone.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::database_url;

/// PgBouncer's `pool_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// A server connection per client for its whole session.
    Session,
    /// A server connection per transaction: session state (startup options, `SET`, session advisory locks,
    /// prepared statements) does not follow the client.
    Transaction,
    /// A server connection per statement.
    Statement,
}

impl PoolMode {
    /// The ini value.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

/// What to start: pool mode and size, users allowed to log in, any other `[pgbouncer]` settings.
#[derive(Debug, Clone)]
pub struct PgBouncerConfig {
    pub pool_mode: PoolMode,
    /// `default_pool_size`: server connections per user and database.
    pub pool_size: usize,
    /// `max_client_conn`.
    pub max_client_conn: usize,
    /// Roles that may log in, besides `DATABASE_URL`'s user (auth is `trust`; the list is what PgBouncer checks).
    pub users: Vec<String>,
    /// More `[pgbouncer]` settings, written after the defaults (a later line wins in PgBouncer's ini).
    pub settings: Vec<(String, String)>,
    /// The server behind it, as a URL (host, port, user, password); `DATABASE_URL` when not set.
    pub server: Option<String>,
}

impl PgBouncerConfig {
    pub fn new(pool_mode: PoolMode, pool_size: usize) -> PgBouncerConfig {
        PgBouncerConfig {
            pool_mode,
            pool_size,
            max_client_conn: 200,
            users: Vec::new(),
            settings: Vec::new(),
            server: None,
        }
    }

    /// Also let `user` log in (with the server's trust auth, or the password given for it in `DATABASE_URL`).
    pub fn user(mut self, user: &str) -> PgBouncerConfig {
        self.users.push(user.to_owned());
        self
    }

    /// Pool connections to the server at `url` (a Citus coordinator, say) instead of `DATABASE_URL`'s.
    pub fn server(mut self, url: &str) -> PgBouncerConfig {
        self.server = Some(url.to_owned());
        self
    }

    pub fn setting(mut self, key: &str, value: &str) -> PgBouncerConfig {
        self.settings.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn start(self) -> PgBouncer {
        PgBouncer::start_with(self)
    }
}

/// A running PgBouncer; stopped (SIGTERM by pid, SIGKILL if it lingers) and its directory removed when dropped.
pub struct PgBouncer {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
    dir: PathBuf,
    /// `DATABASE_URL`'s user: the one `url` logs in as, and PgBouncer's admin user.
    user: String,
}

/// One line of `SHOW SERVERS`: a server connection PgBouncer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub user: String,
    pub database: String,
    /// `active`, `idle`, `used`, `tested`, `new`, ...
    pub state: String,
    /// The backend's pid on the server (`pg_locks.pid`, `pg_stat_activity.pid`).
    pub remote_pid: Option<i32>,
}

impl PgBouncer {
    /// Start PgBouncer in `pool_mode` with `pool_size` server connections per user and database, and `settings`
    /// added to `[pgbouncer]` (for example `("ignore_startup_parameters", "options")`).
    pub fn start(pool_mode: PoolMode, pool_size: usize, settings: &[(&str, &str)]) -> PgBouncer {
        let mut config = PgBouncerConfig::new(pool_mode, pool_size);
        for (key, value) in settings {
            config = config.setting(key, value);
        }
        config.start()
    }

    /// Start with a full configuration ([`PgBouncerConfig::start`] reads better).
    pub fn start_with(config: PgBouncerConfig) -> PgBouncer {
        // The port is free when chosen but another test may take it before PgBouncer binds it: try again then.
        let mut failures = Vec::new();
        for _ in 0..5 {
            match try_start(&config) {
                Ok(bouncer) => return bouncer,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("PgBouncer did not start:\n{}", failures.join("\n---\n"));
    }

    /// A connection URL through PgBouncer to `database`, as `DATABASE_URL`'s user.
    pub fn url(&self, database: &str) -> String {
        self.url_as(&self.user, database)
    }

    /// A connection URL through PgBouncer to `database`, as `user` (give it to [`PgBouncerConfig::user`]).
    pub fn url_as(&self, user: &str, database: &str) -> String {
        format!("postgres://{}@127.0.0.1:{}/{}?sslmode=disable", encode(user), self.port, encode(database))
    }

    /// PgBouncer's own process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What PgBouncer has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    /// A command on the admin console (`SHOW SERVERS`, `SHOW POOLS`, `RECONNECT`, ...): every row as
    /// `(column, value)` pairs.
    pub fn admin(&self, command: &str) -> Vec<Vec<(String, Option<String>)>> {
        let mut client = postgres::Client::connect(&self.url("pgbouncer"), postgres::NoTls)
            .unwrap_or_else(|e| panic!("PgBouncer admin console: {e}\n{}", self.log()));
        let messages = client.simple_query(command).unwrap_or_else(|e| panic!("{command}: {e}"));
        messages
            .iter()
            .filter_map(|message| match message {
                postgres::SimpleQueryMessage::Row(row) => Some(
                    row.columns()
                        .iter()
                        .enumerate()
                        .map(|(i, column)| (column.name().to_owned(), row.get(i).map(str::to_owned)))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// `SHOW SERVERS`: the server connections PgBouncer holds now.
    pub fn servers(&self) -> Vec<Server> {
        self.admin("SHOW SERVERS")
            .into_iter()
            .map(|row| {
                let field = |name: &str| row.iter().find(|(column, _)| column == name).and_then(|(_, v)| v.clone());
                Server {
                    user: field("user").unwrap_or_default(),
                    database: field("database").unwrap_or_default(),
                    state: field("state").unwrap_or_default(),
                    remote_pid: field("remote_pid").and_then(|pid| pid.parse().ok()),
                }
            })
            .collect()
    }

    /// Stop PgBouncer now (what dropping it does).
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM by pid: PgBouncer closes its connections and exits at once.
            signal(self.child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Send `signal` to `pid`, one of our own children.
fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child, not yet reaped.
    unsafe {
        libc::kill(pid, signal);
    }
}

fn binary() -> PathBuf {
    std::env::var_os("PGBOUNCER").map_or_else(|| PathBuf::from("/usr/sbin/pgbouncer"), PathBuf::from)
}

fn try_start(config: &PgBouncerConfig) -> Result<PgBouncer, String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server_url = config.server.clone().unwrap_or_else(database_url);
    let server: postgres::Config = server_url.parse().expect("the server's URL");
    let (host, port) = match (server.get_hosts().first(), server.get_ports().first()) {
        (Some(postgres::config::Host::Tcp(host)), port) => (host.clone(), port.copied().unwrap_or(5432)),
        _ => ("127.0.0.1".to_owned(), 5432),
    };
    let user = server.get_user().unwrap_or("postgres").to_owned();
    let password = server.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();

    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "pgbouncer-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let listen_port = free_port();

    // Trust auth towards the tests; towards the server, PgBouncer logs in with the password listed for the user.
    let mut userlist = format!("{} {}\n", ini_quote(&user), ini_quote(&password));
    for extra in config.users.iter().filter(|u| **u != user) {
        userlist.push_str(&format!("{} \"\"\n", ini_quote(extra)));
    }
    let mut ini = format!(
        "[databases]\n* = host={host} port={port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = \
         {listen_port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {}\npool_mode = {}\ndefault_pool_size = \
         {}\nmin_pool_size = 0\nreserve_pool_size = 0\nmax_client_conn = {}\nadmin_users = {user}\nstats_users = \
         {user}\nserver_login_retry = 1\n",
        dir.join("userlist.txt").display(),
        config.pool_mode.as_str(),
        config.pool_size,
        config.max_client_conn,
    );
    for (key, value) in &config.settings {
        ini.push_str(&format!("{key} = {value}\n"));
    }
    write_readable(&dir.join("userlist.txt"), &userlist)?;
    write_readable(&dir.join("pgbouncer.ini"), &ini)?;
    make_readable(&dir, 0o755)?;

    let log = std::fs::File::create(dir.join("pgbouncer.log")).map_err(|e| e.to_string())?;
    let mut command = Command::new(binary());
    // PgBouncer will not run as root; it drops to the given user itself.
    if is_root() {
        command.args(["-u", "postgres"]);
    }
    let child = command
        .arg(dir.join("pgbouncer.ini"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("could not run {}: {e} (install the pgbouncer package)", binary().display()))?;
    let mut bouncer = PgBouncer { child, port: listen_port, dir, user };

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = bouncer.child.try_wait() {
            let failure = format!("pgbouncer exited with {status}:\n{}", bouncer.log());
            bouncer.shut_down();
            return Err(failure);
        }
        if accepts(listen_port) {
            return Ok(bouncer);
        }
        if Instant::now() > deadline {
            let failure = format!("pgbouncer did not listen on {listen_port} within 10 s:\n{}", bouncer.log());
            bouncer.shut_down();
            return Err(failure);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether something answers a PostgreSQL SSL request on the port (PgBouncer does once it serves clients).
fn accepts(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    // SSLRequest: length 8, code 80877103. The answer is one byte, 'N' or 'S'.
    let request = [0u8, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    if std::io::Write::write_all(&mut stream, &request).is_err() {
        return false;
    }
    let mut answer = [0u8; 1];
    matches!(stream.read(&mut answer), Ok(1))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

fn write_readable(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    make_readable(path, 0o644)
}

fn make_readable(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A double-quoted field of PgBouncer's auth file (`""` for a quote).
fn ini_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Percent-encode a URL path or user component.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One lock held or awaited on the server, from `pg_locks` (read directly, not through any pooler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The backend (`pg_stat_activity.pid`, [`Server::remote_pid`]).
    pub pid: Option<i32>,
    /// `advisory`, `relation`, `transactionid`, ...
    pub locktype: String,
    /// `ExclusiveLock`, ...
    pub mode: String,
    pub granted: bool,
    /// For an advisory lock taken with one bigint key: the key (`classid << 32 | objid`). Two int4 keys give
    /// `classid << 32 | objid` too, with `objsubid` 2.
    pub advisory_key: Option<i64>,
    /// `pg_locks.objsubid`: 1 for a bigint advisory key, 2 for two int4 keys.
    pub objsubid: Option<i16>,
}

/// The advisory locks of `database` on the server, held or awaited, read from `pg_locks` on a direct connection.
/// Session-level and transaction-level advisory locks both show; a lock left behind on a pooled server connection
/// shows with the pid of that connection's backend.
pub fn advisory_locks(database: &str) -> Vec<Lock> {
    crate::connect()
        .query(
            "SELECT l.pid, l.locktype, l.mode, l.granted, \
                    (l.classid::bigint << 32) | l.objid::bigint, l.objsubid \
             FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND d.datname = $1 ORDER BY l.pid",
            &[&database],
        )
        .unwrap()
        .iter()
        .map(|row| Lock {
            pid: row.get(0),
            locktype: row.get(1),
            mode: row.get(2),
            granted: row.get(3),
            advisory_key: row.get(4),
            objsubid: row.get(5),
        })
        .collect()
}
