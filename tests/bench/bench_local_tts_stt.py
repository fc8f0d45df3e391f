"""Local TTS/STT figures: Piper first audio (in-process and remote), Whisper speed, memory.

``run()`` returns rows ``{"name", "value", "unit", "target"?}``; latencies are warm medians.
Run directly with ``python -m tests.bench.bench_local_tts_stt``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp
import psutil
from livekit import rtc
from livekit.agents import APIConnectOptions

from plugins import piper_tts, whisper_stt
from tests.standins.piper_server import run_piper_server
from tests.support.audio import synthesize_timed

ONE_SENTENCE = "Thanks for calling, how can I help you today?"
LONG_REPLY = (
    "Sure, I can help you with that. "
    "Your order was shipped yesterday afternoon from our warehouse. "
    "It should arrive within three to five business days. "
    "You will get a tracking number by email later today. "
    "Is there anything else I can do for you?"
)
FIRST_AUDIO_TARGET_S = 0.150  # SPEC §6, in-process, warm
REPEATS = 3
OPTS = APIConnectOptions(max_retry=0, timeout=30.0)

Row = dict[str, Any]


def _row(name: str, value: float, unit: str, target: str | None = None) -> Row:
    row: Row = {"name": name, "value": round(value, 4), "unit": unit}
    if target is not None:
        row["target"] = target
    return row


async def _synthesize(tts: piper_tts.TTS, text: str) -> tuple[float, float, rtc.AudioFrame]:
    """Seconds to the first frame, seconds to the end, and the audio."""
    first, end, frames = await synthesize_timed(tts, text, OPTS)
    return first, end, rtc.combine_audio_frames(frames)


async def _first_audio(tts: piper_tts.TTS, text: str) -> float:
    await _synthesize(tts, text)  # warm-up
    return statistics.median([(await _synthesize(tts, text))[0] for _ in range(REPEATS)])


async def _local_rows() -> list[Row]:
    tts = piper_tts.TTS()
    rows = [
        _row(
            "piper_first_audio_one_sentence_inprocess",
            await _first_audio(tts, ONE_SENTENCE),
            "s",
            f"<= {FIRST_AUDIO_TARGET_S}",
        ),
        _row(
            "piper_first_audio_5_sentences_inprocess",
            await _first_audio(tts, LONG_REPLY),
            "s",
            f"<= {FIRST_AUDIO_TARGET_S}",
        ),
    ]
    _, total, speech = await _synthesize(tts, LONG_REPLY)
    rows.append(_row("piper_real_time_factor", total / speech.duration, "x"))

    engine = whisper_stt.STT()
    await engine.recognize(speech, conn_options=OPTS)  # warm-up
    started = time.perf_counter()
    event = await engine.recognize(speech, conn_options=OPTS)
    elapsed = time.perf_counter() - started
    rows.append(_row("whisper_tiny_en_seconds_for_speech", elapsed, "s"))
    rows.append(_row("whisper_tiny_en_real_time_factor", elapsed / speech.duration, "x"))
    rows.append(_row("whisper_speech_seconds", speech.duration, "s"))
    if not event.alternatives[0].text:
        rows.append(_row("whisper_empty_transcript", 1, "flag"))
    return rows


async def _remote_rows(host: str, port: int) -> list[Row]:
    async with aiohttp.ClientSession() as session:
        tts = piper_tts.TTS(host=host, port=port, timeout=15.0, http_session=session)
        return [
            _row(
                "piper_first_audio_one_sentence_remote",
                await _first_audio(tts, ONE_SENTENCE),
                "s",
            ),
            _row(
                "piper_first_audio_5_sentences_remote",
                await _first_audio(tts, LONG_REPLY),
                "s",
            ),
        ]


def run() -> list[Row]:
    """Blocking; about 20-30 s on 2 cores, most of it model loading and server start-up."""
    rows: list[Row] = []
    cached_voice = bool(piper_tts._voices)
    started = time.perf_counter()
    piper_tts.load_voice()
    rows.append(
        _row(
            "piper_voice_load" + ("_cached" if cached_voice else ""),
            time.perf_counter() - started,
            "s",
        )
    )

    cached_model = bool(whisper_stt._models)
    started = time.perf_counter()
    whisper_stt.load_model()
    rows.append(
        _row(
            "whisper_tiny_en_load" + ("_cached" if cached_model else ""),
            time.perf_counter() - started,
            "s",
        )
    )
    rss = psutil.Process().memory_info().rss / 2**20
    rows.append(_row("rss_after_loading_piper_and_whisper", rss, "MiB"))

    rows += asyncio.run(_local_rows())
    with run_piper_server(str(piper_tts.default_voice_path())) as server:
        rows += asyncio.run(_remote_rows(server.host, server.port))
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r['name']:45} {r['value']:>10} {r['unit']:4} {r.get('target', '')}")
