"""One call: resolve the org, load its providers, build the session. The same code runs for
a room job, a fake job in tests, and ``python -m agent simulate``."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from livekit import rtc
from livekit.agents import Agent, AgentSession, AutoSubscribe, JobContext
from livekit.agents.types import NOT_GIVEN, NotGivenOr

from providers.errors import ProviderError
from providers.factory import Chains, build_chains
from providers.loader import ProviderLoader, get_loader
from providers.types import OrgProviders

from .log import logger
from .org import OrgRef, resolve_org
from .prewarm import load_models, shared_vad
from .turns import TurnSettings


@dataclass
class Call:
    ref: OrgRef
    org: OrgProviders
    chains: Chains
    session: AgentSession[None]
    agent: Agent

    async def start(self, *, room: NotGivenOr[rtc.Room] = NOT_GIVEN) -> None:
        """Start the session (on ``room``, or on whatever I/O was set) and greet."""
        await self.session.start(agent=self.agent, room=room)
        if self.org.agent.greeting:
            self.session.say(self.org.agent.greeting)


async def prepare_call(ctx: JobContext, *, loader: ProviderLoader | None = None) -> Call:
    ref = resolve_org(
        ctx.job.metadata, ctx.job.room.metadata, os.environ.get("DEFAULT_ORGANIZATION_ID")
    )
    org = await (loader or get_loader()).load(
        ref.organization_id, providers_version=ref.providers_version
    )
    vad = ctx.proc.userdata.get("vad") or shared_vad()
    chains = build_chains(org, vad=vad)
    # this org's local models (usually loaded at prewarm already), off the event loop
    await asyncio.to_thread(load_models, org, chains.providers)
    turns = TurnSettings.from_env()
    session: AgentSession[None] = AgentSession(
        stt=chains.stt,
        llm=chains.llm,
        tts=chains.tts,
        vad=vad,
        turn_handling=turns.turn_handling(),
    )
    logger.info(
        "call configured",
        extra={
            "room": ctx.job.room.name,
            "org": org.organization_id,
            "org_from": ref.source,
            "config_source": org.source.value,
            "version": org.version,
            **{kind.value: names for kind, names in chains.providers.items()},
            **turns.describe(),
        },
    )
    return Call(ref, org, chains, session, Agent(instructions=org.agent.instructions))


ATTRIBUTE_CALL_ERROR = "voice_agent.error"
"""Set on the agent participant when the call cannot be configured, just before it leaves,
so the caller (``python -m agent call``, a client app) can say why instead of waiting."""


async def entrypoint(ctx: JobContext) -> None:
    """The room job: what LiveKit dispatches to this worker."""
    try:
        call = await prepare_call(ctx)
    except ProviderError as e:
        await refuse_call(ctx, str(e))
        return
    await call.start(room=ctx.room)


async def refuse_call(ctx: JobContext, reason: str) -> None:
    """End a call that cannot run (unknown org, backend-only with the backend down, an org
    whose chains cannot be built): log it, tell the room why, leave. The worker goes on
    taking calls. ``reason`` is a ``ProviderError`` message, which never holds a secret."""
    logger.error("call refused", extra={"room": ctx.job.room.name, "reason": reason})
    try:
        await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
        await ctx.room.local_participant.set_attributes({ATTRIBUTE_CALL_ERROR: reason})
    except Exception as e:  # the room may be gone already; the refusal is logged anyway
        logger.warning("could not tell the room why the call was refused", extra={"error": e})
    ctx.shutdown(reason=reason)
