"""A stand-in for a worker's call endings: ``python -m tests.support.usage_writer PREFIX N`` ends N
calls the way ``Call.finish`` does — livekit usage entries priced by ``usage_lines``, a
``CallRecord``, ``get_usage().submit`` — with the worker's background sender running, then
stays up (sending) until killed. The restart test kills one and starts another."""

from __future__ import annotations

import asyncio
import sys
import time

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


async def main(prefix: str, calls: int) -> None:
    settings = load()  # a worker's start-up
    install(settings)
    usage = get_usage()
    usage.start()
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
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
