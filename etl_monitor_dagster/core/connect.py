"""Spark Connect sessions the project opens: retries bounded in time, one shared session per server.

pyspark's default retry policy waits out an unreachable server for over ten minutes (15 retries,
backoff x4 up to 60 s), so a dead engine hung every call without a word. Sessions opened here give
up after ``timeout_seconds`` of failing; the call then raises, and ``Engine`` makes that an EngineError.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from pyspark.sql.connect.client import DefaultChannelBuilder
from pyspark.sql.connect.client.retries import DefaultPolicy, RetryPolicyState
from pyspark.sql.connect.session import SparkSession as RemoteSession

from .engine import DEFAULT_UNREACHABLE_TIMEOUT, EngineInfo, describe
from .errors import ValidationError

# pyspark's own variable: its channel builder sends this bearer token when the URL holds none, so a
# token given here never has to be in a URL (which lands in ``ps`` output, shell history and logs).
TOKEN_ENV = "SPARK_CONNECT_AUTHENTICATE_TOKEN"

# Failures closer together than this are one outage: longer than the 2 s backoff, shorter than a
# pause in which the server may have come back (a success in between is invisible to a policy).
OUTAGE_GAP_SECONDS = 5.0


class BoundedRetries(DefaultPolicy):
    """pyspark's default rules for what to retry, giving up after ``seconds`` of failures.

    The bound holds per call and per outage: once the server has failed calls for ``seconds``, the
    next call that fails within ``OUTAGE_GAP_SECONDS`` is not retried (a task's FAIL write after its
    lost statement fails at once instead of waiting the bound out again).
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(max_retries=None, initial_backoff=100, backoff_multiplier=2.0, max_backoff=2000,
                         jitter=200, min_jitter_threshold=1000,
                         max_server_retry_delay=max(1, int(seconds * 1000)))
        self.seconds = seconds
        self.failing_since: float | None = None
        self.last_failure: float | None = None

    def to_state(self) -> RetryPolicyState:
        return _Deadline(self)


class _Deadline(RetryPolicyState):
    """One call's retries under ``BoundedRetries``."""

    def __init__(self, policy: BoundedRetries) -> None:
        super().__init__(policy)
        self._bounded = policy
        self._call_failing_since: float | None = None

    def next_attempt(self, exception: BaseException | None = None) -> int | None:
        policy = self._bounded
        now = time.monotonic()
        if self._call_failing_since is None:
            self._call_failing_since = now
        if policy.last_failure is None or now - policy.last_failure > OUTAGE_GAP_SECONDS:
            policy.failing_since = now  # a new outage
        policy.last_failure = now
        remaining = min(self._call_failing_since, policy.failing_since or now) + policy.seconds - now
        wait: int | None = super().next_attempt(exception)
        if wait is None or remaining <= 0:
            return None
        return min(wait, math.ceil(remaining * 1000))


def refuse_inline_token(field: str, url: str) -> str:
    """``url`` if it carries no ``token=`` parameter, else ValidationError (showing the URL with the
    token masked) that points at ``TOKEN_ENV``."""
    address, *parameters = url.split(";")
    tokens = [p for p in parameters if p.split("=", 1)[0].strip().lower() == "token"]
    if tokens:
        masked = ";".join([address, *("token=***" if p in tokens else p for p in parameters)])
        raise ValidationError(field, masked, f"holds a token; put it in the environment variable {TOKEN_ENV} "
                              "instead (a command line is visible to every user of the machine and kept in "
                              "shell history)")
    return url


@dataclass
class _Shared:
    session: Any
    generation: object


# gRPC shares a connection to an address between a process's channels, with its reconnect backoff
# (up to 2 minutes after a long outage). A session opened after a restart, while another session still
# retried the dead server, got "connection refused" until that backoff ran out, for its whole bound.
_CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]

# Keyed by URL and description too: two callers wanting different bounds must not share a policy.
_SESSIONS: dict[tuple[str, EngineInfo], _Shared] = {}
_LOCK = threading.Lock()


def shared_session(url: str, info: EngineInfo, generation: object = None) -> Any:
    """This process's session to ``url``: the cached one while it is open and the server's
    ``generation`` (e.g. its pid) is unchanged, else a new one with retries bounded by ``info``."""
    with _LOCK:
        shared = _SESSIONS.get((url, info))
        if shared is not None and shared.generation == generation and not shared.session.is_stopped:
            return shared.session
        if shared is not None:  # bound to a server that is gone: closing it makes no call
            shared.session.client.close()
        # create(), not getOrCreate(): that returns the process's default session whatever its URL.
        # pyspark's builder.remote(url).create() marks the process as a Spark Connect client; so do we.
        os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
        session = RemoteSession.builder.channelBuilder(DefaultChannelBuilder(url, _CHANNEL_OPTIONS)).create()
        session.client.set_retry_policies([BoundedRetries(info.timeout_seconds or DEFAULT_UNREACHABLE_TIMEOUT)])
        describe(session, info)
        _adopt(session)
        _SESSIONS[(url, info)] = _Shared(session, generation)
        return session


def forget(url: str) -> None:
    """Close this process's shared sessions to ``url`` (its server is stopping)."""
    with _LOCK:
        gone = [_SESSIONS.pop(key) for key in list(_SESSIONS) if key[0] == url]
    for shared in gone:
        shared.session.client.close()


def _adopt(session: Any) -> None:
    """Make ``session`` the default and active session where those are empty or stopped.

    pyspark fills these only when empty, and a stopped session keeps its place: after a restart,
    ``getActiveSession()`` (the active_session engine, a user's ``getOrCreate()``) would find none.
    """
    cls = type(session)
    with cls._lock:
        if cls._get_default_session() is None:
            cls._default_session = session
    if cls.getActiveSession() is None:
        cls._active_session.session = session
