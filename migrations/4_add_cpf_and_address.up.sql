-- Brazilian taxpayer id and a postal address, both optional for existing customers.
ALTER TABLE customers
    ADD COLUMN cpf text CHECK (cpf ~ '^[0-9]{11}$'),
    ADD COLUMN address text;
CREATE UNIQUE INDEX customers_cpf_key ON customers (cpf);
