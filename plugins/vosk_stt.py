"""Vosk streaming STT for livekit-agents, in-process or against a vosk-server.

In-process, one ``vosk.Model`` per process (loaded by :func:`load_model`, normally at
prewarm) is shared by every stream; each stream owns a ``KaldiRecognizer`` that is fed off
the event loop. Remote, each stream speaks alphacephei's vosk-server WebSocket protocol
(``websocket/asr_server.py``), so many workers can share one model.

Both modes produce the same JSON (``{"partial": …}`` / ``{"text": …}``), so one state machine
turns them into livekit ``SpeechEvent``s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from livekit import rtc
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APITimeoutError,
    LanguageCode,
    stt,
    utils,
)
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer, is_given

from .audio import MonoResampler
from .log import logger

if TYPE_CHECKING:
    import vosk
    from websockets.asyncio.client import ClientConnection

MODEL_PATH_ENV = "VOSK_MODEL_PATH"
CHUNK_MS = 100
"""Audio is fed to Vosk in 100 ms chunks: small enough for lively partials, large enough
that the per-chunk thread hop (or WebSocket message) costs nothing."""

# asr_server.py compares these exact strings
_EOF_MSG = '{"eof" : 1}'
_RESET_MSG = '{"reset" : 1}'

_MODELS: dict[pathlib.Path, Any] = {}
"""Loaded models by resolved path: one per process per path, shared by all streams."""
_MODELS_LOCK = threading.Lock()


class VoskModelNotFoundError(RuntimeError):
    """No Vosk model directory could be found (nothing is loaded to find out)."""


def find_model_path(model_path: str | None = None) -> pathlib.Path:
    """Resolve the model directory without loading it, so callers can fail over cheaply.

    Order: ``model_path``, then ``$VOSK_MODEL_PATH``, then the first ``models/vosk-model*``
    directory under the current working directory (where ``make models`` puts it).
    """
    # the plugin's own variable (the machine's default model), read as livekit's plugins read
    # theirs; in environment mode the registry passes it as an option already
    explicit = model_path or os.environ.get(MODEL_PATH_ENV)
    if explicit:
        candidate = pathlib.Path(explicit).expanduser()
        if candidate.is_dir():
            return candidate.resolve()
        looked_at = str(candidate)
    else:
        models_dir = pathlib.Path.cwd() / "models"
        found = sorted(p for p in models_dir.glob("vosk-model*") if p.is_dir())
        if found:
            return found[0].resolve()
        looked_at = f"{models_dir}/vosk-model*"
    raise VoskModelNotFoundError(
        f"no Vosk model found at {looked_at}: run `make models` to download "
        f"vosk-model-small-en-us-0.15 into models/, or set {MODEL_PATH_ENV} to a model directory"
    )


def load_model(model_path: str | None = None) -> vosk.Model:
    """Load (once per process per resolved path) and return the shared Vosk model.

    Blocking (seconds): call it from prewarm or an executor, never on the event loop.
    """
    path = find_model_path(model_path)
    with _MODELS_LOCK:
        model = _MODELS.get(path)
        if model is None:
            # imported here so the remote mode works without the `local` extra
            import vosk

            vosk.SetLogLevel(-1)  # Kaldi's per-load LOG lines to stderr are noise in a worker
            logger.info("loading vosk model", extra={"model_path": str(path)})
            model = vosk.Model(str(path))
            _MODELS[path] = model
    return model


@dataclass
class _STTOptions:
    model_path: str | None
    host: str | None
    port: int
    sample_rate: int
    language: LanguageCode


class STT(stt.STT[Literal["metrics_collected", "error"]]):
    def __init__(
        self,
        *,
        model_path: str | None = None,
        host: str | None = None,
        port: int = 2700,
        sample_rate: int = 16000,
        language: str = "en",
    ) -> None:
        """Configure only; the model is loaded by :func:`load_model` (prewarm) or, failing
        that, off the event loop when the first stream starts.

        ``host`` selects the remote mode (``ws://host:port``); ``model_path`` is then unused.
        Connecting is bounded by the stream's ``conn_options.timeout``, as livekit's own
        plugins do, so a fallback adapter's attempt timeout also bounds the handshake.
        """
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        self._opts = _STTOptions(
            model_path=model_path,
            host=host,
            port=port,
            sample_rate=sample_rate,
            language=LanguageCode(language),
        )
        self._streams: weakref.WeakSet[SpeechStream] = weakref.WeakSet()

    @property
    def model(self) -> str:
        if self._opts.host:
            return "vosk-server"
        return pathlib.Path(self._opts.model_path).name if self._opts.model_path else "vosk"

    @property
    def provider(self) -> str:
        return "Vosk"

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        opts = dataclasses.replace(self._opts)
        if is_given(language):
            opts.language = LanguageCode(language)
        stream = SpeechStream(stt=self, opts=opts, conn_options=conn_options)
        self._streams.add(stream)
        return stream

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.SpeechEvent:
        """Stream the buffer and join the finals: Vosk has no separate batch path."""
        frames = buffer if isinstance(buffer, list) else [buffer]
        texts: list[str] = []
        # recognize() already retries; the inner stream must not retry on its own
        stream = self.stream(
            language=language, conn_options=dataclasses.replace(conn_options, max_retry=0)
        )
        async with stream:
            for frame in frames:
                stream.push_frame(frame)
            stream.end_input()
            async for ev in stream:
                if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT and ev.alternatives:
                    texts.append(ev.alternatives[0].text)
            lang = stream._opts.language
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(language=lang, text=" ".join(texts))],
        )

    def update_options(self, *, language: NotGivenOr[str] = NOT_GIVEN) -> None:
        """Change the reported language for new and live streams (Vosk's model is fixed)."""
        if is_given(language):
            self._opts.language = LanguageCode(language)
        for stream in self._streams:
            stream.update_options(language=language)

    async def aclose(self) -> None:
        for stream in list(self._streams):
            await stream.aclose()
        self._streams.clear()


class _PcmChunker:
    """Turns livekit frames of any rate and channel count into 16-bit mono PCM chunks of
    ``CHUNK_MS`` at the recognizer's rate."""

    def __init__(self, sample_rate: int) -> None:
        self._resampler = MonoResampler(sample_rate, quality=rtc.AudioResamplerQuality.HIGH)
        self._bstream = utils.audio.AudioByteStream(
            sample_rate=sample_rate,
            num_channels=1,
            samples_per_channel=sample_rate * CHUNK_MS // 1000,
        )

    def push(self, frame: rtc.AudioFrame) -> list[bytes]:
        return self._chunks(self._resampler.push(frame))

    def flush(self) -> list[bytes]:
        """Everything buffered, including a last short chunk (segment end)."""
        chunks = self._chunks(self._resampler.flush())
        chunks.extend(f.data.tobytes() for f in self._bstream.flush())
        return chunks

    def _chunks(self, frames: list[rtc.AudioFrame]) -> list[bytes]:
        out: list[bytes] = []
        for f in frames:
            out.extend(c.data.tobytes() for c in self._bstream.push(f.data.tobytes()))
        return out


def _accept(rec: Any, chunk: bytes) -> str:
    """Runs in a worker thread: one chunk in, Vosk's JSON for it out."""
    if rec.AcceptWaveform(chunk):  # True: Vosk's endpointing closed an utterance
        return str(rec.Result())
    return str(rec.PartialResult())


class SpeechStream(stt.RecognizeStream):
    """One recognition stream; Vosk's endpointing emits a final at each pause.

    Flush (``FlushSentinel``) forces the final of the utterance in progress: in-process with
    ``FinalResult()``, remote with vosk-server's ``{"reset" : 1}``, which answers with the
    final and keeps the connection (``eof`` would close it).
    """

    def __init__(self, *, stt: STT, opts: _STTOptions, conn_options: APIConnectOptions) -> None:
        # no sample_rate for the base class: _PcmChunker resamples and also downmixes
        super().__init__(stt=stt, conn_options=conn_options)
        self._opts = opts
        self._request_id = utils.shortuuid()
        self._speaking = False
        self._last_partial = ""

    def update_options(self, *, language: NotGivenOr[str] = NOT_GIVEN) -> None:
        """Change the reported language from the next result on (Vosk's model is fixed)."""
        if is_given(language):
            self._opts.language = LanguageCode(language)

    async def _run(self) -> None:
        self._speaking = False
        self._last_partial = ""
        try:
            if self._opts.host:
                await self._run_remote()
            else:
                await self._run_local()
        except APIError:
            raise
        except Exception as e:  # the error ladder: nothing raw may escape _run
            raise APIConnectionError("vosk recognition failed") from e

    # -- in-process --------------------------------------------------------------------

    async def _run_local(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(None, load_model, self._opts.model_path)
            rec = await loop.run_in_executor(None, self._new_recognizer, model)
        except (VoskModelNotFoundError, ImportError) as e:
            raise APIConnectionError("vosk model unavailable", retryable=False) from e

        chunker = _PcmChunker(self._opts.sample_rate)
        pending = False  # audio fed since the last final

        async def feed(chunks: list[bytes]) -> None:
            nonlocal pending
            for chunk in chunks:
                pending = True
                self._handle_result(await loop.run_in_executor(None, _accept, rec, chunk))

        async def finalize() -> None:
            nonlocal pending
            await feed(chunker.flush())
            if pending:
                self._handle_result(await loop.run_in_executor(None, rec.FinalResult))
                pending = False

        async for data in self._input_ch:
            if isinstance(data, rtc.AudioFrame):
                await feed(chunker.push(data))
            else:
                await finalize()
        await finalize()

    def _new_recognizer(self, model: Any) -> Any:
        import vosk

        rec = vosk.KaldiRecognizer(model, self._opts.sample_rate)
        rec.SetWords(True)  # word timings give the events start/end times and confidence
        return rec

    # -- remote (vosk-server) ----------------------------------------------------------

    async def _run_remote(self) -> None:
        from websockets.exceptions import ConnectionClosed

        ws = await self._connect()
        sent = 0  # messages that the server answers (all but the config)
        received = 0
        eof_sent = False

        async def send(message: str | bytes) -> None:
            nonlocal sent
            sent += 1  # counted before the await: the reply may beat the resume
            await ws.send(message)

        async def send_task() -> None:
            nonlocal eof_sent
            chunker = _PcmChunker(self._opts.sample_rate)
            pending = False  # audio sent since the last reset

            async def send_audio(chunks: list[bytes]) -> None:
                nonlocal pending
                for chunk in chunks:
                    pending = True
                    await send(chunk)

            await ws.send(json.dumps({"config": {"sample_rate": self._opts.sample_rate}}))
            async for data in self._input_ch:
                if isinstance(data, rtc.AudioFrame):
                    await send_audio(chunker.push(data))
                    continue
                await send_audio(chunker.flush())
                if pending:  # the segment's final, and the connection stays open
                    pending = False
                    await send(_RESET_MSG)
            await send_audio(chunker.flush())
            eof_sent = True
            await send(_EOF_MSG)

        async def recv_task() -> None:
            nonlocal received
            while not (eof_sent and received == sent):
                if eof_sent:  # the server owes us replies now; don't wait forever
                    msg = await asyncio.wait_for(ws.recv(), self._conn_options.timeout)
                else:
                    msg = await ws.recv()
                received += 1
                if not isinstance(msg, str):
                    raise APIConnectionError("vosk server sent a binary message")
                self._handle_result(msg)

        tasks = [asyncio.create_task(send_task()), asyncio.create_task(recv_task())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        except ConnectionClosed as e:
            raise APIConnectionError("vosk server closed the connection") from e
        except (asyncio.TimeoutError, TimeoutError) as e:
            raise APITimeoutError("vosk server stopped answering") from e
        finally:
            await utils.aio.gracefully_cancel(*tasks)
            await ws.close()

    async def _connect(self) -> ClientConnection:
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        url = f"ws://{self._opts.host}:{self._opts.port}"
        try:
            ws = await asyncio.wait_for(
                connect(url, open_timeout=None, compression=None), self._conn_options.timeout
            )
        except (asyncio.TimeoutError, TimeoutError) as e:
            raise APITimeoutError("vosk server connection timed out") from e
        except (OSError, WebSocketException) as e:
            raise APIConnectionError("failed to connect to the vosk server") from e
        logger.debug("connected to vosk server", extra={"url": url})
        return ws

    # -- shared: Vosk JSON -> SpeechEvents ---------------------------------------------

    def _handle_result(self, raw: str) -> None:
        """Not JSON is a broken server; JSON of an unknown shape (another server version, a
        filter) is skipped with a log line, as livekit's plugins skip unexpected messages."""
        try:
            result = json.loads(raw)
        except ValueError as e:
            raise APIConnectionError("malformed vosk result") from e
        if isinstance(result, dict) and isinstance(result.get("alternatives"), list):
            # a server started with VOSK_ALTERNATIVES > 0 sends finals as n-best lists
            best = result["alternatives"][0] if result["alternatives"] else None
            if isinstance(best, dict):
                result = best
        if isinstance(result, dict) and isinstance(result.get("text"), str):
            self._on_final(result["text"].strip(), result.get("result"))
        elif isinstance(result, dict) and isinstance(result.get("partial"), str):
            self._on_partial(result["partial"].strip())
        else:
            keys = sorted(result) if isinstance(result, dict) else []
            # the keys only: the values may hold what the caller said
            logger.warning(
                "unknown vosk server message skipped",
                extra={"type": type(result).__name__, "keys": keys},
            )

    def _on_partial(self, text: str) -> None:
        if not text or text == self._last_partial:
            return
        self._last_partial = text
        self._start_speech()
        self._send(stt.SpeechEventType.INTERIM_TRANSCRIPT, self._speech_data(text, None))

    def _on_final(self, text: str, words: Any) -> None:
        self._last_partial = ""
        if text:
            self._start_speech()
            self._send(stt.SpeechEventType.FINAL_TRANSCRIPT, self._speech_data(text, words))
        if self._speaking:
            self._speaking = False
            self._send(stt.SpeechEventType.END_OF_SPEECH)

    def _start_speech(self) -> None:
        if not self._speaking:
            self._speaking = True
            self._send(stt.SpeechEventType.START_OF_SPEECH)

    def _speech_data(self, text: str, words: Any) -> stt.SpeechData:
        data = stt.SpeechData(language=self._opts.language, text=text)
        if isinstance(words, list) and words and all(isinstance(w, dict) for w in words):
            offset = self.start_time_offset
            data.start_time = float(words[0].get("start", 0.0)) + offset
            data.end_time = float(words[-1].get("end", 0.0)) + offset
            data.confidence = sum(float(w.get("conf", 0.0)) for w in words) / len(words)
        return data

    def _send(self, type: stt.SpeechEventType, data: stt.SpeechData | None = None) -> None:
        self._event_ch.send_nowait(
            stt.SpeechEvent(
                type=type,
                request_id=self._request_id,
                alternatives=[data] if data is not None else [],
            )
        )
