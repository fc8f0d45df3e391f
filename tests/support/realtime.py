"""A rig for speech-to-speech calls, shared by the tests and ``make bench``: the Realtime
stand-in (and a second one, for realtime → realtime), the org's pipeline (Deepgram
stand-in → OpenAI-compatible stand-in → Piper) and a backend that serves orgs of either
kind, all on 127.0.0.1. Calls run through ``simulate_call``: the worker's own path."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit import rtc

from agent.tools.simulate import simulate_call
from agent.tools.transcript import CallResult
from agent.worker.settings import Settings
from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.deepgram import DeepgramStandin
from tests.standins.faults import Fault
from tests.standins.openai import OpenAIStandin, message_text
from tests.standins.openai_realtime import RealtimeStandin

FIRST = "What are your opening hours?"
SECOND = "What did I just ask?"
RT_REPLY = "We are open from nine to five."


def pipeline_reply(messages: list[dict[str, Any]]) -> str:
    """The pipeline LLM's answer to "what did I just ask?": the earlier caller turn, as its
    request carries it (empty if the context was lost)."""
    users = [message_text(m) for m in messages if m.get("role") == "user"]
    earlier = users[-2] if len(users) > 1 else ""
    return f"You asked: {earlier}"


def script(lines: tuple[str, ...]) -> Callable[[], str]:
    """Each utterance's transcript in turn, round and round (one call's turns, then the
    next call's). The Deepgram stand-in asks twice per utterance (its interim, then its
    final result)."""
    calls: list[None] = []

    def next_line() -> str:
        calls.append(None)
        return lines[(len(calls) - 1) // 2 % len(lines)]

    return next_line


def fault_on_turn(rt: RealtimeStandin, fault: Fault, turn: int) -> None:
    """Set ``fault`` as the stand-in hears the end of the caller's utterance ``turn``
    (counted over its whole life), before it transcribes and answers it."""
    original = rt._end_utterance
    heard = len(rt.speech_stopped_at)

    async def end(request: Any, conn: Any) -> None:
        if len(rt.speech_stopped_at) - heard + 1 >= turn:
            rt.fault = fault
        await original(request, conn)

    rt._end_utterance = end  # type: ignore[method-assign]


@dataclass
class RealtimeRig:
    rt: RealtimeStandin
    rt2: RealtimeStandin
    llm: OpenAIStandin
    dg: DeepgramStandin
    backend: BackendServer
    settings: Settings
    loader: ProviderLoader = field(init=False)

    def __post_init__(self) -> None:
        self.loader = ProviderLoader(LoaderSettings(backend_url=self.backend.url), environ={})

    def entries(self, org: str, *, realtime: int = 1) -> list[Any]:
        """``org``'s providers: ``realtime`` realtime models (0: a pipeline org), then its
        pipeline. Keys are per org."""
        rows: list[Any] = [
            provider_entry(
                "openai-realtime",
                "realtime",
                priority=100 - i,
                config={"baseUrl": srv.base_url, "voice": "marin"},
                secrets={"apiKey": f"sk-{org}-realtime-{i}"},
            )
            for i, srv in enumerate((self.rt, self.rt2)[:realtime])
        ]
        return rows + [
            provider_entry(
                "deepgram",
                "stt",
                priority=100,
                config={"baseUrl": self.dg.base_url},
                secrets={"apiKey": f"dg-{org}"},
            ),
            provider_entry(
                "openai-compatible",
                "llm",
                priority=100,
                config={"baseUrl": self.llm.base_url, "model": "m"},
                secrets={"apiKey": f"sk-{org}-llm"},
            ),
            provider_entry("piper", "tts", priority=10),
        ]

    def add_org(self, org: str, *, realtime: int = 1, version: str = "1") -> None:
        self.backend.set_org(
            org, org_payload(org, version, self.entries(org, realtime=realtime)), version=version
        )

    async def call(
        self, org: str, caller: list[rtc.AudioFrame], output: Path, turn_timeout: float = 15
    ) -> CallResult:
        return await simulate_call(
            job_metadata=json.dumps({"organizationId": org}),
            caller_audio=caller,
            output=output,
            loader=self.loader,
            settings=self.settings,
            turn_timeout=turn_timeout,
        )


@contextlib.asynccontextmanager
async def realtime_rig(
    settings: Settings,
    *,
    transcripts: tuple[str, ...] = (FIRST, SECOND),
    heard_by_pipeline: tuple[str, ...] = (SECOND,),
    drop_after: int = 0,
    processing: float = 0.0,
) -> AsyncIterator[RealtimeRig]:
    """``transcripts``: what the realtime stand-ins hear, utterance by utterance (each
    stand-in its own copy); ``heard_by_pipeline``: what the pipeline's STT hears."""

    def standin() -> RealtimeStandin:
        return RealtimeStandin(
            transcript=itertools.cycle(transcripts).__next__,
            reply=RT_REPLY,
            silence=0.3,
            drop_after=drop_after,
            processing=processing,
        )

    async with (
        standin() as rt,
        standin() as rt2,
        OpenAIStandin(reply=pipeline_reply) as llm,
        DeepgramStandin(
            transcript=script(heard_by_pipeline), speech_rms=300, endpointing=0.3
        ) as dg,
        BackendServer() as backend,
    ):
        rig = RealtimeRig(rt, rt2, llm, dg, backend, settings)
        try:
            yield rig
        finally:
            await rig.loader.aclose()
