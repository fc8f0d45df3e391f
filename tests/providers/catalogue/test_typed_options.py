"""Options are typed once, when a config is made (``ProviderConfig.settings``): breakers,
budgets and the ``local-only`` strategy read typed fields, never the raw dict; a bad option
is rejected at load naming the org, the provider and the field; and one rule puts the
offline responder last, for the factory and ``python -m agent providers`` alike."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pydantic import SecretStr

from agent.tools.providers_cmd import _with_offline
from providers.catalogue import provider_config
from providers.catalogue.registry import REGISTRY
from providers.chains import routing as strategy
from providers.chains.budgets import FailoverSettings
from providers.chains.build import build_chains
from providers.chains.health import HealthKeys, HealthRegistry
from providers.config.backend import parse_response
from providers.config.env import env_providers
from providers.errors import ConfigError
from providers.types import AgentPersona, OrgProviders, ProviderConfig, ProviderKind

STT, LLM, TTS = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
KEY = {"apiKey": SecretStr("sk-typed-options-secret-42")}
ORG = "acme"


def cfg(name: str, kind: ProviderKind, priority: int = 0, **options: Any) -> ProviderConfig:
    secrets = KEY if REGISTRY[(name, kind)].secrets else {}
    return provider_config(
        provider=name, kind=kind, priority=priority, options=options, secrets=secrets
    )


def entry(name: str, kind: str, priority: int = 0, **config: Any) -> dict[str, Any]:
    return {
        "providerId": name,
        "type": kind,
        "isEnabled": True,
        "priority": priority,
        "config": config,
        "secrets": {"apiKey": "sk-typed-options-secret-42"},
    }


def parse(*providers: dict[str, Any]) -> OrgProviders:
    body = {"organizationId": ORG, "version": "1", "providers": list(providers)}
    return parse_response(json.dumps(body).encode(), ORG, None)


# --- breaker keys and local-only read typed fields -------------------------------------


def test_camel_and_snake_base_url_give_the_same_breaker() -> None:
    camel = HealthKeys.of(cfg("elevenlabs", TTS, baseUrl="https://eu.example.com"))
    snake = HealthKeys.of(cfg("elevenlabs", TTS, base_url="https://eu.example.com"))
    assert camel == snake
    assert camel.endpoint == "tts/elevenlabs@https://eu.example.com"


def test_a_servers_default_port_is_the_same_server_as_its_explicit_one() -> None:
    implicit = HealthKeys.of(cfg("vosk", STT, host="vosk.internal"))
    explicit = HealthKeys.of(cfg("vosk", STT, host="vosk.internal", port=2700))
    assert implicit == explicit and implicit.endpoint == "stt/vosk@vosk.internal:2700"
    assert HealthKeys.of(cfg("vosk", STT)).endpoint == "stt/vosk@default"  # in-process


def test_only_options_a_provider_declares_name_its_endpoint() -> None:
    # ElevenLabs has no ``host`` option: a stray one neither moves its breaker nor makes
    # it local (the old raw-dict guess took any ``host``)
    stray = cfg("elevenlabs", TTS, host="127.0.0.1")
    assert HealthKeys.of(stray).endpoint == "tts/elevenlabs@default"
    assert not strategy.is_local(stray)
    # Azure resources are per organization: each its own breaker
    azure = [
        HealthKeys.of(cfg("azure-openai", LLM, azureEndpoint=f"https://{org}.openai.azure.com"))
        for org in ("acme", "globex")
    ]
    assert azure[0].endpoint != azure[1].endpoint


def test_local_only_reads_the_typed_endpoint() -> None:
    local = cfg("openai-compatible", LLM, baseUrl="http://127.0.0.1:11434/v1", model="llama3.1")
    remote_piper = cfg("piper", TTS, host="tts.example.com")
    assert strategy.is_local(local)
    assert strategy.is_local(cfg("piper", TTS)) and not strategy.is_local(remote_piper)


# --- failover budget ---------------------------------------------------------------------


def test_the_budget_is_the_typed_first_result_timeout() -> None:
    settings = FailoverSettings.from_env({})
    # a backend form may send numbers as text: typed once, it is still the provider's budget
    for options in ({"firstResultTimeout": 0.75}, {"first_result_timeout": "0.75"}):
        assert settings.budget(cfg("cartesia", TTS, **options)) == 0.75
    assert settings.budget(cfg("cartesia", TTS)) == 2.0


@pytest.mark.parametrize("bad", [-1, 0, "soon"])
def test_a_bad_first_result_timeout_is_rejected_at_load_naming_org_provider_field(
    bad: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        org = parse(
            entry("elevenlabs", "tts", 10, firstResultTimeout=bad),
            entry("piper", "tts", 1),
        )
    assert [c.provider for c in org.tts] == ["piper"]  # the rest of the chain is kept
    [record] = [r for r in caplog.records if r.getMessage() == "skipping invalid provider entry"]
    fields: Any = record
    assert (fields.org, fields.entry) == (ORG, "provider 'elevenlabs'")
    assert fields.problem.startswith("options.firstResultTimeout: ")
    assert not isinstance(bad, str) or bad not in fields.problem  # values are never echoed
    assert "sk-typed-options-secret-42" not in caplog.text


def test_unknown_options_are_reported_at_load_not_at_every_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        org = parse(entry("piper", "tts", 1, pitch=3), entry("vosk", "stt", 1, host="v"))
    [record] = [r for r in caplog.records if "unknown provider options" in r.getMessage()]
    fields: Any = record
    assert (fields.org, fields.options) == (ORG, ["pitch"])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        org = org.model_copy(update={"agent": AgentPersona()})
        build_chains(org, vad=None, health=HealthRegistry())
    assert "unknown provider options" not in caplog.text


def test_a_bad_option_in_the_environment_names_provider_field_and_variable() -> None:
    with pytest.raises(ConfigError) as e:
        env_providers(environ={"STT_PROVIDER": "vosk", "STT_HOST": "v", "STT_PORT": "twenty"})
    message = str(e.value)
    assert "provider 'vosk'" in message and "options.port" in message and "STT_PORT" in message
    assert "twenty" not in message


# --- the offline responder is last, by one rule -------------------------------------------


def test_the_factory_and_the_providers_command_put_the_offline_responder_last() -> None:
    org = OrgProviders(
        organization_id=ORG,
        stt=(cfg("vosk", STT, host="127.0.0.1"),),
        # configured first, with the highest priority: still the last resort
        llm=(cfg("offline", LLM, 100), cfg("openai", LLM, 50), cfg("groq", LLM, 10)),
        tts=(cfg("piper", TTS),),
    )
    health = HealthRegistry()
    health.record_failure(HealthKeys.of(org.llm[1]), ConnectionError())  # openai is down
    chains = build_chains(org, vad=None, health=health)
    # a down LLM goes to the back of the real ones, never behind the offline responder
    assert chains.providers[LLM] == ["groq", "openai", "offline"]

    shown = _with_offline(org).llm
    assert [c.provider for c in shown] == ["openai", "groq", "offline"]
    assert shown[-1].priority < min(c.priority for c in shown[:-1])  # reads in order

    bare = org.model_copy(update={"llm": (cfg("openai", LLM, 5),)})
    assert [c.provider for c in _with_offline(bare).llm] == ["openai", "offline"]
    built = build_chains(bare, vad=None, health=HealthRegistry())
    assert built.providers[LLM] == ["openai", "offline"]
