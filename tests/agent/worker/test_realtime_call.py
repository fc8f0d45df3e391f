"""Speech-to-speech calls: answered by a realtime model (the Realtime stand-in, driven by
livekit's own engine), and carried on by the org's pipeline, in the same call, when the
model cannot serve — with the conversation so far."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.tools.caller_audio import say
from agent.tools.simulate import simulate_call
from agent.tools.transcript import CallResult
from providers.catalogue import provider_config
from providers.chains import HealthKeys, get_health
from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.deepgram import DeepgramStandin
from tests.standins.faults import Fault
from tests.standins.openai import OpenAIStandin, message_text
from tests.standins.openai_realtime import RealtimeStandin
from tests.support.env import start_up

pytestmark = pytest.mark.slow

TIMEOUT = 90
FIRST = "What are your opening hours?"
SECOND = "What did I just ask?"
RT_REPLY = "We are open from nine to five."


def pipeline_reply(messages: list[dict[str, Any]]) -> str:
    """The pipeline LLM's answer to "what did I just ask?": the earlier caller turn, as its
    request carries it (empty if the context was lost)."""
    users = [message_text(m) for m in messages if m.get("role") == "user"]
    earlier = users[-2] if len(users) > 1 else ""
    return f"You asked: {earlier}"


def acme(rt: RealtimeStandin, llm: OpenAIStandin, dg: DeepgramStandin) -> list[Any]:
    """A realtime org whose pipeline is Deepgram → an OpenAI-compatible LLM → Piper."""
    return [
        provider_entry(
            "openai-realtime",
            "realtime",
            priority=100,
            config={"baseUrl": rt.base_url, "voice": "marin"},
            secrets={"apiKey": "sk-acme-realtime"},
        ),
        provider_entry(
            "deepgram",
            "stt",
            priority=100,
            config={"baseUrl": dg.base_url},
            secrets={"apiKey": "dg-acme"},
        ),
        provider_entry(
            "openai-compatible",
            "llm",
            priority=100,
            config={"baseUrl": llm.base_url, "model": "m"},
            secrets={"apiKey": "sk-acme-llm"},
        ),
        provider_entry("piper", "tts", priority=10),
    ]


async def run_call(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    fault: Fault = Fault.OK,
    fault_on_turn: int = 0,
    budget: float = 1.0,
    heard_by_pipeline: tuple[str, ...] = (SECOND,),
    drop_after: int = 0,
) -> tuple[CallResult, RealtimeStandin, OpenAIStandin, BackendServer]:
    """A two-turn call of org ``acme`` (backend mode). ``fault`` applies from the caller's
    turn ``fault_on_turn`` (0: from the connect)."""
    get_health().reset()
    monkeypatch.setenv("REALTIME_FIRST_AUDIO_TIMEOUT", str(budget))
    settings = start_up()
    async with (
        RealtimeStandin(
            transcripts=[FIRST, SECOND], reply=RT_REPLY, silence=0.3, drop_after=drop_after
        ) as rt,
        OpenAIStandin(reply=pipeline_reply) as llm,
        DeepgramStandin(
            transcript=script(heard_by_pipeline), speech_rms=300, endpointing=0.3
        ) as dg,
        BackendServer() as backend,
    ):
        backend.set_org("acme", org_payload("acme", "1", acme(rt, llm, dg)), version="1")
        if fault_on_turn == 0:
            await rt.set_fault(fault)
        else:
            arm_fault_on_turn(rt, fault, fault_on_turn)
        loader = ProviderLoader(LoaderSettings(backend_url=backend.url), environ={})
        try:
            caller = await say([FIRST, SECOND])
            result = await simulate_call(
                job_metadata=json.dumps({"organizationId": "acme"}),
                caller_audio=caller,
                output=tmp_path / "call.wav",
                loader=loader,
                settings=settings,
                turn_timeout=15,
            )
        finally:
            await loader.aclose()
    return result, rt, llm, backend


def script(lines: tuple[str, ...]) -> Callable[[], str]:
    """Each utterance's transcript in turn, the last one again after that. The Deepgram
    stand-in asks twice per utterance (its interim, then its final result)."""
    calls: list[None] = []

    def next_line() -> str:
        calls.append(None)
        return lines[min((len(calls) - 1) // 2, len(lines) - 1)]

    return next_line


def arm_fault_on_turn(rt: RealtimeStandin, fault: Fault, turn: int) -> None:
    """Set ``fault`` once the stand-in has heard ``turn`` caller utterances."""
    original = rt._end_utterance

    async def end(request: Any, conn: Any) -> None:
        if len(rt.speech_stopped_at) + 1 >= turn:
            rt.fault = fault
        await original(request, conn)

    rt._end_utterance = end  # type: ignore[method-assign]


def texts(result: CallResult, role: str) -> list[str]:
    return [t.text for t in result.turns if t.role == role]


async def test_a_realtime_call_is_answered_by_the_realtime_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result, rt, llm, _ = await asyncio.wait_for(run_call(monkeypatch, tmp_path), TIMEOUT)
    assert result.completed
    assert texts(result, "assistant") == [RT_REPLY, RT_REPLY]
    assert texts(result, "user") == [FIRST, SECOND]
    assert not llm.chat_requests  # the pipeline never ran
    assert rt.responses_done == 2
    assert result.usage is not None
    lines = result.usage["usage"]
    realtime = {line["model"]: line for line in lines if line["kind"] == "realtime"}
    assert set(realtime) == {"gpt-realtime", "gpt-4o-mini-transcribe"}
    model = realtime["gpt-realtime"]
    assert model["provider"] == "openai-realtime"
    assert model["inputAudioTokens"] > 0 and model["outputAudioTokens"] > 0
    assert model["inputTokens"] > 0 and model["cachedInputTokens"] > 0  # text, cached part
    assert model["costUsd"] > 0
    assert realtime["gpt-4o-mini-transcribe"]["audioSeconds"] > 0  # its caller transcript
    assert realtime["gpt-4o-mini-transcribe"]["costUsd"] > 0
    assert {line["kind"] for line in lines} <= {"realtime", "tts"}  # no STT or LLM billed
    assert not result.usage["failovers"]


def realtime_keys(rt: RealtimeStandin) -> HealthKeys:
    config = provider_config(
        provider="openai-realtime",
        kind="realtime",
        options={"baseUrl": rt.base_url, "voice": "marin"},
        secrets={"apiKey": SecretStr("sk-acme-realtime")},
    )
    return HealthKeys.of(config, "acme")


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.REFUSE, "APIConnectionError"),
        (Fault.STATUS_401, "APIStatusError (HTTP 401)"),
        (Fault.STATUS_500, "APIStatusError (HTTP 500)"),
    ],
)
async def test_a_realtime_model_down_at_connect_leaves_the_call_to_the_pipeline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fault: Fault, reason: str
) -> None:
    result, rt, llm, _ = await asyncio.wait_for(
        run_call(monkeypatch, tmp_path, fault=fault, heard_by_pipeline=(FIRST, SECOND)),
        TIMEOUT,
    )
    assert result.completed
    assert rt.responses_done == 0
    assert texts(result, "user") == [FIRST, SECOND]
    # the pipeline answered both turns, the second with the first in its context
    assert texts(result, "assistant")[-1] == f"You asked: {FIRST}"
    assert len(llm.chat_requests) == 2
    assert result.usage is not None
    failovers = result.usage["failovers"]
    assert [(f["kind"], f["from"], f["to"]) for f in failovers] == [
        ("realtime", "openai-realtime", "pipeline")
    ]
    assert failovers[0]["error"].startswith(reason)
    # the next calls of every org skip it (a 401: every org with this key)
    assert get_health().is_down(realtime_keys(rt))


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.DROP_MID_STREAM])
async def test_a_realtime_model_failing_mid_call_hands_the_conversation_to_the_pipeline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fault: Fault
) -> None:
    """The first turn is the realtime model's; on the second it hangs before its first
    audio, or drops its socket mid-reply. The pipeline answers that same turn — the caller
    does not repeat it — and knows what was asked before."""
    result, rt, llm, _ = await asyncio.wait_for(
        run_call(monkeypatch, tmp_path, fault=fault, fault_on_turn=2), TIMEOUT
    )
    assert result.completed
    replies = texts(result, "assistant")
    assert replies[0] == RT_REPLY
    assert replies[-1] == f"You asked: {FIRST}"
    assert len(llm.chat_requests) == 1
    assert texts(result, "user") == [FIRST, SECOND]
    assert result.usage is not None
    kinds = {line["kind"] for line in result.usage["usage"]}
    assert {"realtime", "llm", "tts"} <= kinds  # billed on both sides of the switch
    failovers = result.usage["failovers"]
    assert [(f["kind"], f["from"], f["to"]) for f in failovers] == [
        ("realtime", "openai-realtime", "pipeline")
    ]
    expected = "BudgetTimeout" if fault is Fault.HANG else "APIConnectionError"
    assert failovers[0]["error"].startswith(expected)
