"""The cloud-shaped stack for benchmarks: the backend and the Deepgram, OpenAI and
ElevenLabs stand-ins on 127.0.0.1 with fixed response times like the real services', in a
process of their own (so their CPU is measured apart from the worker's and the callers'),
and the environment of a worker whose one org uses them.

Every caller asks the same questions in the same order: the Deepgram stand-in hears the
n-th utterance of each connection as the n-th question, the LLM stand-in answers a
question with its FAQ answer, and the agent's transcript shows whether each call got its
own answers back in order.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
from dataclasses import dataclass
from typing import Any

import psutil

from agent.tools.audio_files import SPEECH_RMS
from tests.bench.bench_rooms import AGENT
from tests.bench.bench_voice import QUESTIONS
from tests.e2e.rig import BACKEND_KEY
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.deepgram import DeepgramStandin
from tests.standins.elevenlabs import ElevenLabsStandin
from tests.standins.openai import OpenAIStandin, message_text

ORG = "cloud-bench"
STT_FINAL_AFTER = 0.25
"""Deepgram's final transcript this long after the caller's last sound."""
LLM_FIRST_TOKEN = 0.3
LLM_TOKEN_GAP = 0.02
"""The LLM's time to first token, then between tokens."""
TTS_FIRST_BYTE = 0.15
"""ElevenLabs' time to first audio of every reply."""
READY_TIMEOUT = 60.0
FALLBACK_REPLY = "Sorry, I did not catch that."

SPAWN = multiprocessing.get_context("spawn")
"""Child processes start fresh: the parent runs threads (samplers, the rtc SDK)."""


def questions(turns: int) -> list[tuple[str, str]]:
    """What every caller asks, in order: (question, FAQ answer)."""
    return [QUESTIONS[k % len(QUESTIONS)] for k in range(turns)]


def _answer(messages: list[dict[str, Any]]) -> str:
    """The FAQ answer to the caller's last question, as an LLM that knows the FAQ would."""
    last = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    said = last.lower().strip(" ?.!")
    for question, answer in QUESTIONS:
        if question.lower().strip(" ?.!") in said:
            return answer
    return FALLBACK_REPLY


async def _serve(conn: multiprocessing.connection.Connection, turns: int) -> None:
    asked = questions(turns)
    async with (
        DeepgramStandin(
            transcripts=[q for q, _ in asked], speech_rms=SPEECH_RMS, endpointing=STT_FINAL_AFTER
        ) as stt,
        OpenAIStandin(reply=_answer, chunk_delay=LLM_TOKEN_GAP) as llm,
        ElevenLabsStandin() as tts,
    ):
        llm.first_byte_delay = LLM_FIRST_TOKEN
        tts.first_byte_delay = TTS_FIRST_BYTE
        backend = BackendServer(expected_key=BACKEND_KEY)
        await backend.start()
        providers = [
            provider_entry(
                "deepgram", "stt", priority=10, config={"base_url": stt.base_url},
                secrets={"apiKey": "bench-deepgram-key"},
            ),
            provider_entry(
                "openai", "llm", priority=10,
                config={"base_url": llm.base_url, "model": "gpt-4o-mini"},
                secrets={"apiKey": "bench-openai-key"},
            ),
            provider_entry(
                "elevenlabs", "tts", priority=10,
                config={"base_url": tts.base_url, "voice_id": "v", "model": "eleven_flash_v2_5"},
                secrets={"apiKey": "bench-eleven-key"},
            ),
        ]  # fmt: skip
        agent = {
            "instructions": "Receptionist.",
            "faq": [{"question": q, "answer": a} for q, a in QUESTIONS],
        }
        backend.set_org(ORG, org_payload(ORG, "1", providers, agent), version="1")
        try:
            conn.send(backend.url)
            await asyncio.to_thread(conn.recv)  # until the bench says stop (or exits)
        finally:
            await backend.stop()


def _standins_main(conn: multiprocessing.connection.Connection, turns: int) -> None:
    asyncio.run(_serve(conn, turns))


@dataclass
class CloudStandins:
    """The stand-ins' process: ``start()``, then ``backend_url``; ``cpu()`` is its CPU time."""

    turns: int
    backend_url: str = ""
    _process: Any = None
    _conn: multiprocessing.connection.Connection | None = None

    def start(self) -> CloudStandins:
        parent, child = SPAWN.Pipe()
        self._process = SPAWN.Process(
            target=_standins_main, args=(child, self.turns), name="cloud-standins", daemon=True
        )
        self._process.start()
        self._conn = parent
        if not parent.poll(READY_TIMEOUT):
            self.stop()
            raise TimeoutError(f"the stand-ins did not start within {READY_TIMEOUT:.0f} s")
        self.backend_url = parent.recv()
        return self

    def cpu(self) -> float:
        """CPU-seconds the stand-ins have used so far."""
        t = psutil.Process(self._process.pid).cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send("stop")
            except OSError:
                pass
        if self._process is not None:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)

    def __enter__(self) -> CloudStandins:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()


def worker_env(backend_url: str, executor: str, max_calls: int) -> dict[str, str]:
    """A worker whose calls all run on the stand-ins (backend only: no local model is
    loaded, nothing falls back to the environment's providers)."""
    return {
        "AGENT_NAME": AGENT,
        "DEFAULT_ORGANIZATION_ID": ORG,
        "AICO_BACKEND_URL": backend_url,
        "AICO_INTERNAL_API_KEY": BACKEND_KEY,
        "PROVIDER_ENV_FALLBACK": "false",
        "STT_PROVIDER": "deepgram",
        "STT_FALLBACK": "",
        "LLM_PROVIDER": "offline",
        "LLM_FALLBACK": "",
        "TTS_PROVIDER": "elevenlabs",
        "TTS_FALLBACK": "",
        "AGENT_GREETING": "",
        "JOB_EXECUTOR": executor,
        "MAX_CONCURRENT_CALLS": str(max_calls),
    }
