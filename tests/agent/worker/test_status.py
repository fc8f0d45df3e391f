"""The worker's status server (livekit's ``HttpServer`` with our route): what it serves
and where it listens."""

from __future__ import annotations

import httpx
import pytest

from agent.worker.settings import DEFAULT_STATUS_PORT, SettingsError, WorkerOptions
from agent.worker.status import STATUS_PATH, StatusServer
from providers.chains.health import HealthKeys, get_health


async def test_status_is_served_as_json_on_its_route() -> None:
    keys = HealthKeys("tts/piper@test", None, kind="tts", provider="piper")
    get_health().record_failure(keys, ConnectionRefusedError("refused"))
    server = StatusServer("127.0.0.1", 0)
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
    assert set(data) == {"generatedAt", "pid", "executor", "providers", "usageSpool"}
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
