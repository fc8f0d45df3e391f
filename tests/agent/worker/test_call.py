"""The entrypoint a room job runs, under livekit's fake-job machinery: org resolution,
loader, factory and session, answering a text turn through the org's own LLM chain."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from types import SimpleNamespace
from typing import Any

import pytest
from livekit.agents.testing import fake_job_context
from livekit.agents.voice.run_result import ChatMessageEvent
from livekit.protocol import models
from pydantic import SecretStr

from agent.worker.call import prepare_call
from agent.worker.prewarm import shared_vad
from agent.worker.settings import Settings
from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from providers.errors import ConfigError
from providers.types import ConfigSource, ProviderKind
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.openai import OpenAIStandin, message_text
from tests.support.env import start_up

TIMEOUT = 30


def assistant_texts(events: list[Any]) -> list[str]:
    return [
        e.item.text_content or ""
        for e in events
        if isinstance(e, ChatMessageEvent) and e.item.role == "assistant"
    ]


async def run_text_turn(
    job_metadata: str, loader: ProviderLoader, text: str
) -> tuple[Any, list[str]]:
    with fake_job_context(job_metadata=job_metadata) as ctx:
        call = await prepare_call(ctx, loader=loader)
        await call.session.start(agent=call.agent)
        try:
            result = await call.session.run(user_input=text)
        finally:
            await call.session.aclose()
    return call, assistant_texts(result.events)


def switches_counted(from_provider: str, to_provider: str) -> float:
    """``voice_agent_failovers_total`` for one switch, whatever the reason."""
    from prometheus_client import REGISTRY

    return sum(
        s.value
        for family in REGISTRY.collect()
        if family.name == "voice_agent_failovers"
        for s in family.samples
        if s.name.endswith("_total")
        and (s.labels["from_provider"], s.labels["to_provider"]) == (from_provider, to_provider)
    )


def echo_system_prompt(messages: list[dict[str, Any]]) -> str:
    system = next(message_text(m) for m in messages if m.get("role") in ("system", "developer"))
    return f"Answer from the stand-in. Persona: {system}"


async def test_env_org_chain_answers_a_text_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    async with OpenAIStandin(reply=echo_system_prompt) as server:
        monkeypatch.setenv("LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("LLM_MODEL", "llama3.1")
        monkeypatch.setenv("AGENT_INSTRUCTIONS", "You are the Harbor Clinic receptionist.")
        loader = ProviderLoader(LoaderSettings())
        call, replies = await asyncio.wait_for(
            run_text_turn("", loader, "What are your opening hours?"), TIMEOUT
        )
        await loader.aclose()
    assert call.org.source is ConfigSource.ENV
    assert call.chains.providers[ProviderKind.LLM] == ["openai-compatible", "offline"]
    # the session does not run the LLM chain again once it has failed over to its end
    assert call.session.conn_options == call.chains.session_options
    assert call.session.conn_options.llm_conn_options.max_retry == 0
    assert replies == ["Answer from the stand-in. Persona: You are the Harbor Clinic receptionist."]
    assert len(server.chat_requests) == 1


async def test_offline_responder_answers_when_the_llm_is_down(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    faq = tmp_path / "faq.json"
    faq.write_text(json.dumps([{"question": "opening hours", "answer": "Nine to five."}]))
    monkeypatch.setenv("AGENT_FAQ_FILE", str(faq))
    monkeypatch.setenv("LLM_PROVIDER", "openai-compatible")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    monkeypatch.setenv("LLM_MODEL", "llama3.1")
    loader = ProviderLoader(LoaderSettings())
    before = switches_counted("openai-compatible", "offline")
    _, replies = await asyncio.wait_for(
        run_text_turn("", loader, "When are your opening hours?"), TIMEOUT
    )
    await loader.aclose()
    assert replies == ["Nine to five."]
    assert switches_counted("openai-compatible", "offline") == before + 1  # metrics heard it


async def test_participant_attributes_do_not_choose_the_org(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A caller naming another org on its participant still gets the dispatch's org."""
    loader = ProviderLoader(LoaderSettings())
    with fake_job_context(job_metadata=json.dumps({"organizationId": "acme"})) as ctx:
        ctx.job.participant.CopyFrom(
            models.ParticipantInfo(
                identity="caller",
                metadata=json.dumps({"organizationId": "evil"}),
                attributes={"organizationId": "evil"},
            )
        )
        call = await asyncio.wait_for(prepare_call(ctx, loader=loader), TIMEOUT)
    await loader.aclose()
    assert call.org.organization_id == "acme"
    assert call.ref.source == "dispatch"


PLANTED = "sk-test-ENTRY-PLANTED-5550001"


async def test_backend_org_chain_answers_and_no_secret_is_logged(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Org from dispatch metadata, chains and key from the backend, the answer from that
    org's LLM; at DEBUG, no log line or output anywhere carries the planted keys."""
    caplog.set_level(logging.DEBUG)
    async with (
        OpenAIStandin(reply="Acme's own LLM speaking.") as llm_server,
        BackendServer(expected_key="internal-key-PLANTED") as backend,
    ):
        backend.set_org(
            "acme",
            org_payload(
                "acme",
                "7",
                [
                    provider_entry(
                        "openai-compatible",
                        "llm",
                        priority=100,
                        config={"baseUrl": llm_server.base_url, "model": "m"},
                        secrets={"apiKey": PLANTED},
                    ),
                    provider_entry("whisper", "stt", priority=1),
                    provider_entry("piper", "tts", priority=1),
                ],
            ),
            version="7",
        )
        loader = ProviderLoader(
            LoaderSettings(
                backend_url=backend.url, internal_api_key=SecretStr("internal-key-PLANTED")
            ),
            environ={},
        )
        call, replies = await asyncio.wait_for(
            run_text_turn(
                json.dumps({"organizationId": "acme", "providersVersion": "7"}), loader, "Hello?"
            ),
            TIMEOUT,
        )
        await loader.aclose()
    assert call.org.source is ConfigSource.BACKEND and call.org.organization_id == "acme"
    assert call.chains.providers[ProviderKind.LLM] == ["openai-compatible", "offline"]
    # the session does not run the LLM chain again once it has failed over to its end
    assert call.session.conn_options == call.chains.session_options
    assert call.session.conn_options.llm_conn_options.max_retry == 0
    assert replies == ["Acme's own LLM speaking."]
    assert set(llm_server.api_keys_seen) == {PLANTED}  # the org's key, nobody else's
    captured = capsys.readouterr()
    everything = (
        caplog.text
        + captured.out
        + captured.err
        + "".join(repr(r.__dict__) for r in caplog.records)
    )
    assert "call configured" in caplog.text
    assert PLANTED not in everything and "internal-key-PLANTED" not in everything


async def test_turn_taking_settings_reach_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENDPOINTING_MIN_DELAY", "0.45")
    monkeypatch.setenv("ENDPOINTING_MAX_DELAY", "2.25")
    start_up()
    loader = ProviderLoader(LoaderSettings())
    with fake_job_context() as ctx:
        call = await asyncio.wait_for(prepare_call(ctx, loader=loader), TIMEOUT)
    await loader.aclose()
    endpointing = call.session.options.endpointing
    assert (endpointing["min_delay"], endpointing["max_delay"]) == (0.45, 2.25)


def test_vad_silence_setting_reaches_silero(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.worker.prewarm import prewarm

    monkeypatch.setenv("VAD_MIN_SILENCE", "0.42")
    monkeypatch.setenv("STT_PROVIDER", "deepgram")  # no local model to load: the VAD only
    monkeypatch.setenv("TTS_HOST", "127.0.0.1")
    proc = SimpleNamespace(userdata={})
    prewarm(proc, settings=Settings.from_env(os.environ))  # type: ignore[arg-type]
    assert proc.userdata["vad"]._opts.min_silence_duration == 0.42


async def test_turn_taking_is_silence_with_joined_pauses_unless_asked_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from livekit.agents.inference import TurnDetector

    loader = ProviderLoader(LoaderSettings())
    try:
        monkeypatch.setenv("STT_PROVIDER", "whisper")
        with fake_job_context() as ctx:
            call = await asyncio.wait_for(prepare_call(ctx, loader=loader), TIMEOUT)
        handling = call.session.options.turn_handling
        assert call.session.turn_detection == "vad"
        assert handling["interruption"]["mode"] == "vad"
        assert handling["preemptive_generation"]["preemptive_tts"] is True
        # Whisper's adapter joins mid-sentence pauses: no extra endpointing wait
        assert call.chains.joins_pauses and handling["endpointing"]["min_delay"] == 0.3

        monkeypatch.setenv("TURN_DETECTOR", "local")
        monkeypatch.setenv("INTERRUPTION_MODE", "adaptive")
        monkeypatch.setenv("PREEMPTIVE_GENERATION", "llm")
        start_up()
        with fake_job_context() as ctx:
            call = await asyncio.wait_for(prepare_call(ctx, loader=loader), TIMEOUT)
        detector = call.session.turn_detection
        handling = call.session.options.turn_handling
        assert isinstance(detector, TurnDetector) and detector.model == "turn-detector-v1-mini"
        assert handling["interruption"]["mode"] == "adaptive"
        assert handling["preemptive_generation"]["preemptive_tts"] is False

        # a streaming STT sends its finals at its own pace: the endpointing waits the pause
        monkeypatch.setenv("TURN_DETECTOR", "vad")
        monkeypatch.setenv("STT_PROVIDER", "deepgram")
        monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-test-key")
        monkeypatch.setenv("MID_SENTENCE_PAUSE", "0.6")
        start_up()
        with fake_job_context() as ctx:
            call = await asyncio.wait_for(prepare_call(ctx, loader=loader), TIMEOUT)
        assert not call.chains.joins_pauses
        assert call.session.options.turn_handling["endpointing"]["min_delay"] == 0.6

        # a bad value stops the worker at start-up, before any call
        monkeypatch.setenv("TURN_DETECTOR", "smart")
        with pytest.raises(ConfigError, match="TURN_DETECTOR='smart'"):
            start_up()
    finally:
        await loader.aclose()


def test_prewarm_does_not_warn_about_a_model_no_chain_is_built_with(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    from agent.worker.prewarm import load_local_models
    from providers.chains.build import build_chains
    from providers.config.env import env_providers

    monkeypatch.setenv("STT_PROVIDER", "vosk")
    monkeypatch.setenv("STT_FALLBACK", "whisper")
    monkeypatch.setenv("VOSK_MODEL_PATH", str(tmp_path / "no-model-here"))
    monkeypatch.setenv("TTS_PROVIDER", "piper")
    monkeypatch.setenv("TTS_HOST", "127.0.0.1")  # a Piper server: nothing to load
    monkeypatch.setenv("LLM_PROVIDER", "offline")
    monkeypatch.setenv("WHISPER_MODEL", str(tmp_path / "no-whisper-either"))

    with caplog.at_level(logging.INFO):
        load_local_models(Settings.from_env(os.environ))
    noted = [r for r in caplog.records if r.getMessage().startswith("local model not loaded")]
    assert {r.__dict__["provider"] for r in noted} >= {"'vosk' (stt)"}
    assert all(r.levelno == logging.INFO for r in noted)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    # the call whose chain holds Vosk is where the warning belongs
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        chains = build_chains(env_providers("demo"), vad=shared_vad())
    assert chains.providers[ProviderKind.STT] == ["whisper"]
    [left_out] = [r for r in caplog.records if r.getMessage() == "provider left out of the chain"]
    assert left_out.__dict__["provider"] == "'vosk' (stt)"
    assert "no Vosk model found" in left_out.__dict__["reason"]


async def test_livekits_on_session_end_spools_the_calls_usage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """livekit calls ``on_session_end`` once it has closed the job's session: the call's
    usage, from livekit's session report, is priced and spooled (the backend is never
    waited for: nothing listens at its URL), once."""
    from agent.worker.call import session_ended
    from agent.worker.usage import get_usage
    from tests.support.net import free_port

    monkeypatch.setenv("AICO_BACKEND_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AICO_INTERNAL_API_KEY", "internal")
    async with OpenAIStandin(reply="Nine to five.") as server:
        monkeypatch.setenv("LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("LLM_MODEL", "llama3.1")
        settings = start_up()
        loader = ProviderLoader(LoaderSettings(), environ=settings.provider_env)
        with fake_job_context(job_id="job-usage") as ctx:
            call = await asyncio.wait_for(prepare_call(ctx, loader=loader), TIMEOUT)
            await call.session.start(agent=call.agent)
            await asyncio.wait_for(call.session.run(user_input="When are you open?"), TIMEOUT)
            await call.session.aclose()  # what livekit does before on_session_end
            await asyncio.wait_for(session_ended(ctx), TIMEOUT)
            await session_ended(ctx)  # the call is finished: nothing more is counted
        await loader.aclose()
    record = call.record
    assert record is not None and record.call_id == "job-usage"
    [llm] = [u for u in record.usage if u.kind == "llm"]
    assert llm.provider == "openai-compatible" and sum(llm.units.values()) > 0
    spool = get_usage().spool
    assert spool is not None and spool.depth() == 1


def test_the_server_hands_livekit_the_session_end_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit.agents import AgentServer

    from agent.worker.call import entrypoint, session_ended
    from agent.worker.server import build_server

    registered: dict[str, Any] = {}
    real = AgentServer.rtc_session

    def spy(self: AgentServer, *args: Any, **kwargs: Any) -> Any:
        registered.update(kwargs, args=args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AgentServer, "rtc_session", spy)
    monkeypatch.setenv("STATUS_PORT", "off")
    build_server(start_up())
    assert registered["args"] == (entrypoint,)
    assert registered["on_session_end"] is session_ended
