"""File-based audio I/O for an ``AgentSession`` without a room (``python -m agent simulate``).

``CallerAudioInput`` plays caller turns in real time as 20 ms frames, with silence in between
(a real microphone never stops sending), and waits on a hook before each turn so the
caller can let the agent answer first. ``RecordingAudioOutput`` is a sink that plays in
real time like a room track: a frame is "played" once its duration has passed, playback
started/finished are reported per segment, and ``clear_buffer`` drops what has not played.
Both stamp audio on one ``Timeline`` so the call can be written as one stereo WAV.
"""

from __future__ import annotations

import asyncio
import logging
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from livekit import rtc
from livekit.agents import io, utils

from plugins.audio import to_mono

SAMPLE_RATE = 24000
"""One rate for the whole simulated call: caller frames, agent frames and the WAV file."""

FRAME_SECONDS = 0.02
SINK_QUEUE_SECONDS = 0.2
"""How far ahead of the playhead the sink accepts audio (a room's AudioSource queues 200 ms)."""

SPEECH_RMS = 500.0
"""int16 RMS above which a caller frame counts as speech (silence and Piper's tails are far
below)."""

BeforeTurn = Callable[[int], Awaitable[None]]
Pcm = npt.NDArray[np.int16]
"""int16 mono samples."""


class Timeline:
    """Seconds since the call started, shared by the input and the output."""

    def __init__(self) -> None:
        self.origin = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.origin


class _NoDecoderTraceback(logging.Filter):
    """livekit's decoder logs a traceback for a file it cannot decode; ``load_wav`` says it
    in one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "error decoding audio"


async def load_wav(path: str | Path, sample_rate: int = SAMPLE_RATE) -> rtc.AudioFrame:
    """Decode an audio file (any rate, mono or stereo) into one mono frame at ``sample_rate``."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such file")
    quiet = _NoDecoderTraceback()
    livekit_log = logging.getLogger("livekit.agents")
    livekit_log.addFilter(quiet)
    try:
        frames = [f async for f in utils.audio.audio_frames_from_file(str(path), sample_rate, 1)]
    finally:
        livekit_log.removeFilter(quiet)
    if not frames:
        raise ValueError(f"{path}: no audio in it (give a WAV, MP3 or other audio file)")
    return rtc.combine_audio_frames(frames)


def rms(pcm: Pcm) -> float:
    if not len(pcm):
        return 0.0
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


@dataclass
class CallerTurn:
    index: int
    started_at: float
    """Timeline seconds when the turn's first frame was sent."""
    speech_end: float
    """Timeline seconds when the last frame with speech energy ended."""


class CallerAudioInput(io.AudioInput):
    """Caller turns played in real time, silence in between and after the last turn."""

    def __init__(
        self,
        turns: list[rtc.AudioFrame],
        *,
        timeline: Timeline,
        before_turn: BeforeTurn | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__(label="CallerFile")
        self._turns = [to_mono(t, sample_rate) for t in turns]
        self._timeline = timeline
        self._before_turn = before_turn
        self._rate = sample_rate
        self._samples = int(sample_rate * FRAME_SECONDS)
        self._sent = 0  # frames sent so far
        self._start: float | None = None  # timeline seconds of the first frame
        self._turn = 0  # next turn to play
        self._pcm: Pcm | None = None
        self._pos = 0
        self._ready: asyncio.Task[None] | None = None
        self._recorded: list[bytes] = []
        self.turns: list[CallerTurn] = []
        self.done = asyncio.Event()
        """Set once the last turn has been played."""

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def start(self) -> float:
        return self._start or 0.0

    def recording(self) -> Pcm:
        """Everything sent so far, as int16 mono at ``sample_rate``."""
        return np.frombuffer(b"".join(self._recorded), dtype=np.int16)

    async def __anext__(self) -> rtc.AudioFrame:
        if self._start is None:
            self._start = self._timeline.now()
        # an absolute schedule: a late loop catches up instead of drifting
        due = self._start + self._sent * FRAME_SECONDS
        delay = due - self._timeline.now()
        if delay > 0:
            await asyncio.sleep(delay)
        pcm = self._next_pcm(due)
        self._sent += 1
        data = pcm.tobytes()
        self._recorded.append(data)
        return rtc.AudioFrame(data, self._rate, 1, self._samples)

    def _next_pcm(self, at: float) -> Pcm:
        if self._pcm is None and self._turn < len(self._turns):
            if self._ready is None:
                self._ready = asyncio.create_task(self._wait_before(self._turn))
            if self._ready.done():
                self._ready = None
                self._pcm = np.frombuffer(self._turns[self._turn].data, dtype=np.int16)
                self._pos = 0
                self.turns.append(CallerTurn(self._turn, at, at))
        if self._pcm is None:
            return np.zeros(self._samples, dtype=np.int16)

        chunk = self._pcm[self._pos : self._pos + self._samples]
        self._pos += self._samples
        if len(chunk) < self._samples:
            chunk = np.pad(chunk, (0, self._samples - len(chunk)))
        if rms(chunk) > SPEECH_RMS:
            self.turns[-1].speech_end = at + FRAME_SECONDS
        if self._pos >= len(self._pcm):
            self._pcm = None
            self._turn += 1
            if self._turn >= len(self._turns):
                self.done.set()
        return chunk

    async def _wait_before(self, index: int) -> None:
        if self._before_turn is not None:
            await self._before_turn(index)

    async def aclose(self) -> None:
        if self._ready is not None:
            await utils.aio.cancel_and_wait(self._ready)


@dataclass
class PlaybackSegment:
    started_at: float
    """Timeline seconds when the first frame of the segment started playing."""
    duration: float = 0.0
    interrupted: bool = False
    frames: list[tuple[float, rtc.AudioFrame]] = field(default_factory=list)


class RecordingAudioOutput(io.AudioOutput):
    """An audio sink that plays in real time and records what was played. It can pause,
    as a room's output can: livekit then holds a reply while the caller may be interrupting
    (``resume_false_interruption``) and resumes it if the caller said nothing after all."""

    def __init__(self, *, timeline: Timeline, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__(
            label="FileRecorder",
            next_in_chain=None,
            sample_rate=sample_rate,
            capabilities=io.AudioOutputCapabilities(pause=True),
        )
        self._timeline = timeline
        self._play_until = 0.0  # timeline seconds when the queued audio ends
        self._pushed = 0.0  # seconds captured in the current segment
        self._segment: PlaybackSegment | None = None
        self._interrupted = False
        self._cut: float | None = None  # where clear_buffer stopped the playhead
        self._paused_at: float | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._wake = asyncio.Event()
        self._flush_task: asyncio.Task[None] | None = None
        self.segments: list[PlaybackSegment] = []

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        if self._flush_task and not self._flush_task.done():
            await self._flush_task  # the previous segment is still playing out
        await self._resumed.wait()  # a paused output takes nothing more, like a room's
        await super().capture_frame(frame)

        now = self._timeline.now()
        start = max(now, self._play_until)
        if self._segment is None:
            self._segment = PlaybackSegment(started_at=start)
            self.segments.append(self._segment)
            self._interrupted = False
            self._cut = None
            self.on_playback_started(created_at=time.time())
        self._segment.frames.append((start, frame))
        self._pushed += frame.duration
        self._play_until = start + frame.duration

        # back-pressure like a room track: accept at most SINK_QUEUE_SECONDS ahead
        ahead = self._play_until - now - SINK_QUEUE_SECONDS
        if ahead > 0:
            await self._sleep(ahead)

    def flush(self) -> None:
        super().flush()
        if self._segment is None:
            return
        if self._flush_task and not self._flush_task.done():
            self._flush_task.cancel()
        self._flush_task = asyncio.create_task(self._wait_for_playout(self._segment))

    def pause(self) -> None:
        super().pause()
        if self._paused_at is None:
            self._paused_at = self._timeline.now()
            self._resumed.clear()
            self._wake.set()

    def resume(self) -> None:
        super().resume()
        if self._paused_at is None:
            return
        now = self._timeline.now()
        held = now - self._paused_at
        if self._segment is not None:
            # what had not started playing at the pause starts that much later
            self._segment.frames = [
                (t + held if t >= self._paused_at else t, f) for t, f in self._segment.frames
            ]
        if self._play_until > self._paused_at:
            self._play_until += held
        self._paused_at = None
        self._resumed.set()
        self._wake.set()

    def clear_buffer(self) -> None:
        segment = self._segment
        if segment is None:
            return
        # audio that had not started playing (or was held by a pause) never reached the ear
        cut = self._timeline.now() if self._paused_at is None else self._paused_at
        segment.frames = [(t, f) for t, f in segment.frames if t < cut]
        self._play_until = min(self._play_until, cut)
        self._cut = cut
        self._interrupted = True
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early on ``clear_buffer``, ``pause`` and ``resume``."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _wait_for_playout(self, segment: PlaybackSegment) -> None:
        while not self._interrupted:
            if self._paused_at is not None:
                await self._sleep(60.0)  # until resumed or cleared
                continue
            remaining = self._play_until - self._timeline.now()
            if remaining <= 0:
                break
            await self._sleep(remaining)

        played = self._pushed
        if self._interrupted and self._cut is not None:
            played = min(_played_before(segment.frames, self._cut), self._pushed)
        segment.duration = played
        segment.interrupted = self._interrupted
        self._segment = None
        self._pushed = 0.0
        self._interrupted = False
        self._cut = None
        self.on_playback_finished(playback_position=played, interrupted=segment.interrupted)

    async def aclose(self) -> None:
        if self._flush_task is not None:
            await utils.aio.cancel_and_wait(self._flush_task)

    def recording(self, length: int, origin: float = 0.0) -> Pcm:
        """What was played, as int16 mono at ``sample_rate`` placed on the timeline from
        ``origin``, ``length`` samples long (at least as long as the audio)."""
        played = [item for segment in self.segments for item in segment.frames]
        return place_frames(played, origin, length, self.sample_rate or SAMPLE_RATE)


def _played_before(frames: list[tuple[float, rtc.AudioFrame]], cut: float) -> float:
    """Seconds of ``frames`` (each with the timeline second it started) played before
    ``cut``: a pause leaves a gap between frames, which does not count."""
    return sum(min(max(cut - t, 0.0), f.duration) for t, f in frames)


def place_frames(
    frames: list[tuple[float, rtc.AudioFrame]], origin: float, length: int, rate: int
) -> Pcm:
    """Frames that started at the given timeline seconds, as one int16 mono track at
    ``rate`` starting at ``origin``, ``length`` samples long (at least as long as the
    audio)."""
    placed: list[tuple[int, Pcm]] = []
    end = length
    for at, frame in frames:
        pcm = np.frombuffer(to_mono(frame, rate).data, dtype=np.int16)
        offset = max(0, round((at - origin) * rate))
        placed.append((offset, pcm))
        end = max(end, offset + len(pcm))
    out = np.zeros(end, dtype=np.int16)
    for offset, pcm in placed:
        out[offset : offset + len(pcm)] = pcm
    return out


def write_stereo_wav(
    path: str | Path, left: Pcm, right: Pcm, sample_rate: int = SAMPLE_RATE
) -> None:
    """Two int16 mono tracks as one stereo WAV (left = caller, right = agent)."""
    n = max(len(left), len(right))
    stereo = np.zeros((n, 2), dtype=np.int16)
    stereo[: len(left), 0] = left
    stereo[: len(right), 1] = right
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(stereo.tobytes())
