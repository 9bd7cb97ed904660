-- migrate:no-transaction
-- Built concurrently so that a large orders table stays writable while the index builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx ON orders (customer_id, created_at DESC);
