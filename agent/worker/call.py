"""One call: resolve the org, load its providers, build the session. The same code runs for
a room job, a fake job in tests, and ``python -m agent simulate``."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from livekit import api, rtc
from livekit.agents import Agent, AgentSession, AutoSubscribe, JobContext
from livekit.agents.metrics import ModelUsage
from livekit.agents.types import NOT_GIVEN, NotGivenOr

from agent.log import logger
from agent.worker import metrics
from agent.worker.handover import hand_over, realtime_agent
from agent.worker.org import OrgRef, resolve_org
from agent.worker.prewarm import load_models, shared_vad
from agent.worker.settings import Settings, current
from agent.worker.turn_feed import TurnFeed
from agent.worker.usage import CallRecord, LiveUsage, get_usage, usage_lines
from agent.worker.usage.record import Completion
from providers import ProviderError, skip_close_transcript_wait
from providers.catalogue import NO_OVERRIDES, PriceOverrides
from providers.chains import (
    Chains,
    Failover,
    Routing,
    apply_strategy,
    build_chains,
    describe_error,
    get_health,
)
from providers.config import OrgProviders, ProviderLoader, get_loader


@dataclass
class Call:
    ref: OrgRef
    org: OrgProviders
    chains: Chains
    session: AgentSession[None]
    agent: Agent
    call_id: str
    routing: Routing
    room: str | None = None
    pricing: PriceOverrides = NO_OVERRIDES
    """The worker's ``PRICING_JSON``, for this call's usage record."""
    started_at: float = field(default_factory=time.time)
    record: CallRecord | None = None
    """Set by ``finish``."""
    live_usage: LiveUsage | None = None
    """The open usage record while the call runs (set by ``start``)."""

    async def start(self, *, room: NotGivenOr[rtc.Room] = NOT_GIVEN) -> None:
        """Open the call's usage record (so a call whose worker dies is billed), start the
        session (on ``room``, or on whatever I/O was set) and greet."""
        if self.live_usage is None:
            self.live_usage = get_usage().live(self.call_id, self._usage_so_far)
            self.live_usage.start(self.session)
        # No SessionHost: livekit's default lets any room participant, the caller too,
        # drive and observe the session over the room, and after the room closes it kept
        # retrying its queued events ("failed to send session event", hundreds per call
        # under load). What a caller may see goes out on the transcription and turn feeds.
        await self.session.start(agent=self.agent, room=room, session_host=False)
        if self.org.agent.greeting:
            self.session.say(self.org.agent.greeting)

    async def finish(self, ctx: JobContext) -> CallRecord:
        """The call is over and its session closed: price what livekit counted (the
        session report of the job ``ctx``), hand the record to the usage sender (spooled,
        then sent in the background; this never waits for the backend) and close the
        call's providers. Idempotent.

        Runs once the session has closed, so a reply still being spoken at hang-up is
        counted: for a room job from livekit's ``on_session_end`` (``session_ended``),
        which livekit calls after closing the job's session; ``simulate`` calls it after
        closing its own."""
        if self.record is not None:
            return self.record
        if _CALLS.get(self.call_id) is self:
            del _CALLS[self.call_id]
        if self.live_usage is not None:
            self.live_usage.stop()
        report = ctx.make_session_report(self.session)
        self.record = self.usage_record(
            report.model_usage or [], report.timestamp, list(self.chains.failovers.events)
        )
        label = metrics.org_label(self.record.organization_id)
        for line in self.record.usage:
            for unit, amount in line.units.items():
                metrics.USAGE_UNITS.labels(label, line.kind, line.provider, unit.metric_label).inc(
                    amount
                )
            metrics.COST_USD.labels(label, line.provider).inc(line.cost_usd)
        await get_usage().submit(self.record)
        await self.chains.aclose()
        return self.record

    def usage_record(
        self,
        model_usage: Sequence[ModelUsage],
        ended_at: float,
        failovers: Sequence[Failover],
        completion: Completion = "normal",
    ) -> CallRecord:
        """This call's record with what livekit counted until ``ended_at``, priced."""
        org_id = self.org.organization_id
        return CallRecord(
            call_id=self.call_id,
            organization_id=org_id,
            started_at=self.started_at,
            ended_at=ended_at,
            config_source=self.org.source.value,
            config_version=self.org.version,
            strategy=self.routing.strategy.value,
            usage=usage_lines(
                model_usage,
                self.chains.configs,
                org_id=org_id,
                overrides=self.pricing,
                warn=completion == "normal",
            ),
            failovers=failovers,
            room=self.room,
            completion=completion,
        )

    def _usage_so_far(self) -> Callable[[], dict[str, Any]]:
        """A checkpoint, on the call's loop: copies only (``session.usage`` is livekit's
        copy); the pricing and JSON run on the usage writer's thread."""
        at = time.time()
        used = self.session.usage.model_usage
        failovers = list(self.chains.failovers.events)
        return lambda: self.usage_record(used, at, failovers, "recovered").to_json()


_CALLS: dict[str, Call] = {}
"""The calls this process has configured and not finished, by job id: how livekit's
``on_session_end`` (``session_ended``), which gets the job only, finds the job's call."""


async def prepare_call(
    ctx: JobContext, *, loader: ProviderLoader | None = None, settings: Settings | None = None
) -> Call:
    """``settings``: the worker's (default: those installed at start-up)."""
    settings = settings or current()
    ref = resolve_org(ctx.job.metadata, ctx.job.room.metadata, settings.default_organization_id)
    loader = loader or get_loader(settings.loader, settings.provider_env)
    loader.on_request = metrics.BACKEND_SECONDS.labels("providers").observe
    loaded = await loader.load(ref.organization_id, providers_version=ref.providers_version)
    routing = Routing.of(loaded, settings.strategy)
    if routing.over_budget:
        metrics.BUDGET_EXCEEDED.labels(metrics.org_label(loaded.organization_id)).inc()
        logger.warning(
            "monthly budget reached, routing this call by cost",
            extra={
                "org": loaded.organization_id,
                "budget_usd": loaded.budget_usd,
                "spent_usd": loaded.spent_usd,
            },
        )
    org, dropped = apply_strategy(loaded, routing.strategy, settings.pricing)
    for d in dropped:
        logger.info(
            "provider left out by the strategy",
            extra={"org": org.organization_id, "provider": d.config.label, "reason": d.reason},
        )
    turns = settings.turns
    vad = ctx.proc.userdata.get("vad") or shared_vad(turns.vad_min_silence)
    health = get_health()
    metrics.install(health)
    chains = build_chains(
        org,
        vad=vad,
        health=health,
        failover=settings.failover,
        early_decode=turns.early_decode,
        join_pauses=turns.mid_sentence_pause,
        on_failover=[metrics.count_failover],
    )
    # this org's local models (usually loaded at prewarm already), off the event loop
    await asyncio.to_thread(load_models, org, chains.providers)
    session: AgentSession[None] = AgentSession(
        stt=chains.stt,
        llm=chains.llm,
        tts=chains.tts,
        vad=vad,
        conn_options=chains.session_options,
        turn_handling=turns.turn_handling(
            pause_floor=0.0 if chains.joins_pauses else turns.mid_sentence_pause
        ),
    )
    logger.info(
        "call configured",
        extra={
            "room": ctx.job.room.name,
            "org": org.organization_id,
            "org_from": ref.source,
            "config_source": org.source.value,
            "version": org.version,
            "strategy": routing.strategy.value,
            **{kind.value: names for kind, names in chains.providers.items()},
            **turns.describe(),
        },
    )
    metrics.CALLS.labels(metrics.org_label(org.organization_id), org.source.value).inc()
    metrics.observe_session(session, chains)
    instructions = org.agent.instructions
    agent = Agent(instructions=instructions)
    if chains.realtime is not None:
        agent = realtime_agent(instructions, chains.realtime)
        org_id = org.organization_id
        rt = chains.realtime
        rt.attach(
            session,
            lambda error, speaking: hand_over(session, rt, instructions, org_id, error, speaking),
        )
    call = Call(
        ref,
        org,
        chains,
        session,
        agent,
        call_id=ctx.job.id,
        routing=routing,
        room=ctx.job.room.name,
        pricing=settings.pricing,
    )
    _CALLS[call.call_id] = call
    return call


ATTRIBUTE_CALL_ERROR = "voice_agent.error"
"""Set on the agent participant when the call cannot be configured, just before it leaves,
so the caller (``python -m agent call``, a client app) knows instead of waiting:
``call refused (<code>)``, the error's ``code`` (``unknown-org``, ``backend-unavailable``…).
The reason itself names orgs, providers and settings: it stays in the worker's log."""


async def entrypoint(ctx: JobContext) -> None:
    """The room job: what LiveKit dispatches to this worker."""
    try:
        call = await prepare_call(ctx)
    except ProviderError as e:
        await refuse_call(ctx, str(e), code=e.code)
        return
    watch_hang_up(ctx, call.session)
    TurnFeed(ctx.room, call.session, call.chains)
    await call.start(room=ctx.room)


CALLER_KINDS = frozenset(
    {rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD, rtc.ParticipantKind.PARTICIPANT_KIND_SIP}
)
"""Participants who are the call (another agent, an egress or an ingress is not)."""


def watch_hang_up(ctx: JobContext, session: AgentSession[None]) -> None:
    """End the job when the last caller leaves the room, or when the session closes for
    another reason (an unrecoverable error)."""

    def on_left(left: rtc.RemoteParticipant) -> None:
        callers = [
            p
            for p in ctx.room.remote_participants.values()
            if p.kind in CALLER_KINDS and p.identity != left.identity
        ]
        if left.kind not in CALLER_KINDS or callers:
            return
        if session.user_state != "speaking":
            skip_close_transcript_wait(session)  # no last words on their way to the STT
        end_job(ctx, "the caller hung up")

    ctx.room.on("participant_disconnected", on_left)
    session.on("close", lambda ev: end_job(ctx, f"session closed: {ev.reason}"))


def end_job(ctx: JobContext, reason: str) -> None:
    """The call is over (its last caller left, or its session closed): end the job now,
    not when the server notices a room with only the agent in it (its departure timeout,
    ~20 s later, which also records the job as failed).

    The job's dispatch is deleted first, through the server's API: the server then records
    the job as a success and tells the worker to end it. An agent that simply leaves
    (``ctx.shutdown``) is recorded as failed ("agent worker left the room"), because the
    worker reports the job's end only after leaving. ``ctx.shutdown`` follows in any case,
    so the job ends even when the server cannot be reached."""
    if ctx in _ENDING_JOBS:
        return
    _ENDING_JOBS.add(ctx)

    async def finish() -> None:
        try:
            await asyncio.wait_for(_delete_dispatch(ctx), END_JOB_TIMEOUT)
        except Exception as e:  # the job ends anyway, recorded as failed by the server
            logger.warning(
                "could not end the call's dispatch; leaving the room",
                extra={"room": ctx.job.room.name, "error": describe_error(e)},
            )
        ctx.shutdown(reason=reason)

    task = asyncio.ensure_future(finish())
    _ENDING.add(task)
    task.add_done_callback(_ENDING.discard)


async def _delete_dispatch(ctx: JobContext) -> None:
    """On a client of its own: the job's (``ctx.api``) shares the job's HTTP session, which
    the job's shutdown closes — and deleting the dispatch is what starts that shutdown, so
    the answer would be cut off. The worker exports its server's URL and keys, which
    ``LiveKitAPI()`` reads."""
    async with api.LiveKitAPI() as lk:
        await lk.agent_dispatch.delete_dispatch(ctx.job.dispatch_id, ctx.job.room.name)


END_JOB_TIMEOUT = 2.0
"""How long ending a call's dispatch may take before the agent just leaves."""
_ENDING: set[asyncio.Future[None]] = set()
_ENDING_JOBS: weakref.WeakSet[JobContext] = weakref.WeakSet()
"""Jobs whose end has begun: the caller's departure and the session's close both end it."""


async def session_ended(ctx: JobContext) -> None:
    """livekit's ``on_session_end`` for a room job: it runs once livekit has closed the
    job's session (its last metrics counted), before the room is left. The call's usage
    comes from livekit's session report. A refused call has nothing to count."""
    if (call := _CALLS.get(ctx.job.id)) is not None:
        await call.finish(ctx)


async def refuse_call(ctx: JobContext, reason: str, *, code: str = ProviderError.code) -> None:
    """End a call that cannot run (unknown org, backend-only with the backend down, an org
    whose chains cannot be built): log why, tell the room only that it was refused and
    ``code``, leave. The worker goes on taking calls. ``reason`` is a ``ProviderError``
    message, which never holds a secret."""
    logger.error("call refused", extra={"room": ctx.job.room.name, "code": code, "reason": reason})
    metrics.REFUSED.inc()
    try:
        await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
        await ctx.room.local_participant.set_attributes(
            {ATTRIBUTE_CALL_ERROR: f"call refused ({code})"}
        )
    except Exception as e:  # the room may be gone already; the refusal is logged anyway
        logger.warning("could not tell the room why the call was refused", extra={"error": e})
    ctx.shutdown(reason=reason)
