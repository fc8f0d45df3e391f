"""The web caller's server without a browser: what it serves, and what it refuses (another
web site driving it, a rebound host name, a bad org id, no LiveKit server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from agent.tools.room_call import CallOptions
from agent.tools.web import WebCaller, WebOptions
from tests.support.net import free_port


@pytest.fixture
async def web() -> AsyncIterator[WebCaller]:
    dead = f"ws://127.0.0.1:{free_port()}"  # nothing listens there
    call = CallOptions(url=dead, api_key="devkey", api_secret="secret", agent_name="a")
    caller = WebCaller(WebOptions(call, default_org="harbor"))
    await caller.start(0)
    yield caller
    await caller.stop()


async def test_the_page_its_client_and_its_config_are_served(web: WebCaller) -> None:
    async with httpx.AsyncClient(base_url=web.url, timeout=5) as client:
        page = await client.get("/")
        lib = await client.get("/static/livekit-client.umd.js")
        config = (await client.get("/api/config")).json()
        hidden = await client.get("/static/livekit-client.LICENSE")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert lib.status_code == 200 and "LivekitClient" in lib.text[:400]
    assert hidden.status_code == 404  # only the page's own files
    assert config["agentName"] == "a" and config["defaultOrg"] == "harbor"
    assert config["protocol"]["turnTopic"] == "voice_agent.turn"
    assert "secret" not in str(config)


async def test_calls_are_refused_to_other_sites_and_hosts(web: WebCaller) -> None:
    async with httpx.AsyncClient(base_url=web.url, timeout=5) as client:
        form = await client.post("/api/calls", data={"org": "harbor"})
        rebound = await client.post(
            "/api/calls", json={"org": "harbor"}, headers={"Host": "evil.example:8090"}
        )
        bad_org = await client.post("/api/calls", json={"org": "acme\n"})
    assert form.status_code == 415  # a form post needs no preflight: refused
    assert rebound.status_code == 403
    assert bad_org.status_code == 400 and bad_org.json()["state"] == "bad-request"
    assert "not a valid organization id" in bad_org.json()["error"]


async def test_no_livekit_server_is_a_state_with_the_fix(web: WebCaller) -> None:
    async with httpx.AsyncClient(base_url=web.url, timeout=10) as client:
        resp = await client.post("/api/calls", json={"org": "harbor"})
    assert resp.status_code == 503
    body = resp.json()
    assert body["state"] == "no-server" and "make livekit-dev" in body["error"]
