"""The sender against what goes wrong in the pipeline itself: a backend that trickles its
answer, a record that cannot be read back, two senders on one spool with posts slower than
a batch lease, a full disk, and a worker that stops gracefully with records still spooled."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from agent.worker.usage import UsageSender, UsageSettings
from agent.worker.usage.spool import UsageSpool
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.support import REPO as ROOT
from tests.support.env import clean_environ

from .test_usage import BACKEND_KEY, record, sender, until


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_trickling_backend_is_cut_off_at_the_total_deadline(tmp_path: Path) -> None:
    """One byte every 0.2 s never trips httpx's per-read timeout; the post's own deadline
    ends it, and the record is retried (the backend stored it: 409 then)."""
    async with BackendServer() as backend:
        backend.usage.trickle = 0.2  # a 200-byte answer: 40 s
        s = sender(tmp_path, backend, post_timeout=1.0)
        await asyncio.wait_for(s.submit(record("c1")), 10)
        started = time.monotonic()
        assert await asyncio.wait_for(s.send(), 10) == 0
        assert time.monotonic() - started < 3
        (pending,) = s.spool.pending()  # type: ignore[union-attr]
        assert pending.last_error == "PostDeadline (1 s)"
        backend.usage.trickle = None
        assert await asyncio.wait_for(s.send(everything=True), 10) == 1
    assert backend.usage_posts == [("c1", 201), ("c1", 409)]


async def test_a_poison_record_is_quarantined_and_the_others_go_out(tmp_path: Path) -> None:
    async with BackendServer() as backend:
        s = sender(tmp_path, backend)
        spool = s.spool
        assert spool is not None
        with sqlite3.connect(spool.path) as db:  # written by something broken, oldest first
            db.execute(
                "INSERT INTO records (call_id, org, body, cost_usd, created_at) VALUES "
                "('bad', 'acme', 'not json{', 0, 1), "
                "('nan', 'acme', '{\"callId\": \"nan\", \"estimatedCostUsd\": NaN}', 0, 2)"
            )
        for i in range(3):
            await asyncio.wait_for(s.submit(record(f"c{i}")), 10)
        before = sample("voice_agent_usage_records_quarantined_total")
        assert await asyncio.wait_for(s.send(), 10) == 3
        assert await asyncio.wait_for(s.send(everything=True), 10) == 0  # not retried
    assert sorted(backend.usage_records) == ["c0", "c1", "c2"]
    assert sample("voice_agent_usage_records_quarantined_total") == before + 2
    assert spool.counts() == {"open": 0, "closed": 0, "quarantined": 2}
    reasons = {p.call_id: p.last_error or "" for p in spool.pending("quarantined")}
    assert reasons["bad"].startswith("body is not JSON")
    assert reasons["nan"].startswith("not strict JSON")


async def test_two_senders_never_post_one_record_at_once(tmp_path: Path) -> None:
    """Each post takes 0.6 s, 15 records 9 s: longer than a lease of the whole batch
    (post timeout + 5 s). Every record is posted exactly once, never twice at a time."""
    async with BackendServer() as backend:
        backend.usage.delay = 0.6
        first = sender(tmp_path, backend, post_timeout=1.0)
        second = UsageSender(first.settings, UsageSpool(first.settings.spool_dir))
        for i in range(15):
            await asyncio.wait_for(first.submit(record(f"c{i:02}")), 10)
        sending = asyncio.ensure_future(first.send())
        stored = 0
        while not sending.done():  # the second sender polls, as a background one does
            await asyncio.sleep(0.3)
            stored += await asyncio.wait_for(second.send(), 30)
        stored += await asyncio.wait_for(sending, 30)
    assert stored == 15
    assert backend.usage_overlap == 1
    assert sorted(backend.usage_posts) == [(f"c{i:02}", 201) for i in range(15)]


@contextmanager
def full_disk(spool: UsageSpool) -> Iterator[None]:
    """SQLite's own 'database or disk is full': the file may not grow by a page."""
    real = UsageSpool._db

    @contextmanager
    def capped(self: UsageSpool) -> Iterator[sqlite3.Connection]:
        with real(self) as db:
            (pages,) = db.execute("PRAGMA page_count").fetchone()
            db.execute(f"PRAGMA max_page_count = {pages}")
            yield db

    with pytest.MonkeyPatch.context() as m:
        m.setattr(UsageSpool, "_db", capped)
        yield


async def test_a_failed_spool_write_is_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with BackendServer() as backend:
        s = sender(tmp_path, backend)
        assert s.spool is not None
        big = record("c1")
        big = type(big)(**{**big.__dict__, "room": "r" * 50_000})  # needs new pages
        before = sample("voice_agent_usage_spool_write_errors_total", op="close")
        with caplog.at_level(logging.ERROR, logger="voice_agent"), full_disk(s.spool):
            await asyncio.wait_for(s.submit(big), 10)  # never raises
    assert sample("voice_agent_usage_spool_write_errors_total", op="close") == before + 1
    (line,) = [r for r in caplog.records if "USAGE SPOOL WRITE FAILED" in r.getMessage()]
    assert "full" in line.error  # type: ignore[attr-defined]
    assert line.record["callId"] == "c1"  # type: ignore[attr-defined]  # to replay


async def test_a_failed_checkpoint_is_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with BackendServer() as backend:
        s = sender(tmp_path, backend)
        assert s.spool is not None and s.writer is not None
        body = {**record("c1").to_json(), "room": "r" * 50_000, "completion": "recovered"}
        before = sample("voice_agent_usage_spool_write_errors_total", op="checkpoint")
        with caplog.at_level(logging.ERROR, logger="voice_agent"), full_disk(s.spool):
            for _ in range(3):
                s.writer.checkpoint("c1", lambda: body)
                await asyncio.sleep(0.2)
    assert sample("voice_agent_usage_spool_write_errors_total", op="checkpoint") == before + 3
    logged = [r for r in caplog.records if "USAGE SPOOL WRITE FAILED" in r.getMessage()]
    assert len(logged) == 1 and "full" in logged[0].error  # type: ignore[attr-defined]


async def test_a_graceful_stop_sends_what_the_spool_holds_then_exits_cleanly(
    tmp_path: Path,
) -> None:
    """A worker told to stop (SIGTERM) while its sender still waits on the backend: the
    process exits 0 only once every spooled record is stored, and logs no sender error.
    ``localhost``: a name, so the drain resolves it (the default executor is shut by then)."""
    async with BackendServer(expected_key=BACKEND_KEY) as backend:
        backend.usage_gate = asyncio.Event()  # every post waits
        env = {
            **clean_environ(),
            "AICO_BACKEND_URL": backend.url.replace("127.0.0.1", "localhost"),
            "AICO_INTERNAL_API_KEY": BACKEND_KEY,
            "USAGE_SPOOL_DIR": str(tmp_path / "spool"),
            "USAGE_POST_TIMEOUT": "5",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.usage_writer", "stop", "3",
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        try:
            assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"spooled 3"
            await until(lambda: len(backend.usage_headers) >= 1, 10, "the first post")
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            backend.usage_gate.set()  # the backend answers at last
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
    assert proc.returncode == 0, err.decode()
    assert sorted(backend.usage_records) == ["stop-0", "stop-1", "stop-2"]
    assert b"usage sender error" not in err and b"Traceback" not in err, err.decode()
    assert UsageSpool(tmp_path / "spool").counts()["closed"] == 0


def test_the_usage_settings_bound_the_checkpoint_interval() -> None:
    assert UsageSettings.from_env({"USAGE_CHECKPOINT_SECONDS": "2"}).checkpoint_seconds == 2
    for bad in ("0", "nan", "inf", "soon"):
        with pytest.raises(Exception, match="USAGE_CHECKPOINT_SECONDS"):
            UsageSettings.from_env({"USAGE_CHECKPOINT_SECONDS": bad})


@pytest.mark.slow
async def test_simulate_spools_its_record_and_exits_without_waiting_for_the_backend(
    tmp_path: Path,
) -> None:
    """A backend that would trickle its answer for minutes: ``simulate`` ends as soon as
    the call's record is in the spool, says where it is, and leaves it to a sender."""
    async with BackendServer() as backend:
        backend.set_org(
            "acme",
            org_payload(
                "acme",
                "1",
                [provider_entry("whisper", "stt"), provider_entry("piper", "tts")],
                agent={"greeting": "Hello, this is Acme."},
            ),
            version="1",
        )
        backend.usage.trickle = 1.0  # 200 s for one answer
        env = {
            **clean_environ(),
            "AICO_BACKEND_URL": backend.url,
            "USAGE_SPOOL_DIR": str(tmp_path / "spool"),
        }
        argv = [sys.executable, "-m", "agent", "simulate", "--org", "acme", "--say", "Hello?"]
        argv += ["--output", str(tmp_path / "call.wav"), "--json", "--timeout", "60"]
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 120)
        finally:
            if proc.returncode is None:
                proc.kill()
        assert proc.returncode == 0, err.decode()
        assert backend.usage_headers == []  # never posted, so never waited on
    call_id = json.loads(out)["usage"]["callId"]
    assert b"usage record is in the spool" in err
    assert [p.call_id for p in UsageSpool(tmp_path / "spool").pending()] == [call_id]
