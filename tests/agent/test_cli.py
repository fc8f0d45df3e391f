"""``python -m agent`` as a user runs it: the commands' output and exit codes, against a
loopback backend and in environment mode, and their one-line answers to bad input. The
commands run in this process (``agent.cli.main``); one test runs the real entry point."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import pytest

from agent.cli import main
from agent.worker.settings import current
from providers.catalogue.registry import import_plugins
from tests.standins.backend import BackendServer, org_payload, provider_entry
from tests.standins.openai import OpenAIStandin
from tests.support import REPO

PLANTED = "sk-test-CLI-PLANTED-0987654321"

RunAgent = Callable[..., Awaitable[tuple[int, str, str]]]


def _exit_code(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


@pytest.fixture
def run_agent(capsys: pytest.CaptureFixture[str]) -> RunAgent:
    """``python -m agent ARGS`` with ``env`` over an environment without API keys: the exit
    code, stdout and stderr. The command runs in a thread (it runs its own event loop, the
    stand-ins serve from the test's); the environment, logging and warning filters it sets
    up are restored after it. The livekit plugins are imported first, on the main thread,
    as the worker does before its job threads: livekit refuses to register one elsewhere."""
    import_plugins()

    async def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
        capsys.readouterr()  # what came before is not the command's
        clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
                with warnings.catch_warnings():
                    code = await asyncio.wait_for(asyncio.to_thread(_exit_code, list(args)), 60)
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def test_providers_json_from_the_backend(run_agent: RunAgent) -> None:
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


async def test_providers_json_in_env_mode(run_agent: RunAgent) -> None:
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


async def test_providers_check_exits_1_when_a_kind_is_down(run_agent: RunAgent) -> None:
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


async def test_providers_check_reports_each_providers_breaker(run_agent: RunAgent) -> None:
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


async def test_dev_without_livekit_server_says_how_to_start_one(run_agent: RunAgent) -> None:
    code, _, err = await run_agent("dev", env={"LIVEKIT_URL": "ws://127.0.0.1:9"})
    assert code == 1
    assert "make livekit-dev" in err and "devkey" in err
    assert "Traceback" not in err


def test_the_real_entry_point_lists_our_commands_and_livekits() -> None:
    """``python -m agent --help`` as a process: the entry point runs and exits 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    code, out = proc.returncode, proc.stdout
    assert code == 0, proc.stderr
    for command in ("providers", "simulate", "call", "status", "usage", "start", "dev", "console"):
        assert f"\n  {command} " in out, command


END_PROCESS_SCRIPT = """
import atexit, sys, threading, time
from livekit import rtc
from agent.cli import end_process

rtc.AudioResampler(48000, 16000)  # starts livekit's native runtime in this process
late = threading.Thread(target=lambda: (time.sleep(0.2), print("thread finished")))
late.start()
atexit.register(lambda: print("atexit ran", flush=True))
print("work done")
end_process(int(sys.argv[1]))
"""


@pytest.mark.parametrize("code", [0, 3])
def test_a_command_that_used_livekits_runtime_exits_like_a_normal_exit(code: int) -> None:
    """``end_process`` skips only the interpreter's finalization (where livekit's runtime
    threads abort the process): the exit code, non-daemon threads, atexit callbacks and
    output are all as a normal exit leaves them."""
    proc = subprocess.run(
        [sys.executable, "-c", END_PROCESS_SCRIPT, str(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.split() == "work done thread finished atexit ran".split()


async def test_status_without_a_worker_says_so_in_one_line(run_agent: RunAgent) -> None:
    from tests.support.net import free_port

    code, out, err = await run_agent("status", "--url", f"http://127.0.0.1:{free_port()}", env={})
    assert code == 1 and out == ""
    assert "no worker status at" in err and "Traceback" not in err


async def test_call_without_a_server_says_so_in_one_line(run_agent: RunAgent) -> None:
    from tests.support.net import free_port

    env = {"LIVEKIT_URL": f"ws://127.0.0.1:{free_port()}", "AGENT_NAME": "x"}
    code, out, err = await run_agent("call", "--say", "Hello there.", env=env)
    assert code == 1
    assert err.strip().splitlines() == [
        f"call: no LiveKit server at {env['LIVEKIT_URL']}: start one (`make livekit-server`, "
        "then `make livekit-dev`) or set LIVEKIT_URL"
    ]
    assert out == ""


async def test_call_rejects_a_bad_org_before_sending_anything(run_agent: RunAgent) -> None:
    code, _, err = await run_agent("call", "--org", "../etc", "--say", "Hi.", env={})
    assert code == 2
    assert err.strip().splitlines() == [
        "call: --org '../etc' is not a valid organization id "
        "(letters, digits and ._:@- only, at most 128 characters)"
    ]


async def test_every_command_rejects_a_bad_org_with_the_rule(run_agent: RunAgent) -> None:
    for command in (["providers"], ["simulate", "--say", "Hi."], ["call", "--say", "Hi."]):
        code, _, err = await run_agent(*command, "--org", "../etc", env={})
        assert code == 2, command
        assert err.strip().splitlines() == [
            f"{command[0]}: --org '../etc' is not a valid organization id "
            "(letters, digits and ._:@- only, at most 128 characters)"
        ], command


async def test_simulate_bad_input_is_one_line(run_agent: RunAgent, tmp_path: Any) -> None:
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


async def test_console_without_portaudio_names_the_fix(run_agent: RunAgent) -> None:
    try:
        import sounddevice  # noqa: F401
    except OSError:
        pass
    else:
        pytest.skip("this machine has PortAudio: console would open the microphone")
    code, _, err = await run_agent("console", env={})
    assert code == 1
    assert err.strip().splitlines() == [
        "console needs the PortAudio library (apt-get install libportaudio2, or brew install "
        "portaudio). Without a microphone: `python -m agent simulate`, or `python -m agent "
        "call` against a running worker."
    ]


async def test_providers_says_which_org_fell_back_and_why(run_agent: RunAgent) -> None:
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


async def test_providers_check_says_what_failed_not_breaker_closed(run_agent: RunAgent) -> None:
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


def _run_in_process(monkeypatch: Any, *args: str) -> tuple[int, list[str]]:
    """``python -m agent ARGS`` in this process up to livekit's CLI: the exit code and the
    command line ``python -m livekit.agents`` was given (the worker itself never starts)."""
    import runpy

    import pytest

    from agent import cli

    handed: list[str] = []

    def run_module(name: str, **_: Any) -> None:
        assert name == "livekit.agents"
        handed.extend(sys.argv[1:])
        raise SystemExit(0)

    monkeypatch.setattr(runpy, "run_module", run_module)
    monkeypatch.setattr(cli, "livekit_reachable", lambda url: url == "ws://lk.test:7880")
    monkeypatch.setattr(sys, "argv", ["python -m agent", *args])
    # what the commands set for livekit, put back after the test
    for name in ("LIVEKIT_DEV_MODE", "DRAIN_TIMEOUT", "LIVEKIT_LOG_LEVEL"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("LIVEKIT_URL", "ws://lk.test:7880")
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(args))
    assert isinstance(exit_.value.code, int)
    return exit_.value.code, handed


def test_start_and_dev_run_livekits_cli_on_the_worker_module(monkeypatch: Any) -> None:
    from agent.cli import WORKER_APP

    app = str(WORKER_APP)
    assert WORKER_APP.is_file()
    assert _run_in_process(monkeypatch, "start") == (
        0, ["start", app, "--log-level", "INFO", "--log-format", "json"]
    )  # fmt: skip
    assert "LIVEKIT_DEV_MODE" not in os.environ

    flags = _run_in_process(
        monkeypatch,
        "start",
        "--url=ws://lk.test:7880",
        "--api-key",
        "k",
        "--api-secret",
        "s",
        "--log-level",
        "warn",
        "--drain-timeout",
        "30",
    )
    assert flags == (0, [
        "start", app, "--log-level", "WARN", "--log-format", "json",
        "--url", "ws://lk.test:7880", "--api-key", "k", "--api-secret", "s",
    ])  # fmt: skip
    assert current().worker.drain_timeout == 30  # the flag overrides DRAIN_TIMEOUT

    assert _run_in_process(monkeypatch, "dev") == (
        0, ["start", app, "--log-level", "DEBUG", "--dev"]
    )  # fmt: skip
    assert os.environ["LIVEKIT_DEV_MODE"] == "1"  # livekit's development defaults

    assert _run_in_process(monkeypatch, "download-files") == (0, ["download-files"])


def test_start_checks_the_server_its_flag_names(monkeypatch: Any, capsys: Any) -> None:
    code, handed = _run_in_process(monkeypatch, "start", "--url", "ws://127.0.0.1:9")
    assert (code, handed) == (1, [])
    assert "No LiveKit server is reachable at ws://127.0.0.1:9." in capsys.readouterr().err


async def test_the_worker_entry_point_raises_no_deprecation_warning() -> None:
    """livekit's CLI module and the worker module it loads (which builds the server), and
    ``start --help``, with every DeprecationWarning an error."""
    for argv in (
        ("-m", "agent", "start", "--help"),
        ("-c", "import livekit.agents.__main__, agent.worker.app"),
    ):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            *argv,
            env={**os.environ, "STATUS_PORT": "off"},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err_bytes = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, (argv, err_bytes.decode())
