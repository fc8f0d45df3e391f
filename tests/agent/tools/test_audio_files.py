"""The simulated call's audio sink pauses and resumes like a room's output: livekit holds a
reply there while the caller may be interrupting, and resumes it or cuts it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice.io import PlaybackFinishedEvent

from agent.tools.audio_files import FRAME_SECONDS, SAMPLE_RATE, RecordingAudioOutput, Timeline

FRAMES = 20  # 0.4 s


def tone() -> rtc.AudioFrame:
    n = int(SAMPLE_RATE * FRAME_SECONDS)
    pcm = (3000 * np.sin(np.arange(n) / 8)).astype(np.int16)
    return rtc.AudioFrame(pcm.tobytes(), SAMPLE_RATE, 1, n)


async def play(out: RecordingAudioOutput) -> None:
    for _ in range(FRAMES):
        await out.capture_frame(tone())
    out.flush()


async def finished(out: RecordingAudioOutput) -> PlaybackFinishedEvent:
    done: asyncio.Future[PlaybackFinishedEvent] = asyncio.get_running_loop().create_future()
    out.on("playback_finished", lambda ev: done.done() or done.set_result(ev))
    return await asyncio.wait_for(done, 10)


async def test_a_paused_reply_resumes_where_it_stopped() -> None:
    out = RecordingAudioOutput(timeline=Timeline())
    assert out.can_pause
    ended = asyncio.ensure_future(finished(out))
    feeding = asyncio.ensure_future(play(out))
    await asyncio.sleep(0.1)
    out.pause()
    await asyncio.sleep(0.3)  # the hold
    out.resume()
    await asyncio.wait_for(feeding, 10)
    ev = await ended
    assert not ev.interrupted
    assert ev.playback_position == pytest.approx(FRAMES * FRAME_SECONDS, abs=1e-6)
    starts = [t for t, _ in out.segments[0].frames]
    # the hold is silence in the recording, not dropped audio: one gap of at least 0.3 s
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == FRAMES
    assert max(gaps) >= 0.3 and sorted(gaps)[-2] < 0.1


async def test_a_paused_reply_cut_by_the_caller_counts_only_what_played() -> None:
    out = RecordingAudioOutput(timeline=Timeline())
    ended = asyncio.ensure_future(finished(out))
    feeding = asyncio.ensure_future(play(out))
    await asyncio.sleep(0.1)
    out.pause()
    paused_at = out._paused_at
    await asyncio.sleep(0.2)
    out.clear_buffer()  # the caller did interrupt
    feeding.cancel()  # livekit stops forwarding the reply
    out.flush()
    ev = await ended
    assert ev.interrupted
    # what played before the pause, not the time the reply sat paused
    assert 0.05 < ev.playback_position < 0.2
    assert paused_at is not None
    assert all(t < paused_at for t, _ in out.segments[0].frames)
