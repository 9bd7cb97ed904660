-- A validated CHECK on a table the benchmark builds empty.
-- migrate:allow constraint-without-not-valid
ALTER TABLE accounts ADD COLUMN locale text NOT NULL DEFAULT 'en';
ALTER TABLE accounts ADD CONSTRAINT accounts_locale_check CHECK (locale ~ '^[a-z]{2}(-[A-Z]{2})?$');
