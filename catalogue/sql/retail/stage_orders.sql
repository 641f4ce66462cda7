-- Orders above the DELTA_ID watermark up to the processing date; the last query moves the watermark.
-- Safe to re-run: the MERGE on order_id loads each order once and rewrites it only when it changed, and the
-- new watermark is the highest id the target holds, so a load an interrupted attempt committed still counts.
CREATE SCHEMA IF NOT EXISTS retail_demo;
CREATE TABLE IF NOT EXISTS retail_demo.stg_orders (
  order_id BIGINT, customer_id INT, order_date DATE, amount DECIMAL(12, 2), currency STRING, status STRING,
  execution_id STRING)
USING DELTA;
MERGE INTO retail_demo.stg_orders t
USING (SELECT CAST(order_id AS BIGINT) AS order_id, CAST(customer_id AS INT) AS customer_id,
              CAST(order_date AS DATE) AS order_date, CAST(amount AS DECIMAL(12, 2)) AS amount, currency, status,
              etl.execution_id AS execution_id
         FROM IDENTIFIER('json.`' || etl.in_file_path || '`')
        WHERE order_id > CAST(etl.watermark_value AS BIGINT)
          AND CAST(order_date AS DATE) <= etl.processing_date) s
   ON t.order_id = s.order_id
 WHEN MATCHED AND NOT (t.customer_id <=> s.customer_id AND t.order_date <=> s.order_date AND t.amount <=> s.amount
                      AND t.currency <=> s.currency AND t.status <=> s.status) THEN UPDATE SET *
 WHEN NOT MATCHED THEN INSERT *;
SELECT max(order_id) AS new_watermark, count_if(execution_id = etl.execution_id) AS rows_read
  FROM retail_demo.stg_orders;
