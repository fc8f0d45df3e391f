"""How the worker tells LiveKit it has room: by the number of calls it holds, against a
limit sized to the machine, so a CPU spike never turns a dispatch away."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from agent.worker.server import build_server
from agent.worker.settings import Settings, usable_cores
from providers import ServerEnvOption, compat


def _server(**env: str) -> object:
    return build_server(Settings.from_env({"STATUS_PORT": "off", **env}))


def _load(server: object, calls: int) -> float:
    load_fnc = server.load_fnc  # type: ignore[attr-defined]
    return float(load_fnc(SimpleNamespace(active_jobs=[object()] * calls)))


def _threshold(server: object, *, dev: bool) -> float:
    return float(ServerEnvOption.getvalue(server._load_threshold, dev))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("env", "limit"), [({}, usable_cores()), ({"MAX_CONCURRENT_CALLS": "3"}, 3)]
)
def test_the_worker_is_full_at_exactly_its_call_limit(env: dict[str, str], limit: int) -> None:
    """Unset, the limit is one call per usable core; the load is calls / limit, whatever
    the CPU does, so the worker is below its threshold until the limit's last call."""
    server = _server(**env)
    threshold = _threshold(server, dev=False)
    assert _load(server, limit - 1) < threshold <= _load(server, limit)
    assert _load(server, 0) == 0.0
    assert ServerEnvOption.getvalue(server._num_idle_processes, False) == limit  # type: ignore[attr-defined]


def test_dev_keeps_no_limit_and_no_idle_runner() -> None:
    server = _server(MAX_CONCURRENT_CALLS="2")
    assert _threshold(server, dev=True) == math.inf
    assert ServerEnvOption.getvalue(server._num_idle_processes, True) == 0  # type: ignore[attr-defined]


def test_zero_still_means_livekits_cpu_load() -> None:
    """The documented opt-out: livekit's own load and threshold, untouched."""
    server = _server(MAX_CONCURRENT_CALLS="0")
    assert server._load_threshold is compat._worker._default_load_threshold  # type: ignore[attr-defined]
