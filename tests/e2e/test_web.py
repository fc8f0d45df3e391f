"""The web caller (``python -m agent web``) and the operator page, in a real browser:
Debian's headless Chromium with a fake microphone playing a Piper-spoken WAV, against the
rig's LiveKit server and worker. ``--screenshots DIR`` (``make screenshots``) saves the
README's pictures of both pages from this run."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.tools.room_call import CallOptions
from agent.tools.web import WebCaller, WebOptions
from tests.e2e.browser import browser, received_audio, require_browser, write_fake_mic
from tests.e2e.conftest import AGENT, FAQS, GREETINGS, local_org, speech
from tests.e2e.rig import API_KEY, API_SECRET, LiveKitServer, Worker
from tests.e2e.test_rooms import QUESTION, assert_heard
from tests.standins.backend import BackendServer, provider_entry
from tests.standins.elevenlabs import ElevenLabsStandin
from tests.standins.faults import Fault
from tests.support.audio import transcribe
from tests.support.net import free_port

CALL_TIMEOUT = 120.0
ANSWERED_MS = 90_000
"""How long the page may take to show the agent's answer (dispatch, join, greeting,
question, answer) on two shared cores."""
LEAD_S = 9.0
"""Silence the fake microphone plays before the question: the agent joins and greets."""


@pytest.fixture(autouse=True)
def _browser() -> None:
    require_browser()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path | None:
    where = request.config.getoption("--screenshots")
    if where is None:
        return None
    path = Path(where)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
async def web(livekit: LiveKitServer) -> AsyncIterator[WebCaller]:
    caller = WebCaller(_options(livekit.url))
    await caller.start(0)
    yield caller
    await caller.stop()


def _options(url: str, agent_name: str = AGENT, join_timeout: float = 20.0) -> WebOptions:
    call = CallOptions(url=url, api_key=API_KEY, api_secret=API_SECRET, agent_name=agent_name)
    return WebOptions(call, default_org="harbor", join_timeout=join_timeout)


async def _fake_mic(tmp_path: Path, *sentences: str) -> Path:
    return write_fake_mic(tmp_path / "mic.wav", await speech(*sentences), lead_s=LEAD_S, gap_s=6)


async def _call(page: Any, url: str, org: str) -> None:
    await page.goto(url)
    await page.fill("#org", org)
    await page.click("#call")


async def _state(page: Any, *states: str, timeout_ms: float = 60_000) -> str:
    """Until the page shows one of ``states`` (``#state[data-state]``)."""
    names = json.dumps(list(states))
    await page.wait_for_function(
        f"{names}.includes(document.getElementById('state').dataset.state)", timeout=timeout_ms
    )
    return str(await page.get_attribute("#state", "data-state"))


async def test_browser_caller_is_answered_with_its_providers_and_failover_shown(
    livekit: LiveKitServer,
    worker: Worker,
    backend: BackendServer,
    web: WebCaller,
    tmp_path: Path,
    shots: Path | None,
) -> None:
    mic = await _fake_mic(tmp_path, QUESTION)
    answer = FAQS["harbor"][0]["answer"]
    async with ElevenLabsStandin(fault=Fault.STATUS_500) as broken:
        entry = provider_entry(
            "elevenlabs",
            "tts",
            priority=50,
            config={"base_url": broken.base_url, "voice_id": "v"},
            secrets={"apiKey": "e2e-web-broken-key"},
        )
        backend.set_org("web-failing", local_org("harbor", "web-failing", tts=[entry]), "1")

        async def run() -> tuple[dict[str, Any], str]:
            async with browser(mic) as page:
                await _call(page, web.url, "web-failing")
                # the answer to the question, with what served it
                await page.wait_for_function(
                    """() => window.voiceAgent.turns.some(
                        (t) => t.role === "assistant" && t.info && !t.info.scripted)""",
                    timeout=ANSWERED_MS,
                )
                await asyncio.sleep(1.0)  # the rest of the answer's audio
                va = await page.evaluate(
                    "() => ({state: voiceAgent.state, turns: voiceAgent.turns, "
                    "audio: voiceAgent.agentAudio(), measurements: voiceAgent.measurements})"
                )
                text = await page.inner_text("#transcript")
                if shots:
                    await page.screenshot(path=str(shots / "web-caller.png"), full_page=True)
                await page.click("#hangup")
                assert await _state(page, "ended", timeout_ms=5_000) == "ended"
                _check_call(va, text)
                await _check_operator_page(page, worker, broken.base_url, shots)
                return va, text

        va, text = await asyncio.wait_for(run(), CALL_TIMEOUT)
        assert broken.requests_to("text-to-speech"), "the broken primary TTS was never tried"
    assert "e2e-web-broken-key" not in worker.log_path.read_text()

    # the answer, on the page's transcript ...
    assert answer in re.sub(r"\s+", " ", text)
    # ... and in the audio the page received
    pcm, rate = received_audio(va["audio"])
    heard = await asyncio.to_thread(transcribe, pcm, rate)
    assert_heard(heard, GREETINGS["harbor"])
    assert_heard(heard, answer)


def _check_call(va: dict[str, Any], text: str) -> None:
    assert va["state"] == "in-call", va
    agent = [t for t in va["turns"] if t["role"] == "assistant" and t.get("info")]
    greeting, reply = agent[0], agent[-1]
    assert greeting["info"]["scripted"] and greeting["info"]["providers"] == {"tts": "piper"}
    # the greeting met the broken TTS first: the page shows the switch
    failovers = [f for t in agent for f in t["info"]["failovers"]]
    assert any(
        f["kind"] == "tts"
        and f["from"] == "elevenlabs"
        and f["to"] == "piper"
        and "HTTP 500" in f["error"]
        for f in failovers
    ), failovers
    assert "failover: TTS elevenlabs → piper" in text
    assert reply["info"]["providers"] == {"stt": "whisper", "llm": "offline", "tts": "piper"}
    for shown in ("STT whisper", "LLM offline", "TTS piper", "greeting, no LLM"):
        assert shown in text, text
    # voice to voice, measured in the page, on the reply
    assert reply.get("v2v") is not None and 0 < reply["v2v"] < 10, reply
    assert re.search(r"voice to voice \d+\.\d\d s", text), text
    user = [t for t in va["turns"] if t["role"] == "user" and t["text"].strip()]
    assert user and user[-1]["info"]["providers"] == {"stt": "whisper"}


async def _check_operator_page(
    page: Any, worker: Worker, broken_url: str, shots: Path | None
) -> None:
    """The worker's status page shows the broken TTS's endpoint breaker open, with its
    error class, and no key."""
    await page.goto(worker.status_url + "/")
    row = "tr[data-provider='elevenlabs'][data-state='open']"
    await page.wait_for_selector(row, timeout=10_000)
    rows = await page.eval_on_selector_all("#providers tr", "rows => rows.map(r => r.innerText)")
    broken = [r for r in rows if broken_url in r]
    assert broken and "open" in broken[0] and "HTTP 500" in broken[0], rows
    assert any("piper" in r and "closed" in r for r in rows), rows
    assert await page.inner_text("#calls") in {"0", "1"}
    content = await page.content()
    assert "e2e-web-broken-key" not in content
    if shots:
        await page.screenshot(path=str(shots / "operator-status.png"), full_page=True)


async def test_an_unknown_org_shows_the_refused_call(
    livekit: LiveKitServer, worker: Worker, web: WebCaller, tmp_path: Path
) -> None:
    async def run() -> None:
        async with browser(await _fake_mic(tmp_path, QUESTION)) as page:
            await _call(page, web.url, "no-such-org")
            assert await _state(page, "refused", "in-call", "no-agent") == "refused"
            assert "unknown-org" in await page.inner_text("#state")

    await asyncio.wait_for(run(), CALL_TIMEOUT)


async def test_no_worker_for_the_agent_name_says_so(
    livekit: LiveKitServer, worker: Worker, tmp_path: Path
) -> None:
    caller = WebCaller(_options(livekit.url, agent_name="nobody", join_timeout=4))
    await caller.start(0)
    try:

        async def run() -> None:
            async with browser(None) as page:
                await _call(page, caller.url, "harbor")
                assert await _state(page, "no-agent", "in-call", "refused") == "no-agent"
                detail = await page.inner_text("#state")
                assert "no worker took the call" in detail and "AGENT_NAME=nobody" in detail

        await asyncio.wait_for(run(), 60)
    finally:
        await caller.stop()


async def test_no_livekit_server_and_a_denied_microphone_are_told_apart(
    tmp_path: Path,
) -> None:
    """Neither needs a server: nothing listens at the page's LiveKit URL."""
    caller = WebCaller(_options(f"ws://127.0.0.1:{free_port()}"))
    await caller.start(0)
    try:

        async def run() -> None:
            async with browser(None) as page:
                await _call(page, caller.url, "harbor")
                assert await _state(page, "no-server", "mic-denied", "failed") == "no-server"
                assert "make livekit-dev" in await page.inner_text("#state")
            async with browser(None, microphone=False) as page:
                await _call(page, caller.url, "harbor")
                assert await _state(page, "mic-denied", "no-server", "failed") == "mic-denied"
                assert "allow it for this page" in await page.inner_text("#state")

        await asyncio.wait_for(run(), 60)
    finally:
        await caller.stop()
