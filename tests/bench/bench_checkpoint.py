"""What write-ahead usage costs a call: spool writes per call and CPU per call-minute.

    .venv/bin/python -m tests.bench.bench_checkpoint [--calls 4] [--minutes 10]
        [--interval 5] [--turns 8] [--speed 50]

Runs ``--calls`` concurrent calls of ``--minutes`` each through the worker's own write-ahead
path (``get_usage().live`` on a real ``AgentSession``, the ``SpoolWriter`` thread, the
SQLite spool with ``synchronous=FULL`` in a temporary directory), each checkpointing every
``--interval`` seconds and at ``--turns`` turn ends per minute (a turn end is a caller's or
the agent's item), with a call's real usage shape (three providers, a failover) priced and
serialized as ``Call._usage_so_far`` does. Time runs ``--speed`` times faster than real
time, so a checkpoint's CPU is the same and the figures scale back to real minutes. Not a
test: a figure for the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession, ConversationItemAddedEvent, llm
from livekit.agents.metrics.usage import LLMModelUsage, STTModelUsage, TTSModelUsage

from agent.worker.usage import CallRecord, UsageSender, UsageSettings, usage_lines
from agent.worker.usage.spool import UsageSpool
from providers.chains import Failover
from providers.types import ProviderKind
from tests.support.usage_writer import CONFIGS


def counted() -> list[Any]:
    return [
        STTModelUsage(provider="Deepgram", model="nova-3", audio_duration=61.2),
        LLMModelUsage(
            provider="api.openai.com", model="gpt-4.1-mini", input_tokens=5120, output_tokens=410
        ),
        TTSModelUsage(provider="piper", model="en_US-joe-medium", characters_count=1650),
    ]


class Call:
    """A call's usage side, shaped as ``agent.worker.call.Call``'s."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.started_at = time.time()
        self.failovers = [Failover(ProviderKind.TTS, "elevenlabs", "piper", "APIStatusError")]
        self.on_loop = 0.0
        self.snapshots = 0

    def usage_so_far(self) -> Any:
        t0 = time.thread_time()
        at = time.time()
        used = [u.model_copy(deep=True) for u in counted()]  # what session.usage costs
        failovers = list(self.failovers)
        self.on_loop += time.thread_time() - t0
        self.snapshots += 1

        def build() -> dict[str, Any]:
            lines = usage_lines(used, CONFIGS, org_id="acme")  # type: ignore[arg-type]
            return CallRecord(
                self.call_id, "acme", self.started_at, at, "backend", "17", "priority",
                lines, failovers, room="call-42", completion="recovered",
            ).to_json()  # fmt: skip

        return build


async def run_call(sender: UsageSender, call: Call, seconds: float, turn_every: float) -> None:
    session: AgentSession[None] = AgentSession()
    live = sender.live(call.call_id, call.usage_so_far)
    live.start(session)
    item = llm.ChatMessage(role="assistant", content=["We open at nine."])
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        await asyncio.sleep(turn_every)
        session.emit("conversation_item_added", ConversationItemAddedEvent(item=item))
    live.stop()
    await sender.submit(CallRecord(call.call_id, "acme", call.started_at, time.time(),
                                   "backend", "17", "priority"))  # fmt: skip


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = UsageSettings(
            backend_url="http://127.0.0.1:9",  # a spool, never sent (no sender thread)
            spool_dir=Path(tmp),
            checkpoint_seconds=args.interval / args.speed,
        )
        sender = UsageSender(settings, UsageSpool(Path(tmp)))
        assert sender.writer is not None
        calls = [Call(f"c{i}") for i in range(args.calls)]
        seconds = args.minutes * 60 / args.speed
        turn_every = 60 / args.turns / args.speed
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.gather(*(run_call(sender, c, seconds, turn_every) for c in calls))
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        writes = sender.writer.writes
    call_minutes = args.calls * args.minutes
    snapshots = sum(c.snapshots for c in calls)
    per_minute = args.minutes * (60 / args.interval + args.turns)
    return {
        "calls": args.calls,
        "minutes_per_call": args.minutes,
        "interval_s": args.interval,
        "turn_ends_per_minute": args.turns,
        "speed": args.speed,
        "checkpoints_per_call_real_time": round(per_minute + 2),  # + the open and the close
        "snapshots_per_call_measured": round(snapshots / args.calls, 1),
        "spool_writes_per_call_measured": round(writes / args.calls, 1),
        "cpu_ms_per_call_minute": round(cpu * 1000 / call_minutes, 2),
        "cpu_ms_per_spool_write": round(cpu * 1000 / max(1, writes), 3),
        "loop_us_per_snapshot": round(sum(c.on_loop for c in calls) * 1e6 / max(1, snapshots), 1),
        "wall_s": round(wall, 2),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m tests.bench.bench_checkpoint")
    p.add_argument("--calls", type=int, default=4)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--turns", type=float, default=8.0)
    p.add_argument("--speed", type=float, default=50.0)
    print(json.dumps(asyncio.run(main(p.parse_args())), indent=2))
