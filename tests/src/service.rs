//! A service binary as a process: started on a free port, its boot log read until it listens, asked over
//! HTTP, killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A running service binary (app-example, app-axum) on a system-chosen port, killed when dropped.
pub struct ServiceProcess {
    child: Child,
    port: u16,
    /// What it printed on stderr before listening.
    pub boot_log: String,
}

impl ServiceProcess {
    /// Start `binary` for `schema` (`DEFAULT_SCHEMA_NAME`) on the test server, with `env` on top (`DATABASE_URL`
    /// and the others can be overridden); `Err` holds its exit code and stderr when it stops instead of serving.
    // The child is waited on when it exits early, and by `Drop` once it serves.
    #[allow(clippy::zombie_processes)]
    pub fn start(binary: &str, schema: &str, env: &[(&str, &str)]) -> Result<ServiceProcess, (Option<i32>, String)> {
        let mut child = Command::new(binary)
            .env("DATABASE_URL", crate::database_url())
            .env_remove("APP_DATABASE_URL")
            .env_remove("MIGRATE_HISTORY_TABLE")
            .env_remove("MIGRATE_EXTRA_SEARCH_PATH")
            .env("DEFAULT_SCHEMA_NAME", schema)
            .env("PORT", "0")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut boot_log = String::new();
        loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                return Err((status.code(), boot_log));
            }
            boot_log.push_str(&line);
            if let Some(port) = line.trim().strip_prefix("listening on http://127.0.0.1:") {
                let port = port.parse().unwrap();
                // Keep draining stderr so the service never blocks on a full pipe.
                std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                return Ok(ServiceProcess { child, port, boot_log });
            }
        }
    }

    /// How many migrations this service applied at boot, from its "(N migration(s) applied)" log line.
    pub fn applied(&self) -> usize {
        let line = self.boot_log.lines().find(|l| l.contains("migration(s) applied")).unwrap();
        line.split('(').nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()
    }

    /// `GET path`, which must answer 200: its JSON body.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.request(path);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `GET path`: its status and JSON body.
    pub fn request(&self, path: &str) -> (u16, serde_json::Value) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.get(9..12).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("{response}"));
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        (status, serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response}")))
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
