-- Paid orders of known customers with a positive amount.
CREATE TABLE IF NOT EXISTS retail_demo.valid_orders (
  order_id BIGINT, customer_id INT, country STRING, order_date DATE, amount DECIMAL(12, 2), currency STRING)
USING DELTA;
MERGE INTO retail_demo.valid_orders t
USING (SELECT o.order_id, o.customer_id, c.country, o.order_date, o.amount, o.currency
         FROM retail_demo.stg_orders o
         JOIN retail_demo.dim_customer c ON c.customer_id = o.customer_id
        WHERE o.status = 'PAID' AND o.amount > 0 AND o.order_date <= etl.processing_date) s
   ON t.order_id = s.order_id
 WHEN NOT MATCHED THEN INSERT *;
