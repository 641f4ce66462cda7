"""Run the seed package's sample notebooks (``etl_monitor/sample_usage``) cell by cell, as a Databricks
"Run all" would, against a monitor module on a real Spark session.

The notebooks are read from the installed seed package at run time, never copied into this repository.
Each notebook is split into cells on ``# COMMAND ----------``; every cell runs with ``exec`` in one shared
namespace, in order. What is changed in them, and nothing else:

* the import line, ``from etl_monitor import ETLMonitorFramework``, names the module under test;
* the two values the notebook tells the user to change: ``MY_CATALOG`` and ``ETL_SCHEMA``.

Cell kinds: ``# MAGIC %md`` cells are text, not code; ``# MAGIC %run ./01-install`` runs 01-install's cells
in the same namespace; cells that need a Databricks workspace (``%pip`` magics, which restart Python, and
the cell extracting the samples to ``/Workspace``) are skipped and reported as skipped. A magic the harness
does not know is an error, so nothing is skipped silently.

Databricks gives DataFrames a ``.display()`` method: while the notebooks run, the Spark Connect DataFrame
class gets one that collects the frame and prints it; it is removed afterwards.

By hand, against any module (a temporary local Spark Connect server is started and stopped)::

    .venv/bin/python -m tests.seed_notebooks etl_monitor            # the seed package itself
    .venv/bin/python -m tests.seed_notebooks etl_monitor_dagster    # this project
"""

from __future__ import annotations

import linecache
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files

SEED_PACKAGE = "etl_monitor"
NOTEBOOKS = ("01-install", "02-config", "03-run")
SEPARATOR = "# COMMAND ----------"
SEED_IMPORT = "from etl_monitor import ETLMonitorFramework"
CATALOG_LINE = re.compile(r'^(MY_CATALOG\s*=\s*)"[^"\n]*"', re.MULTILINE)
SCHEMA_LINE = re.compile(r'^(ETL_SCHEMA\s*=\s*)"[^"\n]*"', re.MULTILINE)

CODE, MARKDOWN, RUN, WORKSPACE = "code", "markdown", "run", "workspace"

Hook = Callable[[object, dict], None]  # (spark, namespace) -> None; raises AssertionError on a bad state


def notebook_text(name: str) -> str:
    """The text of one sample notebook, read from the installed seed package."""
    return (files(SEED_PACKAGE) / "sample_usage" / f"{name}.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Cell:
    notebook: str
    index: int  # 1-based position in its notebook, counting every cell (markdown too)
    title: str | None
    kind: str  # CODE, MARKDOWN, RUN or WORKSPACE
    source: str
    target: str | None = None  # RUN: the notebook it runs
    reason: str | None = None  # WORKSPACE: why it cannot run here

    @property
    def label(self) -> str:
        if self.title:
            return f"{self.notebook}[{self.index}] {self.title}"
        first = next((line for line in self.source.splitlines() if line.strip()), "")
        return f"{self.notebook}[{self.index}] {first.strip()[:60]}"


def parse(notebook: str, text: str) -> list[Cell]:
    """Split a Databricks ``.py`` notebook into its cells and classify each one."""
    cells = []
    for index, chunk in enumerate(text.split(SEPARATOR), 1):
        lines = [line for line in chunk.strip("\n").splitlines() if line.strip() != "# Databricks notebook source"]
        if not any(line.strip() for line in lines):
            continue
        title = next((line.split(",", 1)[1].strip() for line in lines if line.startswith("# DBTITLE ")), None)
        source = "\n".join(lines) + "\n"
        magics = [line[len("# MAGIC"):].strip() for line in lines if line.startswith("# MAGIC")]
        code = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        kind, target, reason = CODE, None, None
        if magics and magics[0].startswith("%md"):
            if code:
                raise ValueError(f"{notebook}[{index}]: a markdown cell with code in it")
            kind = MARKDOWN
        elif magics and magics[0].startswith("%run"):
            kind, target = RUN, magics[0].split()[1].removeprefix("./")
        elif magics and magics[0].startswith("%pip"):
            restart = " and dbutils.library.restartPython()" if "restartPython" in source else ""
            kind, reason = WORKSPACE, f"`{magics[0]}`{restart}: pip in a Databricks cluster's Python"
        elif magics:
            raise ValueError(f"{notebook}[{index}]: unknown magic {magics[0]!r}")
        elif ".sample_usage(" in source:
            kind, reason = WORKSPACE, "extracts the sample notebooks into the /Workspace folder of Databricks"
        cells.append(Cell(notebook, index, title, kind, source, target, reason))
    return cells


def adapt(source: str, module: str, catalog: str, schema: str) -> tuple[str, dict[str, int]]:
    """The cell's source with the import line and the two configuration values changed; and the counts."""
    imports = source.count(SEED_IMPORT)
    source = source.replace(SEED_IMPORT, f"from {module} import ETLMonitorFramework")
    source, catalogs = CATALOG_LINE.subn(lambda m: f'{m.group(1)}"{catalog}"', source)
    source, schemas = SCHEMA_LINE.subn(lambda m: f'{m.group(1)}"{schema}"', source)
    return source, {"import": imports, "MY_CATALOG": catalogs, "ETL_SCHEMA": schemas}


@dataclass
class Outcome:
    cell: Cell
    path: tuple[str, ...]  # the notebooks that led here: ("02-config", "01-install") for a %run cell
    status: str  # "passed", "failed" or "skipped"
    error: BaseException | None = None

    @property
    def label(self) -> str:
        via = "".join(f"{name} > " for name in self.path[:-1])
        return via + self.cell.label

    def describe(self) -> str:
        if self.status == "skipped":
            return f"{self.label}: skipped ({self.cell.reason})"
        text = f"{self.label}: {_describe(self.error)}"
        cause = _handled(self.error)
        return text + (f" (raised while handling {_describe(cause)})" if cause else "")


@dataclass
class NotebookRun:
    module: str
    outcomes: list[Outcome] = field(default_factory=list)
    hook_errors: dict[str, BaseException] = field(default_factory=dict)
    hooks_fired: dict[str, int] = field(default_factory=dict)
    substitutions: dict[str, int] = field(default_factory=lambda: {"import": 0, "MY_CATALOG": 0, "ETL_SCHEMA": 0})
    namespace: dict = field(default_factory=dict)

    def of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[Outcome]:
        return self.of("failed")

    def report(self) -> str:
        lines = [f"seed notebooks against {self.module}: {len(self.of('passed'))} cells passed, "
                 f"{len(self.failed)} failed, {len(self.of('skipped'))} skipped"]
        lines += [f"  FAILED  {o.describe()}" for o in self.failed]
        lines += [f"  SKIPPED {o.describe()}" for o in self.of("skipped")]
        lines += [f"  CHECK   {name}: {_describe(e)}" for name, e in self.hook_errors.items()]
        return "\n".join(lines)


@contextmanager
def databricks_display() -> Iterator[None]:
    """Give the Spark Connect DataFrame a ``display()`` for the duration, as the Databricks runtime does."""
    from pyspark.sql.connect.dataframe import DataFrame

    if "display" in vars(DataFrame):
        raise RuntimeError("the Spark Connect DataFrame already has a display attribute")

    def display(self) -> None:
        rows = self.collect()
        print(" | ".join(self.columns))
        for row in rows:
            print(" | ".join("NULL" if value is None else str(value) for value in row))
        print(f"({len(rows)} rows)")

    DataFrame.display = display
    try:
        yield
    finally:
        del DataFrame.display


class _Runner:
    def __init__(self, spark, run: NotebookRun, catalog: str, schema: str, hooks: dict[str, Hook]) -> None:
        self.spark, self.run, self.catalog, self.schema, self.hooks = spark, run, catalog, schema, hooks
        self.parsed: dict[str, list[Cell]] = {}

    def cells(self, notebook: str) -> list[Cell]:
        if notebook not in self.parsed:
            self.parsed[notebook] = parse(notebook, notebook_text(notebook))
            for cell in self.parsed[notebook]:
                if cell.kind == CODE:
                    for name, count in adapt(cell.source, self.run.module, self.catalog, self.schema)[1].items():
                        self.run.substitutions[name] += count
        return self.parsed[notebook]

    def notebook(self, name: str, path: tuple[str, ...] = ()) -> None:
        path = (*path, name)
        for cell in self.cells(name):
            if cell.kind == MARKDOWN:
                continue
            if cell.kind == RUN:
                self.notebook(cell.target, path)
            elif cell.kind == WORKSPACE:
                self.run.outcomes.append(Outcome(cell, path, "skipped"))
            else:
                self.code(cell, path)

    def code(self, cell: Cell, path: tuple[str, ...]) -> None:
        source, _ = adapt(cell.source, self.run.module, self.catalog, self.schema)
        filename = f"<{cell.notebook}.py cell {cell.index}: {cell.title or 'untitled'}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        print(f"\n──── {' > '.join(path)} [{cell.index}] {cell.title or ''}", flush=True)
        started = time.monotonic()
        try:
            exec(compile(source, filename, "exec"), self.run.namespace)
        except Exception as error:
            traceback.print_exc()
            self.run.outcomes.append(Outcome(cell, path, "failed", error))
        else:
            self.run.outcomes.append(Outcome(cell, path, "passed"))
        print(f"──── {time.monotonic() - started:.1f}s", flush=True)
        hook = self.hooks.get(f"{cell.notebook}: {cell.title}")
        if hook is not None:
            name = f"{cell.notebook}: {cell.title}"
            self.run.hooks_fired[name] = self.run.hooks_fired.get(name, 0) + 1
            try:
                hook(self.spark, self.run.namespace)
            except Exception as error:
                traceback.print_exc()
                self.run.hook_errors[name] = error


def run_notebooks(spark, module: str, catalog: str, schema: str, hooks: dict[str, Hook] | None = None,
                  notebooks: tuple[str, ...] = NOTEBOOKS) -> NotebookRun:
    """Run the notebooks in order in one namespace holding ``spark``; a failing cell does not stop the run.

    ``hooks`` maps ``"<notebook>: <cell title>"`` to a check run right after that cell (whatever its outcome);
    its exception is recorded in ``hook_errors``.
    """
    run = NotebookRun(module, namespace={"spark": spark, "__name__": "__main__"})
    runner = _Runner(spark, run, catalog, schema, hooks or {})
    with databricks_display():
        for name in notebooks:
            runner.notebook(name)
    return run


def _handled(error: BaseException | None) -> BaseException | None:
    """The exception being handled when ``error`` was raised, looking through the gRPC errors that
    pyspark's Spark Connect client raises ``from None``."""
    seen = error.__cause__ or error.__context__ if error is not None else None
    while seen is not None and type(seen).__module__.startswith("grpc"):
        seen = seen.__cause__ or seen.__context__
    return seen


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {_first_line(error)}"


def _first_line(error: BaseException | None) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""


def main(argv: list[str]) -> int:
    """Run the notebooks against ``argv[0]`` on a temporary local Spark Connect server; print the outcome."""
    import socket
    import tempfile
    from pathlib import Path

    from etl_monitor_dagster.core.local_spark import LocalSparkServer

    module = argv[0] if argv else SEED_PACKAGE
    with tempfile.TemporaryDirectory(prefix="seed-notebooks-") as home, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        server = LocalSparkServer(home=Path(home), port=port)
        spark = server.session()
        try:
            run = run_notebooks(spark, module, "spark_catalog", "etl_seed_notebooks")
            spark.sql("DROP SCHEMA IF EXISTS spark_catalog.etl_seed_notebooks CASCADE")
        finally:
            spark.stop()
            server.stop()
    print("\n" + run.report())
    return 1 if run.failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
