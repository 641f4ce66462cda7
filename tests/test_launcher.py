"""`make start`'s `dagster dev` launcher: Ctrl+C ends every process it started within 10 s, and frees the port.

Each test starts the real launcher on the repo's code location (loading it reads YAML only, no engine), waits
until the webserver has loaded it, and signals the launcher's process group as a terminal's Ctrl+C does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl_monitor_dagster.dagster.launcher import group_members
from tests.conftest import free_port

pytestmark = pytest.mark.webserver

REPO = Path(__file__).resolve().parents[1]
STOPPED_WITHIN = 10.0  # the requirement: Ctrl+C on `make start` ends everything within 10 s
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def _children() -> dict[int, list[int]]:
    """Live processes by parent id, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError, ValueError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _descendants(pid: int) -> set[int]:
    children, found, todo = _children(), set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    live = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            live.add(pid)
    return live


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Started:
    launcher: subprocess.Popen
    port: int
    log: Path

    def processes(self) -> set[int]:
        """The launcher and everything it started, now."""
        return {self.launcher.pid} | _descendants(self.launcher.pid)

    def loaded(self) -> bool:
        body = json.dumps({"query": LOCATIONS}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/graphql", body,
                                         {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                entries = json.loads(response.read())["data"]["workspaceOrError"]["locationEntries"]
        except OSError:
            return False
        return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


@pytest.fixture
def started(tmp_path) -> Iterator[Started]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "instance" / "dagster.yaml", home / "dagster.yaml")  # the instance `make start` creates
    port, log = free_port(), tmp_path / "launcher.log"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "etl_monitor_dagster.dagster.launcher", "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)], cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True)  # as a terminal's job
    run = Started(launcher, port, log)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while not run.loaded():
            assert launcher.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the webserver did not load the code location in 180 s"
            time.sleep(1)
        seen = run.processes()
        yield run
    finally:  # whatever a failed test left behind, by process id
        for pid in _alive(seen | run.processes()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        launcher.wait(timeout=10)


def _ctrl_c_and_wait(run: Started) -> tuple[float, set[int]]:
    """Ctrl+C to the launcher's group; seconds until every process it had started has exited, and those left
    after ``STOPPED_WITHIN`` plus a margin to see how late they are."""
    before = run.processes()
    assert len(before) >= 5, before  # launcher, dagster dev, webserver, daemon, code server
    began = time.monotonic()
    os.killpg(run.launcher.pid, signal.SIGINT)
    while _alive(before) and time.monotonic() - began < STOPPED_WITHIN + 20:
        run.launcher.poll()
        time.sleep(0.1)
    return time.monotonic() - began, _alive(before)


def test_ctrl_c_ends_every_process_within_10_seconds_and_frees_the_port(started):
    (dagster_dev,) = _children()[started.launcher.pid]  # the leader of the group of all it starts
    took, left = _ctrl_c_and_wait(started)
    assert not left and took <= STOPPED_WITHIN, f"{sorted(left)} still alive after {took:.1f} s"
    assert started.launcher.wait(timeout=5) == 0
    assert group_members(dagster_dev) == []
    assert not _listening(started.port)


def test_a_dagster_process_that_hangs_is_killed_within_10_seconds(started):
    """A stopped daemon answers no signal but SIGKILL (`dagster dev` itself would wait 60 s for it): the
    launcher's deadline ends it."""
    (daemon,) = [pid for pid in _descendants(started.launcher.pid)
                 if b"dagster._daemon" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    os.kill(daemon, signal.SIGSTOP)
    took, left = _ctrl_c_and_wait(started)
    assert not left and took <= STOPPED_WITHIN, f"{sorted(left)} still alive after {took:.1f} s"
    assert not _listening(started.port)
