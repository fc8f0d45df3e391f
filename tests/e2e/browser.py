"""Debian's Chromium, headless, driven by Playwright, with a fake microphone that plays a
WAV file once: how the browser tests (and the bench) act as a person at the web caller.

Without ``chromium`` (or Playwright) the tests skip with one line saying how to install
it; ``E2E_REQUIRED=1`` (``.ci/run``, which installs it) turns that into a failure."""

from __future__ import annotations

import os
import shutil
import wave
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.tools.audio_files import SAMPLE_RATE
from plugins.audio import to_mono

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
FAKE_MIC_RATE = 48000
"""Chromium's fake capture reads 16-bit PCM WAV files; 48 kHz mono is what it captures."""
PAGE_TIMEOUT_MS = 15_000
"""Playwright's default for one action on a page."""


def browser_missing() -> str | None:
    """Why no browser can run here (no Chromium, no Playwright), or None."""
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[dev]'"
    return None


def require_browser() -> None:
    """Skip (or fail, under ``E2E_REQUIRED=1``) without Chromium and Playwright."""
    problem = browser_missing()
    if problem:
        if os.environ.get("E2E_REQUIRED") == "1":
            pytest.fail(problem)
        pytest.skip(problem)


def write_fake_mic(path: Path, turns: Sequence[Any], *, lead_s: float, gap_s: float) -> Path:
    """The caller's microphone as Chromium plays it: ``lead_s`` of silence (the agent
    joins and greets meanwhile), then each turn (``rtc.AudioFrame``) followed by ``gap_s``
    of silence, 48 kHz mono 16-bit."""
    parts = [np.zeros(int(lead_s * FAKE_MIC_RATE), dtype=np.int16)]
    for frame in turns:
        mono = to_mono(frame, FAKE_MIC_RATE)
        parts.append(np.frombuffer(mono.data, dtype=np.int16))
        parts.append(np.zeros(int(gap_s * FAKE_MIC_RATE), dtype=np.int16))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(FAKE_MIC_RATE)
        w.writeframes(np.concatenate(parts).tobytes())
    return path


@asynccontextmanager
async def browser(fake_mic: Path | None, *, microphone: bool = True) -> AsyncIterator[Any]:
    """A headless Chromium page. ``microphone=False``: every permission prompt is refused,
    as a person who clicks "Block" would."""
    from playwright.async_api import async_playwright

    args = ["--autoplay-policy=no-user-gesture-required", "--use-fake-device-for-media-stream"]
    if microphone:
        args.append("--use-fake-ui-for-media-stream")
    if fake_mic is not None:
        args.append(f"--use-file-for-fake-audio-capture={fake_mic}%noloop")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args, timeout=30_000
        )
        try:
            context = await chromium.new_context(viewport={"width": 1000, "height": 820})
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            yield await context.new_page()
        finally:
            await chromium.close()


def received_audio(data: dict[str, Any]) -> tuple[np.ndarray, int]:  # type: ignore[type-arg]
    """``window.voiceAgent.agentAudio()`` → (int16 PCM at ``SAMPLE_RATE``, rate)."""
    import base64

    from livekit import rtc

    pcm = np.frombuffer(base64.b64decode(data["samples"]), dtype=np.int16)
    frame = to_mono(rtc.AudioFrame(pcm.tobytes(), int(data["rate"]), 1, len(pcm)), SAMPLE_RATE)
    return np.frombuffer(frame.data, dtype=np.int16), SAMPLE_RATE
