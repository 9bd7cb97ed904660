CREATE TYPE task_priority AS ENUM ('low', 'normal', 'high', 'urgent');
ALTER TABLE tasks ADD COLUMN priority task_priority NOT NULL DEFAULT 'normal';
