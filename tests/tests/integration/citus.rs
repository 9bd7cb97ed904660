//! Outgrowing one server (issue 22): a Citus coordinator and two workers of the test's own
//! ([`integration_tests::citus::CitusCluster`]), schema-based sharding on, so every tenant is a distributed schema
//! whose tables (its history table too) live together on one worker. The set is `tests/fixtures/citus` (what
//! `citus-probe` embeds): tables with a foreign key, a no-transaction `CREATE INDEX CONCURRENTLY`, a named check,
//! seed rows and a view.
//!
//! Ignored by plain `cargo test` (each test starts three servers, and Citus is not in Debian's archive):
//! `scripts/test.sh` runs them with `--ignored citus::` after `scripts/setup.sh` installed Citus. Run where Citus
//! is missing, they fail saying so; they never pass without a cluster.

use std::collections::BTreeSet;

use integration_tests::citus::CitusCluster;
use integration_tests::pgbouncer::{PgBouncerConfig, PoolMode};
use integration_tests::SchemasFile;
use integration_tests::{migration, set};
use migrate_ops::{digests_on_workers, Catalog, Fleet, Inspect, Standing};
use migrate_runtime::catalog::{clean_digest_comment, digest_of_rows_sql};
use migrate_runtime::{embed_migrations, Database, ErrorKind, MigrationSet, Migrator, SchemaName, Target};

/// The set `citus-probe` embeds.
static CITUS_SET: MigrationSet = embed_migrations!("fixtures/citus");

/// The set whose first two migrations refinery's own runner applies before `adopt` (as in the `adopt` tests).
static REFINERY: MigrationSet = embed_migrations!("fixtures/adopt_refinery");

/// `citus-probe ARGS` against the cluster's coordinator.
fn probe(cluster: &CitusCluster, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_citus-probe"));
    command.args(args).env("DATABASE_URL", cluster.url()).env_remove("DEFAULT_SCHEMA_NAME");
    command
}

/// Every version of the set, clean, as `history_rows_of` reads them.
fn all_applied() -> Vec<(i64, String, bool)> {
    CITUS_SET.iter().map(|m| (m.version, m.name.to_string(), false)).collect()
}

fn versions(client: &mut postgres::Client, schema: &str) -> Vec<i64> {
    integration_tests::history_rows_of(client, schema).into_iter().map(|(version, ..)| version).collect()
}

/// Whether `schema.table` is a Citus table, and its colocation group.
fn colocation(client: &mut postgres::Client, schema: &str, table: &str) -> Option<i32> {
    client
        .query_opt(
            "SELECT p.colocationid FROM pg_catalog.pg_dist_partition p JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )
        .unwrap()
        .map(|row| row.get(0))
}

fn index_is_valid(client: &mut postgres::Client, schema: &str, index: &str) -> Option<bool> {
    client
        .query_opt(
            "SELECT i.indisvalid FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &index],
        )
        .unwrap()
        .map(|row| row.get(0))
}

/// Boot migrate of a new tenant makes a distributed schema whose history table sits beside its tables (same
/// colocation group, so on the same worker), without the digest trigger Citus refuses; then a no-op, downgrade,
/// an upgrade whose index is built concurrently on the worker, and a reset, each leaving exactly its rows.
#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn a_tenant_is_a_distributed_schema_with_its_history_beside_its_tables_through_every_operation() {
    let cluster = CitusCluster::start();
    let mut client = cluster.connect();
    let migrator = Migrator::new(&CITUS_SET);

    let report = migrator.migrate(&mut client, "tenant_a").unwrap();
    assert_eq!(report.steps.len(), CITUS_SET.len());
    let distributed: i64 = client
        .query_one("SELECT count(*) FROM citus_schemas WHERE schema_name::text = 'tenant_a'", &[])
        .unwrap()
        .get(0);
    assert_eq!(distributed, 1, "the tenant is a distributed schema");
    let history = colocation(&mut client, "tenant_a", "schema_migrations").expect("the history table is distributed");
    assert_eq!(colocation(&mut client, "tenant_a", "customers"), Some(history), "history beside the tables");
    let triggers: i64 = client
        .query_one("SELECT count(*) FROM pg_catalog.pg_trigger WHERE tgrelid = 'tenant_a.schema_migrations'::regclass AND tgname = 'migrate_history_digest'", &[])
        .unwrap()
        .get(0);
    assert_eq!(triggers, 0, "no digest trigger on a distributed table");
    let comment: Option<String> = client
        .query_one("SELECT obj_description('tenant_a.schema_migrations'::regclass, 'pg_class')", &[])
        .unwrap()
        .get(0);
    assert_eq!(comment, None, "no digest comment that nothing would keep true");
    assert_eq!(integration_tests::history_rows_of(&mut client, "tenant_a"), all_applied());
    assert_eq!(index_is_valid(&mut client, "tenant_a", "orders_customer_id_idx"), Some(true));

    assert!(migrator.migrate(&mut client, "tenant_a").unwrap().steps.is_empty(), "the second boot does nothing");

    let report = migrator.downgrade(&mut client, "tenant_a", Target::Version(2)).unwrap();
    assert_eq!(report.steps.iter().map(|s| s.version).collect::<Vec<_>>(), [6, 5, 4, 3]);
    assert_eq!(versions(&mut client, "tenant_a"), [1, 2]);
    assert_eq!(index_is_valid(&mut client, "tenant_a", "orders_customer_id_idx"), None, "dropped concurrently");

    // The schema exists now: migration 3 runs outside any transaction, `CREATE INDEX CONCURRENTLY` on the worker.
    let report = migrator.migrate(&mut client, "tenant_a").unwrap();
    assert_eq!(report.steps.iter().map(|s| s.version).collect::<Vec<_>>(), [3, 4, 5, 6]);
    assert_eq!(integration_tests::history_rows_of(&mut client, "tenant_a"), all_applied());
    assert_eq!(index_is_valid(&mut client, "tenant_a", "orders_customer_id_idx"), Some(true));
    let customers: i64 = client.query_one("SELECT count(*) FROM tenant_a.customers", &[]).unwrap().get(0);
    assert_eq!(customers, 2, "the seed rows, once");

    client.batch_execute("INSERT INTO tenant_a.customers (email, full_name) VALUES ('c@example.com', 'C')").unwrap();
    migrator.reset(&mut client, "tenant_a").unwrap();
    assert_eq!(integration_tests::history_rows_of(&mut client, "tenant_a"), all_applied());
    let customers: i64 = client.query_one("SELECT count(*) FROM tenant_a.customers", &[]).unwrap().get(0);
    assert_eq!(customers, 2, "reset dropped the schema and built it again");
    assert!(colocation(&mut client, "tenant_a", "schema_migrations").is_some(), "still distributed after reset");
}

/// Sixteen replicas race over twelve new tenants with `--jobs 2` each: every migration is applied once per tenant,
/// the tenants are spread over both workers, and the survey (which reads the history tables' rows on Citus) then
/// finds them all current, and a history changed by hand not.
#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn racing_replicas_fan_out_over_both_workers_and_the_survey_reads_the_rows() {
    let cluster = CitusCluster::start();
    let names: Vec<String> = (0..12).map(|i| format!("tenant_{i}")).collect();
    let file = SchemasFile::new(&names);
    let applied = integration_tests::race((0..16).map(|_| {
        probe(&cluster, &["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "2", "--format", "json"])
    }));
    assert_eq!(applied, names.len() * CITUS_SET.len(), "each migration of each tenant applied once");
    let mut client = cluster.connect();
    for name in &names {
        assert_eq!(integration_tests::history_rows_of(&mut client, name), all_applied(), "{name}");
    }
    let workers: BTreeSet<u16> = names.iter().map(|name| cluster.worker_of(name)).collect();
    assert_eq!(workers, cluster.worker_ports().into_iter().collect::<BTreeSet<u16>>(), "tenants on both workers");

    let migrator = Migrator::new(&CITUS_SET);
    let database: Database = cluster.url().parse().unwrap();
    let fleet = Fleet::new(&migrator, vec![database]);
    let schemas: Vec<SchemaName> = names.iter().map(|name| SchemaName::new(name).unwrap()).collect();
    let head = Standing::Current { version: CITUS_SET.head() };
    assert_eq!(fleet.survey(0, &schemas).unwrap(), vec![head; names.len()]);
    let catalog = Catalog::read(&mut client, migrator.history_table_name(), Some(&schemas)).unwrap();
    assert!(catalog.schemas().iter().all(|s| s.digest.is_some()), "digests computed from the rows");

    // Written by hand (no trigger keeps a digest): the survey reads the rows, so it sees the change at once.
    client.batch_execute("UPDATE tenant_3.schema_migrations SET dirty = true WHERE version = 6").unwrap();
    let standings = fleet.survey(0, &schemas).unwrap();
    assert_eq!(standings[3], Standing::Differs);
    assert_eq!(standings.iter().filter(|s| s.is_current()).count(), names.len() - 1);
    client.batch_execute("UPDATE tenant_3.schema_migrations SET dirty = false WHERE version = 6").unwrap();

    // The CLI's no-op fan-out, status and verify over the cluster.
    let output = probe(&cluster, &["upgrade", "--schemas-file", file.path(), "--jobs", "4", "--format", "json"])
        .output()
        .unwrap();
    integration_tests::succeeded(&output);
    assert_eq!(integration_tests::steps_applied(&output), 0, "nothing left to do");
    let output = probe(&cluster, &["status", "--schemas-file", file.path()]).output().unwrap();
    integration_tests::succeeded(&output);
    let status = String::from_utf8_lossy(&output.stdout);
    assert_eq!(status.matches("at head").count(), names.len() + 1, "every tenant at head, and the summary: {status}");
    let output = probe(&cluster, &["verify", "--schemas-file", file.path()]).output().unwrap();
    integration_tests::succeeded(&output);
    let verify = String::from_utf8_lossy(&output.stdout);
    assert!(verify.contains(&format!("{} schema(s): {} equal", names.len(), names.len())), "{verify}");
}

/// A tenant moved to the other worker (`citus_schema_move`) between two runs is still migrated exactly once: its
/// history moved with its tables, and racing replicas apply the rest once.
#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn a_tenant_moved_to_another_worker_between_runs_is_migrated_exactly_once() {
    let cluster = CitusCluster::start();
    let mut client = cluster.connect();
    Migrator::new(&CITUS_SET).migrate_to(&mut client, "moving", Target::Version(2)).unwrap();
    let before = cluster.worker_of("moving");
    let other = cluster.worker_ports().into_iter().find(|&port| port != before).unwrap();
    cluster.move_schema("moving", other);
    assert_eq!(cluster.worker_of("moving"), other, "the tenant moved");
    assert_eq!(versions(&mut client, "moving"), [1, 2], "its history moved with it");

    let applied = integration_tests::race(
        (0..3).map(|_| probe(&cluster, &["upgrade", "--schemas", "moving", "--format", "json"])),
    );
    assert_eq!(applied, CITUS_SET.len() - 2, "migrations 3 to 6, once");
    assert_eq!(integration_tests::history_rows_of(&mut client, "moving"), all_applied());
    assert_eq!(index_is_valid(&mut client, "moving", "orders_customer_id_idx"), Some(true));
    let customers: i64 = client.query_one("SELECT count(*) FROM moving.customers", &[]).unwrap().get(0);
    assert_eq!(customers, 2, "the seed rows, once");
}

/// The survey has each worker compute the digests of the history shards it holds, in one statement on the
/// coordinator: every tenant's digest, on whichever worker, is the one its rows give through the coordinator; a
/// hand edit shows at once; a tenant moved to the other worker is read there. A role that may not run commands on
/// the workers gets nothing from that statement, and the survey reads the same digests through the coordinator.
#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn the_survey_reads_each_tenants_digest_on_its_worker_in_one_statement() {
    let cluster = CitusCluster::start();
    // The last name is data the statement must carry through SQL, the worker's query and JSON unchanged.
    let mut names: Vec<String> = (0..5).map(|i| format!("tenant_{i}")).collect();
    names.push(r#"tenant_5 'odd' "Quoted" \ name"#.to_owned());
    let output =
        probe(&cluster, &["upgrade", "--create", "--schemas", &names.join(","), "--format", "json"]).output().unwrap();
    integration_tests::succeeded(&output);
    let mut client = cluster.connect();
    let workers: BTreeSet<u16> = names.iter().map(|name| cluster.worker_of(name)).collect();
    assert_eq!(workers.len(), 2, "tenants on both workers");
    let migrator = Migrator::new(&CITUS_SET);
    let table = migrator.history_table_name();
    let on_workers = |client: &mut postgres::Client| -> Vec<(String, String)> {
        let mut digests = digests_on_workers(client, table, &names).unwrap();
        digests.sort();
        digests
    };
    let through_coordinator = |client: &mut postgres::Client, schema: &str| -> String {
        let sql = digest_of_rows_sql(&SchemaName::new(schema).unwrap(), table);
        client.query_one(&sql, &[]).unwrap().get("digest")
    };
    let head = clean_digest_comment(CITUS_SET.iter());
    let at_head: Vec<(String, String)> = names.iter().map(|name| (name.clone(), head.clone())).collect();
    assert_eq!(on_workers(&mut client), at_head, "every tenant, from its worker");

    client.batch_execute("UPDATE tenant_1.schema_migrations SET dirty = true WHERE version = 6").unwrap();
    let edited = through_coordinator(&mut client, "tenant_1");
    assert_ne!(edited, head);
    let mut expected = at_head.clone();
    expected[1].1 = edited;
    assert_eq!(on_workers(&mut client), expected, "the hand edit, seen on the worker");

    let before = cluster.worker_of("tenant_2");
    let other = cluster.worker_ports().into_iter().find(|&port| port != before).unwrap();
    cluster.move_schema("tenant_2", other);
    assert_eq!(on_workers(&mut client), expected, "the moved tenant, read on its new worker");

    // A role that may read the history tables but not run commands on the workers: the statement gives nothing,
    // and the survey reads the same digests through the coordinator.
    let grants: String = names
        .iter()
        .map(|name| {
            let name = migrate_runtime::quote_ident(name);
            format!("GRANT USAGE ON SCHEMA {name} TO surveyor; GRANT SELECT ON {name}.{table} TO surveyor; ")
        })
        .collect();
    client
        .batch_execute(&format!(
            "CREATE ROLE surveyor LOGIN; {grants} \
             REVOKE EXECUTE ON FUNCTION pg_catalog.master_run_on_worker(text[], integer[], text[], boolean) FROM PUBLIC"
        ))
        .unwrap();
    let surveyor_url = cluster.url().replace("postgres://postgres@", "postgres://surveyor@");
    let mut surveyor = postgres::Client::connect(&surveyor_url, postgres::NoTls).unwrap();
    assert_eq!(on_workers(&mut surveyor), Vec::new(), "refused as a whole");
    let schemas: Vec<SchemaName> = names.iter().map(|name| SchemaName::new(name).unwrap()).collect();
    let catalog = Catalog::read(&mut surveyor, table, Some(&schemas)).unwrap();
    let read: Vec<(String, String)> =
        catalog.schemas().iter().map(|s| (s.schema.clone(), s.digest.clone().unwrap())).collect();
    assert_eq!(read, expected, "the same digests, through the coordinator");
}

/// Tenants moved between the workers (`citus_schema_move`) while racing replicas migrate them are still migrated
/// exactly once: a mover watches the coordinator's locks and moves each tenant to the other worker as soon as a
/// replica holds its migration lock (the move waits for the migration in flight, and the next migration for the
/// move). Every migration of every tenant is applied once: history, seed rows, the concurrently built index valid.
#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn tenants_moved_between_workers_during_a_run_are_migrated_exactly_once() {
    let cluster = CitusCluster::start();
    let migrator = Migrator::new(&CITUS_SET);
    let names: Vec<String> = (0..6).map(|i| format!("moving_{i}")).collect();
    let mut client = cluster.connect();
    for name in &names {
        migrator.migrate_to(&mut client, name, Target::Version(1)).unwrap();
    }
    let workers_before: Vec<u16> = names.iter().map(|name| cluster.worker_of(name)).collect();
    let file = SchemasFile::new(&names);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (applied, moved) = std::thread::scope(|scope| {
        let mover = scope.spawn(|| {
            let mut watcher = cluster.connect();
            let keys: Vec<i64> = names
                .iter()
                .map(|name| integration_tests::migration_lock_key(name, migrator.history_table_name()))
                .collect();
            let mut moved = Vec::new();
            while moved.len() < names.len() && !done.load(std::sync::atomic::Ordering::Relaxed) {
                let locked: Vec<i64> = watcher
                    .query(
                        "SELECT (classid::bigint << 32) | objid::bigint FROM pg_catalog.pg_locks \
                         WHERE locktype = 'advisory' AND granted AND objsubid = 1",
                        &[],
                    )
                    .unwrap()
                    .iter()
                    .map(|row| row.get(0))
                    .collect();
                let Some(i) = (0..names.len()).find(|i| !moved.contains(i) && locked.contains(&keys[*i])) else {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    continue;
                };
                let to = cluster.worker_ports().into_iter().find(|&port| port != workers_before[i]).unwrap();
                cluster.move_schema(&names[i], to);
                moved.push(i);
            }
            moved
        });
        let applied =
            integration_tests::race((0..3).map(|_| {
                probe(&cluster, &["upgrade", "--schemas-file", file.path(), "--jobs", "2", "--format", "json"])
            }));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (applied, mover.join().unwrap())
    });
    assert!(!moved.is_empty(), "a tenant was moved while a replica held its migration lock");
    for &i in &moved {
        assert_ne!(cluster.worker_of(&names[i]), workers_before[i], "{} moved", names[i]);
    }
    assert_eq!(applied, names.len() * (CITUS_SET.len() - 1), "migrations 2 to 6 of each tenant, once");
    for name in &names {
        assert_eq!(integration_tests::history_rows_of(&mut client, name), all_applied(), "{name}");
        assert_eq!(index_is_valid(&mut client, name, "orders_customer_id_idx"), Some(true), "{name}");
        let customers: i64 = client.query_one(&format!("SELECT count(*) FROM {name}.customers"), &[]).unwrap().get(0);
        assert_eq!(customers, 2, "{name}: the seed rows, once");
    }
}

/// Through a PgBouncer in transaction mode in front of the coordinator (four server connections): sixteen replicas
/// of a service booting at once for the same new tenant apply its migrations once (a distributed schema); sixteen
/// replicas racing to create and migrate eight tenants apply each migration once; the no-op run after them (the
/// survey's statement on the workers included) applies nothing.
#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn through_pgbouncer_in_front_of_the_coordinator_racing_replicas_migrate_each_tenant_once() {
    let cluster = CitusCluster::start();
    let bouncer = PgBouncerConfig::new(PoolMode::Transaction, 4).server(&cluster.url()).start();
    let pooled = |args: &[&str]| {
        let mut command = probe(&cluster, args);
        command.env("DATABASE_URL", bouncer.url("postgres"));
        command
    };
    let mut client = cluster.connect();
    let steps: usize = std::thread::scope(|scope| {
        let boots: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    let mut pooled = postgres::Client::connect(&bouncer.url("postgres"), postgres::NoTls).unwrap();
                    Migrator::new(&CITUS_SET).migrate(&mut pooled, "booted").unwrap().steps.len()
                })
            })
            .collect();
        boots.into_iter().map(|boot| boot.join().unwrap()).sum()
    });
    assert_eq!(steps, CITUS_SET.len(), "the new tenant's migrations, once among sixteen replicas");
    assert_eq!(integration_tests::history_rows_of(&mut client, "booted"), all_applied());
    assert!(colocation(&mut client, "booted", "schema_migrations").is_some(), "a distributed schema");

    let names: Vec<String> = (0..8).map(|i| format!("pooled_{i}")).collect();
    let file = SchemasFile::new(&names);
    let applied =
        integration_tests::race((0..16).map(|_| {
            pooled(&["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "2", "--format", "json"])
        }));
    assert_eq!(applied, names.len() * CITUS_SET.len(), "each migration of each tenant applied once");
    for name in &names {
        assert_eq!(integration_tests::history_rows_of(&mut client, name), all_applied(), "{name}");
        assert_eq!(index_is_valid(&mut client, name, "orders_customer_id_idx"), Some(true), "{name}");
    }
    let output = pooled(&["upgrade", "--schemas-file", file.path(), "--format", "json"]).output().unwrap();
    integration_tests::succeeded(&output);
    assert_eq!(integration_tests::steps_applied(&output), 0, "nothing left to do");
    let servers = bouncer.servers();
    assert!(!servers.is_empty() && servers.len() <= 4, "the replicas shared PgBouncer's pool: {servers:?}");
}

/// A no-transaction migration killed in the middle of its `CREATE INDEX CONCURRENTLY` (which Citus builds on the
/// tenant's worker), the process and its coordinator backend gone, is resumed by one plain re-run: the dirty claim
/// is taken over once its lease ran out, the index is valid on the coordinator and on the worker's shard, and the
/// history is exact and clean.
#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn a_kill_during_a_concurrent_index_build_on_the_worker_is_resumed_by_a_plain_rerun() {
    let cluster = CitusCluster::start();
    let mut client = cluster.connect();
    Migrator::new(&CITUS_SET).migrate_to(&mut client, "building", Target::Version(2)).unwrap();
    client
        .batch_execute(
            "INSERT INTO building.customers (email, full_name) VALUES ('x@example.com', 'X'); \
             INSERT INTO building.orders (customer_id, total_cents) \
             SELECT c.id, g FROM building.customers c, generate_series(1, 1000000) g",
        )
        .unwrap();
    let mut worker = cluster.connect_node(cluster.worker_of("building"));
    let schemas = ["building".to_owned()];
    let mut child = probe(&cluster, &["upgrade", "-s", "building"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Citus hides shards from `pg_class` on a worker: the build's table and index are named through `regclass`.
    let seen = integration_tests::wait_for(std::time::Duration::from_secs(60), || {
        let building: bool = worker
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_progress_create_index \
                 WHERE relid::regclass::text LIKE 'building.orders%' AND phase LIKE 'building index%')",
                &[],
            )
            .unwrap()
            .get(0);
        building || child.try_wait().unwrap().is_some()
    });
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen && running, "the CLI was killed while the worker built the index");
    let backends: Vec<i32> = client
        .query(
            "SELECT pid FROM pg_catalog.pg_stat_activity \
             WHERE query LIKE '%CREATE INDEX CONCURRENTLY%' AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(backends.len(), 1, "the runner's backend on the coordinator");
    client.query_one("SELECT pg_terminate_backend($1::int)", &[&backends[0]]).unwrap();
    integration_tests::wait_for(std::time::Duration::from_secs(10), || {
        let alive: bool = client
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", &[&backends[0]])
            .unwrap()
            .get(0);
        !alive
    });
    let rows = integration_tests::history_rows_of(&mut client, "building");
    assert_eq!(rows.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(), [(1, false), (2, false), (3, true)], "claimed");
    assert_eq!(index_is_valid(&mut client, "building", "orders_customer_id_idx"), Some(false), "left INVALID");
    // The shard's own index on the worker (the worker's `pg_class` shows shards once told to).
    worker.batch_execute("SET citus.override_table_visibility = off").unwrap();
    let shard_indexes = |worker: &mut postgres::Client| -> Vec<(String, bool)> {
        worker
            .query(
                "SELECT c.relname::text, i.indisvalid FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_catalog.pg_class t ON t.oid = i.indrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'building' AND t.relname LIKE 'orders\\_%' AND c.relname LIKE 'orders_customer_id_idx%'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    };
    let before = shard_indexes(&mut worker);
    assert!(before.len() == 1 && !before[0].1, "the shard's build was cut off, its index INVALID: {before:?}");

    integration_tests::expire_claims(&mut client, &schemas);
    let output = probe(&cluster, &["upgrade", "-s", "building"]).output().unwrap();
    integration_tests::succeeded(&output);
    assert_eq!(integration_tests::history_rows_of(&mut client, "building"), all_applied());
    assert_eq!(index_is_valid(&mut client, "building", "orders_customer_id_idx"), Some(true));
    let after = shard_indexes(&mut worker);
    assert_eq!(after.len(), 1, "one index on the shard: {after:?}");
    assert!(after[0].1, "valid on the shard: {after:?}");
}

/// `probe ARGS`: its exit code and stdout.
fn run_probe(cluster: &CitusCluster, args: &[&str]) -> (Option<i32>, String) {
    let output = probe(cluster, args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)))
}

/// The other operations on distributed schemas, through the CLI as an operator runs them: `history` and `current`;
/// `diff` of two tenants (equal, then a column added by hand: exit 5, naming it); `baseline` of a tenant built by
/// hand, then `upgrade`; and `adopt` of what refinery's own runner applied in a distributed schema (its table
/// distributed there too), then upgrade.
#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn history_current_diff_baseline_and_adopt_work_on_distributed_schemas() {
    let cluster = CitusCluster::start();
    let mut client = cluster.connect();
    let (code, out) = run_probe(&cluster, &["upgrade", "--create", "--schemas", "one,two"]);
    assert_eq!(code, Some(0), "{out}");

    let (code, out) = run_probe(&cluster, &["history", "-s", "one"]);
    assert_eq!(code, Some(0), "{out}");
    for migration in CITUS_SET.iter() {
        assert!(out.contains(&*migration.name), "{} in:\n{out}", migration.name);
    }
    let (code, out) = run_probe(&cluster, &["current", "--schemas", "one,two"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("2 schema(s): 2 at head"), "{out}");

    let (code, out) = run_probe(&cluster, &["diff", "one", "two"]);
    assert_eq!(code, Some(0), "equal: {out}");
    client.batch_execute("ALTER TABLE two.customers ADD COLUMN note text").unwrap();
    let (code, out) = run_probe(&cluster, &["diff", "one", "two"]);
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("note"), "{out}");

    // Built by hand: the first two migrations' effects in a distributed schema, no history.
    client.batch_execute("CREATE SCHEMA handmade").unwrap();
    for migration in CITUS_SET.iter().take(2) {
        client.batch_execute(&format!("SET search_path TO handmade;\n{}", migration.up.sql)).unwrap();
    }
    client.batch_execute("RESET search_path").unwrap();
    let (code, out) = run_probe(&cluster, &["baseline", "-s", "handmade", "--version", "2"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(versions(&mut client, "handmade"), [1, 2], "recorded, not run");
    let (code, out) = run_probe(&cluster, &["upgrade", "-s", "handmade", "--format", "json"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(versions(&mut client, "handmade"), [1, 2, 3, 4, 5, 6]);
    assert_eq!(index_is_valid(&mut client, "handmade", "orders_customer_id_idx"), Some(true));

    // refinery's own runner, in a distributed schema: its history table is distributed beside the tables.
    client.batch_execute("CREATE SCHEMA adopted").unwrap();
    let folder = refinery_folder_with(&["V1__create_accounts.sql", "V2__accounts_display_name.sql"]);
    let mut refinery_client = cluster.connect();
    refinery_client.batch_execute("SET search_path TO adopted").unwrap();
    let migrations = refinery::load_sql_migrations(&folder).unwrap();
    refinery::Runner::new(&migrations).run(&mut refinery_client).unwrap();
    std::fs::remove_dir_all(&folder).unwrap();
    assert!(colocation(&mut client, "adopted", "refinery_schema_history").is_some(), "refinery's table, distributed");
    let migrator = Migrator::new(&REFINERY);
    let report = migrator.adopt(&mut client, "adopted", migrate_runtime::Tool::Refinery).unwrap();
    assert_eq!(report.fixes.iter().map(|fix| fix.version).collect::<Vec<_>>(), [1, 2]);
    let report = migrator.migrate(&mut client, "adopted").unwrap();
    assert_eq!(report.steps.iter().map(|step| step.version).collect::<Vec<_>>(), [3], "only what is newer runs");
    assert_eq!(versions(&mut client, "adopted"), [1, 2, 3]);
}

/// A folder of the test's own holding `files` of `tests/fixtures/adopt_refinery`.
fn refinery_folder_with(files: &[&str]) -> std::path::PathBuf {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/adopt_refinery");
    let folder = std::env::temp_dir().join(format!("citus-refinery-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    for file in files {
        std::fs::copy(fixture.join(file), folder.join(file)).unwrap();
    }
    folder
}

/// A schema created while schema-based sharding is off stays on the coordinator, a plain local schema: its history
/// table keeps the digest trigger and its comment, and one survey over it and a distributed tenant finds both
/// current, the first from the comment, the second from the rows.
#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn a_local_schema_on_the_coordinator_keeps_the_digest_trigger_beside_distributed_tenants() {
    let cluster = CitusCluster::start();
    let migrator = Migrator::new(&CITUS_SET);
    let local_url = format!("{}&options=-c%20citus.enable_schema_based_sharding%3Doff", cluster.url());
    let mut local = postgres::Client::connect(&local_url, postgres::NoTls).unwrap();
    migrator.migrate(&mut local, "local_tenant").unwrap();
    let mut client = cluster.connect();
    migrator.migrate(&mut client, "sharded_tenant").unwrap();

    assert_eq!(colocation(&mut client, "local_tenant", "schema_migrations"), None, "not a Citus table");
    assert!(colocation(&mut client, "sharded_tenant", "schema_migrations").is_some());
    let has_trigger = |client: &mut postgres::Client, schema: &str| -> bool {
        client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgname = 'migrate_history_digest' \
                 AND tgrelid = (quote_ident($1) || '.schema_migrations')::regclass)",
                &[&schema],
            )
            .unwrap()
            .get(0)
    };
    assert!(has_trigger(&mut client, "local_tenant"), "the local table keeps the trigger");
    assert!(!has_trigger(&mut client, "sharded_tenant"));

    let schemas = [SchemaName::new("local_tenant").unwrap(), SchemaName::new("sharded_tenant").unwrap()];
    let catalog = Catalog::read(&mut client, migrator.history_table_name(), Some(&schemas)).unwrap();
    let digests: Vec<Option<String>> = catalog.schemas().iter().map(|s| s.digest.clone()).collect();
    assert_eq!(digests[0], digests[1], "the comment the trigger keeps and the digest of the rows agree");
    let names = ["local_tenant".to_owned(), "sharded_tenant".to_owned()];
    let on_workers = digests_on_workers(&mut client, migrator.history_table_name(), &names).unwrap();
    assert_eq!(on_workers, [("sharded_tenant".to_owned(), digests[1].clone().unwrap())], "only the distributed one");
    let database: Database = cluster.url().parse().unwrap();
    let fleet = Fleet::new(&migrator, vec![database]);
    assert_eq!(fleet.survey(0, &schemas).unwrap(), vec![Standing::Current { version: CITUS_SET.head() }; 2]);
}

/// On Citus every statement is a query string of its own; a failing migration is still reported at its file, line
/// and column, and leaves nothing of itself (its transaction, on the coordinator and the worker, rolled back). The
/// failure recorded for `status` on the distributed history table reads back, until the history moves on.
#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn a_failing_migration_on_citus_names_its_position_and_leaves_nothing_of_itself() {
    let cluster = CitusCluster::start();
    let mut client = cluster.connect();
    let first = set(vec![migration(1, "ok", "CREATE TABLE ok (id int);", None)]);
    Migrator::new(&first).migrate(&mut client, "failing").unwrap();
    let migrations = set(vec![
        migration(1, "ok", "CREATE TABLE ok (id int);", None),
        migration(2, "index", "CREATE INDEX ok_id ON ok (id);", None),
        migration(3, "broken", "CREATE TABLE half (id int);\n\nSELECT no_such_column FROM half;\n", None),
    ]);
    let error = Migrator::new(&migrations).migrate(&mut client, "failing").unwrap_err();
    match error.kind() {
        ErrorKind::MigrationFailed { version, file, code, position, committed, .. } => {
            assert_eq!(*version, 3);
            assert_eq!(file, "migrations/3_broken.up.sql");
            assert_eq!(code.as_ref().map(|c| c.as_str()), Some("42703"));
            assert_eq!(*position, Some((3, 8)), "the position in the file, as on one server");
            assert_eq!(committed.iter().map(|s| s.version).collect::<Vec<_>>(), [2], "migration 2 committed");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert_eq!(versions(&mut client, "failing"), [1, 2]);
    assert_eq!(integration_tests::tables(&mut client, "failing"), ["ok", "schema_migrations"], "`half` rolled back");

    // What the CLI does after a failed run: record it on the distributed history table, for `status`.
    let failure = migrate_ops::LastFailure::of(&error, std::time::SystemTime::now()).unwrap();
    let schema = SchemaName::new("failing").unwrap();
    migrate_ops::record_failure(&mut client, &schema, "schema_migrations", &failure).unwrap();
    let status = Migrator::new(&migrations).status(&mut client, "failing").unwrap();
    let recorded = status.last_failure.expect("the failure, recorded");
    assert_eq!((recorded.version, recorded.sqlstate.as_deref()), (Some(3), Some("42703")));
    client.batch_execute("DELETE FROM failing.schema_migrations WHERE version = 2").unwrap();
    let status = Migrator::new(&migrations).status(&mut client, "failing").unwrap();
    assert_eq!(status.last_failure, None, "the history moved on: the record no longer stands");
}

#[test]
#[ignore = "needs Citus: scripts/test.sh runs it with --ignored"]
fn autogenerate_and_templates_are_refused_on_citus_with_what_to_do_instead() {
    let cluster = CitusCluster::start();
    let mut client = cluster.connect();
    let migrator = Migrator::new(&CITUS_SET);
    migrator.migrate(&mut client, "dev").unwrap();
    let dev = SchemaName::new("dev").unwrap();
    let error = migrate_ops::autogenerate(&mut client, &migrator, &migrate_ops::Desired::Schema(dev.clone()), &[]);
    let error = error.unwrap_err();
    assert!(matches!(error, migrate_ops::GenerateError::Citus), "{error}");
    assert!(error.to_string().starts_with("revision --autogenerate is not supported on Citus"), "{error}");
    let error = migrate_ops::Template::prepare(&mut client, &migrator, &dev).unwrap_err();
    assert_eq!(
        error.to_string(),
        "building schemas from template \"dev\" is not supported on Citus: drop --template, and new schemas are replayed"
    );
    // Nothing was made: no scratch schema, no spare.
    let schemas: i64 = client
        .query_one("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'migrate\\_reference\\_%' OR nspname LIKE 'dev\\_\\_spare%'", &[])
        .unwrap()
        .get(0);
    assert_eq!(schemas, 0);
}
