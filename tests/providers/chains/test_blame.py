"""The one rule that says which breaker a failure counts against (``providers.chains.blame``),
and what it means for the registry: an org's config failure never reaches the endpoint."""

from __future__ import annotations

import pytest
from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError
from pydantic import SecretStr

from providers.catalogue import provider_config
from providers.chains.blame import Blame, BudgetTimeout, blame
from providers.chains.health import HealthKeys, HealthRegistry
from providers.types import ProviderConfig, ProviderKind


def status(code: int) -> APIStatusError:
    return APIStatusError("x", status_code=code)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (status(400), Blame.CONFIG),  # invalid model, temperature, over-long prompt
        (status(404), Blame.CONFIG),  # a model this org names that does not exist
        (status(413), Blame.CONFIG),
        (status(422), Blame.CONFIG),
        (BudgetTimeout("x", budget=0.1, own=True), Blame.CONFIG),  # the org's own budget
        (status(401), Blame.CREDENTIAL),
        (status(402), Blame.CREDENTIAL),
        (status(403), Blame.CREDENTIAL),
        (status(429), Blame.CREDENTIAL),  # shared by every org using the key
        (status(408), Blame.ENDPOINT),
        (status(500), Blame.ENDPOINT),
        (status(503), Blame.ENDPOINT),
        (status(1006), Blame.ENDPOINT),  # a websocket closed abnormally
        (status(-1), Blame.ENDPOINT),  # a plugin's "could not synthesize"
        (BudgetTimeout("x", budget=2.0, own=False), Blame.ENDPOINT),  # the worker's budget
        (APITimeoutError(), Blame.ENDPOINT),  # a plugin's own timeout
        (APIConnectionError(), Blame.ENDPOINT),
        (APIError("no audio"), Blame.ENDPOINT),
        (ConnectionRefusedError(), Blame.ENDPOINT),
    ],
)
def test_blame(error: BaseException, expected: Blame) -> None:
    assert blame(error) is expected


def test_a_timeout_under_a_provider_timeout_the_config_shortened_is_the_config_s() -> None:
    assert blame(APITimeoutError(), own_timeouts=True) is Blame.CONFIG
    assert blame(BudgetTimeout("x", budget=2.0, own=False), own_timeouts=True) is Blame.CONFIG
    assert blame(APIConnectionError(), own_timeouts=True) is Blame.ENDPOINT  # refused
    assert blame(status(500), own_timeouts=True) is Blame.ENDPOINT
    piper = provider_config(provider="piper", kind=ProviderKind.TTS, options={"timeout": 0.1})
    assert HealthKeys.of(piper).own_timeouts
    assert not HealthKeys.of(provider_config(provider="piper", kind=ProviderKind.TTS)).own_timeouts
    slower = provider_config(provider="piper", kind=ProviderKind.TTS, options={"timeout": 9})
    assert not HealthKeys.of(slower).own_timeouts


def config(**options: object) -> ProviderConfig:
    return provider_config(
        provider="openai",
        kind=ProviderKind.LLM,
        options={"base_url": "https://api.example.com/v1", **options},
        secrets={"apiKey": SecretStr("sk-shared-env-key")},
    )


def test_an_org_config_failure_closes_the_provider_for_that_org_and_config_only() -> None:
    health = HealthRegistry()
    acme, globex = HealthKeys.of(config(), "acme"), HealthKeys.of(config(), "globex")
    health.record_failure(acme, status(400))
    assert health.is_down(acme) and not health.is_down(globex)
    assert HealthKeys.of(config(temperature=0.5), "acme").config != acme.config  # a fix
    assert not health.is_down(HealthKeys.of(config(temperature=0.5), "acme"))
    assert acme.endpoint == globex.endpoint and acme.config != globex.config
    assert "sk-shared-env-key" not in repr(acme)


def test_keys_made_without_a_config_key_hold_a_config_failure_against_nothing() -> None:
    health = HealthRegistry()
    keys = HealthKeys("llm/openai@x", None, "llm", "openai")
    assert not health.record_failure(keys, status(400))
    assert not health.is_down(keys) and health.snapshot() == []


def test_healthy_config_breakers_are_not_listed() -> None:
    health = HealthRegistry()
    keys = HealthKeys.of(config(), "acme")
    health.register(keys)
    assert {b.key for b in health.snapshot()} == {keys.endpoint, keys.credential}


def test_a_skip_for_an_org_config_says_so() -> None:
    health = HealthRegistry()
    keys = HealthKeys.of(config(), "acme")
    health.record_failure(keys, status(400))
    assert not health.allow(keys)
    assert "this organization's calls skip it with this config" in health.why_skipped(keys)
