-- ADF Lookup activity query (Databricks Delta Lake / Azure Databricks linked service, "First row only"):
-- the active value of one parameter, as a string, in the column the pipeline reads:
--   @activity('LookupWatermark').output.firstRow.ActiveValue
-- Pipeline parameters: MonitorSchema (e.g. main.etl), ProjectCode, ProcessLoad, ParameterName.
-- ADF pastes @{...} as text, so each value is escaped for Spark SQL first: \ -> \\, ' -> \' and
-- $ -> \u0024 (Spark would otherwise substitute ${...} in the text).
SELECT ActiveValue, WatermarkState, ParameterType
  FROM @{pipeline().parameters.MonitorSchema}.v_watermarks
 WHERE ProjectCode = '@{replace(replace(replace(pipeline().parameters.ProjectCode, '\', '\\'), '''', '\'''), '$', '\u0024')}'
   AND ProcessLoad = '@{replace(replace(replace(pipeline().parameters.ProcessLoad, '\', '\\'), '''', '\'''), '$', '\u0024')}'
   AND ParameterName = '@{replace(replace(replace(pipeline().parameters.ParameterName, '\', '\\'), '''', '\'''), '$', '\u0024')}'
