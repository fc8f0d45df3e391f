"""The backend's wire format (``providers.config.backend``) as the loader reads it from a real
aiohttp backend on 127.0.0.1 (SPEC §3.2): the body's version, absurd JSON, and entries
that are skipped with a warning naming them while the rest are used."""

from __future__ import annotations

import json
import logging

import pytest

from providers.config.backend import parse_response
from providers.errors import BackendError
from providers.types import ConfigSource
from tests.standins.backend import BackendServer, provider_entry
from tests.support.loader import (
    BACKEND_SUMMARY,
    ORG,
    MakeLoader,
    acme_body,
    acme_providers,
    names,
    warnings_of,
    within,
)


async def test_version_comes_from_the_body(backend: BackendServer, make_loader: MakeLoader) -> None:
    body = acme_body("17")
    body["version"] = 42  # an integer version is still an opaque string to the worker
    backend.set_org(ORG, body, version="17")
    config = await within(make_loader(backend.url).load(ORG))
    assert config.version == "42"


_DEEP_JSON = b'{"providers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize("env_fallback", [True, False], ids=["hybrid", "backend-only"])
async def test_deeply_nested_json_is_invalid_json(
    backend: BackendServer, make_loader: MakeLoader, env_fallback: bool
) -> None:
    backend.behave(ORG, raw_body=_DEEP_JSON)
    loader = make_loader(backend.url, env_fallback=env_fallback)
    if env_fallback:
        config = await within(loader.load(ORG))
        assert config.source is ConfigSource.ENV
    else:
        with pytest.raises(BackendError, match=f"org '{ORG}'.*invalid JSON"):
            await within(loader.load(ORG))


def test_json_nested_past_the_bound_is_refused_before_anything_walks_it() -> None:
    """Shallow enough for the parser, too deep for what walks an option afterwards
    (validation, the breaker's config hash): the whole answer is refused, by name."""
    body = acme_body()
    body["providers"][1]["config"]["extra"] = json.loads("[" * 400 + "]" * 400)
    with pytest.raises(BackendError, match="invalid JSON \\(nested deeper than 32 levels\\)"):
        parse_response(json.dumps(body).encode(), ORG, None)


async def test_entry_with_a_wrong_type_is_skipped_and_the_rest_used(
    backend: BackendServer, make_loader: MakeLoader, caplog: pytest.LogCaptureFixture
) -> None:
    providers = [
        *acme_providers(),
        provider_entry("openai", "stt", priority="high", secrets={"apiKey": "x"}),
        provider_entry("deepgram", "nope", priority=1),
        provider_entry("elevenlabs", "tts", priority=1, config="not-an-object"),
        "not an entry",
        {"type": "stt"},
    ]
    backend.set_org(ORG, acme_body("17", providers), version="17")
    loader = make_loader(backend.url, env_fallback=False)

    with caplog.at_level(logging.WARNING):
        config = await within(loader.load(ORG))

    assert config.source is ConfigSource.BACKEND
    assert names(config) == BACKEND_SUMMARY
    skipped = warnings_of(caplog, "skipping invalid provider entry")
    assert len(skipped) == 5
    by_entry = {r.entry: r.problem for r in skipped}  # type: ignore[attr-defined]
    assert "priority" in by_entry["provider 'openai'"]
    assert "type" in by_entry["provider 'deepgram'"]
    assert "config" in by_entry["provider 'elevenlabs'"]
    assert "providers[" in " ".join(by_entry)
    assert all(r.org == ORG for r in skipped)  # type: ignore[attr-defined]


async def test_unknown_provider_is_skipped_with_a_warning_naming_it(
    backend: BackendServer, make_loader: MakeLoader, caplog: pytest.LogCaptureFixture
) -> None:
    providers = [
        *acme_providers(),
        provider_entry("telepathy", "stt", priority=1000),
        provider_entry("piper", "llm", priority=1000),  # known name, wrong kind
    ]
    backend.set_org(ORG, acme_body("17", providers), version="17")
    loader = make_loader(backend.url, env_fallback=False)

    with caplog.at_level(logging.WARNING):
        config = await within(loader.load(ORG))

    assert names(config) == BACKEND_SUMMARY
    unknown = warnings_of(caplog, "skipping unknown provider")
    entries = sorted(r.entry for r in unknown)  # type: ignore[attr-defined]
    assert entries == ["provider 'piper'", "provider 'telepathy'"]
    telepathy = next(r for r in unknown if "telepathy" in r.entry)  # type: ignore[attr-defined]
    assert telepathy.org == ORG  # type: ignore[attr-defined]
    assert telepathy.kind == "stt"  # type: ignore[attr-defined]
    assert "deepgram" in telepathy.known  # type: ignore[attr-defined]
