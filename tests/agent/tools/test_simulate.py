"""``python -m agent simulate`` on the local stack (whisper, offline FAQ, piper): the same
entrypoint path as a room job, with file-based audio I/O and a stereo recording."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.tools.audio_files import SAMPLE_RATE
from agent.tools.caller_audio import say
from agent.tools.simulate import DEMO_GREETING, demo_persona_env, simulate_call
from agent.tools.transcript import CallResult, Turn, format_transcript
from providers.config.env import env_persona
from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.cartesia import CartesiaStandin
from tests.standins.deepgram import DeepgramStandin
from tests.standins.elevenlabs import ElevenLabsStandin
from tests.standins.faults import Fault
from tests.standins.openai import OpenAIStandin
from tests.support import REPO as ROOT
from tests.support.audio import read_stereo, rms, transcribe, word_error_rate, words
from tests.support.env import clean_environ, start_up
from tests.support.net import free_port

pytestmark = pytest.mark.slow

TIMEOUT = 120

QUESTION = "What are your opening hours?"
ANSWER = "We are open Monday to Friday, from nine in the morning to five in the afternoon."
FAQ = [
    {"question": "What are your opening hours?", "answer": ANSWER},
    {"question": "Where is your office located?", "answer": "Our office is at 42 Harbor Street."},
]


def local_env(tmp_path: Path) -> dict[str, str]:
    faq = tmp_path / "faq.json"
    faq.write_text(json.dumps(FAQ))
    return {
        "DEFAULT_ORGANIZATION_ID": "demo",
        "STT_PROVIDER": "whisper",
        "LLM_PROVIDER": "offline",
        "TTS_PROVIDER": "piper",
        "AGENT_FAQ_FILE": str(faq),
    }


async def test_simulated_call_answers_from_the_faq(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in local_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    start_up()
    output = tmp_path / "call.wav"
    loader = ProviderLoader(LoaderSettings())
    try:
        caller = await asyncio.wait_for(say([QUESTION]), TIMEOUT)
        result: CallResult = await asyncio.wait_for(
            simulate_call(job_metadata="", caller_audio=caller, output=output, loader=loader),
            TIMEOUT,
        )
    finally:
        await loader.aclose()

    assert result.completed
    assert result.organization_id == "demo"
    assert result.chains == {"stt": ["whisper"], "llm": ["offline"], "tts": ["piper"]}
    user = [t for t in result.turns if t.role == "user"]
    agent = [t for t in result.turns if t.role == "assistant"]
    assert len(user) == 1
    # Whisper tiny may slip on one word ("opening nowers"); the answer below must not
    assert word_error_rate(QUESTION, user[0].text) <= 0.4, user[0].text
    assert user[0].providers == {"stt": "whisper"}
    assert [t.text for t in agent] == [ANSWER]
    assert agent[0].providers == {"stt": "whisper", "llm": "offline", "tts": "piper"}
    assert 0 < agent[0].latency["voice_to_voice"] < 10

    rate, caller_track, agent_track = read_stereo(output)
    assert rate == SAMPLE_RATE
    assert rms(caller_track) > 300 and rms(agent_track) > 300  # speech, far above silence
    # the agent's reply starts after the caller stopped speaking, on one timeline
    speech_end = result.caller_turns[0].speech_end
    before = agent_track[: int((speech_end - 0.1) * rate)]
    assert rms(before) < 10
    heard = await asyncio.to_thread(transcribe, agent_track, rate)
    assert word_error_rate(ANSWER, heard) <= 0.3, heard


def test_json_output_shape(tmp_path: Path) -> None:
    output = tmp_path / "out" / "reply.wav"
    env = {**clean_environ(), **local_env(tmp_path), "AGENT_GREETING": "Hello, how can I help?"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "simulate",
            "--org",
            "acme",
            "--say",
            "Where is your office located?",
            "--output",
            str(output),
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # exactly one JSON object, logs on stderr
    assert set(out) == {"organizationId", "turns", "output", "usage"}
    assert out["usage"]["organizationId"] == "acme" and out["usage"]["callId"]
    assert {u["kind"] for u in out["usage"]["usage"]} == {"stt", "tts"}  # offline: no tokens
    assert out["organizationId"] == "acme"
    assert out["output"] == str(output) and output.exists()
    roles = [t["role"] for t in out["turns"]]
    assert roles == ["assistant", "user", "assistant"]  # greeting, question, answer
    assert out["turns"][0]["text"] == "Hello, how can I help?"
    assert out["turns"][2]["text"] == "Our office is at 42 Harbor Street."
    greeting, *rest = out["turns"]
    # no LLM produced the greeting: it names the TTS that spoke it, and no LLM
    assert set(greeting) == {"role", "text", "providers", "latency", "scripted"}
    assert greeting["scripted"] is True and greeting["providers"] == {"tts": "piper"}
    for turn in rest:
        assert set(turn) == {"role", "text", "providers", "latency"}
        # a caller's turn names only the STT that transcribed it
        kinds = {"stt"} if turn["role"] == "user" else {"stt", "llm", "tts"}
        assert set(turn["providers"]) == kinds
    assert all(isinstance(v, float) for t in out["turns"] for v in t["latency"].values())
    assert {"stt_final", "end_of_turn"} <= set(out["turns"][1]["latency"])
    assert {"voice_to_voice", "llm_ttft", "tts_ttfb"} <= set(out["turns"][2]["latency"])


def test_the_transcript_labels_the_greeting_not_an_llm() -> None:
    result = CallResult(
        organization_id="demo",
        turns=[
            Turn("assistant", "Hello.", {"tts": "openai"}, {}, at=0.1, scripted=True),
            Turn("user", "Hours?", {"stt": "deepgram"}, {}, at=2.0),
            Turn("assistant", "Nine to five.", {"llm": "openai", "tts": "openai"}, {}, at=3.0),
        ],
        output=Path("out/call.wav"),
        chains={"stt": ["deepgram"], "llm": ["openai", "offline"], "tts": ["openai"]},
    )
    lines = format_transcript(result).splitlines()
    assert lines[3].split() == ["greeting,", "no", "llm", "tts=openai"]
    assert lines[7].split() == ["llm=openai", "tts=openai"]
    assert result.to_json()["turns"][0]["scripted"] is True
    assert "scripted" not in result.to_json()["turns"][2]


def test_simulate_with_no_persona_answers_as_the_demo_clinic(tmp_path: Path) -> None:
    """A first ``python -m agent simulate`` with nothing configured: the demo clinic greets
    and answers from its FAQ (not the fallback line for every question), and says so."""
    clean = clean_environ()
    demo_faq = json.loads((ROOT / "agent/data/demo_faq.json").read_text())
    hours = next(e["answer"] for e in demo_faq if e["question"] == QUESTION)
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "simulate", "--say", QUESTION, "--json"],
        cwd=tmp_path,  # not the repository: the FAQ is found in the package
        env={**clean, "PYTHONPATH": str(ROOT), "STT_PROVIDER": "whisper"},  # no Vosk model
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    turns = json.loads(proc.stdout)["turns"]
    assert [(t["role"], t["text"]) for t in turns if t["role"] == "assistant"] == [
        ("assistant", DEMO_GREETING),
        ("assistant", hours),
    ]
    assert "the demo clinic answers" in proc.stderr


def test_the_demo_persona_is_only_for_an_unconfigured_simulate() -> None:
    demo = demo_persona_env({})
    assert demo["AGENT_GREETING"] == DEMO_GREETING
    assert Path(demo["AGENT_FAQ_FILE"]).resolve() == (ROOT / "agent/data/demo_faq.json")
    for configured in ("AGENT_GREETING", "AGENT_FAQ_FILE", "AGENT_INSTRUCTIONS"):
        assert demo_persona_env({configured: "x"}) == {}
    assert demo_persona_env({"AICO_BACKEND_URL": "http://127.0.0.1:9"}) == {}
    # a worker's env config has no persona of its own: the demo is simulate's alone
    assert env_persona({}).greeting is None and env_persona({}).faq == ()
    # the same persona as the preset `make demo` loads
    preset = (ROOT / ".env.local-testing").read_text()
    assert f'AGENT_GREETING="{DEMO_GREETING}"' in preset.splitlines()
    assert "AGENT_FAQ_FILE=agent/data/demo_faq.json" in preset.splitlines()


def test_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**clean_environ(), **local_env(tmp_path), "STT_PROVIDER": "nonesuch", "STT_FALLBACK": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "simulate", "--say", "hello", "--output", "x.wav"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith("simulate: ")


async def test_backend_org_call_survives_a_tts_outage(tmp_path: Path) -> None:
    """Org from the job metadata, chains from a loopback backend; the org's cloud TTS
    speaks the greeting, then goes down (connection refused) and Piper speaks the answer.
    The transcript names the providers that actually served each turn."""
    reply = "Acme is open from nine to five."
    async with (
        OpenAIStandin(reply=reply) as llm_api,
        OpenAIStandin() as tts_api,
        BackendServer() as backend,
    ):
        backend.set_org(
            "acme",
            org_payload(
                "acme",
                "3",
                [
                    provider_entry("whisper", "stt", priority=10),
                    provider_entry(
                        "openai-compatible",
                        "llm",
                        priority=100,
                        config={"baseUrl": llm_api.base_url, "model": "m"},
                        secrets={"apiKey": "sk-acme-llm"},
                    ),
                    provider_entry(
                        "openai",
                        "tts",
                        priority=100,
                        config={"baseUrl": tts_api.base_url},
                        secrets={"apiKey": "sk-acme-tts"},
                    ),
                    provider_entry("piper", "tts", priority=10),
                ],
                agent={"greeting": "Hello, this is Acme."},
            ),
            version="3",
        )

        async def outage_after_greeting() -> None:
            # down once the greeting's audio has been sent in full: the caller speaks only
            # after it played, so the answer is the next request, and it is refused
            greeting = await tts_api.wait_for_request("/audio/speech", TIMEOUT)
            await greeting.handled.wait()
            await tts_api.set_fault(Fault.REFUSE)

        loader = ProviderLoader(LoaderSettings(backend_url=backend.url), environ={})
        outage = asyncio.create_task(outage_after_greeting())
        try:
            caller = await asyncio.wait_for(say([QUESTION]), TIMEOUT)
            result = await asyncio.wait_for(
                simulate_call(
                    job_metadata=json.dumps({"organizationId": "acme"}),
                    caller_audio=caller,
                    output=tmp_path / "call.wav",
                    loader=loader,
                ),
                TIMEOUT,
            )
        finally:
            outage.cancel()
            await loader.aclose()

    assert result.completed and result.organization_id == "acme"
    assert result.chains == {
        "stt": ["whisper"],
        "llm": ["openai-compatible", "offline"],
        "tts": ["openai", "piper"],
    }
    agent = [t for t in result.turns if t.role == "assistant"]
    assert [t.text for t in agent] == ["Hello, this is Acme.", reply]
    assert agent[0].providers["tts"] == "openai"
    assert agent[1].providers["llm"] == "openai-compatible"
    assert agent[1].providers["tts"] == "piper"  # the switch, as the transcript shows it
    # the outage began after the greeting, not before: OpenAI served one request, whole
    [greeting] = tts_api.requests_to("/audio/speech")
    assert words(greeting.body["input"]) == words("Hello, this is Acme.")
    assert outage.done() and not outage.cancelled() and outage.exception() is None
    assert {r.api_key for r in llm_api.chat_requests} == {"sk-acme-llm"}
    _, _, agent_track = read_stereo(tmp_path / "call.wav")
    answer_start = int(agent[1].at * SAMPLE_RATE)
    assert rms(agent_track[answer_start:]) > 300  # the answer was heard, not silence


LONG_ANSWER = (
    "We are open Monday to Friday from nine in the morning to five in the afternoon, "
    "on Saturdays from ten to two, and on public holidays we are closed, except for "
    "emergencies, which we see at our partner clinic on Harbor Street."
)


async def test_an_interrupted_reply_shows_what_was_played(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    faq = tmp_path / "long_faq.json"
    faq.write_text(
        json.dumps(
            [
                {"question": QUESTION, "answer": LONG_ANSWER},
                {"question": "Where is your office located?", "answer": "On Harbor Street."},
            ]
        )
    )
    for name, value in {**local_env(tmp_path), "AGENT_FAQ_FILE": str(faq)}.items():
        monkeypatch.setenv(name, value)
    start_up()
    loader = ProviderLoader(LoaderSettings())
    try:
        caller = await asyncio.wait_for(say([QUESTION, "Where is your office located?"]), TIMEOUT)
        # the second question comes 4 s into the long answer and cuts it short (livekit
        # ignores a caller during the first 3 s of the agent's first speech: AEC warm-up)
        result = await asyncio.wait_for(
            simulate_call(
                job_metadata="",
                caller_audio=caller,
                output=tmp_path / "call.wav",
                loader=loader,
                barge_in=4.0,
            ),
            TIMEOUT,
        )
    finally:
        await loader.aclose()

    cut = [t for t in result.turns if t.role == "assistant" and t.interrupted]
    assert len(cut) == 1, [(t.text, t.interrupted) for t in result.turns]
    played = words(cut[0].text)
    assert 0 < len(played) < len(words(LONG_ANSWER))
    assert words(LONG_ANSWER)[: len(played) - 1] == played[:-1]  # the start of the answer
    out = result.to_json()
    assert [t.get("interrupted", False) for t in out["turns"] if t["role"] == "assistant"] == [
        t.interrupted for t in result.turns if t.role == "assistant"
    ]


HEARD = "Deepgram heard the caller ask about the opening hours."
REPLY = "The OpenAI stand-in says we open at nine."
GREETING = "Hello, this is Acme."


@pytest.mark.parametrize("tts", ["elevenlabs", "cartesia", "openai"])
async def test_cloud_providers_serve_their_turns_without_a_failover(
    tts: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Deepgram, OpenAI and each cloud TTS, at their stand-ins, serve a simulated call as in
    a room job: each its own turn, with Whisper, the offline responder and Piper behind
    them never needed. (The Deepgram, ElevenLabs and Cartesia plugins take livekit's
    job HTTP session, which a fake job lacked: Deepgram used to fail over to Whisper.)"""
    caplog.set_level("INFO")
    tts_api = {"elevenlabs": ElevenLabsStandin, "cartesia": CartesiaStandin}.get(
        tts, OpenAIStandin
    )()
    async with (
        DeepgramStandin(transcript=HEARD, speech_rms=300.0) as stt_api,
        OpenAIStandin(reply=REPLY) as llm_api,
        tts_api,
        BackendServer() as backend,
    ):
        tts_config: dict[str, str] = {"baseUrl": tts_api.base_url}
        if tts == "elevenlabs":
            tts_config["voiceId"] = "v"
        backend.set_org(
            "acme",
            org_payload(
                "acme",
                "1",
                [
                    provider_entry(
                        "deepgram",
                        "stt",
                        priority=100,
                        config={"baseUrl": stt_api.base_url},
                        secrets={"apiKey": "dg-acme"},
                    ),
                    provider_entry("whisper", "stt", priority=10),
                    provider_entry(
                        "openai",
                        "llm",
                        priority=100,
                        config={"baseUrl": llm_api.base_url},
                        secrets={"apiKey": "sk-acme-llm"},
                    ),
                    provider_entry(
                        tts, "tts", priority=100, config=tts_config, secrets={"apiKey": "tts-acme"}
                    ),
                    provider_entry("piper", "tts", priority=10),
                ],
                agent={"greeting": GREETING},
            ),
            version="1",
        )
        loader = ProviderLoader(LoaderSettings(backend_url=backend.url), environ={})
        try:
            caller = await asyncio.wait_for(say([QUESTION]), TIMEOUT)
            result = await asyncio.wait_for(
                simulate_call(
                    job_metadata=json.dumps({"organizationId": "acme"}),
                    caller_audio=caller,
                    output=tmp_path / "call.wav",
                    loader=loader,
                ),
                TIMEOUT,
            )
        finally:
            await loader.aclose()

    assert result.completed
    assert result.chains == {
        "stt": ["deepgram", "whisper"],
        "llm": ["openai", "offline"],
        "tts": [tts, "piper"],
    }
    greeting, question, answer = result.turns
    assert (greeting.role, greeting.text, greeting.providers["tts"]) == ("assistant", GREETING, tts)
    assert (question.role, question.text, question.providers) == (
        "user",
        HEARD,
        {"stt": "deepgram"},
    )
    assert (answer.role, answer.text) == ("assistant", REPLY)
    assert answer.providers == {"stt": "deepgram", "llm": "openai", "tts": tts}
    assert {r.api_key for r in stt_api.requests_to("/listen")} == {"dg-acme"}
    assert len(llm_api.chat_requests) == 1
    if tts != "openai":
        assert REPLY in tts_api.texts  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if "switching" in r.getMessage()]
    assert "outside of a job context" not in caplog.text


async def test_a_finished_call_closes_its_providers(tmp_path: Path) -> None:
    """ElevenLabs' prewarm retries an unreachable endpoint until its TTS is closed: a call
    that ends must close its providers, or every such call leaves a task behind in a worker
    that runs for weeks."""
    async with BackendServer() as backend:
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens
        backend.set_org(
            "acme",
            org_payload(
                "acme",
                "1",
                [
                    provider_entry("whisper", "stt", priority=10),
                    provider_entry("offline", "llm", priority=10),
                    provider_entry(
                        "elevenlabs",
                        "tts",
                        priority=100,
                        config={"baseUrl": dead, "voiceId": "v"},
                        secrets={"apiKey": "el-acme"},
                    ),
                    provider_entry("piper", "tts", priority=10),
                ],
                agent={"faq": FAQ},
            ),
            version="1",
        )
        loader = ProviderLoader(LoaderSettings(backend_url=backend.url), environ={})
        try:
            result = await asyncio.wait_for(
                simulate_call(
                    job_metadata=json.dumps({"organizationId": "acme"}),
                    caller_audio=await asyncio.wait_for(say([QUESTION]), TIMEOUT),
                    output=tmp_path / "call.wav",
                    loader=loader,
                ),
                TIMEOUT,
            )
        finally:
            await loader.aclose()

    assert result.completed and ANSWER in result.turns[-1].text  # Piper spoke it
    prewarms = [
        t for t in asyncio.all_tasks() if "_run_prewarm" in repr(t.get_coro()) and not t.done()
    ]
    assert prewarms == []
