"""What served each turn of a room call, told to the room: one JSON text stream per turn on
``TOPIC_TURN``, so a client (the local web caller, an app's own page) can show beside the
transcript which STT, LLM and TTS answered and which providers failed over meanwhile.

It names providers and error classes only (``Failover.reason``: class and HTTP status),
never an org's options, endpoints or keys; the org is not in it either."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from livekit import rtc
from livekit.agents import ConversationItemAddedEvent, llm

from agent.log import logger
from agent.worker.served import ServedBy, scripted
from providers.chains import Chains, Failover

TOPIC_TURN = "voice_agent.turn"
"""The text stream topic of the turn feed. Each message is one object:
``{"role": "user"|"assistant", "text", "providers": {"stt", "llm", "tts"}, "scripted",
"interrupted", "failovers": [{"kind", "from", "to", "error", "at"}], "latency": {"e2e"}}``;
``failovers`` holds the switches since the previous message."""


def failover_json(f: Failover) -> dict[str, Any]:
    at = dt.datetime.fromtimestamp(f.at, dt.timezone.utc).isoformat(timespec="milliseconds")
    return {
        "kind": f.kind.value,
        "from": f.from_provider,
        "to": f.to_provider,
        "error": f.reason,
        "at": at,
    }


class TurnFeed:
    """Publishes one message per conversation item of ``session`` to ``room``."""

    def __init__(self, room: rtc.Room, session: Any, chains: Chains) -> None:
        self._room = room
        self._chains = chains
        self._served = ServedBy(chains)
        self._told = 0
        """Failovers already published."""
        self._tasks: set[asyncio.Task[None]] = set()
        session.on("conversation_item_added", self._on_item)

    def message(self, item: llm.ChatMessage) -> dict[str, Any]:
        events = self._chains.failovers.events
        new, self._told = events[self._told :], len(events)
        providers = self._served.for_item(item.role)
        is_scripted = scripted(item)
        if is_scripted:
            providers = {k: v for k, v in providers.items() if k == "tts"}
        metrics = item.metrics or {}
        latency = {}
        if "e2e_latency" in metrics:
            latency["e2e"] = round(float(metrics["e2e_latency"]), 3)
        return {
            "role": item.role,
            "text": item.text_content or "",
            "providers": providers,
            "scripted": is_scripted,
            "interrupted": bool(item.interrupted),
            "failovers": [failover_json(f) for f in new],
            "latency": latency,
        }

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
            return
        task = asyncio.ensure_future(self._send(json.dumps(self.message(item))))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, text: str) -> None:
        try:
            await self._room.local_participant.send_text(text, topic=TOPIC_TURN)
        except Exception as e:  # the room may be gone at hang-up; the turn is in the log
            logger.debug("could not publish a turn", extra={"error": type(e).__name__})
