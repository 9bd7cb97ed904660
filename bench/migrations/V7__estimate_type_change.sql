-- The benchmark's set measures a type change as such (the column is new and empty here).
-- migrate:allow column-type-change
ALTER TABLE tasks ADD COLUMN estimate_hours integer;
ALTER TABLE tasks ALTER COLUMN estimate_hours TYPE numeric(6, 2) USING estimate_hours::numeric(6, 2);
