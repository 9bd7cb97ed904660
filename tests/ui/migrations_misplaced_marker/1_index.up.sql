SELECT 1;
-- migrate:no-transaction
CREATE INDEX CONCURRENTLY i ON t (id);
