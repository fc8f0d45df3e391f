"""Prices are refused at parse when no record could be priced with them: ``NaN``,
``Infinity``, a number that overflows a float or that no real price reaches — from
``PRICING_JSON`` (start-up of the worker and of every command) and from an org's
``config.pricing`` (its config load), each error naming where: org, provider, field."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from providers.catalogue.pricing import PriceOverrides, Unit, parse_price
from providers.config.backend import parse_response
from providers.errors import ConfigError
from providers.types import ProviderKind
from tests.support import REPO
from tests.support.env import clean_environ

BAD = ["NaN", "Infinity", "-Infinity", "1e999", "1" + "0" * 400, "2e6", "-1"]


@pytest.mark.parametrize("number", BAD)
def test_pricing_json_refuses_what_no_record_can_be_priced_with(number: str) -> None:
    raw = '{"stt/deepgram": {"audioSeconds": ' + number + "}}"
    with pytest.raises(ConfigError) as e:
        PriceOverrides.parse(raw)
    assert "PRICING_JSON['stt/deepgram']: pricing.audioSeconds" in str(e.value)


def test_a_real_price_still_parses() -> None:
    price = parse_price({"inputTokens": 2e-6, "outputTokens": 0}, "here")
    assert price == {Unit.INPUT_TOKENS: 2e-6, Unit.OUTPUT_TOKENS: 0.0}


@pytest.mark.parametrize(
    "command", [["usage"], ["providers"], ["status", "--url", "http://127.0.0.1:9"], ["start"]]
)
def test_every_command_refuses_a_nan_price_at_start(command: list[str]) -> None:
    env = {
        **clean_environ(),
        "PRICING_JSON": json.dumps({"llm/openai": {"inputTokens": float("nan")}}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "agent", *command],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "PRICING_JSON['llm/openai']: pricing.inputTokens" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_org_s_nan_price_is_ignored_naming_org_provider_and_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = (
        b'{"providers": [{"providerId": "deepgram", "type": "stt", "isEnabled": true,'
        b' "priority": 1, "config": {"pricing": {"audioSeconds": NaN}},'
        b' "secrets": {"apiKey": "k"}}]}'
    )
    with caplog.at_level(logging.WARNING):
        org = parse_response(body, "acme", None)
    (config,) = org.chain(ProviderKind.STT)
    assert config.pricing is None  # the registry's default prices it, never NaN
    (line,) = [r for r in caplog.records if r.getMessage() == "ignoring invalid provider pricing"]
    problem = line.problem  # type: ignore[attr-defined]
    assert "org 'acme'" in problem and "deepgram" in problem
    assert "pricing.audioSeconds" in problem and "nan" in problem
