"""A guard around each STT of a chain; livekit's ``stt.FallbackAdapter`` still does the
switching. It adds two things the adapter lacks.

A watchdog (streaming STTs with a fallback after them): a streaming STT whose socket accepts
audio and then says nothing never raises (its heartbeats are answered), and from the STT's
side a hung provider looks exactly like a silent caller — livekit's adapter waits forever.
The guard runs the call's VAD on the same audio: once the caller has spoken and stopped, a
provider that produced nothing for that utterance within ``budget`` seconds is declared hung
(``APITimeoutError``), so the adapter moves to the next STT. A silent caller never trips it.
The cost is one more VAD pass over the call's audio (Silero: a few milliseconds of CPU per
second of audio).

A handover of the caller's words: livekit's adapter gives the next STT only the audio that
arrives after the switch, so whatever the caller said to the failed one since its last
final transcript is lost and the caller has to repeat it. Each guarded stream keeps that
audio (at most ``Handover.seconds``); when the adapter marks its provider unavailable, the
stream the adapter opens next on another STT hears it first, then the live audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

from livekit import rtc
from livekit.agents import (
    APIConnectOptions,
    stt,
    utils,
    vad,
)
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from providers.chains.blame import BudgetTimeout
from providers.chains.delegate import Delegate
from providers.compat import ForwardsSTTHooks
from providers.log import logger

Heard = list[tuple[float, rtc.AudioFrame]]
"""Frames with the monotonic time they arrived."""


class Handover:
    """The audio one chain's failed STT heard, waiting for the next STT. One per chain."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._kept: dict[int, Heard] = {}  # by id() of the guard whose stream failed
        self._ready: Heard = []
        self._members = 0
        self._down: set[int] = set()

    def watch(self, adapter: stt.FallbackAdapter, members: int) -> None:
        """Hand over when ``adapter`` gives up on a provider: only its main stream failing
        does that (a failed recovery attempt leaves the provider unavailable, no event)."""
        self._members = members

        def on_change(ev: stt.AvailabilityChangedEvent) -> None:
            if ev.available:
                self._down.discard(id(ev.stt))
            else:
                self._down.add(id(ev.stt))
                self._ready = self._kept.pop(id(ev.stt), [])

        adapter.on("stt_availability_changed", on_change)

    def keep(self, guard: GuardedSTT, heard: Heard) -> None:
        self._kept[id(guard)] = heard

    def take(self, guard: GuardedSTT) -> Heard:
        """For a stream of ``guard`` starting: what another STT heard before it failed, at
        most ``seconds`` old (a handover nobody took in time is stale, not replayed). A
        provider marked unavailable gets nothing: the adapter opens its streams only to see
        whether it recovered (unless every provider is down)."""
        if id(guard) in self._down and len(self._down) < self._members:
            return []
        heard, self._ready = self._ready, []
        since = time.monotonic() - self.seconds
        return [(t, f) for t, f in heard if t >= since]


class _Recent:
    """The last ``seconds`` of audio a stream received since its provider's last final."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._frames: deque[tuple[float, rtc.AudioFrame]] = deque()
        self._duration = 0.0

    def add(self, at: float, frame: rtc.AudioFrame) -> None:
        self._frames.append((at, frame))
        self._duration += frame.duration
        while self._duration > self.seconds and self._frames:
            self._duration -= self._frames.popleft()[1].duration

    def clear(self) -> None:
        """A final transcript: what came before it is in the transcript already."""
        self._frames.clear()
        self._duration = 0.0

    def heard(self) -> Heard:
        return list(self._frames)


class GuardedSTT(ForwardsSTTHooks, Delegate, stt.STT[Any]):
    """livekit's keyterm and conversation-context hooks reach the provider's own
    (``ForwardsSTTHooks``)."""

    def __init__(
        self,
        inner: stt.STT[Any],
        *,
        name: str,
        vad: vad.VAD | None = None,
        budget: float | None = None,
        own_budget: bool = False,
        handover: Handover | None = None,
    ) -> None:
        """``vad`` and ``budget``: the watchdog (both, or neither); ``own_budget``: the budget
        is the org's, shorter than the worker's; ``handover``: the chain's."""
        super().__init__(capabilities=inner.capabilities)
        self.vad, self.name, self.budget, self.handover = vad, name, budget, handover
        self.own_budget = own_budget
        self.delegate_to(inner)

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
    def __init__(
        self, guard: GuardedSTT, *, language: NotGivenOr[str], conn_options: APIConnectOptions
    ) -> None:
        super().__init__(stt=guard, conn_options=conn_options)
        self._guard = guard
        self._language = language

    async def _run(self) -> None:
        guard = self._guard
        inner = guard.inner.stream(language=self._language, conn_options=self._conn_options)
        budget = guard.budget
        speech = guard.vad.stream() if guard.vad is not None and budget is not None else None
        recent = _Recent(guard.handover.seconds) if guard.handover is not None else None
        heard = [True]  # has the provider said anything since the caller began speaking?
        deadline: list[float | None] = [None]

        def forward(at: float, frame: rtc.AudioFrame) -> None:
            if recent is not None:
                recent.add(at, frame)
            if speech is not None:
                speech.push_frame(frame)
            with contextlib.suppress(RuntimeError):  # the provider's stream already failed
                inner.push_frame(frame)

        async def pump_in() -> None:
            replay = guard.handover.take(guard) if guard.handover is not None else []
            if replay:
                logger.info(
                    "replaying the caller's last words to the next STT",
                    extra={
                        "to": guard.name,
                        "seconds": round(sum(f.duration for _, f in replay), 2),
                    },
                )
            for at, frame in replay:
                forward(at, frame)
            async for item in self._input_ch:
                if isinstance(item, rtc.AudioFrame):
                    forward(time.monotonic(), item)
                else:
                    with contextlib.suppress(RuntimeError):
                        inner.flush()
            with contextlib.suppress(RuntimeError):
                inner.end_input()
            if speech is not None:
                speech.end_input()

        async def watch_speech() -> None:
            assert speech is not None and budget is not None
            async for ev in speech:
                if ev.type is vad.VADEventType.START_OF_SPEECH and deadline[0] is None:
                    heard[0] = False
                elif ev.type is vad.VADEventType.END_OF_SPEECH and not heard[0]:
                    # from the first unanswered utterance: more speech does not buy time
                    if deadline[0] is None:
                        deadline[0] = time.monotonic() + budget

        async def pump_out() -> None:
            async for ev in inner:
                # usage events are the plugin counting audio sent, not the provider answering
                if ev.type is not stt.SpeechEventType.RECOGNITION_USAGE:
                    heard[0], deadline[0] = True, None
                if ev.type is stt.SpeechEventType.FINAL_TRANSCRIPT and recent is not None:
                    recent.clear()
                self._event_ch.send_nowait(ev)

        tasks = [asyncio.create_task(pump_in())]
        if speech is not None:
            tasks.append(asyncio.create_task(watch_speech()))
        output = asyncio.create_task(pump_out())
        try:
            while not output.done():
                await asyncio.wait({output}, timeout=0.1)
                if deadline[0] is not None and time.monotonic() > deadline[0]:
                    assert budget is not None  # a deadline is only set with a budget
                    raise BudgetTimeout(
                        f"'{guard.name}' heard the caller speak and said nothing within "
                        f"{budget:g} s",
                        budget=budget,
                        own=guard.own_budget,
                    )
            output.result()  # the provider's own error, if it failed
        except Exception:
            if guard.handover is not None and recent is not None:
                guard.handover.keep(guard, recent.heard())
            raise
        finally:
            for task in (*tasks, output):
                task.cancel()
            for task in (*tasks, output):
                with contextlib.suppress(BaseException):
                    await task
            await inner.aclose()
            if speech is not None:
                await speech.aclose()
