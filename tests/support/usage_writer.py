"""A stand-in for a worker's calls: ``python -m tests.support.usage_writer PREFIX N`` ends N
calls the way ``Call.finish`` does — livekit usage entries priced by ``usage_lines``, a
``CallRecord``, ``get_usage().submit`` — with the worker's background sender running, then
stays up (sending) until killed (SIGTERM: returns from main, as a worker's graceful stop
does). The restart test kills one and starts another.

``... PREFIX N --open`` starts N calls the way ``Call.start`` does (``get_usage().live``
on a real ``AgentSession``, checkpointing on its interval) and never ends them: it prints
``open N`` once each call's third checkpoint is in the spool (its usage stops growing
there: ``OPEN_AUDIO_SECONDS`` of STT audio), then stays up until killed."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.metrics.usage import LLMModelUsage, STTModelUsage, TTSModelUsage

from agent.worker.settings import install, load
from agent.worker.usage import CallRecord, get_usage, usage_lines
from providers.catalogue import provider_config
from providers.types import ProviderKind

CONFIGS = {
    ("stt", "Deepgram"): provider_config(provider="deepgram", kind=ProviderKind.STT),
    ("llm", "api.openai.com"): provider_config(provider="openai", kind=ProviderKind.LLM),
    ("tts", "piper"): provider_config(provider="piper", kind=ProviderKind.TTS),
}


def model_usage(i: int) -> list[object]:
    return [
        STTModelUsage(provider="Deepgram", model="nova-3", audio_duration=10.0 + i),
        LLMModelUsage(
            provider="api.openai.com", model="gpt-4.1-mini", input_tokens=900, output_tokens=60
        ),
        TTSModelUsage(provider="piper", model="en_US-joe-medium", characters_count=120),
    ]


OPEN_AUDIO_SECONDS = 3.0
"""An open call's STT audio at its last checkpoint (one second per checkpoint, three)."""


def call_record(
    call_id: str, started_at: float, ended_at: float, usage: Any, **kw: Any
) -> CallRecord:
    lines = usage_lines(usage, CONFIGS, org_id="acme")  # type: ignore[arg-type]
    return CallRecord(
        call_id=call_id,
        organization_id="acme",
        started_at=started_at,
        ended_at=ended_at,
        config_source="backend",
        config_version="1",
        strategy="priority",
        usage=lines,
        **kw,
    )


async def open_calls(prefix: str, calls: int) -> None:
    usage = get_usage()
    started = time.time()
    seconds = {f"{prefix}-{i}": 0.0 for i in range(calls)}

    def snapshot(call_id: str) -> Any:
        def take() -> Any:
            seconds[call_id] = min(OPEN_AUDIO_SECONDS, seconds[call_id] + 1.0)
            used = [
                STTModelUsage(provider="Deepgram", model="nova-3", audio_duration=seconds[call_id])
            ]
            at = time.time()
            return lambda: call_record(call_id, started, at, used, completion="recovered").to_json()

        return take

    sessions = []
    for call_id in seconds:
        session: AgentSession[None] = AgentSession()
        sessions.append(session)
        usage.live(call_id, snapshot(call_id)).start(session)
    spool = usage.spool
    assert spool is not None
    while not all(v >= OPEN_AUDIO_SECONDS for v in seconds.values()) or (
        spool.counts()["open"] < calls
    ):
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the third checkpoint's write
    print(f"open {calls}", flush=True)


async def main(prefix: str, calls: int, mode: str = "") -> None:
    settings = load()  # a worker's start-up
    install(settings)
    usage = get_usage()
    usage.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if mode == "--open":
        await open_calls(prefix, calls)
        await stop.wait()
        return
    for i in range(calls):
        now = time.time()
        lines = usage_lines(
            model_usage(i),
            CONFIGS,  # type: ignore[arg-type]
            org_id="acme",
            overrides=settings.pricing,
        )
        record = CallRecord(
            call_id=f"{prefix}-{i}",
            organization_id="acme",
            started_at=now - 30,
            ended_at=now,
            config_source="backend",
            config_version="1",
            strategy="priority",
            usage=lines,
        )
        await usage.submit(record)
    print(f"spooled {calls}", flush=True)
    await stop.wait()  # until killed; SIGTERM: a graceful stop


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:2], int(sys.argv[2]), *sys.argv[3:4]))
