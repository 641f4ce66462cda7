"""The project's own errors: one hierarchy, each message saying what is wrong and where."""

from __future__ import annotations


class ETLMonitorError(Exception):
    """Base of every error raised by etl_monitor_dagster."""


class ValidationError(ETLMonitorError, ValueError):
    """An argument or catalogue entry is malformed; nothing was written.

    ``field`` names the argument, ``value`` is what was given.
    """

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={value!r}: {problem}")


class NotFoundError(ETLMonitorError, LookupError):
    """A process, task, parameter or run step the call names is not registered; nothing was written."""

    def __init__(self, what: str, key: dict[str, object], hint: str = "") -> None:
        self.what = what
        self.key = key
        where = ", ".join(f"{k}={v!r}" for k, v in key.items())
        super().__init__(f"unknown {what} ({where})" + (f": {hint}" if hint else ""))


class ConcurrencyError(ETLMonitorError):
    """A Delta write kept conflicting with concurrent writers after every bounded retry."""


class EngineError(ETLMonitorError, RuntimeError):
    """The Spark engine could not be reached or started; the message says what to install or fix."""


class ClaimError(ETLMonitorError):
    """Another writer came first to what this call would start; nothing of this call counts.

    ``what`` is what was claimed, ``holder`` who holds it.
    """

    def __init__(self, what: str, holder: str, problem: str) -> None:
        self.what = what
        self.holder = holder
        super().__init__(f"{what}: {holder} {problem}")
