"""Environment-mode configuration (SPEC §3.5): each provider of a chain gets only the
settings meant for it, the cloud preset included, and every variable is documented."""

from __future__ import annotations

import logging
import re
import shlex

import pytest

import providers.config.env as env_module
from providers.catalogue import build_provider
from providers.catalogue.registry import ENV_HINTS, REGISTRY
from providers.config.env import env_providers
from providers.types import OrgProviders, ProviderConfig
from tests.support import REPO

CHAINS = {"STT_PROVIDER": "whisper", "TTS_PROVIDER": "piper"}


@pytest.fixture(autouse=True)
def _fresh_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unread variables are reported once per process; each test starts unreported."""
    monkeypatch.setattr(env_module, "_reported", set())


def by_name(configs: tuple[ProviderConfig, ...]) -> dict[str, ProviderConfig]:
    return {c.provider: c for c in configs}


def preset(name: str) -> dict[str, str]:
    """A preset file's assignments, as ``set -a; . ./file`` would export them."""
    values = {}
    for line in (REPO / name).read_text().splitlines():
        if re.match(r"^[A-Z_][A-Z0-9_]*=", line):
            key, raw = line.split("=", 1)
            values[key] = " ".join(shlex.split(raw))
    return values


def test_an_openai_groq_chain_gives_each_its_own_model() -> None:
    env = {
        **CHAINS,
        "LLM_PROVIDER": "openai",
        "LLM_FALLBACK": "groq,offline",
        "OPENAI_LLM_MODEL": "gpt-4.1-mini",
        "GROQ_LLM_MODEL": "llama-3.1-8b-instant",
        "OPENAI_API_KEY": "sk-test-openai",
        "GROQ_API_KEY": "gsk-test-groq",
    }
    org = env_providers("demo", env)
    llms = by_name(org.llm)
    assert [c.provider for c in org.llm] == ["openai", "groq", "offline"]
    assert llms["openai"].options == {"model": "gpt-4.1-mini"}
    assert llms["groq"].options == {"model": "llama-3.1-8b-instant"}
    # and the built plugins really ask for those models
    assert build_provider(llms["openai"], org).model == "gpt-4.1-mini"
    assert build_provider(llms["groq"], org).model == "llama-3.1-8b-instant"


def test_the_cloud_presets_openai_model_is_not_sent_to_groq() -> None:
    env = {**preset(".env.cloud-providers"), "OPENAI_API_KEY": "k", "GROQ_API_KEY": "k"}
    org = env_providers("demo", env)
    llms = by_name(org.llm)
    assert llms["openai"].options == {"model": "gpt-4.1-mini"}
    assert "model" not in llms["groq"].options
    assert build_provider(llms["groq"], org).model == "llama-3.3-70b-versatile"  # its default


def test_voices_are_per_provider_too() -> None:
    env = {
        **CHAINS,
        "TTS_PROVIDER": "elevenlabs",
        "TTS_FALLBACK": "cartesia,piper",
        "ELEVENLABS_VOICE_ID": "el-voice",
        "CARTESIA_VOICE": "ca-voice",
    }
    tts = by_name(env_providers("demo", env).tts)
    assert tts["elevenlabs"].options == {"voice_id": "el-voice"}
    assert tts["cartesia"].options == {"voice": "ca-voice"}
    assert tts["piper"].options == {}


def test_llm_model_is_the_openai_compatible_servers_only() -> None:
    env = {
        **CHAINS,
        "LLM_FALLBACK": "openai",
        "LLM_BASE_URL": "http://127.0.0.1:11434/v1",
        "LLM_MODEL": "llama3.1",
    }
    llms = by_name(env_providers("demo", env).llm)
    assert llms["openai-compatible"].options == {
        "model": "llama3.1",
        "base_url": "http://127.0.0.1:11434/v1",
    }
    assert llms["openai"].options == {}


def test_a_shared_variable_no_provider_reads_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {**CHAINS, "LLM_PROVIDER": "openai", "LLM_FALLBACK": "groq", "LLM_MODEL": "gpt-4o"}
    with caplog.at_level(logging.WARNING):
        first = env_providers("demo", env)
        env_providers("demo", env)
    assert all("model" not in c.options for c in first.llm)
    [record] = [r for r in caplog.records if "read by no provider" in r.getMessage()]
    assert record.variable == "LLM_MODEL"  # type: ignore[attr-defined]
    assert "OPENAI_LLM_MODEL" in record.use  # type: ignore[attr-defined]
    assert "GROQ_LLM_MODEL" in record.use  # type: ignore[attr-defined]


def test_no_report_when_the_chain_reads_it(caplog: pytest.LogCaptureFixture) -> None:
    env = {**CHAINS, "LLM_BASE_URL": "http://127.0.0.1:9/v1", "LLM_MODEL": "llama3.1"}
    with caplog.at_level(logging.WARNING):
        org: OrgProviders = env_providers("demo", env)
    assert org.llm[0].provider == "openai-compatible"
    assert not [r for r in caplog.records if "read by no provider" in r.getMessage()]


def test_every_variable_the_registry_reads_is_documented() -> None:
    example = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    variables = {v for spec in REGISTRY.values() for v in spec.env_options.values()}
    variables |= {v for spec in REGISTRY.values() for s in spec.secrets for v in s.env}
    for var in sorted(variables):
        assert re.search(rf"^{var}=", example, re.M), f"{var} is missing from .env.example"
        assert f"`{var}`" in readme, f"{var} is missing from README.md"
    # the retired shared names are not offered as settings any more
    for var in ENV_HINTS:
        if var not in variables:
            assert not re.search(rf"^{var}=", example, re.M), f"{var} still in .env.example"
