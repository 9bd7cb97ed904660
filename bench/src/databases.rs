//! The benchmark's databases. Every timed fresh run gets a database of its own, all of them created from the same
//! template before the first timed run and dropped only at the end of the benchmark, so that
//!
//! - every tool meets the same catalogs (a new database's), whatever ran before it;
//! - no timed run follows the deletion of another run's files. On this machine's file system (ext4 without a
//!   journal), creating a file within minutes of many deletions nearby costs up to twenty times as much, and the
//!   creations of one database directory queue behind each other meanwhile: a fan-out's connections then wait for
//!   each other. Dropping the previous run's schemas before each timed run (as this benchmark once did to make the
//!   runs equal) made every fresh run pay for its predecessor's files (docs/BENCHMARKS.md).
//!
//! `CREATE INDEX CONCURRENTLY` waits only for the older transactions of its own database, so the runs are also
//! shielded from other sessions on the server.

use std::collections::VecDeque;

use anyhow::Context;

pub struct Databases {
    admin: postgres::Client,
    /// The maintenance URL (`DATABASE_URL`).
    maintenance_url: String,
    /// Every database of this run is named `{prefix}_...`.
    prefix: String,
    created: Vec<String>,
    /// Created ahead, not yet handed out.
    pristine: VecDeque<String>,
}

impl Databases {
    pub fn new(maintenance_url: &str) -> anyhow::Result<Databases> {
        let admin = postgres::Client::connect(maintenance_url, postgres::NoTls).context("connect to DATABASE_URL")?;
        Ok(Databases {
            admin,
            maintenance_url: maintenance_url.to_owned(),
            prefix: format!("bench_{}", std::process::id()),
            created: Vec::new(),
            pristine: VecDeque::new(),
        })
    }

    /// A new database `{prefix}_{suffix}`; its URL, on plain TCP unless `DATABASE_URL` names an `sslmode` (every
    /// tool on the same transport: refinery's loop connects with `NoTls`; rows with TLS are added).
    pub fn create(&mut self, suffix: &str) -> anyhow::Result<String> {
        let name = format!("{}_{suffix}", self.prefix);
        self.admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        self.created.push(name.clone());
        let url = with_database(&self.maintenance_url, &name)?;
        Ok(if url.contains("sslmode=") { url } else { crate::process::with_sslmode(&url, "disable") })
    }

    /// Create `count` databases for timed fresh runs now, before anything of the benchmark is deleted.
    pub fn create_pristine(&mut self, count: usize) -> anyhow::Result<()> {
        for _ in 0..count {
            let url = self.create(&format!("fresh_{}", self.created.len()))?;
            self.pristine.push_back(url);
        }
        Ok(())
    }

    /// A database made by [`create_pristine`](Self::create_pristine), after a `CHECKPOINT` (no run pays for
    /// writes that another's made due, nor for the full-page images after a checkpoint they caused).
    pub fn take_pristine(&mut self) -> anyhow::Result<String> {
        let url = self.pristine.pop_front().context("no pristine database left: create_pristine counted too few")?;
        self.checkpoint()?;
        Ok(url)
    }

    pub fn checkpoint(&mut self) -> anyhow::Result<()> {
        self.admin.batch_execute("CHECKPOINT")?;
        Ok(())
    }

    /// Drop every database of this run, then vacuum the shared catalogs that churned (autovacuum is off here).
    pub fn drop_all(&mut self) -> anyhow::Result<()> {
        for name in self.created.drain(..) {
            self.admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        }
        self.admin.batch_execute("VACUUM (ANALYZE) pg_catalog.pg_database, pg_catalog.pg_shdepend")?;
        Ok(())
    }
}

/// The URL with another database name (URL form: `postgres://user@host:port/database?options`).
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let rest = base.strip_prefix("postgres://").or_else(|| base.strip_prefix("postgresql://"));
    let rest = rest.context("DATABASE_URL must be a postgres:// URL for the benchmark")?;
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    Ok(format!("postgres://{authority}/{database}{}", query.map(|q| format!("?{q}")).unwrap_or_default()))
}
