"""Speech-to-speech in real rooms: a worker whose org runs on a realtime model (the
Realtime stand-in, in this process) answers a caller through the LiveKit server, and when
the model hangs mid-call the same call goes on, in the same room, on the org's pipeline
with the conversation so far; its usage record lists both sides."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.e2e.conftest import FAQS, GREETINGS, call
from tests.e2e.rig import LiveKitServer, Worker
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.faults import Fault
from tests.standins.openai import OpenAIStandin
from tests.standins.openai_realtime import RealtimeStandin
from tests.support.realtime import FIRST, RT_REPLY, SECOND, fault_on_turn, pipeline_reply

FAQ_ANSWER = FAQS["harbor"][0]["answer"]


def _org(name: str, rt: RealtimeStandin, llm: OpenAIStandin) -> Any:
    providers = [
        provider_entry(
            "openai-realtime",
            "realtime",
            priority=100,
            config={"baseUrl": rt.base_url},
            secrets={"apiKey": f"sk-{name}-realtime"},
        ),
        provider_entry("whisper", "stt", priority=10),
        provider_entry(
            "openai-compatible",
            "llm",
            priority=50,
            config={"baseUrl": llm.base_url, "model": "m"},
            secrets={"apiKey": f"sk-{name}-llm"},
        ),
        provider_entry("piper", "tts", priority=1),
    ]
    agent = {"greeting": GREETINGS["harbor"], "instructions": "Receptionist."}
    return org_payload(name, "1", providers, agent)


def _answers(result: Any) -> list[str]:
    return [t.text for t in result.turns if t.role == "assistant"][1:]  # after the greeting


async def _record(backend: BackendServer, org: str, timeout: float = 30) -> dict[str, Any]:
    """The usage record the worker posted for ``org``'s call."""

    async def posted() -> dict[str, Any]:
        while True:
            for record in backend.usage_records.values():
                if record.get("organizationId") == org:
                    return record
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(posted(), timeout)


async def test_a_realtime_model_answers_in_a_room_and_the_pipeline_takes_over_when_it_hangs(
    livekit: LiveKitServer, worker: Worker, backend: BackendServer, tmp_path: Path
) -> None:
    async with (
        RealtimeStandin(transcripts=[FIRST, SECOND], reply=RT_REPLY) as rt,
        OpenAIStandin(reply=pipeline_reply) as llm,
    ):
        backend.set_org("rt-room", _org("rt-room", rt, llm), version="1")
        fault_on_turn(rt, Fault.HANG, 2)
        result = await call(livekit, FIRST, SECOND, output=tmp_path / "c.wav", org="rt-room")
        # the greeting (said by the org's TTS), the model's answer, then the pipeline's,
        # which saw the first question
        assert _answers(result) == [RT_REPLY, f"You asked: {FIRST}"]
        assert rt.responses_done == 1
        assert len(llm.chat_requests) == 1
        record = await _record(backend, "rt-room")
    kinds = {line["kind"] for line in record["usage"]}
    assert {"realtime", "llm", "tts"} <= kinds
    assert [(f["kind"], f["from"], f["to"]) for f in record["failovers"]] == [
        ("realtime", "openai-realtime", "pipeline")
    ]


async def test_a_realtime_org_and_a_pipeline_org_share_a_worker_without_meeting(
    livekit: LiveKitServer, worker: Worker, backend: BackendServer, tmp_path: Path
) -> None:
    """Two calls at once on one worker: the realtime org's on its model, the pipeline
    org's (harbor, the local stack) on its chains; the model hears one caller, with its
    own org's key."""
    async with (
        RealtimeStandin(transcripts=[FIRST], reply=RT_REPLY) as rt,
        OpenAIStandin(reply=pipeline_reply) as llm,
    ):
        backend.set_org("rt-tenant", _org("rt-tenant", rt, llm), version="1")
        realtime, pipeline = await asyncio.gather(
            call(livekit, FIRST, output=tmp_path / "rt.wav", org="rt-tenant"),
            call(livekit, FIRST, output=tmp_path / "pl.wav", org="harbor"),
        )
        assert _answers(realtime) == [RT_REPLY]
        assert _answers(pipeline) == [FAQ_ANSWER]
        assert rt.api_keys_seen == ["sk-rt-tenant-realtime"]
        assert not llm.chat_requests
