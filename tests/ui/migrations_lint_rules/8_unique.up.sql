ALTER TABLE orders ADD CONSTRAINT orders_note_key UNIQUE (note);
