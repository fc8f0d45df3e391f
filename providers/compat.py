"""Every livekit-agents name this project relies on beyond a plugin author's contract: one
fence, each name once, with why it is needed. ``tests/test_compat.py`` fails, naming the
name, when a livekit upgrade removes or moves one of them.

Not fenced — the contract livekit's own plugins (``livekit/plugins/deepgram``,
``cartesia``, ``openai``, ``elevenlabs``) are written against, used directly:

- names in the ``__all__`` of ``livekit.agents`` and its packages ``stt``, ``tts``, ``llm``,
  ``vad``, ``voice``, ``metrics``, ``inference``, ``utils`` (``utils.http_context``
  included), ``testing``; and ``livekit.agents.types`` (``NOT_GIVEN``, ``NotGivenOr``,
  ``DEFAULT_API_CONNECT_OPTIONS``), which every plugin imports;
- subclassing ``stt.STT`` (``_recognize_impl``; overriding ``_update_session_keyterms``,
  as deepgram's STT does) and ``stt.RecognizeStream``/``SpeechStream`` whose ``_run`` reads
  ``self._input_ch`` (``self._FlushSentinel``), writes ``self._event_ch`` and honours
  ``self._conn_options`` (deepgram/stt.py);
- ``tts.ChunkedStream._run(output_emitter)`` reading ``self._input_text`` and
  ``self._conn_options`` (cartesia/tts.py), ``llm.LLMStream._run`` writing
  ``self._event_ch`` (openai);
- a stream keeping its own typed reference to the object that made it, set in its own
  ``__init__`` (cartesia's ``self._tts: TTS = tts``) — never read off the base class.

On a livekit-agents upgrade: ``pyproject.toml`` pins ``>=1.8.9,<1.9`` (plugins alike). To
raise the cap, install the new version and run ``pytest tests/test_compat.py``; a failure
names the attribute or module that moved. Fix its use here (nowhere else), run the failover
and hooks tests, then raise the pin.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Callable
from typing import Any

from livekit import rtc
from livekit.agents import llm
from livekit.agents import types as _types
from livekit.agents import worker as _worker
from livekit.agents.llm import realtime_fallback_adapter as _realtime_fallback
from livekit.agents.voice import agent_session as _agent_session

TIMED_TRANSCRIPT_KEY: str = _types.USERDATA_TIMED_TRANSCRIPT
"""Where livekit's TTS base class puts a synthesizer's word timings in a frame's
``userdata`` (no public accessor in 1.8). The TTS chain reads them to know which words of
a sentence a failed provider already spoke, so the next one says only the rest."""

ATTRIBUTE_AGENT_STATE: str = _types.ATTRIBUTE_AGENT_STATE
"""The participant attribute in which a livekit agent publishes its state (listening,
thinking, speaking); our test caller (``agent.tools.room_call``) waits on it. Wire protocol, not
re-exported by ``livekit.agents``."""

ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID: str = _types.ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID
"""The text-stream attribute naming a transcription segment (the caller joins a segment's
chunks by it). Wire protocol, as above."""

TOPIC_TRANSCRIPTION: str = _types.TOPIC_TRANSCRIPTION
"""The text-stream topic on which a livekit agent publishes transcriptions. As above."""

ATTRIBUTE_TRANSCRIPTION_FINAL: str = _types.ATTRIBUTE_TRANSCRIPTION_FINAL
"""The text-stream attribute saying a caller's transcription is final (the web caller
shows interim ones greyed). As above."""

SessionConnectOptions = _agent_session.SessionConnectOptions
"""What ``AgentSession(conn_options=...)`` takes: the session's retry counts per kind. The
parameter is public; its class is not re-exported by ``livekit.agents.voice`` in 1.8. The
chains set it so that the session does not run a chain again once it has failed over to
its end (``Chains.session_options``)."""

ServerEnvOption = _worker.ServerEnvOption
"""A server option with a production and a development value (``AgentServer``'s own
defaults are built this way; ``dev`` picks the latter). ``AgentServer(load_threshold=...,
num_idle_processes=...)`` takes it; the class is not re-exported by ``livekit.agents``.
The worker sets its call limit with it and leaves ``dev`` unlimited."""

FENCED_NAMES: dict[str, tuple[str, ...]] = {
    "livekit.agents.types": (
        "USERDATA_TIMED_TRANSCRIPT",
        "ATTRIBUTE_AGENT_STATE",
        "ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID",
        "TOPIC_TRANSCRIPTION",
        "ATTRIBUTE_TRANSCRIPTION_FINAL",
    ),
    "livekit.agents.voice.agent_session": ("SessionConnectOptions",),
    "livekit.agents.worker": ("ServerEnvOption", "_default_load_threshold"),
    "livekit.agents.llm.realtime_fallback_adapter": ("_FallbackRealtimeSession",),
}
"""Module → the private or unexported names this module takes from it (checked by
``tests/test_compat.py``)."""

FENCED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "livekit.agents.stt.STT": ("_update_session_keyterms", "_push_conversation_item"),
    "livekit.agents.llm.LLMStream": ("_metrics_monitor_task",),
    "livekit.agents.tts.ChunkedStream": ("_metrics_monitor_task",),
    "livekit.agents.llm.realtime_fallback_adapter._FallbackRealtimeSession": (
        "_on_child_error",
        "_set_available",
        "_next_available_index",
        "_swap",
        "_is_agent_speaking",
    ),
}
FENCED_OPTIONS: dict[str, tuple[str, ...]] = {
    "livekit.agents.voice.agent_session.AgentSessionOptions": ("session_close_transcript_timeout",),
}
"""Options dataclass → the fields this module sets on a live object's ``_opts``."""
"""Class → the private methods this module overrides or calls on it (``_label``, an
instance attribute, is checked through ``set_label``)."""


def timed_words(frame: rtc.AudioFrame) -> list[Any]:
    """The word timings (``TimedString``s) a TTS attached to ``frame``, else []."""
    words = frame.userdata.get(TIMED_TRANSCRIPT_KEY)
    return list(words) if words else []


def skip_close_transcript_wait(session: Any) -> None:
    """Close ``session`` without waiting for a last transcript. On close, livekit pushes
    silence into the STT and waits up to ``session_close_transcript_timeout`` (2 s) for a
    final transcript; a caller who was not speaking when they hung up has none coming, so
    every call would end 2 s late. The timeout is a constructor option only: which value
    is right is known only at hang-up (``AgentSession.user_state``)."""
    session._opts.session_close_transcript_timeout = 0.0


def set_label(obj: Any, label: str) -> None:
    """Give a wrapper the label of the provider it wraps. livekit's ``label`` property has
    no setter and its base classes fill ``_label`` with the wrapper's own class path; logs,
    traces and the metrics a session collects should name the real provider."""
    obj._label = label


class RelaysMetrics:
    """For a stream that relays another provider's stream: the base class would report
    metrics for the relayed audio or tokens, and so would the provider (each request twice).
    livekit's own ``StreamAdapterWrapper`` and fallback adapters override this hook the same
    way. Put it first among the bases."""

    async def _metrics_monitor_task(self, event_aiter: AsyncIterable[Any]) -> None:
        async for _ in event_aiter:
            pass


class ForwardsSTTHooks:
    """For an STT wrapping ``self.inner``: livekit's session calls its keyterm and
    conversation-context hooks on the outermost STT; a wrapper keeping the base class's
    no-ops would hide the provider's (livekit's ``StreamAdapter`` forwards them alike). Put
    it first among the bases."""

    inner: Any

    def _update_session_keyterms(self, keyterms: list[str]) -> None:
        self.inner._update_session_keyterms(keyterms)

    def _push_conversation_item(self, ev: Any) -> None:
        self.inner._push_conversation_item(ev)


class RealtimeFallbackSession(_realtime_fallback._FallbackRealtimeSession):
    """livekit's realtime fallback session (the one ``AgentActivity`` binds to the
    ``AgentSession``, so a swap can interrupt and re-issue a reply) with a last resort of
    our own: when every realtime model has failed it tells ``on_exhausted`` instead of
    escalating an unrecoverable error, which would close the whole call. The error is
    passed on as recoverable, so the session stays up for the pipeline to take over.
    ``on_failure(index, error)`` hears each model's failure first (breakers, the call's
    switches). livekit 1.8 has no public hook for either."""

    def __init__(
        self,
        adapter: llm.RealtimeModelFallbackAdapter,
        *,
        turn_detection_disabled: bool,
        on_failure: Callable[[int, BaseException], None],
        on_exhausted: Callable[[BaseException, bool], None],
    ) -> None:
        super().__init__(adapter, turn_detection_disabled=turn_detection_disabled)
        self.on_failure = on_failure
        self.on_exhausted = on_exhausted

    @property
    def active_index(self) -> int:
        """Which of the adapter's models serves now."""
        return self._active_index

    def usable(self, index: int) -> bool:
        """Model ``index`` has not failed in this session."""
        return bool(self._available[index])

    async def close_active(self) -> None:
        """Close the serving model's session now. A reply it began and will never finish
        (a hung model) ends with it, so the agent can be interrupted at once instead of
        after livekit's wait for the speech to end (5 s)."""
        with contextlib.suppress(Exception):
            await self._active.aclose()

    async def aclose(self) -> None:
        # a dead model's session re-raises its failure on close (already handled): the
        # hand-over to the pipeline closes it, and must not fail for it
        with contextlib.suppress(Exception):
            await super().aclose()

    def _on_child_error(self, error: llm.RealtimeModelError) -> None:
        if error.recoverable:
            self.emit("error", error)
            return
        self.fail_active(error)

    def fail_active(self, error: llm.RealtimeModelError, *, reply_owed: bool = False) -> None:
        """The serving model cannot serve (an error, or no first audio in time): the next
        realtime model takes over, as livekit's adapter does, or, none left, the pipeline.
        ``reply_owed``: the caller waits for an answer the failed model never began to
        voice (a hang); the next one gives it (livekit's adapter re-issues only a reply
        that was being spoken)."""
        self.on_failure(self._active_index, error.error)
        speaking = self._is_agent_speaking() or reply_owed
        self._set_available(self._active_index, False)
        target = self._next_available_index()
        self.emit("error", error.model_copy(update={"recoverable": True}))
        if target is None:
            self.on_exhausted(error.error, speaking)
        elif self._swap_task is None or self._swap_task.done():
            self._swap_task = asyncio.create_task(self._swap(target, speaking))


class _InlineLoop:
    """A stream's loop whose ``run_in_executor`` calls ``fn`` at once, on the loop itself."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def run_in_executor(self, _executor: Any, fn: Callable[..., Any], *args: Any) -> Any:
        future = self._loop.create_future()
        try:
            future.set_result(fn(*args))
        except Exception as e:
            future.set_exception(e)
        return future

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def inline_vad_stream(stream: Any) -> Any:
    """Silero's stream runs each 32 ms window's inference (a fraction of a millisecond of
    ONNX) through its loop's default executor: two thread hand-offs per window per call,
    each waiting for the GIL behind every other call's work, so at four calls on two cores
    the VAD falls behind the caller ("slower than realtime") while the hand-offs cost more
    CPU than the inference. The stream keeps its loop in ``_loop`` and uses it only for
    that; in its place the inference runs on the loop at once."""
    stream._loop = _InlineLoop(stream._loop)
    return stream
