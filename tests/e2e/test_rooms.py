"""Whole calls over WebRTC: a real LiveKit server, the worker as a real subprocess, and a
caller made with the livekit rtc SDK. What the caller heard is checked by transcribing the
audio it received, not by trusting the agent's own text."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.tools.room_call import CallFailed
from agent.tools.transcript import CallResult
from tests.e2e.conftest import AGENT, FAQS, GREETINGS, backend_env, call, local_org
from tests.e2e.rig import (
    API_KEY,
    API_SECRET,
    BACKEND_KEY,
    ROOT,
    LiveKitServer,
    LoopThread,
    Worker,
    Workers,
    wait_until,
)
from tests.standins.backend import BackendServer, provider_entry
from tests.standins.elevenlabs import ElevenLabsStandin
from tests.standins.faults import Fault
from tests.standins.openai import OpenAIStandin
from tests.support.audio import read_stereo, transcribe, word_error_rate, words

QUESTION = "What are your opening hours?"


async def heard(result: CallResult) -> str:
    """Whisper's transcript of the agent's side of the caller's recording."""
    rate, _, agent = read_stereo(result.output)
    return await asyncio.to_thread(transcribe, agent, rate)


def agent_lines(result: CallResult) -> list[str]:
    return [t.text for t in result.turns if t.role == "assistant"]


def assert_heard(text: str, expected: str, max_wer: float = 0.35) -> None:
    """``expected`` was spoken, somewhere in ``text`` (the caller also heard other lines)."""
    want = words(expected)
    got = words(text)
    best = min(
        word_error_rate(" ".join(want), " ".join(got[i : i + len(want)]))
        for i in range(max(1, len(got) - len(want) + 1))
    )
    assert best <= max_wer, f"expected to hear {expected!r}, heard {text!r}"


async def test_call_on_the_local_stack_is_heard(
    livekit: LiveKitServer, worker: Worker, tmp_path: Path
) -> None:
    result = await call(livekit, QUESTION, output=tmp_path / "call.wav", org="harbor")

    assert result.completed
    answer = FAQS["harbor"][0]["answer"]
    audio = await heard(result)
    assert_heard(audio, GREETINGS["harbor"])
    assert_heard(audio, answer)
    # the transcript came through livekit's transcription stream, in order
    assert agent_lines(result) == [GREETINGS["harbor"], answer]
    user = [t for t in result.turns if t.role == "user"]
    assert len(user) == 1 and word_error_rate(QUESTION, user[0].text) <= 0.4, user[0].text
    assert len(result.voice_to_voice()) == 1 and result.voice_to_voice()[0] > 0
    configured = worker.call_in(result.room or "")
    assert configured is not None, "the worker logged no call for this room"
    assert configured["org"] == "harbor" and configured["org_from"] == "dispatch"
    # the org's own config from the backend, fresh or cached (an earlier test may have
    # called harbor on this worker), never the environment's
    assert configured["config_source"] in ("backend", "cache")


async def test_tenants_stay_apart_even_when_the_caller_claims_another_org(
    livekit: LiveKitServer, worker: Worker, backend: BackendServer, tmp_path: Path
) -> None:
    # summit runs its own LLM (a stand-in of the OpenAI API, with summit's key) before the
    # offline responder; harbor runs the local stack only
    summit_line = "Summit Dental opens every day at seven in the evening."
    async with OpenAIStandin(reply=summit_line) as summit_llm:
        entry = provider_entry(
            "openai",
            "llm",
            priority=50,
            config={"base_url": summit_llm.base_url, "model": "gpt-4o-mini"},
            secrets={"apiKey": "summit-llm-key"},
        )
        payload = local_org("summit")
        payload["providers"].insert(0, entry)
        backend.set_org("summit", payload, version="7")
        spoof = {"organizationId": "summit", "org": "summit"}
        harbor, summit = await asyncio.gather(
            call(
                livekit,
                QUESTION,
                output=tmp_path / "harbor.wav",
                org="harbor",
                participant_attributes={"organizationId": "summit"},
                participant_metadata=json.dumps(spoof),
            ),
            call(livekit, QUESTION, output=tmp_path / "summit.wav", org="summit"),
        )
        keys = set(summit_llm.api_keys_seen)
    backend.set_org("summit", local_org("summit"), version="8")

    assert keys == {"summit-llm-key"}, "another org's call reached summit's LLM, or no call did"
    expected = {"harbor": FAQS["harbor"][0]["answer"], "summit": summit_line}
    chains = {"harbor": ["offline"], "summit": ["openai", "offline"]}
    for org, result in (("harbor", harbor), ("summit", summit)):
        other = "summit" if org == "harbor" else "harbor"
        audio = await heard(result)
        assert_heard(audio, GREETINGS[org])
        assert_heard(audio, expected[org])
        assert expected[other] not in agent_lines(result)
        configured = worker.call_in(result.room or "")
        assert configured is not None and configured["org"] == org
        assert configured["org_from"] == "dispatch" and configured["llm"] == chains[org]


async def test_config_push_by_version_takes_effect_on_the_next_call(
    livekit: LiveKitServer, worker: Worker, backend: BackendServer, tmp_path: Path
) -> None:
    backend.set_org("pushed", local_org("harbor", "pushed"), version="1")
    first = await call(livekit, QUESTION, output=tmp_path / "1.wav", org="pushed")
    assert (worker.call_in(first.room or "") or {}).get("tts") == ["piper"]

    # the backend changes the chain and dispatches the next call with the new version
    async with ElevenLabsStandin() as eleven:
        entry = provider_entry(
            "elevenlabs",
            "tts",
            priority=50,
            config={"base_url": eleven.base_url, "voice_id": "v", "model": "eleven_flash_v2_5"},
            secrets={"apiKey": "e2e-eleven-key"},
        )
        backend.set_org("pushed", local_org("harbor", "pushed", "2", [entry]), version="2")
        second = await call(
            livekit,
            QUESTION,
            output=tmp_path / "2.wav",
            metadata=json.dumps({"organizationId": "pushed", "providersVersion": "2"}),
        )
        configured = worker.call_in(second.room or "")
        assert configured is not None and configured["version"] == "2"
        assert configured["tts"] == ["elevenlabs", "piper"]
        assert eleven.requests_to("text-to-speech"), "the new primary TTS was never asked"
    assert second.completed


async def test_failover_in_a_real_room_the_caller_still_hears_the_answer(
    livekit: LiveKitServer, worker: Worker, backend: BackendServer, tmp_path: Path
) -> None:
    healthy = await call(livekit, QUESTION, output=tmp_path / "healthy.wav", org="harbor")
    async with ElevenLabsStandin(fault=Fault.STATUS_500) as broken:
        entry = provider_entry(
            "elevenlabs",
            "tts",
            priority=50,
            config={"base_url": broken.base_url, "voice_id": "v"},
            secrets={"apiKey": "e2e-broken-key"},
        )
        backend.set_org("failing", local_org("harbor", "failing", tts=[entry]), version="1")
        placed = asyncio.create_task(
            call(livekit, QUESTION, output=tmp_path / "call.wav", org="failing")
        )
        calls = (
            "voice_agent_calls_total",
            frozenset({("org", "failing"), ("config_source", "backend")}),
        )
        # scraped during the call: counted as soon as it is configured
        await asyncio.to_thread(wait_until, lambda: worker.metrics().get(calls) == 1, 60, "calls")
        assert not placed.done(), "the call was over before it was counted"
        result = await placed
        assert broken.requests_to("text-to-speech"), "the broken primary was never tried"

    configured = worker.call_in(result.room or "")
    assert configured is not None and configured["tts"][0] == "elevenlabs"
    audio = await heard(result)
    assert_heard(audio, GREETINGS["harbor"])
    assert_heard(audio, FAQS["harbor"][0]["answer"])
    switches = [
        r
        for r in worker.records()
        if r.get("org") == "failing" and "elevenlabs" in str(r.get("from", ""))
    ]
    assert switches, "no failover from elevenlabs was logged"
    # the added silence stays within the TTS first-audio budget (2 s) of a healthy call
    assert result.voice_to_voice()[0] < healthy.voice_to_voice()[0] + 2.0
    assert "e2e-broken-key" not in worker.log_path.read_text()

    # the call's usage record reached the backend, failover included
    def stored() -> list[dict[str, Any]]:
        return [r for r in backend.usage_records.values() if r["organizationId"] == "failing"]

    await asyncio.to_thread(wait_until, lambda: bool(stored()), 30, "the usage record")
    (record,) = stored()
    assert record["failovers"][0]["from"] == "elevenlabs"
    assert record["failovers"][0]["to"] == "piper"
    assert "HTTP 500" in record["failovers"][0]["error"]
    assert {(u["kind"], u["provider"]) for u in record["usage"]} >= {
        ("stt", "whisper"),
        ("tts", "piper"),
    }

    # metrics after the call (its usage is counted when it ends, with the record above)
    scraped = worker.metrics()

    def value(name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in scraped.items() if n == name and set(labels.items()) <= ls)

    assert (
        value(
            "voice_agent_failovers_total",
            kind="tts",
            from_provider="elevenlabs",
            to_provider="piper",
        )
        >= 1
    )
    assert value("voice_agent_provider_errors_total", kind="tts", provider="elevenlabs") >= 1
    # this endpoint's breaker (other tests' ElevenLabs stand-ins have their own)
    endpoint = f"tts/elevenlabs@{broken.base_url}"
    assert value("voice_agent_provider_up", provider="elevenlabs", key=endpoint) == 0
    assert value("voice_agent_provider_up", kind="tts", provider="piper") >= 1
    assert (
        value("voice_agent_usage_units_total", org="failing", provider="piper", unit="characters")
        > 0
    )
    assert (
        value(
            "voice_agent_usage_units_total", org="failing", provider="whisper", unit="audio_seconds"
        )
        > 0
    )
    assert value("voice_agent_voice_to_voice_seconds_count") >= 1
    assert value("voice_agent_ttfb_seconds_count", kind="tts", provider="piper") >= 1
    assert value("voice_agent_backend_request_seconds_count", route="providers") >= 1
    assert value("voice_agent_backend_request_seconds_count", route="usage") >= 1

    # live status: elevenlabs is down and says why, without its key
    status = subprocess.run(
        [sys.executable, "-m", "agent", "status", "--url", worker.status_url, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert status.returncode == 0, status.stderr
    providers = json.loads(status.stdout)["providers"]
    eleven = [p for p in providers if p["provider"] == "elevenlabs"]
    assert eleven and any(p["state"] == "open" and "HTTP 500" in p["lastError"] for p in eleven)
    assert any(p["provider"] == "piper" and p["up"] for p in providers)
    assert "e2e-broken-key" not in status.stdout


def run_call_command(livekit: LiveKitServer, *args: str, timeout: float = 90) -> Any:
    env = {
        "PATH": "/usr/bin:/bin",
        "LIVEKIT_URL": livekit.url,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "AGENT_NAME": AGENT,
    }
    return subprocess.run(
        [sys.executable, "-m", "agent", "call", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("org", ["ghost"])
def test_unknown_org_is_refused_cleanly_and_the_worker_serves_on(
    livekit: LiveKitServer, worker: Worker, tmp_path: Path, org: str
) -> None:
    refused = run_call_command(
        livekit, "--org", org, "--say", QUESTION, "--output", str(tmp_path / "x.wav")
    )
    assert refused.returncode == 1, refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    # the room hears only the code; the reason (which org, why) is in the worker's log
    assert line == "call: the agent refused the call (unknown-org); see the worker's log for why"
    assert "Traceback" not in refused.stderr

    served = run_call_command(
        livekit, "--org", "harbor", "--say", QUESTION, "--json", "--output", str(tmp_path / "y.wav")
    )
    assert served.returncode == 0, served.stderr
    out = json.loads(served.stdout)
    assert out["organizationId"] == "harbor"
    assert FAQS["harbor"][0]["answer"] in [t["text"] for t in out["turns"]]


async def test_backend_only_with_the_backend_down_refuses_then_recovers(
    livekit: LiveKitServer, workers: Workers, loop_thread: LoopThread, tmp_path: Path
) -> None:
    own = BackendServer(expected_key=BACKEND_KEY)
    loop_thread.run(own.start())
    own.set_org("harbor", local_org("harbor"), version="1")
    try:
        env = backend_env(
            own,
            AGENT_NAME="e2e-strict",
            PROVIDER_ENV_FALLBACK="false",
            # the recovery is under test, not the retry window: ask on every call
            PROVIDER_BACKEND_RETRY_AFTER="0",
        )
        (strict,) = workers.start("strict", **env)
        loop_thread.run(own.stop())  # down: connections refused

        with pytest.raises(CallFailed, match=r"refused the call \(backend-unavailable\)"):
            await call(
                livekit, QUESTION, output=tmp_path / "1.wav", agent_name="e2e-strict", org="harbor"
            )
        assert strict.alive

        loop_thread.run(own.start())  # back, on the same address
        result = await call(
            livekit, QUESTION, output=tmp_path / "2.wav", agent_name="e2e-strict", org="harbor"
        )
        assert FAQS["harbor"][0]["answer"] in agent_lines(result)
        assert (strict.call_in(result.room or "") or {}).get("config_source") == "backend"
    finally:
        loop_thread.run(own.stop())


async def test_a_call_to_an_agent_name_no_worker_has_says_so(
    livekit: LiveKitServer, worker: Worker, tmp_path: Path
) -> None:
    with pytest.raises(CallFailed) as failed:
        await call(
            livekit, QUESTION, output=tmp_path / "x.wav", agent_name="nobody", join_timeout=5
        )
    assert str(failed.value).startswith(
        "no worker took the call within 5 s: is a worker running with AGENT_NAME=nobody"
    )


async def test_a_caller_who_joins_after_the_agent_is_answered(
    livekit: LiveKitServer, worker: Worker, tmp_path: Path
) -> None:
    """The agent is in the room (its track published) before the caller connects, as when
    callers connect slowly on a busy machine: the caller's connect lists the agent instead
    of announcing it, and the caller must still find it and hear it."""
    from livekit import api

    room = f"late-{tmp_path.name[-8:]}"
    async with api.LiveKitAPI(livekit.url, API_KEY, API_SECRET) as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=30))
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(
                agent_name=AGENT, room=room, metadata='{"organizationId": "harbor"}'
            )
        )

        async def agent_in_room() -> bool:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            return any(p.identity.startswith("agent-") for p in listed.participants)

        async def wait_for_agent() -> None:
            while not await agent_in_room():
                await asyncio.sleep(0.1)

        await asyncio.wait_for(wait_for_agent(), 30)
    # no dispatch from the caller: the agent is already there
    result = await call(livekit, QUESTION, output=tmp_path / "call.wav", agent_name="", room=room)

    assert result.completed
    assert FAQS["harbor"][0]["answer"] in agent_lines(result)
    assert_heard(await heard(result), FAQS["harbor"][0]["answer"])
