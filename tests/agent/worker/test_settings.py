"""The worker's settings: every variable read once at start-up, each documented, each bad
one named on its own line before anything runs, and the whole object fit to travel to a
job process."""

from __future__ import annotations

import dataclasses
import functools
import json
import pickle
import re
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel

import agent.worker.settings as settings_module
from agent.cli import main
from agent.worker.prewarm import prewarm
from agent.worker.settings import Settings, current, install
from providers.config import env
from tests.support import REPO

PLANTED = "sk-test-SETTINGS-PLANTED-4242"

SAMPLES = {
    "AICO_BACKEND_URL": "http://backend.test",
    "AICO_INTERNAL_API_KEY": PLANTED,
    "PROVIDER_ENV_FALLBACK": "false",
    "PROVIDER_CACHE_TTL": "31",
    "PROVIDER_CONNECT_TIMEOUT": "0.5",
    "PROVIDER_TIMEOUT": "3",
    "PROVIDER_MAX_BODY_BYTES": "2048",
    "PROVIDER_BACKEND_RETRY_AFTER": "7",
    "PROVIDER_CACHE_MAX_ORGS": "50",
    "VAD_MIN_SILENCE": "0.4",
    "MID_SENTENCE_PAUSE": "0.7",
    "ENDPOINTING_MIN_DELAY": "0.4",
    "ENDPOINTING_MAX_DELAY": "2",
    "TURN_DETECTOR": "local",
    "INTERRUPTION_MODE": "adaptive",
    "PREEMPTIVE_GENERATION": "off",
    "STT_EARLY_DECODE": "0.2",
    "USAGE_SPOOL_DIR": "spool-elsewhere",
    "USAGE_SPOOL_MAX_RECORDS": "10",
    "USAGE_POST_TIMEOUT": "1",
    "USAGE_RETRY_MAX": "9",
    "USAGE_CHECKPOINT_SECONDS": "2",
    "STT_CONNECT_TIMEOUT": "1",
    "LLM_FIRST_TOKEN_TIMEOUT": "1",
    "TTS_FIRST_AUDIO_TIMEOUT": "1",
    "REALTIME_FIRST_AUDIO_TIMEOUT": "1.5",
    "STT_REPLAY_SECONDS": "0",
    "PROVIDER_COOLDOWN": "5",
    "METRICS_ORG_LABEL": "off",
    "METRICS_MAX_ORGS": "3",
    "JOB_EXECUTOR": "process",
    "MAX_CONCURRENT_CALLS": "4",
    "AGENT_NAME": "receptionist",
    "AGENT_HTTP_PORT": "8090",
    "PROMETHEUS_PORT": "9100",
    "PROMETHEUS_MULTIPROC_DIR": "/var/lib/prometheus",
    "PROMETHEUS_HOST": "0.0.0.0",
    "STATUS_HOST": "0.0.0.0",
    "STATUS_TOKEN": PLANTED,
    "FINGERPRINT_SALT": PLANTED,
    "STATUS_PORT": "off",
    "DRAIN_TIMEOUT": "5",
    "PREWARM_TIMEOUT": "9",
    "LIVEKIT_URL": "ws://livekit.test:7880",
    "LIVEKIT_API_KEY": "key",
    "LIVEKIT_API_SECRET": PLANTED,
    "LIVEKIT_LOG_LEVEL": "WARNING",
    "SIMULATE_VERBOSE": "true",
    "DEFAULT_ORGANIZATION_ID": "acme",
    "PROVIDER_STRATEGY": "cost",
    "PRICING_JSON": json.dumps({"stt/deepgram": {"audioSeconds": 0.0001}}),
}
"""A valid value other than the default, for every variable the settings read."""

NOT_FROM_THE_ENVIRONMENT = {"usage.poll_interval", "usage.drain_seconds"}
"""Fields the code sets (tests shorten it), with no variable of their own."""


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """The settings' fields down to the values (``worker.status_port``…)."""
    if isinstance(value, BaseModel):
        fields = {name: getattr(value, name) for name in type(value).model_fields}
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    else:
        return {path: value}
    out: dict[str, Any] = {}
    for name, field_value in fields.items():
        if name != "provider_env":  # the environment config's copy, not a setting
            out |= leaves(field_value, f"{path}.{name}" if path else name)
    return out


def test_the_defaults_are_what_an_empty_environment_gives() -> None:
    assert Settings.from_env({}) == Settings()


def test_every_variable_sets_a_field_and_every_field_has_a_variable() -> None:
    assert sorted(SAMPLES) == sorted(Settings.variables())
    default = leaves(Settings())
    changed: set[str] = set()
    for var, value in SAMPLES.items():
        now = leaves(Settings.from_env({var: value}))
        moved = {path for path in default if now[path] != default[path]}
        assert moved, f"{var}={value!r} changes no setting"
        changed |= moved
    assert changed == set(default) - NOT_FROM_THE_ENVIRONMENT


def test_every_variable_is_documented() -> None:
    example = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    for var in Settings.variables():
        # PROMETHEUS_MULTIPROC_DIR is a comment: an empty value would break /metrics
        assert re.search(rf"^#?\s*{var}=", example, re.M), f"{var} is missing from .env.example"
        assert f"`{var}`" in readme, f"{var} is missing from README.md"


def test_several_bad_variables_give_one_line_each_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = {
        "PROVIDER_CACHE_TTL": "soon",
        "TURN_DETECTOR": "smart",
        "JOB_EXECUTOR": "fork",
        "STATUS_PORT": "99999",
        "METRICS_ORG_LABEL": "maybe",
        "PRICING_JSON": "{",
        "PROVIDER_STRATEGY": "cheap",
    }
    environ = {**bad, "AICO_INTERNAL_API_KEY": PLANTED, "LIVEKIT_API_SECRET": PLANTED}
    with pytest.raises(SystemExit) as exit_:
        main(["providers"], environ=environ)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines[0] == "python -m agent: bad settings in the environment:"
    assert len(lines) == 1 + len(bad)
    for var in bad:
        [line] = [line for line in lines[1:] if line.strip().startswith(var)]
        assert var in line
    assert "TURN_DETECTOR='smart': use one of local, cloud, vad, auto" in captured.err
    assert PLANTED not in captured.out + captured.err


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = Settings.from_env({**SAMPLES, "DEEPGRAM_API_KEY": PLANTED})
    assert settings.provider_env["DEEPGRAM_API_KEY"] == PLANTED  # for the env config
    assert PLANTED not in repr(settings) and PLANTED not in str(settings)


def test_the_environment_config_copy_holds_only_its_own_variables() -> None:
    settings = Settings.from_env({"STT_PROVIDER": "whisper", "PATH": "/bin", "HOME": "/root"})
    assert settings.provider_env == {"STT_PROVIDER": "whisper"}
    assert set(settings.provider_env) <= env.variables()


def test_a_job_process_gets_the_settings_through_its_prewarm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``JOB_EXECUTOR=process``: livekit pickles the setup function into a process that
    never ran the CLI; its prewarm installs the settings there."""
    # a deepgram STT and a Piper server: nothing local to load
    provider_env = {"STT_PROVIDER": "deepgram", "TTS_HOST": "127.0.0.1"}
    settings = Settings.from_env({**SAMPLES, **provider_env})
    setup = pickle.loads(pickle.dumps(functools.partial(prewarm, settings=settings)))
    monkeypatch.setattr(settings_module, "_current", None)  # a fresh process
    with pytest.raises(RuntimeError, match="no settings installed"):
        current()
    proc = SimpleNamespace(userdata={})
    setup(proc)
    assert current() == settings
    assert proc.userdata["vad"]._opts.min_silence_duration == 0.4


def test_install_hands_the_process_wide_objects_their_settings() -> None:
    from agent.worker import metrics
    from agent.worker.usage import get_usage
    from providers.chains.health import get_health

    install(Settings.from_env({**SAMPLES, "USAGE_SPOOL_DIR": "", "AICO_BACKEND_URL": ""}))
    assert get_health()._cooldown == 5.0
    assert get_usage().settings.max_records == 10
    assert metrics.org_label("acme") == metrics.ALL  # METRICS_ORG_LABEL=off
