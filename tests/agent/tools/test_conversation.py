"""The turn logic ``simulate`` and ``call`` share: when the agent has answered, and the
voice-to-voice latency matched to the caller turn a reply answers."""

from __future__ import annotations

import asyncio

from agent.tools.audio_files import CallerTurn, Timeline
from agent.tools.conversation import AgentWatch, VoiceToVoice


def test_each_caller_turn_is_answered_once_timed_to_the_first_audio_after_it() -> None:
    callers = [CallerTurn(0, 1.0, 2.0), CallerTurn(1, 5.0, 6.0)]
    v2v = VoiceToVoice(callers, [7.1, 0.5, 2.8, 3.5])  # any order
    assert v2v.of_reply(0.4) == {}  # a greeting answers no caller turn
    assert v2v.of_reply(2.7) == {"voice_to_voice": 0.8}
    assert v2v.of_reply(3.4) == {}  # a second reply to the same turn
    # a reply stamped a moment before the caller's speech end still answers it
    assert v2v.of_reply(5.96) == {"voice_to_voice": 1.1}


def test_a_reply_with_no_audio_after_the_caller_has_no_latency() -> None:
    v2v = VoiceToVoice([CallerTurn(0, 1.0, 2.0)], [0.5])
    assert v2v.of_reply(3.0) == {}


async def test_the_agent_answered_once_it_spoke_and_listens_again() -> None:
    agent = AgentWatch(Timeline())
    since = agent.timeline.now()
    waiting = asyncio.ensure_future(agent.wait(lambda: agent.answered_since(since), 5.0))
    await asyncio.sleep(0)
    agent.note_state("listening")
    agent.note_state("thinking")
    agent.note_state("speaking")
    assert agent.started_since(since) and not agent.answered_since(since)
    agent.note_state("speaking")  # no news: one start of speech
    assert len(agent.spoke_at) == 1
    agent.note_state("listening")
    assert await asyncio.wait_for(waiting, 1.0)  # woken by the change, not the 5 s bound
    assert not agent.answered_since(agent.spoke_at[0])


async def test_waiting_gives_up_at_the_timeout() -> None:
    agent = AgentWatch(Timeline())
    assert not await agent.wait(lambda: agent.answered_since(0.0), 0.05)
