"""Usage is billing, in real rooms: a call whose job process dies is still billed (from
its last checkpoint, by the worker that survives it), and a burst of more calls than the
worker takes bills each call that started exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

from agent.tools.room_call import CallFailed
from agent.tools.transcript import CallResult
from tests.e2e.conftest import AGENT, backend_env, call
from tests.e2e.rig import LiveKitServer, Workers, wait_until
from tests.standins.backend import BackendServer

QUESTION = "What are your opening hours?"


def _records(backend: BackendServer, room: str) -> list[dict[str, Any]]:
    return [r for r in backend.usage_records.values() if r.get("room") == room]


async def test_a_call_whose_job_process_is_killed_is_billed_as_recovered(
    livekit: LiveKitServer, backend: BackendServer, workers: Workers, tmp_path: Path
) -> None:
    """``JOB_EXECUTOR=process``: the call's process is killed (as the kernel's OOM killer
    or livekit's memory limit would); the worker lives on and closes its open record."""
    name = f"{AGENT}-process"
    (worker,) = workers.start(
        "process",
        **backend_env(
            backend,
            AGENT_NAME=name,
            JOB_EXECUTOR="process",
            MAX_CONCURRENT_CALLS="1",
            USAGE_CHECKPOINT_SECONDS="1",
        ),
    )
    room = f"oom-{uuid.uuid4().hex[:8]}"
    doomed = asyncio.create_task(
        call(
            livekit,
            QUESTION,
            QUESTION,
            output=tmp_path / "doomed.wav",
            agent_name=name,
            org="harbor",
            room=room,
            timeout=60,
        )
    )
    await asyncio.to_thread(wait_until, lambda: worker.call_in(room), 40, "the call to start")
    configured = worker.call_in(room)
    assert configured is not None
    job_pid = int(configured["pid"])
    assert job_pid != worker.pid, "the call did not run in a process of its own"
    # mid-call: the caller's first question answered (STT and TTS usage), then a checkpoint
    await asyncio.to_thread(
        wait_until, lambda: worker.replies() >= 1, 40, "the agent answering the caller"
    )
    await asyncio.sleep(2)
    os.kill(job_pid, signal.SIGKILL)
    await asyncio.gather(doomed, return_exceptions=True)

    await asyncio.to_thread(
        wait_until, lambda: _records(backend, room), 45, "the killed call's record", 0.5
    )
    (billed,) = _records(backend, room)
    assert billed["completion"] == "recovered", billed
    assert billed["organizationId"] == "harbor"
    assert {"stt", "tts"} <= {line["kind"] for line in billed["usage"]}, billed["usage"]
    assert worker.alive


async def test_more_calls_than_the_worker_takes_each_started_call_billed_once(
    livekit: LiveKitServer, backend: BackendServer, workers: Workers, tmp_path: Path
) -> None:
    name = f"{AGENT}-overload"
    (worker,) = workers.start(
        "overload", **backend_env(backend, AGENT_NAME=name, MAX_CONCURRENT_CALLS="1")
    )
    rooms = [f"over-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    results = await asyncio.gather(
        *(
            call(
                livekit,
                QUESTION,
                output=tmp_path / f"{i}.wav",
                agent_name=name,
                org="harbor",
                room=room,
                join_timeout=8,
            )
            for i, room in enumerate(rooms)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(r, (CallResult, CallFailed)) for r in results), results
    started = [room for room in rooms if worker.call_in(room)]
    assert started, "the worker took none of the calls"

    def billed() -> bool:
        return all(_records(backend, room) for room in started)

    await asyncio.to_thread(wait_until, billed, 30, "a record for every call that started")
    for room in started:
        assert len(_records(backend, room)) == 1, room
    for room in set(rooms) - set(started):
        assert not _records(backend, room), f"{room} never started, yet was billed"
    # every record reached the backend exactly once (one post per key, none repeated)
    keys = [key for key, status in backend.usage_posts if status < 300]
    assert len(keys) == len(set(keys))
