-- Brazilian taxpayer id and a postal address, both optional for existing customers.
ALTER TABLE customers
    ADD COLUMN cpf text CHECK (cpf ~ '^[0-9]{11}$'),
    ADD COLUMN address text;
-- The new column is empty when this runs, so the index builds at once; a busy table would get
-- its index built concurrently, in a no-transaction file, instead.
-- migrate:allow index-without-concurrently
CREATE UNIQUE INDEX customers_cpf_key ON customers (cpf);
