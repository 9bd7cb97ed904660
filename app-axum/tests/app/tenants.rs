//! A tenant per request: `/tenants/{tenant}/products` reads the tenant's own schema through
//! `begin_in_schema_sqlx`, never `public`'s rows nor another tenant's; a tenant without a schema is a 404 and a
//! name that is not a schema name a 400.

use integration_tests::TestDatabase;

#[test]
fn each_request_reads_its_own_tenants_schema_and_nothing_else() {
    let database = TestDatabase::labelled("axum_tenants");
    database
        .client()
        .batch_execute(
            "CREATE TABLE public.products (sku text, name text, price_cents integer);
             INSERT INTO public.products VALUES ('DECOY-1', 'decoy', 1);",
        )
        .unwrap();
    crate::migrate(&database.url, &["upgrade", "--create", "--schemas", "tenant-a,tenant-b", "--yes"]);
    database
        .client()
        .batch_execute(r#"INSERT INTO "tenant-b".products (sku, name, price_cents) VALUES ('B-ONLY', 'b', 5)"#)
        .unwrap();
    let service = crate::start("tenant-a", &[("DATABASE_URL", &database.url)]).unwrap();
    assert!(service.boot_log.contains("(0 migration(s) applied)"), "{}", service.boot_log);

    let seeded = ["MUG-001", "TEA-001", "TEA-002"];
    for _ in 0..3 {
        let a = service.get("/tenants/tenant-a/products");
        let b = service.get("/tenants/tenant-b/products");
        assert_eq!((a["schema"].as_str(), crate::skus(&a)), (Some("tenant-a"), seeded.map(String::from).to_vec()));
        assert_eq!(crate::skus(&b), ["B-ONLY", "MUG-001", "TEA-001", "TEA-002"]);
    }
    let (status, body) = service.request("/tenants/tenant-c/products");
    assert_eq!((status, body["error"].as_str()), (404, Some("no tenant \"tenant-c\"")), "not public's decoys");
    let (status, body) = service.request("/tenants/pg_catalog/products");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("invalid schema name \"pg_catalog\""), "{body}");
}
