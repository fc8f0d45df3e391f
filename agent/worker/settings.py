"""The worker's settings: every variable the product reads, read once at start-up.

``python -m agent`` builds one ``Settings`` from the environment before any command runs
(``load``), reports every bad variable at once, one line each, and passes the settings
down. The groups are the small value classes beside the code they configure (the loader's,
the turn-taking's, the usage sender's, the failover budgets, the metrics'); this module
only composes them and adds the worker's own options.

Not parsed here: the environment provider config (chains, options, keys, persona), which
``providers.config.env`` turns into an org's providers at each load, from the copy of its
variables taken here (``provider_env``); and our plugins' own model variables
(``VOSK_MODEL_PATH``…), which the plugins read as livekit's plugins read theirs.

A job process that livekit starts (``JOB_EXECUTOR=process``) gets the settings through its
prewarm, which ``install``s them there; ``current()`` is how the room entrypoint, which
livekit calls with a ``JobContext`` only, finds them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from agent.worker import metrics
from agent.worker.metrics import MetricsSettings
from agent.worker.turns import TurnSettings
from agent.worker.usage import UsageSettings, configure_usage
from providers import ConfigError, EnvReader, SettingsError, env_reader
from providers.catalogue import NO_OVERRIDES, PriceOverrides
from providers.chains import FailoverSettings, configure_health, env_strategy
from providers.config import LoaderSettings, env_variables
from providers.redaction import configure_fingerprints, new_salt, register, register_environment
from providers.types import Strategy

DEFAULT_STATUS_PORT = 8082
LOOPBACK = "127.0.0.1"
LIVEKIT_DEV_SECRET = "secret"
"""``livekit-server --dev``'s API secret."""

JobExecutor = Literal["thread", "process"]
_EXECUTORS: tuple[JobExecutor, ...] = ("thread", "process")


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True)


class LiveKitSettings(_Group):
    """The LiveKit server our own commands talk to (livekit's CLI reads the same variables
    for the worker itself)."""

    url: str | None = None
    """``LIVEKIT_URL``."""
    api_key: str | None = None
    """``LIVEKIT_API_KEY``."""
    api_secret: SecretStr | None = None
    """``LIVEKIT_API_SECRET``."""
    log_level: str | None = None
    """``LIVEKIT_LOG_LEVEL``: the worker's log level (``start``/``dev``'s ``--log-level``)."""

    @property
    def dev_secret(self) -> bool:
        """Unset or ``livekit-server --dev``'s short secret."""
        return self.api_secret is None or self.api_secret.get_secret_value() == LIVEKIT_DEV_SECRET

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> LiveKitSettings:
        with env_reader(environ) as env:
            key = env.secret("LIVEKIT_API_KEY")  # not validated: no value in any message
            return cls(
                url=env.text("LIVEKIT_URL"),
                api_key=key.get_secret_value() if key else None,
                api_secret=env.secret("LIVEKIT_API_SECRET"),
                log_level=env.text("LIVEKIT_LOG_LEVEL"),
            )


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class WorkerOptions(_Group):
    """How the worker registers with LiveKit and runs its calls (``agent.worker.server``)."""

    job_executor: JobExecutor = "thread"
    """``JOB_EXECUTOR``: calls as threads of one process, or one process per call."""
    max_concurrent_calls: int = Field(default_factory=lambda: usable_cores())
    """``MAX_CONCURRENT_CALLS``: full at exactly this many calls (default: one per usable
    core, what the local stack holds within its latency target; 0: livekit's CPU load)."""
    agent_name: str = ""
    """``AGENT_NAME``: explicit dispatch name (empty: automatic dispatch)."""
    http_port: int | None = None
    """``AGENT_HTTP_PORT``: livekit's health server (None: livekit's default)."""
    prometheus_port: int | None = None
    """``PROMETHEUS_PORT``: livekit's Prometheus server (None: off)."""
    prometheus_host: str = LOOPBACK
    """``PROMETHEUS_HOST``: the interface livekit's HTTP servers listen on (livekit has one
    ``host`` for its health server and its Prometheus server); ``0.0.0.0`` opens them."""
    prometheus_multiproc_dir: str | None = None
    """``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's own): where call processes write
    metrics; None with the process executor means a temporary directory."""
    status_host: str = LOOPBACK
    """``STATUS_HOST``: the status server's interface; ``0.0.0.0`` opens it to the network."""
    status_token: SecretStr | None = None
    """``STATUS_TOKEN``: when set, ``/status`` answers only ``Authorization: Bearer <it>``."""
    status_port: int | None = DEFAULT_STATUS_PORT
    """``STATUS_PORT``: the status server's port, 0 for any free one, None (``off``): none."""
    drain_timeout: int = 1800
    """``DRAIN_TIMEOUT``: seconds a SIGTERM'd worker lets its calls finish."""
    prewarm_timeout: float = 60.0
    """``PREWARM_TIMEOUT``: seconds allowed for loading the VAD and local models."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> WorkerOptions:
        d = cls()
        with env_reader(environ) as env:
            return cls(
                job_executor=env.choice("JOB_EXECUTOR", _EXECUTORS, d.job_executor),
                max_concurrent_calls=env.integer("MAX_CONCURRENT_CALLS", d.max_concurrent_calls),
                agent_name=env.text("AGENT_NAME") or d.agent_name,
                http_port=env.optional_integer("AGENT_HTTP_PORT"),
                prometheus_port=env.optional_integer("PROMETHEUS_PORT"),
                prometheus_multiproc_dir=env.text("PROMETHEUS_MULTIPROC_DIR"),
                prometheus_host=env.text("PROMETHEUS_HOST") or d.prometheus_host,
                status_host=env.text("STATUS_HOST") or d.status_host,
                status_token=env.secret("STATUS_TOKEN"),
                status_port=env.value("STATUS_PORT", _status_port, d.status_port),
                drain_timeout=env.integer("DRAIN_TIMEOUT", d.drain_timeout),
                prewarm_timeout=env.number("PREWARM_TIMEOUT", d.prewarm_timeout),
            )


def _status_port(raw: str) -> int | None:
    """``STATUS_PORT``: a port, 0 for any free one, ``off`` for none."""
    if raw.lower() in ("off", "none", "false"):
        return None
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError(f"STATUS_PORT={raw!r}: a port number, 0 for any free port, or off")
    return int(raw)


class ToolOptions(_Group):
    """The developer tools' own (``simulate``, ``call``)."""

    simulate_verbose: bool = False
    """``SIMULATE_VERBOSE``: ``simulate`` logs at info level, as with ``--verbose``."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> ToolOptions:
        with env_reader(environ) as env:
            return cls(simulate_verbose=env.flag("SIMULATE_VERBOSE", False))


class Settings(BaseModel):
    """Everything the worker and its commands are configured with, from one environment."""

    model_config = ConfigDict(frozen=True)

    loader: LoaderSettings = LoaderSettings()
    """Where an org's providers come from: the backend, its cache, the env fallback."""
    turns: TurnSettings = TurnSettings()
    usage: UsageSettings = UsageSettings()
    failover: FailoverSettings = FailoverSettings()
    """Budgets per kind, the STT replay, the health cool-down."""
    metrics: MetricsSettings = MetricsSettings()
    worker: WorkerOptions = WorkerOptions()
    livekit: LiveKitSettings = LiveKitSettings()
    tools: ToolOptions = ToolOptions()
    default_organization_id: str | None = None
    """``DEFAULT_ORGANIZATION_ID``: the org of jobs whose metadata names none."""
    strategy: Strategy = Strategy.PRIORITY
    """``PROVIDER_STRATEGY``: the routing of orgs whose config names none."""
    pricing: PriceOverrides = NO_OVERRIDES
    """``PRICING_JSON``: price overrides, parsed and validated here."""
    fingerprint_salt: SecretStr | None = None
    """``FINGERPRINT_SALT``: the key of the key fingerprints (breaker names in the status
    JSON and metrics). Unset: ``load`` draws one per worker, which its job processes share."""
    provider_env: Mapping[str, str] = Field(default_factory=dict, repr=False)
    """The environment provider config's variables as start-up found them (chains, options,
    keys, persona: what ``providers.config.env`` reads). Holds keys: never printed."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> Settings:
        """Raises ``SettingsError`` naming every bad variable, one line each."""
        with env_reader(environ) as env:
            return cls(
                loader=LoaderSettings.from_env(env),
                turns=TurnSettings.from_env(env),
                usage=UsageSettings.from_env(env),
                failover=FailoverSettings.from_env(env),
                metrics=MetricsSettings.from_env(env),
                worker=WorkerOptions.from_env(env),
                livekit=LiveKitSettings.from_env(env),
                tools=ToolOptions.from_env(env),
                default_organization_id=env.text("DEFAULT_ORGANIZATION_ID"),
                strategy=env_strategy(env),
                pricing=PriceOverrides.from_env(env),
                fingerprint_salt=env.secret("FINGERPRINT_SALT"),
                provider_env={k: v for k in env_variables() if (v := env.environ.get(k))},
            )

    @classmethod
    def variables(cls) -> list[str]:
        """Every variable the settings read, in the order they are read."""
        reader = EnvReader({})
        cls.from_env(reader)
        return reader.names


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Start-up: the settings from ``environ`` (default: this process's environment, the one
    read of it), or ``SystemExit(2)`` after one line per bad variable."""
    try:
        settings = Settings.from_env(os.environ if environ is None else environ)
    except SettingsError as e:
        lines = "\n".join(f"  {p}" for p in e.problems)
        print(f"python -m agent: bad settings in the environment:\n{lines}", file=sys.stderr)
        raise SystemExit(2) from None
    if settings.fingerprint_salt is None:  # one per worker, pickled to its job processes
        settings = settings.model_copy(update={"fingerprint_salt": SecretStr(new_salt())})
    return settings


def _known_secrets(settings: Settings) -> None:
    """Every secret the settings hold, in the registry the log filter redacts from."""
    register_environment(settings.provider_env)
    register(
        settings.loader.internal_api_key,
        settings.usage.api_key,
        settings.livekit.api_secret,
        settings.worker.status_token,
        settings.fingerprint_salt,
    )
    configure_fingerprints(settings.fingerprint_salt)


_current: Settings | None = None


def install(settings: Settings) -> None:
    """This process runs with ``settings``: ``current()`` returns them, and the process-wide
    objects made from settings (provider health, the usage sender, the metrics' org labels)
    take theirs. Start-up calls it: the CLI, and each job process's prewarm."""
    global _current
    if settings == _current:
        return
    _current = settings
    _known_secrets(settings)
    configure_health(cooldown=settings.failover.cooldown)
    configure_usage(settings.usage)
    metrics.org_label.configure(settings.metrics)


def start_up() -> Settings:
    """The installed settings, else the environment's, loaded and installed now: for a
    worker module loaded by livekit's or the LiveKit CLI's own tools (``agent/worker/app.py``)."""
    if _current is None:
        install(load())
    return current()


def current() -> Settings:
    """The installed settings: for what livekit calls with a ``JobContext`` only."""
    if _current is None:
        raise RuntimeError(
            "no settings installed: start through `python -m agent` (agent.cli), "
            "or call agent.worker.settings.install(Settings.from_env(...)) first"
        )
    return _current


__all__ = [
    "DEFAULT_STATUS_PORT",
    "LiveKitSettings",
    "Settings",
    "SettingsError",
    "ToolOptions",
    "WorkerOptions",
    "current",
    "start_up",
    "install",
    "load",
]
