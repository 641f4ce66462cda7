"""Every Python and shell snippet in README.md and docs/*.md runs on the embedded engine, so none can rot.

The rule:

- A snippet is a fenced block whose info string starts with ``python`` or ``bash``; other blocks
  (``yaml``, plain text, error output) are not run.
- A snippet that cannot run here says so in its info string, with the reason:
  ```` ```bash no-run: starts the embedded engine and Dagster ````. The reason must be one of
  ``NO_RUN_REASONS`` (it shows nowhere else, so a new kind of reason is a deliberate change here),
  at most a quarter of all snippets may carry the marker, and none may show the drop-in API
  (``ETLMonitorFramework(``): that one always runs. Any other word after the language is refused, so a
  misspelt marker cannot hide a snippet.
- Each page runs top to bottom like a notebook, in a Python process of its own: its ``python`` blocks
  share one namespace, its ``bash`` blocks run with ``bash -eo pipefail``, all in one scratch folder
  that links the repository's files (so ``catalogue/`` and ``examples/`` are there, and what a snippet
  writes is not). The venv's ``python`` comes first on PATH.
- The engine is this test run's embedded server, reached the way the docs say a user reaches theirs:
  ``ETL_MONITOR_HOME`` and ``ETL_MONITOR_SPARK_PORT`` point ``LocalSparkServer()`` at it. Before the
  pages run it is in the state ``make start`` leaves: the monitor schema ``etl`` set up and the demo
  catalogue registered. ``etl`` is this test's own schema on that server: the other tests write to
  theirs (``tests.dagster_location.SCHEMA``), never to ``etl``.

The parsing checks need no engine (the fast tier); running the pages needs the ``spark`` fixture.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core.catalogue import load_catalogue, registration
from tests.dagster_location import SCHEMA

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = ("python", "bash")
DOCS_SCHEMA = "etl"  # the schema the docs name, as make start creates it
NO_RUN_REASONS = {
    "starts the embedded engine and Dagster, or runs the whole suite",  # make start / make test
    "needs a Databricks workspace",
    "needs Azure",
    "needs a project made by create-dagster",  # dg commands; tests/test_component.py runs them for real
}
MAX_NO_RUN_SHARE = 0.25
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^`\n]*)$")
NO_RUN = re.compile(r"^no-run: (?P<reason>\S.*)$")


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    no_run: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def snippets(page: Path) -> list[Snippet]:
    """The python and bash blocks of a page, dedented as far as their fence is indented."""
    found: list[Snippet] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, info = opening["indent"], opening["info"].strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{page.relative_to(ROOT)}:{i + 1}: a fenced block is never closed"
        language, _, rest = info.partition(" ")
        if language in LANGUAGES:
            body = [line[len(indent):] if line.startswith(indent) else line for line in lines[i + 1:end]]
            marker = NO_RUN.match(rest.strip())
            assert not rest.strip() or marker, (
                f"{page.relative_to(ROOT)}:{i + 1}: {info!r}: after the language only 'no-run: <reason>' may follow")
            found.append(Snippet(page, i + 1, language, "\n".join(body) + "\n", marker["reason"] if marker else None))
        i = end + 1
    return found


ALL = [s for page in PAGES for s in snippets(page)]
RUNNABLE_PAGES = [page for page in PAGES if any(s.no_run is None for s in snippets(page))]


def test_every_page_has_its_snippets_found():
    assert ALL, "no snippet found: the parser is broken"
    assert any(s.page.name == "README.md" for s in ALL)


def test_no_run_markers_are_rare_and_deliberate():
    marked = [s for s in ALL if s.no_run is not None]
    unknown = [f"{s.where}: {s.no_run!r}" for s in marked if s.no_run not in NO_RUN_REASONS]
    assert not unknown, f"no-run with a reason this test does not know (add it to NO_RUN_REASONS on purpose): {unknown}"
    assert len(marked) <= MAX_NO_RUN_SHARE * len(ALL), (
        f"{len(marked)} of {len(ALL)} snippets are marked no-run: {[s.where for s in marked]}")
    api = [s.where for s in marked if "ETLMonitorFramework(" in s.code]
    assert not api, f"a snippet showing the drop-in API must run: {api}"


def test_the_quick_start_commands_are_make_targets():
    """README's two commands, which are not run here, stay true: both are targets of the Makefile."""
    makefile = (ROOT / "Makefile").read_text()
    commands = [line.split("#")[0].split() for s in ALL if s.page.name == "README.md" and s.no_run
                for line in s.code.splitlines() if line.strip()]
    assert [c[:2] for c in commands] == [["make", "start"], ["make", "test"]]
    for _, target in commands:
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"make {target} is no target of the Makefile"


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_links_between_pages_resolve():
    """A relative link names a file that exists and, with #anchor, one of its headings."""
    broken = []
    for page in PAGES:
        for target in LINK.findall(re.sub(r"`[^`]*`", "", page.read_text())):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


# Runs in the page's own process: the blocks in order, python in one namespace, bash in a shell.
DRIVER = """
import json, os, subprocess, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for block in blocks:
    print(f"--- {block['where']} ({block['language']})", flush=True)
    if block["language"] == "bash":
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", block["code"]])
        if done.returncode:
            sys.exit(f"{block['where']}: the shell snippet exited with {done.returncode}")
        continue
    try:
        exec(compile(block["code"], block["where"], "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        sys.exit(f"{block['where']}: the python snippet failed")
"""


@pytest.fixture(scope="module")
def docs_engine(spark, spark_server):
    """The test run's engine in the state make start leaves it: schema etl set up, the demo registered."""
    assert SCHEMA != DOCS_SCHEMA
    monitor = ETLMonitorFramework(spark, schema=DOCS_SCHEMA, updated_by="pytest")
    monitor.setup()
    monitor.register_many(**registration(load_catalogue(ROOT / "catalogue")))
    return spark_server


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_snippets_run(page: Path, docs_engine, tmp_path: Path):
    scratch = tmp_path / "work"
    scratch.mkdir()
    for entry in ROOT.iterdir():
        if not entry.name.startswith("."):
            (scratch / entry.name).symlink_to(entry)
    blocks = [{"where": s.where, "language": s.language, "code": s.code}
              for s in snippets(page) if s.no_run is None]
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    (tmp_path / "driver.py").write_text(DRIVER)
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "ETL_MONITOR_HOME": str(docs_engine.home), "ETL_MONITOR_SPARK_PORT": str(docs_engine.port),
           "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "blocks.json")],
                          cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
