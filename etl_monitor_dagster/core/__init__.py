"""The core: the monitor facade and its rules, the catalogue, the run policy and its outcome, the
schema, the engine, receipts, validation, errors and vocabularies. It needs a SparkSession, never
Dagster."""
