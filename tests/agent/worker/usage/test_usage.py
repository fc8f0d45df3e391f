"""Usage records: built from what livekit counted, priced, spooled before anything is sent,
and stored by the backend exactly once — through outages, slow or garbage answers and a
worker restart — without ever holding up a call."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import agent.tools.simulate as simulate_module
from agent.tools.caller_audio import say
from agent.tools.simulate import simulate_call
from agent.worker.call import Call
from agent.worker.usage import CallRecord, UsageSender, UsageSettings, get_usage, usage_lines
from agent.worker.usage.spool import Pending, SpoolFull, UsageSpool
from providers.catalogue import provider_config
from providers.catalogue.pricing import PriceOverrides, Unit
from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from providers.types import ProviderKind
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.openai import OpenAIStandin
from tests.support import REPO as ROOT
from tests.support.env import clean_environ, start_up
from tests.support.usage_writer import CONFIGS, model_usage

TIMEOUT = 120
BACKEND_KEY = "internal-usage-key"


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def record(call_id: str, org: str = "acme") -> CallRecord:
    now = time.time()
    return CallRecord(
        call_id=call_id,
        organization_id=org,
        started_at=now - 10,
        ended_at=now,
        config_source="backend",
        config_version="1",
        strategy="priority",
        usage=usage_lines(model_usage(0), CONFIGS, org_id=org),  # type: ignore[arg-type]
    )


def sender(tmp_path: Path, backend: BackendServer, **settings: Any) -> UsageSender:
    s = UsageSettings(
        backend_url=backend.url,
        spool_dir=tmp_path / "spool",
        post_timeout=settings.pop("post_timeout", 2.0),
        **settings,
    )
    return UsageSender(s, UsageSpool(s.spool_dir))


# --- pricing what livekit counted ----------------------------------------------------


def test_usage_lines_price_the_provider_that_served() -> None:
    overrides = PriceOverrides.from_env(
        {"PRICING_JSON": json.dumps({"tts/piper": {"characters": 0.001}})}
    )
    configs = dict(CONFIGS)
    configs[("stt", "Deepgram")] = provider_config(
        provider="deepgram", kind=ProviderKind.STT, pricing={Unit.AUDIO_SECONDS: 0.01}
    )
    lines = {
        line.kind: line
        for line in usage_lines(model_usage(0), configs, org_id="acme", overrides=overrides)  # type: ignore[arg-type]
    }
    assert lines["stt"].provider == "deepgram"  # the registry name, not the plugin's
    assert lines["stt"].cost_usd == pytest.approx(10.0 * 0.01)  # the org's own price
    assert lines["tts"].cost_usd == pytest.approx(120 * 0.001)  # PRICING_JSON beats "free"
    # the registry's default for gpt-4.1-mini: $0.40 / $1.60 per million tokens
    assert lines["llm"].cost_usd == pytest.approx(900 * 0.40e-6 + 60 * 1.60e-6)
    assert lines["llm"].units[Unit.INPUT_TOKENS] == 900


# --- a simulated call, end to end ----------------------------------------------------


@pytest.mark.slow
async def test_simulated_call_record_matches_livekit_and_a_stalled_backend_never_holds_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The record's units are livekit's, priced by the tables; the call ends while the
    backend is still sitting on the post, and the record arrives once it answers."""
    captured: dict[str, Call] = {}
    real_prepare = simulate_module.prepare_call

    async def spy(ctx: Any, **kwargs: Any) -> Call:
        captured["call"] = await real_prepare(ctx, **kwargs)
        return captured["call"]

    monkeypatch.setattr(simulate_module, "prepare_call", spy)
    answer = "We are open from nine to five."
    async with (
        OpenAIStandin(reply=answer) as llm_api,
        OpenAIStandin() as tts_api,
        BackendServer(expected_key=BACKEND_KEY) as backend,
    ):
        backend.set_org(
            "acme",
            org_payload(
                "acme",
                "5",
                [
                    provider_entry("whisper", "stt"),
                    provider_entry(
                        "openai",
                        "llm",
                        config={"baseUrl": llm_api.base_url, "model": "gpt-4.1-mini"},
                        secrets={"apiKey": "sk-llm"},
                    ),
                    provider_entry(
                        "openai",
                        "tts",
                        config={"baseUrl": tts_api.base_url, "pricing": {"characters": 2e-5}},
                        secrets={"apiKey": "sk-tts"},
                    ),
                ],
            ),
            version="5",
        )
        monkeypatch.setenv("AICO_BACKEND_URL", backend.url)
        monkeypatch.setenv("AICO_INTERNAL_API_KEY", BACKEND_KEY)
        monkeypatch.setenv("PRICING_JSON", json.dumps({"stt/whisper": {"audioSeconds": 0.001}}))
        start_up()  # the worker's start-up, with these
        backend.usage_gate = asyncio.Event()  # the backend takes the post and sits on it
        usage = get_usage()
        usage.start()  # the worker's background sender
        loader = ProviderLoader(
            LoaderSettings.from_env(
                {"AICO_BACKEND_URL": backend.url, "AICO_INTERNAL_API_KEY": BACKEND_KEY}
            )
        )
        try:
            caller = await asyncio.wait_for(say(["What are your opening hours?"]), TIMEOUT)
            result = await asyncio.wait_for(
                simulate_call(
                    job_metadata=json.dumps({"organizationId": "acme"}),
                    caller_audio=caller,
                    output=tmp_path / "call.wav",
                    loader=loader,
                ),
                TIMEOUT,
            )
            body = result.usage
            assert body is not None
            # the call is over and its record spooled, while the post still waits
            await until(lambda: len(backend.usage_headers) >= 1, 10, "the usage post")
            assert backend.usage_records == {}
            assert usage.spool is not None and usage.spool.depth() == 1
            backend.usage_gate.set()
            await until(lambda: body["callId"] in backend.usage_records, 15, "the stored record")
            await until(lambda: usage.spool is not None and usage.spool.depth() == 0, 5, "spool")
        finally:
            backend.usage_gate.set()
            await loader.aclose()

    assert [t.text for t in result.turns if t.role == "assistant"] == [answer]
    assert backend.usage_records[body["callId"]] == body
    # its record was open from the call's start; the close replaced it: one post, normal
    assert backend.usage_posts == [(body["callId"], 201)]
    assert body["completion"] == "normal"
    headers = backend.usage_headers[0]
    assert headers["Idempotency-Key"] == body["callId"]
    assert headers["X-Organization-Id"] == "acme"
    assert headers["Authorization"] == f"Bearer {BACKEND_KEY}"
    assert body["configSource"] == "backend" and body["configVersion"] == "5"

    # every unit is what livekit's own accounting counted
    livekit = {type(u).__name__: u for u in captured["call"].session.usage.model_usage}
    lines = {u["kind"]: u for u in body["usage"]}
    stt, llm, tts = livekit["STTModelUsage"], livekit["LLMModelUsage"], livekit["TTSModelUsage"]
    assert lines["stt"]["provider"] == "whisper"
    assert lines["stt"]["audioSeconds"] == pytest.approx(stt.audio_duration, abs=1e-3)
    assert lines["llm"]["provider"] == "openai" and lines["llm"]["model"] == "gpt-4.1-mini"
    assert lines["llm"]["inputTokens"] == llm.input_tokens > 0
    assert lines["llm"]["outputTokens"] == llm.output_tokens == len(answer.split())
    assert lines["tts"]["characters"] == tts.characters_count > 0
    expected = (
        stt.audio_duration * 0.001
        + llm.input_tokens * 0.40e-6
        + llm.output_tokens * 1.60e-6
        + tts.characters_count * 2e-5
    )
    assert body["estimatedCostUsd"] == pytest.approx(expected, rel=1e-4)


# --- the sender against a misbehaving backend ----------------------------------------


async def test_a_500_keeps_the_record_and_backs_off(tmp_path: Path) -> None:
    async with BackendServer() as backend:
        backend.usage.status = 500
        s = sender(tmp_path, backend)
        await asyncio.wait_for(s.submit(record("c1")), 10)
        assert await asyncio.wait_for(s.send(), 10) == 0
        (pending,) = s.spool.pending()  # type: ignore[union-attr]
        assert pending.attempts == 1 and pending.last_error == "HTTP 500"
        assert await asyncio.wait_for(s.send(), 10) == 0
        assert len(backend.usage_posts) == 1  # backing off: not due again yet
        backend.usage.status = None
        assert await asyncio.wait_for(s.send(everything=True), 10) == 1
        assert s.spool.depth() == 0  # type: ignore[union-attr]
        assert list(backend.usage_records) == ["c1"]


async def test_garbage_2xx_and_409_count_as_stored(tmp_path: Path) -> None:
    async with BackendServer() as backend:
        s = sender(tmp_path, backend)
        backend.usage.raw_body = b"\x00not json"
        await asyncio.wait_for(s.submit(record("c1")), 10)
        assert await asyncio.wait_for(s.send(), 10) == 1
        # a record the backend already has (a crash after it stored, before our delete)
        await asyncio.wait_for(s.submit(record("c1")), 10)
        assert await asyncio.wait_for(s.send(), 10) == 1
        assert backend.usage_posts == [("c1", 201), ("c1", 409)]
        assert s.spool.depth() == 0  # type: ignore[union-attr]


async def test_a_slow_backend_times_out_and_the_record_stays(tmp_path: Path) -> None:
    async with BackendServer() as backend:
        backend.usage.delay = 30
        s = sender(tmp_path, backend, post_timeout=0.5)
        await asyncio.wait_for(s.submit(record("c1")), 10)
        assert await asyncio.wait_for(s.send(), 10) == 0
        (pending,) = s.spool.pending()  # type: ignore[union-attr]
        assert pending.last_error in ("ReadTimeout", "PostDeadline (0.5 s)")


async def test_without_a_backend_the_record_is_logged_not_spooled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = UsageSender(UsageSettings(spool_dir=tmp_path / "spool"), None)
    with caplog.at_level("INFO", logger="voice_agent"):
        await asyncio.wait_for(s.submit(record("c1")), 10)
    (line,) = [r for r in caplog.records if r.getMessage().startswith("call usage")]
    assert line.record["callId"] == "c1"  # type: ignore[attr-defined]
    assert not (tmp_path / "spool").exists()


def test_a_full_spool_refuses_and_keeps_what_it_has(tmp_path: Path) -> None:
    spool = UsageSpool(tmp_path, max_records=2)
    for i in range(2):
        spool.add(record(f"c{i}").to_json())
    with pytest.raises(SpoolFull, match="USAGE_SPOOL_MAX_RECORDS=2"):
        spool.add(record("c2").to_json())
    assert [p.call_id for p in UsageSpool(tmp_path).pending()] == ["c0", "c1"]


def test_a_leased_record_is_not_handed_to_a_second_sender(tmp_path: Path) -> None:
    first, second = UsageSpool(tmp_path), UsageSpool(tmp_path)
    first.add(record("c1").to_json())
    claimed = first.claim("c1", owner="first", seconds=30)
    assert isinstance(claimed, Pending) and claimed.call_id == "c1"
    assert second.due(now=time.time()) == []
    assert second.claim("c1", owner="second", seconds=30, everything=True) is None


# --- 20 calls, an outage and a restart: every record stored exactly once -------------


async def test_twenty_calls_through_an_outage_and_a_restart_arrive_exactly_once(
    tmp_path: Path,
) -> None:
    async with BackendServer(expected_key=BACKEND_KEY) as backend:
        backend.usage.status = 503
        env = {
            **clean_environ(),
            "AICO_BACKEND_URL": backend.url,
            "AICO_INTERNAL_API_KEY": BACKEND_KEY,
            "USAGE_SPOOL_DIR": str(tmp_path / "spool"),
            "USAGE_RETRY_MAX": "0.5",
            "USAGE_POST_TIMEOUT": "2",
        }

        async def writer(prefix: str) -> asyncio.subprocess.Process:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.support.usage_writer", prefix, "10",
                cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line.decode().strip() == "spooled 10"
            return proc

        first = await writer("before")
        await until(lambda: len(backend.usage_posts) >= 3, 30, "retries against the outage")
        first.send_signal(signal.SIGKILL)  # the worker dies mid-retry
        await asyncio.wait_for(first.wait(), 10)
        assert backend.usage_records == {}

        flush = await usage_command(env, "--flush")
        assert flush.returncode == 1  # still down: nothing stored, and it says so
        assert "10 record(s) pending" in flush.stdout

        backend.usage.status = None  # the backend is back
        second = await writer("after")  # the restarted worker ends 10 more calls
        try:
            await until(lambda: len(backend.usage_records) == 20, 60, "all 20 records")
            # the sender deletes a record only after its 2xx: wait for that, not the post
            spool = UsageSpool(tmp_path / "spool")
            await until(lambda: spool.depth() == 0, 30, "the spool to empty")
        finally:
            second.send_signal(signal.SIGKILL)
            await asyncio.wait_for(second.wait(), 10)

        stored = [key for key, status in backend.usage_posts if status == 201]
        assert sorted(stored) == sorted(
            [f"before-{i}" for i in range(10)] + [f"after-{i}" for i in range(10)]
        )  # each exactly once
        shown = await usage_command(env, "--json")
        assert shown.returncode == 0 and json.loads(shown.stdout)["pending"] == 0


async def usage_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent", "usage", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
