//! A Citus cluster of the test's own: a coordinator and two workers, each a PostgreSQL made with `initdb` in a
//! temporary directory, on free loopback ports, with `shared_preload_libraries = 'citus'`, the workers added to the
//! coordinator and schema-based sharding on (every `CREATE SCHEMA` on the coordinator makes a distributed schema
//! whose tables live on one worker). Stopped with `pg_ctl stop` and its directory removed when dropped; the
//! machine's own PostgreSQL is not touched.
//!
//! ```no_run
//! use integration_tests::citus::CitusCluster;
//!
//! let cluster = CitusCluster::start();
//! let mut client = postgres::Client::connect(&cluster.url(), postgres::NoTls).unwrap();
//! client.batch_execute("CREATE SCHEMA tenant_1").unwrap(); // a distributed schema
//! ```
//!
//! Needs Citus installed into the server's library directory (`citus.so` in `pg_config --pkglibdir`; `.ci/run`
//! installs it from `../shared/citus/install.sh`, elsewhere the `postgresql-15-citus-13.2` package) and the server's
//! binaries (`pg_config --bindir`, or `PG_BINDIR`). `initdb` will not run as root: as root, every server command
//! runs as the user `postgres` (`runuser`), in a directory that user owns.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running cluster: the coordinator first, then the workers.
pub struct CitusCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

struct Node {
    port: u16,
    data: PathBuf,
    running: bool,
}

/// Why Citus tests cannot run here, if they cannot: no `citus.so` where the server loads its libraries.
pub fn missing() -> Option<String> {
    let libdir = pg_config("--pkglibdir").unwrap_or_else(|| "/usr/lib/postgresql/15/lib".to_owned());
    let library = Path::new(&libdir).join("citus.so");
    (!library.exists()).then(|| {
        format!(
            "Citus is not installed: no {} (install it with `bash ../shared/citus/install.sh` as root, or the \
             postgresql-15-citus-13.2 package)",
            library.display()
        )
    })
}

impl CitusCluster {
    /// Start a coordinator and two workers. Panics, saying why, when Citus is missing or a server does not start.
    pub fn start() -> CitusCluster {
        if let Some(reason) = missing() {
            panic!("{reason}");
        }
        let dir = temporary_dir();
        let mut cluster = CitusCluster { dir, nodes: Vec::new() };
        for role in ["coordinator", "worker-1", "worker-2"] {
            let node = cluster.start_node(role);
            cluster.nodes.push(node);
        }
        cluster.join_workers();
        cluster
    }

    /// The coordinator's URL, database `postgres` as user `postgres` (trust).
    pub fn url(&self) -> String {
        node_url(self.nodes[0].port)
    }

    /// The coordinator's port.
    pub fn coordinator_port(&self) -> u16 {
        self.nodes[0].port
    }

    /// The workers' ports.
    pub fn worker_ports(&self) -> Vec<u16> {
        self.nodes[1..].iter().map(|node| node.port).collect()
    }

    /// A connection to the coordinator.
    pub fn connect(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).expect("connect to the Citus coordinator")
    }

    /// A connection to the node on `port` (a worker: what Citus runs there, its shards).
    pub fn connect_node(&self, port: u16) -> postgres::Client {
        postgres::Client::connect(&node_url(port), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the Citus node on port {port}: {e}"))
    }

    /// The port of the worker that holds `schema`'s tables (a distributed schema), from Citus's metadata.
    pub fn worker_of(&self, schema: &str) -> u16 {
        let row = self
            .connect()
            .query_one(
                "SELECT DISTINCT s.nodeport FROM pg_catalog.citus_shards s \
                 JOIN pg_catalog.pg_class c ON c.oid = s.table_name \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
                &[&schema],
            )
            .unwrap_or_else(|e| panic!("the worker of schema {schema}: {e}"));
        u16::try_from(row.get::<_, i32>(0)).expect("a port")
    }

    /// Move distributed schema `schema` to the worker on `port` (`citus_schema_move`, blocking).
    pub fn move_schema(&self, schema: &str, port: u16) {
        self.connect()
            .execute(
                "SELECT citus_schema_move($1::text::regnamespace, '127.0.0.1', $2, shard_transfer_mode => 'block_writes')",
                &[&quote(schema), &i32::from(port)],
            )
            .unwrap_or_else(|e| panic!("move schema {schema} to port {port}: {e}"));
    }

    /// What the server on node `index` has logged (0 is the coordinator).
    pub fn log(&self, index: usize) -> String {
        std::fs::read_to_string(self.nodes[index].data.join("server.log")).unwrap_or_default()
    }

    fn start_node(&self, role: &str) -> Node {
        // A port is free when chosen but may be taken before the server binds it: try again then.
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let data = self.dir.join(format!("{role}-{attempt}"));
            match start_server(&data, free_port(), role == "coordinator") {
                Ok(node) => return node,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("the Citus {role} did not start:\n{}", failures.join("\n---\n"));
    }

    fn join_workers(&self) {
        for node in &self.nodes {
            let mut client = postgres::Client::connect(&node_url(node.port), postgres::NoTls).expect("connect");
            client.batch_execute("CREATE EXTENSION citus").expect("CREATE EXTENSION citus");
        }
        let mut coordinator = self.connect();
        coordinator
            .execute("SELECT citus_set_coordinator_host('127.0.0.1', $1)", &[&i32::from(self.coordinator_port())])
            .expect("citus_set_coordinator_host");
        for port in self.worker_ports() {
            coordinator
                .execute("SELECT citus_add_node('127.0.0.1', $1)", &[&i32::from(port)])
                .unwrap_or_else(|e| panic!("citus_add_node 127.0.0.1:{port}: {e}"));
        }
    }
}

impl Drop for CitusCluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().filter(|node| node.running) {
            let _ =
                as_postgres(&pg_bin("pg_ctl"), &["-D", &node.data.display().to_string(), "-m", "fast", "-w", "stop"]);
            node.running = false;
        }
        if std::env::var_os("KEEP_CITUS_CLUSTER").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `initdb`, the settings, `pg_ctl start`: a running server on `port`, or what went wrong.
fn start_server(data: &Path, port: u16, coordinator: bool) -> Result<Node, String> {
    let data_text = data.display().to_string();
    run_ok(as_postgres(&pg_bin("initdb"), &["-D", &data_text, "-A", "trust", "-U", "postgres", "--no-sync"]))?;
    let socket_dir = data.parent().expect("a data directory has a parent").display().to_string();
    let mut settings = format!(
        "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\n\
         shared_preload_libraries = 'citus'\nmax_connections = 300\nfsync = off\nsynchronous_commit = off\n\
         full_page_writes = off\n"
    );
    if coordinator {
        settings.push_str("citus.enable_schema_based_sharding = on\n");
    }
    append(&data.join("postgresql.conf"), &settings)?;
    let log = data.join("server.log").display().to_string();
    run_ok(as_postgres(&pg_bin("pg_ctl"), &["-D", &data_text, "-l", &log, "-w", "-t", "60", "start"]))
        .map_err(|e| format!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default()))?;
    Ok(Node { port, data: data.to_owned(), running: true })
}

fn node_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable")
}

/// A directory for the cluster under the system's temporary directory, owned by the user the servers run as.
fn temporary_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "citus-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    if is_root() {
        run_ok(Command::new("chown").args(["postgres:postgres", &dir.display().to_string()]).output())
            .unwrap_or_else(|e| panic!("chown {}: {e}", dir.display()));
    }
    dir
}

/// Run a server binary: as the user `postgres` when the tests run as root (`initdb` refuses root).
fn as_postgres(program: &Path, args: &[&str]) -> std::io::Result<Output> {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.args(args).current_dir(std::env::temp_dir()).output()
}

fn run_ok(output: std::io::Result<Output>) -> Result<(), String> {
    let output = output.map_err(|e| e.to_string())?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "exited with {}: {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut file =
        std::fs::OpenOptions::new().append(true).open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

fn pg_config(flag: &str) -> Option<String> {
    let output = Command::new("pg_config").arg(flag).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A server binary: from `PG_BINDIR`, else `pg_config --bindir`, else Debian's PostgreSQL 15.
fn pg_bin(name: &str) -> PathBuf {
    let bindir = std::env::var("PG_BINDIR")
        .ok()
        .or_else(|| pg_config("--bindir"))
        .unwrap_or_else(|| "/usr/lib/postgresql/15/bin".to_owned());
    Path::new(&bindir).join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// An identifier quoted for SQL.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
