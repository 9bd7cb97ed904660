-- migrate:allow index-without-concurrently, set-not-null
CREATE INDEX t_a_idx ON t (a);
ALTER TABLE t ALTER COLUMN a SET NOT NULL;
