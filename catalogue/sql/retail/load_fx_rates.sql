-- Exchange rates valid up to the processing date (a small reference table: reloaded each run).
CREATE SCHEMA IF NOT EXISTS retail_demo;
CREATE TABLE IF NOT EXISTS retail_demo.fx_rates (currency STRING, rate_to_eur DECIMAL(12, 6), valid_from DATE)
USING DELTA;
MERGE INTO retail_demo.fx_rates t
USING (SELECT currency, CAST(rate_to_eur AS DECIMAL(12, 6)) AS rate_to_eur, CAST(valid_from AS DATE) AS valid_from
         FROM IDENTIFIER('json.`' || etl.in_file_path || '`')
        WHERE CAST(valid_from AS DATE) <= etl.processing_date) s
   ON t.currency = s.currency AND t.valid_from = s.valid_from
 WHEN MATCHED AND t.rate_to_eur <> s.rate_to_eur THEN UPDATE SET rate_to_eur = s.rate_to_eur
 WHEN NOT MATCHED THEN INSERT *;
