# Databricks notebook source
# MAGIC %md
# MAGIC # etl_fail_task
# MAGIC Record a task FAIL (a mandatory failure reopens the run)
# MAGIC in the etl_monitor_dagster tables, from widget values (ADF base parameters).
# MAGIC
# MAGIC Widgets: catalog, schema, execution_id, project_code, process_load, task_id, workflow_id,
# MAGIC processing_date, log_message, log_code.
# MAGIC Exits with JSON {"action", "changed", "status"}. Needs the etl-monitor-dagster wheel on the cluster.

# COMMAND ----------

from etl_monitor_dagster.core.notebook import fail_task_from_widgets

fail_task_from_widgets(spark, dbutils)  # noqa: F821 - spark and dbutils are the notebook's own
