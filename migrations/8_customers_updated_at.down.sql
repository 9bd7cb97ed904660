DROP TRIGGER customers_touch_updated_at ON customers;
DROP FUNCTION touch_updated_at();
ALTER TABLE customers DROP COLUMN updated_at;
