# Databricks notebook source
# MAGIC %md
# MAGIC # example_score_customers
# MAGIC A DBX_NOTEBOOK task as Dagster runs it (examples/databricks/lakehouse_scoring.yaml). The run's
# MAGIC context arrives as widgets (execution_id, processing_date, watermark_value, in_file_path, ...);
# MAGIC the notebook scores the orders above its DELTA_ID watermark and exits with the figures the
# MAGIC monitor records. Needs the etl-monitor-dagster wheel on the cluster.

# COMMAND ----------

from datetime import date

from pyspark.sql import functions as F

from etl_monitor_dagster.core.notebook import exit_with_result, task_context

context = task_context(dbutils)  # noqa: F821 - spark and dbutils are the notebook's own
since = int(context["watermark_value"] or 0)  # the highest order id scored so far
scored_for = date.fromisoformat(context["processing_date"])

# COMMAND ----------

orders = spark.read.format("delta").load(context["in_file_path"]).where(F.col("order_id") > since)  # noqa: F821
scores = orders.select("order_id", "customer_id", (F.col("amount_eur") * 0.01).alias("score"),
                       F.lit(scored_for).alias("scored_for"), F.lit(context["execution_id"]).alias("execution_id"))
scores.write.format("delta").mode("append").save(context["out_file_path"])

# COMMAND ----------

figures = orders.agg(F.count("*").alias("rows"), F.max("order_id").alias("last")).first()
exit_with_result(dbutils, rows_read=figures["rows"], rows_written=figures["rows"],  # noqa: F821
                 new_watermark=figures["last"] if figures["last"] is not None else since)
