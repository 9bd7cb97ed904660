CREATE VIEW order_totals AS
SELECT o.id AS order_id,
       o.customer_id,
       o.status,
       coalesce(sum(i.quantity * i.unit_price_cents), 0) AS total_cents
FROM orders o
LEFT JOIN order_items i ON i.order_id = o.id
GROUP BY o.id;
