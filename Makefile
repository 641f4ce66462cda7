# Two commands: `make start` (install everything, start the embedded engine, open Dagster)
# and `make test` (the whole suite). Everything else here serves those two.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
JARS := jars/lib
export ETL_MONITOR_HOME ?= $(CURDIR)/.etl_monitor
export DAGSTER_HOME ?= $(ETL_MONITOR_HOME)/dagster

.PHONY: install start stop test test-fast bench

install: $(VENV)/.installed $(JARS)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || { echo "Python 3.11+ is required: install python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# The Delta jars from Maven, and the log store for local tables (jars/src) compiled against them and Spark's.
$(JARS)/.installed: jars/pom.xml jars/src/etlmonitor/LocalLogStore.java $(VENV)/.installed
	@command -v javac >/dev/null || { echo "A Java 17 JDK is required: install one (e.g. apt-get install openjdk-17-jdk)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required to fetch the Delta jars: install maven (e.g. apt-get install maven)"; exit 1; }
	rm -rf $(JARS) jars/classes
	mvn -q -B -f jars/pom.xml dependency:copy-dependencies
	javac --release 17 -nowarn -d jars/classes \
	  -cp "$$($(BIN)/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/jars/*:$(JARS)/*" \
	  jars/src/etlmonitor/LocalLogStore.java
	jar cf $(JARS)/etl-monitor-logstore.jar -C jars/classes .
	rm -rf jars/classes
	@touch $@

start: install
	@mkdir -p $(DAGSTER_HOME)
	@[ -f $(DAGSTER_HOME)/dagster.yaml ] || cp instance/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m etl_monitor_dagster.core.local_spark start
	$(BIN)/python -m etl_monitor_dagster setup catalogue
	$(BIN)/python -m etl_monitor_dagster.dagster.launcher -w workspace.yaml -h 127.0.0.1 -p 3000

stop:
	-$(BIN)/python -m etl_monitor_dagster.core.local_spark stop

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadfile --durations=15

# The Java-free tier: catalogue, translator, layers, API parity; no engine, no Dagster run.
test-fast: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not spark and not dagster_run and not webserver"

bench: install
	$(BIN)/python benchmarks/round_trip.py
	$(BIN)/python benchmarks/seed_ratio.py
	$(BIN)/python benchmarks/read_cost.py
	$(BIN)/python benchmarks/log_growth.py
	$(BIN)/python benchmarks/catalogue_load.py
	$(BIN)/python benchmarks/databricks_overhead.py
	$(BIN)/python benchmarks/engine_profile.py
	$(BIN)/python benchmarks/demo_run.py
	$(BIN)/python benchmarks/wide_stage.py
