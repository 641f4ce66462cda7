-- Customers changed after the DELTA_DATE watermark (1900-01-01 in bulk mode), up to the processing date.
-- Safe to re-run: the MERGE on customer_id rewrites a customer only for a newer change.
CREATE SCHEMA IF NOT EXISTS retail_demo;
CREATE TABLE IF NOT EXISTS retail_demo.stg_customers (
  customer_id INT, name STRING, country STRING, currency STRING, updated_at TIMESTAMP, execution_id STRING)
USING DELTA;
MERGE INTO retail_demo.stg_customers t
USING (SELECT CAST(customer_id AS INT) AS customer_id, name, country, currency,
              CAST(updated_at AS TIMESTAMP) AS updated_at, etl.execution_id AS execution_id
         FROM IDENTIFIER('json.`' || etl.in_file_path || '`')
        WHERE CAST(updated_at AS TIMESTAMP) > CAST(etl.watermark_value AS TIMESTAMP)
          AND CAST(updated_at AS DATE) <= etl.processing_date) s
   ON t.customer_id = s.customer_id
 WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET *
 WHEN NOT MATCHED THEN INSERT *;
