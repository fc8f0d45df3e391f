"""Decode a non-streaming STT's utterance while the caller's silence is still being timed.

livekit's ``StreamAdapter`` sends the speech to a non-streaming STT (faster-whisper) only at
the VAD's end of speech (``VAD_MIN_SILENCE`` of silence), so the decode (about 0.4 s for
Whisper tiny.en on 2 cores) adds to every turn. Here the decode starts at the first short
silence (``STT_EARLY_DECODE`` seconds); if the caller speaks again it is dropped, and if
the silence becomes the end of speech its result is the turn's transcript. The speech
decoded is the same either way: only trailing silence differs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from livekit import rtc
from livekit.agents import stt, utils, vad
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)

DEFAULT_EARLY_DECODE = 0.12
"""Seconds of silence after which the decode starts."""
DEFAULT_JOIN_PAUSES = 0.6
"""A silence shorter than this is a pause inside the caller's sentence, not its end."""


@dataclass(frozen=True)
class _Decoder:
    stt: stt.STT[Any]
    vad: vad.VAD
    language: NotGivenOr[str]
    conn_options: APIConnectOptions


class EarlyDecodeAdapter(stt.StreamAdapter):
    """A ``StreamAdapter`` whose streams start decoding after ``after_silence`` seconds."""

    def __init__(
        self,
        *,
        stt: stt.STT[Any],
        vad: vad.VAD,
        after_silence: float,
        join_pauses: float = DEFAULT_JOIN_PAUSES,
    ) -> None:
        super().__init__(stt=stt, vad=vad)
        self._early_vad = vad
        self._after_silence = after_silence
        self._join_pauses = join_pauses

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return _EarlyDecodeStream(
            self,
            vad=self._early_vad,
            wrapped_stt=self.wrapped_stt,
            language=language,
            conn_options=conn_options,
            after_silence=self._after_silence,
            join_pauses=self._join_pauses,
        )


class _EarlyDecodeStream(stt.StreamAdapterWrapper):
    """livekit's wrapper (its metrics stay the wrapped STT's) with its own ``_run``; it keeps
    its own references rather than reading the wrapper's private fields."""

    def __init__(
        self,
        adapter: EarlyDecodeAdapter,
        *,
        vad: vad.VAD,
        wrapped_stt: stt.STT[Any],
        language: NotGivenOr[str],
        conn_options: APIConnectOptions,
        after_silence: float,
        join_pauses: float,
    ) -> None:
        super().__init__(
            adapter,
            vad=vad,
            wrapped_stt=wrapped_stt,
            language=language,
            conn_options=conn_options,
        )
        self._early = _Decoder(wrapped_stt, vad, language, conn_options)
        self._after_silence = after_silence
        self._join_pauses = join_pauses

    def _preflight(self, task: asyncio.Task[stt.SpeechEvent]) -> None:
        """A guess is ready before the utterance is over: livekit starts its preemptive
        reply on it (LLM and TTS), kept if the final transcript says the same."""
        if task.cancelled() or task.exception() is not None:
            return
        alternatives = task.result().alternatives
        if alternatives and alternatives[0].text:
            self._event_ch.send_nowait(
                stt.SpeechEvent(
                    stt.SpeechEventType.PREFLIGHT_TRANSCRIPT, alternatives=[alternatives[0]]
                )
            )

    def _finish(self, result: stt.SpeechEvent, speech_end: float) -> None:
        """The utterance is over: end of speech, then its transcript (if it has words)."""
        self._event_ch.send_nowait(
            stt.SpeechEvent(stt.SpeechEventType.END_OF_SPEECH, speech_end_time=speech_end)
        )
        alternatives = result.alternatives
        if alternatives and alternatives[0].text:
            self._event_ch.send_nowait(
                stt.SpeechEvent(
                    stt.SpeechEventType.FINAL_TRANSCRIPT,
                    alternatives=[alternatives[0]],
                    speech_end_time=result.speech_end_time or speech_end,
                )
            )

    async def _decode(self, frames: list[rtc.AudioFrame]) -> stt.SpeechEvent:
        d = self._early
        return await d.stt.recognize(
            buffer=utils.merge_frames(frames), language=d.language, conn_options=d.conn_options
        )

    async def _run(self) -> None:
        vad_stream = self._early.vad.stream()

        async def forward_input() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    vad_stream.flush()
                else:
                    vad_stream.push_frame(item)
            vad_stream.end_input()

        async def recognize() -> None:
            utterance: list[rtc.AudioFrame] = []  # its speech and the pauses inside it
            early: asyncio.Task[stt.SpeechEvent] | None = None
            held = False  # the VAD ended speech; the transcript waits out ``join_pauses``
            speech_end = 0.0

            def start_decode() -> asyncio.Task[stt.SpeechEvent]:
                task = asyncio.create_task(self._decode(list(utterance)))
                # only the current guess counts: a superseded one is stale
                task.add_done_callback(lambda t: self._preflight(t) if t is early else None)
                return task

            try:
                async for event in vad_stream:
                    if event.type == vad.VADEventType.START_OF_SPEECH:
                        if early is not None:  # the caller went on: that guess is stale
                            early.cancel()
                            early = None
                        if held:  # a pause, not the end: the utterance goes on
                            held = False
                            continue
                        utterance = list(event.frames)
                        self._event_ch.send_nowait(
                            stt.SpeechEvent(stt.SpeechEventType.START_OF_SPEECH)
                        )
                    elif event.type == vad.VADEventType.INFERENCE_DONE and event.speaking:
                        utterance.extend(event.frames)
                        silence = event.raw_accumulated_silence
                        if early is not None and silence < self._after_silence:
                            early.cancel()  # the caller went on: that guess is stale
                            early = None
                        elif early is None and silence >= self._after_silence:
                            early = start_decode()
                    elif event.type == vad.VADEventType.END_OF_SPEECH:
                        held = True
                        speech_end = time.time() - event.silence_duration
                        early = early or start_decode()
                    elif event.type == vad.VADEventType.INFERENCE_DONE and held:
                        utterance.extend(event.frames)  # the pause, should the caller go on
                    # the raw silence restarts at the first window that sounds like speech;
                    # the published one runs on until the VAD confirms it (50 ms more), which
                    # would make a 0.5 s pause look like 0.55 s
                    if held and event.raw_accumulated_silence >= self._join_pauses:
                        held, task, early = False, early, None
                        assert task is not None
                        self._finish(await task, speech_end)
            finally:
                if early is not None:
                    early.cancel()

        tasks = [asyncio.create_task(forward_input()), asyncio.create_task(recognize())]
        try:
            await asyncio.gather(*tasks)
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            await vad_stream.aclose()
