"""ProviderLoader against a real aiohttp backend on 127.0.0.1 (SPEC §3.2–3.4, §10).

Every test passes an explicit ``environ`` (the process environment is never read) and
bounds each await with ``within``; TTL tests drive a fake clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

import providers.config.loader as loader_module
from providers.config.settings import LoaderSettings
from providers.errors import BackendError, ConfigError, OrgNotFoundError
from providers.types import ConfigSource, OrgProviders, ProviderKind
from tests.standins.backend import PROVIDERS_PATH, BackendServer, org_payload, provider_entry
from tests.support.loader import (
    BACKEND_SUMMARY,
    DEEPGRAM_KEY,
    ENV_SUMMARY,
    KEY,
    OPENAI_KEY,
    ORG,
    PLANTED,
    FakeClock,
    MakeLoader,
    acme_body,
    acme_providers,
    names,
    warnings_of,
    within,
)
from tests.support.net import free_port

# --- miss, hit, TTL, revalidation ---------------------------------------------------------


async def test_miss_sends_one_authenticated_request_and_orders_chains(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    loader = make_loader(backend.url)

    config = await within(loader.load(ORG))

    assert len(backend.requests) == 1, backend.requests
    req = backend.requests[0]
    assert req.path == PROVIDERS_PATH
    assert req.query == ""  # the unfiltered form: all kinds in one request
    assert req.organization_id == ORG
    assert req.authorization == f"Bearer {KEY}"
    assert req.if_none_match is None
    assert req.status == 200
    assert loader.backend_requests == 1

    assert config.source is ConfigSource.BACKEND
    assert config.organization_id == ORG
    assert config.version == "17"
    # higher priority first; the disabled openai STT (priority 500) is dropped
    assert names(config) == BACKEND_SUMMARY
    assert [c.priority for c in config.stt] == [100, 10]
    assert config.stt[0].secret("apiKey") == DEEPGRAM_KEY
    assert dict(config.stt[0].options) == {"model": "nova-3", "language": "en"}
    assert dict(config.stt[1].options) == {"host": "vosk.internal", "port": 2700}
    assert config.llm[1].secret("apiKey") == OPENAI_KEY
    assert all(c.enabled for k in ProviderKind for c in config.chain(k))
    assert config.agent.greeting == "Hello, Acme Dental, how can I help?"
    assert config.agent.faq[0].answer == "We are open nine to five."


async def test_hit_makes_no_request(
    backend: BackendServer, make_loader: MakeLoader, clock: FakeClock
) -> None:
    loader = make_loader(backend.url, cache_ttl=60)
    first = await within(loader.load(ORG))

    clock.advance(59)
    second = await within(loader.load(ORG))

    assert len(backend.requests) == 1
    assert loader.backend_requests == 1
    assert second.source is ConfigSource.CACHE
    assert second.version == first.version == "17"
    assert names(second) == names(first)
    assert second.stt[0].secret("apiKey") == DEEPGRAM_KEY


async def test_ttl_expiry_revalidates_and_304_refreshes_ttl_without_reparsing(
    backend: BackendServer,
    make_loader: MakeLoader,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parses: list[str] = []
    real_parse = loader_module.parse_response

    def counting_parse(body: bytes, org_id: str, etag: str | None) -> OrgProviders:
        parses.append(org_id)
        return real_parse(body, org_id, etag)

    monkeypatch.setattr(loader_module, "parse_response", counting_parse)
    loader = make_loader(backend.url, cache_ttl=60)
    first = await within(loader.load(ORG))
    assert parses == [ORG]

    clock.advance(61)  # expired
    revalidated = await within(loader.load(ORG))

    assert len(backend.requests) == 2
    assert backend.requests[1].if_none_match == "17"
    assert backend.requests[1].status == 304
    assert parses == [ORG], "a 304 must not re-parse anything"
    assert revalidated.source is ConfigSource.CACHE
    assert revalidated.version == "17"
    assert names(revalidated) == names(first)

    # the 304 refreshed the TTL: 61 + 59 s after the first fetch is still fresh
    clock.advance(59)
    again = await within(loader.load(ORG))
    assert again.source is ConfigSource.CACHE
    assert len(backend.requests) == 2, "the TTL was not refreshed by the 304"


async def test_ttl_expiry_with_a_changed_config_takes_the_new_one(
    backend: BackendServer, make_loader: MakeLoader, clock: FakeClock
) -> None:
    loader = make_loader(backend.url, cache_ttl=60)
    await within(loader.load(ORG))
    backend.set_org(ORG, acme_body("18", [provider_entry("whisper", "stt", priority=1)]), "18")

    clock.advance(61)
    config = await within(loader.load(ORG))

    assert backend.requests[1].if_none_match == "17"
    assert backend.requests[1].status == 200
    assert config.source is ConfigSource.BACKEND
    assert config.version == "18"
    assert names(config)["stt"] == ["whisper"]


# --- single flight ------------------------------------------------------------------------


async def test_single_flight_fifty_concurrent_loads_of_one_org(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    backend.behave(ORG, delay=0.2)
    loader = make_loader(backend.url)

    results = await within(asyncio.gather(*(loader.load(ORG) for _ in range(50))))

    assert len(backend.requests) == 1
    assert loader.backend_requests == 1
    assert len(results) == 50
    for config in results:
        assert config.organization_id == ORG
        assert config.version == "17"
        assert names(config) == BACKEND_SUMMARY
        assert config.source is ConfigSource.BACKEND


async def test_single_flight_is_per_org(backend: BackendServer, make_loader: MakeLoader) -> None:
    orgs = ["org-a", "org-b", "org-c"]
    for i, org in enumerate(orgs):
        providers = [
            provider_entry("deepgram", "stt", priority=1, secrets={"apiKey": f"key-{org}"}),
            provider_entry("offline", "llm"),
            provider_entry("piper", "tts"),
        ]
        backend.set_org(org, org_payload(org, str(i), providers), version=str(i))
    loader = make_loader(backend.url)

    # the backend holds every answer: all three orgs reach it only if they are fetched
    # side by side; one after the other, the second would wait for the first to time out
    # (the loader's 2 s), past this 1.5 s wait
    backend.providers_gate = asyncio.Event()
    calls = asyncio.gather(*(loader.load(org) for _ in range(10) for org in orgs))
    try:
        await backend.wait_for_requests(3, 1.5)
    except BaseException:
        calls.cancel()
        raise
    finally:
        backend.providers_gate.set()
    results = await within(calls)

    for org in orgs:
        assert len(backend.requests_for(org)) == 1, org
    assert loader.backend_requests == 3
    for config, org in zip(results, orgs * 10, strict=True):
        assert config.organization_id == org
        assert config.stt[0].secret("apiKey") == f"key-{org}"


# --- push ---------------------------------------------------------------------------------


async def test_push_of_a_newer_version_refetches_within_ttl(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    loader = make_loader(backend.url, cache_ttl=300)
    cached = await within(loader.load(ORG))
    assert cached.version == "17"
    backend.set_org(
        ORG,
        acme_body("18", [*acme_providers(), provider_entry("whisper", "stt", priority=1000)]),
        "18",
    )

    pushed = await within(loader.load(ORG, providers_version="18"))

    assert len(backend.requests) == 2
    assert backend.requests[1].if_none_match == "17"
    assert pushed.version == "18"
    assert pushed.source is ConfigSource.BACKEND
    assert names(pushed)["stt"] == ["whisper", "deepgram", "vosk"]

    # the new version is cached: the same push again (or none) makes no request
    again = await within(loader.load(ORG, providers_version="18"))
    plain = await within(loader.load(ORG))
    assert len(backend.requests) == 2
    assert again.version == plain.version == "18"
    assert again.source is plain.source is ConfigSource.CACHE


async def test_fifty_concurrent_pushes_share_one_refetch(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    loader = make_loader(backend.url, cache_ttl=300)
    await within(loader.load(ORG))
    backend.set_org(ORG, acme_body("18"), "18")
    backend.behave(ORG, delay=0.2)

    results = await within(
        asyncio.gather(*(loader.load(ORG, providers_version="18") for _ in range(50)))
    )

    assert len(backend.requests) == 2
    assert {c.version for c in results} == {"18"}


async def test_push_of_the_cached_version_makes_no_request(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    loader = make_loader(backend.url, cache_ttl=300)
    await within(loader.load(ORG))

    config = await within(loader.load(ORG, providers_version="17"))

    assert len(backend.requests) == 1
    assert config.source is ConfigSource.CACHE
    assert config.version == "17"


# --- stale-if-error -----------------------------------------------------------------------


@pytest.mark.parametrize("env_fallback", [True, False], ids=["hybrid", "backend-only"])
@pytest.mark.parametrize("failure", ["http-500", "down", "slow"])
async def test_stale_if_error_serves_the_expired_copy(
    backend: BackendServer,
    make_loader: MakeLoader,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    failure: str,
    env_fallback: bool,
) -> None:
    loader = make_loader(backend.url, cache_ttl=60, timeout=0.5, env_fallback=env_fallback)
    fresh = await within(loader.load(ORG))
    clock.advance(61)
    if failure == "http-500":
        backend.behave(ORG, status=500)
    elif failure == "slow":
        backend.behave(ORG, delay=5)
    else:
        await within(backend.stop())

    with caplog.at_level(logging.WARNING):
        stale = await within(loader.load(ORG))

    assert stale.source is ConfigSource.STALE_CACHE
    assert stale.version == "17"
    assert names(stale) == names(fresh) == BACKEND_SUMMARY
    assert stale.stt[0].secret("apiKey") == DEEPGRAM_KEY
    assert loader.backend_requests == 2
    if failure != "down":
        assert backend.requests[1].if_none_match == "17"
    [warning] = warnings_of(caplog, "using the cached config past its TTL")
    assert warning.org == ORG  # type: ignore[attr-defined]


async def test_404_is_never_hidden_by_a_stale_copy(
    backend: BackendServer, make_loader: MakeLoader, clock: FakeClock
) -> None:
    loader = make_loader(backend.url, cache_ttl=60)
    await within(loader.load(ORG))
    clock.advance(61)
    backend.remove_org(ORG)

    with pytest.raises(OrgNotFoundError, match=f"org '{ORG}'.*404"):
        await within(loader.load(ORG))

    # the cached copy is dropped with it
    backend.behave(ORG, status=500)
    with pytest.raises(BackendError) as err:
        await within(make_loader(backend.url, env_fallback=False).load(ORG))
    assert "nothing cached" in str(err.value)


# --- modes --------------------------------------------------------------------------------


async def test_no_backend_url_means_environment_only(make_loader: MakeLoader) -> None:
    loader = make_loader(None)
    config = await within(loader.load(ORG))
    assert config.source is ConfigSource.ENV
    assert config.organization_id == ORG
    assert names(config) == ENV_SUMMARY
    assert loader.backend_requests == 0


async def test_no_org_means_environment_config_without_a_request(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    loader = make_loader(backend.url)
    config = await within(loader.load(None))
    assert config.source is ConfigSource.ENV
    assert names(config) == ENV_SUMMARY
    assert backend.requests == []


async def test_hybrid_backend_down_nothing_cached_uses_environment(
    make_loader: MakeLoader, caplog: pytest.LogCaptureFixture
) -> None:
    loader = make_loader(f"http://127.0.0.1:{free_port()}", env_fallback=True)
    with caplog.at_level(logging.WARNING):
        config = await within(loader.load(ORG))
    assert config.source is ConfigSource.ENV
    assert config.organization_id == ORG
    assert names(config) == ENV_SUMMARY
    [warning] = warnings_of(caplog, "using the environment config")
    assert warning.org == ORG  # type: ignore[attr-defined]


async def test_backend_only_down_nothing_cached_raises(make_loader: MakeLoader) -> None:
    loader = make_loader(f"http://127.0.0.1:{free_port()}", env_fallback=False)
    with pytest.raises(BackendError) as err:
        await within(loader.load(ORG))
    message = str(err.value)
    assert f"org '{ORG}'" in message
    assert "PROVIDER_ENV_FALLBACK" in message
    assert "nothing cached" in message


# --- a misbehaving backend ----------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    name: str
    arrange: Callable[[BackendServer], Awaitable[str]]
    """Makes the backend misbehave; returns the URL the loader should use."""
    reason: str
    """What the warning's reason (hybrid) and the error (backend-only) must say."""
    key: str = KEY
    max_body_bytes: int = 1024 * 1024
    slow: bool = False


def _behave(**changes: Any) -> Callable[[BackendServer], Awaitable[str]]:
    async def arrange(backend: BackendServer) -> str:
        backend.behave(ORG, **changes)
        return backend.url

    return arrange


async def _refused(backend: BackendServer) -> str:
    return f"http://127.0.0.1:{free_port()}"


async def _stopped(backend: BackendServer) -> str:
    await backend.stop()
    return backend.url


def _other_org() -> Callable[[BackendServer], Awaitable[str]]:
    async def arrange(backend: BackendServer) -> str:
        backend.set_org(ORG, org_payload("globex", "17", acme_providers()), version="17")
        return backend.url

    return arrange


_BIG_BODY = acme_body("17", [*acme_providers(), *[provider_entry("vosk", "stt")] * 200])
_BIG = json.dumps(_BIG_BODY).encode()

FAILURES = [
    Failure("refused", _refused, "ConnectError"),
    Failure("stopped", _stopped, "ConnectError"),
    Failure("slow-headers", _behave(delay=5), "no answer within 0.5 s", slow=True),
    Failure("slow-body", _behave(trickle=0.05), "no answer within 0.5 s", slow=True),
    Failure("http-500", _behave(status=500), "HTTP 500"),
    Failure("http-503", _behave(status=503), "HTTP 503"),
    Failure("http-401", _behave(), "AICO_INTERNAL_API_KEY", key="wrong-key-999"),
    Failure("http-403", _behave(status=403), "AICO_INTERNAL_API_KEY"),
    Failure("invalid-json", _behave(raw_body=b'{"providers": [{"providerId": '), "invalid JSON"),
    Failure("not-utf8", _behave(raw_body=b"\xff\xfe\xfa{}"), "invalid JSON"),
    Failure("empty-body", _behave(raw_body=b""), "invalid JSON"),
    Failure("json-list", _behave(raw_body=b"[1, 2, 3]"), "not an object"),
    Failure("providers-wrong-type", _behave(raw_body=b'{"providers": "x"}'), "providers"),
    Failure("providers-missing", _behave(raw_body=b'{"version": "1"}'), "providers"),
    Failure("version-wrong-type", _behave(raw_body=b'{"providers": [], "version": {}}'), "version"),
    Failure(
        "oversized-declared",
        _behave(raw_body=_BIG),
        "PROVIDER_MAX_BODY_BYTES",
        max_body_bytes=4096,
    ),
    Failure(
        "oversized-chunked",
        _behave(raw_body=_BIG, chunked=True),
        "PROVIDER_MAX_BODY_BYTES",
        max_body_bytes=4096,
    ),
    Failure("another-org", _other_org(), "another organization"),
]


@pytest.mark.parametrize("failure", FAILURES, ids=[f.name for f in FAILURES])
async def test_hybrid_falls_back_to_environment(
    backend: BackendServer,
    make_loader: MakeLoader,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    failure: Failure,
) -> None:
    url = await within(failure.arrange(backend))
    timeout = 0.5
    loader = make_loader(
        url, key=failure.key, timeout=timeout, max_body_bytes=failure.max_body_bytes
    )

    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        config = await within(loader.load(ORG))
    elapsed = time.monotonic() - started

    assert config.source is ConfigSource.ENV
    assert config.organization_id == ORG
    assert names(config) == ENV_SUMMARY
    assert elapsed < timeout + 1.0, f"the caller waited {elapsed:.2f} s"
    [warning] = warnings_of(caplog, "using the environment config")
    assert warning.org == ORG  # type: ignore[attr-defined]
    assert failure.reason in warning.reason  # type: ignore[attr-defined]
    # no config is cached from a failure: once the retry window has passed, the next call
    # asks the backend again
    clock.advance(loader.settings.retry_after)
    await within(loader.load(ORG))
    assert loader.backend_requests == 2


@pytest.mark.parametrize("failure", FAILURES, ids=[f.name for f in FAILURES])
async def test_backend_only_fails_clearly(
    backend: BackendServer, make_loader: MakeLoader, failure: Failure
) -> None:
    url = await within(failure.arrange(backend))
    timeout = 0.5
    loader = make_loader(
        url,
        key=failure.key,
        timeout=timeout,
        max_body_bytes=failure.max_body_bytes,
        env_fallback=False,
    )

    started = time.monotonic()
    with pytest.raises(BackendError) as err:
        await within(loader.load(ORG))
    elapsed = time.monotonic() - started

    message = str(err.value)
    assert not isinstance(err.value, OrgNotFoundError)
    assert f"org '{ORG}'" in message
    assert failure.reason in message
    assert "PROVIDER_ENV_FALLBACK" in message
    assert failure.key not in message
    assert elapsed < timeout + 1.0, f"the caller waited {elapsed:.2f} s"


@pytest.mark.parametrize("env_fallback", [True, False], ids=["hybrid", "backend-only"])
async def test_404_raises_org_not_found_in_every_mode(
    backend: BackendServer, make_loader: MakeLoader, env_fallback: bool
) -> None:
    loader = make_loader(backend.url, env_fallback=env_fallback)
    with pytest.raises(OrgNotFoundError) as err:
        await within(loader.load("nobody-inc"))
    assert "org 'nobody-inc'" in str(err.value)
    assert "404" in str(err.value)
    assert backend.requests_for("nobody-inc")[0].status == 404


async def test_404_status_override_also_raises(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    backend.behave(ORG, status=404)
    with pytest.raises(OrgNotFoundError, match=f"org '{ORG}'"):
        await within(make_loader(backend.url).load(ORG))


async def test_a_failure_of_one_org_does_not_touch_another(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    backend.set_org("globex", org_payload("globex", "3", acme_providers()), version="3")
    backend.behave("globex", raw_body=b"not json")
    loader = make_loader(backend.url, env_fallback=False)

    good, bad = await within(
        asyncio.gather(loader.load(ORG), loader.load("globex"), return_exceptions=True)
    )

    assert isinstance(good, OrgProviders) and names(good) == BACKEND_SUMMARY
    assert isinstance(bad, BackendError) and "org 'globex'" in str(bad)


# --- negative cache: a failed backend is not asked again for a while ----------------------

RETRY_FAILURES = [
    f for f in FAILURES if f.name in ("stopped", "slow-headers", "http-500", "invalid-json")
]


@pytest.mark.parametrize("failure", RETRY_FAILURES, ids=[f.name for f in RETRY_FAILURES])
async def test_after_a_failure_loads_skip_the_backend_until_retry_after(
    backend: BackendServer,
    make_loader: MakeLoader,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    failure: Failure,
) -> None:
    backend.set_org("globex", org_payload("globex", "3", acme_providers()), version="3")
    loader = make_loader(await within(failure.arrange(backend)), timeout=0.5, retry_after=5.0)
    first = await within(loader.load(ORG))
    assert first.source is ConfigSource.ENV
    assert loader.backend_requests == 1

    clock.advance(4.9)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        inside = [await within(loader.load(ORG), 1.0) for _ in range(3)]

    assert [c.source for c in inside] == [ConfigSource.ENV] * 3
    assert all(names(c) == ENV_SUMMARY and c.organization_id == ORG for c in inside)
    assert loader.backend_requests == 1, "a load inside the retry window asked the backend"
    [said] = warnings_of(caplog, "backend failed recently")  # once, not once per load
    assert said.org == ORG  # type: ignore[attr-defined]
    assert failure.reason in said.reason  # type: ignore[attr-defined]
    assert not warnings_of(caplog, "backend unavailable")  # the failure was logged already

    # healthy again, but the window still holds for this org, and only for this org
    if failure.name == "stopped":
        await within(backend.start())
    backend.reset(ORG)
    seen = len(backend.requests_for(ORG))
    assert (await within(loader.load(ORG), 1.0)).source is ConfigSource.ENV
    assert len(backend.requests_for(ORG)) == seen
    assert (await within(loader.load("globex"))).source is ConfigSource.BACKEND
    assert loader.backend_requests == 2

    # after the window the backend is asked again
    clock.advance(0.1)
    again = await within(loader.load(ORG))
    assert again.source is ConfigSource.BACKEND and names(again) == BACKEND_SUMMARY
    assert loader.backend_requests == 3
    assert backend.requests_for(ORG)[-1].status == 200


async def test_a_stale_copy_is_served_without_a_request_inside_the_window(
    backend: BackendServer,
    make_loader: MakeLoader,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    loader = make_loader(backend.url, cache_ttl=60, timeout=0.5, retry_after=5.0)
    await within(loader.load(ORG))
    clock.advance(61)
    backend.behave(ORG, delay=5)
    stale = await within(loader.load(ORG))
    assert stale.source is ConfigSource.STALE_CACHE
    assert len(backend.requests_for(ORG)) == 2

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = await within(loader.load(ORG), 1.0)
        pushed = await within(loader.load(ORG, providers_version="18"), 1.0)

    assert again.source is pushed.source is ConfigSource.STALE_CACHE
    assert again.version == pushed.version == "17"
    assert again.stt[0].secret("apiKey") == DEEPGRAM_KEY
    assert len(backend.requests_for(ORG)) == 2
    [said] = warnings_of(caplog, "backend failed recently")
    assert "no answer within 0.5 s" in said.reason  # type: ignore[attr-defined]

    clock.advance(5)
    backend.reset(ORG)
    fresh = await within(loader.load(ORG))
    assert fresh.source is ConfigSource.CACHE  # 304: the copy was current after all
    assert len(backend.requests_for(ORG)) == 3


async def test_backend_only_fails_at_once_inside_the_window(
    backend: BackendServer, make_loader: MakeLoader, clock: FakeClock
) -> None:
    backend.behave(ORG, status=503)
    loader = make_loader(backend.url, env_fallback=False, retry_after=5.0)
    with pytest.raises(BackendError, match="HTTP 503"):
        await within(loader.load(ORG))

    with pytest.raises(BackendError) as err:
        await within(loader.load(ORG), 1.0)
    message = str(err.value)
    assert f"org '{ORG}'" in message and "HTTP 503" in message
    assert "PROVIDER_BACKEND_RETRY_AFTER" in message and "PROVIDER_ENV_FALLBACK" in message
    assert len(backend.requests_for(ORG)) == 1

    clock.advance(5)
    backend.reset(ORG)
    assert (await within(loader.load(ORG))).source is ConfigSource.BACKEND
    assert len(backend.requests_for(ORG)) == 2


async def test_404_is_not_remembered_as_a_failure(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    loader = make_loader(backend.url, retry_after=5.0)
    for _ in range(2):
        with pytest.raises(OrgNotFoundError):
            await within(loader.load("nobody-inc"))
    assert len(backend.requests_for("nobody-inc")) == 2


async def test_retry_after_zero_asks_on_every_load(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    backend.behave(ORG, status=500)
    loader = make_loader(backend.url, retry_after=0)
    for _ in range(3):
        assert (await within(loader.load(ORG))).source is ConfigSource.ENV
    assert len(backend.requests_for(ORG)) == 3


def test_retry_after_is_read_from_the_environment() -> None:
    assert LoaderSettings.from_env({}).retry_after == 5.0
    settings = LoaderSettings.from_env({"PROVIDER_BACKEND_RETRY_AFTER": "12.5"})
    assert settings.retry_after == 12.5
    with pytest.raises(ConfigError, match="PROVIDER_BACKEND_RETRY_AFTER"):
        LoaderSettings.from_env({"PROVIDER_BACKEND_RETRY_AFTER": "soon"})


# --- bad entries ---------------------------------------------------------------------------


async def test_empty_kind_in_hybrid_is_filled_from_the_environment(
    backend: BackendServer, make_loader: MakeLoader, caplog: pytest.LogCaptureFixture
) -> None:
    providers = [p for p in acme_providers() if p["type"] != "tts"] + [
        provider_entry("telepathy", "tts"),
        provider_entry("cartesia", "tts", enabled=False),
    ]
    backend.set_org(ORG, acme_body("17", providers), version="17")
    environ = {"TTS_PROVIDER": "piper", "TTS_HOST": "tts.local", "TTS_PORT": "5002"}
    loader = make_loader(backend.url, environ=environ)

    with caplog.at_level(logging.WARNING):
        config = await within(loader.load(ORG))

    assert config.source is ConfigSource.BACKEND
    assert names(config) == {
        "stt": ["deepgram", "vosk"],
        "llm": ["groq", "openai"],
        "tts": ["piper"],
    }
    assert dict(config.tts[0].options) == {"host": "tts.local", "port": "5002"}
    [warning] = warnings_of(caplog, "no usable provider for some kinds")
    assert warning.kinds == ["tts"]  # type: ignore[attr-defined]


async def test_empty_kind_in_backend_only_is_an_error_naming_org_and_kind(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    providers = [p for p in acme_providers() if p["type"] != "llm"]
    backend.set_org(ORG, acme_body("17", providers), version="17")
    loader = make_loader(backend.url, env_fallback=False, environ={"LLM_PROVIDER": "offline"})

    with pytest.raises(ConfigError) as err:
        await within(loader.load(ORG))

    message = str(err.value)
    assert f"org '{ORG}'" in message
    assert "llm" in message
    assert "stt" not in message and "tts" not in message


# --- secrets never leak --------------------------------------------------------------------


class _ReprHandler(logging.Handler):
    """Writes every attribute of every record (extras included) to the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"{self.format(record)} {vars(record)!r}\n")


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Any:
    """Everything logged at any level (messages, args, extras) plus stdout and stderr."""
    caplog.set_level(logging.DEBUG)
    handler = _ReprHandler(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)

    def text() -> str:
        out, err = capsys.readouterr()
        records = "\n".join(f"{r.getMessage()} {vars(r)!r}" for r in caplog.records)
        return "\n".join([caplog.text, records, out, err])

    yield text
    root.removeHandler(handler)


def _planted(**kwargs: Any) -> dict[str, Any]:
    return provider_entry("deepgram", "stt", priority=500, secrets={"apiKey": PLANTED}, **kwargs)


LEAKY_ENTRIES = {
    "valid": [_planted()],
    "bad-priority": [{**_planted(), "priority": "high"}],
    "bad-type": [{**_planted(), "type": "video"}],
    "bad-config": [{**_planted(), "config": [PLANTED]}],
    "secret-not-a-string": [{**_planted(), "secrets": {"apiKey": [PLANTED], "x": {"v": PLANTED}}}],
    "secrets-not-an-object": [{**_planted(), "secrets": PLANTED}],
    "unknown-provider": [{**_planted(), "providerId": "telepathy"}],
    "disabled": [{**_planted(), "isEnabled": False}],
    "persona-invalid": [_planted()],
}


@pytest.mark.parametrize("env_fallback", [True, False], ids=["hybrid", "backend-only"])
@pytest.mark.parametrize("case", list(LEAKY_ENTRIES))
async def test_planted_secret_never_leaks(
    backend: BackendServer,
    make_loader: MakeLoader,
    clock: FakeClock,
    all_logs: Callable[[], str],
    case: str,
    env_fallback: bool,
) -> None:
    # only the planted entry for STT, so an invalid one empties the kind (env fill or error)
    providers = [p for p in acme_providers() if p["type"] != "stt"] + LEAKY_ENTRIES[case]
    body = acme_body("17", providers)
    if case == "persona-invalid":
        body["agent"] = {"instructions": 5, "faq": [{"question": PLANTED}]}
    backend.set_org(ORG, body, version="17")
    loader = make_loader(backend.url, env_fallback=env_fallback, cache_ttl=60)

    seen: list[str] = [repr(loader.settings), str(loader.settings)]
    configs: list[OrgProviders] = []
    for _ in range(2):  # a fetch, then a cache hit
        try:
            configs.append(await within(loader.load(ORG)))
        except Exception as e:  # the error text is what is checked
            seen += [str(e), repr(e), repr(e.args)]
    if configs:  # revalidation (304) and stale-if-error log too
        clock.advance(61)
        configs.append(await within(loader.load(ORG)))
        backend.behave(ORG, status=500)
        clock.advance(61)
        configs.append(await within(loader.load(ORG)))
        assert [c.source for c in configs] == ["backend", "cache", "cache", "stale-cache"]

    for config in configs:
        seen += [repr(config), str(config), config.model_dump_json(), repr(config.model_dump())]
        seen += [repr(c) for k in ProviderKind for c in config.chain(k)]
    logs = all_logs()
    assert "HTTP Request: GET" in logs  # the capture really sees the loader thread's DEBUG
    seen.append(logs)

    leaks = [s for s in seen if PLANTED in s]
    assert not leaks, f"the planted secret leaked: {leaks[0][:500]}"
    assert not [s for s in seen if KEY in s], "the internal API key leaked"
    if case == "valid":
        assert configs and configs[0].stt[0].secret("apiKey") == PLANTED  # it was really there


async def test_internal_key_never_leaks_on_a_401(
    backend: BackendServer, make_loader: MakeLoader, all_logs: Callable[[], str]
) -> None:
    wrong = "sk-test-WRONG-internal-0987654321"
    loader = make_loader(backend.url, key=wrong, env_fallback=False)
    with pytest.raises(BackendError) as err:
        await within(loader.load(ORG))
    assert "AICO_INTERNAL_API_KEY" in str(err.value)
    assert backend.requests[0].authorization == f"Bearer {wrong}"  # it was really sent
    for text in (str(err.value), repr(err.value), repr(loader.settings), all_logs()):
        assert wrong not in text


async def test_the_loaders_loop_keeps_nothing_of_a_calls_context() -> None:
    """The loader's loop outlives every call: what runs there (and a pooled connection's
    handle made there) must not carry a copy of the calling call's context, which holds
    livekit's job context and through it the call's room and published track."""
    call = contextvars.ContextVar[str]("call")
    call.set("call-1")
    io = loader_module._IoLoop()

    async def seen() -> str | None:
        return call.get(None)

    try:
        assert await asyncio.wait_for(io.run(seen()), 5) is None
        # nor does the loop's own wake-up handle, made on first use, keep a call's context
        handles = [k.data[0] for k in io._ensure()._selector.get_map().values()]  # type: ignore[attr-defined]
        assert all(call not in h._context for h in handles if h is not None)
    finally:
        io.stop()
