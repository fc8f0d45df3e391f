"""Tenants on one worker, in real rooms: an org whose own config is wrong cannot switch a
provider off for another org that shares its endpoint and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import FAQS, GREETINGS, call
from tests.e2e.rig import LiveKitServer, Worker
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.openai import OpenAIStandin

QUESTION = "What are your opening hours?"
SHARED = "The shared model says we open at eight."
FAQ_ANSWER = FAQS["harbor"][0]["answer"]


def _org(name: str, standin: OpenAIStandin, **llm: Any) -> Any:
    """Whisper, the shared OpenAI-compatible endpoint and key (then the offline FAQ), Piper."""
    providers = [
        provider_entry("whisper", "stt", priority=10),
        provider_entry(
            "openai",
            "llm",
            priority=50,
            config={"base_url": standin.base_url, "model": "gpt-4o-mini", **llm},
            secrets={"apiKey": "e2e-shared-llm-key"},
        ),
        provider_entry("offline", "llm", priority=10),
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
        backend.set_org("careless", _org("careless", shared, temperature=3.5), version="1")
        backend.set_org("steady", _org("steady", shared), version="1")

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
