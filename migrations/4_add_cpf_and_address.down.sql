DROP INDEX customers_cpf_key;
ALTER TABLE customers DROP COLUMN address, DROP COLUMN cpf;
