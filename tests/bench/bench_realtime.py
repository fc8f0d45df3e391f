"""Speech-to-speech figures: voice to voice on a realtime model against the pipeline on the
same utterances, and the silence each way a realtime model fails adds before the caller
hears a reply, our chain beside livekit's ``RealtimeModelFallbackAdapter`` alone.

Every provider is a wire-format stand-in on 127.0.0.1 driven by the real livekit plugin
(``tests.support.realtime``), through ``simulate``: the worker's own call path. The
Realtime stand-in thinks for a fixed ``PROCESSING`` seconds before its first audio (Piper's
synthesis included); the ``…_minus_processing`` row takes it off, leaving what the
realtime path itself costs (its server VAD's ``silence``, livekit's engine, playout).

Added silence = voice to voice of the reply to the failed turn − the same turn when
nothing fails (a connect failure: − the pipeline alone, since the call starts there; a
failure mid-call: − the realtime model's healthy reply to that turn). One call per case
(each case is a whole call of two turns, ~10 s); figures, not asserts.

livekit's adapter alone (no pipeline behind it, no first-audio budget): a realtime model
that fails at connect is swapped for the next one as here (the realtime → realtime rows
measure that path, which is livekit's); one that hangs before its first audio is never
swapped — livekit has no clock for it — so the caller waits until they speak again (the
``livekit_adapter_hang`` row is the cap of this bench, not a measurement of a switch).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.tools.caller_audio import say
from agent.tools.transcript import CallResult
from agent.worker.settings import Settings
from providers.chains import get_health
from tests.bench.bench_voice import env_overrides
from tests.standins.faults import Fault
from tests.support.realtime import FIRST, SECOND, RealtimeRig, fault_on_turn, realtime_rig

PROCESSING = 0.4
"""Seconds the Realtime stand-in takes to its first audio, fixed (subtracted below)."""
BUDGET = 2.0
"""``REALTIME_FIRST_AUDIO_TIMEOUT``, the product's default."""
TURN_TIMEOUT = 15.0
Row = dict[str, Any]


def _row(name: str, value: float, unit: str = "s", target: str | None = None) -> Row:
    row: Row = {"name": name, "value": round(value, 4), "unit": unit}
    if target:
        row["target"] = target
    return row


def _replies(result: CallResult) -> list[float]:
    """Voice to voice of the reply to each of the two caller turns; a turn left without
    one counts as the bench's cap (``TURN_TIMEOUT``), never as another turn's figure."""
    replies = [
        t.latency["voice_to_voice"]
        for t in result.turns
        if t.role == "assistant" and "voice_to_voice" in t.latency and t.text
    ]
    return (replies + [TURN_TIMEOUT, TURN_TIMEOUT])[:2]


async def _case(
    workdir: Path,
    *,
    realtime: int = 1,
    setup: Callable[[RealtimeRig], Any] | None = None,
    heard: tuple[str, ...] = (SECOND,),
) -> CallResult:
    get_health().reset()
    with env_overrides({"REALTIME_FIRST_AUDIO_TIMEOUT": str(BUDGET)}):
        settings = Settings.from_env(os.environ)
    async with realtime_rig(settings, heard_by_pipeline=heard, processing=PROCESSING) as rig:
        rig.add_org("bench", realtime=realtime)
        if setup is not None:
            await setup(rig)
        caller = await say([FIRST, SECOND])
        return await rig.call("bench", caller, workdir / "rt.wav", turn_timeout=TURN_TIMEOUT)


def _at_connect(fault: Fault) -> Callable[[RealtimeRig], Any]:
    async def setup(rig: RealtimeRig) -> None:
        await rig.rt.set_fault(fault)

    return setup


def _on_turn_2(fault: Fault) -> Callable[[RealtimeRig], Any]:
    async def setup(rig: RealtimeRig) -> None:
        fault_on_turn(rig.rt, fault, 2)

    return setup


async def _all(workdir: Path) -> list[Row]:
    rows: list[Row] = []
    healthy = _replies(await _case(workdir))
    pipeline = _replies(await _case(workdir, realtime=0, heard=(FIRST, SECOND)))
    rt_median, pl_median = statistics.median(healthy), statistics.median(pipeline)
    rows += [
        _row("realtime_voice_to_voice_median", rt_median),
        _row("realtime_voice_to_voice_minus_processing_median", rt_median - PROCESSING),
        _row("pipeline_voice_to_voice_median", pl_median),
    ]
    for name, fault in (
        ("refused", Fault.REFUSE),
        ("http_401", Fault.STATUS_401),
        ("http_500", Fault.STATUS_500),
    ):
        replies = _replies(await _case(workdir, setup=_at_connect(fault), heard=(FIRST, SECOND)))
        rows.append(
            _row(f"added_silence_at_connect_{name}", replies[0] - pipeline[0], target="< 0.3 s")
        )
    for name, fault, target in (
        ("hang_before_first_audio", Fault.HANG, "≤ 2 s"),
        ("drop_mid_reply", Fault.DROP_MID_STREAM, "< 0.3 s"),
    ):
        replies = _replies(await _case(workdir, setup=_on_turn_2(fault)))
        rows.append(_row(f"added_silence_{name}", replies[-1] - healthy[-1], target=target))
    # realtime → realtime (livekit's adapter swaps; our budget still clocks the hang)
    for name, setup in (
        ("http_500_at_connect", _at_connect(Fault.STATUS_500)),
        ("hang_before_first_audio", _on_turn_2(Fault.HANG)),
    ):
        replies = _replies(await _case(workdir, realtime=2, setup=setup))
        base = healthy[0] if "connect" in name else healthy[-1]
        value = (replies[0] if "connect" in name else replies[-1]) - base
        rows.append(_row(f"realtime_to_realtime_added_silence_{name}", value))
    rows.append(_row("livekit_adapter_hang_added_silence_cap", TURN_TIMEOUT))
    return rows


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_all(Path(tmp)))


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row))
