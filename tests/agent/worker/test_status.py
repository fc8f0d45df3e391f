"""The worker's status server (livekit's ``HttpServer`` with our route): what it serves
and where it listens."""

from __future__ import annotations

import json

import httpx
import pytest
from livekit.agents import APIStatusError
from pydantic import SecretStr

from agent.worker.settings import DEFAULT_STATUS_PORT, SettingsError, WorkerOptions
from agent.worker.status import STATUS_PATH, StatusServer, status
from providers.chains.health import HealthKeys, get_health


async def test_status_is_served_as_json_on_its_route() -> None:
    keys = HealthKeys("tts/piper@test", None, kind="tts", provider="piper")
    get_health().record_failure(keys, ConnectionRefusedError("refused"))
    server = StatusServer("127.0.0.1", 0, calls=lambda: 3)
    await server.start()
    try:
        assert server.port != 0  # the port it took
        async with httpx.AsyncClient() as client:
            resp = await client.get(f"http://127.0.0.1:{server.port}{STATUS_PATH}")
            missing = await client.get(f"http://127.0.0.1:{server.port}/nothing")
    finally:
        await server.aclose()
    assert resp.status_code == 200 and missing.status_code == 404
    data = resp.json()
    assert set(data) == {
        "generatedAt",
        "pid",
        "executor",
        "callsInProgress",
        "providers",
        "usageSpool",
    }
    assert data["callsInProgress"] == 3
    [piper] = data["providers"]
    assert piper["provider"] == "piper" and piper["key"] == "tts/piper@test"
    assert piper["state"] == "open" and not piper["up"] and piper["failures"] == 1
    assert "ConnectionRefusedError" in piper["lastError"] and piper["lastErrorAt"]
    assert data["usageSpool"] == {
        "backend": False,
        "path": None,
        "pending": 0,
        "open": 0,
        "quarantined": 0,
    }


def test_status_port_setting() -> None:
    def port(env: dict[str, str]) -> int | None:
        return WorkerOptions.from_env(env).status_port

    assert port({}) == DEFAULT_STATUS_PORT
    assert port({"STATUS_PORT": "0"}) == 0
    assert port({"STATUS_PORT": " 9100 "}) == 9100
    assert port({"STATUS_PORT": "off"}) is None
    with pytest.raises(SettingsError, match="STATUS_PORT='70000'"):
        port({"STATUS_PORT": "70000"})


def test_the_status_and_livekits_servers_listen_on_loopback_by_default() -> None:
    assert WorkerOptions.from_env({}).status_host == "127.0.0.1"
    assert WorkerOptions.from_env({}).prometheus_host == "127.0.0.1"
    opened = WorkerOptions.from_env({"STATUS_HOST": "0.0.0.0", "PROMETHEUS_HOST": "0.0.0.0"})
    assert (opened.status_host, opened.prometheus_host) == ("0.0.0.0", "0.0.0.0")


def test_the_worker_passes_its_host_to_livekits_servers() -> None:
    from agent.worker.server import build_server
    from agent.worker.settings import Settings

    server = build_server(Settings.from_env({"STATUS_PORT": "off"}))
    assert server._host == "127.0.0.1"  # livekit's one host: health and Prometheus servers


async def test_a_status_token_is_required_when_set() -> None:
    server = StatusServer("127.0.0.1", 0, token=SecretStr("status-token-CANARY-2718"))
    await server.start()
    url = f"http://127.0.0.1:{server.port}{STATUS_PATH}"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            none = await client.get(url)
            wrong = await client.get(url, headers={"Authorization": "Bearer nope"})
            right = await client.get(
                url, headers={"Authorization": "Bearer status-token-CANARY-2718"}
            )
    finally:
        await server.aclose()
    assert none.status_code == 401 and wrong.status_code == 401
    assert "providers" not in none.text
    assert right.status_code == 200 and "providers" in right.json()


def test_endpoints_show_no_userinfo_or_query_and_keys_only_a_salted_fingerprint() -> None:
    from providers.catalogue import provider_config
    from providers.redaction import configure_fingerprints, new_salt
    from providers.types import ProviderKind

    key = "sk-status-CANARY-16180339"
    base = "https://user:pw-CANARY-1@api.test/v1?api_key=q-CANARY-2"
    fingerprints = []
    for salt in ("salt-a", "salt-b"):
        configure_fingerprints(salt)
        config = provider_config(
            provider="openai",
            kind=ProviderKind.TTS,
            options={"baseUrl": base},
            secrets={"apiKey": key},
        )
        keys = HealthKeys.of(config)
        get_health().record_failure(keys, ConnectionRefusedError("refused"))
        get_health().record_failure(keys, APIStatusError(f"echo {key}", status_code=401))
        fingerprints.append(keys.credential)
    configure_fingerprints(new_salt())
    text = json.dumps(status())
    assert fingerprints[0] != fingerprints[1]  # the same key, another salt
    assert "tts/openai@https://api.test/v1" in text
    for secret in (key, "pw-CANARY-1", "q-CANARY-2", "user:"):
        assert secret not in text


async def test_the_operator_page_needs_no_token_and_holds_no_data() -> None:
    """``/`` is a page whose script fetches ``/status``; with ``STATUS_TOKEN`` set, the
    data stays behind the token and the page itself says nothing."""
    keys = HealthKeys("tts/piper@test", None, kind="tts", provider="piper")
    get_health().record_failure(keys, ConnectionRefusedError("refused"))
    server = StatusServer("127.0.0.1", 0, token=SecretStr("operator-token"))
    await server.start()
    try:
        async with httpx.AsyncClient() as client:
            page = await client.get(f"http://127.0.0.1:{server.port}/")
            data = await client.get(f"http://127.0.0.1:{server.port}{STATUS_PATH}")
    finally:
        await server.aclose()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'fetch("{STATUS_PATH}"' in page.text and "tts/piper@test" not in page.text
    assert "operator-token" not in page.text
    assert data.status_code == 401
