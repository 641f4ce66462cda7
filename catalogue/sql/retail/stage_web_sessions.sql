-- Web sessions above the DELTA_ID watermark up to the processing date (an optional source).
-- Safe to re-run: the MERGE on session_id loads each session once, and the new watermark is the highest id
-- the target holds, so a load an interrupted attempt committed still counts.
CREATE SCHEMA IF NOT EXISTS retail_demo;
CREATE TABLE IF NOT EXISTS retail_demo.stg_web_sessions (
  session_id BIGINT, customer_id INT, session_date DATE, pages INT, execution_id STRING)
USING DELTA;
MERGE INTO retail_demo.stg_web_sessions t
USING (SELECT CAST(session_id AS BIGINT) AS session_id, CAST(customer_id AS INT) AS customer_id,
              CAST(session_date AS DATE) AS session_date, CAST(pages AS INT) AS pages,
              etl.execution_id AS execution_id
         FROM IDENTIFIER('json.`' || etl.in_file_path || '`')
        WHERE session_id > CAST(etl.watermark_value AS BIGINT)
          AND CAST(session_date AS DATE) <= etl.processing_date) s
   ON t.session_id = s.session_id
 WHEN NOT MATCHED THEN INSERT *;
SELECT max(session_id) AS new_watermark, count_if(execution_id = etl.execution_id) AS rows_read
  FROM retail_demo.stg_web_sessions;
