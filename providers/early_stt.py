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


@dataclass(frozen=True)
class _Decoder:
    stt: stt.STT[Any]
    vad: vad.VAD
    language: NotGivenOr[str]
    conn_options: APIConnectOptions


class EarlyDecodeAdapter(stt.StreamAdapter):
    """A ``StreamAdapter`` whose streams start decoding after ``after_silence`` seconds."""

    def __init__(self, *, stt: stt.STT[Any], vad: vad.VAD, after_silence: float) -> None:
        super().__init__(stt=stt, vad=vad)
        self._early_vad = vad
        self._after_silence = after_silence

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
            speech: list[rtc.AudioFrame] = []
            early: asyncio.Task[stt.SpeechEvent] | None = None
            try:
                async for event in vad_stream:
                    if event.type == vad.VADEventType.START_OF_SPEECH:
                        speech = list(event.frames)
                        self._event_ch.send_nowait(
                            stt.SpeechEvent(stt.SpeechEventType.START_OF_SPEECH)
                        )
                    elif event.type == vad.VADEventType.INFERENCE_DONE and event.speaking:
                        speech.extend(event.frames)
                        silence = event.raw_accumulated_silence
                        if early is not None and silence < self._after_silence:
                            early.cancel()  # the caller went on: that guess is stale
                            early = None
                        elif early is None and silence >= self._after_silence:
                            early = asyncio.create_task(self._decode(list(speech)))
                    elif event.type == vad.VADEventType.END_OF_SPEECH:
                        speech_end = time.time() - event.silence_duration
                        self._event_ch.send_nowait(
                            stt.SpeechEvent(
                                stt.SpeechEventType.END_OF_SPEECH, speech_end_time=speech_end
                            )
                        )
                        task, early = early, None
                        result = await (task or self._decode(event.frames))
                        alternatives = result.alternatives
                        if alternatives and alternatives[0].text:
                            self._event_ch.send_nowait(
                                stt.SpeechEvent(
                                    stt.SpeechEventType.FINAL_TRANSCRIPT,
                                    alternatives=[alternatives[0]],
                                    speech_end_time=result.speech_end_time or speech_end,
                                )
                            )
            finally:
                if early is not None:
                    early.cancel()

        tasks = [asyncio.create_task(forward_input()), asyncio.create_task(recognize())]
        try:
            await asyncio.gather(*tasks)
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            await vad_stream.aclose()
