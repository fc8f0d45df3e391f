"""Fixtures for the real-room tests: one LiveKit server, one loopback backend and one
local-stack worker for the whole session; tests that need their own workers start them.

Without the server binary these tests skip with one line saying ``make livekit-server``;
``E2E_REQUIRED=1`` (set by ``.ci/run``) turns that skip into a failure.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from livekit import rtc

from agent.tools.caller_audio import say
from agent.tools.room_call import CallOptions, place_call
from agent.tools.transcript import CallResult
from tests.e2e.rig import (
    API_KEY,
    API_SECRET,
    BACKEND_KEY,
    SERVER_BIN,
    LiveKitServer,
    LoopThread,
    Worker,
    Workers,
)
from tests.standins.backend import BackendServer, org_payload, provider_entry

AGENT = "e2e-agent"
CALL_TIMEOUT = 90.0

GREETINGS = {
    "harbor": "Hello, thanks for calling Harbor Clinic. How can I help you?",
    "summit": "Good day, this is Summit Dental. What can I do for you?",
}
FAQS = {
    "harbor": [
        {
            "question": "What are your opening hours?",
            "answer": "We are open Monday to Friday, from nine in the morning to five.",
        }
    ],
    "summit": [
        {
            "question": "What are your opening hours?",
            "answer": "Summit Dental opens every day at seven in the evening.",
        }
    ],
}


def local_org(
    persona: str,
    org: str | None = None,
    version: str = "1",
    tts: list[dict[str, Any]] | None = None,
) -> Any:
    """An org (``persona`` unless named) on the local stack (whisper, offline FAQ, piper),
    with ``tts`` entries before Piper."""
    providers = [
        provider_entry("whisper", "stt", priority=10),
        provider_entry("offline", "llm", priority=10),
        *(tts or []),
        provider_entry("piper", "tts", priority=1),
    ]
    agent = {
        "greeting": GREETINGS[persona],
        "faq": FAQS[persona],
        "instructions": "Receptionist.",
    }
    return org_payload(org or persona, version, providers, agent)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(
                pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
            )


@pytest.fixture(scope="session")
def e2e_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-logs")


@pytest.fixture(scope="session")
def livekit(e2e_logs: Path) -> Iterator[LiveKitServer]:
    if not SERVER_BIN.exists():
        message = f"no LiveKit server at {SERVER_BIN}: run `make livekit-server`"
        if os.environ.get("E2E_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = LiveKitServer(e2e_logs / "livekit-server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def backend(loop_thread: LoopThread) -> Iterator[BackendServer]:
    server = BackendServer(expected_key=BACKEND_KEY)
    loop_thread.run(server.start())
    for org in GREETINGS:
        server.set_org(org, local_org(org), version="1")
    yield server
    loop_thread.run(server.stop())


def backend_env(backend: BackendServer, **env: str) -> dict[str, str]:
    return {
        "AGENT_NAME": AGENT,
        "AICO_BACKEND_URL": backend.url,
        "AICO_INTERNAL_API_KEY": BACKEND_KEY,
        "STT_PROVIDER": "whisper",
        "LLM_PROVIDER": "offline",
        "TTS_PROVIDER": "piper",
        # count-based load: livekit's default (machine-wide CPU, full at 0.7) turns calls
        # away on 2 cores while this very process transcribes what a caller heard
        "MAX_CONCURRENT_CALLS": "4",
        **env,
    }


@pytest.fixture(scope="session")
def worker(livekit: LiveKitServer, backend: BackendServer, e2e_logs: Path) -> Iterator[Worker]:
    """The session's worker: hybrid mode against the loopback backend, local stack."""
    w = Worker(livekit, e2e_logs, "main", **backend_env(backend)).start()
    yield w
    w.stop()


@pytest.fixture
def workers(livekit: LiveKitServer, e2e_logs: Path) -> Iterator[Workers]:
    pool = Workers(livekit, e2e_logs)
    yield pool
    pool.stop()


_speech: dict[tuple[str, ...], list[rtc.AudioFrame]] = {}


async def speech(*sentences: str) -> list[rtc.AudioFrame]:
    """Caller turns spoken by Piper in this process (cached: the same text, the same audio)."""
    if sentences not in _speech:
        _speech[sentences] = await say(list(sentences))
    return _speech[sentences]


async def call(
    server: LiveKitServer,
    *sentences: str,
    output: Path,
    agent_name: str = AGENT,
    org: str | None = None,
    metadata: str | None = None,
    timeout: float = CALL_TIMEOUT,
    **options: Any,
) -> CallResult:
    """One caller through the real server, bounded in time."""
    if metadata is None:
        metadata = f'{{"organizationId": "{org}"}}' if org else ""
    opts = CallOptions(
        url=server.url,
        api_key=API_KEY,
        api_secret=API_SECRET,
        agent_name=agent_name,
        metadata=metadata,
        output=output,
        timeout=timeout - 10,
        **options,
    )
    frames = await speech(*sentences)
    return await asyncio.wait_for(place_call(opts, frames), timeout)
