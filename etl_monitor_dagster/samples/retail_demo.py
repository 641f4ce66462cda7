"""The PYTHON task of the demo process (catalogue/retail_sales_daily.yaml)."""

from __future__ import annotations

from ..core.runs import TaskResult, TaskRun


def customer_360(run: TaskRun) -> TaskResult:
    """Orders, revenue and web sessions per customer, rebuilt as one Delta table."""
    spark = run.monitor.spark
    orders = spark.table("retail_demo.orders_eur").groupBy("customer_id").agg(
        {"order_id": "count", "amount_eur": "sum"}).withColumnsRenamed(
        {"count(order_id)": "orders", "sum(amount_eur)": "revenue_eur"})
    sessions = spark.table("retail_demo.stg_web_sessions").groupBy("customer_id").agg(
        {"session_id": "count"}).withColumnRenamed("count(session_id)", "web_sessions")
    snapshot = spark.table("retail_demo.dim_customer").select("customer_id", "name", "country") \
        .join(orders, "customer_id", "left").join(sessions, "customer_id", "left")
    snapshot.write.format("delta").mode("overwrite").saveAsTable("retail_demo.customer_360")
    written = spark.table("retail_demo.customer_360").count()
    run.log.info(f"customer_360: {written} customers")
    return TaskResult(rows_written=written)
