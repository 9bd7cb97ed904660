CREATE TABLE labels (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    color       char(7) NOT NULL DEFAULT '#888888'
);
CREATE TABLE task_labels (
    task_id     bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    label_id    integer NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, label_id)
);
