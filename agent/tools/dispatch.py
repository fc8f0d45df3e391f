"""Placing a call on a LiveKit server for a caller that joins itself: the room, the agent's
dispatch with the org's job metadata, the caller's token, and what to say when no agent
comes. ``python -m agent call`` and the web caller (``python -m agent web``) share it.

In production the backend dispatches the agent (with the org it knows the call belongs to);
these tools do the same through the server API so a developer can try a worker."""

from __future__ import annotations

from livekit import api


class CallFailed(Exception):
    """Why the call could not happen, in one line for the person who placed it."""


def refused(published: str) -> CallFailed:
    """The agent tells the room only ``call refused (<code>)``; the reason (which org, which
    provider or setting) is in the worker's log, where the person who can fix it looks."""
    return CallFailed(
        f"the agent refused the call ({refusal_code(published)}); see the worker's log for why"
    )


def refusal_code(published: str) -> str:
    """``unknown-org`` of ``call refused (unknown-org)``."""
    inner = published.removeprefix("call refused (").removesuffix(")")
    return inner if inner != published else published


async def dispatch(
    lk: api.LiveKitAPI, *, url: str, api_key: str, agent_name: str, room: str, metadata: str
) -> None:
    """Create ``room`` and dispatch ``agent_name`` into it with ``metadata`` (the org's job
    metadata). Without an agent name the worker takes the room automatically, and the org
    travels in the room's metadata (server-set, so also trusted) instead."""
    try:
        await lk.room.create_room(
            api.CreateRoomRequest(
                name=room,
                empty_timeout=30,
                # automatic dispatch carries no job metadata: the org goes in the room's
                metadata="" if agent_name else metadata,
            )
        )
        if agent_name:
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=agent_name, room=room, metadata=metadata)
            )
    except api.TwirpError as e:
        if e.status in (401, 403):
            raise CallFailed(
                f"the LiveKit server at {url} refused the API key "
                f"'{api_key}': check LIVEKIT_API_KEY and LIVEKIT_API_SECRET"
            ) from None
        raise CallFailed(f"the LiveKit server could not dispatch the agent: {e.message}") from None


def caller_token(
    api_key: str,
    api_secret: str,
    *,
    room: str,
    identity: str,
    attributes: dict[str, str] | None = None,
    metadata: str = "",
) -> str:
    """A token that lets one caller join ``room`` (and nothing else)."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_name("caller")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_attributes(attributes or {})
        .with_metadata(metadata)
        .to_jwt()
    )


async def why_no_agent(
    lk: api.LiveKitAPI, *, url: str, agent_name: str, room: str, waited: float
) -> str:
    """What to tell a caller whose agent did not join ``room`` within ``waited`` seconds:
    no worker took the job, or one took it and did not come."""
    who = f"agent '{agent_name}'" if agent_name else "an agent"
    wait = f"{waited:.0f} s"
    try:
        dispatches = await lk.agent_dispatch.list_dispatch(room)
    except api.TwirpError:
        dispatches = []
    jobs = [job for d in dispatches for job in d.state.jobs]
    if not jobs:
        name = f"AGENT_NAME={agent_name}" if agent_name else "no AGENT_NAME"
        return (
            f"no worker took the call within {wait}: is a worker running with {name} "
            f"against {url} (`make dev-local` starts one), and are its calls below "
            "MAX_CONCURRENT_CALLS? The server does not queue a call that finds every worker full"
        )
    return (
        f"{who} was dispatched to worker {jobs[-1].state.worker_id or '?'} but did not join "
        f"room {room} within {wait}: see that worker's log"
    )
