"""A watchdog around one streaming STT of a chain; livekit's ``stt.FallbackAdapter`` still
does the switching.

Why: a streaming STT whose socket accepts audio and then says nothing never raises (its
heartbeats are answered), and from the STT's side a hung provider looks exactly like a
silent caller — livekit's adapter waits forever. The guard runs the call's VAD on the same
audio: once the caller has spoken and stopped, a provider that produced nothing for that
utterance within ``budget`` seconds is declared hung (``APITimeoutError``), so the adapter
moves to the next STT. A silent caller never trips it. The cost is one more VAD pass over
the call's audio (Silero: a few milliseconds of CPU per second of audio).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from livekit import rtc
from livekit.agents import (
    APIConnectOptions,
    APITimeoutError,
    ConversationItemAddedEvent,
    stt,
    utils,
    vad,
)
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from .delegate import Delegate


class GuardedSTT(Delegate, stt.STT[Any]):
    def __init__(self, inner: stt.STT[Any], *, vad: vad.VAD, name: str, budget: float) -> None:
        super().__init__(capabilities=inner.capabilities)
        self.vad, self.name, self.budget = vad, name, budget
        self.delegate_to(inner)

    # livekit's STT hooks (keyterm prompting, conversation context): the provider's own
    def _update_session_keyterms(self, keyterms: list[str]) -> None:
        self.inner._update_session_keyterms(keyterms)

    def _push_conversation_item(self, ev: ConversationItemAddedEvent) -> None:
        self.inner._push_conversation_item(ev)

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        event: stt.SpeechEvent = await self.inner.recognize(
            buffer, language=language, conn_options=conn_options
        )
        return event

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> GuardedSpeechStream:
        return GuardedSpeechStream(self, language=language, conn_options=conn_options)


class GuardedSpeechStream(stt.RecognizeStream):
    _stt: GuardedSTT

    def __init__(
        self, guard: GuardedSTT, *, language: NotGivenOr[str], conn_options: APIConnectOptions
    ) -> None:
        super().__init__(stt=guard, conn_options=conn_options)
        self._language = language

    async def _run(self) -> None:
        guard = self._stt
        inner = guard.inner.stream(language=self._language, conn_options=self._conn_options)
        speech = guard.vad.stream()
        heard = [True]  # has the provider said anything since the caller began speaking?
        deadline: list[float | None] = [None]

        async def pump_in() -> None:
            async for item in self._input_ch:
                if isinstance(item, rtc.AudioFrame):
                    inner.push_frame(item)
                    speech.push_frame(item)
                else:
                    inner.flush()
            inner.end_input()
            speech.end_input()

        async def watch_speech() -> None:
            async for ev in speech:
                if ev.type is vad.VADEventType.START_OF_SPEECH and deadline[0] is None:
                    heard[0] = False
                elif ev.type is vad.VADEventType.END_OF_SPEECH and not heard[0]:
                    # from the first unanswered utterance: more speech does not buy time
                    if deadline[0] is None:
                        deadline[0] = time.monotonic() + guard.budget

        async def pump_out() -> None:
            async for ev in inner:
                # usage events are the plugin counting audio sent, not the provider answering
                if ev.type is not stt.SpeechEventType.RECOGNITION_USAGE:
                    heard[0], deadline[0] = True, None
                self._event_ch.send_nowait(ev)

        tasks = [asyncio.create_task(t()) for t in (pump_in, watch_speech)]
        output = asyncio.create_task(pump_out())
        try:
            while not output.done():
                await asyncio.wait({output}, timeout=0.1)
                if deadline[0] is not None and time.monotonic() > deadline[0]:
                    raise APITimeoutError(
                        f"'{guard.name}' heard the caller speak and said nothing within "
                        f"{guard.budget:g} s"
                    )
            output.result()  # the provider's own error, if it failed
        finally:
            for task in (*tasks, output):
                task.cancel()
            for task in (*tasks, output):
                with contextlib.suppress(BaseException):
                    await task
            await inner.aclose()
            await speech.aclose()
