"""The livekit fence (``providers/compat.py``): every private or unexported livekit name
it relies on still exists and still does what the fence assumes, and nothing outside the
fence reaches past livekit's plugin-author contract. Run this first after a livekit
upgrade: a failure names what moved."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import importlib
import inspect
import re
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import APIConnectOptions, llm, stt, tts, utils
from livekit.agents import __version__ as livekit_version
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, TimedString
from packaging.requirements import Requirement

from providers import compat
from tests.support import REPO as ROOT

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


PRODUCTION = ("agent", "providers", "plugins")
PUBLIC_MODULES = {
    "livekit.agents",
    *(
        f"livekit.agents.{m}"
        for m in ("stt", "tts", "llm", "vad", "voice", "metrics", "inference", "utils")
    ),
    "livekit.agents.types",  # NOT_GIVEN, NotGivenOr, DEFAULT_API_CONNECT_OPTIONS: as plugins do
    "livekit.agents.testing",  # fake_job_context, for ``simulate``
}
"""Where production code may import livekit-agents names from (the fence aside)."""
FENCED = {
    "USERDATA_TIMED_TRANSCRIPT",
    "ATTRIBUTE_AGENT_STATE",
    "ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID",
    "TOPIC_TRANSCRIPTION",
    "ATTRIBUTE_TRANSCRIPTION_FINAL",
    "SessionConnectOptions",
    "_label",
    "_metrics_monitor_task",
    "_update_session_keyterms",
    "_push_conversation_item",
}
"""Names only ``providers/compat.py`` may mention."""


def _resolve(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("module", sorted(compat.FENCED_NAMES))
def test_every_fenced_name_still_exists(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [n for n in compat.FENCED_NAMES[module] if not hasattr(mod, n)]
    assert not missing, f"livekit {livekit_version}: {module} has no {missing}: fix compat.py"


@pytest.mark.parametrize("cls_path", sorted(compat.FENCED_ATTRIBUTES))
def test_every_fenced_method_still_exists_with_the_same_parameters(cls_path: str) -> None:
    cls = _resolve(cls_path)
    for name in compat.FENCED_ATTRIBUTES[cls_path]:
        theirs = getattr(cls, name, None)
        assert callable(theirs), f"livekit {livekit_version}: {cls_path}.{name} is gone"
        ours = next(getattr(c, name) for c in vars(compat).values() if hasattr(c, name))
        assert list(inspect.signature(theirs).parameters) == list(
            inspect.signature(ours).parameters
        ), f"livekit {livekit_version}: {cls_path}.{name} changed its parameters"
        assert inspect.iscoroutinefunction(theirs) == inspect.iscoroutinefunction(ours)


@pytest.mark.parametrize("cls_path", sorted(compat.FENCED_OPTIONS))
def test_every_fenced_option_is_still_a_field_of_its_options(cls_path: str) -> None:
    fields = {f.name for f in dataclasses.fields(_resolve(cls_path))}
    missing = [n for n in compat.FENCED_OPTIONS[cls_path] if n not in fields]
    assert not missing, f"livekit {livekit_version}: {cls_path} has no {missing}: fix compat.py"


@pytest.mark.parametrize("kind", ["stt", "llm", "tts"])
def test_the_session_hands_its_connect_options_to_each_node(kind: str) -> None:
    """``Chains.session_options`` turns the session's retries off for a chain: that works
    while the session keeps them per kind and its default nodes pass them to the chain."""
    from livekit.agents import Agent, AgentSession

    field = f"{kind}_conn_options"
    once = APIConnectOptions(max_retry=0)
    options = compat.SessionConnectOptions(**{field: once})
    assert "conn_options" in inspect.signature(AgentSession).parameters
    node = inspect.getsource(getattr(Agent.default, f"{kind}_node"))
    assert f"session.conn_options.{field}" in node, (
        f"livekit {livekit_version}: Agent.default.{kind}_node no longer reads {field}"
    )
    assert getattr(options, field) is once


class _Stream(tts.ChunkedStream):
    """Speaks one frame of silence with word timings, as a provider with timings does."""

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id="r", sample_rate=16000, num_channels=1, mime_type="audio/pcm"
        )
        output_emitter.push_timed_transcript([TimedString("hello ", start_time=0, end_time=0.1)])
        output_emitter.push(b"\0\0" * 1600)
        output_emitter.flush()


class _RelayStream(compat.RelaysMetrics, _Stream):
    pass


class _TTS(tts.TTS[Any]):
    def __init__(self, stream: type[tts.ChunkedStream] = _Stream) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False), sample_rate=16000, num_channels=1
        )
        self.stream_type = stream

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return self.stream_type(tts=self, input_text=text, conn_options=conn_options)


async def _synthesize(engine: _TTS) -> tuple[list[rtc.AudioFrame], int]:
    metrics: list[Any] = []
    engine.on("metrics_collected", metrics.append)
    async with engine.synthesize("hello") as stream:
        frames = [ev.frame async for ev in stream]
    await asyncio.sleep(0)  # let the metrics task finish
    return frames, len(metrics)


async def test_word_timings_are_where_timed_words_reads_them() -> None:
    frames, _ = await asyncio.wait_for(_synthesize(_TTS()), 5)
    words = [w for f in frames for w in compat.timed_words(f)]
    assert [str(w) for w in words] == ["hello "], (
        f"livekit {livekit_version} no longer puts word timings in frame.userdata"
        f"[{compat.TIMED_TRANSCRIPT_KEY!r}]"
    )


async def test_relays_metrics_silences_the_streams_own_metrics() -> None:
    _, own = await asyncio.wait_for(_synthesize(_TTS()), 5)
    _, relayed = await asyncio.wait_for(_synthesize(_TTS(_RelayStream)), 5)
    assert own == 1, "the base stream reports metrics (else this test proves nothing)"
    assert relayed == 0, "_metrics_monitor_task no longer decides a stream's metrics"


class _STT(stt.STT[Any]):
    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))

    async def _recognize_impl(
        self, buffer: utils.AudioBuffer, *, language: Any = None, conn_options: Any = None
    ) -> stt.SpeechEvent:
        raise NotImplementedError


class _LLM(llm.LLM[Any]):
    def chat(self, **kwargs: Any) -> llm.LLMStream:
        raise NotImplementedError


@pytest.mark.parametrize("make", [_STT, _LLM, _TTS], ids=["stt", "llm", "tts"])
def test_set_label_is_what_livekit_reports_as_the_label(make: Any) -> None:
    obj = make()
    compat.set_label(obj, "deepgram.STT")
    assert obj.label == "deepgram.STT", f"livekit {livekit_version}: label is not _label"


def test_nothing_outside_the_fence_reaches_past_the_plugin_contract() -> None:
    problems = []
    for package in PRODUCTION:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "providers" / "compat.py":
                continue
            rel = path.relative_to(ROOT)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "livekit.agents"
                ):
                    if node.module not in PUBLIC_MODULES:
                        problems.append(f"{rel}:{node.lineno} imports {node.module}")
                    problems += [
                        f"{rel}:{node.lineno} imports {a.name}"
                        for a in node.names
                        if a.name in FENCED
                    ]
                elif isinstance(node, ast.Attribute) and node.attr in FENCED:
                    problems.append(f"{rel}:{node.lineno} uses .{node.attr}")
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    node.name in FENCED
                ):
                    problems.append(f"{rel}:{node.lineno} overrides {node.name}")
    assert not problems, "route these through providers/compat.py:\n" + "\n".join(problems)


def test_the_installed_livekit_is_inside_the_pinned_range() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    livekit = [Requirement(r) for r in re.findall(r'"(livekit-[^"]+)"', pyproject)]
    assert livekit, "pyproject.toml pins no livekit package"
    for req in livekit:
        assert req.specifier.contains(livekit_version), f"{req} excludes {livekit_version}"
        # a cap: a minor release may rename what the fence relies on
        assert any(s.operator == "<" for s in req.specifier), f"{req} has no upper bound"


async def test_the_vad_infers_on_the_calls_loop() -> None:
    """``inline_vad_stream``: silero's stream still keeps its loop in ``_loop`` and hands each
    window's inference to it; with the stream's loop replaced, that inference runs on the
    loop's own thread, not on an executor thread."""
    import threading

    from livekit.plugins import silero

    from agent.worker.prewarm import shared_vad

    source = inspect.getsource(silero.vad.VADStream)
    assert "self._loop.run_in_executor(None, self._model" in source, (
        f"livekit {livekit_version}: silero's VADStream no longer infers through self._loop"
    )
    stream = shared_vad().stream()
    threads: list[int] = []

    class Model:
        """silero's model, noting the thread each inference runs on."""

        def __init__(self, model: Any) -> None:
            self.model = model

        def __call__(self, x: Any) -> float:
            threads.append(threading.get_ident())
            return float(self.model(x))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.model, name)

    stream._model = Model(stream._model)  # type: ignore[attr-defined]
    for _ in range(20):  # 0.2 s of silence at 16 kHz: six 32 ms windows
        stream.push_frame(rtc.AudioFrame(b"\0\0" * 160, 16000, 1, 160))
    async with asyncio.timeout(10):
        while len(threads) < 3:
            await asyncio.sleep(0.01)
    await stream.aclose()
    assert set(threads) == {threading.get_ident()}
