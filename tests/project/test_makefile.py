"""The Makefile's presets as a user runs them: the real Makefile and preset files, run by
``make`` in a scratch copy of the repo whose ``.env`` is ``cp .env.example .env`` plus a key,
with ``PY`` swapped for a script that reports the environment the worker would get.

A preset decides the providers, org and persona; ``.env`` supplies keys and personal
settings; an empty line in ``.env`` does not blank a key exported in the shell.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.env import clean_environ

SHOWN = (
    "STT_PROVIDER STT_FALLBACK LLM_PROVIDER LLM_FALLBACK TTS_PROVIDER TTS_FALLBACK "
    "OPENAI_LLM_MODEL GROQ_LLM_MODEL DEFAULT_ORGANIZATION_ID AGENT_GREETING LIVEKIT_URL "
    "PROVIDER_TIMEOUT"
).split()
KEYS = ("DEEPGRAM_API_KEY", "OPENAI_API_KEY")
"""Reported as set or unset, never by value."""

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

REPORT = (
    "#!/bin/sh\n"
    + "".join(f"printf '%s=%s\\n' {n} \"${n}\"\n" for n in SHOWN)
    + "".join(f'[ -n "${k}" ] && echo {k}=set || echo {k}=unset\n' for k in KEYS)
    + 'echo "ARGS=$*"\n'
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A scratch copy of what ``make`` reads, with a fake ``$(PY)``."""
    for name in ("Makefile", "pyproject.toml", ".env.local-testing", ".env.cloud-providers"):
        shutil.copy(REPO / name, tmp_path / name)
    script = tmp_path / "report.sh"
    script.write_text(REPORT)
    script.chmod(0o755)
    return tmp_path


def user_dotenv(repo: Path, **settings: str) -> None:
    """``cp .env.example .env``, then fill in some lines as a user would."""
    lines = (REPO / ".env.example").read_text().splitlines()
    for name, value in settings.items():
        lines = [f"{name}={value}" if line.startswith(f"{name}=") else line for line in lines]
    (repo / ".env").write_text("\n".join(lines) + "\n")


def run_make(repo: Path, target: str, **shell: str) -> dict[str, str]:
    env = {k: v for k, v in clean_environ().items() if not k.startswith("MAKE")}
    env.update(shell)
    # -o install: the scratch copy has no venv to build; PY is the report script
    proc = subprocess.run(
        ["make", "-s", "-o", "install", target, f"PY={repo / 'report.sh'}"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def test_dev_cloud_preset_wins_over_a_copied_env_example(repo: Path) -> None:
    user_dotenv(
        repo,
        DEEPGRAM_API_KEY="dg-from-dotenv",
        LIVEKIT_URL="wss://mine.livekit.cloud",
        PROVIDER_TIMEOUT="3",
    )
    env = run_make(repo, "dev-cloud", OPENAI_API_KEY="oa-from-shell")

    # the preset selects the providers, models, org and persona ...
    assert env["STT_PROVIDER"] == "deepgram" and env["STT_FALLBACK"] == "vosk,whisper"
    assert env["LLM_PROVIDER"] == "openai" and env["LLM_FALLBACK"] == "groq,offline"
    assert env["TTS_PROVIDER"] == "elevenlabs" and env["TTS_FALLBACK"] == "cartesia,piper"
    assert env["OPENAI_LLM_MODEL"] == "gpt-4.1-mini" and env["GROQ_LLM_MODEL"] == ""
    assert env["DEFAULT_ORGANIZATION_ID"] == "demo"
    assert env["AGENT_GREETING"].startswith("Hello, thanks for calling Harbor Clinic")
    # ... .env supplies the key and the personal settings no preset sets ...
    assert env["DEEPGRAM_API_KEY"] == "set"
    assert env["LIVEKIT_URL"] == "wss://mine.livekit.cloud"
    assert env["PROVIDER_TIMEOUT"] == "3"
    # ... and its empty `OPENAI_API_KEY=` line does not blank the key exported in the shell
    assert env["OPENAI_API_KEY"] == "set"
    assert env["ARGS"] == "-m agent dev"


@pytest.mark.parametrize(
    ("target", "stt", "llm", "tts", "tts_fallback"),
    [
        ("dev-local", "vosk", "offline", "piper", ""),
        ("dev-deepgram-piper", "deepgram", "openai", "piper", ""),
        ("dev-deepgram-elevenlabs", "deepgram", "openai", "elevenlabs", "piper"),
    ],
)
def test_every_preset_wins_over_env(
    repo: Path, target: str, stt: str, llm: str, tts: str, tts_fallback: str
) -> None:
    # a .env that selects other providers on purpose
    user_dotenv(repo, STT_PROVIDER="openai", LLM_PROVIDER="groq", TTS_PROVIDER="cartesia")
    env = run_make(repo, target)
    assert (env["STT_PROVIDER"], env["LLM_PROVIDER"]) == (stt, llm)
    assert (env["TTS_PROVIDER"], env["TTS_FALLBACK"]) == (tts, tts_fallback)
    assert env["DEFAULT_ORGANIZATION_ID"] == "demo"


def test_without_env_the_dev_server_is_the_default(repo: Path) -> None:
    env = run_make(repo, "dev-local")
    assert env["LIVEKIT_URL"] == "ws://localhost:7880"
    assert env["STT_PROVIDER"] == "vosk" and env["DEEPGRAM_API_KEY"] == "unset"
