"""A call whose job or worker dies is billed anyway: its record is open in the spool from
the call's start, checkpointed while it runs, and closed from its last checkpoint by
whichever process finds its heartbeat expired — sent with the key a normal close would
have used, so a backend that has the call already answers 409 and nothing is billed twice."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from agent.worker.usage import UsageSender, UsageSettings
from agent.worker.usage.spool import UsageSpool
from tests.standins.backend import BackendServer
from tests.support import REPO as ROOT
from tests.support.env import clean_environ
from tests.support.usage_writer import OPEN_AUDIO_SECONDS

from .test_usage import BACKEND_KEY, record, until

CHECKPOINT = 0.5
HEARTBEAT = UsageSettings(checkpoint_seconds=CHECKPOINT).heartbeat


def recovered_total() -> float:
    return REGISTRY.get_sample_value("voice_agent_usage_records_recovered_total") or 0.0


def worker_env(backend: BackendServer, spool: Path) -> dict[str, str]:
    return {
        **clean_environ(),
        "AICO_BACKEND_URL": backend.url,
        "AICO_INTERNAL_API_KEY": BACKEND_KEY,
        "USAGE_SPOOL_DIR": str(spool),
        "USAGE_CHECKPOINT_SECONDS": str(CHECKPOINT),
        "USAGE_POST_TIMEOUT": "2",
    }


async def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def killed_mid_call(env: dict[str, str], calls: int) -> None:
    """A process that starts ``calls`` calls, checkpoints them, and is SIGKILLed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.usage_writer", "dead", str(calls), "--open",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.decode().strip() == f"open {calls}"
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)


async def test_a_killed_process_s_open_records_are_recovered_by_another_process(
    tmp_path: Path,
) -> None:
    async with BackendServer(expected_key=BACKEND_KEY) as backend:
        env = worker_env(backend, tmp_path / "spool")
        await killed_mid_call(env, 2)
        spool = UsageSpool(tmp_path / "spool")
        left = {p.call_id: p.body for p in spool.pending("open")}
        assert sorted(left) == ["dead-0", "dead-1"]  # written ahead, while the calls ran

        # before the heartbeat runs out the calls might still be alive: nobody takes them
        early = await run(env, "agent", "usage", "--flush", "--json")
        assert early.returncode == 0, early.stderr
        assert json.loads(early.stdout)["open"] == 2
        assert backend.usage_posts == []

        await asyncio.sleep(HEARTBEAT + 0.5)
        late = await run(env, "agent", "usage", "--flush", "--json")  # another process
        assert late.returncode == 0, late.stderr
        shown = json.loads(late.stdout)
        assert shown["sent"] == 2 and shown["open"] == 0 and shown["pending"] == 0

    assert sorted(k for k, status in backend.usage_posts if status == 201) == sorted(left)
    for call_id, body in left.items():
        got = backend.usage_records[call_id]
        assert got == body  # the last checkpoint, as it stood when the process died
        assert got["completion"] == "recovered"
        assert got["usage"][0]["audioSeconds"] == OPEN_AUDIO_SECONDS
        assert got["endedAt"] > got["startedAt"]
    headers = backend.usage_headers[0]
    assert headers["Idempotency-Key"] in left  # the key a normal close would use: the call id
    assert headers["X-Organization-Id"] == "acme"


async def test_a_sibling_worker_s_sender_recovers_and_counts_it(tmp_path: Path) -> None:
    async with BackendServer(expected_key=BACKEND_KEY) as backend:
        env = worker_env(backend, tmp_path / "spool")
        await killed_mid_call(env, 1)
        settings = UsageSettings.from_env(env)
        sibling = UsageSender(
            dataclasses.replace(settings, poll_interval=0.2),
            UsageSpool(settings.spool_dir),
        )
        before = recovered_total()
        sibling.start()  # a running worker's background sender, on the same spool
        try:
            await until(lambda: "dead-0" in backend.usage_records, HEARTBEAT + 10, "recovery")
        finally:
            sibling.stop()
            await asyncio.to_thread(sibling.join, 10)
    assert recovered_total() == before + 1
    assert backend.usage_records["dead-0"]["completion"] == "recovered"


async def test_a_recovered_record_the_backend_already_has_is_not_billed_twice(
    tmp_path: Path,
) -> None:
    """The normal close reached the backend, but the row in the spool was left open (a
    process that stalled past its heartbeat): the recovery posts with the same key, the
    backend answers 409, and the record it stored stays the only one."""
    async with BackendServer() as backend:
        spool = UsageSpool(tmp_path)
        normal = record("c1").to_json()
        backend.usage_records["c1"] = normal  # stored by the backend already
        partial: dict[str, Any] = {**normal, "completion": "recovered", "usage": []}
        spool.checkpoint(partial, owner="gone", lease=0.0)  # an open row, heartbeat over
        s = UsageSender(UsageSettings(backend_url=backend.url, spool_dir=tmp_path), spool)
        before = recovered_total()
        assert await asyncio.wait_for(s.send(), 10) == 1  # 409 counts as stored
    assert backend.usage_posts == [("c1", 409)]
    assert backend.usage_records == {"c1": normal}
    assert spool.counts() == {"open": 0, "closed": 0, "quarantined": 0}
    assert recovered_total() == before + 1


async def test_a_running_call_s_close_replaces_its_open_record(tmp_path: Path) -> None:
    """Normal calls are unchanged on the wire: exactly one record, ``completion:
    normal``, whatever was checkpointed before."""
    async with BackendServer() as backend:
        spool = UsageSpool(tmp_path)
        s = UsageSender(UsageSettings(backend_url=backend.url, spool_dir=tmp_path), spool)
        opened = {**record("c1").to_json(), "completion": "recovered"}
        assert spool.checkpoint(opened, owner=s.owner, lease=60)
        assert await asyncio.wait_for(s.send(), 10) == 0  # open: never posted
        final = record("c1")
        await asyncio.wait_for(s.submit(final), 10)
        assert await asyncio.wait_for(s.send(), 10) == 1
        assert await asyncio.wait_for(s.send(everything=True), 10) == 0
    assert backend.usage_posts == [("c1", 201)]
    assert backend.usage_records["c1"] == final.to_json()
    assert backend.usage_records["c1"]["completion"] == "normal"


def test_a_spool_from_before_write_ahead_keeps_its_records(tmp_path: Path) -> None:
    """A worker upgraded in place opens the old file: its rows are closed records, sent."""
    import sqlite3

    with sqlite3.connect(tmp_path / "usage.sqlite3") as db:
        db.executescript(
            "CREATE TABLE records (call_id TEXT PRIMARY KEY, org TEXT, body TEXT NOT NULL, "
            "cost_usd REAL NOT NULL, created_at REAL NOT NULL, attempts INTEGER NOT NULL "
            "DEFAULT 0, next_attempt REAL NOT NULL DEFAULT 0, last_error TEXT);"
        )
        db.execute(
            "INSERT INTO records (call_id, org, body, cost_usd, created_at) VALUES (?, ?, ?, 0, 1)",
            ("old", "acme", json.dumps(record("old").to_json())),
        )
    spool = UsageSpool(tmp_path)
    assert spool.counts() == {"open": 0, "closed": 1, "quarantined": 0}
    assert spool.due(now=time.time()) == ["old"]
