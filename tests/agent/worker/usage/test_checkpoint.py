"""Checkpoints of a running call: written ahead, on the usage writer's thread (a slow disk
never stalls the call's loop), at the interval and at each turn's end, never reopening a
closed record."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from livekit.agents import AgentSession, ConversationItemAddedEvent, llm

from agent.worker.status import status
from agent.worker.usage import UsageSender, UsageSettings, get_usage
from agent.worker.usage.spool import UsageSpool
from tests.support.env import start_up

from .test_usage import record, until


def live_sender(tmp_path: Path, interval: float) -> UsageSender:
    settings = UsageSettings(
        backend_url="http://127.0.0.1:9", spool_dir=tmp_path, checkpoint_seconds=interval
    )
    return UsageSender(settings, UsageSpool(tmp_path))


def snapshots(calls: list[float]) -> Any:
    def take() -> Any:
        calls.append(time.time())
        body = {**record("c1").to_json(), "completion": "recovered"}
        return lambda: body

    return take


async def test_checkpoints_are_written_off_the_call_s_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = live_sender(tmp_path, interval=0.05)
    assert s.spool is not None
    threads: list[int] = []
    real = UsageSpool.checkpoint

    def slow_disk(self: UsageSpool, *args: Any, **kwargs: Any) -> bool:
        threads.append(threading.get_ident())
        time.sleep(0.3)  # an fsync on a busy disk
        return real(self, *args, **kwargs)

    monkeypatch.setattr(UsageSpool, "checkpoint", slow_disk)
    taken: list[float] = []
    session: AgentSession[None] = AgentSession()
    live = s.live("c1", snapshots(taken))
    live.start(session)
    worst = 0.0
    for _ in range(40):  # 0.4 s of the call's loop, while the disk sits on writes
        t = time.monotonic()
        await asyncio.sleep(0.01)
        worst = max(worst, time.monotonic() - t - 0.01)
    await until(lambda: len(threads) >= 2, 5, "two checkpoint writes")
    live.stop()
    assert threads and threading.get_ident() not in threads  # never on this loop
    assert worst < 0.1, f"the call's loop stalled {worst:.3f} s"
    assert len(taken) >= 5  # snapshots at the interval, coalesced while the disk is slow
    assert len(threads) < len(taken)
    assert s.spool.counts()["open"] == 1


async def test_a_turn_s_end_is_checkpointed_at_once(tmp_path: Path) -> None:
    s = live_sender(tmp_path, interval=60)
    taken: list[float] = []
    session: AgentSession[None] = AgentSession()
    live = s.live("c1", snapshots(taken))
    live.start(session)
    assert len(taken) == 1  # the open record, as the call starts
    item = llm.ChatMessage(role="assistant", content=["We open at nine."])
    session.emit("conversation_item_added", ConversationItemAddedEvent(item=item))
    assert len(taken) == 2
    assert s.writer is not None
    await until(lambda: s.writer is not None and s.writer.writes >= 1, 5, "the write")
    live.stop()


async def test_a_late_checkpoint_never_reopens_a_closed_record(tmp_path: Path) -> None:
    s = live_sender(tmp_path, interval=60)
    assert s.spool is not None and s.writer is not None
    await asyncio.wait_for(s.submit(record("c1")), 10)
    body = {**record("c1").to_json(), "completion": "recovered"}
    s.writer.checkpoint("c1", lambda: body)
    await asyncio.sleep(0.2)
    assert s.spool.counts() == {"open": 0, "closed": 1, "quarantined": 0}
    assert s.spool.pending()[0].body["completion"] == "normal"


async def test_status_shows_the_open_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AICO_BACKEND_URL", "http://127.0.0.1:9")
    start_up()
    spool = get_usage().spool
    assert spool is not None
    spool.checkpoint({**record("c1").to_json()}, owner="me", lease=60)
    spool.add(record("c2").to_json())
    served = await asyncio.to_thread(status)
    assert served["usageSpool"]["open"] == 1 and served["usageSpool"]["pending"] == 1
