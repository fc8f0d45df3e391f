"""Speech-to-speech with the pipeline behind it: the agent a realtime call starts with,
and the hand-over, within the same call, to the org's STT → LLM → TTS chains when no
realtime model can serve.

The conversation so far goes along (the chat context, the caller's transcribed words
included), and when the caller is owed a reply — their turn went unanswered, or the
model's reply was cut off — the pipeline gives it at once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from livekit.agents import Agent, AgentSession, llm

from agent.log import logger
from providers.chains import RealtimeChain, describe_error


def realtime_agent(instructions: str, chain: RealtimeChain) -> Agent:
    """The call's first agent: the realtime chain hears, decides when the caller's turn
    ended and speaks. No STT runs beside it (nothing would be billed twice); the session's
    TTS stays for what is said as written (the greeting)."""
    return Agent(
        instructions=instructions,
        llm=chain,
        stt=None,
        turn_handling={"turn_detection": "realtime_llm"},
    )


class PipelineAgent(Agent):
    """The agent a realtime call continues with: the session's own STT, LLM and TTS
    chains, the conversation so far, and, when the caller is owed one, a reply at once."""

    def __init__(self, *, instructions: str, chat_ctx: llm.ChatContext, reply: bool) -> None:
        super().__init__(instructions=instructions, chat_ctx=chat_ctx)
        self._reply = reply

    async def on_enter(self) -> None:
        if self._reply:
            self.session.generate_reply()


def owes_reply(chat_ctx: llm.ChatContext, interrupted: bool) -> bool:
    """The caller's last turn has no answer, or the answer was cut off. A reply the model
    began but never voiced (an empty message) is no answer."""
    if interrupted:
        return True
    messages = [
        i for i in chat_ctx.items if isinstance(i, llm.ChatMessage) and (i.text_content or "")
    ]
    return bool(messages) and (messages[-1].role == "user" or messages[-1].interrupted)


_TASKS: set[asyncio.Future[None]] = set()
INTERRUPT_TIMEOUT = 1.0
"""Seconds the hand-over waits for the realtime model's reply to stop."""


def hand_over(
    session: AgentSession[Any],
    chain: RealtimeChain,
    instructions: str,
    org_id: str | None,
    error: BaseException,
    speaking: bool,
) -> None:
    """Continue ``session`` on its pipeline: stop what the realtime model was saying (what
    the caller heard stays in the context), then the pipeline agent takes over."""

    async def run() -> None:
        # the failed model's session closed first: a reply it left open ends with it, so the
        # interruption below (which commits what the caller heard) is done at once
        await chain.release()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.interrupt(force=True), INTERRUPT_TIMEOUT)
        chat_ctx = session.current_agent.chat_ctx.copy()
        reply = owes_reply(chat_ctx, speaking)
        logger.warning(
            "realtime model cannot serve, the call continues on the pipeline",
            extra={"org": org_id, "reason": describe_error(error), "reply": reply},
        )
        session.update_agent(
            PipelineAgent(instructions=instructions, chat_ctx=chat_ctx, reply=reply)
        )

    task = asyncio.ensure_future(run())
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
