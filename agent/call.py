"""One call: resolve the org, load its providers, build the session. The same code runs for
a room job, a fake job in tests, and ``python -m agent simulate``."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from livekit import rtc
from livekit.agents import Agent, AgentSession, JobContext
from livekit.agents.types import NOT_GIVEN, NotGivenOr

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
    session: AgentSession[None] = AgentSession(
        stt=chains.stt,
        llm=chains.llm,
        tts=chains.tts,
        vad=vad,
        turn_handling=TurnSettings.from_env().turn_handling(),
    )
    logger.info(
        "call configured",
        extra={
            "org": org.organization_id,
            "org_from": ref.source,
            "config_source": org.source.value,
            "version": org.version,
            **{kind.value: names for kind, names in chains.providers.items()},
        },
    )
    return Call(ref, org, chains, session, Agent(instructions=org.agent.instructions))


async def entrypoint(ctx: JobContext) -> None:
    """The room job: what LiveKit dispatches to this worker."""
    call = await prepare_call(ctx)
    await call.start(room=ctx.room)
