"""The entrypoint a room job runs, under livekit's fake-job machinery: org resolution,
loader, factory and session, answering a text turn through the org's own LLM chain."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from livekit.agents.testing import fake_job_context
from livekit.agents.voice.run_result import ChatMessageEvent
from livekit.protocol import models

from agent.call import prepare_call
from providers.loader import ProviderLoader
from providers.settings import LoaderSettings
from providers.types import ConfigSource, ProviderKind
from tests.standins.openai import OpenAIStandin, message_text

TIMEOUT = 30


def assistant_texts(events: list[Any]) -> list[str]:
    return [
        e.item.text_content or ""
        for e in events
        if isinstance(e, ChatMessageEvent) and e.item.role == "assistant"
    ]


async def run_text_turn(
    job_metadata: str, loader: ProviderLoader, text: str
) -> tuple[Any, list[str]]:
    with fake_job_context(job_metadata=job_metadata) as ctx:
        call = await prepare_call(ctx, loader=loader)
        await call.session.start(agent=call.agent)
        try:
            result = await call.session.run(user_input=text)
        finally:
            await call.session.aclose()
    return call, assistant_texts(result.events)


def echo_system_prompt(messages: list[dict[str, Any]]) -> str:
    system = next(message_text(m) for m in messages if m.get("role") in ("system", "developer"))
    return f"Answer from the stand-in. Persona: {system}"


async def test_env_org_chain_answers_a_text_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    async with OpenAIStandin(reply=echo_system_prompt) as server:
        monkeypatch.setenv("LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("LLM_MODEL", "llama3.1")
        monkeypatch.setenv("AGENT_INSTRUCTIONS", "You are the Harbor Clinic receptionist.")
        loader = ProviderLoader(LoaderSettings())
        call, replies = await asyncio.wait_for(
            run_text_turn("", loader, "What are your opening hours?"), TIMEOUT
        )
        await loader.aclose()
    assert call.org.source is ConfigSource.ENV
    assert call.chains.providers[ProviderKind.LLM] == ["openai-compatible", "offline"]
    assert replies == ["Answer from the stand-in. Persona: You are the Harbor Clinic receptionist."]
    assert len(server.chat_requests) == 1


async def test_offline_responder_answers_when_the_llm_is_down(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    faq = tmp_path / "faq.json"
    faq.write_text(json.dumps([{"question": "opening hours", "answer": "Nine to five."}]))
    monkeypatch.setenv("AGENT_FAQ_FILE", str(faq))
    monkeypatch.setenv("LLM_PROVIDER", "openai-compatible")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    monkeypatch.setenv("LLM_MODEL", "llama3.1")
    loader = ProviderLoader(LoaderSettings())
    _, replies = await asyncio.wait_for(
        run_text_turn("", loader, "When are your opening hours?"), TIMEOUT
    )
    await loader.aclose()
    assert replies == ["Nine to five."]


async def test_participant_attributes_do_not_choose_the_org(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A caller naming another org on its participant still gets the dispatch's org."""
    loader = ProviderLoader(LoaderSettings())
    with fake_job_context(job_metadata=json.dumps({"organizationId": "acme"})) as ctx:
        ctx.job.participant.CopyFrom(
            models.ParticipantInfo(
                identity="caller",
                metadata=json.dumps({"organizationId": "evil"}),
                attributes={"organizationId": "evil"},
            )
        )
        call = await asyncio.wait_for(prepare_call(ctx, loader=loader), TIMEOUT)
    await loader.aclose()
    assert call.org.organization_id == "acme"
    assert call.ref.source == "dispatch"
