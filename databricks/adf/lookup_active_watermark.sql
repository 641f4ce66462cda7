-- ADF Lookup activity query (Databricks Delta Lake / Azure Databricks linked service, "First row only"):
-- the active value of one parameter, as a string, in the column the pipeline reads:
--   @activity('LookupWatermark').output.firstRow.ActiveValue
-- Pipeline parameters: MonitorSchema (e.g. main.etl), ProjectCode, ProcessLoad, ParameterName.
-- ADF pastes each expression's value into this text, so each value is escaped for Spark SQL first.
-- MonitorSchema becomes back-quoted names, one per dot-separated part (` -> ``); the others become
-- string literals (\ -> \\, ' -> \'). $ -> \u0024 in all four: Spark substitutes $-variables in the
-- text before parsing it. (In a back-quoted name \u0024 stays as typed, and no schema has that name.)
SELECT ActiveValue, WatermarkState, ParameterType
  FROM @{concat('`', replace(replace(replace(pipeline().parameters.MonitorSchema, '`', '``'), '$', '\u0024'), '.', '`.`'), '`')}.v_watermarks
 WHERE ProjectCode = '@{replace(replace(replace(pipeline().parameters.ProjectCode, '\', '\\'), '''', '\'''), '$', '\u0024')}'
   AND ProcessLoad = '@{replace(replace(replace(pipeline().parameters.ProcessLoad, '\', '\\'), '''', '\'''), '$', '\u0024')}'
   AND ParameterName = '@{replace(replace(replace(pipeline().parameters.ParameterName, '\', '\\'), '''', '\'''), '$', '\u0024')}'
