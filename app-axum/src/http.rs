//! The HTTP side on axum: every handler's queries run in one transaction from `begin_in_schema_sqlx`, which sets
//! `search_path` with `SET LOCAL`, so they resolve in the schema on a direct connection and behind a transaction
//! pooler alike. Every query is `persistent(false)`: an unnamed statement, where sqlx would otherwise leave a named
//! one (`sqlx_s_1`) on the server connection, which a pooler without prepared-statement tracking (PgBouncer before
//! 1.21) hands to another client (`prepared statement "sqlx_s_1" already exists`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use migrate_runtime::{begin_in_schema_sqlx, SchemaName};
use serde_json::{json, Value};
use sqlx::PgPool;

struct App {
    pool: PgPool,
    schema: SchemaName,
}

type Answer = (StatusCode, Json<Value>);

pub fn router(pool: PgPool, schema: SchemaName) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/products", get(products))
        .route("/tenants/{tenant}/products", get(tenant_products))
        .with_state(Arc::new(App { pool, schema }))
}

/// The schema the queries really use, and the newest migration recorded in it.
async fn health(State(app): State<Arc<App>>) -> Answer {
    let read = async {
        let mut transaction = begin_in_schema_sqlx(&app.pool, &app.schema, &[]).await?;
        let (current, version): (Option<String>, Option<i64>) =
            sqlx::query_as("SELECT current_schema()::text, (SELECT max(version) FROM schema_migrations)")
                .persistent(false)
                .fetch_one(&mut *transaction)
                .await?;
        transaction.commit().await?;
        Ok::<_, sqlx::Error>(
            json!({ "status": "ok", "schema": app.schema.as_str(), "current_schema": current, "version": version }),
        )
    };
    answer(read.await, "could not read the schema version")
}

async fn products(State(app): State<Arc<App>>) -> Answer {
    answer(products_of(&app.pool, &app.schema).await, "could not read products")
}

/// A tenant per request: the name is checked before it reaches SQL, and a tenant without a schema is a 404, never
/// another schema's rows (its `search_path` holds the tenant's schema alone).
async fn tenant_products(State(app): State<Arc<App>>, Path(tenant): Path<String>) -> Answer {
    let schema = match SchemaName::new(&tenant) {
        Ok(schema) => schema,
        Err(invalid) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": invalid.to_string() }))),
    };
    match products_of(&app.pool, &schema).await {
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P01") => {
            (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no tenant {:?}", schema.as_str()) })))
        }
        read => answer(read, "could not read products"),
    }
}

/// Read a table of `schema`: no schema name in the query, `search_path` set for its transaction.
async fn products_of(pool: &PgPool, schema: &SchemaName) -> Result<Value, sqlx::Error> {
    let mut transaction = begin_in_schema_sqlx(pool, schema, &[]).await?;
    let rows: Vec<(String, String, i32)> = sqlx::query_as("SELECT sku, name, price_cents FROM products ORDER BY sku")
        .persistent(false)
        .fetch_all(&mut *transaction)
        .await?;
    transaction.commit().await?;
    let products: Vec<Value> = rows
        .into_iter()
        .map(|(sku, name, price_cents)| json!({ "sku": sku, "name": name, "price_cents": price_cents }))
        .collect();
    Ok(json!({ "schema": schema.as_str(), "products": products }))
}

fn answer(result: Result<Value, sqlx::Error>, context: &str) -> Answer {
    match result {
        Ok(body) => (StatusCode::OK, Json(body)),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": format!("{context}: {error}") }))),
    }
}
