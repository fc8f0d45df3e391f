"""The secrets canary: a distinctive secret per org provider, per environment key, for the
internal API key, the LiveKit API secret and the status token; then every way a provider
can hand a key back — refused, a 401 that echoes the key and the headers, a 500 whose body
holds the key, a 200 of garbage, an endpoint with the key in its userinfo and query — driven
through ``simulate`` (a subprocess, at the default log level and at DEBUG), ``providers
--check``/``--json`` and the usage sender. Zero occurrences anywhere: stdout, stderr, the
usage spool's files, the status JSON, the metrics page."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import httpx
import prometheus_client
import pytest
from pydantic import SecretStr

from agent.worker import metrics
from agent.worker.status import STATUS_PATH, StatusServer
from providers.chains import get_health, probe_all
from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from tests.standins import DeepgramStandin, ElevenLabsStandin, Fault, OpenAIStandin
from tests.standins.backend import BackendServer, Behavior, org_payload, provider_entry
from tests.support import REPO
from tests.support.env import clean_environ
from tests.support.net import free_port

pytestmark = pytest.mark.slow

TIMEOUT = 150
ORG = "canary-org"


def canary(name: str) -> str:
    return f"canary-{name}-{uuid.uuid4().hex[:12]}"


ORG_KEYS = {
    name: canary(f"ORG-{name}")
    for name in ("deepgram", "llm-echo401", "llm-echo500", "llm-refused", "tts-garbage", "eleven")
}
URL_SECRETS = {"userinfo": canary("URL-USERINFO"), "query": canary("URL-QUERY")}
ENV_KEYS = {
    "OPENAI_API_KEY": canary("ENV-OPENAI"),
    "DEEPGRAM_API_KEY": canary("ENV-DEEPGRAM"),
    "ELEVEN_API_KEY": canary("ENV-ELEVEN"),
    "CARTESIA_API_KEY": canary("ENV-CARTESIA"),
    "GROQ_API_KEY": canary("ENV-GROQ"),
    "AICO_INTERNAL_API_KEY": canary("INTERNAL"),
    "LIVEKIT_API_SECRET": canary("LIVEKIT-SECRET"),
    "STATUS_TOKEN": canary("STATUS-TOKEN"),
}
CANARIES = [*ORG_KEYS.values(), *URL_SECRETS.values(), *ENV_KEYS.values()]


def leaks(text: str) -> list[str]:
    return [c for c in CANARIES if c in text]


def org_entries(
    deepgram: DeepgramStandin,
    echo401: OpenAIStandin,
    echo500: OpenAIStandin,
    garbage: OpenAIStandin,
    eleven: ElevenLabsStandin,
) -> list[dict[str, object]]:
    """Every cloud provider in a failure mode, a local one behind each kind."""
    userinfo, query = URL_SECRETS["userinfo"], URL_SECRETS["query"]
    garbage_url = garbage.base_url.replace("http://", f"http://user:{userinfo}@")
    refused = f"http://user:{userinfo}@127.0.0.1:{free_port()}/v1?api_key={query}"

    def llm(priority: int, base_url: str, key: str) -> dict[str, object]:
        return provider_entry(
            "openai-compatible",
            "llm",
            priority=priority,
            config={"baseUrl": base_url, "model": "m"},
            secrets={"apiKey": ORG_KEYS[key]},
        )

    return [
        provider_entry(
            "deepgram",
            "stt",
            priority=100,
            config={"baseUrl": deepgram.base_url},
            secrets={"apiKey": ORG_KEYS["deepgram"]},
        ),
        provider_entry("whisper", "stt", priority=10),
        llm(100, echo401.base_url, "llm-echo401"),
        llm(90, echo500.base_url, "llm-echo500"),
        llm(80, refused, "llm-refused"),
        provider_entry(
            "openai",
            "tts",
            priority=100,
            config={"baseUrl": garbage_url},
            secrets={"apiKey": ORG_KEYS["tts-garbage"]},
        ),
        provider_entry(
            "elevenlabs",
            "tts",
            priority=90,
            config={"baseUrl": eleven.base_url},
            secrets={"apiKey": ORG_KEYS["eleven"]},
        ),
        provider_entry("piper", "tts", priority=10),
    ]


async def run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


async def _canary(tmp_path: Path) -> None:
    async with (
        DeepgramStandin(fault=Fault.ECHO_401) as deepgram,
        OpenAIStandin(fault=Fault.ECHO_401) as echo401,
        OpenAIStandin(fault=Fault.ECHO_500) as echo500,
        OpenAIStandin(fault=Fault.GARBAGE) as garbage,
        ElevenLabsStandin(fault=Fault.ECHO_500) as eleven,
        OpenAIStandin(fault=Fault.ECHO_401) as env_openai,
        BackendServer(expected_key=ENV_KEYS["AICO_INTERNAL_API_KEY"]) as backend,
    ):
        entries = org_entries(deepgram, echo401, echo500, garbage, eleven)
        backend.set_org(ORG, org_payload(ORG, "1", entries, agent={"greeting": "Hi."}), "1")
        # the usage post fails with a body that echoes the internal key: the record spools
        echo = f"bad bearer {ENV_KEYS['AICO_INTERNAL_API_KEY']}".encode()
        backend.usage = Behavior(status=500, raw_body=echo)
        spool = tmp_path / "spool"
        env = {
            **clean_environ(),
            **ENV_KEYS,
            "AICO_BACKEND_URL": backend.url,
            "USAGE_SPOOL_DIR": str(spool),
            "USAGE_RETRY_MAX": "1",
        }
        outputs: dict[str, str] = {}
        say = ["simulate", "--org", ORG, "--say", "What are your opening hours?", "--json"]
        for name, extra_env, flags in (
            ("simulate", {}, []),
            ("simulate-debug", {"LIVEKIT_LOG_LEVEL": "DEBUG"}, ["--verbose"]),
        ):
            code, outputs[name] = await run(
                [*say, "--output", str(tmp_path / f"{name}.wav"), *flags], {**env, **extra_env}
            )
            assert code == 0, outputs[name][-3000:]
        for name, args in (
            ("check", ["providers", "--org", ORG, "--check", "--json"]),
            ("check-text", ["providers", "--org", ORG, "--check"]),
            ("json", ["providers", "--org", ORG, "--json"]),
            # simulate only spools; the sender's failing post (and its log) is the flush's
            ("flush", ["usage", "--flush"]),
        ):
            _, outputs[name] = await run(args, env)
        # environment mode: the env key goes to a provider that echoes it back
        env_mode = {
            **clean_environ(),
            **ENV_KEYS,
            "LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": env_openai.base_url,
            "STT_PROVIDER": "whisper",
            "TTS_PROVIDER": "piper",
        }
        _, outputs["check-env"] = await run(["providers", "--check", "--json"], env_mode)

        # the failure modes really happened, with the planted keys
        assert ORG_KEYS["deepgram"] in deepgram.api_keys_seen
        assert ORG_KEYS["llm-echo401"] in echo401.api_keys_seen
        assert echo500.requests and garbage.requests and eleven.requests
        assert ENV_KEYS["OPENAI_API_KEY"] in env_openai.api_keys_seen
        assert any(status == 500 for _, status in backend.usage_posts)
        assert "Incorrect API key provided" in outputs["simulate-debug"]  # the echo was logged
        assert "DEBUG" in outputs["simulate-debug"]

        # this process as a worker: the same org's breakers, on the status page and metrics
        loader = ProviderLoader(
            LoaderSettings(
                backend_url=backend.url,
                internal_api_key=SecretStr(ENV_KEYS["AICO_INTERNAL_API_KEY"]),
            ),
            environ={},
        )
        try:
            org = await loader.load(ORG, providers_version=None)
        finally:
            await loader.aclose()
        metrics.install(get_health())
        await probe_all(org, get_health())
        server = StatusServer("127.0.0.1", 0)
        await server.start()
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                outputs["status"] = (
                    await client.get(f"http://127.0.0.1:{server.port}{STATUS_PATH}")
                ).text
        finally:
            await server.aclose()
        outputs["metrics"] = prometheus_client.generate_latest().decode()
        assert "tts/openai@" in outputs["status"]
        assert "voice_agent_provider_up" in outputs["metrics"]

    spooled = [p for p in spool.rglob("*") if p.is_file()]
    assert spooled  # the usage records were kept, in these files
    for path in spooled:
        outputs[str(path)] = path.read_bytes().decode("utf-8", "replace")
    if debug := os.environ.get("CANARY_DUMP"):  # a developer's look at what was checked
        Path(debug).write_text(json.dumps(outputs, indent=1))
    found = {name: leaks(text) for name, text in outputs.items() if leaks(text)}
    assert found == {}


async def test_no_planted_secret_reaches_any_output(tmp_path: Path) -> None:
    await asyncio.wait_for(_canary(tmp_path), 4 * TIMEOUT)
