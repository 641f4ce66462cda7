-- Staged customers with a country become the customer dimension.
CREATE TABLE IF NOT EXISTS retail_demo.dim_customer (
  customer_id INT, name STRING, country STRING, currency STRING, updated_at TIMESTAMP)
USING DELTA;
MERGE INTO retail_demo.dim_customer t
USING (SELECT customer_id, name, country, currency, updated_at
         FROM retail_demo.stg_customers WHERE country IS NOT NULL) s
   ON t.customer_id = s.customer_id
 WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET *
 WHEN NOT MATCHED THEN INSERT *;
