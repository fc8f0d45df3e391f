"""Tenants on one worker, in real rooms: an org whose own config is wrong cannot switch a
provider off for another org that shares its endpoint and key, and no org's secret reaches
any of the worker's outputs."""

from __future__ import annotations

import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.e2e.conftest import AGENT, FAQS, GREETINGS, backend_env, call
from tests.e2e.rig import LiveKitServer, Worker, Workers
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.elevenlabs import ElevenLabsStandin
from tests.standins.faults import Fault
from tests.standins.openai import OpenAIStandin

QUESTION = "What are your opening hours?"
SHARED = "The shared model says we open at eight."
FAQ_ANSWER = FAQS["harbor"][0]["answer"]
SHARED_KEY = "e2e-shared-llm-key"


def _org(
    name: str, llm: OpenAIStandin, llm_key: str, tts: Sequence[dict[str, Any]] = (), **options: Any
) -> Any:
    """Whisper; the OpenAI-compatible ``llm`` (``options`` in its config), then the offline
    FAQ; ``tts`` entries, then Piper."""
    providers = [
        provider_entry("whisper", "stt", priority=10),
        provider_entry(
            "openai",
            "llm",
            priority=50,
            config={"base_url": llm.base_url, "model": "gpt-4o-mini", **options},
            secrets={"apiKey": llm_key},
        ),
        provider_entry("offline", "llm", priority=10),
        *tts,
        provider_entry("piper", "tts", priority=1),
    ]
    agent = {"greeting": GREETINGS["harbor"], "faq": FAQS["harbor"], "instructions": "Help."}
    return org_payload(name, "1", providers, agent)


def _answers(result: Any) -> list[str]:
    return [t.text for t in result.turns if t.role == "assistant"][1:]  # after the greeting


async def test_one_orgs_bad_config_does_not_switch_the_provider_off_for_another(
    livekit: LiveKitServer, worker: Worker, backend: BackendServer, tmp_path: Path
) -> None:
    async with OpenAIStandin(reply=SHARED) as shared:
        # out of OpenAI's range: the provider answers this org's requests with a 400
        careless_org = _org("careless", shared, SHARED_KEY, temperature=3.5)
        backend.set_org("careless", careless_org, version="1")
        backend.set_org("steady", _org("steady", shared, SHARED_KEY), version="1")

        careless = await call(livekit, QUESTION, output=tmp_path / "1.wav", org="careless")
        assert _answers(careless) == [FAQ_ANSWER]  # its own fallback answered
        asked = len(shared.chat_requests)
        assert asked >= 1, "the careless org's request never reached the provider"

        steady = await call(livekit, QUESTION, output=tmp_path / "2.wav", org="steady")
        assert _answers(steady) == [SHARED], "the other org lost the provider"
        assert len(shared.chat_requests) == asked + 1

        # the careless org's own next call skips the provider at once
        again = await call(livekit, QUESTION, output=tmp_path / "3.wav", org="careless")
        assert _answers(again) == [FAQ_ANSWER]
        assert len(shared.chat_requests) == asked + 1


async def test_no_planted_secret_reaches_a_real_worker_s_outputs(
    livekit: LiveKitServer, backend: BackendServer, workers: Workers, tmp_path: Path
) -> None:
    """The secrets canary through a worker in a real room, at DEBUG: the org's keys go to
    providers that echo them (and every header) back in their error bodies; neither the
    worker's log, its spool, its status JSON nor its metrics page holds them."""
    llm_key, tts_key = "sk-e2e-CANARY-llm-5521907733", "xi-e2e-CANARY-tts-8812094456"
    async with (
        OpenAIStandin(fault=Fault.ECHO_500) as llm,
        ElevenLabsStandin(fault=Fault.ECHO_401) as tts,
    ):
        voice = provider_entry(
            "elevenlabs",
            "tts",
            priority=50,
            config={"base_url": tts.base_url, "voice_id": "v"},
            secrets={"apiKey": tts_key},
        )
        backend.set_org("canary", _org("canary", llm, llm_key, [voice]), version="1")
        name = f"{AGENT}-canary"
        (worker,) = workers.start(
            "canary", **backend_env(backend, AGENT_NAME=name, LIVEKIT_LOG_LEVEL="DEBUG")
        )
        result = await call(
            livekit, QUESTION, output=tmp_path / "c.wav", agent_name=name, org="canary"
        )
        assert _answers(result) == [FAQ_ANSWER]
        # the echoes happened, with the planted keys
        assert llm_key in llm.api_keys_seen and tts_key in tts.api_keys_seen
        with urllib.request.urlopen(f"{worker.status_url}/status", timeout=5) as r:
            status = r.read().decode()
        with urllib.request.urlopen(worker.metrics_url, timeout=5) as r:
            scraped = r.read().decode()
    spool = (
        "".join(
            f.read_text(errors="replace")
            for f in Path(worker.env["USAGE_SPOOL_DIR"]).rglob("*")
            if f.is_file()
        )
        if Path(worker.env["USAGE_SPOOL_DIR"]).exists()
        else ""
    )
    outputs = {
        "log": worker.log_path.read_text(errors="replace"),
        "status": status,
        "metrics": scraped,
        "spool": spool,
    }
    assert "Incorrect API key provided" in outputs["log"], "the echoed body was never logged"
    for where, text in outputs.items():
        for key in (llm_key, tts_key):
            assert key not in text, f"{key} in the worker's {where}"
            assert key[-10:] not in text, f"a fragment of {key} in the worker's {where}"
