"""The multi-node shape of a production deployment: two LiveKit server nodes sharing Redis,
a worker registered with each, callers placed on both nodes at once."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import FAQS, backend_env, call
from tests.e2e.rig import LiveKitServer, RedisServer, Workers, wait_until
from tests.standins.backend import BackendServer

AGENT = "e2e-multi"
QUESTION = "What are your opening hours?"


@pytest.fixture
def two_nodes(e2e_logs: Path, livekit: LiveKitServer) -> Iterator[list[LiveKitServer]]:
    if shutil.which("redis-server") is None:
        message = "no redis-server: apt-get install redis-server"
        if os.environ.get("E2E_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    redis = RedisServer(e2e_logs / "redis.log").start()
    nodes = [LiveKitServer(e2e_logs / f"livekit-node-{n}.log", redis=redis.address) for n in "ab"]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        redis.stop()


async def test_two_nodes_share_redis_and_each_nodes_caller_is_answered(
    two_nodes: list[LiveKitServer], backend: BackendServer, e2e_logs: Path, tmp_path: Path
) -> None:
    a, b = two_nodes
    env = backend_env(backend, AGENT_NAME=AGENT, MAX_CONCURRENT_CALLS="1")
    pool_a, pool_b = Workers(a, e2e_logs), Workers(b, e2e_logs)
    try:
        # the only worker is registered with node b; a caller on node a is still answered
        (worker_b,) = pool_b.start("node-b", **env)
        across = await call(a, QUESTION, output=tmp_path / "x.wav", agent_name=AGENT, org="harbor")
        assert FAQS["harbor"][0]["answer"] in [t.text for t in across.turns]
        assert worker_b.call_in(across.room or "") is not None
        await asyncio.to_thread(worker_b.wait_available)

        # one caller through each node, at the same time; one call per worker. The second
        # caller dials once the first call's worker has told the servers it is full: across
        # nodes, a job offered to a worker whose "full" status has not arrived yet is not
        # retried on the other node (livekit-server 1.13.5).
        (worker_a,) = pool_a.start("node-a", **env)
        room = f"multi-{uuid.uuid4().hex[:8]}"
        first = asyncio.create_task(
            call(b, QUESTION, output=tmp_path / "b.wav", agent_name=AGENT, org="summit", room=room)
        )
        await asyncio.to_thread(
            wait_until,
            lambda: any(w.call_in(room) for w in (worker_a, worker_b)),
            30,
            "a worker for the first call",
        )
        busy = next(w for w in (worker_a, worker_b) if w.call_in(room))
        await asyncio.to_thread(
            busy.wait_for_log,
            lambda r: (
                str(r.get("message", "")).startswith("worker is at full capacity")
                and r.get("timestamp", "") > busy.call_in(room)["timestamp"]
            ),  # type: ignore[index]
            10,
            "the busy worker reporting full",
        )
        second = await call(a, QUESTION, output=tmp_path / "a.wav", agent_name=AGENT, org="harbor")
        results = [second, await first]
        for result, org in zip(results, ("harbor", "summit"), strict=True):
            assert FAQS[org][0]["answer"] in [t.text for t in result.turns]
        served = {w.name for r in results for w in (worker_a, worker_b) if w.call_in(r.room or "")}
        assert served == {"node-a", "node-b"}
    finally:
        pool_a.stop()
        pool_b.stop()
