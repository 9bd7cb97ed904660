INSERT INTO products (sku, name, price_cents) VALUES
    ('TEA-001', 'Green tea, 100 g', 1250),
    ('TEA-002', 'Black tea, 100 g', 990),
    ('MUG-001', 'Stoneware mug', 1800);
