"""The TTS fallback chain.

Why not livekit's ``tts.FallbackAdapter``: with its defaults a provider that fails fast
costs ~2 s of retries, one that hangs costs its plugin's own timeout (~30 s for the
ElevenLabs, Cartesia and OpenAI HTTP paths), and when a provider fails after part of a
sentence went out, the rest of that sentence is dropped. This chain:

- never retries a failed provider within a request: the next one speaks at once;
- gives each provider ``budget`` seconds for its first audio (and for every gap after it);
- when a provider fails mid-sentence, has the next one speak only the part not yet heard
  (from the failed provider's word timings when it sent them, else estimated from the audio
  already played at a typical speaking rate, skipping a cut-off word rather than repeating
  one);
- asks the process-wide health registry which providers are down, so a provider that failed
  in another call is skipped at no cost, and reports every outcome back to it.

It is non-streaming (synthesis per sentence): ``AgentSession`` puts livekit's sentence
``StreamAdapter`` in front of it, so first audio still follows the first sentence.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from livekit import rtc
from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APITimeoutError,
    tts,
    utils,
)
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from providers.chains.blame import BudgetTimeout
from providers.chains.events import FailoverLog
from providers.chains.health import HealthKeys, HealthRegistry, describe_error
from providers.compat import RelaysMetrics, timed_words
from providers.types import ProviderKind

CHARS_PER_SECOND = 15.0
"""Typical speaking rate, for estimating how much of a sentence was heard."""


@dataclass(frozen=True)
class ChainMember:
    name: str
    tts: tts.TTS[Any]
    keys: HealthKeys
    budget: float | None
    """Seconds allowed for the first audio, and for any gap between frames after it (None:
    the plugin's own timeouts only — the last provider has nobody to hand over to)."""
    own_budget: bool = False
    """``budget`` is the org's, shorter than the worker's (``FailoverSettings.own_budget``)."""


def unspoken_rest(text: str, heard_seconds: float, timed: list[Any]) -> str:
    """The part of ``text`` a caller has not heard after ``heard_seconds`` of its audio."""
    ends: list[float] = [
        e for w in timed if isinstance(e := getattr(w, "end_time", None), (int, float))
    ]
    if timed and len(ends) == len(timed):
        heard_chars = sum(
            len(str(w)) for w, end in zip(timed, ends, strict=True) if end <= heard_seconds
        )
    else:
        heard_chars = int(heard_seconds * CHARS_PER_SECOND)
    if heard_chars <= 0:
        return text
    if heard_chars < len(text) and not text[heard_chars - 1].isspace():
        # the cut lands inside a word: skip the rest of it rather than say it twice
        match = re.compile(r"\s").search(text, heard_chars)
        heard_chars = match.end() if match else len(text)
    return text[heard_chars:].lstrip()


class ChainTTS(tts.TTS[Any]):
    def __init__(
        self,
        members: list[ChainMember],
        *,
        health: HealthRegistry,
        failovers: FailoverLog,
    ) -> None:
        if not members:
            raise ValueError("a TTS chain needs at least one provider")
        if len({m.tts.num_channels for m in members}) != 1:
            raise ValueError("all TTS providers of a chain must have the same channel count")
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=max(m.tts.sample_rate for m in members),
            num_channels=members[0].tts.num_channels,
        )
        self.members = members
        self._health = health
        self._failovers = failovers
        for m in members:
            m.tts.on("metrics_collected", self._forward_metrics)

    @property
    def model(self) -> str:
        return self.members[0].tts.model

    @property
    def provider(self) -> str:
        return self.members[0].tts.provider

    def _forward_metrics(self, *args: Any, **kwargs: Any) -> None:
        self.emit("metrics_collected", *args, **kwargs)

    def prewarm(self) -> None:
        """livekit's connection prewarm, for every member: the one a failover reaches
        should not pay DNS and TLS set-up in the caller's silence."""
        for m in self.members:
            m.tts.prewarm()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChainStream:
        return ChainStream(tts=self, input_text=text, conn_options=conn_options)

    def order(self) -> list[ChainMember]:
        """Per request, so an outage another call just met reorders this call too."""
        return self._health.order(self.members, lambda m: m.keys)

    def admit(self, member: ChainMember, rest: list[ChainMember]) -> bool:
        """Try ``member`` now? Yes if the registry lets it through (a half-open one as this
        request's probe), or if nothing healthier is left after it: never silence by choice."""
        if self._health.allow(member.keys):
            return True
        return all(self._health.is_down(m.keys) for m in rest)

    def log_switch(self, failed: ChainMember, to: ChainMember | None, error: BaseException) -> None:
        self._failovers.switch(ProviderKind.TTS, failed.name, to.name if to else None, error)

    async def aclose(self) -> None:
        for m in self.members:
            m.tts.off("metrics_collected", self._forward_metrics)


class ChainStream(RelaysMetrics, tts.ChunkedStream):
    """The serving provider reports its own metrics (``RelaysMetrics``)."""

    def __init__(self, *, tts: ChainTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._chain = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        chain = self._chain
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=chain.sample_rate,
            num_channels=chain.num_channels,
            mime_type="audio/pcm",
        )
        text = self._input_text
        order = chain.order()
        last_error: BaseException | None = None
        for i, member in enumerate(order):
            rest = order[i + 1 :]
            if not chain.admit(member, rest):
                continue
            timed: list[Any] = []
            heard = [0.0]
            judged = False  # a verdict was recorded; else a probe in flight is released
            try:
                await self._attempt(member, text, output_emitter, heard, timed)
            except (APIError, asyncio.TimeoutError) as e:
                error = e if isinstance(e, APIError) else APITimeoutError()
                last_error = error
                chain._health.record_failure(member.keys, error)
                judged = True
                chain.log_switch(member, rest[0] if rest else None, error)
                if heard[0] > 0:
                    text = unspoken_rest(text, heard[0], timed)
                    if not text:
                        return
                continue
            else:
                chain._health.record_success(member.keys)
                judged = True
                return
            finally:  # interrupted, or an exception that is no verdict on the provider
                if not judged:
                    chain._health.release(member.keys)
        # Not retryable, whoever asked (the session is told so too: ``Chains.session_options``):
        # the chain already tried every provider once, without back-off; a retry would only
        # repeat that after seconds of silence.
        last = describe_error(last_error) if last_error else "-"
        raise APIConnectionError(f"every TTS provider failed (last: {last})", retryable=False)

    async def _attempt(
        self,
        member: ChainMember,
        text: str,
        output_emitter: tts.AudioEmitter,
        heard: list[float],
        timed: list[Any],
    ) -> None:
        chain = self._chain
        resampler = (
            rtc.AudioResampler(
                member.tts.sample_rate, chain.sample_rate, num_channels=chain.num_channels
            )
            if member.tts.sample_rate != chain.sample_rate
            else None
        )
        # The session's options (``Chains.session_options``) reach the chain, not its
        # members: a member is never retried, whatever the caller asked; the next one speaks.
        options = dataclasses.replace(self._conn_options, max_retry=0)
        async with member.tts.synthesize(text, conn_options=options) as stream:
            frames = stream.__aiter__()
            while True:
                try:
                    ev = await asyncio.wait_for(frames.__anext__(), member.budget)
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    assert member.budget is not None  # wait_for(None) never times out
                    raise BudgetTimeout(
                        f"no audio from '{member.name}' within {member.budget} s",
                        budget=member.budget,
                        own=member.own_budget,
                    ) from None
                if words := timed_words(ev.frame):
                    timed.extend(words)
                    output_emitter.push_timed_transcript(words)
                for frame in resampler.push(ev.frame) if resampler else [ev.frame]:
                    output_emitter.push_frame(frame)
                heard[0] += ev.frame.duration
            if resampler is not None:
                for frame in resampler.flush():
                    output_emitter.push_frame(frame)
        if text.strip() and heard[0] <= 0:
            raise APIError(f"'{member.name}' returned no audio", retryable=False)
