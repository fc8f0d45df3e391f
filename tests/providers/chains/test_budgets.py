"""What a chain allows each provider (``providers.chains.budgets``): one variable per kind,
the STT replay, and a provider's own ``firstResultTimeout`` over its kind's."""

from __future__ import annotations

import pytest

from providers.catalogue import provider_config
from providers.chains.budgets import DEFAULT_BUDGET, DEFAULT_REPLAY, FailoverSettings
from providers.errors import ConfigError
from providers.types import ProviderKind

STT, LLM, TTS = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
REALTIME = ProviderKind.REALTIME


def test_each_kind_reads_its_own_variable() -> None:
    settings = FailoverSettings.from_env(
        {
            "STT_CONNECT_TIMEOUT": "0.5",
            "LLM_FIRST_TOKEN_TIMEOUT": "1.5",
            "TTS_FIRST_AUDIO_TIMEOUT": "3",
            "REALTIME_FIRST_AUDIO_TIMEOUT": "2.5",
            "STT_REPLAY_SECONDS": "0",
        }
    )
    assert settings.budgets == {STT: 0.5, LLM: 1.5, TTS: 3.0, REALTIME: 2.5}
    assert settings.stt_replay == 0.0


def test_unset_variables_take_the_defaults() -> None:
    settings = FailoverSettings.from_env({})
    assert settings.budgets == dict.fromkeys(ProviderKind, DEFAULT_BUDGET)
    assert settings.stt_replay == DEFAULT_REPLAY


@pytest.mark.parametrize("raw", ["soon", "-1"])
def test_a_bad_budget_names_its_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="TTS_FIRST_AUDIO_TIMEOUT"):
        FailoverSettings.from_env({"TTS_FIRST_AUDIO_TIMEOUT": raw})


def test_a_providers_own_budget_wins_over_its_kinds() -> None:
    settings = FailoverSettings({STT: 1.0, LLM: 1.0, TTS: 3.0})
    own = provider_config(provider="cartesia", kind=TTS, options={"firstResultTimeout": 0.75})
    assert settings.budget(own) == 0.75
    assert settings.budget(provider_config(provider="cartesia", kind=TTS)) == 3.0
