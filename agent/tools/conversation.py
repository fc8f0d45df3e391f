"""The caller's side of a conversation, shared by ``simulate`` (a fake job with file I/O)
and ``call`` (a real LiveKit room): when the caller speaks its next turn, when the agent
has answered, and how long the agent took to answer. Each command feeds an ``AgentWatch``
from what it can see of the agent (the session's events; the agent's room attributes);
the turn logic on top of it is this one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from livekit import rtc

from agent.log import logger
from agent.tools.audio_files import CallerAudioInput, CallerTurn, Timeline

TURN_TIMEOUT = 20.0
"""Longest a caller waits for the agent to answer before speaking again anyway."""
CALLER_PAUSE = 0.3
"""A caller's reaction time once the agent is done speaking."""
SILENCE_GAP = 2.5
"""Silence between ``--say`` turns when the caller does not wait for the agent."""
GREETING_GRACE = 2.0
"""How long a listening agent may take to start its greeting."""
MATCH_SLACK = 0.05
"""An agent turn answers the last caller turn that ended before it, give or take this."""


class AgentWatch:
    """What the caller knows of the agent: its state, and when it started speaking."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.state = "initializing"
        self.spoke_at: list[float] = []
        """Timeline seconds each time the agent started speaking."""
        self.changed = asyncio.Event()
        """Set on any news of the agent, so waiters re-check at once."""

    def note_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if state == "speaking":
                self.spoke_at.append(self.timeline.now())
        self.changed.set()

    async def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds, re-checked on every change (and every 0.1 s);
        False when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.1))
            except asyncio.TimeoutError:
                pass
        return True

    def started_since(self, t: float) -> bool:
        """The agent started speaking after timeline second ``t``."""
        return any(s > t for s in self.spoke_at)

    def answered_since(self, t: float) -> bool:
        """The agent spoke after timeline second ``t`` and is listening again."""
        return self.state in ("listening", "idle") and self.started_since(t)

    async def greets(self) -> bool:
        """Whether the agent opens with a greeting. A caller who cannot see the org's
        persona watches the agent's state: once listening, a greeting starts within a
        moment. A side that knows the persona says so instead."""
        await self.wait(lambda: self.state != "initializing", GREETING_GRACE * 4)
        return await self.wait(lambda: bool(self.spoke_at), GREETING_GRACE)


def paced_caller(
    caller_audio: list[rtc.AudioFrame],
    agent: AgentWatch,
    *,
    wait_for_agent: bool = True,
    turn_timeout: float = TURN_TIMEOUT,
    barge_in: float | None = None,
) -> CallerAudioInput:
    """The caller's microphone: one turn per frame of ``caller_audio``. With
    ``wait_for_agent`` each turn waits for the agent to answer the one before (bounded by
    ``turn_timeout``; the first waits for a greeting, if any), else ``SILENCE_GAP`` seconds
    pass between turns. With ``barge_in`` the caller speaks again that many seconds after
    the agent started answering, cutting it short."""

    async def before_turn(index: int) -> None:
        since = caller.turns[index - 1].speech_end if index else 0.0
        if barge_in is not None and index:
            if not await agent.wait(lambda: agent.started_since(since), turn_timeout):
                logger.warning("agent did not start answering", extra={"turn": index})
            await asyncio.sleep(barge_in)
        elif wait_for_agent and (index or await agent.greets()):
            if not await agent.wait(lambda: agent.answered_since(since), turn_timeout):
                logger.warning("agent did not answer in time", extra={"turn": index})
            await asyncio.sleep(CALLER_PAUSE)
        else:
            await asyncio.sleep(SILENCE_GAP if index else CALLER_PAUSE)

    caller = CallerAudioInput(caller_audio, timeline=agent.timeline, before_turn=before_turn)
    return caller


async def answered_last(caller: CallerAudioInput, agent: AgentWatch, timeout: float) -> bool:
    """Once the caller said everything: whether the agent answered the last turn within
    ``timeout``."""
    await caller.done.wait()
    last = caller.turns[-1].speech_end if caller.turns else 0.0
    return await agent.wait(lambda: agent.answered_since(last), timeout)


class VoiceToVoice:
    """Seconds from the end of the caller's speech to the start of the agent's audio, the
    latency a caller feels. Each caller turn is answered once: by the first agent turn
    after it, timed to the first agent audio after it."""

    def __init__(self, caller_turns: list[CallerTurn], agent_audio_starts: list[float]) -> None:
        self._caller_turns = caller_turns
        self._starts = sorted(agent_audio_starts)
        self._answered: set[int] = set()

    def of_reply(self, at: float) -> dict[str, float]:
        """``{"voice_to_voice": seconds}`` for an agent turn that began at timeline second
        ``at``, or ``{}`` when it answers no caller turn (a greeting, a second reply)."""
        before = [c for c in self._caller_turns if c.speech_end <= at + MATCH_SLACK]
        if not before or before[-1].index in self._answered:
            return {}
        caller = before[-1]
        self._answered.add(caller.index)
        first = next((s for s in self._starts if s >= caller.speech_end), None)
        if first is None:
            return {}
        return {"voice_to_voice": round(first - caller.speech_end, 3)}


__all__ = [
    "CALLER_PAUSE",
    "SILENCE_GAP",
    "TURN_TIMEOUT",
    "AgentWatch",
    "VoiceToVoice",
    "answered_last",
    "paced_caller",
]
