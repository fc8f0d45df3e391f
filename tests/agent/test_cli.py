"""``python -m agent providers`` as a user runs it: a subprocess, against a loopback backend
and in environment mode. Also the no-LiveKit-server hint."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.openai import OpenAIStandin
from tests.support.env import clean_environ

PLANTED = "sk-test-CLI-PLANTED-0987654321"


async def run_agent(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    full_env = {**clean_environ(), **env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        *args,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_providers_json_from_the_backend() -> None:
    async with BackendServer(expected_key="internal") as backend:
        backend.set_org(
            "acme",
            org_payload(
                "acme",
                "17",
                [
                    provider_entry(
                        "deepgram",
                        "stt",
                        priority=100,
                        config={"model": "nova-3"},
                        secrets={"apiKey": PLANTED},
                    ),
                    provider_entry("whisper", "stt", priority=10),
                    provider_entry(
                        "openai",
                        "llm",
                        priority=50,
                        config={"apiKeyHint": "x"},
                        secrets={"apiKey": PLANTED},
                    ),
                    provider_entry("piper", "tts", priority=10),
                ],
            ),
            version="17",
        )
        code, out, err = await run_agent(
            "providers",
            "--org",
            "acme",
            "--json",
            env={"AICO_BACKEND_URL": backend.url, "AICO_INTERNAL_API_KEY": "internal"},
        )
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    assert data["organizationId"] == "acme" and data["source"] == "backend"
    assert data["version"] == "17"
    assert [e["provider"] for e in data["stt"]] == ["deepgram", "whisper"]
    assert [e["provider"] for e in data["llm"]] == ["openai", "offline"]
    assert data["stt"][0] == {
        "provider": "deepgram",
        "priority": 100,
        "options": {"model": "nova-3"},
    }
    assert data["llm"][0]["options"] == {"apiKeyHint": "**********"}
    assert PLANTED not in out + err


async def test_providers_json_in_env_mode() -> None:
    code, out, err = await run_agent(
        "providers",
        "--json",
        env={
            "STT_PROVIDER": "deepgram",
            "STT_FALLBACK": "whisper",
            "DEEPGRAM_API_KEY": PLANTED,
            "TTS_PROVIDER": "piper",
            "LLM_PROVIDER": "offline",
        },
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["source"] == "env" and data["organizationId"] is None
    assert [e["provider"] for e in data["stt"]] == ["deepgram", "whisper"]
    assert PLANTED not in out + err


async def test_providers_check_exits_1_when_a_kind_is_down() -> None:
    # the only TTS is a Piper server nobody runs
    code, out, err = await run_agent(
        "providers",
        "--check",
        env={
            "STT_PROVIDER": "whisper",
            "TTS_PROVIDER": "piper",
            "TTS_HOST": "127.0.0.1",
            "TTS_PORT": "9",
            "LLM_PROVIDER": "offline",
        },
    )
    assert code == 1
    assert "no working provider for: tts" in err
    assert "FAIL" in out and "127.0.0.1:9 unreachable" in out
    assert "breaker open" in out  # what the probe found, as the worker's breakers key it


async def test_providers_check_reports_each_providers_breaker() -> None:
    """Each entry's breaker is what the probe left in the breakers, keyed as a worker keys
    them: open for an unreachable server and for a rejected key, closed for a provider that
    works, none for a config that cannot be built (no breaker is involved)."""
    async with (
        OpenAIStandin(valid_keys={"sk-good"}) as rejecting,
        OpenAIStandin(valid_keys={"sk-good"}) as accepting,
    ):
        code, out, err = await run_agent(
            "providers",
            "--check",
            "--json",
            env={
                "STT_PROVIDER": "deepgram",  # no DEEPGRAM_API_KEY: cannot be built
                "STT_FALLBACK": "whisper",
                "LLM_PROVIDER": "openai",
                "OPENAI_BASE_URL": rejecting.base_url,
                "OPENAI_API_KEY": "sk-bad",
                "LLM_FALLBACK": "openai-compatible",
                "LLM_BASE_URL": accepting.base_url,
                "LLM_API_KEY": "sk-good",
                "LLM_MODEL": "m",
                "TTS_PROVIDER": "piper",
                "TTS_HOST": "127.0.0.1",
                "TTS_PORT": "9",
            },
        )
        asked = {r.api_key for s in (rejecting, accepting) for r in s.requests_to("/models")}
    assert code == 1, err  # no TTS works
    data = json.loads(out)
    seen = {
        (kind, e["provider"]): (e["check"]["ok"], e["check"]["detail"], e["breaker"])
        for kind in ("stt", "llm", "tts")
        for e in data[kind]
    }
    assert seen[("stt", "deepgram")][::2] == (False, None)
    assert seen[("stt", "whisper")] == (True, "ready", "closed")
    assert seen[("llm", "openai-compatible")] == (True, "key accepted", "closed")
    assert seen[("llm", "openai")] == (False, "key rejected (HTTP 401)", "open")
    assert seen[("tts", "piper")][::2] == (False, "open")
    assert asked == {"sk-good", "sk-bad"}  # both keys were really tried


async def test_dev_without_livekit_server_says_how_to_start_one() -> None:
    code, _, err = await run_agent("dev", env={"LIVEKIT_URL": "ws://127.0.0.1:9"})
    assert code == 1
    assert "make livekit-dev" in err and "devkey" in err
    assert "Traceback" not in err


async def test_help_lists_our_commands_and_livekits() -> None:
    code, out, _ = await run_agent("--help", env={})
    assert code == 0
    for command in ("providers", "simulate", "call", "status", "usage", "start", "dev", "console"):
        assert f"\n  {command} " in out, command


async def test_status_without_a_worker_says_so_in_one_line() -> None:
    from tests.support.net import free_port

    code, out, err = await run_agent("status", "--url", f"http://127.0.0.1:{free_port()}", env={})
    assert code == 1 and out == ""
    assert "no worker status at" in err and "Traceback" not in err


async def test_call_without_a_server_says_so_in_one_line() -> None:
    from tests.support.net import free_port

    env = {"LIVEKIT_URL": f"ws://127.0.0.1:{free_port()}", "AGENT_NAME": "x"}
    code, out, err = await run_agent("call", "--say", "Hello there.", env=env)
    assert code == 1
    assert err.strip().splitlines() == [
        f"call: no LiveKit server at {env['LIVEKIT_URL']}: start one (`make livekit-server`, "
        "then `make livekit-dev`) or set LIVEKIT_URL"
    ]
    assert out == ""


async def test_call_rejects_a_bad_org_before_sending_anything() -> None:
    code, _, err = await run_agent("call", "--org", "../etc", "--say", "Hi.", env={})
    assert code == 2
    assert err.strip().splitlines() == [
        "call: --org '../etc' is not a valid organization id "
        "(letters, digits and ._:@- only, at most 128 characters)"
    ]


async def test_every_command_rejects_a_bad_org_with_the_rule() -> None:
    for command in (["providers"], ["simulate", "--say", "Hi."], ["call", "--say", "Hi."]):
        code, _, err = await run_agent(*command, "--org", "../etc", env={})
        assert code == 2, command
        assert err.strip().splitlines() == [
            f"{command[0]}: --org '../etc' is not a valid organization id "
            "(letters, digits and ._:@- only, at most 128 characters)"
        ], command


async def test_simulate_bad_input_is_one_line(tmp_path: Any) -> None:
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    cases = {
        ("--input", str(not_audio)): f"simulate: {not_audio}: no audio in it",
        ("--input", str(tmp_path / "missing.wav")): "simulate: ",
        ("--say", ""): "simulate: --say '': nothing to speak",
        ("--say", "..."): "simulate: --say '...': nothing to speak",
    }
    for args, start in cases.items():
        code, _, err = await run_agent("simulate", *args, env={})
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith(start), (args, err)


async def test_console_without_portaudio_names_the_fix() -> None:
    try:
        import sounddevice  # noqa: F401
    except OSError:
        pass
    else:
        import pytest

        pytest.skip("this machine has PortAudio: console would open the microphone")
    code, _, err = await run_agent("console", env={})
    assert code == 1
    assert err.strip().splitlines() == [
        "console needs the PortAudio library (apt-get install libportaudio2, or brew install "
        "portaudio). Without a microphone: `python -m agent simulate`, or `python -m agent "
        "call` against a running worker."
    ]


async def test_providers_says_which_org_fell_back_and_why() -> None:
    from tests.support.net import free_port

    env = {
        "AICO_BACKEND_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "AICO_INTERNAL_API_KEY": PLANTED,
        "STT_PROVIDER": "whisper",
        "TTS_PROVIDER": "piper",
        "LLM_PROVIDER": "offline",
    }
    code, out, err = await run_agent("providers", "--org", "acme", env=env)
    assert code == 0, err
    assert "source:       env" in out
    [warning] = [line for line in err.splitlines() if "backend unavailable" in line]
    assert warning.startswith(
        "WARNING voice_agent.providers: backend unavailable, using the environment config"
    )
    assert " org=acme " in warning and " reason=ConnectError " in warning
    assert " retry_after=5.0" in warning
    assert PLANTED not in out + err


async def test_providers_check_says_what_failed_not_breaker_closed() -> None:
    code, out, err = await run_agent(
        "providers",
        "--check",
        env={
            "STT_PROVIDER": "deepgram",  # no DEEPGRAM_API_KEY: cannot be built
            "STT_FALLBACK": "whisper",
            "TTS_PROVIDER": "piper",
            "LLM_PROVIDER": "offline",
        },
    )
    assert code == 0, err  # whisper serves STT
    lines = out.splitlines()
    check = lines[lines.index(next(x for x in lines if "deepgram" in x)) + 1].strip()
    assert check == (
        "[FAIL] cannot be built: provider 'deepgram' (stt) needs secret 'apiKey': "
        "set DEEPGRAM_API_KEY"
    )
    assert "breaker closed" not in out
