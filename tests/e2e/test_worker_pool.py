"""Several workers behind one LiveKit server: load limits spread calls, SIGTERM drains the
call in progress, SIGKILL of a worker costs only the call it was serving."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

from agent.tools.room_call import CallFailed
from agent.tools.transcript import CallResult
from tests.e2e.conftest import FAQS, backend_env, call
from tests.e2e.rig import LiveKitServer, Worker, Workers, wait_until
from tests.standins.backend import BackendServer

POOL = "e2e-pool"
QUESTION = "What are your opening hours?"
ANSWER = FAQS["harbor"][0]["answer"]


def serving(result: CallResult | str, pool: list[Worker]) -> Worker:
    room = result if isinstance(result, str) else result.room or ""
    found = [w for w in pool if w.call_in(room)]
    assert len(found) == 1, f"room {room} was configured by {[w.name for w in found]}"
    return found[0]


async def wait_served(room: str, pool: list[Worker], timeout: float = 30) -> Worker:
    await asyncio.to_thread(
        wait_until, lambda: any(w.call_in(room) for w in pool), timeout, f"a worker in {room}"
    )
    return serving(room, pool)


def answers(result: CallResult) -> int:
    return sum(t.text == ANSWER for t in result.turns if t.role == "assistant")


async def test_one_call_per_worker_and_sigterm_drains_the_call_in_progress(
    livekit: LiveKitServer, backend: BackendServer, workers: Workers, tmp_path: Path
) -> None:
    pool = workers.start(
        "a", "b", **backend_env(backend, AGENT_NAME=POOL, MAX_CONCURRENT_CALLS="1")
    )

    # at one call each, two concurrent calls land on two workers
    first, second = await asyncio.gather(
        call(livekit, QUESTION, output=tmp_path / "1.wav", agent_name=POOL, org="harbor"),
        call(livekit, QUESTION, output=tmp_path / "2.wav", agent_name=POOL, org="harbor"),
    )
    assert {serving(first, pool).name, serving(second, pool).name} == {"a", "b"}
    assert answers(first) == 1 and answers(second) == 1
    for w in pool:
        await asyncio.to_thread(w.wait_available)

    # a long call; its worker is told to stop in the middle of it
    room = f"drain-{uuid.uuid4().hex[:8]}"
    long_call = asyncio.create_task(
        call(
            livekit,
            QUESTION,
            QUESTION,
            QUESTION,
            output=tmp_path / "long.wav",
            agent_name=POOL,
            org="harbor",
            room=room,
        )
    )
    busy = await wait_served(room, pool)
    other = next(w for w in pool if w is not busy)
    busy.signal(signal.SIGTERM)
    await asyncio.to_thread(
        busy.wait_for_log, lambda r: r.get("message") == "draining worker", 10, "draining"
    )

    # a new call while it drains goes to the other worker
    during = await call(livekit, QUESTION, output=tmp_path / "3.wav", agent_name=POOL, org="harbor")
    assert serving(during, pool) is other
    assert answers(during) == 1

    # the drained call was not cut: every question was answered, then the worker exited
    drained = await long_call
    assert drained.completed
    assert answers(drained) == 3, [t.text for t in drained.turns]
    assert busy.process is not None
    assert await asyncio.to_thread(busy.process.wait, 30) == 0


async def test_sigkill_mid_call_the_next_call_succeeds_and_the_killed_call_is_billed(
    livekit: LiveKitServer, backend: BackendServer, workers: Workers, tmp_path: Path
) -> None:
    """The two workers share one usage spool: the survivor closes the record the killed
    worker left open (its last checkpoint) and sends it, once."""
    pool = workers.start(
        "c",
        "d",
        **backend_env(
            backend,
            AGENT_NAME=POOL,
            MAX_CONCURRENT_CALLS="1",
            USAGE_SPOOL_DIR=str(tmp_path / "shared-spool"),
            USAGE_CHECKPOINT_SECONDS="1",
        ),
    )
    room = f"kill-{uuid.uuid4().hex[:8]}"
    doomed = asyncio.create_task(
        call(
            livekit,
            QUESTION,
            QUESTION,
            output=tmp_path / "doomed.wav",
            agent_name=POOL,
            org="harbor",
            room=room,
            timeout=60,
        )
    )
    victim = await wait_served(room, pool)
    survivor = next(w for w in pool if w is not victim)
    # mid-call: the agent has answered the caller's first question, the second is to come
    await asyncio.to_thread(
        wait_until, lambda: victim.replies() >= 1, 30, "the agent answering the caller"
    )
    victim.signal(signal.SIGKILL)
    assert victim.process is not None
    await asyncio.to_thread(victim.process.wait, 10)

    after = await call(
        livekit, QUESTION, output=tmp_path / "after.wav", agent_name=POOL, org="harbor"
    )
    assert serving(after, pool) is survivor
    assert answers(after) == 1
    # the killed call ends within its bound (the agent is gone, or the caller gives up on
    # it); nothing else went down
    (cut,) = await asyncio.gather(doomed, return_exceptions=True)
    assert isinstance(cut, (CallResult, CallFailed)), cut
    if isinstance(cut, CallResult):
        assert answers(cut) < 2
    assert survivor.alive

    # billing: the killed call's record, recovered by the survivor, up to its last
    # checkpoint (its heartbeat runs out 3 checkpoints + 5 s after the kill)
    def recorded(room_name: str) -> list[dict[str, Any]]:
        return [r for r in backend.usage_records.values() if r.get("room") == room_name]

    await asyncio.to_thread(
        wait_until, lambda: recorded(room), 40, "the killed call's usage record", 0.5
    )
    (billed,) = recorded(room)
    assert billed["completion"] == "recovered", billed
    kinds = {line["kind"] for line in billed["usage"]}
    assert {"stt", "tts"} <= kinds, billed["usage"]
    (normal,) = recorded(after.room or "")
    assert normal["completion"] == "normal"
    recovered = sum(
        v
        for (name, _), v in survivor.metrics().items()
        if name == "voice_agent_usage_records_recovered_total"
    )
    assert recovered == 1
