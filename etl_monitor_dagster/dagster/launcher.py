"""`dagster dev` that stops within seconds on Ctrl+C: ``python -m etl_monitor_dagster.dagster.launcher [dagster dev
options]`` (what `make start` runs).

A terminal's Ctrl+C signals every process of its foreground group at once (`dagster dev`, its webserver, daemon
and code server), so the code server may stop while the daemon's threads still call it; `dagster dev` waits up
to 60 s for the webserver and 60 s more for the daemon, whose controller joins each thread for up to 30 s. So
the launcher runs `dagster dev` in a session of its own, out of the terminal's reach, and on SIGINT, SIGTERM or
SIGHUP interrupts `dagster dev` alone, which stops the webserver and the daemon, then its code servers. What is
left of its process group after ``GRACE_SECONDS`` gets SIGTERM, and ``TERM_SECONDS`` later SIGKILL. A second
signal skips to SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

GRACE_SECONDS = 5.0  # dagster dev's ordered shutdown took 4.8-6.7 s on two idle cores
TERM_SECONDS = 2.0  # Dagster's processes take SIGTERM as an interrupt: the rest stop at once, unordered
KILL_SECONDS = 2.0  # SIGKILL cannot be refused: this only covers the kernel's reaping


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``: from /proc, else from ``ps``."""
    proc = Path("/proc")
    if proc.is_dir():
        members = []
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # it ended while we looked
            if fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
        return members
    listing = subprocess.run(["ps", "-A", "-o", "pid=,pgid=,stat="], capture_output=True, text=True,
                             check=True, timeout=10).stdout
    return [int(pid) for pid, group, state in (line.split()[:3] for line in listing.splitlines() if line.strip())
            if int(group) == pgid and not state.startswith("Z")]


class Launcher:
    """``dagster dev`` with ``args`` in a process group of its own; ``stop()`` ends the whole group in bounded time."""

    def __init__(self, args: Sequence[str], **popen: Any) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "dagster", "dev", *args], start_new_session=True,
                                        stdin=subprocess.DEVNULL, **popen)
        self.pgid = self.process.pid  # a new session's leader leads its process group
        self.signals = 0  # stop requests received: the first stops gently, a second at once

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: counts the request (it only sets a number, so it is safe at any point)."""
        self.signals += 1

    def run(self) -> int:
        """Wait until ``dagster dev`` ends or a stop is requested, then end its group. Returns its exit code
        (0 after a requested stop)."""
        while not self.signals:
            code = self.process.poll()
            if code is not None:
                self._end_group()  # it ended on its own: take any child it left behind along
                return code
            time.sleep(0.2)
        self.stop()
        return 0

    def stop(self) -> None:
        """Interrupt ``dagster dev`` and wait for its group; what is left gets SIGTERM, then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        if not self._wait_for_group(GRACE_SECONDS):
            self._end_group()

    def _end_group(self) -> None:
        for sig, seconds in ((signal.SIGTERM, TERM_SECONDS), (signal.SIGKILL, KILL_SECONDS)):
            if not group_members(self.pgid):
                break
            if sig == signal.SIGTERM and self.signals > 1:
                continue  # asked twice: no more waiting
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break  # nothing of the group is left
            if self._wait_for_group(seconds, gentle=sig != signal.SIGKILL):
                break
        self.process.poll()  # reap dagster dev itself

    def _wait_for_group(self, seconds: float, gentle: bool = True) -> bool:
        """Whether the group is gone within ``seconds``; a gentle wait ends early on a second stop request."""
        deadline = time.monotonic() + seconds
        while True:
            self.process.poll()  # reap it, or its zombie would count
            if not group_members(self.pgid):
                return True
            if time.monotonic() >= deadline or (gentle and self.signals > 1):
                return False
            time.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    launcher = Launcher(sys.argv[1:] if argv is None else argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, launcher.request_stop)
    return launcher.run()


if __name__ == "__main__":
    sys.exit(main())
