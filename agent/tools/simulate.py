"""``python -m agent simulate``: a whole call with no LiveKit server and no API key.

Caller audio comes from a WAV file or from ``--say`` sentences spoken by Piper; it goes
through the same code a room job runs (``prepare_call`` under livekit's
``fake_job_context``, then ``Call.start``) with file-based audio I/O (``agent.tools.audio_files``).
The agent's audio is written next to the caller's in one stereo WAV, and a transcript with
the providers that served and per-turn latencies is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.resources
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from livekit import rtc
from livekit.agents import AgentStateChangedEvent, ConversationItemAddedEvent, llm
from livekit.agents.testing import fake_job_context
from livekit.agents.utils import http_context
from livekit.agents.voice import TranscriptSynchronizer

from agent.log import logger, setup_logging
from agent.tools.audio_files import (
    SAMPLE_RATE,
    CallerTurn,
    PlaybackSegment,
    RecordingAudioOutput,
    Timeline,
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
from agent.tools.transcript import CallResult, Turn, print_result
from agent.worker.call import Call, prepare_call
from agent.worker.served import ServedBy, scripted
from agent.worker.settings import Settings
from agent.worker.usage import get_usage
from providers import ProviderError
from providers.config import ProviderLoader

DEFAULT_TIMEOUT = 120.0

DEMO_GREETING = "Hello, thanks for calling Harbor Clinic. How can I help you?"
"""The demo clinic's greeting, as ``.env.local-testing`` sets it."""
PERSONA_VARS = ("AGENT_GREETING", "AGENT_FAQ_FILE", "AGENT_INSTRUCTIONS")
DEMO_PERSONA_NOTE = (
    "simulate: no persona configured (AGENT_GREETING, AGENT_FAQ_FILE, AGENT_INSTRUCTIONS, "
    "AICO_BACKEND_URL): the demo clinic answers ({faq}). Set those for your own; a worker "
    "never falls back to the demo."
)

USAGE_KEPT_HINT = (
    "simulate: this call's usage record is in the spool {path}; a running worker sends it "
    "(or `python -m agent usage --flush`)."
)


class _Observer(AgentWatch):
    """Follows the session: agent state, transcript items, which provider served."""

    def __init__(self, call: Call, timeline: Timeline) -> None:
        super().__init__(timeline)
        self._call = call
        self._wall0 = time.time() - timeline.now()
        self.items: list[tuple[float, llm.ChatMessage]] = []
        self.served = ServedBy(call.chains)
        self.item_providers: list[dict[str, str]] = []

        session = call.session
        session.on("agent_state_changed", self._on_state)
        session.on("conversation_item_added", self._on_item)

    def _chain_names(self) -> dict[str, list[str]]:
        return self.served.chain_names

    def to_timeline(self, wall: float) -> float:
        return wall - self._wall0

    async def greets(self) -> bool:
        return bool(self._call.org.agent.greeting)  # the persona is known here

    def _on_state(self, ev: AgentStateChangedEvent) -> None:
        self.note_state(ev.new_state)

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role in ("user", "assistant"):
            self.items.append((self.timeline.now(), ev.item))
            self.item_providers.append(self.served.for_item(ev.item.role))
            self.changed.set()


async def simulate_call(
    *,
    job_metadata: str,
    caller_audio: list[rtc.AudioFrame],
    output: Path = DEFAULT_OUTPUT,
    loader: ProviderLoader | None = None,
    wait_for_agent: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    turn_timeout: float = TURN_TIMEOUT,
    barge_in: float | None = None,
    settings: Settings | None = None,
) -> CallResult:
    """Run one call through ``prepare_call``/``Call.start`` with file-based audio I/O.

    ``caller_audio`` holds one frame per caller turn (any rate). With ``wait_for_agent``
    the caller speaks again only once the agent answered (bounded by ``turn_timeout``),
    else after ``SILENCE_GAP`` seconds. With ``barge_in`` the caller speaks again that many
    seconds after the agent started answering, cutting it short. ``settings``: the
    worker's (default: those installed at start-up). Raises ``ProviderError`` for a config
    error.
    """
    # A job gets a shared aiohttp session from livekit's job runner (``http_session()``,
    # used by the Deepgram, ElevenLabs and Cartesia plugins); livekit's fake job does not
    # set one up, so without this those providers would fail here and nowhere else. The
    # call id is its own: it is the usage record's idempotency key.
    async with http_context.open():
        with fake_job_context(job_metadata=job_metadata, job_id=f"sim-{uuid.uuid4()}") as ctx:
            call = await prepare_call(ctx, loader=loader, settings=settings)

            observer = _Observer(call, Timeline())
            audio_in = paced_caller(
                caller_audio,
                observer,
                wait_for_agent=wait_for_agent,
                turn_timeout=turn_timeout,
                barge_in=barge_in,
            )
            audio_out = RecordingAudioOutput(timeline=observer.timeline)
            call.session.input.audio = audio_in
            # text paced by the audio, as in a room: an interrupted reply keeps only what played
            synced = TranscriptSynchronizer(next_in_chain_audio=audio_out, next_in_chain_text=None)
            call.session.output.audio = synced.audio_output
            call.session.output.transcription = synced.text_output

            completed = False
            try:
                await call.start()
                await asyncio.wait_for(answered_last(audio_in, observer, turn_timeout), timeout)
                completed = True
            except asyncio.TimeoutError:
                logger.warning("simulated call timed out", extra={"timeout": timeout})
            finally:
                await call.session.aclose()
                await audio_in.aclose()
                await audio_out.aclose()
                record = await call.finish(ctx)

    left = audio_in.recording()
    right = audio_out.recording(len(left), origin=audio_in.start)
    write_stereo_wav(output, left, right, SAMPLE_RATE)

    return CallResult(
        organization_id=call.org.organization_id,
        turns=_turns(observer, audio_in.turns, audio_out.segments),
        output=output,
        chains=observer._chain_names(),
        caller_turns=list(audio_in.turns),
        segments=list(audio_out.segments),
        completed=completed,
        usage=record.to_json(),
    )


def _turns(
    observer: _Observer, caller_turns: list[CallerTurn], segments: list[PlaybackSegment]
) -> list[Turn]:
    turns: list[Turn] = []
    v2v = VoiceToVoice(caller_turns, [s.started_at for s in segments])
    for (added_at, item), providers in zip(observer.items, observer.item_providers, strict=True):
        metrics: dict[str, Any] = dict(item.metrics or {})
        at = added_at
        if "started_speaking_at" in metrics:
            at = observer.to_timeline(float(metrics["started_speaking_at"]))
        latency: dict[str, float] = {}
        # the greeting (``say``): name the TTS only, no LLM or STT took part
        is_scripted = scripted(item)
        if is_scripted:
            providers = {k: v for k, v in providers.items() if k == "tts"}
        if item.role == "user":
            for ours, theirs in (
                ("stt_final", "transcription_delay"),
                ("end_of_turn", "end_of_turn_delay"),
            ):
                if theirs in metrics:
                    latency[ours] = round(float(metrics[theirs]), 3)
        else:
            latency.update(v2v.of_reply(at))
            for ours, theirs in (
                ("e2e", "e2e_latency"),
                ("llm_ttft", "llm_node_ttft"),
                ("tts_ttfb", "tts_node_ttfb"),
            ):
                if theirs in metrics:
                    latency[ours] = round(float(metrics[theirs]), 3)
        turns.append(
            Turn(
                role=item.role,
                text=item.text_content or "",
                providers=providers,
                latency=latency,
                at=round(at, 3),
                interrupted=item.interrupted,
                scripted=is_scripted,
            )
        )
    return turns


# ---------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agent simulate", description=__doc__)
    add_call_arguments(p, timeout=DEFAULT_TIMEOUT)
    return p


async def _run(args: argparse.Namespace, settings: Settings) -> CallResult:
    metadata = job_metadata(args)
    caller = await load_caller_audio(args.input, args.say)
    loader = ProviderLoader(settings.loader, environ=settings.provider_env)
    try:
        result = await simulate_call(
            job_metadata=metadata,
            caller_audio=caller,
            output=args.output,
            loader=loader,
            wait_for_agent=not args.no_wait,
            timeout=args.timeout,
            settings=settings,
        )
    finally:
        await loader.aclose()
    # the record is spooled: sending it is a worker's job, never a reason to keep this
    # command waiting on the backend
    spool = get_usage().spool
    if spool is not None and result.usage is not None:
        print(USAGE_KEPT_HINT.format(path=spool.path), file=sys.stderr)
    return result


def demo_persona_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The demo clinic (``.env.local-testing``'s greeting and ``agent/data/demo_faq.json``)
    for a simulated call that configures no persona and no backend — else every question
    would get the fallback line. Only ``simulate`` uses it: a production worker with no
    persona must not present itself as a demo clinic."""
    if environ.get("AICO_BACKEND_URL") or any(environ.get(v) for v in PERSONA_VARS):
        return {}
    faq = Path(str(importlib.resources.files("agent.data") / "demo_faq.json"))
    return {"AGENT_GREETING": DEMO_GREETING, "AGENT_FAQ_FILE": str(faq)}


def main(argv: list[str], settings: Settings) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose or settings.tools.simulate_verbose, settings.livekit.log_level)
    demo = {} if settings.loader.backend_url else demo_persona_env(settings.provider_env)
    if demo:
        # this process is the simulated call's worker: its environment config is the demo's
        env = {**settings.provider_env, **demo}
        settings = settings.model_copy(update={"provider_env": env})
    try:
        result = asyncio.run(_run(args, settings))
    except (ProviderError, OSError, ValueError) as e:
        print(f"simulate: {e}", file=sys.stderr)
        return 2
    print_result(result, args.json)
    if demo:  # after the call: an error stays one line
        print(DEMO_PERSONA_NOTE.format(faq=demo["AGENT_FAQ_FILE"]), file=sys.stderr)
    return 0


__all__ = ["CallResult", "Turn", "main", "simulate_call"]
