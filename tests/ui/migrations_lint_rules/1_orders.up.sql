CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, total int, note text);
-- A table this file creates is exempt: nothing uses it yet.
CREATE INDEX orders_total_idx ON orders (total);
