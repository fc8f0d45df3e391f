"""``python -m agent call``: call a running worker through a real LiveKit server.

Creates a room (or uses ``--room``), dispatches the agent by name with the org's job
metadata through the server API, joins as a caller with the livekit rtc SDK, publishes the
caller's audio in real time and records what the agent publishes. Prints the same
transcript/JSON as ``simulate``: the text comes from livekit's transcription text streams,
latencies are measured here, at the caller (last caller frame with speech sent → first agent
frame with speech received).

Without ``AGENT_NAME`` the worker takes every room automatically; the org then travels in
the room's metadata (also server-set, so also trusted) instead of the dispatch's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit import api, rtc

from agent.livekit_server import livekit_reachable
from agent.log import logger, setup_logging
from agent.tools.audio_files import (
    FRAME_SECONDS,
    SAMPLE_RATE,
    SPEECH_RMS,
    CallerTurn,
    Timeline,
    place_frames,
    rms,
    write_stereo_wav,
)
from agent.tools.call_args import DEFAULT_OUTPUT, add_call_arguments, job_metadata
from agent.tools.caller_audio import load_caller_audio
from agent.tools.conversation import (
    TURN_TIMEOUT,
    AgentWatch,
    VoiceToVoice,
    answered_last,
    paced_caller,
)
from agent.tools.dispatch import CallFailed, caller_token, dispatch, refused, why_no_agent
from agent.tools.transcript import CallResult, Turn, print_result
from agent.worker.call import ATTRIBUTE_CALL_ERROR
from agent.worker.settings import LIVEKIT_DEV_SECRET, Settings
from providers import (
    ATTRIBUTE_AGENT_STATE,
    ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID,
    TOPIC_TRANSCRIPTION,
)

JOIN_TIMEOUT = 20.0
"""How long the agent may take to join the room once dispatched."""
CALL_TIMEOUT = 120.0
TAIL_SECONDS = 0.5
"""Recorded after the last answer, so the end of the agent's audio is in the WAV."""


@dataclass
class CallOptions:
    url: str
    api_key: str
    api_secret: str
    agent_name: str = ""
    room: str | None = None
    metadata: str = ""
    """Job metadata, e.g. ``{"organizationId": "acme", "providersVersion": "18"}``."""
    participant_attributes: dict[str, str] = field(default_factory=dict)
    participant_metadata: str = ""
    output: Path = DEFAULT_OUTPUT
    wait_for_agent: bool = True
    join_timeout: float = JOIN_TIMEOUT
    turn_timeout: float = TURN_TIMEOUT
    timeout: float = CALL_TIMEOUT

    @classmethod
    def of(cls, settings: Settings, **overrides: Any) -> CallOptions:
        """The LiveKit server and agent name of ``settings`` (``livekit-server --dev``'s
        without them), then ``overrides`` that are not None."""
        secret = settings.livekit.api_secret
        base: dict[str, Any] = {
            "url": settings.livekit.url or "ws://localhost:7880",
            "api_key": settings.livekit.api_key or "devkey",
            "api_secret": secret.get_secret_value() if secret else LIVEKIT_DEV_SECRET,
            "agent_name": settings.worker.agent_name,
        }
        return cls(**{**base, **{k: v for k, v in overrides.items() if v is not None}})


@dataclass
class _Segment:
    """One transcription segment (a text stream per segment and update)."""

    identity: str
    opened_at: float
    text: str = ""


@dataclass
class _Received:
    """Agent audio as it arrived: (timeline seconds, frame)."""

    frames: list[tuple[float, rtc.AudioFrame]] = field(default_factory=list)
    speech_at: list[float] = field(default_factory=list)
    """Arrival times of frames with speech energy."""


class _Room(AgentWatch):
    """The caller's side of the room: the agent's presence, state, audio and transcripts."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(timeline)
        self.room = rtc.Room()
        self.agent: rtc.RemoteParticipant | None = None
        self.agent_left = asyncio.Event()
        self.agent_joined = asyncio.Event()
        self.agent_track = asyncio.Event()
        self.received = _Received()
        self.segments: dict[str, _Segment] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

        self.room.on("participant_connected", self._on_participant)
        self.room.on("participant_attributes_changed", self._on_attributes)
        self.room.on("participant_disconnected", self._on_left)
        self.room.on("track_subscribed", self._on_track)
        self.room.register_text_stream_handler(TOPIC_TRANSCRIPTION, self._on_text)

    @property
    def error(self) -> str | None:
        """What the agent published when it refused the call (``call refused (<code>)``)."""
        return self.agent.attributes.get(ATTRIBUTE_CALL_ERROR) if self.agent else None

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_participant(self, p: rtc.RemoteParticipant) -> None:
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT and self.agent is None:
            self.agent = p
            self.agent_joined.set()
            self._on_attributes({}, p)

    def adopt_present(self) -> None:
        """After connecting: an agent that joined first raised no ``participant_connected``
        here (the connect response listed it), so it is adopted from the room's list."""
        for p in self.room.remote_participants.values():
            self._on_participant(p)

    def _on_attributes(self, _changed: dict[str, str], p: rtc.Participant) -> None:
        if p is self.agent:
            self.note_state(p.attributes.get(ATTRIBUTE_AGENT_STATE, self.state))

    def _on_left(self, p: rtc.RemoteParticipant) -> None:
        if p is self.agent:
            self.agent_left.set()
            self.changed.set()

    def _on_track(
        self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant
    ) -> None:
        self._on_participant(p)  # its track can arrive before the caller's connect returns
        if p is self.agent and track.kind == rtc.TrackKind.KIND_AUDIO:
            self.agent_track.set()
            self._spawn(self._record(track))

    async def _record(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                now = self.timeline.now()
                frame = event.frame
                self.received.frames.append((now, frame))
                if rms(np.frombuffer(frame.data, dtype=np.int16)) > SPEECH_RMS:
                    self.received.speech_at.append(now)
        finally:
            await stream.aclose()

    def _on_text(self, reader: rtc.TextStreamReader, identity: str) -> None:
        attrs = reader.info.attributes or {}
        segment_id = attrs.get(ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID) or reader.info.stream_id
        segment = self.segments.get(segment_id)
        if segment is None:
            segment = _Segment(identity, self.timeline.now())
            self.segments[segment_id] = segment
        self._spawn(self._read(reader, segment))

    async def _read(self, reader: rtc.TextStreamReader, segment: _Segment) -> None:
        """Each update of a segment carries its whole text so far."""
        text = ""
        async for chunk in reader:
            text += chunk
            segment.text = text
        self.changed.set()

    def answered_since(self, t: float) -> bool:
        """The agent answered after timeline second ``t`` (or left the call)."""
        return self.agent_left.is_set() or super().answered_since(t)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()


async def place_call(options: CallOptions, caller_audio: list[rtc.AudioFrame]) -> CallResult:
    """One call through a LiveKit server to a running worker. Raises ``CallFailed`` with
    the reason when the server, the worker or the job is not there for it."""
    if not await asyncio.to_thread(livekit_reachable, options.url):
        raise CallFailed(
            f"no LiveKit server at {options.url}: start one (`make livekit-server`, then "
            "`make livekit-dev`) or set LIVEKIT_URL"
        )
    room_name = options.room or f"call-{uuid.uuid4().hex[:10]}"
    identity = f"caller-{uuid.uuid4().hex[:6]}"
    async with api.LiveKitAPI(options.url, options.api_key, options.api_secret) as lk:
        await dispatch(
            lk,
            url=options.url,
            api_key=options.api_key,
            agent_name=options.agent_name,
            room=room_name,
            metadata=options.metadata,
        )
        token = caller_token(
            options.api_key,
            options.api_secret,
            room=room_name,
            identity=identity,
            attributes=options.participant_attributes,
            metadata=options.participant_metadata,
        )
        timeline = Timeline()
        side = _Room(timeline)
        try:
            await asyncio.wait_for(side.room.connect(options.url, token), options.join_timeout)
            side.adopt_present()
            return await _converse(side, options, room_name, caller_audio, lk)
        except asyncio.TimeoutError:
            raise CallFailed(f"could not join room {room_name} at {options.url}") from None
        finally:
            await side.aclose()
            if options.room is None:
                try:
                    await lk.room.delete_room(api.DeleteRoomRequest(room=room_name))
                except api.TwirpError:
                    pass  # already gone


async def _converse(
    side: _Room,
    options: CallOptions,
    room_name: str,
    caller_audio: list[rtc.AudioFrame],
    lk: api.LiveKitAPI,
) -> CallResult:
    await _await_agent(side, options, room_name, lk)

    source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=100)
    track = rtc.LocalAudioTrack.create_audio_track("caller-microphone", source)
    await side.room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    audio_in = paced_caller(
        caller_audio, side, wait_for_agent=options.wait_for_agent, turn_timeout=options.turn_timeout
    )
    completed = False

    async def speak_until_answered() -> bool:
        """Play every caller turn; True when the agent answered the last one and stayed."""
        finished = asyncio.ensure_future(answered_last(audio_in, side, options.turn_timeout))
        try:
            async for frame in audio_in:
                await source.capture_frame(frame)
                if finished.done() or side.agent_left.is_set():
                    break
            # a little more of the agent's tail, still sending the caller's silence
            end = side.timeline.now() + TAIL_SECONDS
            while side.timeline.now() < end:
                await source.capture_frame(await audio_in.__anext__())
            answered = finished.done() and finished.result()
            return answered and not side.agent_left.is_set()
        finally:
            finished.cancel()

    try:
        completed = await asyncio.wait_for(speak_until_answered(), options.timeout)
    except asyncio.TimeoutError:
        logger.warning("call timed out", extra={"timeout": options.timeout})
    finally:
        await audio_in.aclose()
        await source.aclose()
    if side.error:
        raise refused(side.error)

    left = audio_in.recording()
    # a frame's arrival time stamps its end; it started playing one frame earlier
    started = [(at - frame.duration, frame) for at, frame in side.received.frames]
    right = place_frames(started, audio_in.start, len(left), SAMPLE_RATE)
    write_stereo_wav(options.output, left, right, SAMPLE_RATE)
    return CallResult(
        organization_id=_org(options.metadata),
        turns=_turns(side, audio_in.turns),
        output=options.output,
        chains={},
        caller_turns=list(audio_in.turns),
        completed=completed,
        room=room_name,
    )


async def _await_agent(
    side: _Room, options: CallOptions, room_name: str, lk: api.LiveKitAPI
) -> None:
    """Until the agent is in the room with its audio track, or a clear reason why not."""
    who = f"agent '{options.agent_name}'" if options.agent_name else "an agent"
    joined = await side.wait(
        lambda: side.agent_joined.is_set() or side.agent_left.is_set(), options.join_timeout
    )
    if not joined:
        raise CallFailed(
            await why_no_agent(
                lk,
                url=options.url,
                agent_name=options.agent_name,
                room=room_name,
                waited=options.join_timeout,
            )
        )
    # the agent is in; it either starts talking (audio track) or says why it won't and leaves
    ready = await side.wait(
        lambda: side.agent_track.is_set() or side.error is not None or side.agent_left.is_set(),
        options.join_timeout,
    )
    if side.error:
        raise refused(side.error)
    if side.agent_left.is_set() and not side.agent_track.is_set():
        raise CallFailed(f"{who} left room {room_name} without answering: see the worker's log")
    if not ready:
        raise CallFailed(
            f"{who} joined room {room_name} but published no audio within "
            f"{options.join_timeout:.0f} s: see the worker's log"
        )


def _turns(side: _Room, caller_turns: list[CallerTurn]) -> list[Turn]:
    agent_id = side.agent.identity if side.agent else None
    segments = sorted(side.segments.values(), key=lambda s: s.opened_at)
    # arrival time stamps the end of a frame; its start is one frame earlier
    v2v = VoiceToVoice(caller_turns, [t - FRAME_SECONDS for t in side.received.speech_at])
    turns: list[Turn] = []
    for seg in segments:
        if not seg.text.strip():
            continue
        role = "assistant" if seg.identity == agent_id else "user"
        latency = v2v.of_reply(seg.opened_at) if role == "assistant" else {}
        turns.append(Turn(role, seg.text.strip(), {}, latency, at=round(seg.opened_at, 3)))
    return turns


def _org(metadata: str) -> str | None:
    try:
        org = json.loads(metadata).get("organizationId") if metadata else None
    except (ValueError, AttributeError):
        return None
    return org if isinstance(org, str) else None


# ---------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agent call",
        description="Call a running worker through a LiveKit server (LIVEKIT_URL, "
        "LIVEKIT_API_KEY, LIVEKIT_API_SECRET, AGENT_NAME from the environment).",
    )
    add_call_arguments(p, timeout=CALL_TIMEOUT)
    p.add_argument("--room", help="room name (default: a new room, deleted afterwards)")
    p.add_argument("--agent-name", help="agent to dispatch (default: $AGENT_NAME)")
    p.add_argument("--url", help="LiveKit server (default: $LIVEKIT_URL)")
    p.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a participant attribute the caller sets (repeat)",
    )
    p.add_argument("--participant-metadata", help="participant metadata the caller sets")
    p.add_argument(
        "--join-timeout", type=float, default=JOIN_TIMEOUT, help="seconds for the agent to join"
    )
    return p


def _attributes(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--attribute {pair!r}: use KEY=VALUE")
        out[key] = value
    return out


async def _run(args: argparse.Namespace, settings: Settings) -> CallResult:
    options = CallOptions.of(
        settings,
        url=args.url,
        agent_name=args.agent_name,
        room=args.room,
        metadata=job_metadata(args),
        participant_attributes=_attributes(args.attribute),
        participant_metadata=args.participant_metadata,
        output=args.output,
        wait_for_agent=not args.no_wait,
        join_timeout=args.join_timeout,
        timeout=args.timeout,
    )
    caller = await load_caller_audio(args.input, args.say)
    return await place_call(options, caller)


def main(argv: list[str], settings: Settings) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        result = asyncio.run(_run(args, settings))
    except CallFailed as e:
        print(f"call: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"call: {e}", file=sys.stderr)
        return 2
    print_result(result, args.json)
    return 0 if result.completed else 1
