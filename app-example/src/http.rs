//! The HTTP side: `GET /health` and `GET /products`, on 127.0.0.1.
//!
//! Every handler's queries run in one transaction opened by `in_schema`, which sets `search_path` to the schema
//! with `SET LOCAL`: the queries resolve in the schema on a direct connection and behind a pooler in transaction
//! mode alike, where a connection-time setting would be dropped or refused. The queries are sent as unnamed
//! statements (`query_typed*`): a named prepared statement outlives the transaction on the server connection,
//! which a transaction pooler then hands to another client (`prepared statement "s0" already exists`).

use anyhow::Context;
use migrate_runtime::{in_schema, SchemaName};
use serde_json::{json, Value};

pub fn serve(port: u16, schema: SchemaName, mut client: postgres::Client) -> anyhow::Result<()> {
    let server = tiny_http::Server::http(("127.0.0.1", port))
        .map_err(|e| anyhow::anyhow!("could not listen on 127.0.0.1:{port}: {e}"))?;
    // With PORT=0 the system picks the port: say which.
    let bound = server.server_addr().to_ip().map_or(port, |address| address.port());
    eprintln!("listening on http://127.0.0.1:{bound}");
    for request in server.incoming_requests() {
        let (status, body) = match (request.method(), request.url()) {
            (tiny_http::Method::Get, "/health") => respond(health(&schema, &mut client)),
            (tiny_http::Method::Get, "/products") => respond(products(&schema, &mut client)),
            _ => (404, json!({ "error": "not found" })),
        };
        let mut response = tiny_http::Response::from_string(body.to_string()).with_status_code(status);
        if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", "application/json") {
            response.add_header(header);
        }
        if let Err(error) = request.respond(response) {
            eprintln!("could not answer a request: {error}");
        }
    }
    Ok(())
}

fn respond(result: anyhow::Result<Value>) -> (u16, Value) {
    match result {
        Ok(body) => (200, body),
        Err(error) => (500, json!({ "error": format!("{error:#}") })),
    }
}

/// The schema the queries really use, and the newest migration recorded in it.
fn health(schema: &SchemaName, client: &mut postgres::Client) -> anyhow::Result<Value> {
    let row = in_schema(client, schema, |tx| {
        tx.query_typed_one("SELECT current_schema(), (SELECT max(version) FROM schema_migrations)", &[])
    })
    .context("could not read the schema version")?;
    let current: Option<String> = row.get(0);
    let version: Option<i64> = row.get(1);
    Ok(json!({ "status": "ok", "schema": schema.as_str(), "current_schema": current, "version": version }))
}

/// Read a table of the schema: no schema name in the query, `search_path` set for its transaction.
fn products(schema: &SchemaName, client: &mut postgres::Client) -> anyhow::Result<Value> {
    let rows =
        in_schema(client, schema, |tx| tx.query_typed("SELECT sku, name, price_cents FROM products ORDER BY sku", &[]))
            .context("could not read products")?;
    let products: Vec<Value> = rows
        .iter()
        .map(|row| json!({ "sku": row.get::<_, String>(0), "name": row.get::<_, String>(1), "price_cents": row.get::<_, i32>(2) }))
        .collect();
    Ok(json!({ "products": products }))
}
