-- migrate:no-transaction
CREATE INDEX CONCURRENTLY t_id_idx ON t (id);
