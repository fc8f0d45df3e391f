"""Shared test set-up: no test reads the developer's real environment or keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.settings import Settings
from tests.support.env import start_up

# variables that change which providers or backend a call gets
_CONFIG_VARS = (
    "AICO_BACKEND_URL AICO_INTERNAL_API_KEY PROVIDER_ENV_FALLBACK PROVIDER_CACHE_TTL "
    "PROVIDER_BACKEND_RETRY_AFTER "
    "STT_PROVIDER STT_FALLBACK TTS_PROVIDER TTS_FALLBACK LLM_PROVIDER LLM_FALLBACK "
    "STT_HOST STT_PORT TTS_HOST TTS_PORT LLM_MODEL LLM_BASE_URL LLM_API_KEY "
    "STT_MODEL TTS_VOICE STT_LANGUAGE DEEPGRAM_STT_MODEL OPENAI_STT_MODEL ELEVENLABS_VOICE_ID "
    "CARTESIA_VOICE OPENAI_TTS_VOICE OPENAI_LLM_MODEL GROQ_LLM_MODEL GEMINI_LLM_MODEL "
    "ANTHROPIC_LLM_MODEL AZURE_OPENAI_LLM_MODEL OPENAI_BASE_URL AZURE_OPENAI_ENDPOINT "
    "AZURE_OPENAI_DEPLOYMENT OPENAI_API_VERSION "
    "DEFAULT_ORGANIZATION_ID AGENT_INSTRUCTIONS AGENT_GREETING AGENT_FAQ_FILE "
    "DEEPGRAM_API_KEY OPENAI_API_KEY ELEVEN_API_KEY ELEVENLABS_API_KEY CARTESIA_API_KEY "
    "GROQ_API_KEY GOOGLE_API_KEY GEMINI_API_KEY ANTHROPIC_API_KEY AZURE_OPENAI_API_KEY "
    "VOSK_MODEL_PATH PIPER_VOICE WHISPER_MODEL PROVIDER_STRATEGY PRICING_JSON"
).split()


@pytest.fixture(autouse=True)
def _clean_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def settings(
    _clean_provider_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Settings]:
    """The installed settings, as ``python -m agent`` builds them; each test spools usage
    records in its own directory, with a fresh sender. A test that sets variables calls
    ``tests.support.env.start_up()`` again."""
    from agent.worker.usage import reset_usage

    monkeypatch.setenv("USAGE_SPOOL_DIR", str(tmp_path / "usage-spool"))
    yield start_up()
    reset_usage()


@pytest.fixture(autouse=True)
def _fresh_provider_health() -> None:
    """Breakers are worker-wide by design; one test's outage must not leak into the next."""
    from providers.chains.health import get_health

    get_health().reset()
