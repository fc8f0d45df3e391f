"""Failover figures: added silence when a primary provider fails, for our chains and for
livekit's ``FallbackAdapter`` with default settings, side by side; attempts the next call
makes on a dead provider; what is heard when a TTS drops mid-sentence.

Every provider is a wire-format stand-in on 127.0.0.1 driven by the real livekit plugin.
Added silence = time to first output with the primary faulty − with the backup alone.
Each figure is the median of ``RUNS`` runs, interleaved (every case once, then every case
again), so a slow moment of the machine does not land on one case only. The ratio compares
what the caller waits in all (time to first output), which is never zero: no floor needed.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from livekit import rtc
from livekit.agents import llm, stt, tts
from livekit.agents.utils import http_context
from pydantic import SecretStr

from agent.worker.prewarm import shared_vad
from providers.catalogue import provider_config
from providers.chains.build import build_chains, build_provider
from providers.chains.health import HealthRegistry
from providers.types import OrgProviders, ProviderConfig, ProviderKind
from tests.standins.cartesia import CartesiaStandin
from tests.standins.deepgram import DeepgramStandin
from tests.standins.elevenlabs import ElevenLabsStandin
from tests.standins.faults import Fault
from tests.standins.openai import OpenAIStandin
from tests.support.audio import speech_frames
from tests.support.failover import TEXT, answer, first_final, synthesize

RUNS = 3
"""Runs per case; the figures are their medians."""
CAP = 35.0
"""Seconds after which a measurement stops: 'no failover within the cap'."""
FAULTS = {"fails fast (HTTP 500)": Fault.STATUS_500, "refused": Fault.REFUSE, "hangs": Fault.HANG}
STT_, LLM_, TTS_ = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
Row = dict[str, Any]


@functools.cache
def SPEECH() -> list[rtc.AudioFrame]:  # noqa: N802 - a constant, computed once
    return speech_frames(["What are your opening hours?"], pause_s=1.0)


def _cfg(name: str, kind: ProviderKind, priority: int, **options: Any) -> ProviderConfig:
    return provider_config(
        provider=name,
        kind=kind,
        priority=priority,
        options=options,
        secrets={"apiKey": SecretStr(f"bench-{name}-{priority}")},
    )


def _org(*configs: ProviderConfig) -> OrgProviders:
    fill = {
        STT_: (_cfg("deepgram", STT_, 0),),
        LLM_: (),
        TTS_: (provider_config(provider="piper", kind=TTS_),),
    }
    chains = {k: tuple(c for c in configs if c.kind is k) or fill[k] for k in fill}
    return OrgProviders(
        organization_id="bench", stt=chains[STT_], llm=chains[LLM_], tts=chains[TTS_]
    )


class _Kind:
    """How to stand up one kind's primary/backup and measure its first output."""

    def __init__(self, kind: ProviderKind) -> None:
        self.kind = kind

    def servers(self, fault: Fault) -> tuple[Any, Any]:
        if self.kind is TTS_:
            return ElevenLabsStandin(fault=fault), CartesiaStandin()
        if self.kind is LLM_:
            return OpenAIStandin(reply="Primary.", fault=fault), OpenAIStandin(reply="Backup.")
        return (
            DeepgramStandin(fault=fault, transcript="primary", final_after=0.6),
            DeepgramStandin(transcript="backup", final_after=0.6),
        )

    def configs(self, a: Any, b: Any) -> tuple[ProviderConfig, ProviderConfig]:
        if self.kind is TTS_:
            return (
                _cfg("elevenlabs", TTS_, 10, base_url=a.base_url, voice_id="v"),
                _cfg("cartesia", TTS_, 5, base_url=b.base_url),
            )
        if self.kind is LLM_:
            return (
                _cfg("openai", LLM_, 10, base_url=a.base_url),
                _cfg("groq", LLM_, 5, base_url=b.base_url),
            )
        return (
            _cfg("deepgram", STT_, 10, base_url=a.base_url),
            _cfg("deepgram", STT_, 5, base_url=b.base_url),
        )

    def ours(self, org: OrgProviders, health: HealthRegistry) -> Any:
        chains = build_chains(org, vad=shared_vad(), health=health)
        return {STT_: chains.stt, LLM_: chains.llm, TTS_: chains.tts}[self.kind]

    def livekits(self, org: OrgProviders) -> Any:
        members = [build_provider(c, org) for c in org.chain(self.kind)]
        adapter = {STT_: stt.FallbackAdapter, LLM_: llm.FallbackAdapter, TTS_: tts.FallbackAdapter}[
            self.kind
        ]
        return adapter(members)  # livekit's defaults

    async def first_output(self, engine: Any) -> float:
        measure: Callable[[Any], Awaitable[tuple[float, Any]]] = {
            TTS_: lambda e: synthesize(e, TEXT),
            LLM_: lambda e: answer(e, "Hello?"),
            STT_: lambda e: first_final(e, SPEECH()),
        }[self.kind]
        started = time.perf_counter()
        try:
            await asyncio.wait_for(measure(engine), CAP)
        except asyncio.TimeoutError:
            return CAP
        return time.perf_counter() - started


async def _first_output(
    k: _Kind, fault: Fault, livekit: bool, *, backup_only: bool = False
) -> float:
    a_srv, b_srv = k.servers(fault)
    async with a_srv as a, b_srv as b:
        primary, backup = k.configs(a, b)
        org = _org(backup) if backup_only else _org(primary, backup)
        engine = k.livekits(org) if livekit else k.ours(org, HealthRegistry())
        return await k.first_output(engine)


async def _next_call_attempts(k: _Kind, livekit: bool) -> int:
    """Requests the primary (answering 500) gets from a second call after a first failed."""
    a_srv, b_srv = k.servers(Fault.STATUS_500)
    async with a_srv as a, b_srv as b:
        org = _org(*k.configs(a, b))
        health = HealthRegistry()
        make = (lambda: k.livekits(org)) if livekit else (lambda: k.ours(org, health))
        await k.first_output(make())
        before = a.request_count
        await k.first_output(make())  # a new call: new chain objects, as in a new job
        return int(a.request_count - before)


async def _heard_after_drop(livekit: bool) -> int:
    """Words of a sentence the backup speaks after the primary dropped mid-sentence."""
    async with (
        ElevenLabsStandin(fault=Fault.DROP_MID_STREAM, drop_after=2, chunk_delay=0.3) as a,
        CartesiaStandin() as b,
    ):
        org = _org(*_Kind(TTS_).configs(a, b))
        engine = _Kind(TTS_).livekits(org) if livekit else _Kind(TTS_).ours(org, HealthRegistry())
        await asyncio.wait_for(synthesize(engine, TEXT), CAP)
        return sum(len(t.split()) for t in b.texts)


def _fmt(seconds: float) -> str:
    return f"≥ {CAP:g} s (no failover)" if seconds >= CAP else f"{seconds:.2f} s"


async def _interleaved(k: _Kind) -> dict[tuple[Fault, bool, bool], float]:
    """Median time to first output per case (fault, livekit's adapter, backup alone):
    ``RUNS`` rounds, each running every case once."""
    cases = [(Fault.OK, False, True)]  # the backup alone: what failover adds to
    cases += [(fault, livekit, False) for fault in FAULTS.values() for livekit in (False, True)]
    runs: dict[tuple[Fault, bool, bool], list[float]] = {c: [] for c in cases}
    await _first_output(k, Fault.OK, False, backup_only=True)  # warm-up (imports, TLS), unused
    for _ in range(RUNS):
        for fault, livekit, backup_only in cases:
            seconds = await _first_output(k, fault, livekit, backup_only=backup_only)
            runs[(fault, livekit, backup_only)].append(seconds)
    return {c: statistics.median(v) for c, v in runs.items()}


async def _measure() -> list[Row]:
    rows: list[Row] = []
    async with http_context.open():
        for kind in (TTS_, LLM_, STT_):
            k = _Kind(kind)
            medians = await _interleaved(k)
            baseline = medians[(Fault.OK, False, True)]
            for label, fault in FAULTS.items():
                ours_total = medians[(fault, False, False)]
                theirs_total = medians[(fault, True, False)]
                ours = max(0.0, ours_total - baseline)
                theirs = max(0.0, theirs_total - baseline) if theirs_total < CAP else CAP
                rows.append(
                    {
                        "name": f"{kind} primary {label}: added silence, ours",
                        "value": round(ours, 4),
                        "unit": "s",
                        "target": "< 0.3" if fault is not Fault.HANG else "<= 2.0 budget",
                    }
                )
                capped = "" if theirs_total < CAP else f" (no failover in {CAP:g} s)"
                rows.append(
                    {
                        "name": f"{kind} primary {label}: added silence, livekit defaults{capped}",
                        "value": round(theirs, 4),
                        "unit": "s",
                    }
                )
                rows.append(
                    {
                        # a capped wait makes this a lower bound
                        "name": f"{kind} primary {label}: caller's wait, livekit / ours{capped}",
                        "value": round(theirs_total / ours_total, 1),
                        "unit": "x",
                    }
                )
            for livekit in (False, True):
                who = "livekit defaults" if livekit else "ours"
                rows.append(
                    {
                        "name": f"{kind}: next call's attempts on a dead primary, {who}",
                        "value": await _next_call_attempts(k, livekit),
                        "unit": "attempts",
                        "target": "0" if not livekit else None,
                    }
                )
        for livekit in (False, True):
            who = "livekit defaults" if livekit else "ours"
            words = await _heard_after_drop(livekit)
            rows.append(
                {
                    "name": f"tts drop mid-sentence: words the fallback speaks, {who}",
                    "value": words,
                    "unit": f"of {len(TEXT.split())}",
                }
            )
    return [{k: v for k, v in r.items() if v is not None} for r in rows]


def run() -> list[Row]:
    return asyncio.run(_measure())
