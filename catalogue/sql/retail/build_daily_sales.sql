-- Revenue and order count per order date and country, up to the processing date.
CREATE TABLE IF NOT EXISTS retail_demo.daily_sales (
  order_date DATE, country STRING, orders BIGINT, revenue_eur DECIMAL(16, 2), execution_id STRING)
USING DELTA;
MERGE INTO retail_demo.daily_sales t
USING (SELECT order_date, country, count(*) AS orders, CAST(sum(amount_eur) AS DECIMAL(16, 2)) AS revenue_eur,
              etl.execution_id AS execution_id
         FROM retail_demo.orders_eur WHERE order_date <= etl.processing_date
        GROUP BY order_date, country) s
   ON t.order_date = s.order_date AND t.country = s.country
 WHEN MATCHED AND (t.orders <> s.orders OR t.revenue_eur <> s.revenue_eur) THEN UPDATE SET *
 WHEN NOT MATCHED THEN INSERT *;
